/* SPDX-License-Identifier: MIT */
/*
 * fabric/retry: what an error is, whether it is retried or falls back, and
 * how long to wait. Pure functions of their inputs (unit-tested without a
 * server); fabric/call.c applies them.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/json.h"
#include "fabric/fabric.h"

static const char *const kind_names[_FAB_ERR_MAX] = {
        [FAB_ERR_NONE] = "none",
        [FAB_ERR_TIMEOUT] = "timeout",
        [FAB_ERR_CONNECT] = "connect",
        [FAB_ERR_RATE_LIMIT] = "rate_limit",
        [FAB_ERR_OVERLOADED] = "overloaded",
        [FAB_ERR_SERVER] = "server",
        [FAB_ERR_QUOTA] = "quota",
        [FAB_ERR_AUTH] = "auth",
        [FAB_ERR_NOT_FOUND] = "not_found",
        [FAB_ERR_REQUEST] = "request",
        [FAB_ERR_STREAM_CUT] = "stream_cut",
        [FAB_ERR_STREAM_ERROR] = "stream_error",
        [FAB_ERR_PROTOCOL] = "protocol",
};

const char *fab_error_kind_name(fab_error_kind k) {
        return k < _FAB_ERR_MAX ? kind_names[k] : "unknown";
}

bool fab_error_retryable(fab_error_kind k) {
        switch (k) {
        case FAB_ERR_TIMEOUT:
        case FAB_ERR_CONNECT:
        case FAB_ERR_RATE_LIMIT:
        case FAB_ERR_OVERLOADED:
        case FAB_ERR_SERVER:
        /* before the first byte only; after it fabric/call.c stops */
        case FAB_ERR_STREAM_CUT:
        case FAB_ERR_STREAM_ERROR:
        case FAB_ERR_PROTOCOL:
                return true;
        default:
                return false;
        }
}

bool fab_error_falls_back(fab_error_kind k) {
        return k != FAB_ERR_NONE && k != FAB_ERR_REQUEST;
}

static bool str_eq(yajl_val v, const char *s) {
        return YAJL_IS_STRING(v) && strcmp(v->u.string, s) == 0;
}

fab_error_kind fab_error_classify(long status, const char *body, size_t len, char *ret_msg,
                                  size_t msg_size) {
        _cleanup_json_ yajl_val root = NULL;
        yajl_val e = NULL, type = NULL, code = NULL, msg = NULL, details = NULL;
        au_error err = {};

        if (ret_msg && msg_size)
                ret_msg[0] = '\0';
        if (body && len > 0 && au_json_parse(body, len, FAB_REPLY_MAX_BYTES, &root, &err) == 0) {
                /* OpenAI: {"error":{...}}; Anthropic: {"type":"error","error":{...}}; an SSE error event's
                 * data is the latter. */
                e = au_json_get(root, "error");
                if (YAJL_IS_OBJECT(e)) {
                        type = au_json_get(e, "type");
                        code = au_json_get(e, "code");
                        msg = au_json_get(e, "message");
                        details = au_json_get(e, "details");
                } else if (YAJL_IS_STRING(e))
                        msg = e;
        }
        if (ret_msg && msg_size && YAJL_IS_STRING(msg))
                snprintf(ret_msg, msg_size, "%s", msg->u.string);

        /* Spend and quota first: a 429 that says so is never retried. */
        if (str_eq(type, "insufficient_quota") || str_eq(code, "insufficient_quota") ||
            str_eq(au_json_get(details, "error_code"), "enforced_spend_limit_reached") ||
            str_eq(code, "billing_hard_limit_reached") || status == 402)
                return FAB_ERR_QUOTA;
        /* Anthropic's types, which its SDKs trust over the status. */
        if (str_eq(type, "overloaded_error") || str_eq(code, "server_is_overloaded"))
                return FAB_ERR_OVERLOADED;
        if (str_eq(type, "rate_limit_error") || str_eq(code, "rate_limit_exceeded"))
                return FAB_ERR_RATE_LIMIT;
        if (str_eq(type, "api_error"))
                return FAB_ERR_SERVER;
        if (str_eq(type, "timeout_error"))
                return FAB_ERR_TIMEOUT;
        if (str_eq(type, "authentication_error") || str_eq(type, "permission_error"))
                return FAB_ERR_AUTH;
        if (str_eq(type, "not_found_error"))
                return FAB_ERR_NOT_FOUND;
        if (str_eq(type, "invalid_request_error") || str_eq(type, "request_too_large"))
                return status == 404 ? FAB_ERR_NOT_FOUND : FAB_ERR_REQUEST;

        switch (status) {
        case 408:
                return FAB_ERR_TIMEOUT;
        case 429:
                return FAB_ERR_RATE_LIMIT;
        case 529:
                return FAB_ERR_OVERLOADED;
        case 401:
        case 403:
                return FAB_ERR_AUTH;
        case 404:
                return FAB_ERR_NOT_FOUND;
        case 400:
        case 413:
        case 422:
                return FAB_ERR_REQUEST;
        }
        if (status >= 500)
                return FAB_ERR_SERVER;
        if (status == 0 && !body)
                return FAB_ERR_CONNECT;
        /* an error event in a stream whose type says nothing we know: let it be retried */
        if (status == 200)
                return FAB_ERR_STREAM_ERROR;
        return FAB_ERR_REQUEST;
}

int64_t fab_retry_after_ms(const char *retry_after, const char *retry_after_ms, uint64_t now_wall_ms) {
        char *end;

        if (retry_after_ms && *retry_after_ms) {
                errno = 0;
                double ms = strtod(retry_after_ms, &end);
                while (*end && isspace((unsigned char) *end))
                        end++;
                if (errno == 0 && end != retry_after_ms && *end == '\0' && isfinite(ms) && ms >= 0 &&
                    ms < 1e12)
                        return (int64_t) ceil(ms);
        }
        if (!retry_after || !*retry_after)
                return -1;
        while (isspace((unsigned char) *retry_after))
                retry_after++;
        if (isdigit((unsigned char) *retry_after)) {
                errno = 0;
                unsigned long long s = strtoull(retry_after, &end, 10);
                while (*end && isspace((unsigned char) *end))
                        end++;
                if (errno == 0 && *end == '\0' && s < 1000000000ULL)
                        return (int64_t) s * 1000;
        }
        /* The HTTP date forms; curl_getdate knows all three. */
        time_t t = curl_getdate(retry_after, NULL);
        if (t == (time_t) -1)
                return -1;
        int64_t at_ms = (int64_t) t * 1000;
        return at_ms > (int64_t) now_wall_ms ? at_ms - (int64_t) now_wall_ms : 0;
}

uint64_t fab_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, double jitter,
                        int64_t retry_after_ms) {
        uint64_t wait = base_ms;

        for (unsigned i = 1; i < attempt && wait < max_ms; i++)
                wait *= 2;
        if (wait > max_ms)
                wait = max_ms;
        if (jitter > 0 && jitter < 1)
                wait -= (uint64_t) ((double) wait * 0.25 * jitter);
        if (retry_after_ms >= 0 && (uint64_t) retry_after_ms > wait)
                wait = (uint64_t) retry_after_ms;
        return wait;
}
