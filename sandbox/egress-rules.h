/* SPDX-License-Identifier: MIT */
/*
 * Egress allowlist entries in the wire formats (policy.json, run specs):
 * {"cidr":"203.0.113.0/24","protocol":"tcp","ports":"80-443"}. Shared by
 * policy.c and spec.c; no isolation library.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/json.h"
#include "sandbox.h"

/*
 * Reads an array of entries at path into rules (at most
 * SBX_EGRESS_MAX_RULES). Unknown fields, a malformed CIDR or one with host
 * bits set, a prefix over 32, an unknown protocol, ports with a protocol
 * that has none, a port over 65535 or a reversed range are refused with err
 * naming the entry ("network.egress.allow[2].ports"). ret_n is untouched on
 * failure.
 */
int sbx_egress_rules_from_json(yajl_val v, const char *path, sbx_egress_rule *rules, uint32_t *ret_n,
                               au_error *err);

/* Writes the array back in the same form. */
int sbx_egress_rules_gen(yajl_gen g, const sbx_egress_rule *rules, uint32_t n);

/* Whether every packet inner allows, outer allows too. */
bool sbx_egress_rule_within(const sbx_egress_rule *inner, const sbx_egress_rule *outer);

/* "203.0.113.0/24 tcp 80-443" for messages. */
void sbx_egress_rule_format(const sbx_egress_rule *r, char *buf, size_t size);

/* "tcp", "udp", "icmp" or "any" (0); NULL for other numbers. */
const char *sbx_egress_protocol_name(int protocol);
