/* SPDX-License-Identifier: MIT */
/*
 * fabric/call: the one retry loop. Each attempt is one HTTP request driven
 * through the fabric's curl multi handle (curl itself retries nothing and
 * follows no redirects); fabric/retry.c decides what an error means, this
 * file waits, cools providers down, falls back along the role's chain and
 * charges the budgets.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "common/clock.h"
#include "fabric/fabric-internal.h"

static const char *const outcome_names[] = {
        [FAB_OK] = "ok",
        [FAB_FAILED] = "failed",
        [FAB_BUDGET] = "budget_exceeded",
        [FAB_REJECTED] = "rejected",
        [FAB_UNAVAILABLE] = "unavailable",
        [FAB_STREAM_BROKE] = "stream_broke",
        [FAB_ABORTED] = "aborted",
};

const char *fab_outcome_name(fab_outcome o) {
        return o < ELEMENTSOF(outcome_names) ? outcome_names[o] : "unknown";
}

typedef struct attempt {
        fab_reply reply;
        long status;
        bool event_stream; /* Content-Type: text/event-stream */
        char retry_after[128];
        char retry_after_ms[64];
        uint64_t started_ms, last_byte_ms;
        bool got_body;
        bool timed_out; /* our own first-byte or idle deadline, or curl's */
        CURLcode curl_result;
} attempt;

static void copy_header(char *dst, size_t size, const char *v, size_t len) {
        while (len > 0 && (*v == ' ' || *v == '\t'))
                v++, len--;
        while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
                len--;
        len = MIN(len, size - 1);
        memcpy(dst, v, len);
        dst[len] = '\0';
}

static size_t on_header(char *buf, size_t size, size_t n, void *userdata) {
        attempt *a = userdata;
        size_t len = size * n;
        const char *colon = memchr(buf, ':', len);

        if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
                /* a new response (after a 100 Continue): forget the last one's headers */
                a->retry_after[0] = a->retry_after_ms[0] = '\0';
                a->event_stream = false;
                return len;
        }
        if (!colon)
                return len;
        size_t nlen = (size_t) (colon - buf);
        const char *v = colon + 1;
        size_t vlen = len - nlen - 1;
        if (nlen == 11 && strncasecmp(buf, "retry-after", 11) == 0)
                copy_header(a->retry_after, sizeof(a->retry_after), v, vlen);
        else if (nlen == 14 && strncasecmp(buf, "retry-after-ms", 14) == 0)
                copy_header(a->retry_after_ms, sizeof(a->retry_after_ms), v, vlen);
        else if (nlen == 12 && strncasecmp(buf, "content-type", 12) == 0) {
                char ct[128];
                copy_header(ct, sizeof(ct), v, vlen);
                a->event_stream = strncasecmp(ct, "text/event-stream", 17) == 0;
        }
        return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *userdata) {
        attempt *a = userdata;
        size_t len = size * n;

        a->got_body = true;
        a->last_byte_ms = au_now_ms();
        if (a->reply.streaming) {
                if (fab_sse_feed(&a->reply, buf, len) < 0)
                        return 0;
                /* an error event or a caller that has had enough ends the transfer at once */
                if (a->reply.error != FAB_ERR_NONE || a->reply.aborted || a->reply.terminal)
                        return a->reply.terminal && a->reply.error == FAB_ERR_NONE && !a->reply.aborted ? len
                                                                                                        : 0;
                return len;
        }
        if (au_buf_append(&a->reply.body, buf, len) < 0)
                return 0;
        return len;
}

/* Waits ms, in slices, ending early once the fabric is stopping (fab_stop). */
static void sleep_ms(const fab_fabric *f, uint64_t ms) {
        uint64_t end = au_now_ms() + ms;

        while (!atomic_load(&f->stopping)) {
                uint64_t now = au_now_ms();
                if (now >= end)
                        break;
                uint64_t slice = MIN(end - now, (uint64_t) 50);
                struct timespec ts = {.tv_sec = 0, .tv_nsec = (long) slice * 1000000L};
                nanosleep(&ts, NULL);
        }
}

/* The status is known once headers are in: the write callback asks curl for it. */
typedef struct body_ctx {
        attempt *a;
        CURL *easy;
} body_ctx;

static size_t on_body_ctx(char *buf, size_t size, size_t n, void *userdata) {
        body_ctx *c = userdata;
        if (c->a->status <= 0) {
                long st = 0;
                curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &st);
                c->a->status = st;
                c->a->reply.streaming = st >= 200 && st < 300 && c->a->event_stream;
        }
        return on_body(buf, size, n, c->a);
}

static void attempt_done(attempt *a) {
        fab_reply_done(&a->reply);
}

/* One HTTP request; fills a. Returns 0 when the transfer ran (whatever its outcome), or -ENOMEM. */
static int perform(const fab_fabric *f, const fab_provider *p, const char *body, attempt *a) {
        _cleanup_free_ char *url = NULL, *auth = NULL, *version = NULL;
        struct curl_slist *headers = NULL, *h;
        body_ctx ctx = {.a = a};
        CURLM *multi = NULL;
        CURL *easy;
        CURLcode cr = CURLE_OK;
        int running = 1, r = 0;

        if (asprintf(&url, "%s%s", p->base_url,
                     p->kind == FAB_OPENAI ? "/v1/chat/completions" : "/v1/messages") < 0)
                return -ENOMEM;
        /* a multi handle per request: calls run at once on several threads */
        multi = curl_multi_init();
        easy = curl_easy_init();
        if (!easy || !multi) {
                if (easy)
                        curl_easy_cleanup(easy);
                if (multi)
                        curl_multi_cleanup(multi);
                return -ENOMEM;
        }
        ctx.easy = easy;

        h = curl_slist_append(headers, "Content-Type: application/json");
        if (h)
                headers = h;
        if (a->reply.req->stream && (h = curl_slist_append(headers, "Accept: text/event-stream")))
                headers = h;
        if (p->kind == FAB_OPENAI) {
                if (p->key && asprintf(&auth, "Authorization: Bearer %s", p->key) < 0)
                        auth = NULL;
        } else {
                if (p->key && asprintf(&auth, "x-api-key: %s", p->key) < 0)
                        auth = NULL;
                if (asprintf(&version, "anthropic-version: %s", p->anthropic_version) >= 0 &&
                    (h = curl_slist_append(headers, version)))
                        headers = h;
        }
        if (auth && (h = curl_slist_append(headers, auth)))
                headers = h;
        /* Expect: 100-continue would add a round trip for nothing */
        if ((h = curl_slist_append(headers, "Expect:")))
                headers = h;

        curl_easy_setopt(easy, CURLOPT_URL, url);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(body));
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) p->timeout_ms);
        curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                         (long) MIN(p->first_byte_timeout_ms, p->timeout_ms));
        curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(easy, CURLOPT_HEADERDATA, a);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body_ctx);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, &ctx);
        curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");

        a->started_ms = au_now_ms();
        if (curl_multi_add_handle(multi, easy) != CURLM_OK) {
                r = -ENOMEM;
                goto out;
        }
        while (running) {
                CURLMsg *msg;
                int left;

                if (curl_multi_perform(multi, &running) != CURLM_OK)
                        break;
                while ((msg = curl_multi_info_read(multi, &left)))
                        if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy)
                                cr = msg->data.result;
                if (!running || atomic_load(&f->stopping))
                        break;
                uint64_t now = au_now_ms();
                /* slow first byte, or a stream gone silent: our deadlines, so the retry loop decides */
                if ((!a->got_body && now - a->started_ms > p->first_byte_timeout_ms) ||
                    (a->got_body && a->reply.streaming && now - a->last_byte_ms > p->idle_timeout_ms)) {
                        a->timed_out = true;
                        break;
                }
                curl_multi_poll(multi, NULL, 0, 50, NULL);
        }
        curl_multi_remove_handle(multi, easy);
        if (a->status <= 0) {
                long st = 0;
                curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &st);
                a->status = st;
        }
        if (cr == CURLE_OPERATION_TIMEDOUT)
                a->timed_out = true;
        a->curl_result = cr;
        if (a->reply.streaming)
                fab_sse_end(&a->reply);
out:
        curl_easy_cleanup(easy);
        curl_multi_cleanup(multi);
        curl_slist_free_all(headers);
        if (auth)
                OPENSSL_cleanse(auth, strlen(auth));
        return r;
}

/* What went wrong with an attempt, FAB_ERR_NONE when it answered. */
static fab_error_kind judge(attempt *a) {
        fab_reply *r = &a->reply;

        if (a->status >= 300 || (a->status > 0 && a->status < 200)) {
                fab_error_kind k = fab_error_classify(a->status, r->body.p, r->body.len, r->error_msg,
                                                      sizeof(r->error_msg));
                if (!r->error_msg[0])
                        snprintf(r->error_msg, sizeof(r->error_msg), "HTTP %ld", a->status);
                return k;
        }
        if (r->error != FAB_ERR_NONE)
                return r->error;
        if (a->timed_out) {
                snprintf(r->error_msg, sizeof(r->error_msg), "%s",
                         a->got_body ? "the stream went silent" : "no reply before the deadline");
                return FAB_ERR_TIMEOUT;
        }
        if (a->status == 0) {
                snprintf(r->error_msg, sizeof(r->error_msg), "%s", curl_easy_strerror(a->curl_result));
                return FAB_ERR_CONNECT;
        }
        if (r->streaming) {
                if (!r->terminal) {
                        snprintf(r->error_msg, sizeof(r->error_msg), "the stream ended without its %s",
                                 r->kind == FAB_OPENAI ? "[DONE]" : "message_stop");
                        return FAB_ERR_STREAM_CUT;
                }
                return FAB_ERR_NONE;
        }
        if (a->curl_result != CURLE_OK) {
                snprintf(r->error_msg, sizeof(r->error_msg), "%s", curl_easy_strerror(a->curl_result));
                return FAB_ERR_CONNECT;
        }
        if (r->kind == FAB_OPENAI)
                fab_wire_openai_body(r, r->body.p ? r->body.p : "", r->body.len);
        else
                fab_wire_anthropic_body(r, r->body.p ? r->body.p : "", r->body.len);
        return r->error;
}

/* A rough input token count: the body's bytes / 4, rounded up (tokens run 3-4 bytes of English). */
static uint64_t estimate_input_tokens(const char *body) {
        return (strlen(body) + 3) / 4;
}

static int budget_check(fab_fabric *f, const fab_request *req, double estimate, fab_result *ret) {
        const struct {
                fab_scope scope;
                const char *id, *name;
        } scopes[] = {{FAB_SCOPE_WORKFLOW, req->workflow, "workflow"}, {FAB_SCOPE_KEY, req->key, "key"}};

        for (size_t i = 0; i < ELEMENTSOF(scopes); i++) {
                fab_budget *b = fab_budget_find(f, scopes[i].scope, scopes[i].id, false);
                if (!b || b->limit < 0)
                        continue;
                if (b->spent >= b->limit) {
                        snprintf(ret->error, sizeof(ret->error),
                                 "%s %s has spent its budget: $%.6f of $%.6f", scopes[i].name, scopes[i].id,
                                 b->spent, b->limit);
                        return -1;
                }
                if (b->spent + estimate > b->limit) {
                        snprintf(ret->error, sizeof(ret->error),
                                 "%s %s's budget would be exceeded: spent $%.6f + estimate $%.6f > $%.6f",
                                 scopes[i].name, scopes[i].id, b->spent, estimate, b->limit);
                        return -1;
                }
        }
        return 0;
}

static void budget_charge(fab_fabric *f, const fab_request *req, double cost) {
        fab_budget *b;
        if ((b = fab_budget_find(f, FAB_SCOPE_WORKFLOW, req->workflow, true)))
                b->spent += cost;
        if ((b = fab_budget_find(f, FAB_SCOPE_KEY, req->key, true)))
                b->spent += cost;
}

static bool rate_limited(fab_provider *p, uint64_t now, uint64_t tokens) {
        if (now - p->window_start >= 60000) {
                p->window_start = now;
                p->window_requests = 0;
                p->window_tokens = 0;
        }
        return (p->rpm && p->window_requests >= p->rpm) || (p->tpm && p->window_tokens + tokens > p->tpm);
}

static void cool_down(fab_fabric *f, fab_provider *p, int64_t retry_after_ms) {
        uint64_t ms = p->cooldown_ms;
        if (retry_after_ms > 0 && (uint64_t) retry_after_ms > ms)
                ms = (uint64_t) retry_after_ms;
        if (ms == 0)
                return;
        p->cooldown_until = au_now_ms() + ms;
        fab_metrics_cooldown(f, p, true);
}

static bool cooling(fab_fabric *f, fab_provider *p, uint64_t now) {
        if (p->cooldown_until == 0)
                return false;
        if (now < p->cooldown_until)
                return true;
        p->cooldown_until = 0;
        fab_metrics_cooldown(f, p, false);
        return false;
}

/* Moves the answer out of the reply into the result. */
static int take_answer(fab_reply *r, fab_result *ret) {
        for (size_t i = 0; i < r->n_calls; i++)
                if (r->call_args[i].len > 0) {
                        free(r->calls[i].arguments);
                        r->calls[i].arguments = au_buf_steal(&r->call_args[i], NULL);
                        if (!r->calls[i].arguments)
                                return -ENOMEM;
                }
        ret->text = au_buf_steal(&r->text, NULL);
        if (!ret->text)
                return -ENOMEM;
        ret->calls = TAKE_PTR(r->calls);
        ret->n_calls = r->n_calls;
        r->n_calls = 0;
        snprintf(ret->stop_reason, sizeof(ret->stop_reason), "%s", r->stop_reason);
        return 0;
}

/* The outcome of a call the fabric's owner stopped (fab_stop). */
static int stopped(fab_result *ret) {
        ret->outcome = FAB_ABORTED;
        snprintf(ret->error, sizeof(ret->error), "the fabric is stopping: call abandoned");
        return 0;
}

void fab_stop(fab_fabric *f) {
        if (f)
                atomic_store(&f->stopping, true);
}

int fab_call(fab_fabric *f, const fab_request *req, fab_result *ret) {
        bool tried = false;
        int r;

        *ret = (fab_result){};
        if (!f || !req || req->role >= _FAB_ROLE_MAX || req->max_tokens == 0 || f->n_chain[req->role] == 0)
                return -EINVAL;
        ret->outcome = FAB_UNAVAILABLE;
        snprintf(ret->error, sizeof(ret->error),
                 "role %s: every provider is cooling down, excluded or at its rate limit",
                 fab_role_name(req->role));

        for (size_t e = req->start_entry; e < f->n_chain[req->role]; e++) {
                if (atomic_load(&f->stopping))
                        return stopped(ret);
                const fab_entry *entry = &f->chains[req->role][e];
                fab_provider *p = &f->providers[entry->provider];
                const fab_model *m = &p->models[entry->model];
                _cleanup_free_ char *body = NULL;
                int64_t retry_after = -1;
                uint64_t now = au_now_ms();

                if (req->exclude_provider && strcmp(req->exclude_provider, p->name) == 0)
                        continue;
                body = p->kind == FAB_OPENAI ? fab_wire_openai_request(m->name, req)
                                             : fab_wire_anthropic_request(m->name, req);
                if (!body)
                        return -ENOMEM;
                uint64_t in_tokens = estimate_input_tokens(body);
                fab_usage est_usage = {.input = in_tokens, .output = req->max_tokens};
                double estimate = fab_cost(&m->price, &est_usage);
                pthread_mutex_lock(&f->lock);
                if (budget_check(f, req, estimate, ret) < 0) {
                        pthread_mutex_unlock(&f->lock);
                        ret->outcome = FAB_BUDGET;
                        ret->estimate_usd = estimate;
                        return 0;
                }
                bool skip = cooling(f, p, now) || rate_limited(p, now, in_tokens + req->max_tokens);
                pthread_mutex_unlock(&f->lock);
                if (skip)
                        continue;
                if (tried)
                        ret->fallbacks++;
                tried = true;
                snprintf(ret->provider, sizeof(ret->provider), "%s", p->name);
                snprintf(ret->model, sizeof(ret->model), "%s", m->name);
                ret->entry = e;
                ret->estimate_usd = estimate;

                for (unsigned try = 0;; try++) {
                        attempt a = {.reply = {.kind = p->kind,
                                               .req = req,
                                               .on_event = p->kind == FAB_OPENAI
                                                                   ? fab_wire_openai_event
                                                                   : fab_wire_anthropic_event}};
                        a.reply.body = AU_BUF_INIT(FAB_REPLY_MAX_BYTES);
                        a.reply.text = AU_BUF_INIT(FAB_REPLY_MAX_BYTES);
                        a.reply.data = AU_BUF_INIT(FAB_REPLY_MAX_BYTES);

                        pthread_mutex_lock(&f->lock);
                        p->window_requests++;
                        p->window_tokens += in_tokens + req->max_tokens;
                        pthread_mutex_unlock(&f->lock);
                        ret->attempts++;
                        r = perform(f, p, body, &a);
                        if (r < 0) {
                                attempt_done(&a);
                                return r;
                        }
                        if (atomic_load(&f->stopping)) {
                                attempt_done(&a);
                                return stopped(ret);
                        }
                        fab_error_kind kind = a.reply.aborted ? FAB_ERR_NONE : judge(&a);
                        pthread_mutex_lock(&f->lock);
                        fab_metrics_attempt(f, p, m->name, kind, au_now_ms() - a.started_ms);
                        pthread_mutex_unlock(&f->lock);
                        fab_reply_usage(&a.reply);

                        if (a.reply.aborted || kind == FAB_ERR_NONE || a.reply.first_byte) {
                                /* an answer, or content already handed on: no retry, no fallback from here
                                 */
                                ret->usage = a.reply.usage;
                                ret->cost_usd = a.reply.usage.reported ? fab_cost(&m->price, &a.reply.usage)
                                                                       : estimate;
                                pthread_mutex_lock(&f->lock);
                                budget_charge(f, req, ret->cost_usd);
                                fab_metrics_usage(f, p, m->name, &a.reply.usage, ret->cost_usd);
                                pthread_mutex_unlock(&f->lock);
                                if (a.reply.aborted) {
                                        ret->outcome = FAB_ABORTED;
                                        snprintf(ret->error, sizeof(ret->error),
                                                 "the caller stopped the stream");
                                } else if (kind != FAB_ERR_NONE) {
                                        ret->outcome = FAB_STREAM_BROKE;
                                        ret->last_error = kind;
                                        snprintf(ret->error, sizeof(ret->error),
                                                 "%s/%s: after the first byte, %s (%s): not retried",
                                                 p->name, m->name, a.reply.error_msg,
                                                 fab_error_kind_name(kind));
                                } else {
                                        ret->outcome = FAB_OK;
                                        ret->error[0] = '\0';
                                }
                                r = take_answer(&a.reply, ret);
                                attempt_done(&a);
                                return r;
                        }

                        ret->last_error = kind;
                        snprintf(ret->error, sizeof(ret->error), "%s/%s: %s (%s%s%ld)", p->name, m->name,
                                 a.reply.error_msg, fab_error_kind_name(kind), a.status > 0 ? ", HTTP " : "",
                                 a.status > 0 ? a.status : 0L);
                        retry_after = fab_retry_after_ms(a.retry_after, a.retry_after_ms, au_wall_ms());
                        attempt_done(&a);

                        if (kind == FAB_ERR_REQUEST) {
                                ret->outcome = FAB_REJECTED;
                                return 0;
                        }
                        if (!fab_error_retryable(kind) || try >= p->max_retries)
                                break;
                        if (retry_after >= 0 && (uint64_t) retry_after > f->max_retry_after_ms)
                                break; /* longer than we wait: cool down and fall back now */
                        double jitter = (double) (au_now_us() % 1000) / 1000.0;
                        uint64_t wait = fab_backoff_ms(try + 1, f->backoff_base_ms, f->backoff_max_ms,
                                                       jitter, retry_after);
                        sleep_ms(f, (uint64_t) ((double) wait * f->time_scale));
                }
                pthread_mutex_lock(&f->lock);
                cool_down(f, p, retry_after);
                pthread_mutex_unlock(&f->lock);
                ret->outcome = FAB_FAILED;
        }
        return 0;
}

void fab_result_done(fab_result *r) {
        free(r->text);
        r->text = NULL;
        for (size_t i = 0; i < r->n_calls; i++) {
                free(r->calls[i].id);
                free(r->calls[i].name);
                free(r->calls[i].arguments);
        }
        free(r->calls);
        r->calls = NULL;
        r->n_calls = 0;
}

uint64_t fab_cooldown_until(const fab_fabric *f, const char *provider) {
        fab_provider *p = fab_provider_find(f, provider);
        uint64_t until;

        if (!p)
                return 0;
        pthread_mutex_lock((pthread_mutex_t *) &f->lock);
        until = p->cooldown_until > au_now_ms() ? p->cooldown_until : 0;
        pthread_mutex_unlock((pthread_mutex_t *) &f->lock);
        return until;
}

int fab_cooldown_clear(fab_fabric *f, const char *provider) {
        fab_provider *p = fab_provider_find(f, provider);
        if (!p)
                return -ENOENT;
        pthread_mutex_lock(&f->lock);
        p->cooldown_until = 0;
        fab_metrics_cooldown(f, p, false);
        pthread_mutex_unlock(&f->lock);
        return 0;
}

char *fab_metrics_render(fab_fabric *f, const au_metrics *m, size_t *ret_len) {
        char *text;

        pthread_mutex_lock(&f->lock);
        text = au_metrics_render(m, ret_len);
        pthread_mutex_unlock(&f->lock);
        return text;
}
