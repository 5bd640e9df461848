/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/url.h"
#include "memory/pg.h"

#define MIGRATION_MAX_BYTES (8u << 20)
#define MIGRATE_LOCK_KEY "7316027349811"

static int classify(PGconn *c, const PGresult *res) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

        if (PQstatus(c) == CONNECTION_BAD)
                return -ENOTCONN;
        if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
                return -EAGAIN;
        if (state && strcmp(state, "23505") == 0)
                return -EEXIST;
        if (state && strncmp(state, "08", 2) == 0)
                return -ENOTCONN;
        return -EIO;
}

static void trim_message(char *s) {
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
                s[--n] = '\0';
}

/*
 * Which statements each connection has prepared. Every connection is made by
 * mem_pg_connect(), which resets its entry, so a reused PGconn address never
 * inherits another's statements.
 */
#define PREPARED_CONNS 128
#define PREPARED_STMTS 64
static struct {
        PGconn *conn;
        const mem_pg_stmt *stmts[PREPARED_STMTS];
        size_t n;
} prepared[PREPARED_CONNS];
static pthread_mutex_t prepared_lock = PTHREAD_MUTEX_INITIALIZER;

static void prepared_forget(PGconn *c) {
        pthread_mutex_lock(&prepared_lock);
        for (size_t i = 0; i < PREPARED_CONNS; i++)
                if (prepared[i].conn == c) {
                        prepared[i].conn = NULL;
                        prepared[i].n = 0;
                }
        pthread_mutex_unlock(&prepared_lock);
}

/* 1: prepared on c already; 0: not yet (and now recorded as being prepared); -1: no room to track it. */
static int prepared_check(PGconn *c, const mem_pg_stmt *stmt, bool record) {
        int slot = -1, r = -1;

        pthread_mutex_lock(&prepared_lock);
        for (size_t i = 0; i < PREPARED_CONNS; i++) {
                if (prepared[i].conn == c) {
                        slot = (int) i;
                        break;
                }
                if (!prepared[i].conn && slot < 0)
                        slot = (int) i;
        }
        if (slot >= 0) {
                if (prepared[slot].conn == c) {
                        for (size_t k = 0; k < prepared[slot].n; k++)
                                if (prepared[slot].stmts[k] == stmt) {
                                        pthread_mutex_unlock(&prepared_lock);
                                        return 1;
                                }
                } else if (record) {
                        prepared[slot].conn = c;
                        prepared[slot].n = 0;
                }
                if (prepared[slot].conn == c && prepared[slot].n < PREPARED_STMTS) {
                        if (record)
                                prepared[slot].stmts[prepared[slot].n++] = stmt;
                        r = 0;
                }
        }
        pthread_mutex_unlock(&prepared_lock);
        return r;
}

void mem_pg_close(PGconn *c) {
        if (!c)
                return;
        prepared_forget(c);
        PQfinish(c);
}

int mem_pg_connect(const char *url, const char *application_name, PGconn **ret, au_error *err) {
        const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
        const char *vals[] = {url, "3", application_name ? application_name : "autoos", NULL};
        PGconn *c;

        if (!url || !*url)
                return au_error_set(err, EINVAL, "no database URL");
        /* expand_dbname: the URL's own settings override the defaults before it. */
        c = PQconnectdbParams(keys, vals, 1);
        if (!c)
                return au_error_set(err, ENOMEM, "connect to PostgreSQL");
        if (PQstatus(c) != CONNECTION_OK) {
                char msg[512];
                /* libpq may quote the URL it was given, or its password: masked (common/url.h). */
                _cleanup_free_ char *masked = au_text_mask_url(PQerrorMessage(c), url);
                snprintf(msg, sizeof(msg), "%s", masked ? masked : "cannot connect");
                trim_message(msg);
                PQfinish(c);
                au_error_set(err, 0, "connect to PostgreSQL: %s", msg);
                return -ENOTCONN;
        }
        PQsetNoticeProcessor(c, NULL, NULL);
        prepared_forget(c);
        *ret = c;
        return 0;
}

bool mem_pg_ok(PGconn *c) {
        return c && PQstatus(c) == CONNECTION_OK;
}

static int check_result(PGconn *c, PGresult *res, PGresult **ret, au_error *err);

int mem_pg_exec(PGconn *c, const char *sql, int n, const char *const *params, PGresult **ret,
                au_error *err) {
        if (!c || PQstatus(c) != CONNECTION_OK) {
                au_error_set(err, 0, "PostgreSQL: not connected");
                return -ENOTCONN;
        }
        return check_result(c, PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0), ret, err);
}

static int check_result(PGconn *c, PGresult *res, PGresult **ret, au_error *err) {
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                char msg[512];
                int r = classify(c, res);
                snprintf(msg, sizeof(msg), "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(c));
                trim_message(msg);
                PQclear(res);
                au_error_set(err, 0, "PostgreSQL: %s", msg[0] ? msg : "query failed");
                return r;
        }
        if (ret)
                *ret = res;
        else
                PQclear(res);
        return 0;
}

int mem_pg_run(PGconn *c, const mem_pg_stmt *stmt, const char *const *params, PGresult **ret,
               au_error *err) {
        int known;

        if (!c || PQstatus(c) != CONNECTION_OK) {
                au_error_set(err, 0, "PostgreSQL: not connected");
                return -ENOTCONN;
        }
        known = prepared_check(c, stmt, false);
        if (known < 0)
                return mem_pg_exec(c, stmt->sql, stmt->n_params, params, ret, err);
        if (known == 0) {
                int r = check_result(c, PQprepare(c, stmt->name, stmt->sql, stmt->n_params, NULL), NULL,
                                     err);
                if (r < 0)
                        return r;
                prepared_check(c, stmt, true);
        }
        return check_result(c, PQexecPrepared(c, stmt->name, stmt->n_params, params, NULL, NULL, 0), ret,
                            err);
}

const mem_pg_stmt mem_pg_stmt_begin = {NULL, "BEGIN", 0};
const mem_pg_stmt mem_pg_stmt_commit = {NULL, "COMMIT", 0};

/* The statements one by one: when pipeline mode cannot be entered. */
static int run_each(PGconn *c, const mem_pg_stmt *const *stmts, const char *const *const *params, size_t n,
                    PGresult **got, au_error *err) {
        for (size_t i = 0; i < n; i++) {
                int r = stmts[i]->name ? mem_pg_run(c, stmts[i], params ? params[i] : NULL, &got[i], err)
                                       : mem_pg_exec(c, stmts[i]->sql, stmts[i]->n_params,
                                                     params ? params[i] : NULL, &got[i], err);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A pipeline that could not be sent or read: err says so; -ENOTCONN when the connection is gone. */
static int pipeline_broken(PGconn *c, const char *what, au_error *err) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        trim_message(msg);
        au_error_set(err, 0, "PostgreSQL: %s a pipeline: %s", what, msg[0] ? msg : "failed");
        return PQstatus(c) == CONNECTION_OK ? -EIO : -ENOTCONN;
}

int mem_pg_pipeline(PGconn *c, const mem_pg_stmt *const *stmts, const char *const *const *params, size_t n,
                    PGresult **ret, au_error *err) {
        PGresult *got[MEM_PG_PIPELINE_MAX] = {0};
        bool prepare[MEM_PG_PIPELINE_MAX] = {0}, exec[MEM_PG_PIPELINE_MAX] = {0}, synced = false;
        int r = 0;

        if (!c || PQstatus(c) != CONNECTION_OK) {
                au_error_set(err, 0, "PostgreSQL: not connected");
                return -ENOTCONN;
        }
        if (n > MEM_PG_PIPELINE_MAX)
                return au_error_set(err, E2BIG, "PostgreSQL pipeline of %zu statements", n);
        if (PQenterPipelineMode(c) != 1) {
                r = run_each(c, stmts, params, n, got, err);
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                const mem_pg_stmt *s = stmts[i];
                const char *const *p = params ? params[i] : NULL;
                int known = s->name ? prepared_check(c, s, false) : -1;

                if (known == 0) {
                        if (PQsendPrepare(c, s->name, s->sql, s->n_params, NULL) != 1) {
                                r = pipeline_broken(c, "cannot send", err);
                                break;
                        }
                        prepare[i] = true;
                }
                if ((known < 0 ? PQsendQueryParams(c, s->sql, s->n_params, NULL, p, NULL, NULL, 0)
                               : PQsendQueryPrepared(c, s->name, s->n_params, p, NULL, NULL, 0)) != 1) {
                        r = pipeline_broken(c, "cannot send", err);
                        break;
                }
                exec[i] = true;
        }
        if (PQpipelineSync(c) == 1)
                synced = true;
        else if (r == 0)
                r = pipeline_broken(c, "cannot send", err);
        /* Each Prepare's and statement's result, each followed by a NULL; the first failure is the error. */
        for (size_t i = 0; synced && i < n; i++)
                for (int k = 0; k < 2 && synced; k++) {
                        bool is_prepare = k == 0;
                        PGresult *res;

                        if (is_prepare ? !prepare[i] : !exec[i])
                                continue;
                        res = PQgetResult(c);
                        if (!res) {
                                if (r == 0)
                                        r = pipeline_broken(c, "cannot read", err);
                                synced = false;
                                break;
                        }
                        if (r == 0) {
                                int rr = check_result(c, res, is_prepare ? NULL : &got[i], err);
                                if (rr < 0)
                                        r = rr;
                                else if (is_prepare)
                                        prepared_check(c, stmts[i], true);
                        } else
                                PQclear(res);
                        (void) PQgetResult(c);
                }
        if (synced) {
                PGresult *res;
                while ((res = PQgetResult(c)) && PQresultStatus(res) != PGRES_PIPELINE_SYNC)
                        PQclear(res);
                synced = res != NULL;
                PQclear(res);
        }
        if (!synced || PQexitPipelineMode(c) != 1) {
                /* Out of step with the server: the connection starts again (what it prepared is gone). */
                if (r == 0)
                        r = pipeline_broken(c, "out of step in", err);
                prepared_forget(c);
                if (PQstatus(c) == CONNECTION_OK)
                        PQreset(c);
                if (r != -ENOTCONN && PQstatus(c) != CONNECTION_OK)
                        r = -ENOTCONN;
        }
out:
        for (size_t i = 0; i < n; i++) {
                if (r == 0 && ret)
                        ret[i] = got[i];
                else
                        PQclear(got[i]);
        }
        return r;
}

int mem_pg_begin(PGconn *c, au_error *err) {
        return mem_pg_exec(c, "BEGIN", 0, NULL, NULL, err);
}

int mem_pg_commit(PGconn *c, au_error *err) {
        return mem_pg_exec(c, "COMMIT", 0, NULL, NULL, err);
}

void mem_pg_rollback(PGconn *c) {
        if (c && PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
                PQclear(PQexec(c, "ROLLBACK"));
}

const char *mem_pg_value(const PGresult *res, int row, int col) {
        if (!res || row >= PQntuples(res) || col >= PQnfields(res) || PQgetisnull(res, row, col))
                return NULL;
        return PQgetvalue(res, row, col);
}

int mem_pg_schema_version(PGconn *c, int *ret, au_error *err) {
        _cleanup_pgresult_ PGresult *exists = NULL, *res = NULL;
        int r;

        /* Two statements: a query naming a missing table fails when it is parsed. */
        r = mem_pg_exec(c, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, &exists, err);
        if (r < 0)
                return r;
        if (strcmp(mem_pg_value(exists, 0, 0) ?: "f", "t") != 0) {
                *ret = 0;
                return 0;
        }
        r = mem_pg_exec(c, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, &res, err);
        if (r < 0)
                return r;
        *ret = atoi(mem_pg_value(res, 0, 0) ?: "0");
        return 0;
}

/* NNN of "NNN_name.sql", or -1. */
static int migration_number(const char *name) {
        size_t n = strlen(name);
        int v = 0, digits = 0;

        if (n < 9 || strcmp(name + n - 4, ".sql") != 0)
                return -1;
        for (const char *p = name; *p >= '0' && *p <= '9'; p++, digits++)
                v = v * 10 + (*p - '0');
        if (digits != 3 || name[3] != '_' || v == 0)
                return -1;
        return v;
}

typedef struct migration {
        int version;
        char name[256];
} migration;

static int cmp_migration(const void *a, const void *b) {
        return ((const migration *) a)->version - ((const migration *) b)->version;
}

static int list_migrations(const char *dir, migration **ret, size_t *ret_n, au_error *err) {
        _cleanup_free_ migration *m = NULL;
        size_t n = 0, cap = 0;
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return au_error_set(err, errno, "open the migrations directory %s", dir);
        while ((de = readdir(d))) {
                int v = migration_number(de->d_name);
                if (v < 0 || strlen(de->d_name) >= sizeof(m[0].name))
                        continue;
                if (n == cap) {
                        migration *nm = reallocarray(m, cap ? cap * 2 : 16, sizeof(*m));
                        if (!nm) {
                                closedir(d);
                                return au_error_set(err, ENOMEM, "list migrations");
                        }
                        m = nm;
                        cap = cap ? cap * 2 : 16;
                }
                m[n].version = v;
                snprintf(m[n].name, sizeof(m[n].name), "%s", de->d_name);
                n++;
        }
        closedir(d);
        qsort(m, n, sizeof(*m), cmp_migration);
        for (size_t i = 1; i < n; i++)
                if (m[i].version == m[i - 1].version)
                        return au_error_set(err, EINVAL, "migrations %s and %s have the same number",
                                            m[i - 1].name, m[i].name);
        *ret = TAKE_PTR(m);
        *ret_n = n;
        return 0;
}

int mem_pg_latest_migration(const char *dir, int *ret, au_error *err) {
        _cleanup_free_ migration *m = NULL;
        size_t n = 0;
        int r = list_migrations(dir, &m, &n, err);

        if (r < 0)
                return r;
        if (n == 0)
                return au_error_set(err, ENOENT, "no NNN_*.sql migrations in %s", dir);
        *ret = m[n - 1].version;
        return 0;
}

static int read_file(const char *path, char **ret, au_error *err) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t off = 0;

        if (fd < 0 || fstat(fd, &st) < 0)
                return au_error_set(err, errno, "read %s", path);
        if ((uint64_t) st.st_size > MIGRATION_MAX_BYTES)
                return au_error_set(err, EFBIG, "read %s", path);
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return au_error_set(err, ENOMEM, "read %s", path);
        while (off < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + off, (size_t) st.st_size - off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return au_error_set(err, k < 0 ? errno : EIO, "read %s", path);
                off += (size_t) k;
        }
        buf[off] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

/* The versions recorded in schema_migrations (none when it does not exist yet). */
static int applied_versions(PGconn *c, int **ret, size_t *ret_n, au_error *err) {
        _cleanup_pgresult_ PGresult *exists = NULL, *res = NULL;
        int *v;
        int r;

        *ret = NULL;
        *ret_n = 0;
        r = mem_pg_exec(c, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, &exists, err);
        if (r < 0 || strcmp(mem_pg_value(exists, 0, 0) ?: "f", "t") != 0)
                return r;
        r = mem_pg_exec(c, "SELECT version FROM schema_migrations ORDER BY version", 0, NULL, &res, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0)
                return 0;
        v = calloc((size_t) PQntuples(res), sizeof(int));
        if (!v)
                return au_error_set(err, ENOMEM, "schema_migrations");
        for (int i = 0; i < PQntuples(res); i++)
                v[i] = atoi(mem_pg_value(res, i, 0) ?: "0");
        *ret = v;
        *ret_n = (size_t) PQntuples(res);
        return 0;
}

static bool version_in(const int *v, size_t n, int version) {
        for (size_t i = 0; i < n; i++)
                if (v[i] == version)
                        return true;
        return false;
}

int mem_pg_pending_migrations(PGconn *c, const char *dir, unsigned *ret, au_error *err) {
        _cleanup_free_ migration *m = NULL;
        _cleanup_free_ int *done = NULL;
        size_t n = 0, n_done = 0;
        unsigned pending = 0;
        int r;

        r = list_migrations(dir, &m, &n, err);
        if (r >= 0)
                r = applied_versions(c, &done, &n_done, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (!version_in(done, n_done, m[i].version))
                        pending++;
        *ret = pending;
        return 0;
}

int mem_pg_migrate(PGconn *c, const char *dir, unsigned *ret_applied, au_error *err) {
        _cleanup_free_ migration *m = NULL;
        _cleanup_free_ int *done = NULL;
        size_t n = 0, n_done = 0;
        unsigned applied = 0;
        int r;

        r = list_migrations(dir, &m, &n, err);
        if (r < 0)
                return r;
        if (n == 0)
                return au_error_set(err, ENOENT, "no NNN_*.sql migrations in %s", dir);
        r = mem_pg_exec(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL, NULL, err);
        if (r < 0)
                return r;
        r = applied_versions(c, &done, &n_done, err);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *sql = NULL;
                _cleanup_pgresult_ PGresult *res = NULL;
                char path[4096], version[16];
                const char *params[2];

                if (version_in(done, n_done, m[i].version))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, m[i].name);
                r = read_file(path, &sql, err);
                if (r < 0)
                        break;
                r = mem_pg_begin(c, err);
                if (r < 0)
                        break;
                /* A multi-statement file goes through the simple protocol. */
                res = PQexec(c, sql);
                if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
                        char msg[512];
                        snprintf(msg, sizeof(msg), "%s",
                                 res ? PQresultErrorMessage(res) : PQerrorMessage(c));
                        trim_message(msg);
                        r = classify(c, res);
                        mem_pg_rollback(c);
                        au_error_set(err, 0, "migration %s: %s", m[i].name, msg);
                        break;
                }
                snprintf(version, sizeof(version), "%d", m[i].version);
                params[0] = version;
                params[1] = m[i].name;
                r = mem_pg_exec(c, "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)", 2,
                                params, NULL, err);
                if (r >= 0)
                        r = mem_pg_commit(c, err);
                if (r < 0) {
                        mem_pg_rollback(c);
                        break;
                }
                applied++;
        }
        PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
        if (r < 0)
                return r;
        if (ret_applied)
                *ret_applied = applied;
        return 0;
}
