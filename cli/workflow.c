/* SPDX-License-Identifier: MIT */
/*
 * autoosctl's commands for the coordinator (doc/api.md): submit, status,
 * list, pause, resume, cancel, approve, retry, skip, nodes, simulate,
 * events. Each prints a table for people, or with --json the coordinator's
 * document as it came, for scripts.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli/client.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/parse.h"

/* How often --wait and --watch ask for the workflow. */
#define POLL_INTERVAL_MS 300
/* How long --wait and --watch go on trying while the coordinator cannot be reached. */
#define WATCH_OUTAGE_MS 60000.0

enum {
        O_URL = 1u << 0,
        O_KEY_FILE = 1u << 1,
        O_JSON = 1u << 2,
        O_WAIT = 1u << 3,
        O_WATCH = 1u << 4,
        O_QUIET = 1u << 5,
        O_STATE = 1u << 6,
        O_LIMIT = 1u << 7,
        O_SINCE = 1u << 9,
        O_GLOBAL = O_URL | O_KEY_FILE,
};

typedef struct command command;

typedef struct ctx {
        const command *cmd;
        const char *url, *key_file, *state, *since;
        uint32_t limit;
        bool json, wait, watch, quiet, has_limit;
        char **args;
        cli_client *client;
} ctx;

struct command {
        const char *name;
        const char *synopsis; /* after "autoosctl NAME " */
        const char *help;     /* what it does, and its own options */
        unsigned opts;
        int n_args;
        int (*run)(ctx *x);
};

static const char global_help[] =
        "Global options:\n"
        "      --url URL        the coordinator (default: $" CLI_URL_ENV ", else url= in the\n"
        "                       configuration file, else " CLI_DEFAULT_URL ")\n"
        "      --key-file FILE  read the API key from FILE (default: $" CLI_KEY_ENV ", else\n"
        "                       api_key= or key_file= in the configuration file)\n"
        "  -h, --help           show this help\n"
        "\n"
        "Configuration file: $" CLI_CONFIG_ENV
        ", else ~/.config/autoos/autoosctl.conf, else\n" CLI_SYSTEM_CONFIG ":\n"
        "key=value lines (url, api_key, key_file), # comments. Options come first, then the\n"
        "environment, then the file.\n"
        "\n"
        "Exit status: 0 done; 1 the workflow failed or was cancelled (--wait, --watch), or the\n"
        "coordinator refused the action (not found, conflict); 2 bad usage or unreadable FILE;\n"
        "65 the coordinator or autoosctl refused the document or a parameter; 69 the coordinator\n"
        "cannot be reached or is unavailable; 70 its internal error; 75 rate limited; 76 its\n"
        "reply cannot be read; 77 the key is missing, unknown or its role too low; 78 bad\n"
        "configuration. See autoosctl(1).\n";

/* ---- small helpers ------------------------------------------------------------ */

static int usage_error(const ctx *x, const char *fmt, ...) _printf_(2, 3);
static int usage_error(const ctx *x, const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "autoosctl %s: ", x->cmd->name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (see 'autoosctl %s --help')\n", x->cmd->name);
        return CLI_EXIT_USAGE;
}

static int oom(void) {
        fputs("autoosctl: out of memory\n", stderr);
        return EX_OSERR;
}

static double now_ms(void) {
        return (double) au_wall_us() / 1000.0;
}

static void sleep_ms(int ms) {
        poll(NULL, 0, ms);
}

/* An RFC 3339 time ("2026-11-21T10:00:00.123Z", "...+02:00") in milliseconds since the epoch. */
static bool parse_time(const char *s, double *ret) {
        int y, mo, d, h, mi, sec, n = 0;
        double frac = 0, scale = 0.1;
        long offset = 0;
        struct tm tm = {};

        if (!s || sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
            n == 0)
                return false;
        s += n;
        if (*s == '.')
                for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10)
                        frac += (*s - '0') * scale;
        if (*s == 'Z' || *s == 'z')
                s++;
        else if (*s == '+' || *s == '-') {
                int oh, om;
                if (sscanf(s + 1, "%2d:%2d", &oh, &om) != 2)
                        return false;
                offset = (*s == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
                s += 6;
        } else
                return false;
        if (*s)
                return false;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        time_t t = timegm(&tm);
        if (t == (time_t) -1)
                return false;
        *ret = ((double) (t - offset) + frac) * 1000.0;
        return true;
}

/* "0.3s", "12.3s", "4m05s", "1h02m" */
static void fmt_duration(char *buf, size_t size, double ms) {
        if (ms < 0)
                ms = 0;
        if (ms < 60000)
                snprintf(buf, size, "%.1fs", ms / 1000.0);
        else if (ms < 3600000)
                snprintf(buf, size, "%dm%02ds", (int) (ms / 60000), (int) (ms / 1000) % 60);
        else
                snprintf(buf, size, "%dh%02dm", (int) (ms / 3600000), (int) (ms / 60000) % 60);
}

static yajl_val get(yajl_val obj, const char *key) {
        return au_json_get(obj, key);
}

/* A string member, or NULL. */
static const char *get_str(yajl_val obj, const char *key) {
        yajl_val v = get(obj, key);
        return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

/* A number member's text as the coordinator wrote it, or NULL. */
static const char *get_num(yajl_val obj, const char *key) {
        yajl_val v = get(obj, key);
        return YAJL_IS_NUMBER(v) ? v->u.number.r : NULL;
}

/* Text from the coordinator made harmless for a terminal: control characters become '?'. */
static char *clean(const char *s) {
        char *r = strdup(s ? s : "");
        if (r)
                for (char *p = r; *p; p++)
                        if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                *p = '?';
        return r;
}

/* What a scalar reads as in a table: "-" for null or absent. */
static const char *scalar(yajl_val v, char *buf, size_t size) {
        if (YAJL_IS_STRING(v))
                return v->u.string;
        if (YAJL_IS_NUMBER(v))
                return v->u.number.r;
        if (YAJL_IS_TRUE(v))
                return "yes";
        if (YAJL_IS_FALSE(v))
                return "no";
        if (YAJL_IS_OBJECT(v) || YAJL_IS_ARRAY(v)) {
                snprintf(buf, size, "%s", YAJL_IS_OBJECT(v) ? "{...}" : "[...]");
                return buf;
        }
        return "-";
}

/* Columns shown on a terminal, counting UTF-8 sequences as one. */
static size_t text_width(const char *s) {
        size_t w = 0;
        for (; *s; s++)
                if (((unsigned char) *s & 0xc0) != 0x80)
                        w++;
        return w;
}

/* Cuts s after max columns (keeping UTF-8 sequences whole), ending it with "..." when cut. */
static void cut_text(char *s, size_t max) {
        size_t w = 0;
        char *p = s;

        if (text_width(s) <= max)
                return;
        for (; *p; p++) {
                if (((unsigned char) *p & 0xc0) != 0x80) {
                        if (w + 3 >= max)
                                break;
                        w++;
                }
        }
        strcpy(p, "...");
}

static bool print_body(const cli_reply *r) {
        fwrite(r->body, 1, r->len, stdout);
        if (r->len == 0 || r->body[r->len - 1] != '\n')
                putchar('\n');
        return fflush(stdout) == 0;
}

/* ---- tables -------------------------------------------------------------------- */

typedef struct table {
        size_t ncols;
        char **cells; /* rows * ncols */
        size_t nrows, cap;
} table;

static void table_done(table *t) {
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
                free(t->cells[i]);
        free(t->cells);
}

/* Adds a row of t->ncols strings (NULL and "" read "-"). Returns 0 or -ENOMEM. */
static int table_add(table *t, ...) {
        va_list ap;

        if (t->nrows == t->cap) {
                size_t cap = MAX(t->cap * 2, (size_t) 16);
                char **c = realloc(t->cells, cap * t->ncols * sizeof(char *));
                if (!c)
                        return -ENOMEM;
                t->cells = c;
                t->cap = cap;
        }
        va_start(ap, t);
        for (size_t i = 0; i < t->ncols; i++) {
                const char *s = va_arg(ap, const char *);
                char *c = clean(s && s[0] ? s : "-");
                if (!c) {
                        for (size_t j = 0; j < i; j++)
                                free(t->cells[t->nrows * t->ncols + j]);
                        va_end(ap);
                        return -ENOMEM;
                }
                t->cells[t->nrows * t->ncols + i] = c;
        }
        va_end(ap);
        t->nrows++;
        return 0;
}

/* Columns padded to their widest cell, two spaces apart; the last is not padded. */
static void table_print(const table *t) {
        _cleanup_free_ size_t *w = calloc(t->ncols, sizeof(size_t));

        if (!w)
                return;
        for (size_t r = 0; r < t->nrows; r++)
                for (size_t c = 0; c < t->ncols; c++)
                        w[c] = MAX(w[c], text_width(t->cells[r * t->ncols + c]));
        for (size_t r = 0; r < t->nrows; r++) {
                for (size_t c = 0; c < t->ncols; c++) {
                        const char *s = t->cells[r * t->ncols + c];
                        if (c + 1 < t->ncols)
                                printf("%s%*s", s, (int) (w[c] - text_width(s) + 2), "");
                        else
                                printf("%s\n", s);
                }
        }
}

/* ---- reading FILE ------------------------------------------------------------- */

static int file_error(const ctx *x, const char *name, const char *why) {
        fprintf(stderr, "autoosctl %s: %s: %s\n", x->cmd->name, name, why);
        return CLI_EXIT_USAGE;
}

/* FILE, or standard input for "-", at most CLI_MAX_DOCUMENT_BYTES, checked to be JSON. */
static int read_document(const ctx *x, const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -1;
        _cleanup_buf_ au_buf buf = AU_BUF_INIT((size_t) CLI_MAX_DOCUMENT_BYTES + 1); /* one over: too big */
        _cleanup_json_ yajl_val v = NULL;
        au_error err = {};
        bool is_stdin = strcmp(path, "-") == 0;
        const char *name = is_stdin ? "standard input" : path;

        fd = is_stdin ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return file_error(x, name, strerror(errno));
        int r = au_buf_read_fd(&buf, fd, (size_t) CLI_MAX_DOCUMENT_BYTES);
        if (r == -EFBIG)
                return file_error(x, name, "over 64 MiB");
        if (r == -ENOMEM)
                return oom();
        if (r < 0)
                return file_error(x, name, strerror(-r));
        if (buf.len > CLI_MAX_DOCUMENT_BYTES)
                return file_error(x, name, "over 64 MiB");
        /* The coordinator would refuse it too (invalid_json); say so with the file's name. */
        if (au_json_parse(buf.p ? buf.p : "", buf.len, CLI_MAX_DOCUMENT_BYTES, &v, &err) < 0) {
                fprintf(stderr, "autoosctl %s: %s: %s\n", x->cmd->name, name, err.msg);
                return EX_DATAERR;
        }
        if (!YAJL_IS_OBJECT(v)) {
                fprintf(stderr, "autoosctl %s: %s: expected a JSON object (a workflow)\n", x->cmd->name,
                        name);
                return EX_DATAERR;
        }
        *ret = au_buf_steal(&buf, ret_len);
        return *ret ? 0 : oom();
}

/* ---- workflow display ----------------------------------------------------------- */

static bool is_terminal_state(const char *s) {
        return s && (strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0);
}

/* "exited 0", "timeout", or "-" */
static void outcome_text(yajl_val step, char *buf, size_t size) {
        const char *outcome = get_str(step, "outcome"), *code = get_num(step, "exit_code");

        if (outcome && code)
                snprintf(buf, size, "%s %s", outcome, code);
        else if (outcome)
                snprintf(buf, size, "%s", outcome);
        else if (code)
                snprintf(buf, size, "exit %s", code);
        else
                snprintf(buf, size, "-");
}

/*
 * "autoosctl approve ID STEP", or retry/skip for a run step that exhausted
 * its recovery; compact: the one command that most likely applies.
 */
static void operator_hint(const char *wf, yajl_val step, bool compact, char *buf, size_t size) {
        _cleanup_free_ char *id = clean(get_str(step, "id")), *w = clean(wf);
        const char *kind = get_str(step, "kind");
        bool approval = kind && strcmp(kind, "approval") == 0;

        if (compact)
                snprintf(buf, size, "%s awaits an operator: autoosctl %s %s %s", id ? id : "?",
                         approval ? "approve" : "retry", w ? w : "?", id ? id : "?");
        else if (approval)
                snprintf(buf, size,
                         "step %s awaits an operator: autoosctl approve %s %s (or autoosctl skip %s %s)",
                         id ? id : "?", w ? w : "?", id ? id : "?", w ? w : "?", id ? id : "?");
        else
                snprintf(buf, size,
                         "step %s awaits an operator: autoosctl retry %s %s, or autoosctl skip %s %s "
                         "(autoosctl cancel %s ends the workflow)",
                         id ? id : "?", w ? w : "?", id ? id : "?", w ? w : "?", id ? id : "?", w ? w : "?");
}

static int print_status(yajl_val doc) {
        _cleanup_(table_done) table t = {.ncols = 8};
        yajl_val steps = get(doc, "steps");
        const char *wf = get_str(doc, "id");
        _cleanup_free_ char *id = clean(wf), *name = clean(get_str(doc, "name")),
                            *state = clean(get_str(doc, "state")),
                            *created = clean(get_str(doc, "created_at")),
                            *by = clean(get_str(doc, "created_by")),
                            *updated = clean(get_str(doc, "updated_at"));
        char b1[64], b2[64];

        if (!id || !name || !state || !created || !by || !updated)
                return oom();
        printf("workflow  %s\nname      %s\nstate     %s\n", id, name, state[0] ? state : "-");
        printf("created   %s%s%s\n", created[0] ? created : "-", by[0] ? " by " : "", by);
        printf("updated   %s\n", updated[0] ? updated : "-");
        if (!YAJL_IS_ARRAY(steps))
                return 0;
        putchar('\n');
        if (table_add(&t, "STEP", "KIND", "STATE", "ATTEMPT", "NODE", "OUTCOME", "EXIT", "WALL_MS") < 0)
                return oom();
        for (size_t i = 0; i < steps->u.array.len; i++) {
                yajl_val s = steps->u.array.values[i];
                if (table_add(&t, get_str(s, "id"), get_str(s, "kind"), get_str(s, "state"),
                              scalar(get(s, "attempt"), b1, sizeof(b1)), get_str(s, "node"),
                              get_str(s, "outcome"), get_num(s, "exit_code"),
                              scalar(get(s, "wall_ms"), b2, sizeof(b2))) < 0)
                        return oom();
        }
        table_print(&t);
        bool first = true;
        for (size_t i = 0; i < steps->u.array.len; i++) {
                yajl_val s = steps->u.array.values[i];
                const char *error = get_str(s, "error"), *st = get_str(s, "state");
                if (error && error[0]) {
                        _cleanup_free_ char *sid = clean(get_str(s, "id")), *e = clean(error);
                        if (!sid || !e)
                                return oom();
                        printf("%sstep %s: %s\n", first ? "\n" : "", sid, e);
                        first = false;
                }
                if (st && strcmp(st, "awaiting_human") == 0) {
                        char hint[1024];
                        operator_hint(wf, s, false, hint, sizeof(hint));
                        printf("%s\n", hint);
                }
        }
        return 0;
}

/* ---- following a workflow (submit --wait, status --watch) ------------------------- */

typedef struct seen_step {
        char *id;
        char *state;
        double since; /* when this state began, ms since the epoch */
} seen_step;

typedef enum watch_mode {
        WATCH_SILENT, /* --json or --quiet: operator hints on stderr, nothing else */
        WATCH_LINES,  /* a line per change */
        WATCH_LIVE,   /* a display redrawn in place on a terminal */
} watch_mode;

typedef struct watch {
        const ctx *x;
        const char *id;
        watch_mode mode;
        bool color;
        seen_step *steps;
        size_t n_steps;
        char *wf_state;
        unsigned drawn; /* lines of the last display */
        char note[1100];
        double start;
} watch;

static void watch_done(watch *w) {
        for (size_t i = 0; i < w->n_steps; i++) {
                free(w->steps[i].id);
                free(w->steps[i].state);
        }
        free(w->steps);
        free(w->wf_state);
}

static seen_step *seen_find(watch *w, size_t hint, const char *id) {
        if (hint < w->n_steps && strcmp(w->steps[hint].id, id) == 0)
                return &w->steps[hint];
        for (size_t i = 0; i < w->n_steps; i++)
                if (strcmp(w->steps[i].id, id) == 0)
                        return &w->steps[i];
        return NULL;
}

/* "step build: running (attempt 1, node n1)", "step build: failed (exited 1, 52 ms): ..." */
static void print_step_line(yajl_val s) {
        _cleanup_free_ char *id = clean(get_str(s, "id")), *state = clean(get_str(s, "state")),
                            *node = clean(get_str(s, "node")), *error = clean(get_str(s, "error"));
        const char *attempt = get_num(s, "attempt"), *wall = get_num(s, "wall_ms");
        char outcome[128];

        if (!id || !state || !node || !error)
                return;
        printf("step %s: %s", id, state);
        outcome_text(s, outcome, sizeof(outcome));
        if (strcmp(outcome, "-") != 0 && wall)
                printf(" (%s, %s ms)", outcome, wall);
        else if (strcmp(outcome, "-") != 0)
                printf(" (%s)", outcome);
        else if (attempt && node[0])
                printf(" (attempt %s, node %s)", attempt, node);
        else if (node[0])
                printf(" (node %s)", node);
        if (error[0])
                printf(": %s", error);
        putchar('\n');
}

static int term_size(unsigned *rows, unsigned *cols) {
        struct winsize ws = {};
        *rows = 24;
        *cols = 80;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
                *rows = ws.ws_row;
                *cols = ws.ws_col;
        }
        return 0;
}

static const char *state_color(const char *state) {
        if (!state)
                return "";
        if (strcmp(state, "succeeded") == 0)
                return "\033[32m";
        if (strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0)
                return "\033[31m";
        if (strcmp(state, "running") == 0 || strcmp(state, "dispatched") == 0 || strcmp(state, "ready") == 0)
                return "\033[36m";
        if (strcmp(state, "awaiting_human") == 0 || strcmp(state, "paused") == 0)
                return "\033[33m";
        if (strcmp(state, "replaced") == 0 || strcmp(state, "skipped") == 0)
                return "\033[35m";
        return "\033[2m";
}

/* Steps worth a line when not all fit: what is happening or went wrong. */
static bool is_active_state(const char *s) {
        return s && strcmp(s, "pending") != 0 && strcmp(s, "standby") != 0 && strcmp(s, "succeeded") != 0 &&
               strcmp(s, "skipped") != 0 && strcmp(s, "replaced") != 0;
}

/* Operator hints shown in the live display; more are counted. */
#define MAX_HINTS 3

/* Terminal rows a line of text takes when it wraps. */
static size_t rows_of(const char *s, unsigned cols) {
        size_t w = text_width(s);
        return cols > 0 && w > cols ? (w + cols - 1) / cols : 1;
}

typedef struct screen {
        au_buf buf;
        unsigned lines, cols;
        bool color;
} screen;

/*
 * One line of the display: state (colored), then text. Cut to the terminal's
 * width, or with wrap left whole and counted as the rows it takes.
 */
static void screen_line(screen *sc, const char *state, bool wrap, const char *fmt, ...) _printf_(4, 5);
static void screen_line(screen *sc, const char *state, bool wrap, const char *fmt, ...) {
        char line[2048];
        va_list ap;
        size_t state_len = state ? strlen(state) : 0;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        for (char *p = line; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        /* The last column stays empty: writing there wraps on some terminals. */
        if (!wrap)
                cut_text(line, sc->cols > 1 ? sc->cols - 1 : 1);
        /* The state word starts the line after two blanks, when there is one: color it. */
        int r;
        if (sc->color && state && strncmp(line + 2, state, state_len) == 0)
                r = au_buf_printf(&sc->buf, "  %s%.*s\033[0m%s\n", state_color(state), (int) state_len,
                                  line + 2, line + 2 + state_len);
        else
                r = au_buf_printf(&sc->buf, "%s\n", line);
        if (r < 0)
                return;
        sc->lines += wrap ? (unsigned) rows_of(line, sc->cols) : 1;
}

static void watch_draw(watch *w, yajl_val doc, double now) {
        yajl_val steps = get(doc, "steps");
        const char *wf_state = get_str(doc, "state");
        size_t n = YAJL_IS_ARRAY(steps) ? steps->u.array.len : 0, idw = 4, nodew = 4, shown = 0;
        unsigned rows, cols, budget;
        screen sc = {.color = w->color};
        double created = 0, updated = 0, elapsed;
        char dur[32];

        term_size(&rows, &cols);
        sc.cols = cols;
        for (size_t i = 0; i < n; i++) {
                yajl_val s = steps->u.array.values[i];
                const char *id = get_str(s, "id"), *node = get_str(s, "node");
                idw = MAX(idw, MIN(id ? text_width(id) : 0, (size_t) 32));
                nodew = MAX(nodew, MIN(node ? text_width(node) : 0, (size_t) 20));
        }
        /* The coordinator's times, unless its clock is ahead of ours: then since we began to watch. */
        if (!parse_time(get_str(doc, "created_at"), &created) || created > now + 1000)
                elapsed = now - w->start;
        else if (is_terminal_state(wf_state) && parse_time(get_str(doc, "updated_at"), &updated) &&
                 updated >= created)
                elapsed = updated - created;
        else
                elapsed = now - created;
        fmt_duration(dur, sizeof(dur), elapsed);
        {
                _cleanup_free_ char *name = clean(get_str(doc, "name"));
                screen_line(&sc, NULL, false, "workflow %s: %s  %s  %s", w->id, wf_state ? wf_state : "?",
                            dur, name ? name : "?");
        }

        /* Rows left for steps: the terminal's height less the header, the summary and the notes. */
        size_t awaiting = 0, note_rows = 0;
        for (size_t i = 0; i < n; i++) {
                yajl_val s = steps->u.array.values[i];
                const char *st = get_str(s, "state");
                if (st && strcmp(st, "awaiting_human") == 0 && ++awaiting <= MAX_HINTS) {
                        char hint[1024];
                        operator_hint(w->id, s, true, hint, sizeof(hint));
                        note_rows += rows_of(hint, cols);
                }
        }
        note_rows += (awaiting > MAX_HINTS ? 1 : 0) + (w->note[0] ? rows_of(w->note, cols) : 0);
        budget = rows > note_rows + 3 ? rows - (unsigned) note_rows - 3 : 1;
        /* When not all fit: the steps at work or in trouble first, then the others, in their order. */
        bool all = n <= budget;
        _cleanup_free_ bool *pick = all ? NULL : calloc(n, sizeof(bool));
        if (!all && !pick) {
                au_buf_done(&sc.buf);
                return;
        }
        for (size_t pass = 0, picked = 0; !all && pass < 2; pass++)
                for (size_t i = 0; i < n && picked + 1 < budget; i++) {
                        const char *st = get_str(steps->u.array.values[i], "state");
                        if (!pick[i] && (pass == 1 || is_active_state(st))) {
                                pick[i] = true;
                                picked++;
                        }
                }
        for (size_t i = 0; i < n; i++) {
                yajl_val s = steps->u.array.values[i];
                const char *st = get_str(s, "state"), *id = get_str(s, "id"), *node = get_str(s, "node"),
                           *attempt = get_num(s, "attempt"), *wall = get_num(s, "wall_ms"),
                           *error = get_str(s, "error");
                char outcome[128] = "", sdur[32] = "", att[32] = "";

                if (!all && !pick[i])
                        continue;
                if (get_str(s, "outcome") || get_num(s, "exit_code"))
                        outcome_text(s, outcome, sizeof(outcome));
                if (wall && is_terminal_state(st))
                        fmt_duration(sdur, sizeof(sdur), strtod(wall, NULL));
                else if (st && (strcmp(st, "running") == 0 || strcmp(st, "dispatched") == 0 ||
                                strcmp(st, "awaiting_human") == 0)) {
                        seen_step *seen = id ? seen_find(w, i, id) : NULL;
                        if (seen)
                                fmt_duration(sdur, sizeof(sdur), now - seen->since);
                }
                if (attempt && strcmp(attempt, "0") != 0)
                        snprintf(att, sizeof(att), "try %s", attempt);
                screen_line(&sc, st, false, "  %-14s %-*.*s  %-7s %-*.*s  %-12s %7s%s%s", st ? st : "?",
                            (int) idw, (int) idw, id ? id : "?", att, (int) nodew, (int) nodew,
                            node ? node : "", outcome, sdur, error ? "  " : "", error ? error : "");
                shown++;
        }
        if (!all) {
                size_t done = 0, pending = 0;
                for (size_t i = 0; i < n; i++) {
                        const char *st = get_str(steps->u.array.values[i], "state");
                        if (pick[i])
                                continue;
                        if (st && (strcmp(st, "pending") == 0 || strcmp(st, "standby") == 0))
                                pending++;
                        else if (!is_active_state(st))
                                done++;
                }
                screen_line(&sc, NULL, false, "  (%zu more steps: %zu done, %zu not started)", n - shown,
                            done, pending);
        }
        size_t hinted = 0;
        for (size_t i = 0; i < n && awaiting > 0; i++) {
                yajl_val s = steps->u.array.values[i];
                const char *st = get_str(s, "state");
                if (st && strcmp(st, "awaiting_human") == 0 && ++hinted <= MAX_HINTS) {
                        char hint[1024];
                        operator_hint(w->id, s, true, hint, sizeof(hint));
                        screen_line(&sc, NULL, true, "%s", hint);
                }
        }
        if (awaiting > MAX_HINTS)
                screen_line(&sc, NULL, false, "(%zu more awaiting an operator: autoosctl status %s)",
                            awaiting - MAX_HINTS, w->id);
        if (w->note[0])
                screen_line(&sc, NULL, true, "%s", w->note);

        /* Back to the top of the last display, clear it, draw anew: one write, no flicker. */
        if (w->drawn > 0)
                printf("\033[%uA\r\033[J", w->drawn);
        if (sc.buf.p)
                fwrite(sc.buf.p, 1, sc.buf.len, stdout);
        fflush(stdout);
        w->drawn = sc.lines;
        au_buf_done(&sc.buf);
}

static void print_wf_line(const char *id, const char *state) {
        _cleanup_free_ char *i = clean(id), *s = clean(state);
        printf("workflow %s: %s\n", i ? i : "?", s ? s : "?");
}

/* Records the states of this answer; prints the changes in WATCH_LINES and the hints. */
static int watch_update(watch *w, yajl_val doc, double now) {
        yajl_val steps = get(doc, "steps");
        const char *wf_state = get_str(doc, "state");
        size_t n = YAJL_IS_ARRAY(steps) ? steps->u.array.len : 0;
        bool wf_changed = wf_state && (!w->wf_state || strcmp(w->wf_state, wf_state) != 0);

        if (wf_changed) {
                free(w->wf_state);
                w->wf_state = strdup(wf_state);
                if (!w->wf_state)
                        return oom();
        }
        /* The workflow's new state first, unless it ended: then it is the last line. */
        if (wf_changed && w->mode == WATCH_LINES && !is_terminal_state(wf_state))
                print_wf_line(w->id, wf_state);
        for (size_t i = 0; i < n; i++) {
                yajl_val s = steps->u.array.values[i];
                const char *id = get_str(s, "id"), *st = get_str(s, "state");
                seen_step *seen;
                double since;

                if (!id || !st)
                        continue;
                seen = seen_find(w, i, id);
                if (seen && strcmp(seen->state, st) == 0)
                        continue;
                /* When the state began: the coordinator's updated_at unless it lies in our future. */
                if (!parse_time(get_str(s, "updated_at"), &since) || since > now + 1000)
                        since = now;
                if (!seen) {
                        seen_step *a = realloc(w->steps, (w->n_steps + 1) * sizeof(seen_step));
                        if (!a)
                                return oom();
                        w->steps = a;
                        seen = &w->steps[w->n_steps];
                        *seen = (seen_step){.id = strdup(id)};
                        if (!seen->id)
                                return oom();
                        w->n_steps++;
                        /* Steps that have not started yet are not news. */
                        if (strcmp(st, "pending") == 0 || strcmp(st, "standby") == 0) {
                                seen->state = strdup(st);
                                seen->since = since;
                                if (!seen->state)
                                        return oom();
                                continue;
                        }
                }
                free(seen->state);
                seen->state = strdup(st);
                if (!seen->state)
                        return oom();
                seen->since = since;
                if (w->mode == WATCH_LINES)
                        print_step_line(s);
                if (strcmp(st, "awaiting_human") == 0 && w->mode != WATCH_LIVE) {
                        char hint[1024];
                        operator_hint(w->id, s, false, hint, sizeof(hint));
                        fprintf(w->mode == WATCH_LINES ? stdout : stderr, "%s\n", hint);
                }
        }
        if (wf_changed && w->mode == WATCH_LINES && is_terminal_state(wf_state))
                print_wf_line(w->id, wf_state);
        if (w->mode == WATCH_LINES)
                fflush(stdout);
        return 0;
}

/*
 * Follows workflow id until it ends; returns 0 when it succeeded, 1 when it
 * failed or was cancelled, or the exit status of an error.
 */
static int watch_workflow(const ctx *x, const char *id) {
        _cleanup_(watch_done) watch w = {.x = x, .id = id};
        _cleanup_free_ char *path = cli_path_join("/v1/workflows", id);
        const char *term = getenv("TERM");
        double failing_since = 0;
        int r;

        if (!path)
                return oom();
        if (x->json || x->quiet)
                w.mode = WATCH_SILENT;
        else if (isatty(STDOUT_FILENO) && !(term && strcmp(term, "dumb") == 0))
                w.mode = WATCH_LIVE;
        else
                w.mode = WATCH_LINES;
        w.color = w.mode == WATCH_LIVE && !getenv("NO_COLOR");
        w.start = now_ms();

        for (;;) {
                _cleanup_cli_reply_ cli_reply rep = {};
                _cleanup_json_ yajl_val doc = NULL;
                double now;

                r = cli_client_call(x->client, "GET", path, NULL, 0, CLI_REQUEST_TIMEOUT_MS, &rep);
                now = now_ms();
                if (r != 0) {
                        /* A coordinator that restarts should not end a long wait. */
                        if (!rep.transient || (failing_since > 0 && now - failing_since > WATCH_OUTAGE_MS)) {
                                if (w.mode == WATCH_LIVE && w.drawn > 0)
                                        fflush(stdout);
                                cli_client_report(x->client, &rep);
                                return r;
                        }
                        if (failing_since == 0) {
                                failing_since = now;
                                if (w.mode != WATCH_LIVE)
                                        fprintf(stderr, "autoosctl: %s; trying again for up to %d s\n",
                                                rep.message, (int) (WATCH_OUTAGE_MS / 1000));
                        }
                        snprintf(w.note, sizeof(w.note), "%s; trying again", rep.message);
                        sleep_ms(1000);
                        continue;
                }
                if (failing_since > 0 && w.mode != WATCH_LIVE)
                        fputs("autoosctl: the coordinator answers again\n", stderr);
                failing_since = 0;
                w.note[0] = '\0';
                r = cli_reply_json(x->client, &rep, &doc);
                if (r != 0)
                        return r;
                const char *state = get_str(doc, "state");
                if (!state) {
                        fprintf(stderr,
                                "autoosctl: cannot read the reply of the coordinator at %s: no \"state\"\n",
                                cli_client_url(x->client));
                        return EX_PROTOCOL;
                }
                r = watch_update(&w, doc, now);
                if (r != 0)
                        return r;
                if (w.mode == WATCH_LIVE)
                        watch_draw(&w, doc, now);
                if (is_terminal_state(state)) {
                        if (x->json && !print_body(&rep))
                                return EX_IOERR;
                        if (w.mode == WATCH_LIVE) {
                                print_wf_line(id, state);
                                for (size_t i = 0;
                                     YAJL_IS_ARRAY(get(doc, "steps")) && i < get(doc, "steps")->u.array.len;
                                     i++) {
                                        yajl_val st = get(doc, "steps")->u.array.values[i];
                                        const char *e = get_str(st, "error"), *ss = get_str(st, "state");
                                        if (e && e[0] && ss && strcmp(ss, "failed") == 0)
                                                print_step_line(st);
                                }
                        }
                        fflush(stdout);
                        return strcmp(state, "succeeded") == 0 ? 0 : CLI_EXIT_FAILED;
                }
                sleep_ms(POLL_INTERVAL_MS);
        }
}

/* ---- commands -------------------------------------------------------------------- */

static int cmd_submit(ctx *x) {
        _cleanup_free_ char *doc = NULL;
        _cleanup_cli_reply_ cli_reply rep = {};
        _cleanup_json_ yajl_val v = NULL;
        size_t len;
        int r;

        r = read_document(x, x->args[0], &doc, &len);
        if (r != 0)
                return r;
        r = cli_client_request(x->client, "POST", "/v1/workflows", doc, len, &rep);
        if (r != 0)
                return r;
        r = cli_reply_json(x->client, &rep, &v);
        if (r != 0)
                return r;
        const char *id = get_str(v, "id");
        if (!id || !id[0] || strchr(id, '/')) {
                fprintf(stderr,
                        "autoosctl: cannot read the reply of the coordinator at %s: no workflow \"id\"\n",
                        cli_client_url(x->client));
                return EX_PROTOCOL;
        }
        _cleanup_free_ char *cid = clean(id);
        if (!cid)
                return oom();
        if (x->json && !x->wait)
                return print_body(&rep) ? 0 : EX_IOERR;
        if (x->quiet)
                printf("%s\n", cid);
        else if (!x->json)
                printf("submitted %s\n", cid);
        if (fflush(stdout) != 0)
                return EX_IOERR;
        if (!x->wait)
                return 0;
        return watch_workflow(x, id);
}

static int get_workflow(ctx *x, cli_reply *rep, yajl_val *doc) {
        _cleanup_free_ char *path = cli_path_join("/v1/workflows", x->args[0]);
        int r;

        if (!path)
                return oom();
        r = cli_client_request(x->client, "GET", path, NULL, 0, rep);
        if (r != 0)
                return r;
        if (x->json)
                return 0;
        return cli_reply_json(x->client, rep, doc);
}

static int cmd_status(ctx *x) {
        _cleanup_cli_reply_ cli_reply rep = {};
        _cleanup_json_ yajl_val doc = NULL;
        int r;

        if (x->watch)
                return watch_workflow(x, x->args[0]);
        r = get_workflow(x, &rep, &doc);
        if (r != 0)
                return r;
        if (x->json)
                return print_body(&rep) ? 0 : EX_IOERR;
        r = print_status(doc);
        return r != 0 ? r : fflush(stdout) == 0 ? 0 : EX_IOERR;
}

/* "/v1/workflows?state=S&limit=N" from the options, escaped. */
static int list_query(const ctx *x, char **ret) {
        _cleanup_free_ char *state = NULL;
        char limit[32] = "";

        if (x->state && !(state = cli_path_join("", x->state)))
                return -ENOMEM;
        if (x->has_limit)
                snprintf(limit, sizeof(limit), "%slimit=%u", state ? "&" : "", x->limit);
        if (asprintf(ret, "/v1/workflows%s%s%s%s", state || limit[0] ? "?" : "", state ? "state=" : "",
                     state ? state + 1 : "", limit) < 0)
                return -ENOMEM;
        return 0;
}

static int cmd_list(ctx *x) {
        _cleanup_cli_reply_ cli_reply rep = {};
        _cleanup_json_ yajl_val doc = NULL;
        _cleanup_(table_done) table t = {.ncols = 5};
        _cleanup_free_ char *path = NULL;
        int r;

        if (list_query(x, &path) < 0)
                return oom();
        r = cli_client_request(x->client, "GET", path, NULL, 0, &rep);
        if (r != 0)
                return r;
        if (x->json)
                return print_body(&rep) ? 0 : EX_IOERR;
        r = cli_reply_json(x->client, &rep, &doc);
        if (r != 0)
                return r;
        yajl_val list = get(doc, "workflows");
        if (!YAJL_IS_ARRAY(list)) {
                fprintf(stderr,
                        "autoosctl: cannot read the reply of the coordinator at %s: no \"workflows\" list\n",
                        cli_client_url(x->client));
                return EX_PROTOCOL;
        }
        if (list->u.array.len == 0) {
                puts(x->state ? "no workflows in this state" : "no workflows");
                return fflush(stdout) == 0 ? 0 : EX_IOERR;
        }
        if (table_add(&t, "ID", "STATE", "STEPS", "CREATED", "NAME") < 0)
                return oom();
        for (size_t i = 0; i < list->u.array.len; i++) {
                yajl_val w = list->u.array.values[i], steps = get(w, "steps");
                const char *total = get_num(steps, "total"), *ok = get_num(steps, "succeeded");
                char counts[64];

                snprintf(counts, sizeof(counts), "%s/%s", ok ? ok : "0", total ? total : "?");
                if (table_add(&t, get_str(w, "id"), get_str(w, "state"), counts, get_str(w, "created_at"),
                              get_str(w, "name")) < 0)
                        return oom();
        }
        table_print(&t);
        return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

/* pause, resume, cancel: POST /v1/workflows/{id}/ACTION */
static int cmd_workflow_action(ctx *x) {
        _cleanup_cli_reply_ cli_reply rep = {};
        _cleanup_json_ yajl_val doc = NULL;
        _cleanup_free_ char *base = cli_path_join("/v1/workflows", x->args[0]), *path = NULL;
        int r;

        if (!base || !(path = cli_path_join(base, x->cmd->name)))
                return oom();
        r = cli_client_request(x->client, "POST", path, NULL, 0, &rep);
        if (r != 0)
                return r;
        if (x->json)
                return print_body(&rep) ? 0 : EX_IOERR;
        r = cli_reply_json(x->client, &rep, &doc);
        if (r != 0)
                return r;
        _cleanup_free_ char *id = clean(get_str(doc, "id") ? get_str(doc, "id") : x->args[0]),
                            *state = clean(get_str(doc, "state"));
        if (!id || !state)
                return oom();
        printf("workflow %s: %s\n", id, state[0] ? state : "?");
        return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

/* approve, retry, skip: POST /v1/workflows/{id}/steps/{step}/ACTION */
static int cmd_step_action(ctx *x) {
        _cleanup_cli_reply_ cli_reply rep = {};
        _cleanup_json_ yajl_val doc = NULL;
        _cleanup_free_ char *a = cli_path_join("/v1/workflows", x->args[0]), *b = NULL, *c = NULL,
                            *path = NULL;
        int r;

        if (!a || !(b = cli_path_join(a, "steps")) || !(c = cli_path_join(b, x->args[1])) ||
            !(path = cli_path_join(c, x->cmd->name)))
                return oom();
        r = cli_client_request(x->client, "POST", path, NULL, 0, &rep);
        if (r != 0)
                return r;
        if (x->json)
                return print_body(&rep) ? 0 : EX_IOERR;
        r = cli_reply_json(x->client, &rep, &doc);
        if (r != 0)
                return r;
        _cleanup_free_ char *id = clean(get_str(doc, "id") ? get_str(doc, "id") : x->args[0]),
                            *step = clean(get_str(doc, "step") ? get_str(doc, "step") : x->args[1]),
                            *state = clean(get_str(doc, "state"));
        if (!id || !step || !state)
                return oom();
        printf("step %s of workflow %s: %s\n", step, id, state[0] ? state : "?");
        return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

static int cmd_nodes(ctx *x) {
        _cleanup_cli_reply_ cli_reply rep = {};
        _cleanup_json_ yajl_val doc = NULL;
        _cleanup_(table_done) table t = {.ncols = 9};
        int r;

        r = cli_client_request(x->client, "GET", "/v1/nodes", NULL, 0, &rep);
        if (r != 0)
                return r;
        if (x->json)
                return print_body(&rep) ? 0 : EX_IOERR;
        r = cli_reply_json(x->client, &rep, &doc);
        if (r != 0)
                return r;
        yajl_val nodes = get(doc, "nodes");
        if (!YAJL_IS_ARRAY(nodes)) {
                fprintf(stderr,
                        "autoosctl: cannot read the reply of the coordinator at %s: no \"nodes\" list\n",
                        cli_client_url(x->client));
                return EX_PROTOCOL;
        }
        if (nodes->u.array.len == 0) {
                puts("no nodes");
                return fflush(stdout) == 0 ? 0 : EX_IOERR;
        }
        if (table_add(&t, "NODE", "STATE", "CAPACITY", "RUNNING", "QUEUED", "INFLIGHT", "VERSION",
                      "LAST_SEEN", "LABELS") < 0)
                return oom();
        for (size_t i = 0; i < nodes->u.array.len; i++) {
                yajl_val nd = nodes->u.array.values[i], labels = get(nd, "labels");
                char b[4][64];
                _cleanup_free_ char *lt = NULL;
                size_t ll = 0;
                FILE *f = open_memstream(&lt, &ll);

                if (!f)
                        return oom();
                for (size_t j = 0; YAJL_IS_OBJECT(labels) && j < labels->u.object.len; j++) {
                        char vb[64];
                        fprintf(f, "%s%s=%s", j ? "," : "", labels->u.object.keys[j],
                                scalar(labels->u.object.values[j], vb, sizeof(vb)));
                }
                if (fclose(f) != 0)
                        return oom();
                if (table_add(&t, get_str(nd, "id"), get_str(nd, "state"),
                              scalar(get(nd, "capacity"), b[0], 64), scalar(get(nd, "running"), b[1], 64),
                              scalar(get(nd, "queued"), b[2], 64), scalar(get(nd, "inflight"), b[3], 64),
                              get_str(nd, "version"), get_str(nd, "last_seen"), lt) < 0)
                        return oom();
        }
        table_print(&t);
        return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

/* A probability as a percentage, "-" when null. */
static const char *percent(yajl_val v, char *buf, size_t size) {
        if (!YAJL_IS_NUMBER(v))
                return "-";
        snprintf(buf, size, "%.1f%%", strtod(v->u.number.r, NULL) * 100.0);
        return buf;
}

static int cmd_simulate(ctx *x) {
        _cleanup_free_ char *body = NULL;
        _cleanup_cli_reply_ cli_reply rep = {};
        _cleanup_json_ yajl_val doc = NULL;
        _cleanup_(table_done) table t = {.ncols = 6};
        size_t len;
        int r;

        r = read_document(x, x->args[0], &body, &len);
        if (r != 0)
                return r;
        r = cli_client_request(x->client, "POST", "/v1/workflows/simulate", body, len, &rep);
        if (r != 0)
                return r;
        if (x->json)
                return print_body(&rep) ? 0 : EX_IOERR;
        r = cli_reply_json(x->client, &rep, &doc);
        if (r != 0)
                return r;
        yajl_val steps = get(doc, "steps"), cp = get(doc, "critical_path"), risks = get(doc, "risks");
        if (!YAJL_IS_ARRAY(steps)) {
                fprintf(stderr,
                        "autoosctl: cannot read the reply of the coordinator at %s: no \"steps\" list\n",
                        cli_client_url(x->client));
                return EX_PROTOCOL;
        }
        _cleanup_free_ char *name = clean(get_str(doc, "name"));
        char b[4][64];
        if (!name)
                return oom();
        printf("workflow %s: %zu steps\n\n", name[0] ? name : "?", steps->u.array.len);
        if (table_add(&t, "STEP", "HISTORY", "P50_MS", "P95_MS", "SUCCESS", "PROGRAM") < 0)
                return oom();
        for (size_t i = 0; i < steps->u.array.len; i++) {
                yajl_val s = steps->u.array.values[i];
                if (table_add(&t, get_str(s, "id"), scalar(get(s, "history"), b[0], 64),
                              scalar(get(s, "p50_ms"), b[1], 64), scalar(get(s, "p95_ms"), b[2], 64),
                              percent(get(s, "success_probability"), b[3], 64), get_str(s, "program")) < 0)
                        return oom();
        }
        table_print(&t);

        yajl_val path = get(cp, "steps");
        printf("\ncritical path: ");
        for (size_t i = 0; YAJL_IS_ARRAY(path) && i < path->u.array.len; i++) {
                _cleanup_free_ char *s = clean(scalar(path->u.array.values[i], b[0], 64));
                printf("%s%s", i ? " -> " : "", s ? s : "?");
        }
        if (!YAJL_IS_ARRAY(path) || path->u.array.len == 0)
                printf("-");
        printf(" (p50 %s ms, p95 %s ms)\n", scalar(get(cp, "p50_ms"), b[1], 64),
               scalar(get(cp, "p95_ms"), b[2], 64));
        printf("success probability: %s\n", percent(get(doc, "success_probability"), b[3], 64));
        if (!YAJL_IS_ARRAY(risks) || risks->u.array.len == 0)
                puts("risks: none");
        else {
                puts("risks:");
                for (size_t i = 0; i < risks->u.array.len; i++) {
                        yajl_val k = risks->u.array.values[i];
                        _cleanup_free_ char *step = clean(get_str(k, "step")),
                                            *kind = clean(get_str(k, "kind")),
                                            *msg = clean(get_str(k, "message"));
                        if (!step || !kind || !msg)
                                return oom();
                        printf("  %s: %s%s%s\n", step[0] ? step : "-", kind[0] ? kind : "?",
                               msg[0] ? ": " : "", msg);
                }
        }
        return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

/* One event as a line: {"id":"...","event":"...","data":{...}}. */
static int print_event(void *userdata, const char *id, const char *event, const char *data, size_t len) {
        _cleanup_json_gen_ yajl_gen g = au_json_gen_new(false);
        _cleanup_json_ yajl_val v = NULL;
        _cleanup_free_ char *line = NULL;
        cli_reply fake = {.body = (char *) data, .len = len};
        size_t n;

        if (!g)
                return oom();
        /* The data is the stream entry, a JSON object; anything else is kept as a string. */
        if (cli_reply_json(NULL, &fake, &v) != 0)
                v = NULL;
        if (au_json_gen_map_open(g) < 0 || au_json_gen_kv_string(g, "id", id) < 0 ||
            au_json_gen_kv_string(g, "event", event) < 0 || au_json_gen_string(g, "data") < 0 ||
            (v ? au_json_gen_tree(g, v) : au_json_gen_stringn(g, data, len)) < 0 ||
            au_json_gen_map_close(g) < 0)
                return oom();
        line = au_json_gen_finish(g, &n);
        if (!line)
                return oom();
        fwrite(line, 1, n, stdout);
        putchar('\n');
        return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

static int cmd_events(ctx *x) {
        _cleanup_free_ char *last = x->since ? strdup(x->since) : NULL;
        unsigned delay = 1;
        bool streamed = false;

        if (x->since && !last)
                return oom();
        for (;;) {
                _cleanup_cli_reply_ cli_reply rep = {};
                _cleanup_free_ char *path = NULL, *since = NULL, *got = NULL;
                int r;

                if (last && !(since = cli_path_join("", last)))
                        return oom();
                if (asprintf(&path, "/v1/events%s%s", since ? "?since=" : "", since ? since + 1 : "") < 0)
                        return oom();
                r = cli_client_stream(x->client, path, NULL, print_event, NULL, &got, &rep);
                if (got) {
                        free(last);
                        last = TAKE_PTR(got);
                        delay = 1;
                }
                if (r == 0 || rep.status == 200)
                        streamed = true;
                if (r != 0 && (!rep.transient || !streamed)) {
                        if (rep.message[0])
                                cli_client_report(x->client, &rep);
                        return r;
                }
                /* The stream ended or broke after it had worked: take it up again where it stopped. */
                fprintf(stderr, "autoosctl: %s; reconnecting in %u s\n",
                        r == 0 ? "the coordinator ended the event stream" : rep.message, delay);
                sleep_ms((int) delay * 1000);
                delay = MIN(delay * 2, 10u);
        }
}

/* ---- the table of commands ------------------------------------------------------- */

static const command commands[] = {
        {"submit", "FILE [--wait] [--json] [--quiet]",
         "Submits the workflow in FILE (- for standard input) and prints \"submitted ID\".\n"
         "\n"
         "      --wait   then follow it until it ends: on a terminal a display of its steps\n"
         "               redrawn in place, otherwise a line per change; a step awaiting an\n"
         "               operator is named with the command that answers it; exit 1 when\n"
         "               the workflow failed or was cancelled\n"
         "      --json   print the coordinator's answer (with --wait: the final workflow)\n"
         "  -q, --quiet  print only the workflow's id\n",
         O_WAIT | O_JSON | O_QUIET, 1, cmd_submit},
        {"status", "ID [--json] [--watch]",
         "Shows a workflow and a table of its steps (state, attempt, node, outcome, exit\n"
         "code, wall-clock milliseconds).\n"
         "\n"
         "      --watch  follow it until it ends, as 'submit --wait' does (exit 1 when it\n"
         "               failed or was cancelled)\n"
         "      --json   print the coordinator's document\n",
         O_JSON | O_WATCH, 1, cmd_status},
        {"list", "[--state STATE] [--limit N] [--json]",
         "Lists workflows, newest first.\n"
         "\n"
         "      --state STATE  only those in STATE (pending, running, paused, awaiting_human,\n"
         "                     succeeded, failed, cancelled)\n"
         "      --limit N      at most N (default 100, at most 1000)\n"
         "      --json         print the coordinator's document\n",
         O_STATE | O_LIMIT | O_JSON, 0, cmd_list},
        {"pause", "ID [--json]",
         "Pauses a workflow: no new step starts; running steps finish.\n\n"
         "      --json   print the coordinator's answer\n",
         O_JSON, 1, cmd_workflow_action},
        {"resume", "ID [--json]",
         "Resumes a paused workflow.\n\n"
         "      --json   print the coordinator's answer\n",
         O_JSON, 1, cmd_workflow_action},
        {"cancel", "ID [--json]",
         "Cancels a workflow: running steps are stopped, no other starts.\n\n"
         "      --json   print the coordinator's answer\n",
         O_JSON, 1, cmd_workflow_action},
        {"approve", "ID STEP [--json]",
         "Approves an approval step awaiting an operator.\n\n"
         "      --json   print the coordinator's answer\n",
         O_JSON, 2, cmd_step_action},
        {"retry", "ID STEP [--json]",
         "Runs a failed step, or one awaiting an operator, again.\n\n"
         "      --json   print the coordinator's answer\n",
         O_JSON, 2, cmd_step_action},
        {"skip", "ID STEP [--json]",
         "Skips a step awaiting an operator; the steps that need it go on.\n\n"
         "      --json   print the coordinator's answer\n",
         O_JSON, 2, cmd_step_action},
        {"nodes", "[--json]",
         "Lists the nodes: state, capacity, runs, version, last heartbeat, labels.\n\n"
         "      --json   print the coordinator's document\n",
         O_JSON, 0, cmd_nodes},
        {"simulate", "FILE [--json]",
         "Estimates the workflow in FILE (- for standard input) from the history of its\n"
         "programs, without running it: per step p50/p95 duration and success rate, the\n"
         "critical path, the overall success probability and the risks.\n"
         "\n"
         "      --json   print the coordinator's document\n",
         O_JSON, 1, cmd_simulate},
        {"events", "[--since ID]",
         "Prints the coordinator's events as they happen, one JSON object a line:\n"
         "{\"id\":STREAM-ID,\"event\":TYPE,\"data\":{...}}. Runs until interrupted; a broken\n"
         "stream is taken up again after the last event seen.\n"
         "\n"
         "      --since ID  start after this stream id (default: new events only)\n"
         "      --json      accepted; the output is JSON lines anyway\n",
         O_SINCE | O_JSON, 0, cmd_events},
};

static const command *find_command(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(commands[i].name, name) == 0)
                        return &commands[i];
        return NULL;
}

int cli_is_coordinator_command(const char *name) {
        return find_command(name) != NULL;
}

static void command_usage(const command *c, FILE *f) {
        fprintf(f, "Usage: autoosctl %s %s [--url URL] [--key-file FILE]\n\n%s\n%s", c->name, c->synopsis,
                c->help, global_help);
}

enum {
        OPT_URL = 0x100,
        OPT_KEY_FILE,
        OPT_JSON,
        OPT_WAIT,
        OPT_WATCH,
        OPT_STATE,
        OPT_LIMIT,
        OPT_SINCE,
};

static const struct option options[] = {
        {"url", required_argument, NULL, OPT_URL},
        {"key-file", required_argument, NULL, OPT_KEY_FILE},
        {"json", no_argument, NULL, OPT_JSON},
        {"wait", no_argument, NULL, OPT_WAIT},
        {"watch", no_argument, NULL, OPT_WATCH},
        {"quiet", no_argument, NULL, 'q'},
        {"state", required_argument, NULL, OPT_STATE},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"since", required_argument, NULL, OPT_SINCE},
        {"help", no_argument, NULL, 'h'},
        {},
};

static unsigned option_bit(int c) {
        switch (c) {
        case OPT_URL:
                return O_URL;
        case OPT_KEY_FILE:
                return O_KEY_FILE;
        case OPT_JSON:
                return O_JSON;
        case OPT_WAIT:
                return O_WAIT;
        case OPT_WATCH:
                return O_WATCH;
        case 'q':
                return O_QUIET;
        case OPT_STATE:
                return O_STATE;
        case OPT_LIMIT:
                return O_LIMIT;
        case OPT_SINCE:
                return O_SINCE;
        default:
                return 0;
        }
}

/* Options anywhere after the command ("autoosctl status ID --json"); "--" ends them. */
static int parse_opts(ctx *x, int argc, char **argv) {
        int c;

        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hq", options, NULL)) != -1) {
                const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
                unsigned bit = option_bit(c);

                if (c == 'h') {
                        command_usage(x->cmd, stdout);
                        return -1;
                }
                if (c == ':')
                        return usage_error(x, "%s: requires a value", name);
                if (c == '?')
                        return usage_error(x, "%s: unknown option", name);
                if (!(bit & (x->cmd->opts | O_GLOBAL)))
                        return usage_error(x, "%s: not an option of '%s'", name, x->cmd->name);
                if (bit & (O_URL | O_KEY_FILE | O_STATE | O_SINCE) && !optarg[0])
                        return usage_error(x, "%s: expected a value", name);
                switch (c) {
                case OPT_URL:
                        x->url = optarg;
                        break;
                case OPT_KEY_FILE:
                        x->key_file = optarg;
                        break;
                case OPT_JSON:
                        x->json = true;
                        break;
                case OPT_WAIT:
                        x->wait = true;
                        break;
                case OPT_WATCH:
                        x->watch = true;
                        break;
                case 'q':
                        x->quiet = true;
                        break;
                case OPT_STATE:
                        x->state = optarg;
                        break;
                case OPT_LIMIT:
                        if (au_parse_uint32(optarg, &x->limit) < 0 || x->limit == 0)
                                return usage_error(
                                        x, "--limit %s: expected a number of workflows, 1 or more", optarg);
                        x->has_limit = true;
                        break;
                case OPT_SINCE:
                        x->since = optarg;
                        break;
                }
        }
        return 0;
}

int cli_coordinator(int argc, char **argv) {
        _cleanup_cli_client_ cli_client *client = NULL;
        ctx x = {.cmd = find_command(argv[0])};
        int r, n;

        if (!x.cmd) {
                fprintf(stderr, "autoosctl: unknown command '%s' (see 'autoosctl --help')\n", argv[0]);
                return CLI_EXIT_USAGE;
        }
        r = parse_opts(&x, argc, argv);
        if (r != 0)
                return r < 0 ? 0 : r;
        n = argc - optind;
        x.args = argv + optind;
        if (n < x.cmd->n_args) {
                static const char *const names[] = {"FILE", "ID", "STEP"};
                const char *missing = x.cmd->n_args == 2                         ? names[1 + n]
                                      : strncmp(x.cmd->synopsis, "FILE", 4) == 0 ? names[0]
                                                                                 : names[1];
                return usage_error(&x, "no %s given: autoosctl %s %s", missing, x.cmd->name,
                                   x.cmd->synopsis);
        }
        if (n > x.cmd->n_args)
                return usage_error(&x, "unexpected argument '%s'", x.args[x.cmd->n_args]);
        for (int i = 0; i < n; i++)
                if (!x.args[i][0])
                        return usage_error(&x, "an empty argument");
        if (x.json && x.quiet)
                return usage_error(&x, "--json and --quiet: choose one");

        r = cli_client_new(x.url, x.key_file, x.json, &client);
        if (r != 0)
                return r;
        x.client = client;
        return x.cmd->run(&x);
}
