/* SPDX-License-Identifier: MIT */
/*
 * The audit attacks of `autoosctl adversarial` (coordinator group): the
 * database's owner rewrites the audit trail of a workflow the attack ran.
 * Each is contained when autoosctl's own verifier (cli/audit.c, against the
 * coordinator's public audit key) refuses the trail; the server's own verify
 * is reported alongside, as what a verifier trusting the database would have
 * said. The trail is put back as it was afterwards (and checked again), so the
 * attacks leave nothing broken behind.
 *
 *   rewrite: triggers off for the session (session_replication_role), row 2's
 *            detail changed, every later hash recomputed;
 *   cut:     the last two rows deleted; with --checkpoint-log, the database's
 *            checkpoints of them too (then only the log's copy can tell).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <libpq-fe.h>

#include "adversarial/adversarial.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/macro.h"
#include "memory/audit-chain.h"
#include "memory/audit-verify.h"

#define MAX_REPLY (16u << 20)

static size_t sink(char *data, size_t size, size_t n, void *userdata) {
        size_t k = size * n;
        return au_buf_append(userdata, data, k) < 0 ? 0 : k; /* bounded by MAX_REPLY */
}

/* One request to the coordinator; the reply's JSON in *ret (NULL when none). Returns the HTTP status. */
static long api(const adv_fleet_target *t, const char *method, const char *path, const char *json,
                yajl_val *ret) {
        CURL *c = curl_easy_init();
        struct curl_slist *h = NULL;
        _cleanup_buf_ au_buf b = AU_BUF_INIT(MAX_REPLY);
        char url[1024], auth[512];
        long status = 0;

        *ret = NULL;
        if (!c)
                return 0;
        snprintf(url, sizeof(url), "%s%s", t->api_url, path);
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->api_key);
        h = curl_slist_append(h, auth);
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (json)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        if (curl_easy_perform(c) == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (b.p && au_json_parse(b.p, b.len, MAX_REPLY, ret, NULL) < 0)
                *ret = NULL;
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        return status;
}

static void verdict(adv_row *row, adv_verdict v, const char *fmt, ...) _printf_(3, 4);
static void verdict(adv_row *row, adv_verdict v, const char *fmt, ...) {
        va_list ap;
        row->verdict = v;
        va_start(ap, fmt);
        vsnprintf(row->observed, sizeof(row->observed), fmt, ap);
        va_end(ap);
}

/* Runs sql on conn; false (why in buf) when it failed. */
static bool sql(PGconn *conn, const char *q, char *why, size_t size) {
        PGresult *res = PQexec(conn, q);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (!ok) {
                snprintf(why, size, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
                why[strcspn(why, "\n")] = '\0';
        }
        PQclear(res);
        return ok;
}

/* The trail of id checked by autoosctl's verifier; *server_ok gets the coordinator's own opinion. */
static int check(const adv_fleet_target *t, EVP_PKEY *key, const char *id, yajl_val const *log, size_t log_n,
                 mem_audit_verdict *v, int *server_ok) {
        _cleanup_json_ yajl_val doc = NULL;
        char path[256];
        long st;

        snprintf(path, sizeof(path), "/v1/workflows/%s/audit?verify=1", id);
        st = api(t, "GET", path, NULL, &doc);
        if (st != 200 || !doc)
                return -EIO;
        yajl_val ok = au_json_get(au_json_get(doc, "verify"), "ok");
        *server_ok = YAJL_IS_TRUE(ok) ? 1 : YAJL_IS_FALSE(ok) ? 0 : -1;
        return mem_audit_trail_verify(id, doc, key, log, log_n, v);
}

void adv_audit_attack(const adv_fleet_target *t, int which, adv_row *row) {
        static const char doc[] =
                "{\"name\":\"adv-audit\",\"steps\":[{\"id\":\"a\",\"run\":{\"argv\":[\"/bin/true\"]}},"
                "{\"id\":\"b\",\"needs\":[\"a\"],\"run\":{\"argv\":[\"/bin/true\"]}}]}";
        _cleanup_pkey_ EVP_PKEY *key = NULL;
        _cleanup_json_ yajl_val sub = NULL;
        yajl_val *log = NULL, *objs = NULL;
        size_t log_n = 0;
        PGconn *conn = NULL;
        mem_audit_verdict v;
        au_error err = {0};
        char id[64] = "", why[512] = "", q[4096];
        int server_ok = -1, r;
        bool tampered = false, cut = which == 1, with_log = cut && t->checkpoint_log;
        uint64_t deadline = au_now_ms() + (t->timeout_ms ? t->timeout_ms : 20000);

        if (!t->db_url || !t->audit_pubkey) {
                verdict(row, ADV_SKIPPED, "needs --db (a role that owns the schema) and --audit-pubkey");
                return;
        }
        if (mem_audit_key_load_public(t->audit_pubkey, &key, &err) < 0) {
                verdict(row, ADV_ERROR, "--audit-pubkey %s", err.msg);
                return;
        }

        /* A workflow of our own, run to its end. */
        if (api(t, "POST", "/v1/workflows", doc, &sub) != 201 || !au_json_get(sub, "id") ||
            !YAJL_IS_STRING(au_json_get(sub, "id"))) {
                verdict(row, ADV_ERROR, "the coordinator did not accept a 2-step workflow");
                goto out;
        }
        snprintf(id, sizeof(id), "%s", au_json_get(sub, "id")->u.string);
        for (;;) {
                _cleanup_json_ yajl_val w = NULL;
                char path[128];
                snprintf(path, sizeof(path), "/v1/workflows/%s", id);
                if (api(t, "GET", path, NULL, &w) == 200) {
                        yajl_val s = au_json_get(w, "state");
                        if (YAJL_IS_STRING(s) && strcmp(s->u.string, "succeeded") == 0)
                                break;
                }
                if (au_now_ms() > deadline) {
                        verdict(row, ADV_ERROR, "workflow %s did not succeed in time (no node?)", id);
                        goto out;
                }
                struct timespec ts = {0, 100 * 1000000L};
                nanosleep(&ts, NULL);
        }

        conn = PQconnectdb(t->db_url);
        if (!conn || PQstatus(conn) != CONNECTION_OK) {
                verdict(row, ADV_ERROR, "connect to --db: %.200s",
                        conn ? PQerrorMessage(conn) : "out of memory");
                goto out;
        }
        PQsetNoticeProcessor(conn, NULL, NULL);
        /* Before: the trail verifies (with the log: once its last checkpoint is written there too). */
        for (;;) {
                for (size_t i = 0; i < log_n; i++)
                        yajl_tree_free(log[i]);
                free(log);
                free(objs);
                log = objs = NULL;
                log_n = 0;
                if (with_log && mem_audit_log_checkpoints(t->checkpoint_log, &log, &log_n, &err) < 0) {
                        verdict(row, ADV_ERROR, "cannot read --checkpoint-log %.200s", t->checkpoint_log);
                        goto out;
                }
                objs = calloc(log_n + 1, sizeof(yajl_val));
                if (!objs) {
                        verdict(row, ADV_ERROR, "out of memory");
                        goto out;
                }
                for (size_t i = 0; i < log_n; i++)
                        objs[i] = au_json_get(log[i], "audit_checkpoint");
                r = check(t, key, id, objs, log_n, &v, &server_ok);
                if (r >= 0 && v.ok && (!with_log || v.log_max_seq == v.rows))
                        break;
                if (au_now_ms() > deadline) {
                        verdict(row, ADV_ERROR, "before the attack the trail of %s does not verify: %.200s",
                                id,
                                r < 0  ? "no trail"
                                : v.ok ? "its last checkpoint is not in the log"
                                       : v.reason);
                        goto out;
                }
                struct timespec ts = {0, 200 * 1000000L};
                nanosleep(&ts, NULL);
        }

        /* Keep what the attack changes, to put it back. */
        snprintf(q, sizeof(q),
                 "CREATE TEMP TABLE adv_rows AS SELECT * FROM audit_log WHERE workflow_id = '%s';"
                 "CREATE TEMP TABLE adv_ckpts AS SELECT * FROM audit_checkpoints WHERE workflow_id = '%s'",
                 id, id);
        if (!sql(conn, q, why, sizeof(why))) {
                verdict(row, ADV_ERROR, "--db cannot read the trail: %.200s", why);
                goto out;
        }
        if (!cut)
                snprintf(
                        q, sizeof(q),
                        "BEGIN; SET LOCAL session_replication_role = replica;"
                        "UPDATE audit_log SET detail = '{\"forged\": true}' WHERE workflow_id = '%s' AND "
                        "seq = 2;"
                        "DO $$ DECLARE r record; p bytea; BEGIN"
                        "  FOR r IN SELECT id, seq FROM audit_log WHERE workflow_id = '%s' AND seq >= 2 "
                        "ORDER BY seq LOOP"
                        "    SELECT hash INTO p FROM audit_log WHERE workflow_id = '%s' AND seq = r.seq - 1;"
                        "    UPDATE audit_log SET prev_hash = p, hash = sha256(p || "
                        "autoos_audit_canonical(workflow_id,"
                        "      seq, ts_epoch_us, actor, action, detail)) WHERE id = r.id;"
                        "  END LOOP; END $$; COMMIT",
                        id, id, id);
        else
                snprintf(q, sizeof(q),
                         "BEGIN; SET LOCAL session_replication_role = replica;"
                         "DELETE FROM audit_log WHERE workflow_id = '%s' AND seq > "
                         "(SELECT max(seq) - 2 FROM audit_log WHERE workflow_id = '%s');"
                         "%s COMMIT",
                         id, id,
                         with_log ? "DELETE FROM audit_checkpoints k WHERE k.workflow_id IN (SELECT "
                                    "workflow_id "
                                    "FROM adv_rows) AND k.seq > (SELECT max(a.seq) FROM audit_log a WHERE "
                                    "a.workflow_id = k.workflow_id);"
                                  : "");
        if (!sql(conn, q, why, sizeof(why))) {
                PQclear(PQexec(conn, "ROLLBACK"));
                verdict(row, ADV_SKIPPED, "--db may not bypass the triggers (%.200s): not the owner's power",
                        why);
                goto out;
        }
        tampered = true;

        r = check(t, key, id, objs, log_n, &v, &server_ok);
        if (r < 0)
                verdict(row, ADV_ERROR, "after the attack the trail of %s cannot be read", id);
        else if (v.ok)
                verdict(row, ADV_NOT_CONTAINED, "%s: autoosctl's verifier still says the trail verifies",
                        cut ? "two rows cut off" : "row 2 rewritten and rehashed");
        else
                verdict(row, ADV_CONTAINED,
                        "%s (server's own verify: %s); autoosctl: BROKEN at seq %" PRId64 ": %.120s",
                        cut ? (with_log ? "last 2 rows and their checkpoints cut" : "last 2 rows cut")
                            : "row 2 rewritten, 3.. rehashed",
                        server_ok == 1   ? "ok"
                        : server_ok == 0 ? "broken"
                                         : "?",
                        v.bad_seq, v.reason);
        snprintf(row->note, sizeof(row->note), "workflow %s%s", id,
                 with_log ? ", with the checkpoint log" : "");

out:
        if (tampered) {
                /* Put the trail back, then check that it verifies again. */
                snprintf(q, sizeof(q),
                         "BEGIN; SET LOCAL session_replication_role = replica;"
                         "DELETE FROM audit_log WHERE workflow_id = '%s';"
                         "INSERT INTO audit_log SELECT * FROM adv_rows;"
                         "INSERT INTO audit_checkpoints SELECT * FROM adv_ckpts c WHERE NOT EXISTS "
                         "(SELECT FROM audit_checkpoints k WHERE k.id = c.id); COMMIT",
                         id);
                mem_audit_verdict after;
                int so;
                if (!sql(conn, q, why, sizeof(why)))
                        snprintf(row->note, sizeof(row->note), "could not put the trail of %s back: %.180s",
                                 id, why);
                else if (check(t, key, id, objs, log_n, &after, &so) < 0 || !after.ok)
                        snprintf(row->note, sizeof(row->note), "the trail of %s, put back, does not verify",
                                 id);
                else
                        snprintf(row->note + strlen(row->note), sizeof(row->note) - strlen(row->note),
                                 "; put back and verified");
        }
        if (conn)
                PQfinish(conn);
        for (size_t i = 0; i < log_n; i++)
                yajl_tree_free(log[i]);
        free(log);
        free(objs);
}
