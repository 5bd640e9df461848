/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/url.h"
#include "daemon/secrets.h"
#include "memory/seal.h"
#include "memory/streams.h"
#include "node.h"

#define SPEC_MAX_BYTES (64u << 20)
#define HEARTBEAT_MS 1000
#define HEARTBEAT_TTL_MS 3000
/* Dispatch tokens remembered against replays; older ones fall out (their run ids' results are remembered for
 * 24 h). */
#define SEEN_TOKENS 8192

typedef enum job_state {
        JOB_CHECKING, /* asking Redis whether this id already has a result */
        JOB_QUEUED,   /* waiting for a slot or a token */
        JOB_RUNNING,
        JOB_PUBLISHING, /* result spooled, on its way to Redis */
} job_state;

typedef struct job job;
struct job {
        dmn_node *node;
        job *prev, *next;
        job_state state;
        char *id;
        char *workflow;
        char *step;
        uint32_t attempt;
        bool lost;      /* a pending entry of a previous life: no result stored means the run was lost */
        char **entries; /* jobs-stream entries this result answers (duplicates included) */
        size_t n_entries;
        sbx_spec *spec;
        dmn_secrets *secrets; /* the values of the secrets it names, masked in its result */
        sbx_run *run;
        au_source *src;
        dmn_request *req; /* a control-socket run: answered there, not on the bus */
        char *result_json;
        size_t result_len;
        char *token;                     /* the dispatch's token (bus_auth), echoed with the result */
        char auth[MEM_SEAL_HEX_LEN + 1]; /* our MAC of the result, once it is known */
        char *spool_path;
        bool publish_in_flight;
        uint64_t publish_ms; /* when the publish in flight was sent */
        uint64_t enqueued_ms;
};

typedef struct bucket {
        char *workflow;
        double tokens;
        uint64_t last_ms;
        struct bucket *next;
} bucket;

struct dmn_node {
        au_loop *loop;
        dmn_config cfg;
        sbx_policy policy;
        sbx_context *sbx;
        mem_bus *bus;
        au_metrics *metrics;
        au_metric *m_runs, *m_duration, *m_running, *m_queued, *m_denied, *m_reconnects, *m_spooled,
                *m_refused;
        bool auth; /* bus_auth: jobs need the coordinator's MAC, results carry ours */
        uint8_t key[MEM_SEAL_KEY_BYTES];
        char (*seen)[MEM_SEAL_HEX_LEN + 1]; /* ring of dispatch tokens taken */
        size_t n_seen, seen_next;
        uint64_t beat;
        au_source *heartbeat, *wake, *grace, *sweep;
        job *jobs; /* every live job */
        unsigned n_running, n_queued, n_checking, n_publishing;
        bucket *buckets;
        bool draining;
        bool connected;
        bool spool_ready;
        char started_at[32];
        char status_line[256];
        char kernel[128];
};

/* ---- helpers ---------------------------------------------------------------- */

static job *job_find(dmn_node *n, const char *id) {
        for (job *j = n->jobs; j; j = j->next)
                if (j->id && !j->req && strcmp(j->id, id) == 0)
                        return j;
        return NULL;
}

static bool entry_known(dmn_node *n, const char *entry) {
        for (job *j = n->jobs; j; j = j->next)
                for (size_t i = 0; i < j->n_entries; i++)
                        if (strcmp(j->entries[i], entry) == 0)
                                return true;
        return false;
}

static int job_add_entry(job *j, const char *entry) {
        if (!entry)
                return 0;
        char **v = realloc(j->entries, (j->n_entries + 1) * sizeof(char *));
        if (!v)
                return -ENOMEM;
        j->entries = v;
        if (!(v[j->n_entries] = strdup(entry)))
                return -ENOMEM;
        j->n_entries++;
        return 0;
}

static job *job_new(dmn_node *n, const char *entry) {
        job *j = calloc(1, sizeof(*j));
        if (!j)
                return NULL;
        j->node = n;
        j->enqueued_ms = au_now_ms();
        if (job_add_entry(j, entry) < 0) {
                free(j);
                return NULL;
        }
        j->next = n->jobs;
        if (n->jobs)
                n->jobs->prev = j;
        n->jobs = j;
        return j;
}

static void update_gauges(dmn_node *n) {
        au_metric_set(n->m_running, NULL, n->n_running);
        au_metric_set(n->m_queued, NULL, n->n_queued + n->n_checking);
        au_metric_set(n->m_spooled, NULL, n->n_publishing);
}

static void job_free(job *j) {
        dmn_node *n = j->node;
        if (j->prev)
                j->prev->next = j->next;
        else
                n->jobs = j->next;
        if (j->next)
                j->next->prev = j->prev;
        au_source_free(j->src);
        sbx_run_free(j->run);
        sbx_spec_free(j->spec);
        dmn_secrets_free(j->secrets);
        if (j->req)
                dmn_request_fail(j->req, "the node is shutting down");
        for (size_t i = 0; i < j->n_entries; i++)
                free(j->entries[i]);
        free(j->entries);
        free(j->id);
        free(j->workflow);
        free(j->step);
        free(j->result_json);
        free(j->token);
        free(j->spool_path);
        free(j);
}

static void set_state(job *j, job_state s) {
        dmn_node *n = j->node;
        unsigned *counter[] = {&n->n_checking, &n->n_queued, &n->n_running, &n->n_publishing};
        (*counter[j->state])--;
        j->state = s;
        (*counter[s])++;
        update_gauges(n);
}

static void refresh_credit(dmn_node *n);
static void schedule(dmn_node *n);

/* ---- results: spool and publish ------------------------------------------------ */

static int spool_dir(dmn_node *n, char *buf, size_t size) {
        snprintf(buf, size, "%s/spool", n->cfg.state_dir);
        if (n->spool_ready)
                return 0;
        if (mkdir(n->cfg.state_dir, 0750) < 0 && errno != EEXIST)
                return negative_errno();
        if (mkdir(buf, 0750) < 0 && errno != EEXIST)
                return negative_errno();
        n->spool_ready = true;
        return 0;
}

/*
 * Writes the result and the entries it answers to the spool (write, fsync,
 * rename) when Redis cannot take it now, so that neither the outage nor a
 * crash of this daemon meanwhile loses it. The file is removed once Redis has
 * it. (While Redis is up a result goes straight to it: if this daemon dies
 * with a publish in flight, the job's entry is still pending and the next
 * start answers it from autoos:result:<id>, or reports the run as lost.)
 */
static int spool_write(job *j) {
        char dir[4096], tmp[4200];
        int r = spool_dir(j->node, dir, sizeof(dir));
        if (r < 0)
                return r;
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        if (!g)
                return -ENOMEM;
        au_json_gen_map_open(g);
        au_json_gen_string(g, "entries");
        au_json_gen_array_open(g);
        for (size_t i = 0; i < j->n_entries; i++)
                au_json_gen_string(g, j->entries[i]);
        au_json_gen_array_close(g);
        au_json_gen_string(g, "id");
        au_json_gen_string(g, j->id);
        au_json_gen_string(g, "result");
        au_json_gen_stringn(g, j->result_json, j->result_len);
        if (j->token && j->auth[0]) {
                au_json_gen_kv_string(g, "token", j->token);
                au_json_gen_kv_string(g, "auth", j->auth);
        }
        au_json_gen_map_close(g);
        size_t len;
        _cleanup_free_ char *doc = au_json_gen_finish(g, &len);
        if (!doc)
                return -ENOMEM;

        static uint64_t seq;
        if (asprintf(&j->spool_path, "%s/%" PRIu64 "-%d-%" PRIu64 ".json", dir, au_now_ms(), (int) getpid(),
                     ++seq) < 0) {
                j->spool_path = NULL;
                return -ENOMEM;
        }
        snprintf(tmp, sizeof(tmp), "%s.tmp", j->spool_path);
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (fd < 0)
                return negative_errno();
        if (write(fd, doc, len) != (ssize_t) len || fsync(fd) < 0 || rename(tmp, j->spool_path) < 0) {
                r = negative_errno();
                unlink(tmp);
                return r;
        }
        return 0;
}

static void publish(job *j);

static void spool(job *j) {
        if (j->spool_path)
                return;
        int r = spool_write(j);
        if (r < 0)
                log_warning_errno(r, "could not spool the result of %s; it is held in memory only", j->id);
}

static void published(int r, void *userdata) {
        job *j = userdata;
        dmn_node *n = j->node;
        j->publish_in_flight = false;
        if (r < 0) {
                /* Kept in the spool; sent again when the bus is back. */
                log_debug("result %s not delivered yet: %s", j->id, strerror(-r));
                spool(j);
                return;
        }
        if (j->spool_path)
                unlink(j->spool_path);
        job_free(j);
        n->n_publishing--;
        update_gauges(n);
        refresh_credit(n);
}

static void publish(job *j) {
        dmn_node *n = j->node;
        if (j->publish_in_flight || !n->connected)
                return;
        j->publish_in_flight = true;
        j->publish_ms = au_now_ms();
        mem_bus_seal seal = {.token = j->token, .auth = j->auth};
        int r = mem_bus_publish_result(n->bus, j->id, j->result_json, j->result_len,
                                       j->token && j->auth[0] ? &seal : NULL,
                                       (const char *const *) j->entries, j->n_entries, published, j);
        if (r < 0)
                j->publish_in_flight = false;
}

/* Our MAC of a result: parts node, token, result JSON (DESIGN.md "Node <-> coordinator"). */
static int result_mac(dmn_node *n, const char *token, const char *json, size_t len,
                      char out[MEM_SEAL_HEX_LEN + 1]) {
        const char *parts[] = {n->cfg.node_id, token, json};
        size_t lens[] = {strlen(n->cfg.node_id), strlen(token), len};
        return mem_seal_mac(n->key, MEM_SEAL_RESULT, parts, lens, 3, out);
}

static void seal_result(job *j) {
        j->auth[0] = '\0';
        if (j->node->auth && j->token && j->result_json &&
            result_mac(j->node, j->token, j->result_json, j->result_len, j->auth) < 0)
                j->auth[0] = '\0';
}

/* The run (or the refusal) is over: record, deliver, free the slot. */
static void job_complete(job *j, sbx_result *res) {
        dmn_node *n = j->node;
        const char *outcome = sbx_outcome_to_string(res->outcome);

        dmn_secrets_mask(j->secrets, res); /* before anything of it is logged or leaves the node */
        /* A refused entry without a usable id is answered under its stream entry id. */
        if (!j->id && !j->req && j->n_entries && !(j->id = strdup(j->entries[0])))
                abort();
        if (!res->id && j->id)
                res->id = strdup(j->id);
        if (!res->node)
                res->node = strdup(n->cfg.node_id);
        /* Echoed even for refusals, so the coordinator can tell which attempt this answers. */
        if (!res->workflow && j->workflow)
                res->workflow = strdup(j->workflow);
        if (!res->step && j->step)
                res->step = strdup(j->step);
        if (!res->attempt)
                res->attempt = j->attempt;

        au_metric_add(n->m_runs, outcome, 1);
        if (res->outcome != SBX_OUTCOME_REJECTED && res->outcome != SBX_OUTCOME_SANDBOX_ERROR)
                au_metric_observe(n->m_duration, (double) res->wall_ms / 1000.0);
        for (size_t i = 0; i < res->n_denied_syscalls; i++)
                au_metric_add(n->m_denied, res->denied_syscalls[i], 1);

        const char *kv[] = {"run",   j->id,     "workflow", j->workflow, "step",
                            j->step, "outcome", outcome,    NULL};
        au_log_kv(res->outcome == SBX_OUTCOME_SANDBOX_ERROR ? AU_LOG_WARNING : AU_LOG_INFO, kv,
                  "run %s ended: %s%s%s", j->id ? j->id : "(no id)", outcome, res->error ? ": " : "",
                  res->error ? res->error : (res->reason ? res->reason : ""));

        free(j->result_json);
        j->result_json = sbx_result_to_json(res, false);
        j->result_len = j->result_json ? strlen(j->result_json) : 0;
        sbx_result_free(res);
        j->src = au_source_free(j->src);
        j->run = sbx_run_free(j->run);

        if (j->req) {
                if (j->result_json)
                        dmn_request_reply(j->req, j->result_json, j->result_len);
                else
                        dmn_request_fail(j->req, "out of memory");
                j->req = NULL;
                n->n_running -= j->state == JOB_RUNNING;
                n->n_queued -= j->state == JOB_QUEUED;
                n->n_checking -= j->state == JOB_CHECKING;
                job_free(j);
                update_gauges(n);
                schedule(n);
                return;
        }
        if (!j->result_json) {
                log_error("out of memory serializing the result of %s", j->id);
                abort(); /* a restart reports the job as lost; better than silently dropping it */
        }
        if (!j->id && !(j->id = strdup(j->n_entries ? j->entries[0] : "unknown")))
                abort();
        seal_result(j);
        set_state(j, JOB_PUBLISHING);
        if (!n->connected)
                spool(j);
        publish(j);
        schedule(n);
}

static void job_fail(job *j, sbx_outcome outcome, const char *message) {
        sbx_result *res = sbx_result_new_error(j->id, outcome, message);
        if (!res)
                abort();
        clock_gettime(CLOCK_REALTIME, &res->started_at);
        res->finished_at = res->started_at;
        job_complete(j, res);
}

/* ---- running ----------------------------------------------------------------------- */

static void on_run_event(au_source *s, int fd, uint32_t revents, void *userdata) {
        job *j = userdata;
        int r = sbx_run_dispatch(j->run);
        if (r == 0)
                return;
        sbx_result *res = NULL;
        if (r < 0 || sbx_run_take_result(j->run, &res) < 0) {
                job_fail(j, SBX_OUTCOME_SANDBOX_ERROR, "supervising the run failed");
                return;
        }
        job_complete(j, res);
}

static void job_start(job *j) {
        dmn_node *n = j->node;
        au_error err = {};

        set_state(j, JOB_RUNNING);
        int r = sbx_run_start(n->sbx, j->spec, NULL, NULL, &j->run, &err);
        if (r < 0) {
                job_fail(j, SBX_OUTCOME_SANDBOX_ERROR, err.msg[0] ? err.msg : "could not start the run");
                return;
        }
        r = au_loop_add_io(n->loop, sbx_run_fd(j->run), EPOLLIN, on_run_event, j, &j->src);
        if (r < 0) {
                sbx_run_kill(j->run, SBX_OUTCOME_SANDBOX_ERROR, "could not watch the run");
                job_fail(j, SBX_OUTCOME_SANDBOX_ERROR, "could not watch the run");
        }
}

/* Takes a token for the workflow; returns 0, or how many ms until one is due. */
static uint64_t take_token(dmn_node *n, const char *workflow) {
        if (n->cfg.rate <= 0 || !workflow)
                return 0;
        bucket *b;
        for (b = n->buckets; b; b = b->next)
                if (strcmp(b->workflow, workflow) == 0)
                        break;
        uint64_t now = au_now_ms();
        if (!b) {
                b = calloc(1, sizeof(*b));
                if (!b || !(b->workflow = strdup(workflow))) {
                        free(b);
                        return 0; /* no memory for a bucket: do not hold the job hostage */
                }
                b->tokens = n->cfg.burst;
                b->last_ms = now;
                b->next = n->buckets;
                n->buckets = b;
        }
        b->tokens =
                fmin((double) n->cfg.burst, b->tokens + (double) (now - b->last_ms) * n->cfg.rate / 1000.0);
        b->last_ms = now;
        if (b->tokens >= 1.0) {
                b->tokens -= 1.0;
                return 0;
        }
        return (uint64_t) ceil((1.0 - b->tokens) * 1000.0 / n->cfg.rate);
}

/* Starts what can start, oldest first; arms a wake-up for rate-limited jobs. */
static void schedule(dmn_node *n) {
        uint64_t next_wake = 0;
        job *tail = n->jobs;
        while (tail && tail->next)
                tail = tail->next;
        for (job *j = tail, *prev; j && n->n_running < n->cfg.max_runs; j = prev) {
                prev = j->prev;
                if (j->state != JOB_QUEUED)
                        continue;
                uint64_t wait = take_token(n, j->workflow);
                if (wait > 0) {
                        next_wake = next_wake ? MIN(next_wake, wait) : wait;
                        continue;
                }
                job_start(j);
        }
        if (next_wake)
                au_source_set_timer(n->wake, next_wake, 0);
        refresh_credit(n);
}

static void on_wake(au_source *s, void *userdata) {
        schedule(userdata);
}

/*
 * Up to max_runs + max_queued jobs are read ahead. Past that the node keeps
 * reading one entry at a time, up to four times as many, so that a cancel
 * behind the queue still arrives; only then does it stop reading. Jobs it
 * has read but not started wait in order; none is dropped.
 */
static void refresh_credit(dmn_node *n) {
        if (!n->bus)
                return;
        unsigned busy = n->n_running + n->n_queued + n->n_checking;
        unsigned room = n->cfg.max_runs + n->cfg.max_queued;
        unsigned credit = busy < room ? room - busy : busy < 4 * room ? 1 : 0;
        mem_bus_set_job_credit(n->bus, n->draining ? 0 : credit);
}

/* ---- jobs from the bus ------------------------------------------------------------------- */

static void on_stored_result(int r, const char *value, size_t len, void *userdata) {
        job *j = userdata;
        dmn_node *n = j->node;
        if (j->state != JOB_CHECKING)
                return; /* cancelled meanwhile: already answered */
        if (r >= 0 && value && n->auth) {
                /* "<token> <auth>\n<json>", sealed by us: anything else was planted by someone else. */
                const char *sp = memchr(value, ' ', len), *nl = memchr(value, '\n', len);
                bool good = false;
                if (sp && nl && sp < nl && j->token && (size_t) (sp - value) == strlen(j->token) &&
                    memcmp(value, j->token, strlen(j->token)) == 0) {
                        const char *json = nl + 1;
                        size_t jlen = len - (size_t) (json - value);
                        char want[MEM_SEAL_HEX_LEN + 1];
                        if ((size_t) (nl - sp - 1) == MEM_SEAL_HEX_LEN &&
                            result_mac(n, j->token, json, jlen, want) == 0 &&
                            CRYPTO_memcmp(want, sp + 1, MEM_SEAL_HEX_LEN) == 0) {
                                good = true;
                                j->result_json = strndup(json, jlen);
                                j->result_len = j->result_json ? jlen : 0;
                                memcpy(j->auth, want, sizeof(want));
                        }
                }
                if (!good) {
                        log_warning(
                                "the remembered result of %s is not sealed by this node for this dispatch: "
                                "ignored (planted?)",
                                j->id);
                        au_metric_add(n->m_refused, "planted_result", 1);
                        value = NULL;
                }
        } else if (r >= 0 && value) {
                j->result_json = strndup(value, len);
                j->result_len = j->result_json ? len : 0;
        }
        if (r >= 0 && value && j->result_json) {
                /* Already answered once: send the same result again, run nothing. */
                log_info("job %s already has a result; re-sending it", j->id);
                set_state(j, JOB_PUBLISHING);
                publish(j);
                return;
        }
        if (j->lost) {
                job_fail(j, SBX_OUTCOME_SANDBOX_ERROR, "node restarted during the run");
                return;
        }
        /* No stored result (or Redis could not say): run it. Redelivery is harmless. */
        set_state(j, JOB_QUEUED);
        schedule(n);
}

/* Best effort: the id (and workflow, step, attempt) of a spec we refuse, for the result. */
static void salvage_ids(job *j, const char *value, size_t len) {
        yajl_val tree = NULL;
        if (au_json_parse(value, len, SPEC_MAX_BYTES, &tree, NULL) < 0)
                return;
        const char *s;
        if (au_json_get_string(au_json_get(tree, "id"), "id", &s, NULL) >= 0 && !j->id)
                j->id = strndup(s, 128);
        if (au_json_get_string(au_json_get(tree, "workflow"), "workflow", &s, NULL) >= 0 && !j->workflow)
                j->workflow = strndup(s, 128);
        if (au_json_get_string(au_json_get(tree, "step"), "step", &s, NULL) >= 0 && !j->step)
                j->step = strndup(s, 128);
        uint32_t a;
        if (au_json_get_uint32(au_json_get(tree, "attempt"), "attempt", &a, NULL) >= 0 && !j->attempt)
                j->attempt = a;
        yajl_tree_free(tree);
}

/* An entry we do not run: acknowledged (so it is not read again), counted and logged; no result is sent. */
static void refuse_entry(dmn_node *n, const char *entry_id, const char *reason, const char *detail) {
        const char *ack[] = {entry_id};
        const char *kv[] = {"entry", entry_id, "reason", reason, NULL};

        au_log_kv(AU_LOG_WARNING, kv, "jobs stream entry %s refused (%s): %s; not run", entry_id, reason,
                  detail);
        au_metric_add(n->m_refused, reason, 1);
        mem_bus_ack(n->bus, ack, 1, NULL, NULL);
        refresh_credit(n);
}

/*
 * With bus_auth on, why the entry must not be acted on (the reason label
 * for autoosd_jobs_refused_total), or NULL: it carries the coordinator's MAC
 * of (node, field, value, token, expires) under this node's key, and a spec
 * has not expired. Redelivered entries were checked before, but a previous
 * life of this daemon may have read them, so the MAC is checked again; only
 * their expiry is not.
 */
static const char *entry_refusal(dmn_node *n, const char *field, const char *value, size_t len,
                                 bool truncated, bool pending, const char **ret_token,
                                 size_t *ret_token_len) {
        size_t auth_len = 0, token_len = 0, expires_len = 0;
        const char *auth = mem_bus_job_field(n->bus, MEM_FIELD_AUTH, &auth_len);
        const char *token = mem_bus_job_field(n->bus, MEM_FIELD_TOKEN, &token_len);
        const char *expires = mem_bus_job_field(n->bus, MEM_FIELD_EXPIRES, &expires_len);
        bool spec = strcmp(field, MEM_FIELD_SPEC) == 0;

        if (!spec && strcmp(field, MEM_FIELD_CANCEL) != 0)
                return "unknown_field";
        if (!auth)
                return "unsigned";
        if (spec &&
            (!token || !expires || token_len == 0 || token_len > MEM_SEAL_HEX_LEN || expires_len > 20))
                return "unsigned";
        if (truncated)
                return "too_large";
        const char *parts[] = {n->cfg.node_id, field, value ? value : "", spec ? token : "",
                               spec ? expires : ""};
        size_t lens[] = {strlen(n->cfg.node_id), strlen(field), len, spec ? token_len : 0,
                         spec ? expires_len : 0};
        if (!mem_seal_check(n->key, MEM_SEAL_JOB, parts, lens, 5, auth, auth_len))
                return "bad_mac";
        if (spec && !pending) {
                char buf[24];
                uint64_t until;
                memcpy(buf, expires, expires_len);
                buf[expires_len] = '\0';
                if (au_parse_uint64(buf, &until) < 0 || until < au_wall_ms())
                        return "expired";
        }
        *ret_token = token;
        *ret_token_len = token_len;
        return NULL;
}

/* True if this dispatch token was taken before; else remembers it. */
static bool token_replayed(dmn_node *n, const char *token) {
        for (size_t i = 0; i < n->n_seen; i++)
                if (strcmp(n->seen[i], token) == 0)
                        return true;
        snprintf(n->seen[n->seen_next], sizeof(n->seen[0]), "%s", token);
        n->seen_next = (n->seen_next + 1) % SEEN_TOKENS;
        if (n->n_seen < SEEN_TOKENS)
                n->n_seen++;
        return false;
}

static void handle_cancel(dmn_node *n, const char *entry_id, const char *value, size_t len) {
        _cleanup_free_ char *id = strndup(value ? value : "", len);
        const char *ack[] = {entry_id};
        job *j = id ? job_find(n, id) : NULL;

        if (!j)
                log_info("cancel for %s: no such run here", id ? id : "?");
        else if (j->state == JOB_RUNNING) {
                log_info("cancelling run %s", id);
                sbx_run_kill(j->run, SBX_OUTCOME_SIGNALED, "cancelled");
        } else if (j->state == JOB_QUEUED || j->state == JOB_CHECKING) {
                sbx_result *res = sbx_result_new_error(j->id, SBX_OUTCOME_SIGNALED, NULL);
                if (res) {
                        res->reason = strdup("cancelled before it started");
                        res->signal = 9;
                        clock_gettime(CLOCK_REALTIME, &res->started_at);
                        res->finished_at = res->started_at;
                        job_complete(j, res); /* its pending GET reply will find it publishing */
                }
        }
        mem_bus_ack(n->bus, ack, 1, NULL, NULL);
}

static void on_job(mem_bus *b, const char *entry_id, const char *field, const char *value, size_t len,
                   bool truncated, bool pending, void *userdata) {
        dmn_node *n = userdata;
        au_error err = {};

        /* Redelivered to us while we still hold it (a Redis reconnect): nothing to do,
         * but the bus counted it against our credit; give it back. */
        if (pending && entry_known(n, entry_id)) {
                refresh_credit(n);
                return;
        }

        const char *token = NULL;
        size_t token_len = 0;
        if (n->auth) {
                const char *why =
                        entry_refusal(n, field, value, len, truncated, pending, &token, &token_len);
                if (why) {
                        refuse_entry(n, entry_id, why,
                                     strcmp(why, "bad_mac") == 0
                                             ? "its MAC is not the coordinator's for this node"
                                     : strcmp(why, "unsigned") == 0 ? "it carries no authentication"
                                     : strcmp(why, "expired") == 0  ? "its dispatch has expired"
                                     : strcmp(why, "too_large") == 0
                                             ? "larger than this node accepts, so it cannot be verified"
                                             : "its field is neither spec nor cancel");
                        return;
                }
        }

        if (strcmp(field, MEM_FIELD_CANCEL) == 0) {
                handle_cancel(n, entry_id, value, len);
                return;
        }
        /* Draining: a read already in flight may still deliver jobs. Leave them
         * unacknowledged; the next start of this node answers them. */
        if (n->draining)
                return;

        job *j = job_new(n, entry_id);
        if (!j) {
                log_error("out of memory taking job %s", entry_id);
                return; /* stays pending in Redis; reported after a restart */
        }
        j->state = JOB_QUEUED;
        n->n_queued++;
        if (token && !(j->token = strndup(token, token_len))) {
                n->n_queued--;
                job_free(j);
                return; /* stays pending in Redis; reported after a restart */
        }

        if (strcmp(field, MEM_FIELD_SPEC) != 0) {
                char msg[256];
                snprintf(msg, sizeof(msg),
                         "jobs stream entry has field '%.64s': expected 'spec' or 'cancel'", field);
                job_fail(j, SBX_OUTCOME_REJECTED, msg);
                return;
        }
        if (truncated) {
                salvage_ids(j, value, len);
                job_fail(j, SBX_OUTCOME_REJECTED, "spec: larger than this node accepts");
                return;
        }
        if (pending) {
                /* Read before and never acknowledged. Its result may be out already (published
                 * from the spool while this entry was being redelivered): then send that again.
                 * Otherwise a previous life of this daemon lost the run. */
                salvage_ids(j, value, len);
                if (j->id) {
                        j->lost = true;
                        set_state(j, JOB_CHECKING);
                        if (mem_bus_get_result(n->bus, j->id, on_stored_result, j) >= 0)
                                return;
                }
                job_fail(j, SBX_OUTCOME_SANDBOX_ERROR, "node restarted during the run");
                return;
        }
        int r = dmn_secrets_spec(n->auth ? n->key : NULL, n->cfg.node_id, value, len, &n->policy, &j->spec,
                                 &j->secrets, &err);
        if (r < 0) {
                salvage_ids(j, value, len);
                job_fail(j, r == -EKEYREJECTED ? SBX_OUTCOME_SANDBOX_ERROR : SBX_OUTCOME_REJECTED,
                         err.msg[0] ? err.msg : "spec: invalid");
                return;
        }
        if (!j->spec->id) {
                job_fail(j, SBX_OUTCOME_REJECTED, "id: required on a jobs stream");
                return;
        }
        j->id = strdup(j->spec->id);
        j->workflow = j->spec->workflow ? strdup(j->spec->workflow) : NULL;
        j->step = j->spec->step ? strdup(j->spec->step) : NULL;
        j->attempt = j->spec->attempt;
        if (!j->id) {
                job_free(j);
                n->n_queued--;
                return;
        }

        /* The same id twice: one run, one result, both entries acknowledged with it. */
        for (job *o = n->jobs; o; o = o->next)
                if (o != j && o->id && !o->req && strcmp(o->id, j->id) == 0) {
                        job_add_entry(o, entry_id);
                        n->n_queued--;
                        job_free(j);
                        if (o->state == JOB_PUBLISHING) {
                                o->publish_in_flight = false; /* re-send with the new entry too */
                                publish(o);
                        }
                        return;
                }

        /* The same dispatch again in a new entry, with nothing of it here: a replay. */
        if (j->token && token_replayed(n, j->token)) {
                n->n_queued--;
                job_free(j);
                refuse_entry(n, entry_id, "replayed", "its dispatch token was taken before");
                return;
        }

        set_state(j, JOB_CHECKING);
        if (mem_bus_get_result(n->bus, j->id, on_stored_result, j) < 0) {
                set_state(j, JOB_QUEUED);
                schedule(n);
        }
        refresh_credit(n);
}

static void on_heartbeat(au_source *s, void *userdata);

static void on_state(mem_bus *b, bool connected, const char *why, void *userdata) {
        dmn_node *n = userdata;
        n->connected = connected;
        au_metric_set(n->m_reconnects, NULL, (double) mem_bus_reconnects(b));
        if (!connected) {
                log_warning("redis unavailable: %s; results are kept until it returns",
                            why ? why : "disconnected");
                /* Replies to in-flight publishes will come back as failures; allow resending. */
                return;
        }
        {
                _cleanup_free_ char *shown = au_url_mask(n->cfg.redis_url);
                log_info("connected to redis at %s", shown ? shown : "(set)");
        }
        /* Beat at once: a coordinator counts silence from the last beat, and Redis may have been away a
         * while. */
        on_heartbeat(NULL, n);
        for (job *j = n->jobs; j; j = j->next)
                if (j->state == JOB_PUBLISHING) {
                        j->publish_in_flight = false;
                        publish(j);
                }
        refresh_credit(n);
}

/* ---- heartbeat ------------------------------------------------------------------------------- */

static void on_heartbeat(au_source *s, void *userdata) {
        dmn_node *n = userdata;
        char cap[16], running[16], queued[16];
        if (!n->connected)
                return;
        snprintf(cap, sizeof(cap), "%u", n->cfg.max_runs);
        snprintf(running, sizeof(running), "%u", n->n_running);
        snprintf(queued, sizeof(queued), "%u", n->n_queued + n->n_checking);
        char beat[24], auth[MEM_SEAL_HEX_LEN + 1] = "";
        const char *state = n->draining ? "draining" : "active";
        snprintf(beat, sizeof(beat), "%" PRIu64, ++n->beat);
        if (n->auth) {
                /* What the coordinator places work by, sealed; beat only grows, so an old beat replayed is
                 * stale. */
                const char *parts[] = {n->cfg.node_id, n->started_at,   beat, cap, running, queued,
                                       n->cfg.labels,  PACKAGE_VERSION, state};
                size_t lens[ELEMENTSOF(parts)];
                for (size_t i = 0; i < ELEMENTSOF(parts); i++)
                        lens[i] = strlen(parts[i]);
                if (mem_seal_mac(n->key, MEM_SEAL_HEARTBEAT, parts, lens, ELEMENTSOF(parts), auth) < 0)
                        auth[0] = '\0';
        }
        const char *kv[] = {
                "capacity",
                cap,
                "running",
                running,
                "queued",
                queued,
                "labels",
                n->cfg.labels,
                "version",
                PACKAGE_VERSION,
                "cgroup_mode",
                sbx_context_cgroup_mode(n->sbx),
                "kernel",
                n->kernel,
                "started_at",
                n->started_at,
                "state",
                state,
                "beat",
                beat,
                auth[0] ? MEM_FIELD_AUTH : NULL,
                auth,
                NULL,
        };
        mem_bus_heartbeat(n->bus, kv, HEARTBEAT_TTL_MS, NULL, NULL);
}

/* A Redis that does not answer is as good as none: results it has not taken within
 * SPOOL_AFTER_MS go to the spool, so that a crash of ours meanwhile loses nothing. */
#define SPOOL_AFTER_MS 100
static void on_sweep(au_source *s, void *userdata) {
        dmn_node *n = userdata;
        uint64_t now = au_now_ms();
        for (job *j = n->jobs; j; j = j->next)
                if (j->state == JOB_PUBLISHING && !j->spool_path && j->publish_in_flight &&
                    now - j->publish_ms >= SPOOL_AFTER_MS)
                        spool(j);
}

/* ---- spool recovery ------------------------------------------------------------------------------ */

/* Results a previous life of this daemon could not deliver. */
static void spool_recover(dmn_node *n) {
        char dir[4096];
        if (spool_dir(n, dir, sizeof(dir)) < 0)
                return;
        DIR *d = opendir(dir);
        struct dirent *de;
        if (!d)
                return;
        while ((de = readdir(d))) {
                char path[4400];
                size_t nl = strlen(de->d_name);
                if (nl < 6 || strcmp(de->d_name + nl - 5, ".json") != 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                _cleanup_free_ char *buf = NULL;
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > SPEC_MAX_BYTES * 2 ||
                    !(buf = malloc((size_t) st.st_size + 1)) ||
                    read(fd, buf, (size_t) st.st_size) != st.st_size) {
                        log_warning("unreadable spool file %s left in place", path);
                        continue;
                }
                yajl_val tree = NULL;
                const char *id, *result;
                yajl_val entries;
                if (au_json_parse(buf, (size_t) st.st_size, SPEC_MAX_BYTES * 2, &tree, NULL) < 0 ||
                    au_json_get_string(au_json_get(tree, "id"), "id", &id, NULL) < 0 ||
                    au_json_get_string(au_json_get(tree, "result"), "result", &result, NULL) < 0 ||
                    !YAJL_IS_ARRAY(entries = au_json_get(tree, "entries"))) {
                        log_warning("malformed spool file %s left in place", path);
                        yajl_tree_free(tree);
                        continue;
                }
                job *j = job_new(n, NULL);
                if (j) {
                        for (size_t i = 0; i < entries->u.array.len; i++)
                                if (YAJL_IS_STRING(entries->u.array.values[i]))
                                        job_add_entry(j, YAJL_GET_STRING(entries->u.array.values[i]));
                        j->id = strdup(id);
                        j->result_json = strdup(result);
                        j->result_len = j->result_json ? strlen(j->result_json) : 0;
                        j->spool_path = strdup(path);
                        const char *tok, *auth;
                        if (au_json_get_string(au_json_get(tree, "token"), "token", &tok, NULL) >= 0 &&
                            au_json_get_string(au_json_get(tree, "auth"), "auth", &auth, NULL) >= 0 &&
                            strlen(auth) == MEM_SEAL_HEX_LEN) {
                                j->token = strdup(tok);
                                memcpy(j->auth, auth, MEM_SEAL_HEX_LEN + 1);
                        }
                        j->state = JOB_PUBLISHING;
                        n->n_publishing++;
                        log_info("recovered undelivered result %s from the spool", id);
                }
                yajl_tree_free(tree);
        }
        closedir(d);
        update_gauges(n);
}

/* ---- lifecycle -----------------------------------------------------------------------------------------
 */

int dmn_node_new(au_loop *loop, const dmn_config *cfg, const sbx_policy *policy, au_metrics *metrics,
                 dmn_node **ret, au_error *err) {
        static const double buckets[] = {0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,     2.5,   5,    10,    30,   60,  300};
        struct utsname u;
        int r;

        dmn_node *n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->loop = loop;
        if (dmn_config_copy(&n->cfg, cfg) < 0) {
                free(n);
                return -ENOMEM;
        }
        n->policy = *policy;
        n->metrics = metrics;
        au_iso8601_now(n->started_at, sizeof(n->started_at));
        if (uname(&u) == 0)
                snprintf(n->kernel, sizeof(n->kernel), "%s", u.release);

        n->m_runs =
                au_metrics_counter(metrics, "autoosd_runs_total", "Runs finished, by outcome.", "outcome");
        n->m_duration = au_metrics_histogram(metrics, "autoosd_run_duration_seconds", "Wall time of runs.",
                                             buckets, ELEMENTSOF(buckets));
        n->m_running = au_metrics_gauge(metrics, "autoosd_running", "Runs in progress.", NULL);
        n->m_queued =
                au_metrics_gauge(metrics, "autoosd_queued", "Jobs taken and waiting for a slot.", NULL);
        n->m_denied = au_metrics_counter(metrics, "autoosd_denied_syscalls_total",
                                         "Runs in which a syscall was refused, by syscall.", "syscall");
        n->m_reconnects =
                au_metrics_gauge(metrics, "autoosd_redis_reconnects_total", "Redis reconnections.", NULL);
        n->m_spooled =
                au_metrics_gauge(metrics, "autoosd_results_undelivered", "Results waiting for Redis.", NULL);
        n->m_refused = au_metrics_counter(metrics, "autoosd_jobs_refused_total",
                                          "Jobs stream entries (and remembered results) refused, by reason.",
                                          "reason");

        n->auth = cfg->bus_auth;
        if (n->auth) {
                r = mem_seal_key_load(cfg->node_key_file, n->key, err);
                if (r < 0) {
                        au_error_set_field(err, "node_key_file", "node_key_file: %s", err->msg);
                        goto fail;
                }
                n->seen = calloc(SEEN_TOKENS, sizeof(*n->seen));
                if (!n->seen) {
                        r = au_error_set(err, ENOMEM, "allocate the dispatch tokens");
                        goto fail;
                }
        } else
                log_warning(
                        "bus_auth is off: this node runs any job written to its Redis stream, by anyone; "
                        "only for a standalone node fed by hand (autoos-coordinator --enroll-node gives a "
                        "node "
                        "its key)");

        sbx_config sc = {
                .uid_base = cfg->uid_base,
                .uid_count = cfg->uid_count,
                .node = cfg->node_id,
                .state_dir = cfg->run_dir,
                .prepare_ahead = MIN(cfg->max_runs, 4u),
                .egress = &cfg->egress,
        };
        r = sbx_context_new(&sc, &n->sbx, err);
        if (r < 0)
                goto fail;
        if ((r = au_loop_add_timer(loop, 0, 0, on_wake, n, &n->wake)) < 0 ||
            (r = au_source_set_timer(n->wake, 0, 0)) < 0) {
                au_error_set(err, r, "create timers");
                goto fail;
        }
        spool_recover(n);
        *ret = n;
        return 0;
fail:
        dmn_node_free(n);
        return r;
}

int dmn_node_start(dmn_node *n, au_error *err) {
        static const mem_bus_ops ops = {.on_job = on_job, .on_state = on_state};
        mem_bus_config bc = {
                .url = n->cfg.redis_url,
                .node = n->cfg.node_id,
                .result_ttl_s = n->cfg.result_ttl_s,
        };
        int r = mem_bus_new(n->loop, &bc, &ops, n, &n->bus, err);
        if (r < 0)
                return r;
        r = au_loop_add_timer(n->loop, 0, HEARTBEAT_MS, on_heartbeat, n, &n->heartbeat);
        if (r < 0)
                return au_error_set(err, r, "create the heartbeat timer");
        r = au_loop_add_timer(n->loop, SPOOL_AFTER_MS, SPOOL_AFTER_MS, on_sweep, n, &n->sweep);
        if (r < 0)
                return au_error_set(err, r, "create the spool timer");
        refresh_credit(n);
        return 0;
}

dmn_node *dmn_node_free(dmn_node *n) {
        if (!n)
                return NULL;
        while (n->jobs) {
                job *j = n->jobs;
                if (j->run)
                        sbx_run_kill(j->run, SBX_OUTCOME_SIGNALED, "node shutting down");
                job_free(j);
        }
        while (n->buckets) {
                bucket *b = n->buckets;
                n->buckets = b->next;
                free(b->workflow);
                free(b);
        }
        au_source_free(n->heartbeat);
        au_source_free(n->wake);
        au_source_free(n->grace);
        au_source_free(n->sweep);
        mem_bus_free(n->bus);
        sbx_context_free(n->sbx);
        dmn_config_done(&n->cfg);
        free(n->seen);
        OPENSSL_cleanse(n->key, sizeof(n->key));
        free(n);
        return NULL;
}

void dmn_node_reload(dmn_node *n, const dmn_config *cfg, const sbx_policy *policy) {
        char *labels = strdup(cfg->labels);
        if (labels) {
                free(n->cfg.labels);
                n->cfg.labels = labels;
        }
        n->cfg.rate = cfg->rate;
        n->cfg.burst = cfg->burst;
        n->cfg.max_runs = cfg->max_runs;
        n->cfg.max_queued = cfg->max_queued;
        n->cfg.grace_ms = cfg->grace_ms;
        n->policy = *policy;
        schedule(n);
}

static void on_grace_over(au_source *s, void *userdata) {
        dmn_node *n = userdata;
        for (job *j = n->jobs; j; j = j->next)
                if (j->state == JOB_RUNNING) {
                        log_warning("run %s still going after the grace period; killing it", j->id);
                        sbx_run_kill(j->run, SBX_OUTCOME_SIGNALED, "node shutting down");
                }
}

void dmn_node_drain(dmn_node *n, uint64_t grace_ms) {
        if (n->draining)
                return;
        n->draining = true;
        refresh_credit(n);
        if (n->bus)
                mem_bus_stop_reading(n->bus);
        /* Jobs read but not started stay unacknowledged: reported after a restart, retried elsewhere. */
        for (job *j = n->jobs, *next; j; j = next) {
                next = j->next;
                if (j->state == JOB_QUEUED && !j->req) {
                        n->n_queued--;
                        job_free(j);
                }
        }
        update_gauges(n);
        if (grace_ms > 0 && au_loop_add_timer(n->loop, grace_ms, 0, on_grace_over, n, &n->grace) < 0)
                on_grace_over(NULL, n);
        on_heartbeat(NULL, n);
}

bool dmn_node_idle(const dmn_node *n) {
        /* Results still waiting for Redis are safe in the spool; the next start delivers them. */
        return n->draining && n->n_running == 0 && n->n_queued == 0 && n->n_checking == 0 &&
               (n->n_publishing == 0 || !n->connected);
}

char *dmn_node_status_json(dmn_node *n) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        if (!g)
                return NULL;
        au_json_gen_map_open(g);
        au_json_gen_kv_string(g, "node", n->cfg.node_id);
        au_json_gen_kv_string(g, "version", PACKAGE_VERSION);
        au_json_gen_kv_string(g, "state", n->draining ? "draining" : "active");
        au_json_gen_kv_bool(g, "redis_connected", n->connected);
        _cleanup_free_ char *redis_shown = au_url_mask(n->cfg.redis_url);
        au_json_gen_kv_string(g, "redis", redis_shown ? redis_shown : "(set)");
        au_json_gen_kv_uint64(g, "capacity", n->cfg.max_runs);
        au_json_gen_kv_uint64(g, "running", n->n_running);
        au_json_gen_kv_uint64(g, "queued", n->n_queued + n->n_checking);
        au_json_gen_kv_uint64(g, "undelivered_results", n->n_publishing);
        au_json_gen_kv_uint64(g, "redis_reconnects", n->bus ? mem_bus_reconnects(n->bus) : 0);
        au_json_gen_kv_string(g, "cgroup_mode", sbx_context_cgroup_mode(n->sbx));
        au_json_gen_kv_string(g, "kernel", n->kernel);
        au_json_gen_kv_string(g, "labels", n->cfg.labels);
        au_json_gen_kv_string(g, "started_at", n->started_at);
        au_json_gen_string(g, "runs");
        au_json_gen_array_open(g);
        for (job *j = n->jobs; j; j = j->next)
                if (j->state == JOB_RUNNING) {
                        au_json_gen_map_open(g);
                        au_json_gen_kv_string(g, "id", j->id);
                        if (j->workflow)
                                au_json_gen_kv_string(g, "workflow", j->workflow);
                        au_json_gen_kv_uint64(g, "running_ms", au_now_ms() - j->enqueued_ms);
                        au_json_gen_map_close(g);
                }
        au_json_gen_array_close(g);
        au_json_gen_map_close(g);
        return au_json_gen_finish(g, NULL);
}

void dmn_node_run_local(dmn_node *n, const char *spec_json, size_t len, dmn_request *req) {
        au_error err = {};
        if (n->draining) {
                dmn_request_fail(req, "the node is draining");
                return;
        }
        job *j = job_new(n, NULL);
        if (!j) {
                dmn_request_fail(req, "out of memory");
                return;
        }
        j->req = req;
        j->state = JOB_QUEUED;
        n->n_queued++;
        if (sbx_spec_from_json(spec_json, len, &n->policy, &j->spec, &err) < 0) {
                salvage_ids(j, spec_json, len);
                job_fail(j, SBX_OUTCOME_REJECTED, err.msg);
                return;
        }
        j->id = strdup(j->spec->id ? j->spec->id : "local");
        j->workflow = j->spec->workflow ? strdup(j->spec->workflow) : NULL;
        schedule(n);
}

const char *dmn_node_status_line(dmn_node *n) {
        snprintf(n->status_line, sizeof(n->status_line),
                 "%s; %u running, %u queued, %u undelivered; redis %s",
                 n->draining ? "draining" : "taking jobs", n->n_running, n->n_queued + n->n_checking,
                 n->n_publishing, n->connected ? "connected" : "unavailable");
        return n->status_line;
}
