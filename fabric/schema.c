/* SPDX-License-Identifier: MIT */
/*
 * fabric/schema: the JSON schema subset tool arguments are checked against
 * before anything runs, and the check of a model's tool call.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "fabric/fabric.h"

static const char *const types[] = {"object", "string", "integer", "number", "boolean", "array", NULL};

static bool is_integer_text(yajl_val v) {
        return YAJL_IS_INTEGER(v) && !strpbrk(v->u.number.r, ".eE");
}

int fab_schema_check(yajl_val s, const char *path, au_error *err) {
        static const char *const known[] = {"type",  "properties",  "required", "additionalProperties",
                                            "enum",  "maxLength",   "minimum",  "maximum",
                                            "items", "description", NULL};
        char sub[256];
        const char *type = NULL;
        yajl_val x;
        int r;

        if ((r = au_json_check_object(s, path, known, err)) < 0)
                return r;
        au_json_path(sub, sizeof(sub), path, "type");
        if ((r = au_json_get_string(au_json_get(s, "type"), sub, &type, err)) < 0)
                return r;
        size_t i;
        for (i = 0; types[i]; i++)
                if (strcmp(types[i], type) == 0)
                        break;
        if (!types[i])
                return au_error_set_field(err, sub, "%s: unsupported type \"%.32s\"", sub, type);
        if ((x = au_json_get(s, "description")) && !YAJL_IS_STRING(x))
                return au_error_set_field(err, path, "%s.description: expected a string", path);
        if ((x = au_json_get(s, "properties"))) {
                au_json_path(sub, sizeof(sub), path, "properties");
                if (strcmp(type, "object") != 0)
                        return au_error_set_field(err, sub, "%s: only an object has properties", sub);
                if ((r = au_json_check_object(x, sub, NULL, err)) < 0)
                        return r;
                for (size_t k = 0; k < x->u.object.len; k++) {
                        char p2[256];
                        au_json_path(p2, sizeof(p2), sub, x->u.object.keys[k]);
                        if ((r = fab_schema_check(x->u.object.values[k], p2, err)) < 0)
                                return r;
                }
        }
        if ((x = au_json_get(s, "required"))) {
                yajl_val props = au_json_get(s, "properties");
                au_json_path(sub, sizeof(sub), path, "required");
                if ((r = au_json_check_array(x, sub, err)) < 0)
                        return r;
                for (size_t k = 0; k < x->u.array.len; k++) {
                        yajl_val n = x->u.array.values[k];
                        if (!YAJL_IS_STRING(n) || !au_json_get(props, n->u.string))
                                return au_error_set_field(err, sub, "%s: each entry must name a property",
                                                          sub);
                }
        }
        if ((x = au_json_get(s, "additionalProperties"))) {
                au_json_path(sub, sizeof(sub), path, "additionalProperties");
                if (!YAJL_IS_FALSE(x))
                        return au_error_set_field(err, sub, "%s: only false is supported", sub);
        }
        if ((x = au_json_get(s, "enum"))) {
                au_json_path(sub, sizeof(sub), path, "enum");
                if ((r = au_json_check_array(x, sub, err)) < 0)
                        return r;
                if (x->u.array.len == 0)
                        return au_error_set_field(err, sub, "%s: an empty enum allows nothing", sub);
        }
        if ((x = au_json_get(s, "maxLength"))) {
                uint64_t u;
                au_json_path(sub, sizeof(sub), path, "maxLength");
                if ((r = au_json_get_uint64(x, sub, &u, err)) < 0)
                        return r;
                if (strcmp(type, "string") != 0)
                        return au_error_set_field(err, sub, "%s: only a string has maxLength", sub);
        }
        const char *bounds[] = {"minimum", "maximum"};
        for (size_t k = 0; k < ELEMENTSOF(bounds); k++)
                if ((x = au_json_get(s, bounds[k]))) {
                        au_json_path(sub, sizeof(sub), path, bounds[k]);
                        if (strcmp(type, "integer") != 0 || !is_integer_text(x))
                                return au_error_set_field(err, sub, "%s: an integer bound of an integer",
                                                          sub);
                }
        if ((x = au_json_get(s, "items"))) {
                au_json_path(sub, sizeof(sub), path, "items");
                if (strcmp(type, "array") != 0)
                        return au_error_set_field(err, sub, "%s: only an array has items", sub);
                if ((r = fab_schema_check(x, sub, err)) < 0)
                        return r;
        }
        return 0;
}

static bool json_equal(yajl_val a, yajl_val b) {
        if (YAJL_IS_STRING(a))
                return YAJL_IS_STRING(b) && strcmp(a->u.string, b->u.string) == 0;
        if (YAJL_IS_NUMBER(a))
                return YAJL_IS_NUMBER(b) && strcmp(a->u.number.r, b->u.number.r) == 0;
        if (YAJL_IS_TRUE(a) || YAJL_IS_FALSE(a) || YAJL_IS_NULL(a))
                return a->type == b->type;
        return false;
}

/* Counts code points, so maxLength means characters as JSON Schema says. */
static size_t utf8_len(const char *s) {
        size_t n = 0;
        for (; *s; s++)
                if (((unsigned char) *s & 0xc0) != 0x80)
                        n++;
        return n;
}

/* "path: what detail". */
static int fail(char *why, size_t size, const char *path, const char *what, const char *detail) {
        snprintf(why, size, "%s: %s%s", *path ? path : "arguments", what, detail);
        return -EINVAL;
}

static int validate(yajl_val s, yajl_val v, const char *path, char *why, size_t size) {
        const char *type = YAJL_GET_STRING(au_json_get(s, "type"));
        yajl_val x;
        char sub[256];

        if (!type)
                return fail(why, size, path, "the schema has no type", "");
        if (strcmp(type, "object") == 0) {
                if (!YAJL_IS_OBJECT(v))
                        return fail(why, size, path, "expected an object", "");
                yajl_val props = au_json_get(s, "properties");
                if ((x = au_json_get(s, "required")))
                        for (size_t k = 0; k < x->u.array.len; k++)
                                if (!au_json_get(v, x->u.array.values[k]->u.string)) {
                                        au_json_path(sub, sizeof(sub), path, x->u.array.values[k]->u.string);
                                        return fail(why, size, sub, "required", "");
                                }
                for (size_t k = 0; k < v->u.object.len; k++) {
                        const char *key = v->u.object.keys[k];
                        yajl_val ps = au_json_get(props, key);
                        au_json_path(sub, sizeof(sub), path, key);
                        for (size_t j = 0; j < k; j++)
                                if (strcmp(v->u.object.keys[j], key) == 0)
                                        return fail(why, size, sub, "given twice", "");
                        if (!ps) {
                                if (YAJL_IS_FALSE(au_json_get(s, "additionalProperties")))
                                        return fail(why, size, sub,
                                                    "not allowed (additionalProperties is false)", "");
                                continue;
                        }
                        int r = validate(ps, v->u.object.values[k], sub, why, size);
                        if (r < 0)
                                return r;
                }
        } else if (strcmp(type, "string") == 0) {
                if (!YAJL_IS_STRING(v))
                        return fail(why, size, path, "expected a string", "");
                if ((x = au_json_get(s, "maxLength")) &&
                    utf8_len(v->u.string) > (size_t) YAJL_GET_INTEGER(x))
                        return fail(why, size, path, "longer than maxLength ", x->u.number.r);
        } else if (strcmp(type, "integer") == 0) {
                if (!is_integer_text(v))
                        return fail(why, size, path, "expected an integer", "");
                if ((x = au_json_get(s, "minimum")) && YAJL_GET_INTEGER(v) < YAJL_GET_INTEGER(x))
                        return fail(why, size, path, "below the minimum ", x->u.number.r);
                if ((x = au_json_get(s, "maximum")) && YAJL_GET_INTEGER(v) > YAJL_GET_INTEGER(x))
                        return fail(why, size, path, "above the maximum ", x->u.number.r);
        } else if (strcmp(type, "number") == 0) {
                if (!YAJL_IS_NUMBER(v))
                        return fail(why, size, path, "expected a number", "");
        } else if (strcmp(type, "boolean") == 0) {
                if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
                        return fail(why, size, path, "expected true or false", "");
        } else if (strcmp(type, "array") == 0) {
                if (!YAJL_IS_ARRAY(v))
                        return fail(why, size, path, "expected an array", "");
                if ((x = au_json_get(s, "items")))
                        for (size_t k = 0; k < v->u.array.len; k++) {
                                snprintf(sub, sizeof(sub), "%s.%zu", *path ? path : "arguments", k);
                                int r = validate(x, v->u.array.values[k], sub, why, size);
                                if (r < 0)
                                        return r;
                        }
        }
        if ((x = au_json_get(s, "enum"))) {
                for (size_t k = 0; k < x->u.array.len; k++)
                        if (json_equal(x->u.array.values[k], v))
                                return 0;
                return fail(why, size, path, "not one of the enum's values", "");
        }
        return 0;
}

int fab_schema_validate(yajl_val schema, yajl_val value, char *why, size_t why_size) {
        if (why && why_size)
                why[0] = '\0';
        return validate(schema, value, "", why, why_size);
}

int fab_tool_check_call(const fab_tool *tools, size_t n_tools, const fab_tool_call *call, yajl_val *ret_args,
                        char *why, size_t why_size) {
        _cleanup_json_ yajl_val args = NULL;
        const fab_tool *t = NULL;
        au_error err = {};
        int r;

        for (size_t i = 0; i < n_tools && call->name; i++)
                if (strcmp(tools[i].name, call->name) == 0)
                        t = &tools[i];
        if (!t) {
                snprintf(why, why_size, "there is no tool \"%.64s\"; the tools are listed in the request",
                         call->name ? call->name : "");
                return -ENOENT;
        }
        const char *a = call->arguments && *call->arguments ? call->arguments : "{}";
        r = au_json_parse(a, strlen(a), 1024 * 1024, &args, &err);
        if (r < 0) {
                snprintf(why, why_size, "the arguments are not JSON (%s)", err.msg);
                return -EINVAL;
        }
        if (!YAJL_IS_OBJECT(args)) {
                snprintf(why, why_size, "the arguments must be a JSON object");
                return -EINVAL;
        }
        r = fab_schema_validate(t->schema, args, why, why_size);
        if (r < 0)
                return r;
        if (ret_args)
                *ret_args = TAKE_PTR(args);
        return 0;
}
