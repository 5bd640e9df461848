/* SPDX-License-Identifier: MIT */
/*
 * Model and agent steps run by the coordinator (issue 14): cfg.model_workers
 * fabric worker threads, each with its own PostgreSQL connection, take a
 * ready model or agent step (one transaction: dispatched on node
 * "fabric:<coordinator id>", its audit row), call orc_model_run or
 * orc_agent_run with no transaction open, and hand the attempt's outcome to
 * the results path as a result of its own (orc_results_apply_local): the
 * runs row, recovery (retry, level 3 another provider, the fallback, a
 * human), the output passed to dependents as stdout, the fabric record and
 * the audit rows, in one transaction. Neither the scheduler thread nor the
 * results thread ever waits on a model.
 *
 * An agent's tool call becomes a step of kind 'tool' ("<step>.a<attempt>.
 * t<turn>-<k>"), ready at once: the scheduler places and seals it as any run
 * step, the results thread applies its result, and the worker, polling the
 * step's row, hands its output back to the model. Each tool call is an audit
 * row of its own when the agent reports it.
 *
 * A coordinator that stops abandons the calls under way (fab_stop) and
 * records nothing of them; one that starts finds the calls it lost (a step
 * dispatched on a "fabric:" node whose coordinator was this one, or one on
 * this host whose process is gone) and makes them ready again: a new attempt.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/sha.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "memory/pg.h"
#include "memory/store-fabric.h"
#include "memory/store.h"
#include "orchestrator/agent.h"
#include "orchestrator/coordinator-internal.h"
#include "orchestrator/model.h"
#include "orchestrator/workflow.h"

#define IDLE_POLL_MS 200       /* a worker with nothing to do looks again after this */
#define TOOL_POLL_MS 100       /* a worker waiting on a tool call's run reads its step this often */
#define ARGS_AUDIT_BYTES 256   /* a tool call's arguments kept in its audit row */
#define TOOL_STDERR_BYTES 4096 /* a failed tool run's stderr given back to the model */

struct orc_fabric_workers {
        pthread_t *threads;
        size_t n;
        atomic_bool swept; /* one worker looks for lost calls at start */
};

/* What a worker took: the step row of mem_store_fabric_pick(). */
typedef struct fabric_job {
        char *wf, *step, *kind, *block, *inputs, *needs, *key;
        unsigned attempt, entry;
        int failures, max_attempts;
        double budget; /* 0: none */
} fabric_job;

static void job_done(fabric_job *j) {
        free(j->wf);
        free(j->step);
        free(j->kind);
        free(j->block);
        free(j->inputs);
        free(j->needs);
        free(j->key);
        *j = (fabric_job){0};
}

static char *dup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

static int ensure_conn(orc_coord *c, PGconn **conn) {
        au_error err = {0};

        if (*conn && mem_pg_ok(*conn))
                return 0;
        if (*conn)
                mem_pg_close(*conn);
        *conn = NULL;
        if (mem_pg_connect(c->cfg.db, "autoos-coordinator fabric", conn, &err) < 0) {
                *conn = NULL;
                return -ENOTCONN;
        }
        return 0;
}

static void node_name(orc_coord *c, char *buf, size_t size) {
        snprintf(buf, size, "fabric:%s", c->id);
}

/* One audit row in a transaction of its own (a tool call, a lost call). */
static int audit_now(orc_coord *c, PGconn *conn, const char *wf, const char *action, const char *detail) {
        orc_audit a;
        au_error err = {0};
        int r;

        orc_audit_init(&a, c->id);
        r = orc_audit_add(&a, wf, action, detail);
        if (r >= 0)
                r = mem_pg_begin(conn, &err);
        if (r >= 0)
                r = orc_audit_flush_commit(c, conn, &a, &err);
        if (r < 0) {
                mem_pg_rollback(conn);
                log_warning("audit row %s of workflow %s: %s", action, wf,
                            err.msg[0] ? err.msg : strerror(-r));
        }
        orc_audit_done(&a);
        return r;
}

/* ---- taking a step ----------------------------------------------------------------------- */

/* One transaction: a ready model or agent step dispatched here, with its audit row. 1 taken, 0 none. */
static int pick(orc_coord *c, PGconn *conn, fabric_job *ret) {
        _cleanup_pgresult_ PGresult *res = NULL;
        _cleanup_free_ char *detail = NULL;
        char node[200], run[256], num[16];
        au_error err = {0};
        orc_audit a;
        int r;

        node_name(c, node, sizeof(node));
        r = mem_pg_begin(conn, &err);
        if (r >= 0)
                r = mem_store_fabric_pick(conn, node, &res, &err);
        if (r < 0 || PQntuples(res) == 0) {
                mem_pg_rollback(conn);
                return r < 0 ? r : 0;
        }
        *ret = (fabric_job){.wf = dup_or_null(mem_pg_value(res, 0, MEM_FAB_WORKFLOW)),
                            .step = dup_or_null(mem_pg_value(res, 0, MEM_FAB_STEP)),
                            .kind = dup_or_null(mem_pg_value(res, 0, MEM_FAB_KIND)),
                            .block = dup_or_null(mem_pg_value(res, 0, MEM_FAB_BLOCK)),
                            .inputs = dup_or_null(mem_pg_value(res, 0, MEM_FAB_INPUTS)),
                            .needs = dup_or_null(mem_pg_value(res, 0, MEM_FAB_NEEDS)),
                            .key = dup_or_null(mem_pg_value(res, 0, MEM_FAB_CREATED_BY)),
                            .attempt = (unsigned) mem_store_int(res, 0, MEM_FAB_ATTEMPT),
                            .entry = (unsigned) mem_store_int(res, 0, MEM_FAB_ENTRY),
                            .failures = mem_store_int(res, 0, MEM_FAB_FAILURES),
                            .max_attempts = mem_store_int(res, 0, MEM_FAB_MAX_ATTEMPTS)};
        if (mem_pg_value(res, 0, MEM_FAB_BUDGET))
                ret->budget = atof(mem_pg_value(res, 0, MEM_FAB_BUDGET));
        if (!ret->wf || !ret->step || !ret->kind || !ret->block) {
                mem_pg_rollback(conn);
                job_done(ret);
                return -ENOMEM;
        }
        snprintf(run, sizeof(run), "%s.%s.%u", ret->wf, ret->step, ret->attempt);
        snprintf(num, sizeof(num), "\x01%u", ret->attempt);
        detail = orc_json_obj((const char *const[]){"step", ret->step, "attempt", num, "node", node, "run",
                                                    run, "kind", ret->kind, NULL});
        orc_audit_init(&a, c->id);
        r = detail ? orc_audit_add(&a, ret->wf, "dispatched", detail) : -ENOMEM;
        orc_audit_event(&a, orc_json_event("step.dispatched", ret->wf, ret->step,
                                           (const char *const[]){"node", node, "run", run, NULL}));
        if (r >= 0)
                r = orc_audit_flush_commit(c, conn, &a, &err);
        if (r < 0) {
                mem_pg_rollback(conn);
                job_done(ret);
        } else
                for (size_t i = 0; i < a.n_events; i++)
                        orc_outbox_event(c, a.events[i]);
        orc_audit_done(&a);
        orc_metric_add(c, c->m_dispatched, NULL, r < 0 ? 0 : 1);
        return r < 0 ? r : 1;
}

/* The needs' outputs (inputs: a JSON array of [step, base64]) as two parallel vectors. */
static int decode_inputs(const char *inputs, char ***ret_ids, char ***ret_outputs, size_t *ret_n) {
        _cleanup_json_ yajl_val v = NULL;
        size_t n = 0, n2 = 0;

        *ret_ids = *ret_outputs = NULL;
        *ret_n = 0;
        if (!inputs)
                return 0;
        if (au_json_parse(inputs, strlen(inputs), 64u << 20, &v, NULL) < 0 || !YAJL_IS_ARRAY(v))
                return -EINVAL;
        for (size_t i = 0; i < v->u.array.len; i++) {
                yajl_val pair = v->u.array.values[i];
                char *out = NULL;
                size_t len = 0;

                if (!YAJL_IS_ARRAY(pair) || pair->u.array.len != 2 ||
                    !YAJL_IS_STRING(pair->u.array.values[0]) || !YAJL_IS_STRING(pair->u.array.values[1]))
                        continue;
                const char *b64 = YAJL_GET_STRING(pair->u.array.values[1]);
                if (au_base64_decode(b64, strlen(b64), &out, &len) < 0)
                        continue;
                if (au_strv_push(ret_ids, &n, YAJL_GET_STRING(pair->u.array.values[0])) < 0 ||
                    au_strv_consume(ret_outputs, &n2, out) < 0)
                        return -ENOMEM;
        }
        *ret_n = n;
        return 0;
}

/* The step's needs (a JSON array) as a vector. */
static int decode_needs(const char *needs, char ***ret, size_t *ret_n) {
        _cleanup_json_ yajl_val v = NULL;

        *ret = NULL;
        *ret_n = 0;
        if (!needs || au_json_parse(needs, strlen(needs), 1u << 20, &v, NULL) < 0 || !YAJL_IS_ARRAY(v))
                return 0;
        for (size_t i = 0; i < v->u.array.len; i++)
                if (YAJL_IS_STRING(v->u.array.values[i]) &&
                    au_strv_push(ret, ret_n, YAJL_GET_STRING(v->u.array.values[i])) < 0)
                        return -ENOMEM;
        return 0;
}

/* {"kind":K, ...the members of obj} (obj: a JSON object's text), or NULL. */
static char *with_kind(const char *kind, const char *obj) {
        char *s = NULL;

        if (!obj || obj[0] != '{')
                return NULL;
        if (asprintf(&s, "{\"kind\":\"%s\"%s%s", kind, obj[1] == '}' ? "" : ",", obj + 1) < 0)
                return NULL;
        return s;
}

/* obj without its "transcript" member (an agent's record, for the audit trail). */
static char *without_transcript(const char *obj) {
        _cleanup_json_ yajl_val v = NULL;
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);

        if (!g || au_json_parse(obj, strlen(obj), 64u << 20, &v, NULL) < 0 || !YAJL_IS_OBJECT(v))
                return NULL;
        au_json_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len; i++) {
                if (strcmp(v->u.object.keys[i], "transcript") == 0)
                        continue;
                au_json_gen_string(g, v->u.object.keys[i]);
                au_json_gen_tree(g, v->u.object.values[i]);
        }
        au_json_gen_map_close(g);
        return au_json_gen_finish(g, NULL);
}

/* The attempt as a result of its own: exited 0 with the output as stdout, or exited 1 with error. */
static sbx_result *make_result(orc_coord *c, const fabric_job *j, bool ok, const char *output,
                               const char *error, uint64_t started_wall_ms) {
        sbx_result *r = sbx_result_new();
        char node[200];
        uint64_t now = au_wall_ms();

        if (!r)
                return NULL;
        node_name(c, node, sizeof(node));
        r->workflow = strdup(j->wf);
        r->step = strdup(j->step);
        r->node = strdup(node);
        r->attempt = j->attempt;
        if (asprintf(&r->id, "%s.%s.%u", j->wf, j->step, j->attempt) < 0)
                r->id = NULL;
        r->outcome = SBX_OUTCOME_EXITED;
        r->exit_code = ok ? 0 : 1;
        r->wall_ms = now - started_wall_ms;
        r->started_at = (struct timespec){.tv_sec = (time_t) (started_wall_ms / 1000),
                                          .tv_nsec = (long) (started_wall_ms % 1000) * 1000000L};
        r->finished_at = (struct timespec){.tv_sec = (time_t) (now / 1000),
                                           .tv_nsec = (long) (now % 1000) * 1000000L};
        r->stdout_size = output ? strlen(output) : 0;
        r->stdout_data = strdup(output ? output : "");
        if (!ok && error && *error)
                r->error = strdup(error);
        if (!r->workflow || !r->step || !r->node || !r->id || !r->stdout_data)
                return sbx_result_free(r);
        return r;
}

/* Hands the attempt to the results path, again and again while PostgreSQL is away. */
static void apply(orc_coord *c, PGconn **conn, sbx_result *r, ssize_t next_entry, const char *record,
                  const char *const *rows) {
        if (atomic_load(&c->stop)) {
                /* stopping: the call was cut short (fab_stop); the next start makes the step ready again */
                log_info("workflow %s step %s attempt %u: left dispatched while the coordinator stops",
                         r->workflow, r->step, r->attempt);
                sbx_result_free(r);
                return;
        }
        for (;;) {
                au_error err = {0};
                sbx_result *copy = NULL;
                int rc;

                if (ensure_conn(c, conn) < 0) {
                        if (atomic_load(&c->stop))
                                break;
                        sleep_ms(500);
                        continue;
                }
                /* orc_results_apply_local takes its result: keep ours for a second try */
                _cleanup_free_ char *json = sbx_result_to_json(r, false);
                if (!json || sbx_result_from_json(json, strlen(json), &copy, NULL) < 0) {
                        log_error("workflow %s step %s: out of memory recording its attempt", r->workflow,
                                  r->step);
                        break;
                }
                rc = orc_results_apply_local(c, *conn, copy, next_entry, record, rows, &err);
                if (rc >= 0)
                        break;
                log_warning("workflow %s step %s: recording its attempt: %s; trying again", r->workflow,
                            r->step, err.msg[0] ? err.msg : strerror(-rc));
                orc_metric_add(c, c->m_api_db_errors, "fabric", 1);
                if (atomic_load(&c->stop))
                        break; /* the step stays dispatched: the next start makes it ready again */
                sleep_ms(500);
        }
        sbx_result_free(r);
}

/* ---- model steps ------------------------------------------------------------------------- */

static void run_model(orc_coord *c, PGconn **conn, const fabric_job *j) {
        _cleanup_json_ yajl_val block = NULL;
        orc_model_spec spec = {0};
        orc_model_result res = {0};
        char **ids = NULL, **outs = NULL, **needs = NULL;
        size_t n = 0, n_needs = 0;
        _cleanup_free_ char *json = NULL, *record = NULL;
        char error[700] = "";
        uint64_t started = au_wall_ms();
        ssize_t next = -1;
        au_error err = {0};
        bool ok = false;
        int r;

        r = au_json_parse(j->block, strlen(j->block), 1u << 20, &block, &err);
        if (r >= 0)
                r = decode_needs(j->needs, &needs, &n_needs);
        if (r >= 0)
                r = orc_model_spec_parse(block, needs, n_needs, &spec, &err);
        if (r >= 0)
                r = decode_inputs(j->inputs, &ids, &outs, &n);
        if (r >= 0)
                r = orc_model_run(c->fabric, &spec, ids, outs, n, j->wf, j->key, j->entry, &res);
        if (r < 0)
                snprintf(error, sizeof(error), "model step: %s", err.msg[0] ? err.msg : strerror(-r));
        else {
                ok = res.outcome == ORC_MODEL_OK;
                if (!ok && res.outcome == ORC_MODEL_VERIFY_FAILED)
                        snprintf(error, sizeof(error), "%s: verifier %s said %s (confidence %.2f): %s",
                                 orc_model_outcome_name(res.outcome), res.verifier,
                                 res.verdict[0] ? res.verdict : "nothing", res.confidence, res.reason);
                else if (!ok)
                        snprintf(error, sizeof(error), "%s: %s", orc_model_outcome_name(res.outcome),
                                 res.error[0] ? res.error : "no answer");
                /* level 3 is another provider of the chain: after the one that answered (or failed last) */
                if (res.outcome == ORC_MODEL_FAILED || res.outcome == ORC_MODEL_VERIFY_FAILED)
                        next = orc_model_next_entry(c->fabric, spec.role, res.entry);
                json = orc_model_result_json(&res);
                record = with_kind("model", json);
        }
        log_info("workflow %s step %s attempt %u: model %s via %s/%s, $%.6f%s%s", j->wf, j->step, j->attempt,
                 r < 0 ? "error" : orc_model_outcome_name(res.outcome), res.provider, res.model,
                 res.cost_usd, error[0] ? ": " : "", error);
        sbx_result *result = make_result(c, j, ok, ok ? res.output : "", error, started);
        if (result)
                apply(c, conn, result, next, record,
                      record ? (const char *const[]){"model_result", record, NULL} : NULL);
        orc_model_result_done(&res);
        orc_model_spec_done(&spec);
        au_strv_free(ids);
        au_strv_free(outs);
        au_strv_free(needs);
}

/* ---- agent steps ------------------------------------------------------------------------- */

typedef struct agent_ctx {
        orc_coord *c;
        PGconn **conn;
        const fabric_job *j;
        unsigned turn, k;   /* the turn of the last call, and how many calls it made so far */
        char last_run[256]; /* the run of the call being reported */
} agent_ctx;

/* What goes back to the model from an ended tool step's row: stdout, and when it failed how and stderr. */
static void tool_output(PGresult *res, char **ret_output, bool *ret_failed) {
        const char *state = mem_pg_value(res, 0, MEM_TOOL_STATE);
        const char *b64 = mem_pg_value(res, 0, MEM_TOOL_OUTPUT_B64);
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        au_buf b = AU_BUF_INIT(0);

        if (b64)
                au_base64_decode(b64, strlen(b64), &out, &len);
        if (out)
                au_buf_append(&b, out, len);
        *ret_failed = strcmp(state, "succeeded") != 0;
        if (*ret_failed) {
                const char *err = mem_pg_value(res, 0, MEM_TOOL_ERROR),
                           *stderr_text = mem_pg_value(res, 0, MEM_TOOL_STDERR);
                const char *outcome = mem_pg_value(res, 0, MEM_TOOL_OUTCOME),
                           *code = mem_pg_value(res, 0, MEM_TOOL_EXIT_CODE);
                au_buf_printf(&b, "%s[the run %s: outcome %s, exit code %s%s%s]\n", b.len > 0 ? "\n" : "",
                              state, outcome ? outcome : "none", code ? code : "none", err ? ": " : "",
                              err ? err : "");
                if (stderr_text && *stderr_text) {
                        size_t n = strlen(stderr_text);
                        au_buf_puts(&b, "[stderr]\n");
                        au_buf_append(&b, stderr_text + (n > TOOL_STDERR_BYTES ? n - TOOL_STDERR_BYTES : 0),
                                      MIN(n, (size_t) TOOL_STDERR_BYTES));
                }
        }
        *ret_output = au_buf_steal(&b, NULL);
        if (!*ret_output)
                *ret_output = strdup("");
}

/* The runner: the call's run as a tool step, placed by the scheduler; waits for its end. */
static int run_tool(void *userdata, const orc_agent_call *call, char **ret_output, bool *ret_failed) {
        agent_ctx *x = userdata;
        orc_coord *c = x->c;
        const fabric_job *j = x->j;
        char step[128], prog[128];
        au_error err = {0};
        int r;

        if (call->turn != x->turn) {
                x->turn = call->turn;
                x->k = 0;
        }
        x->k++;
        snprintf(step, sizeof(step), "%s.a%u.t%u-%u", j->step, j->attempt, call->turn, x->k);
        snprintf(x->last_run, sizeof(x->last_run), "%s.%s.1", j->wf, step);
        snprintf(prog, sizeof(prog), "tool:%s", call->tool);
        if (strlen(step) > ORC_MAX_STEP_ID)
                return -ENAMETOOLONG;
        if (ensure_conn(c, x->conn) < 0)
                return -ENOTCONN;
        r = mem_pg_begin(*x->conn, &err);
        if (r >= 0)
                r = mem_store_tool_step_add(*x->conn, j->wf, step, call->run_json, prog, &err);
        if (r >= 0)
                r = mem_pg_commit(*x->conn, &err);
        if (r < 0) {
                mem_pg_rollback(*x->conn);
                log_warning("workflow %s step %s: tool call %s: %s", j->wf, j->step, step, err.msg);
                return r;
        }
        orc_wake_scheduler(c);

        for (;;) {
                _cleanup_pgresult_ PGresult *res = NULL;
                const char *state, *wstate;

                if (atomic_load(&c->stop))
                        return -ECANCELED;
                if (au_now_ms() >= call->deadline_ms)
                        return -ETIMEDOUT;
                sleep_ms(TOOL_POLL_MS);
                if (ensure_conn(c, x->conn) < 0 ||
                    mem_store_tool_step_get(*x->conn, j->wf, step, &res, NULL) < 0 || PQntuples(res) == 0)
                        continue;
                state = mem_pg_value(res, 0, MEM_TOOL_STATE);
                wstate = mem_pg_value(res, 0, MEM_TOOL_WORKFLOW_STATE);
                if (strcmp(wstate, "cancelled") == 0) {
                        /* a cancelled workflow spends nothing more: the agent's next call ends it */
                        fab_budget_set(c->fabric, FAB_SCOPE_WORKFLOW, j->wf, 0);
                        return -ECANCELED;
                }
                if (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
                    strcmp(state, "cancelled") == 0 || strcmp(state, "skipped") == 0) {
                        tool_output(res, ret_output, ret_failed);
                        return *ret_output ? 0 : -ENOMEM;
                }
        }
}

/* Each tool call an audit row: tool, the arguments' sha256 and first bytes, status, the run. */
static void audit_tool(void *userdata, const orc_agent_call *call, orc_agent_call_status status,
                       const char *why, size_t output_bytes) {
        agent_ctx *x = userdata;
        const char *args = call->arguments ? call->arguments : "";
        unsigned char sha[SHA256_DIGEST_LENGTH];
        char hex[2 * SHA256_DIGEST_LENGTH + 1], turn[16], attempt[16], bytes[32];
        _cleanup_free_ char *head = NULL, *detail = NULL;
        bool ran = status == ORC_AGENT_CALL_RAN || (status == ORC_AGENT_CALL_FAILED && call->run_json);

        SHA256((const unsigned char *) args, strlen(args), sha);
        au_hex(sha, sizeof(sha), hex);
        head = au_utf8_sanitize(args, MIN(strlen(args), (size_t) ARGS_AUDIT_BYTES), NULL);
        snprintf(turn, sizeof(turn), "\x01%u", call->turn);
        snprintf(attempt, sizeof(attempt), "\x01%u", x->j->attempt);
        snprintf(bytes, sizeof(bytes), "\x01%zu", output_bytes);
        detail = orc_json_obj((const char *const[]){"step",
                                                    x->j->step,
                                                    "attempt",
                                                    attempt,
                                                    "turn",
                                                    turn,
                                                    "call_id",
                                                    call->call_id,
                                                    "tool",
                                                    call->tool,
                                                    "arguments_sha256",
                                                    hex,
                                                    "arguments",
                                                    head,
                                                    "status",
                                                    orc_agent_call_status_name(status),
                                                    "why",
                                                    why,
                                                    "output_bytes",
                                                    bytes,
                                                    "run",
                                                    ran ? x->last_run : NULL,
                                                    NULL});
        if (detail && ensure_conn(x->c, x->conn) >= 0)
                audit_now(x->c, *x->conn, x->j->wf, "tool_call", detail);
}

static void run_agent(orc_coord *c, PGconn **conn, const fabric_job *j) {
        _cleanup_json_ yajl_val block = NULL;
        orc_agent_spec spec = {0};
        orc_agent_result res = {0};
        _cleanup_free_ char *json = NULL, *record = NULL, *summary = NULL;
        char error[700] = "";
        uint64_t started = au_wall_ms();
        agent_ctx x = {.c = c, .conn = conn, .j = j};
        orc_agent_hooks hooks = {.run = run_tool,
                                 .run_userdata = &x,
                                 .audit = audit_tool,
                                 .audit_userdata = &x,
                                 .workflow = j->wf,
                                 .key = j->key};
        au_error err = {0};
        bool ok = false;
        int r;

        r = au_json_parse(j->block, strlen(j->block), 1u << 20, &block, &err);
        if (r >= 0)
                r = orc_agent_spec_parse(block, &c->policy, &spec, &err);
        if (r >= 0)
                r = orc_agent_run(c->fabric, &spec, &hooks, &res);
        if (r < 0)
                snprintf(error, sizeof(error), "agent step: %s", err.msg[0] ? err.msg : strerror(-r));
        else {
                ok = res.outcome == ORC_AGENT_OK;
                if (!ok)
                        snprintf(error, sizeof(error), "%s: %s", orc_agent_outcome_name(res.outcome),
                                 res.error[0] ? res.error : "no final answer");
                json = orc_agent_result_json(&res);
                record = with_kind("agent", json);
                summary = record ? without_transcript(record) : NULL;
        }
        log_info("workflow %s step %s attempt %u: agent %s after %u turns, %u tool calls, $%.6f%s%s", j->wf,
                 j->step, j->attempt, r < 0 ? "error" : orc_agent_outcome_name(res.outcome), res.turns,
                 res.tool_calls, res.cost_usd, error[0] ? ": " : "", error);
        sbx_result *result = make_result(c, j, ok, ok ? res.answer : "", error, started);
        if (result)
                apply(c, conn, result, -1, record,
                      summary ? (const char *const[]){"agent_result", summary, NULL} : NULL);
        orc_agent_result_done(&res);
        orc_agent_spec_done(&spec);
}

/* ---- lost calls, the workers ------------------------------------------------------------- */

/* Whether the coordinator named by a "fabric:<id>" node is gone: this one before a restart, or a
 * process of this host ("<host>:<pid>") that no longer runs. */
static bool owner_gone(orc_coord *c, const char *node) {
        char host[256] = "";
        const char *id = node + strlen("fabric:"), *colon;

        if (strcmp(id, c->id) == 0)
                return true;
        gethostname(host, sizeof(host) - 1);
        colon = strrchr(id, ':');
        if (!colon || (size_t) (colon - id) != strlen(host) || strncmp(id, host, strlen(host)) != 0)
                return false;
        pid_t pid = (pid_t) atoi(colon + 1);
        return pid > 0 && pid != getpid() && kill(pid, 0) < 0 && errno == ESRCH;
}

static void requeue_lost(orc_coord *c, PGconn *conn) {
        _cleanup_pgresult_ PGresult *res = NULL;

        if (mem_store_fabric_inflight(conn, &res, NULL) < 0)
                return;
        for (int i = 0; i < PQntuples(res); i++) {
                const char *wf = mem_pg_value(res, i, MEM_FABIN_WORKFLOW),
                           *step = mem_pg_value(res, i, MEM_FABIN_STEP),
                           *node = mem_pg_value(res, i, MEM_FABIN_NODE);
                char attempt[16];
                _cleanup_free_ char *detail = NULL;
                au_error err = {0};
                bool requeued = false;
                orc_audit a;
                int r;

                if (!owner_gone(c, node))
                        continue;
                snprintf(attempt, sizeof(attempt), "\x01%s", mem_pg_value(res, i, MEM_FABIN_ATTEMPT));
                detail = orc_json_obj((const char *const[]){"step", step, "attempt", attempt, "node", node,
                                                            "then", "ready", NULL});
                orc_audit_init(&a, c->id);
                r = mem_pg_begin(conn, &err);
                if (r >= 0)
                        r = mem_store_fabric_requeue(conn, wf, step, node, &requeued, &err);
                if (r >= 0 && requeued && detail)
                        r = orc_audit_add(&a, wf, "fabric_call_lost", detail);
                if (r >= 0)
                        r = orc_audit_flush_commit(c, conn, &a, &err);
                if (r < 0)
                        mem_pg_rollback(conn);
                else if (requeued)
                        log_warning("workflow %s step %s: its model call was lost with coordinator %s; "
                                    "ready again",
                                    wf, step, node + strlen("fabric:"));
                orc_audit_done(&a);
        }
}

static void *worker_main(void *arg) {
        orc_coord *c = arg;
        PGconn *conn = NULL;
        bool first = !atomic_exchange(&c->fabric_workers->swept, true);

        while (!atomic_load(&c->stop)) {
                fabric_job j = {0};
                int r;

                if (ensure_conn(c, &conn) < 0) {
                        sleep_ms(250);
                        continue;
                }
                if (first) {
                        requeue_lost(c, conn);
                        first = false;
                }
                r = pick(c, conn, &j);
                if (r <= 0) {
                        sleep_ms(IDLE_POLL_MS);
                        continue;
                }
                if (c->fabric && j.budget > 0)
                        fab_budget_set(c->fabric, FAB_SCOPE_WORKFLOW, j.wf, j.budget);
                if (strcmp(j.kind, "model") == 0)
                        run_model(c, &conn, &j);
                else
                        run_agent(c, &conn, &j);
                job_done(&j);
        }
        if (conn)
                mem_pg_close(conn);
        return NULL;
}

int orc_fabric_workers_start(orc_coord *c, au_error *err) {
        struct orc_fabric_workers *w;
        int r;

        if (!c->fabric)
                return 0;
        curl_global_init(CURL_GLOBAL_DEFAULT); /* once, before the workers' threads */
        w = calloc(1, sizeof(*w));
        if (!w ||
            !(w->threads = calloc(c->cfg.model_workers ? c->cfg.model_workers : 1, sizeof(pthread_t)))) {
                free(w);
                return au_error_set(err, ENOMEM, "fabric workers");
        }
        c->fabric_workers = w;
        for (size_t i = 0; i < (c->cfg.model_workers ? c->cfg.model_workers : 1); i++) {
                if ((r = pthread_create(&w->threads[i], NULL, worker_main, c)) != 0)
                        return au_error_set(err, r, "start a fabric worker");
                w->n++;
        }
        log_info("%zu fabric workers for model and agent steps", w->n);
        return 0;
}

void orc_fabric_workers_stop(orc_coord *c) {
        struct orc_fabric_workers *w = c->fabric_workers;

        if (!w)
                return;
        atomic_store(&c->stop, true);
        fab_stop(c->fabric); /* calls under way end now; their steps stay dispatched, for the next start */
        for (size_t i = 0; i < w->n; i++)
                pthread_join(w->threads[i], NULL);
        free(w->threads);
        free(w);
        c->fabric_workers = NULL;
}
