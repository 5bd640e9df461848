/* SPDX-License-Identifier: MIT */
/* The words of DESIGN.md for trust levels, networks and outcomes. */
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "sandbox/sandbox-internal.h"

static const char *const trust_names[_SBX_TRUST_MAX] = {
        [SBX_TRUST_RESTRICTED] = "restricted",
        [SBX_TRUST_STANDARD] = "standard",
        [SBX_TRUST_ELEVATED] = "elevated",
        [SBX_TRUST_PRIVILEGED] = "privileged",
};

static const char *const network_names[_SBX_NET_MAX] = {
        [SBX_NET_NONE] = "none",
        [SBX_NET_LOOPBACK] = "loopback",
        [SBX_NET_EGRESS] = "egress",
};

static const char *const outcome_names[_SBX_OUTCOME_MAX] = {
        [SBX_OUTCOME_EXITED] = "exited",
        [SBX_OUTCOME_SIGNALED] = "signaled",
        [SBX_OUTCOME_TIMEOUT] = "timeout",
        [SBX_OUTCOME_CPU_LIMIT] = "cpu_limit",
        [SBX_OUTCOME_OOM] = "oom",
        [SBX_OUTCOME_PIDS_LIMIT] = "pids_limit",
        [SBX_OUTCOME_OUTPUT_LIMIT] = "output_limit",
        [SBX_OUTCOME_SANDBOX_ERROR] = "sandbox_error",
        [SBX_OUTCOME_REJECTED] = "rejected",
};

static int lookup(const char *const *names, int n, const char *s) {
        if (!s)
                return -1;
        for (int i = 0; i < n; i++)
                if (strcmp(names[i], s) == 0)
                        return i;
        return -1;
}

/* NULL for values outside the enum. */
const char *sbx_trust_to_string(sbx_trust t) {
        return t >= 0 && t < _SBX_TRUST_MAX ? trust_names[t] : NULL;
}

/* _SBX_TRUST_INVALID for NULL or an unknown word (matching is exact). */
sbx_trust sbx_trust_from_string(const char *s) {
        return (sbx_trust) lookup(trust_names, _SBX_TRUST_MAX, s);
}

const char *sbx_network_to_string(sbx_network n) {
        return n >= 0 && n < _SBX_NET_MAX ? network_names[n] : NULL;
}

sbx_network sbx_network_from_string(const char *s) {
        return (sbx_network) lookup(network_names, _SBX_NET_MAX, s);
}

const char *sbx_outcome_to_string(sbx_outcome o) {
        return o >= 0 && o < _SBX_OUTCOME_MAX ? outcome_names[o] : NULL;
}

sbx_outcome sbx_outcome_from_string(const char *s) {
        return (sbx_outcome) lookup(outcome_names, _SBX_OUTCOME_MAX, s);
}

const sbx_limit_field sbx_limit_fields[7] = {
        {"memory_bytes", offsetof(sbx_limits, memory_bytes), false},
        {"cpu_percent", offsetof(sbx_limits, cpu_percent), true},
        {"pids", offsetof(sbx_limits, pids), true},
        {"wall_ms", offsetof(sbx_limits, wall_ms), false},
        {"cpu_ms", offsetof(sbx_limits, cpu_ms), false},
        {"output_bytes", offsetof(sbx_limits, output_bytes), false},
        {"work_bytes", offsetof(sbx_limits, work_bytes), false},
};

uint64_t sbx_limit_get(const sbx_limits *l, const sbx_limit_field *f) {
        const char *p = (const char *) l + f->offset;
        return f->is32 ? *(const uint32_t *) p : *(const uint64_t *) p;
}

void sbx_limit_set(sbx_limits *l, const sbx_limit_field *f, uint64_t v) {
        char *p = (char *) l + f->offset;
        if (f->is32)
                *(uint32_t *) p = (uint32_t) v;
        else
                *(uint64_t *) p = v;
}
