/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/parse.h"
#include "sandbox/sandbox.h"
#include "config.h"

#define DEFAULT_CONFIG_DIR AUTOOS_SYSCONFDIR "/autoos"

int dmn_config_init(dmn_config *cfg) {
        char host[256] = "localhost";
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

        gethostname(host, sizeof(host) - 1);
        *cfg = (dmn_config){
                .redis_url = strdup("redis://127.0.0.1:6379"),
                .node_id = strdup(host),
                .max_runs = (unsigned) (ncpu > 0 ? ncpu * 2 : 2),
                .metrics_addr = strdup("127.0.0.1:9464"),
                .policy_path = strdup(DEFAULT_CONFIG_DIR "/policy.json"),
                .control_socket = strdup("/run/autoos/autoosd.sock"),
                .state_dir = strdup("/var/lib/autoos"),
                .run_dir = strdup("/run/autoos"),
                .labels = strdup(""),
                .grace_ms = 30000,
                .rate = 0,
                .burst = 10,
                .result_ttl_s = 86400,
                .uid_base = 1000000000u,
                .uid_count = 65536,
                .log_level = AU_LOG_INFO,
                .node_key_file = strdup(DEFAULT_CONFIG_DIR "/node.key"),
                .bus_auth = true,
        };
        cfg->max_queued = cfg->max_runs;
        if (!cfg->redis_url || !cfg->node_id || !cfg->metrics_addr || !cfg->policy_path ||
            !cfg->control_socket || !cfg->state_dir || !cfg->run_dir || !cfg->labels ||
            !cfg->node_key_file) {
                dmn_config_done(cfg);
                return -ENOMEM;
        }
        return 0;
}

void dmn_config_done(dmn_config *cfg) {
        free(cfg->redis_url);
        free(cfg->node_id);
        free(cfg->metrics_addr);
        free(cfg->policy_path);
        free(cfg->control_socket);
        free(cfg->state_dir);
        free(cfg->run_dir);
        free(cfg->labels);
        free(cfg->node_key_file);
        *cfg = (dmn_config){};
}

static int set_string(char **field, const char *value) {
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int parse_level(const char *v) {
        static const struct {
                const char *name;
                int level;
        } levels[] = {{"error", AU_LOG_ERR},
                      {"warning", AU_LOG_WARNING},
                      {"notice", AU_LOG_NOTICE},
                      {"info", AU_LOG_INFO},
                      {"debug", AU_LOG_DEBUG}};
        for (size_t i = 0; i < ELEMENTSOF(levels); i++)
                if (strcmp(levels[i].name, v) == 0)
                        return levels[i].level;
        return -1;
}

int dmn_config_set(dmn_config *cfg, const char *key, const char *value, au_error *err) {
        uint64_t u;
        uint32_t u32;

        if (strcmp(key, "redis") == 0)
                return set_string(&cfg->redis_url, value);
        if (strcmp(key, "node_id") == 0)
                return set_string(&cfg->node_id, value);
        if (strcmp(key, "metrics") == 0)
                return set_string(&cfg->metrics_addr, value);
        if (strcmp(key, "policy") == 0)
                return set_string(&cfg->policy_path, value);
        if (strcmp(key, "control_socket") == 0)
                return set_string(&cfg->control_socket, value);
        if (strcmp(key, "state_dir") == 0)
                return set_string(&cfg->state_dir, value);
        if (strcmp(key, "run_dir") == 0)
                return set_string(&cfg->run_dir, value);
        if (strcmp(key, "labels") == 0)
                return set_string(&cfg->labels, value);
        if (strcmp(key, "node_key_file") == 0)
                return set_string(&cfg->node_key_file, value);
        if (strcmp(key, "bus_auth") == 0) {
                if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0)
                        return au_error_set_field(err, key, "bus_auth: expected on or off, got '%s'", value);
                cfg->bus_auth = value[1] == 'n';
                return 0;
        }
        if (strcmp(key, "max_runs") == 0 || strcmp(key, "max_queued") == 0) {
                if (au_parse_uint32(value, &u32) < 0 || u32 == 0 || u32 > 4096)
                        return au_error_set_field(err, key, "%s: expected a number from 1 to 4096, got '%s'",
                                                  key, value);
                if (key[4] == 'r') {
                        /* The read-ahead follows max_runs unless set on its own. */
                        if (cfg->max_queued == cfg->max_runs)
                                cfg->max_queued = u32;
                        cfg->max_runs = u32;
                } else
                        cfg->max_queued = u32;
                return 0;
        }
        if (strcmp(key, "grace") == 0) {
                if (au_parse_duration_ms(value, &u) < 0)
                        return au_error_set_field(err, key,
                                                  "grace: expected a duration such as 30s, got '%s'", value);
                cfg->grace_ms = u;
                return 0;
        }
        if (strcmp(key, "result_ttl") == 0) {
                if (au_parse_duration_ms(value, &u) < 0 || u < 1000)
                        return au_error_set_field(
                                err, key, "result_ttl: expected a duration of 1s or more, got '%s'", value);
                cfg->result_ttl_s = u / 1000;
                return 0;
        }
        if (strcmp(key, "rate") == 0) {
                char *end;
                double d = strtod(value, &end);
                if (end == value || *end || d < 0 || d > 1e6)
                        return au_error_set_field(
                                err, key,
                                "rate: expected jobs per second per workflow (0 = unlimited), got '%s'",
                                value);
                cfg->rate = d;
                return 0;
        }
        if (strcmp(key, "burst") == 0) {
                if (au_parse_uint32(value, &u32) < 0 || u32 == 0)
                        return au_error_set_field(err, key,
                                                  "burst: expected a number of 1 or more, got '%s'", value);
                cfg->burst = u32;
                return 0;
        }
        if (strcmp(key, "uid_base") == 0) {
                if (au_parse_uint32(value, &u32) < 0 || u32 < 65536)
                        return au_error_set_field(
                                err, key, "uid_base: expected a uid of 65536 or more, got '%s'", value);
                cfg->uid_base = u32;
                return 0;
        }
        if (strcmp(key, "uid_count") == 0) {
                if (au_parse_uint32(value, &u32) < 0 || u32 == 0)
                        return au_error_set_field(
                                err, key, "uid_count: expected a number of 1 or more, got '%s'", value);
                cfg->uid_count = u32;
                return 0;
        }
        if (strcmp(key, "log_level") == 0) {
                int l = parse_level(value);
                if (l < 0)
                        return au_error_set_field(
                                err, key,
                                "log_level: expected error, warning, notice, info or debug, got '%s'",
                                value);
                cfg->log_level = l;
                return 0;
        }
        if (strncmp(key, "egress_", 7) == 0) {
                int r = sbx_egress_config_set(&cfg->egress, key, value, err);
                if (r != -ENOENT)
                        return r;
        }
        return au_error_set_field(err, key, "unknown setting '%s'", key);
}

int dmn_config_copy(dmn_config *dst, const dmn_config *src) {
        *dst = *src;
        dst->redis_url = strdup(src->redis_url);
        dst->node_id = strdup(src->node_id);
        dst->metrics_addr = strdup(src->metrics_addr);
        dst->policy_path = strdup(src->policy_path);
        dst->control_socket = strdup(src->control_socket);
        dst->state_dir = strdup(src->state_dir);
        dst->run_dir = strdup(src->run_dir);
        dst->labels = strdup(src->labels);
        dst->node_key_file = strdup(src->node_key_file);
        if (!dst->redis_url || !dst->node_id || !dst->metrics_addr || !dst->policy_path ||
            !dst->control_socket || !dst->state_dir || !dst->run_dir || !dst->labels ||
            !dst->node_key_file) {
                dmn_config_done(dst);
                return -ENOMEM;
        }
        return 0;
}

static int set_kv(void *userdata, const char *key, const char *value, au_error *err) {
        return dmn_config_set(userdata, key, value, err);
}

int dmn_config_load(dmn_config *cfg, const char *path, au_error *err) {
        dmn_config work;
        int r;

        /* Into a copy: a file with a bad line changes nothing. */
        if ((r = dmn_config_copy(&work, cfg)) < 0)
                return r;
        r = au_parse_kv_file(path, set_kv, &work, err);
        if (r >= 0)
                r = dmn_config_validate(&work, err);
        if (r < 0) {
                dmn_config_done(&work);
                return r;
        }
        dmn_config_done(cfg);
        *cfg = work;
        return 0;
}

int dmn_config_validate(const dmn_config *cfg, au_error *err) {
        if (!cfg->node_id[0] || strlen(cfg->node_id) > 128)
                return au_error_set_field(err, "node_id", "node_id: must be 1 to 128 characters");
        for (const char *p = cfg->node_id; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("._-", *p))
                        return au_error_set_field(
                                err, "node_id",
                                "node_id '%s': only letters, digits, '.', '_' and '-' are allowed",
                                cfg->node_id);
        if (strncmp(cfg->redis_url, "redis://", 8) != 0 && strncmp(cfg->redis_url, "unix://", 7) != 0)
                return au_error_set_field(err, "redis",
                                          "redis '%s': expected redis://host:port or unix:///path",
                                          cfg->redis_url);
        if (cfg->control_socket[0] != '/' || cfg->state_dir[0] != '/' || cfg->run_dir[0] != '/')
                return au_error_set_field(err, "state_dir",
                                          "control_socket, state_dir and run_dir must be absolute paths");
        if (!cfg->egress.uplink[0] != !cfg->egress.pool_prefix)
                return au_error_set_field(err, cfg->egress.uplink[0] ? "egress_pool" : "egress_uplink",
                                          "egress_uplink and egress_pool: egress needs both, or neither");
        /* Its runs' host uids (and gids) must be nobody else's: not in /etc/subuid or /etc/subgid. */
        au_error sub = {};
        if (sbx_uidpool_check_subids(cfg->uid_base, cfg->uid_count, NULL, NULL, &sub) < 0)
                return au_error_set_field(err, "uid_base", "uid_base: %s", sub.msg);
        for (const char *p = cfg->labels; *p;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t) (comma - p) : strlen(p);
                const char *eq = memchr(p, '=', len);
                if (!eq || eq == p)
                        return au_error_set_field(err, "labels",
                                                  "labels '%s': expected key=value[,key=value...]",
                                                  cfg->labels);
                p += len + (comma ? 1 : 0);
        }
        return 0;
}
