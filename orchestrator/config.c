/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/parse.h"
#include "orchestrator/config.h"

int orc_config_init(orc_config *cfg) {
        *cfg = (orc_config){
                .db = strdup("postgresql:///autoos"),
                .redis = strdup("redis://127.0.0.1:6379"),
                .listen = strdup("127.0.0.1:8080"),
                .sql_dir = strdup(AUTOOS_DATADIR "/autoos/sql"),
                .node_timeout_ms = 2000,
                .audit_checkpoint_ms = 1000,
                .max_body_bytes = 1u << 20,
                .rate_limit = 100,
                .rate_burst = 0,
                .dispatch_batch = 256,
                .queue_per_slot = 3,
                .db_pool = 4,
                .model_workers = 4,
                .max_connections_per_ip = 64,
                .events_per_key = 4,
                .log_level = AU_LOG_INFO,
                .fleet_key_file = strdup(AUTOOS_SYSCONFDIR "/autoos/fleet.key"),
                .secret_key_file = strdup(AUTOOS_SYSCONFDIR "/autoos/secret.key"),
                .bus_auth = true,
                .job_ttl_ms = 3600 * 1000,
        };
        if (!cfg->db || !cfg->redis || !cfg->listen || !cfg->sql_dir || !cfg->fleet_key_file ||
            !cfg->secret_key_file) {
                orc_config_done(cfg);
                return -ENOMEM;
        }
        return 0;
}

void orc_config_done(orc_config *cfg) {
        free(cfg->db);
        free(cfg->redis);
        free(cfg->listen);
        free(cfg->id);
        free(cfg->policy);
        free(cfg->sql_dir);
        free(cfg->fleet_key_file);
        free(cfg->secret_key_file);
        free(cfg->migrate_db);
        free(cfg->audit_key);
        free(cfg->tls_cert);
        free(cfg->tls_key);
        free(cfg->console_dir);
        free(cfg->console_path);
        free(cfg->openapi_file);
        free(cfg->fabric);
        *cfg = (orc_config){0};
}

static int set_string(char **field, const char *value) {
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int set_u32(uint32_t *field, const char *key, const char *value, uint32_t min, uint32_t max,
                   au_error *err) {
        uint32_t v;
        if (au_parse_uint32(value, &v) < 0 || v < min || v > max)
                return au_error_set_field(err, key, "%s: expected a number from %u to %u, got '%s'", key,
                                          min, max, value);
        *field = v;
        return 0;
}

int orc_config_set(orc_config *cfg, const char *key, const char *value, au_error *err) {
        static const char *const strings[] = {"db",       "redis",   "listen",     "id",
                                              "policy",   "sql_dir", "migrate_db", "audit_key",
                                              "tls_cert", "tls_key", "fabric"};
        char **fields[] = {&cfg->db,       &cfg->redis,   &cfg->listen,     &cfg->id,
                           &cfg->policy,   &cfg->sql_dir, &cfg->migrate_db, &cfg->audit_key,
                           &cfg->tls_cert, &cfg->tls_key, &cfg->fabric};
        uint64_t u;

        for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                if (strcmp(key, strings[i]) == 0) {
                        if (!*value)
                                return au_error_set_field(err, key, "%s: empty value", key);
                        return set_string(fields[i], value);
                }
        if (strcmp(key, "console_dir") == 0 || strcmp(key, "console_path") == 0 ||
            strcmp(key, "openapi_file") == 0) {
                if (!*value)
                        return au_error_set_field(err, key, "%s: empty value", key);
                return set_string(key[0] == 'o'   ? &cfg->openapi_file
                                  : key[8] == 'd' ? &cfg->console_dir
                                                  : &cfg->console_path,
                                  value);
        }
        if (strcmp(key, "fleet_key_file") == 0 || strcmp(key, "secret_key_file") == 0) {
                if (!*value)
                        return au_error_set_field(err, key, "%s: empty value", key);
                return set_string(key[0] == 'f' ? &cfg->fleet_key_file : &cfg->secret_key_file, value);
        }
        if (strcmp(key, "node_timeout") == 0) {
                if (au_parse_duration_ms(value, &u) < 0 || u < 500 || u > 600000)
                        return au_error_set_field(
                                err, key, "node_timeout: expected a duration from 500ms to 10min, got '%s'",
                                value);
                cfg->node_timeout_ms = u;
                return 0;
        }
        if (strcmp(key, "audit_checkpoint_interval") == 0) {
                if (au_parse_duration_ms(value, &u) < 0 || u < 10 || u > 3600000)
                        return au_error_set_field(
                                err, key,
                                "audit_checkpoint_interval: expected a duration from 10ms to 1h, got '%s'",
                                value);
                cfg->audit_checkpoint_ms = u;
                return 0;
        }
        if (strcmp(key, "bus_auth") == 0) {
                if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0)
                        return au_error_set_field(err, key, "bus_auth: expected on or off, got '%s'", value);
                cfg->bus_auth = value[1] == 'n';
                return 0;
        }
        if (strcmp(key, "job_ttl") == 0) {
                if (au_parse_duration_ms(value, &u) < 0 || u < 10000 || u > 86400000)
                        return au_error_set_field(
                                err, key, "job_ttl: expected a duration from 10s to 24h, got '%s'", value);
                cfg->job_ttl_ms = u;
                return 0;
        }
        if (strcmp(key, "max_body_bytes") == 0) {
                if (au_parse_size(value, &u) < 0 || u < 1024 || u > (1ull << 30))
                        return au_error_set_field(
                                err, key, "max_body_bytes: expected a size from 1K to 1G, got '%s'", value);
                cfg->max_body_bytes = u;
                return 0;
        }
        if (strcmp(key, "rate_limit") == 0 || strcmp(key, "rate_burst") == 0) {
                char *end;
                double d = strtod(value, &end);
                if (end == value || *end || d <= 0 || d > 1e6)
                        return au_error_set_field(err, key, "%s: expected a positive number, got '%s'", key,
                                                  value);
                if (key[5] == 'l')
                        cfg->rate_limit = d;
                else
                        cfg->rate_burst = d;
                return 0;
        }
        if (strcmp(key, "dispatch_batch") == 0)
                return set_u32(&cfg->dispatch_batch, key, value, 1, 4096, err);
        if (strcmp(key, "queue_per_slot") == 0)
                return set_u32(&cfg->queue_per_slot, key, value, 1, 64, err);
        if (strcmp(key, "db_pool") == 0)
                return set_u32(&cfg->db_pool, key, value, 1, 64, err);
        if (strcmp(key, "model_workers") == 0)
                return set_u32(&cfg->model_workers, key, value, 1, 32, err);
        if (strcmp(key, "max_connections_per_ip") == 0)
                return set_u32(&cfg->max_connections_per_ip, key, value, 1, 256, err);
        if (strcmp(key, "events_per_key") == 0)
                return set_u32(&cfg->events_per_key, key, value, 1, 256, err);
        if (strcmp(key, "approval_by_submitter") == 0) {
                if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
                        cfg->approval_by_submitter = true;
                else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
                        cfg->approval_by_submitter = false;
                else
                        return au_error_set_field(
                                err, key, "approval_by_submitter: expected yes or no, got '%s'", value);
                return 0;
        }
        if (strcmp(key, "log_level") == 0) {
                static const struct {
                        const char *name;
                        int level;
                } levels[] = {{"error", AU_LOG_ERR},
                              {"warning", AU_LOG_WARNING},
                              {"notice", AU_LOG_NOTICE},
                              {"info", AU_LOG_INFO},
                              {"debug", AU_LOG_DEBUG}};
                for (size_t i = 0; i < ELEMENTSOF(levels); i++)
                        if (strcmp(levels[i].name, value) == 0) {
                                cfg->log_level = levels[i].level;
                                return 0;
                        }
                return au_error_set_field(
                        err, key, "log_level: expected error, warning, notice, info or debug, got '%s'",
                        value);
        }
        return au_error_set_field(err, key, "unknown setting '%s'", key);
}

static int set_kv(void *userdata, const char *key, const char *value, au_error *err) {
        return orc_config_set(userdata, key, value, err);
}

int orc_config_load(orc_config *cfg, const char *path, au_error *err) {
        return au_parse_kv_file(path, set_kv, cfg, err);
}
