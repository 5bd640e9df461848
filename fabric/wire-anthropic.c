/* SPDX-License-Identifier: MIT */
/*
 * fabric/wire-anthropic: Anthropic messages (POST {base}/v1/messages): the
 * request body (system at the top, tool_use and tool_result blocks, tool
 * results of one turn in one user message), the reply, and the stream's
 * events: message_start, content_block_start/_delta/_stop, message_delta,
 * message_stop (the terminal one), ping, error; unknown events are ignored.
 */
#include <string.h>

#include "common/json.h"
#include "fabric/fabric-internal.h"

static int gen_input(yajl_gen g, const char *args) {
        _cleanup_json_ yajl_val v = NULL;
        au_error err = {};
        /* tool_use input is an object; a model's broken arguments are sent back as {} */
        if (args && au_json_parse(args, strlen(args), 1024 * 1024, &v, &err) == 0 && YAJL_IS_OBJECT(v))
                return au_json_gen_tree(g, v);
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        return au_json_gen_map_close(g);
}

static int gen_request(yajl_gen g, const char *model, const fab_request *req) {
        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "model", model));
        AU_JSON_GEN_TRY(au_json_gen_kv_uint64(g, "max_tokens", req->max_tokens));
        if (req->system)
                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "system", req->system));
        AU_JSON_GEN_TRY(au_json_gen_string(g, "messages"));
        AU_JSON_GEN_TRY(au_json_gen_array_open(g));
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
                        AU_JSON_GEN_TRY(au_json_gen_string(g, "content"));
                        AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                        if (m->text && *m->text) {
                                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "type", "text"));
                                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "text", m->text));
                                AU_JSON_GEN_TRY(au_json_gen_map_close(g));
                        }
                        for (size_t k = 0; k < m->n_calls; k++) {
                                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "type", "tool_use"));
                                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "id", m->calls[k].id));
                                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "name", m->calls[k].name));
                                AU_JSON_GEN_TRY(au_json_gen_string(g, "input"));
                                AU_JSON_GEN_TRY(gen_input(g, m->calls[k].arguments));
                                AU_JSON_GEN_TRY(au_json_gen_map_close(g));
                        }
                        AU_JSON_GEN_TRY(au_json_gen_array_close(g));
                        break;
                case FAB_MSG_TOOL:
                        /* the tool results of one turn go in one user message */
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "role", "user"));
                        AU_JSON_GEN_TRY(au_json_gen_string(g, "content"));
                        AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                        for (;; i++) {
                                m = &req->msgs[i];
                                AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "type", "tool_result"));
                                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "tool_use_id", m->tool_call_id));
                                AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "content", m->text ? m->text : ""));
                                if (m->is_error)
                                        AU_JSON_GEN_TRY(au_json_gen_kv_bool(g, "is_error", true));
                                AU_JSON_GEN_TRY(au_json_gen_map_close(g));
                                if (i + 1 >= req->n_msgs || req->msgs[i + 1].role != FAB_MSG_TOOL)
                                        break;
                        }
                        AU_JSON_GEN_TRY(au_json_gen_array_close(g));
                        break;
                }
                AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        }
        AU_JSON_GEN_TRY(au_json_gen_array_close(g));
        if (req->n_tools > 0) {
                AU_JSON_GEN_TRY(au_json_gen_string(g, "tools"));
                AU_JSON_GEN_TRY(au_json_gen_array_open(g));
                for (size_t i = 0; i < req->n_tools; i++) {
                        AU_JSON_GEN_TRY(au_json_gen_map_open(g));
                        AU_JSON_GEN_TRY(au_json_gen_kv_string(g, "name", req->tools[i].name));
                        if (req->tools[i].description)
                                AU_JSON_GEN_TRY(
                                        au_json_gen_kv_string(g, "description", req->tools[i].description));
                        AU_JSON_GEN_TRY(au_json_gen_string(g, "input_schema"));
                        AU_JSON_GEN_TRY(au_json_gen_tree(g, req->tools[i].schema));
                        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
                }
                AU_JSON_GEN_TRY(au_json_gen_array_close(g));
        }
        if (req->stream)
                AU_JSON_GEN_TRY(au_json_gen_kv_bool(g, "stream", true));
        AU_JSON_GEN_TRY(au_json_gen_map_close(g));
        return 0;
}

char *fab_wire_anthropic_request(const char *model, const fab_request *req) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        if (!g || gen_request(g, model, req) < 0)
                return NULL;
        return au_json_gen_finish(g, NULL);
}

/* message_start carries the input side; message_delta's usage is cumulative and may restate any field. */
static void read_usage(fab_reply *r, yajl_val u) {
        yajl_val x;
        if (!YAJL_IS_OBJECT(u))
                return;
        if ((x = au_json_get(u, "input_tokens")))
                r->w_in = fab_json_count(x);
        if ((x = au_json_get(u, "cache_creation_input_tokens")))
                r->w_cache_write = fab_json_count(x);
        if ((x = au_json_get(u, "cache_read_input_tokens")))
                r->w_cached = fab_json_count(x);
        if ((x = au_json_get(u, "output_tokens")))
                r->w_out = fab_json_count(x);
        r->w_seen = true;
}

static void protocol(fab_reply *r, const char *what) {
        if (r->error == FAB_ERR_NONE) {
                r->error = FAB_ERR_PROTOCOL;
                snprintf(r->error_msg, sizeof(r->error_msg), "%s", what);
        }
}

static void set_stop(fab_reply *r, yajl_val v) {
        if (YAJL_IS_STRING(v))
                snprintf(r->stop_reason, sizeof(r->stop_reason), "%s", v->u.string);
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

static int tool_use(fab_reply *r, yajl_val block, size_t *ret_index) {
        size_t k = r->n_calls;
        fab_tool_call *c = fab_reply_call(r, k);
        if (!c || set_str(&c->id, au_json_get(block, "id")) < 0 ||
            set_str(&c->name, au_json_get(block, "name")) < 0)
                return -ENOMEM;
        *ret_index = k;
        return 0;
}

void fab_wire_anthropic_body(fab_reply *r, const char *body, size_t len) {
        _cleanup_json_ yajl_val root = NULL;
        au_error err = {};
        yajl_val content;

        if (au_json_parse(body, len, FAB_REPLY_MAX_BYTES, &root, &err) < 0)
                return protocol(r, "the reply is not JSON");
        if (!YAJL_IS_STRING(au_json_get(root, "type")) ||
            strcmp(au_json_get(root, "type")->u.string, "message") != 0)
                return protocol(r, "the reply is not a message");
        content = au_json_get(root, "content");
        if (!YAJL_IS_ARRAY(content))
                return protocol(r, "the reply has no content");
        for (size_t i = 0; i < content->u.array.len; i++) {
                yajl_val b = content->u.array.values[i];
                const char *type = YAJL_GET_STRING(au_json_get(b, "type"));
                if (type && strcmp(type, "text") == 0 && YAJL_IS_STRING(au_json_get(b, "text")))
                        fab_reply_text(r, au_json_get(b, "text")->u.string,
                                       strlen(au_json_get(b, "text")->u.string));
                else if (type && strcmp(type, "tool_use") == 0) {
                        size_t k;
                        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
                        if (!g || tool_use(r, b, &k) < 0)
                                return protocol(r, "out of memory reading tool calls");
                        yajl_val input = au_json_get(b, "input");
                        if (input && au_json_gen_tree(g, input) == 0)
                                r->calls[k].arguments = au_json_gen_finish(g, NULL);
                }
        }
        set_stop(r, au_json_get(root, "stop_reason"));
        read_usage(r, au_json_get(root, "usage"));
        r->terminal = true;
}

void fab_wire_anthropic_event(fab_reply *r, const char *event, const char *data, size_t len) {
        _cleanup_json_ yajl_val root = NULL;
        au_error err = {};
        const char *type;

        if (r->terminal)
                return;
        if (au_json_parse(data, len, FAB_REPLY_MAX_BYTES, &root, &err) < 0)
                return protocol(r, "a stream event is not JSON");
        /* the data's own type names the event (the event: line says the same) */
        type = YAJL_GET_STRING(au_json_get(root, "type"));
        if (!type)
                type = event;
        if (strcmp(type, "error") == 0) {
                r->error = fab_error_classify(200, data, len, r->error_msg, sizeof(r->error_msg));
                if (r->error == FAB_ERR_NONE)
                        r->error = FAB_ERR_STREAM_ERROR;
        } else if (strcmp(type, "message_start") == 0) {
                read_usage(r, au_json_get(au_json_get(root, "message"), "usage"));
        } else if (strcmp(type, "content_block_start") == 0) {
                yajl_val idx = au_json_get(root, "index"), b = au_json_get(root, "content_block");
                const char *bt = YAJL_GET_STRING(au_json_get(b, "type"));
                if (bt && strcmp(bt, "tool_use") == 0) {
                        size_t k;
                        if (!YAJL_IS_INTEGER(idx) || YAJL_GET_INTEGER(idx) < 0 ||
                            YAJL_GET_INTEGER(idx) >= (long long) ELEMENTSOF(r->block_call))
                                return protocol(r, "a content block's index is out of range");
                        if (tool_use(r, b, &k) < 0)
                                return protocol(r, "out of memory reading tool calls");
                        r->block_call[YAJL_GET_INTEGER(idx)] = (int) k + 1;
                } else if (bt && strcmp(bt, "text") == 0) {
                        yajl_val t = au_json_get(b, "text");
                        if (YAJL_IS_STRING(t))
                                fab_reply_text(r, t->u.string, strlen(t->u.string));
                }
        } else if (strcmp(type, "content_block_delta") == 0) {
                yajl_val idx = au_json_get(root, "index"), d = au_json_get(root, "delta");
                const char *dt = YAJL_GET_STRING(au_json_get(d, "type"));
                if (dt && strcmp(dt, "text_delta") == 0) {
                        yajl_val t = au_json_get(d, "text");
                        if (YAJL_IS_STRING(t))
                                fab_reply_text(r, t->u.string, strlen(t->u.string));
                } else if (dt && strcmp(dt, "input_json_delta") == 0) {
                        yajl_val p = au_json_get(d, "partial_json");
                        long long i = YAJL_IS_INTEGER(idx) ? YAJL_GET_INTEGER(idx) : -1;
                        if (i < 0 || i >= (long long) ELEMENTSOF(r->block_call) || r->block_call[i] == 0)
                                return protocol(r, "input_json_delta for a block that is not a tool_use");
                        if (YAJL_IS_STRING(p) &&
                            au_buf_puts(&r->call_args[r->block_call[i] - 1], p->u.string) < 0)
                                return protocol(r, "a tool call's arguments are over 1 MiB");
                }
        } else if (strcmp(type, "message_delta") == 0) {
                set_stop(r, au_json_get(au_json_get(root, "delta"), "stop_reason"));
                read_usage(r, au_json_get(root, "usage"));
        } else if (strcmp(type, "message_stop") == 0) {
                r->terminal = true;
        }
        /* ping, content_block_stop and events yet unknown: nothing to do */
}
