/* SPDX-License-Identifier: MIT */
/* What every group of fleet.c uses: Redis, the results stream, HTTP, raw requests, liveness. */
#include "adversarial/fleet-internal.h"

static long long node_pttl(fleet *f);

/* Byte sequences that are not UTF-8: a byte that never occurs, an overlong '/', a surrogate, past U+10FFFF.
 */
const fleet_bytes fleet_bad_utf8[FLEET_BAD_UTF8_N] = {
        {"0xff byte", "\xff\xfe"},
        {"overlong '/'", "\xc0\xaf"
                         "etc"},
        {"surrogate", "\xed\xa0\x80"},
        {"over U+10FFFF", "\xf4\x90\x80\x80"},
};

/* ---- small helpers -------------------------------------------------------------- */

/* A fixed wait of ms at the default attack time, grown with --attack-timeout (never shrunk). */
uint64_t fleet_scaled(const fleet *f, uint64_t ms) {
        return f->timeout_ms > DEFAULT_TIMEOUT_MS ? ms * f->timeout_ms / DEFAULT_TIMEOUT_MS : ms;
}

uint64_t fleet_remaining_ms(const fleet *f) {
        uint64_t now = au_now_ms();
        return f->deadline > now ? f->deadline - now : 0;
}

/* Appends to buf (a NUL-terminated string of size bytes), "; " between parts, truncating with "...". */
_printf_(3, 4) void fleet_add(char *buf, size_t size, const char *fmt, ...) {
        size_t n = strlen(buf);
        va_list ap;

        if (n + 4 >= size)
                return;
        if (n > 0) {
                snprintf(buf + n, size - n, "; ");
                n += 2;
        }
        va_start(ap, fmt);
        int k = vsnprintf(buf + n, size - n, fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t) k >= size - n && size > 4)
                memcpy(buf + size - 4, "...", 4);
}

_printf_(3, 4) void fleet_set_verdict(adv_row *row, adv_verdict v, const char *fmt, ...) {
        va_list ap;

        row->verdict = v;
        va_start(ap, fmt);
        int k = vsnprintf(row->observed, sizeof(row->observed), fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t) k >= sizeof(row->observed))
                memcpy(row->observed + sizeof(row->observed) - 4, "...", 4);
}

/* Printable ASCII only: the rows go into TAP, JSON and markdown as they are. */
void fleet_printable(char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f)
                        *s = '?';
}

/* A short printable excerpt of untrusted bytes, for observed. */
const char *fleet_excerpt(char buf[static 96], const char *s, size_t len) {
        size_t n = MIN(len, (size_t) 80), k = 0;

        for (size_t i = 0; i < n; i++)
                buf[k++] = (unsigned char) s[i] < 0x20 || (unsigned char) s[i] >= 0x7f ? '?' : s[i];
        if (len > n) {
                memcpy(buf + k, "...", 3);
                k += 3;
        }
        buf[k] = '\0';
        return buf;
}

bool fleet_contains(const char *haystack, const char *needle) {
        return haystack && needle && strstr(haystack, needle);
}

/* ---- strict JSON ---------------------------------------------------------------------
 * yajl's own parser with its defaults: one document, no raw control
 * characters (so no raw NUL), no comments, no trailing data; and, since
 * yajl only checks the shape of UTF-8 sequences, au_utf8_valid() over the
 * whole text (overlongs, surrogates, past U+10FFFF). It does not recurse;
 * depth is bounded here all the same. It also keeps the decoded bytes of the
 * first string under each of up to two keys (NUL bytes included), which a
 * yajl tree would cut.
 */

void fleet_jcheck_done(jcheck *j) {
        free(j->value[0]);
        free(j->value[1]);
}

static int jc_scalar(void *ctx) {
        ((jcheck *) ctx)->at = -1;
        return 1;
}
static int jc_bool(void *ctx, int b) {
        return jc_scalar(ctx);
}
static int jc_number(void *ctx, const char *s, size_t len) {
        return jc_scalar(ctx);
}
static int jc_string(void *ctx, const unsigned char *s, size_t len) {
        jcheck *j = ctx;
        if (j->at >= 0 && !j->value[j->at]) {
                j->value[j->at] = malloc(len + 1);
                if (!j->value[j->at])
                        return 0;
                memcpy(j->value[j->at], s, len);
                j->value[j->at][len] = '\0';
                j->value_len[j->at] = len;
        }
        j->at = -1;
        return 1;
}
static int jc_key(void *ctx, const unsigned char *s, size_t len) {
        jcheck *j = ctx;
        j->at = -1;
        for (int i = 0; i < 2; i++)
                if (j->target[i] && strlen(j->target[i]) == len && memcmp(j->target[i], s, len) == 0)
                        j->at = i;
        return 1;
}
static int jc_open(void *ctx) {
        jcheck *j = ctx;
        j->at = -1;
        if (++j->depth > JSON_CHECK_DEPTH) {
                j->too_deep = true;
                return 0;
        }
        return 1;
}
static int jc_close(void *ctx) {
        ((jcheck *) ctx)->depth--;
        return 1;
}

static const yajl_callbacks jc_callbacks = {
        .yajl_null = jc_scalar,
        .yajl_boolean = jc_bool,
        .yajl_number = jc_number,
        .yajl_string = jc_string,
        .yajl_start_map = jc_open,
        .yajl_map_key = jc_key,
        .yajl_end_map = jc_close,
        .yajl_start_array = jc_open,
        .yajl_end_array = jc_close,
};

/* True when s[0..len) is one strictly valid JSON document; otherwise why says what is wrong. */
bool fleet_json_strict(const char *s, size_t len, jcheck *j, char *why, size_t size) {
        jcheck scratch = {0};
        if (!j)
                j = &scratch;
        j->at = -1;
        if (!au_utf8_valid(s, len)) {
                snprintf(why, size, "not valid UTF-8");
                return false;
        }
        yajl_handle h = yajl_alloc(&jc_callbacks, NULL, j);
        if (!h) {
                snprintf(why, size, "out of memory");
                return false;
        }
        yajl_status st = yajl_parse(h, (const unsigned char *) s, len);
        if (st == yajl_status_ok)
                st = yajl_complete_parse(h);
        if (st != yajl_status_ok) {
                if (j->too_deep)
                        snprintf(why, size, "nested deeper than %d levels", JSON_CHECK_DEPTH);
                else {
                        unsigned char *e = yajl_get_error(h, 0, (const unsigned char *) s, len);
                        snprintf(why, size, "%s", e ? (const char *) e : "parse error");
                        yajl_free_error(h, e);
                        why[strcspn(why, "\n")] = '\0';
                }
        }
        yajl_free(h);
        if (j == &scratch)
                fleet_jcheck_done(&scratch);
        return st == yajl_status_ok;
}

/* ---- Redis -------------------------------------------------------------------------- */

void fleet_redis_close(fleet *f) {
        if (f->rc)
                redisFree(f->rc);
        f->rc = NULL;
}

/* The --redis URL through memory/redis.c's connector; the password is never shown. */
int fleet_redis_connect(fleet *f) {
        au_error err = {0};
        int r = mem_redis_connect(f->t->redis_url, 5000, REDIS_TIMEOUT_MS, &f->rc, &err);

        if (r < 0) {
                snprintf(f->redis_err, sizeof(f->redis_err), "%.150s", err.msg);
                f->rc = NULL;
        }
        return r;
}

/* One command, binary-safe; NULL (with f->redis_err) when Redis did not answer. */
redisReply *fleet_redis_cmd(fleet *f, int argc, const char **argv, const size_t *lens) {
        if (!f->rc && fleet_redis_connect(f) < 0)
                return NULL;
        redisReply *r = redisCommandArgv(f->rc, argc, argv, lens);
        if (!r) {
                snprintf(f->redis_err, sizeof(f->redis_err), "Redis: %s", f->rc->errstr);
                fleet_redis_close(f);
        } else if (r->type == REDIS_REPLY_ERROR)
                snprintf(f->redis_err, sizeof(f->redis_err), "Redis: %.140s", r->str ? r->str : "error");
        return r;
}

/* rcmd with C strings, NULL-terminated. */
redisReply *fleet_redis_cmds(fleet *f, const char *a0, ...) {
        const char *argv[16];
        int argc = 0;
        va_list ap;

        argv[argc++] = a0;
        va_start(ap, a0);
        for (const char *s; argc < (int) ELEMENTSOF(argv) && (s = va_arg(ap, const char *));)
                argv[argc++] = s;
        va_end(ap);
        return fleet_redis_cmd(f, argc, argv, NULL);
}

bool fleet_is_str(const redisReply *r) {
        return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->str;
}

/* Stream ids "ms-seq": <0, 0, >0. Malformed ones sort first. */
static int id_cmp(const char *a, const char *b) {
        unsigned long long am = 0, as = 0, bm = 0, bs = 0;
        sscanf(a, "%llu-%llu", &am, &as);
        sscanf(b, "%llu-%llu", &bm, &bs);
        return am != bm ? (am < bm ? -1 : 1) : as != bs ? (as < bs ? -1 : 1) : 0;
}

/*
 * XADD to the node's jobs stream of argc field/value strings after "XADD key *"
 * (argv[0..2] are filled here; lens NULL: C strings); the entry id into entry,
 * remembered for fleet_drop_entries().
 */
int fleet_xadd_argv(fleet *f, int argc, const char **argv, size_t *lens, char entry[static 64]) {
        argv[0] = "XADD";
        argv[1] = f->jobs_key;
        argv[2] = "*";
        if (lens) {
                lens[0] = 4;
                lens[1] = strlen(f->jobs_key);
                lens[2] = 1;
        }
        redisReply *r = fleet_redis_cmd(f, argc, argv, lens);
        int ret = -EIO;

        if (fleet_is_str(r) && r->len < 64) {
                snprintf(entry, 64, "%s", r->str);
                (void) au_strv_push(&f->entries, &f->n_entries, entry); /* best effort: dropped at the end */
                ret = 0;
        }
        if (r)
                freeReplyObject(r);
        return ret;
}

/* XADD of one field to the node's jobs stream; the entry id into entry. */
int fleet_xadd(fleet *f, const char *field, const char *value, size_t len, char entry[static 64]) {
        const char *argv[] = {NULL, NULL, NULL, field, value};
        size_t lens[] = {0, 0, 0, strlen(field), len};
        return fleet_xadd_argv(f, 5, argv, lens, entry);
}

/* The last entry of the results stream (or 0-0): results after it are new. */
int fleet_mark_results(fleet *f) {
        redisReply *r = fleet_redis_cmds(f, "XREVRANGE", MEM_STREAM_RESULTS, "+", "-", "COUNT", "1", NULL);
        int ret = -EIO;

        if (r && r->type == REDIS_REPLY_ARRAY) {
                snprintf(f->cursor, sizeof(f->cursor), "0-0");
                if (r->elements > 0 && r->element[0]->type == REDIS_REPLY_ARRAY &&
                    r->element[0]->elements > 0 && fleet_is_str(r->element[0]->element[0]))
                        snprintf(f->cursor, sizeof(f->cursor), "%s", r->element[0]->element[0]->str);
                ret = 0;
        }
        if (r)
                freeReplyObject(r);
        return ret;
}

/* The group's last delivered entry and whether entry is still pending. -EIO when Redis cannot say. */
static int entry_state(fleet *f, const char *entry, bool *delivered, bool *pending) {
        redisReply *r = fleet_redis_cmds(f, "XINFO", "GROUPS", f->jobs_key, NULL);
        int ret = -EIO;

        *delivered = *pending = false;
        if (r && r->type == REDIS_REPLY_ARRAY)
                for (size_t i = 0; i < r->elements; i++) {
                        redisReply *g = r->element[i];
                        bool ours = false;
                        const char *last = NULL;
                        if (g->type != REDIS_REPLY_ARRAY)
                                continue;
                        for (size_t k = 0; k + 1 < g->elements; k += 2) {
                                if (!fleet_is_str(g->element[k]))
                                        continue;
                                if (strcmp(g->element[k]->str, "name") == 0 &&
                                    fleet_is_str(g->element[k + 1]))
                                        ours = strcmp(g->element[k + 1]->str, MEM_JOBS_GROUP) == 0;
                                if (strcmp(g->element[k]->str, "last-delivered-id") == 0 &&
                                    fleet_is_str(g->element[k + 1]))
                                        last = g->element[k + 1]->str;
                        }
                        if (ours && last) {
                                *delivered = id_cmp(entry, last) <= 0;
                                ret = 0;
                        }
                }
        if (r)
                freeReplyObject(r);
        if (ret < 0)
                return ret;
        r = fleet_redis_cmds(f, "XPENDING", f->jobs_key, MEM_JOBS_GROUP, entry, entry, "1", NULL);
        if (r && r->type == REDIS_REPLY_ARRAY)
                *pending = r->elements > 0;
        else
                ret = -EIO;
        if (r)
                freeReplyObject(r);
        return ret;
}

/* Whether the node has read and acknowledged entry, waiting up to wait_ms. */
bool fleet_entry_acked(fleet *f, const char *entry, uint64_t wait_ms) {
        uint64_t until = au_now_ms() + wait_ms;
        for (;;) {
                bool delivered, pending;
                if (entry_state(f, entry, &delivered, &pending) == 0 && delivered && !pending)
                        return true;
                if (au_now_ms() >= until)
                        return false;
                au_sleep_ms(100);
        }
}

/* Deletes the attack's entries the node has answered (acknowledged); others stay. */
void fleet_drop_entries(fleet *f) {
        for (size_t i = 0; i < f->n_entries; i++) {
                bool delivered, pending;
                if (entry_state(f, f->entries[i], &delivered, &pending) == 0 && delivered && !pending) {
                        redisReply *r = fleet_redis_cmds(f, "XDEL", f->jobs_key, f->entries[i], NULL);
                        if (r)
                                freeReplyObject(r);
                }
        }
        f->entries = au_strv_free(f->entries);
        f->n_entries = 0;
}

/* ---- results ------------------------------------------------------------------------- */

want *fleet_want_add(wants *w, const char *id, const char *entry) {
        want *v = realloc(w->v, (w->n + 1) * sizeof(*v));
        if (!v)
                return NULL;
        w->v = v;
        v += w->n++;
        *v = (want){0};
        snprintf(v->id, sizeof(v->id), "%s", id ? id : "");
        snprintf(v->entry, sizeof(v->entry), "%s", entry ? entry : "");
        return v;
}

void fleet_wants_done(wants *w) {
        for (size_t i = 0; i < w->n; i++)
                free(w->v[i].json);
        free(w->v);
        *w = (wants){0};
}

static void take_result(wants *w, const char *json, size_t len) {
        _cleanup_(sbx_result_freep) sbx_result *res = NULL;
        au_error err = {0};

        if (sbx_result_from_json(json, len, &res, &err) < 0 || !res->id)
                return;
        for (size_t i = 0; i < w->n; i++) {
                want *x = &w->v[i];
                if (!(x->id[0] && strcmp(res->id, x->id) == 0) &&
                    !(x->entry[0] && strcmp(res->id, x->entry) == 0))
                        continue;
                x->count++;
                if (!x->json) {
                        x->json = malloc(len + 1);
                        if (x->json) {
                                memcpy(x->json, json, len);
                                x->json[len] = '\0';
                                x->len = len;
                        }
                } else if (x->len != len || memcmp(x->json, json, len) != 0)
                        x->differ = true;
                return;
        }
}

static bool all_answered(const wants *w) {
        for (size_t i = 0; i < w->n; i++)
                if (w->v[i].count == 0)
                        return false;
        return true;
}

/*
 * Reads the results stream from f->cursor until every wanted job has a
 * result and linger_ms more have passed (to see duplicates), or the attack's
 * deadline, or the node's heartbeat key is gone. Returns 0, or -EIO when
 * Redis failed (f->redis_err).
 */
int fleet_collect(fleet *f, wants *w, uint64_t linger_ms) {
        uint64_t settle = 0, beat_check = au_now_ms() + 1000;

        for (;;) {
                uint64_t now = au_now_ms();
                /* A node that is gone answers nothing: no point waiting for the deadline. */
                if (now >= beat_check) {
                        if (node_pttl(f) == -2)
                                return 0;
                        beat_check = now + 1000;
                }
                if (all_answered(w)) {
                        if (!settle)
                                settle = now + linger_ms;
                        if (now >= settle)
                                return 0;
                }
                if (now >= f->deadline)
                        return 0;
                uint64_t block = MIN(f->deadline - now, (uint64_t) 500);
                if (settle)
                        block = MIN(block, settle > now ? settle - now : 1);
                char bl[24];
                snprintf(bl, sizeof(bl), "%" PRIu64, MAX(block, (uint64_t) 1));
                redisReply *r = fleet_redis_cmds(f, "XREAD", "COUNT", "200", "BLOCK", bl, "STREAMS",
                                                 MEM_STREAM_RESULTS, f->cursor, NULL);
                if (!r)
                        return -EIO;
                if (r->type == REDIS_REPLY_ERROR) {
                        freeReplyObject(r);
                        return -EIO;
                }
                if (r->type == REDIS_REPLY_ARRAY)
                        for (size_t s = 0; s < r->elements; s++) {
                                redisReply *st = r->element[s];
                                if (st->type != REDIS_REPLY_ARRAY || st->elements < 2 ||
                                    st->element[1]->type != REDIS_REPLY_ARRAY)
                                        continue;
                                redisReply *entries = st->element[1];
                                for (size_t e = 0; e < entries->elements; e++) {
                                        redisReply *en = entries->element[e];
                                        if (en->type != REDIS_REPLY_ARRAY || en->elements < 2 ||
                                            !fleet_is_str(en->element[0]))
                                                continue;
                                        snprintf(f->cursor, sizeof(f->cursor), "%s", en->element[0]->str);
                                        redisReply *kv = en->element[1];
                                        if (kv->type != REDIS_REPLY_ARRAY)
                                                continue;
                                        for (size_t k = 0; k + 1 < kv->elements; k += 2)
                                                if (fleet_is_str(kv->element[k]) &&
                                                    strcmp(kv->element[k]->str, MEM_FIELD_RESULT) == 0 &&
                                                    kv->element[k + 1]->type == REDIS_REPLY_STRING)
                                                        take_result(w, kv->element[k + 1]->str,
                                                                    kv->element[k + 1]->len);
                                }
                        }
                freeReplyObject(r);
        }
}

/* ---- the node's liveness -------------------------------------------------------------- */

static long long node_pttl(fleet *f) {
        redisReply *r = fleet_redis_cmds(f, "PTTL", f->node_key, NULL);
        long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -3;
        if (r)
                freeReplyObject(r);
        return v;
}

int fleet_node_started_at(fleet *f, char *out, size_t size) {
        redisReply *r = fleet_redis_cmds(f, "HGET", f->node_key, "started_at", NULL);
        int ret = fleet_is_str(r) ? 0 : -ENOENT;
        if (ret == 0)
                snprintf(out, size, "%s", r->str);
        if (r)
                freeReplyObject(r);
        return ret;
}

/* The heartbeat key is refreshed again (a beat after now), by the same life of the daemon. */
bool fleet_node_alive(fleet *f, char *why, size_t size) {
        char started[64];
        long long p0 = node_pttl(f);
        uint64_t wait = fleet_scaled(f, HEARTBEAT_WAIT_MS), until = au_now_ms() + wait;

        if (p0 == -3) {
                snprintf(why, size, "%s", f->redis_err);
                return false;
        }
        if (p0 <= 0) {
                snprintf(why, size, "its heartbeat %.100s is gone", f->node_key);
                return false;
        }
        for (;;) {
                au_sleep_ms(100);
                long long p = node_pttl(f);
                if (p <= 0) {
                        snprintf(why, size, "its heartbeat %.100s is gone", f->node_key);
                        return false;
                }
                if (p > p0)
                        break;
                p0 = p;
                if (au_now_ms() >= until) {
                        snprintf(why, size, "its heartbeat was not refreshed for %" PRIu64 " ms", wait);
                        return false;
                }
        }
        if (fleet_node_started_at(f, started, sizeof(started)) < 0) {
                snprintf(why, size, "its heartbeat has no started_at");
                return false;
        }
        if (strcmp(started, f->started_at) != 0) {
                snprintf(why, size, "the node restarted (started_at %.30s, was %.30s)", started,
                         f->started_at);
                return false;
        }
        return true;
}

/* ---- HTTP ------------------------------------------------------------------------------ */

static size_t on_read(char *out, size_t max, void *userdata) {
        gen *g = userdata;
        size_t k = 0;

        while (k < max && g->off < g->total) {
                if (g->off < g->head_len)
                        out[k] = g->head[g->off];
                else if (g->off == g->total - 2)
                        out[k] = '"';
                else if (g->off == g->total - 1)
                        out[k] = '}';
                else
                        out[k] = 'A';
                k++;
                g->off++;
        }
        return k;
}

/* q as the shared client's request; g holds a generated body's state. */
api_request fleet_request_of(const fleet *f, const http_req *q, gen *g, unsigned timeout_ms) {
        api_request r = {.method = q->method,
                         .path = q->path,
                         .bearer = q->key,
                         .authorization = q->auth,
                         .body = q->body,
                         .len = q->len,
                         .timeout_ms = (long) timeout_ms,
                         .max_reply = HTTP_MAX_REPLY,
                         .truncate = true};
        if (q->gen_size) {
                g->head_len = (size_t) snprintf(
                        g->head, sizeof(g->head),
                        "{\"name\":\"%s-big\",\"steps\":[{\"id\":\"a\",\"kind\":\"approval\"}],"
                        "\"description\":\"",
                        f->prefix);
                g->total = q->gen_size;
                g->off = 0;
                r.body_fn = on_read;
                r.body_data = g;
                r.body_size = q->gen_size;
                r.chunked = q->chunked;
        }
        return r;
}

/* One request; fills ret (status 0 and error when nothing was answered). A 429 is waited out unless
 * no_retry. */
void fleet_http(fleet *f, const http_req *q, api_reply *ret) {
        for (;;) {
                unsigned timeout = q->timeout_ms
                                           ? q->timeout_ms
                                           : (unsigned) MIN(fleet_remaining_ms(f), fleet_scaled(f, 15000));
                gen g = {0};

                *ret = (api_reply){0};
                if (timeout == 0) {
                        snprintf(ret->error, sizeof(ret->error), "out of time");
                        return;
                }
                api_request r = fleet_request_of(f, q, &g, timeout);
                if (api_send(f->api, &r, ret) == -ENOMEM && !ret->error[0])
                        snprintf(ret->error, sizeof(ret->error), "out of memory");
                if (ret->status != 429 || q->no_retry)
                        return;
                uint64_t wait = 1000u * MIN(ret->retry_after ? ret->retry_after : 1u, 10u);
                if (wait + 1000 >= fleet_remaining_ms(f))
                        return;
                api_reply_done(ret);
                au_sleep_ms(wait);
        }
}

bool fleet_api_error_of(const api_reply *r, api_error *e) {
        _cleanup_json_ yajl_val tree = NULL;
        const char *s;

        *e = (api_error){0};
        if (!r->body || au_json_parse(r->body, r->len, HTTP_MAX_REPLY, &tree, NULL) < 0)
                return false;
        yajl_val err = au_json_get(tree, "error");
        if (au_json_get_string(au_json_get(err, "code"), "code", &s, NULL) == 0)
                snprintf(e->code, sizeof(e->code), "%s", s);
        if (au_json_get_string(au_json_get(err, "field"), "field", &s, NULL) == 0)
                snprintf(e->field, sizeof(e->field), "%s", s);
        if (au_json_get_string(au_json_get(err, "message"), "message", &s, NULL) == 0)
                snprintf(e->message, sizeof(e->message), "%s", s);
        return e->code[0] != '\0';
}

/*
 * Checks one answer: the status, the error code and (names, NULL-terminated,
 * may be NULL) words the error's field or message must hold. Appends to obs
 * (good) or bad. Returns whether it matched.
 */
bool fleet_check_error(const char *label, const api_reply *r, long status, const char *code,
                       const char *const *names, char *obs, size_t obs_size, char *bad, size_t bad_size) {
        api_error e;
        char ex[96];

        if (r->status == 0) {
                fleet_add(bad, bad_size, "%s: no answer (%s)", label, r->error);
                return false;
        }
        bool parsed = fleet_api_error_of(r, &e);
        if (r->status != status || !parsed || strcmp(e.code, code) != 0) {
                fleet_add(bad, bad_size, "%s: %ld %s, not %ld %s", label, r->status,
                          parsed ? e.code : fleet_excerpt(ex, r->body ? r->body : "", r->len), status, code);
                return false;
        }
        for (size_t i = 0; names && names[i]; i++)
                if (!fleet_contains(e.field, names[i]) && !fleet_contains(e.message, names[i])) {
                        fleet_add(bad, bad_size,
                                  "%s: %ld %s, but '%s' is not named (field '%s', message '%.60s')", label,
                                  r->status, e.code, names[i], e.field, e.message);
                        return false;
                }
        if (e.field[0])
                fleet_add(obs, obs_size, "%s: %ld %s at %s", label, r->status, e.code, e.field);
        else
                fleet_add(obs, obs_size, "%s: %ld %s", label, r->status, e.code);
        return true;
}

/* Sends q and checks its answer as fleet_check_error() does (label, status, code, names, obs, bad). */
bool fleet_expect_error(fleet *f, const char *label, const http_req *q, long status, const char *code,
                        const char *const *names, char *obs, size_t obs_size, char *bad, size_t bad_size) {
        api_reply r;

        fleet_http(f, q, &r);
        bool ok = fleet_check_error(label, &r, status, code, names, obs, obs_size, bad, bad_size);
        api_reply_done(&r);
        return ok;
}

void fleet_verdict_from(adv_row *row, const char *obs, const char *bad) {
        if (bad[0])
                fleet_set_verdict(row, ADV_NOT_CONTAINED, "%s", bad);
        else
                fleet_set_verdict(row, ADV_CONTAINED, "%s", obs);
}

/* How many workflows have a name starting with name (GET /v1/workflows?limit=1000); -1 when it cannot be
 * told. */
static int count_named(fleet *f, const char *name) {
        http_req q = {.method = "GET", .path = "/v1/workflows?limit=1000", .key = f->t->api_key};
        api_reply r;
        _cleanup_json_ yajl_val tree = NULL;
        int n = -1;

        fleet_http(f, &q, &r);
        if (r.status == 200 && r.body && au_json_parse(r.body, r.len, HTTP_MAX_REPLY, &tree, NULL) == 0) {
                yajl_val list = au_json_get(tree, "workflows");
                if (YAJL_IS_ARRAY(list)) {
                        n = 0;
                        for (size_t i = 0; i < list->u.array.len; i++) {
                                const char *s;
                                if (au_json_get_string(au_json_get(list->u.array.values[i], "name"), "name",
                                                       &s, NULL) == 0 &&
                                    strncmp(s, name, strlen(name)) == 0)
                                        n++;
                        }
                }
        }
        api_reply_done(&r);
        return n;
}

/* Appends "stored nothing" or the failure to obs/bad. */
void fleet_check_nothing_stored(fleet *f, const char *name, char *obs, size_t obs_size, char *bad,
                                size_t bad_size) {
        int n = count_named(f, name);
        if (n < 0)
                fleet_add(bad, bad_size, "could not list workflows to check nothing was stored");
        else if (n > 0)
                fleet_add(bad, bad_size, "%d workflow%s named %s... stored", n, n > 1 ? "s" : "", name);
        else
                fleet_add(obs, obs_size, "nothing stored");
}

/* POSTs body to /v1/workflows and expects 400 code naming names; nothing may be stored under name. */
void fleet_expect_refused(fleet *f, adv_row *row, const char *name, const char *body, size_t len,
                          const char *code, const char *const *names) {
        http_req q = {
                .method = "POST", .path = "/v1/workflows", .key = f->t->api_key, .body = body, .len = len};
        api_reply r;
        char obs[256] = "", bad[256] = "";

        fleet_http(f, &q, &r);
        fleet_check_error("POST", &r, 400, code, names, obs, sizeof(obs), bad, sizeof(bad));
        api_reply_done(&r);
        if (name)
                fleet_check_nothing_stored(f, name, obs, sizeof(obs), bad, sizeof(bad));
        fleet_verdict_from(row, obs, bad);
}

/* ---- raw requests: what libcurl will not send ------------------------------------------- */

/*
 * Sends req[0..len) on a new connection and reads the status line. Returns
 * the status, 0 when the connection ended without one, -1 with why on a
 * connection failure.
 */
long fleet_raw_http(fleet *f, const char *req, size_t len, char *why, size_t size) {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
        int fd = -1, r;
        long status = 0;
        uint64_t until = au_now_ms() + MIN(fleet_remaining_ms(f), fleet_scaled(f, 10000));

        if ((r = getaddrinfo(f->host, f->port, &hints, &ai)) != 0) {
                snprintf(why, size, "cannot resolve %.100s: %s", f->host, gai_strerror(r));
                return -1;
        }
        for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
                fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
                if (fd < 0)
                        continue;
                if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
                        close(fd);
                        fd = -1;
                        continue;
                }
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                int err = 0;
                socklen_t el = sizeof(err);
                if (poll(&p, 1, (int) HTTP_CONNECT_MS) != 1 ||
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
                        close(fd);
                        fd = -1;
                }
        }
        freeaddrinfo(ai);
        if (fd < 0) {
                snprintf(why, size, "cannot connect to %.100s:%s", f->host, f->port);
                return -1;
        }
        /* Send until done, or until the server answers or hangs up (it may refuse early). */
        size_t off = 0;
        char in[512];
        size_t got = 0;
        while (off < len && au_now_ms() < until) {
                struct pollfd p = {.fd = fd, .events = POLLOUT | POLLIN};
                if (poll(&p, 1, 100) <= 0)
                        continue;
                if (p.revents & (POLLIN | POLLHUP | POLLERR))
                        break;
                ssize_t k = send(fd, req + off, len - off, MSG_NOSIGNAL);
                if (k < 0 && errno != EAGAIN && errno != EINTR)
                        break;
                if (k > 0)
                        off += (size_t) k;
        }
        while (got < sizeof(in) - 1 && au_now_ms() < until && !memchr(in, '\n', got)) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 100) <= 0)
                        continue;
                ssize_t k = recv(fd, in + got, sizeof(in) - 1 - got, 0);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (k <= 0)
                        break;
                got += (size_t) k;
        }
        in[got] = '\0';
        close(fd);
        if (strncmp(in, "HTTP/1.", 7) == 0 && got >= 12)
                status = strtol(in + 9, NULL, 10);
        if (status == 0)
                snprintf(why, size, "connection ended without a status line (%zu bytes sent of %zu)", off,
                         len);
        return status;
}

/* ---- the coordinator's liveness ------------------------------------------------------------ */

bool fleet_coord_alive(fleet *f, char *why, size_t size) {
        uint64_t until = au_now_ms() + fleet_scaled(f, 5000);
        for (;;) {
                api_reply r;
                uint64_t saved = f->deadline;
                f->deadline = until;
                fleet_http(f,
                           &(http_req){.method = "GET",
                                       .path = "/healthz",
                                       .timeout_ms = (unsigned) fleet_scaled(f, 3000)},
                           &r);
                f->deadline = saved;
                long st = r.status;
                if (st != 200)
                        snprintf(why, size, "/healthz answered %ld%s%.150s", st, st ? "" : ": ",
                                 st ? "" : r.error);
                api_reply_done(&r);
                if (st == 200)
                        return true;
                if (au_now_ms() + 500 >= until)
                        return false;
                au_sleep_ms(500);
        }
}
