/* SPDX-License-Identifier: MIT */
/*
 * A job's secrets on the node (doc/trust.md "Secrets"). A spec naming
 * secrets ("secrets": {"VAR": "name"}) carries their values in
 * "secrets_sealed": base64 of an AES-256-GCM box under this node's secret
 * key HMAC(node key, "autoos/secret/v1"), associated data the run id and
 * this node, holding {"VAR": "value"}. The values go into the run's
 * environment and nowhere else; before the result leaves the node every
 * value is masked as "***" in its stdout, stderr and messages.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/macro.h"
#include "memory/seal.h"
#include "sandbox/sandbox.h"

typedef struct dmn_secrets dmn_secrets;

/*
 * Parses a spec from the jobs stream (json, len) as sbx_spec_from_json()
 * does, after opening its secrets with node_key (NULL: this node has none,
 * bus_auth off) for node: *ret_spec gets the spec with the values in its
 * env, *ret_secrets the values for dmn_secrets_mask() (NULL when the spec
 * names none). -EKEYREJECTED when a named secret cannot be had (not
 * delivered, altered, sealed for another node or run): err names the
 * secret and its variable, never a value; the run ends as sandbox_error.
 * Other errors are sbx_spec_from_json()'s. Outputs untouched on failure.
 */
int dmn_secrets_spec(const uint8_t *node_key, const char *node, const char *json, size_t len,
                     const sbx_policy *policy, sbx_spec **ret_spec, dmn_secrets **ret_secrets,
                     au_error *err);

/* Masks every value (memory/secret.h mem_secret_mask) in res's stdout, stderr, error and reason. NULL s:
 * nothing. */
void dmn_secrets_mask(const dmn_secrets *s, sbx_result *res);

/* Wipes and frees; accepts NULL, returns NULL. */
dmn_secrets *dmn_secrets_free(dmn_secrets *s);
