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

#include <libpq-fe.h>

#include "adversarial/adversarial.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/macro.h"
#include "memory/audit-chain.h"
#include "memory/audit-verify.h"

/* One request to the coordinator with the operator key; the reply's JSON in *ret (NULL when none). Returns
 * the HTTP status. */
static long api(const adv_fleet_target *t, const char *method, const char *path, const char *json,
                yajl_val *ret) {
        return adv_api_json(t, method, path, t->api_key, json, ret);
}

static void verdict(adv_row *row, adv_verdict v, const char *fmt, ...) _printf_(3, 4);
static void verdict(adv_row *row, adv_verdict v, const char *fmt, ...) {
        va_list ap;
        row->verdict = v;
        va_start(ap, fmt);
        vsnprintf(row->observed, sizeof(row->observed), fmt, ap);
        va_end(ap);
}

/* Runs q (statements, no parameters) on conn; false (why in buf) when it failed. */
static bool sql(PGconn *conn, const char *q, char *why, size_t size) {
        return adv_sql(conn, q, 0, NULL, why, size);
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

/* Submits a 2-step workflow and waits until it succeeded: its id into id; false (row says why) otherwise. */
static bool own_workflow(const adv_fleet_target *t, uint64_t deadline, char id[static 64], adv_row *row) {
        static const char doc[] =
                "{\"name\":\"adv-audit\",\"steps\":[{\"id\":\"a\",\"run\":{\"argv\":[\"/bin/true\"]}},"
                "{\"id\":\"b\",\"needs\":[\"a\"],\"run\":{\"argv\":[\"/bin/true\"]}}]}";
        _cleanup_json_ yajl_val sub = NULL;

        if (api(t, "POST", "/v1/workflows", doc, &sub) != 201 || !au_json_get(sub, "id") ||
            !YAJL_IS_STRING(au_json_get(sub, "id"))) {
                verdict(row, ADV_ERROR, "the coordinator did not accept a 2-step workflow");
                return false;
        }
        snprintf(id, 64, "%s", au_json_get(sub, "id")->u.string);
        for (;;) {
                _cleanup_json_ yajl_val w = NULL;
                char path[128];
                snprintf(path, sizeof(path), "/v1/workflows/%s", id);
                if (api(t, "GET", path, NULL, &w) == 200) {
                        yajl_val st = au_json_get(w, "state");
                        if (YAJL_IS_STRING(st) && strcmp(st->u.string, "succeeded") == 0)
                                return true;
                }
                if (au_now_ms() > deadline) {
                        verdict(row, ADV_ERROR, "workflow %s did not succeed in time (no node?)", id);
                        return false;
                }
                au_sleep_ms(100);
        }
}

/*
 * The owner's rewrite of the trail of id: row 2 changed and the rest rehashed,
 * or (cut) the last two rows deleted, with_log with the checkpoints past them.
 */
static void tamper_query(char *q, size_t size, const char *id, bool cut, bool with_log) {
        if (!cut)
                snprintf(
                        q, size,
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
                snprintf(q, size,
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
}

/* Puts the trail of id back as it was kept, then checks that it verifies again: the note says how it went.
 */
static void put_back(const adv_fleet_target *t, PGconn *conn, EVP_PKEY *key, const char *id,
                     yajl_val const *objs, size_t log_n, adv_row *row) {
        char q[4096], why[512];

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
                snprintf(row->note, sizeof(row->note), "could not put the trail of %s back: %.180s", id,
                         why);
        else if (check(t, key, id, objs, log_n, &after, &so) < 0 || !after.ok)
                snprintf(row->note, sizeof(row->note), "the trail of %s, put back, does not verify", id);
        else
                snprintf(row->note + strlen(row->note), sizeof(row->note) - strlen(row->note),
                         "; put back and verified");
}

void adv_audit_attack(const adv_fleet_target *t, int which, adv_row *row) {
        _cleanup_pkey_ EVP_PKEY *key = NULL;
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
        if (!own_workflow(t, deadline, id, row))
                goto out;

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
                au_sleep_ms(200);
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
        tamper_query(q, sizeof(q), id, cut, with_log);
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
        if (tampered)
                put_back(t, conn, key, id, objs, log_n, row);
        if (conn)
                PQfinish(conn);
        for (size_t i = 0; i < log_n; i++)
                yajl_tree_free(log[i]);
        free(log);
        free(objs);
}
