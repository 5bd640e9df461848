/* SPDX-License-Identifier: MIT */
/*
 * fabric/reply: a provider's reply as it is read, and the server-sent events
 * parser streams go through (the WHATWG EventSource rules: "event:" and
 * "data:" fields, a blank line dispatches, ":" lines are comments, CR, LF
 * or CRLF end a line).
 */
#include <errno.h>
#include <string.h>

#include "fabric/fabric-internal.h"

void fab_reply_done(fab_reply *r) {
        au_buf_done(&r->body);
        au_buf_done(&r->line);
        au_buf_done(&r->data);
        au_buf_done(&r->text);
        for (size_t i = 0; i < r->n_calls; i++) {
                free(r->calls[i].id);
                free(r->calls[i].name);
                free(r->calls[i].arguments);
                au_buf_done(&r->call_args[i]);
        }
        free(r->calls);
        free(r->call_args);
        r->calls = NULL;
        r->call_args = NULL;
        r->n_calls = 0;
}

void fab_reply_text(fab_reply *r, const char *s, size_t len) {
        if (len == 0 || r->error != FAB_ERR_NONE)
                return;
        if (au_buf_append(&r->text, s, len) < 0) {
                r->error = FAB_ERR_PROTOCOL;
                snprintf(r->error_msg, sizeof(r->error_msg), "the answer is over %d bytes",
                         FAB_REPLY_MAX_BYTES);
                return;
        }
        r->first_byte = true;
        if (r->req && r->req->on_delta && !r->aborted &&
            r->req->on_delta(r->req->delta_userdata, s, len) != 0)
                r->aborted = true;
}

fab_tool_call *fab_reply_call(fab_reply *r, size_t i) {
        if (i >= 128)
                return NULL;
        if (i >= r->n_calls) {
                fab_tool_call *c = realloc(r->calls, (i + 1) * sizeof(*c));
                if (!c)
                        return NULL;
                r->calls = c;
                au_buf *a = realloc(r->call_args, (i + 1) * sizeof(*a));
                if (!a)
                        return NULL;
                r->call_args = a;
                for (size_t k = r->n_calls; k <= i; k++) {
                        r->calls[k] = (fab_tool_call){};
                        r->call_args[k] = AU_BUF_INIT(1024 * 1024);
                }
                r->n_calls = i + 1;
        }
        /* a tool call is content too: after it, no retry */
        r->first_byte = true;
        return &r->calls[i];
}

void fab_reply_usage(fab_reply *r) {
        if (!r->w_seen)
                return;
        if (r->kind == FAB_OPENAI)
                fab_usage_openai(r->w_in, r->w_cached, r->w_out, &r->usage);
        else
                fab_usage_anthropic(r->w_in, r->w_cache_write, r->w_cached, r->w_out, &r->usage);
}

static void dispatch(fab_reply *r) {
        if (r->data.len > 0 || r->event[0]) {
                const char *d = r->data.p ? r->data.p : "";
                size_t n = r->data.len;
                /* the last data line's newline is not part of the data */
                if (n > 0 && d[n - 1] == '\n')
                        n--;
                if (r->on_event)
                        r->on_event(r, r->event, d, n);
        }
        au_buf_clear(&r->data);
        r->event[0] = '\0';
}

static void field(fab_reply *r, const char *line, size_t len) {
        const char *colon = memchr(line, ':', len);
        size_t nlen = colon ? (size_t) (colon - line) : len;
        const char *val = colon ? colon + 1 : line + len;
        size_t vlen = colon ? len - nlen - 1 : 0;

        if (len == 0) {
                dispatch(r);
                return;
        }
        if (nlen == 0) /* a comment (": OPENROUTER PROCESSING", keep-alives) */
                return;
        if (vlen > 0 && *val == ' ')
                val++, vlen--;
        if (nlen == 4 && memcmp(line, "data", 4) == 0) {
                if (au_buf_append(&r->data, val, vlen) < 0 || au_buf_append(&r->data, "\n", 1) < 0) {
                        r->error = FAB_ERR_PROTOCOL;
                        snprintf(r->error_msg, sizeof(r->error_msg), "a stream event is too big");
                }
        } else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
                size_t n = MIN(vlen, sizeof(r->event) - 1);
                memcpy(r->event, val, n);
                r->event[n] = '\0';
        }
}

int fab_sse_feed(fab_reply *r, const char *buf, size_t len) {
        for (size_t i = 0; i < len; i++) {
                char c = buf[i];
                bool after_cr = r->sse_cr;
                r->sse_cr = false;
                if (c == '\n' && after_cr) /* the LF of a CRLF whose CR ended the line already */
                        continue;
                if (c == '\r' || c == '\n') {
                        field(r, r->line.p ? r->line.p : "", r->line.len);
                        au_buf_clear(&r->line);
                        r->sse_cr = c == '\r';
                        continue;
                }
                if (r->line.len >= 1024 * 1024 || au_buf_append(&r->line, &c, 1) < 0) {
                        r->error = FAB_ERR_PROTOCOL;
                        snprintf(r->error_msg, sizeof(r->error_msg), "a stream line is over 1 MiB");
                        return -E2BIG;
                }
        }
        return 0;
}

void fab_sse_end(fab_reply *r) {
        /* An event without its blank line is dropped, as EventSource does: a terminal event cut in half
         * does not count. */
        au_buf_clear(&r->line);
        au_buf_clear(&r->data);
        r->event[0] = '\0';
}
