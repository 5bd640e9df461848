/* SPDX-License-Identifier: MIT */
/*
 * fabric/wire-openai: OpenAI chat completions (POST {base}/v1/chat/completions):
 * the request body with tools, the reply, and the stream's chunks
 * (stream_options.include_usage: a last chunk with "choices":[] and usage,
 * then "data: [DONE]", the terminal event).
 */
#include <string.h>

#include "common/json.h"
#include "fabric/fabric-internal.h"

static int gen_request(yajl_gen g, const char *model, const fab_request *req) {
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "model", model));
        AU_JSON_GEN_TRY(au_json_gen_string(g, "messages"));
        AU_JSON_GEN_TRY(au_json_gen_array_open(g));
        if (req->system) {
                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "role", "system"));
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "content", req->system));
                AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        }
        for (size_t i = 0; i < req->n_msgs; i++) {
                const fab_msg *m = &req->msgs[i];
                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                switch (m->role) {
                case FAB_MSG_USER:
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "role", "user"));
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "content", m->text ? m->text : ""));
                        break;
                case FAB_MSG_ASSISTANT:
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "role", "assistant"));
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "content", m->text));
                        if (m->n_calls > 0) {
                                AU_JSON_GEN_TRY(au_json_gen_string(g, "tool_calls"));
                                AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                                for (size_t k = 0; k < m->n_calls; k++) {
                                        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "id", m->calls[k].id));
                                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "type", "function"));
                                        AU_JSON_GEN_TRY(au_json_gen_string(g, "function"));
                                        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "name", m->calls[k].name));
                                        AU_JSON_GEN_TRY(au_json_gen_kv_string(
                                                g, "arguments",
                                                m->calls[k].arguments ? m->calls[k].arguments : "{}"));
                                        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
                                        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
                                }
                                AU_JSON_GEN_TRY(au_json_gen_array_close(g));
                        }
                        break;
                case FAB_MSG_TOOL: {
                        /* chat completions has no error flag on a tool message: the text says it */
                        _cleanup_free_ char *t = NULL;
                        if (m->is_error && asprintf(&t, "error: %s", m->text ? m->text : "") < 0)
                                return -ENOMEM;
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "role", "tool"));
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "tool_call_id", m->tool_call_id));
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "content", t ? t : m->text ? m->text : ""));
                        break;
                }
                }
                AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        }
        AU_JSON_GEN_TRY(au_json_gen_array_close(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "max_completion_tokens", req->max_tokens));
        if (req->n_tools > 0) {
                AU_JSON_GEN_TRY(au_json_gen_string(g, "tools"));
                AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                for (size_t i = 0; i < req->n_tools; i++) {
                        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "type", "function"));
                        AU_JSON_GEN_TRY(au_json_gen_string(g, "function"));
                        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "name", req->tools[i].name));
                        if (req->tools[i].description)
                                AU_JSON_GEN_TRY(
                                        au_json_gen_kv_string(g, "description", req->tools[i].description));
                        AU_JSON_GEN_TRY(au_json_gen_string(g, "parameters"));
                        AU_JSON_GEN_TRY(au_json_gen_tree(g, req->tools[i].schema));
                        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
                        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
                }
                AU_JSON_GEN_TRY(au_json_gen_array_close(g));
        }
        if (req->stream) {
                AU_JSON_GEN_TRY(au_json_gen_kv_bool(g, "stream", true));
                AU_JSON_GEN_TRY(au_json_gen_string(g, "stream_options"));
                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                AU_JSON_GEN_TRY(au_json_gen_kv_bool(g, "include_usage", true));
                AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        }
        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        return 0;
}

char *fab_wire_openai_request(const char *model, const fab_request *req) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        if (!g || gen_request(g, model, req) < 0)
                return NULL;
        return au_json_gen_finish(g, NULL);
}

static void read_usage(fab_reply *r, yajl_val u) {
        if (!YAJL_IS_OBJECT(u))
                return;
        r->w_in = fab_json_count(au_json_get(u, "prompt_tokens"));
        r->w_out = fab_json_count(au_json_get(u, "completion_tokens"));
        r->w_cached = fab_json_count(au_json_get(au_json_get(u, "prompt_tokens_details"), "cached_tokens"));
        r->w_seen = true;
}

static void set_stop(fab_reply *r, yajl_val v) {
        if (YAJL_IS_STRING(v))
                snprintf(r->stop_reason, sizeof(r->stop_reason), "%s", v->u.string);
}

static void protocol(fab_reply *r, const char *what) {
        if (r->error == FAB_ERR_NONE) {
                r->error = FAB_ERR_PROTOCOL;
                snprintf(r->error_msg, sizeof(r->error_msg), "%s", what);
        }
}

static int set_str(char **dst, yajl_val v) {
        if (!YAJL_IS_STRING(v))
                return 0;
        char *s = strdup(v->u.string);
        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

void fab_wire_openai_body(fab_reply *r, const char *body, size_t len) {
        _cleanup_json_ yajl_val root = NULL;
        au_error err = {};
        yajl_val choice, msg, calls;

        if (au_json_parse(body, len, FAB_REPLY_MAX_BYTES, &root, &err) < 0)
                return protocol(r, "the reply is not JSON");
        choice = au_json_get(root, "choices");
        if (!YAJL_IS_ARRAY(choice) || choice->u.array.len == 0)
                return protocol(r, "the reply has no choices");
        choice = choice->u.array.values[0];
        msg = au_json_get(choice, "message");
        if (!YAJL_IS_OBJECT(msg))
                return protocol(r, "the reply's choice has no message");
        set_stop(r, au_json_get(choice, "finish_reason"));
        if (YAJL_IS_STRING(au_json_get(msg, "content")))
                fab_reply_text(r, au_json_get(msg, "content")->u.string,
                               strlen(au_json_get(msg, "content")->u.string));
        calls = au_json_get(msg, "tool_calls");
        for (size_t i = 0; YAJL_IS_ARRAY(calls) && i < calls->u.array.len; i++) {
                yajl_val c = calls->u.array.values[i], fn = au_json_get(c, "function");
                fab_tool_call *tc = fab_reply_call(r, i);
                if (!tc)
                        return protocol(r, "too many tool calls");
                if (set_str(&tc->id, au_json_get(c, "id")) < 0 ||
                    set_str(&tc->name, au_json_get(fn, "name")) < 0 ||
                    set_str(&tc->arguments, au_json_get(fn, "arguments")) < 0)
                        return protocol(r, "out of memory reading tool calls");
        }
        read_usage(r, au_json_get(root, "usage"));
        r->terminal = true;
}

void fab_wire_openai_event(fab_reply *r, const char *event, const char *data, size_t len) {
        _cleanup_json_ yajl_val root = NULL;
        au_error err = {};
        yajl_val choices, e;

        (void) event;
        if (r->terminal)
                return;
        if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
                r->terminal = true;
                return;
        }
        if (au_json_parse(data, len, FAB_REPLY_MAX_BYTES, &root, &err) < 0)
                return protocol(r, "a stream chunk is not JSON");
        /* an error after HTTP 200 arrives as a data event (OpenRouter, vLLM and OpenAI do this) */
        e = au_json_get(root, "error");
        if (e) {
                r->error = fab_error_classify(200, data, len, r->error_msg, sizeof(r->error_msg));
                if (r->error == FAB_ERR_NONE)
                        r->error = FAB_ERR_STREAM_ERROR;
                return;
        }
        read_usage(r, au_json_get(root, "usage"));
        choices = au_json_get(root, "choices");
        if (!YAJL_IS_ARRAY(choices) || choices->u.array.len == 0)
                return;
        yajl_val c = choices->u.array.values[0], delta = au_json_get(c, "delta");
        set_stop(r, au_json_get(c, "finish_reason"));
        yajl_val content = au_json_get(delta, "content");
        if (YAJL_IS_STRING(content))
                fab_reply_text(r, content->u.string, strlen(content->u.string));
        yajl_val calls = au_json_get(delta, "tool_calls");
        for (size_t i = 0; YAJL_IS_ARRAY(calls) && i < calls->u.array.len; i++) {
                yajl_val tc = calls->u.array.values[i], fn = au_json_get(tc, "function");
                yajl_val idx = au_json_get(tc, "index");
                size_t k = YAJL_IS_INTEGER(idx) && YAJL_GET_INTEGER(idx) >= 0
                                   ? (size_t) YAJL_GET_INTEGER(idx)
                                   : i;
                fab_tool_call *call = fab_reply_call(r, k);
                if (!call)
                        return protocol(r, "too many tool calls");
                if (set_str(&call->id, au_json_get(tc, "id")) < 0 ||
                    set_str(&call->name, au_json_get(fn, "name")) < 0)
                        return protocol(r, "out of memory reading tool calls");
                yajl_val a = au_json_get(fn, "arguments");
                if (YAJL_IS_STRING(a) && au_buf_puts(&r->call_args[k], a->u.string) < 0)
                        return protocol(r, "a tool call's arguments are over 1 MiB");
        }
}
