/* SPDX-License-Identifier: MIT */
/* Egress allowlist entries: parse, write back, compare (see egress-rules.h). */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress-rules.h"

const char *sbx_egress_protocol_name(int protocol) {
        switch (protocol) {
        case 0:
                return "any";
        case IPPROTO_TCP:
                return "tcp";
        case IPPROTO_UDP:
                return "udp";
        case IPPROTO_ICMP:
                return "icmp";
        default:
                return NULL;
        }
}

static bool has_ports(int protocol) {
        return protocol == IPPROTO_TCP || protocol == IPPROTO_UDP;
}

static int parse_port(const char *s, uint16_t *ret) {
        char *end;
        if (*s < '0' || *s > '9')
                return -EINVAL;
        unsigned long v = strtoul(s, &end, 10);
        if (*end || v == 0 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

static int read_cidr(const char *s, const char *field, sbx_egress_rule *r, au_error *err) {
        char buf[32];
        const char *slash = strchr(s, '/');
        struct in_addr a;
        unsigned long prefix = 32;

        if (strlen(s) >= sizeof(buf))
                return au_error_set_field(err, field, "%s: '%.40s' is not an IPv4 address or CIDR", field,
                                          s);
        strcpy(buf, s);
        if (slash) {
                char *end;
                buf[slash - s] = '\0';
                if (slash[1] < '0' || slash[1] > '9')
                        return au_error_set_field(err, field, "%s: '%s' has no prefix length", field, s);
                prefix = strtoul(slash + 1, &end, 10);
                if (*end || prefix > 32)
                        return au_error_set_field(err, field, "%s: prefix length in '%s' is not 0..32",
                                                  field, s);
        }
        if (inet_pton(AF_INET, buf, &a) != 1)
                return au_error_set_field(err, field, "%s: '%s' is not an IPv4 address or CIDR", field, s);
        uint32_t addr = ntohl(a.s_addr);
        uint32_t mask = prefix == 0 ? 0 : ~0u << (32 - prefix);
        if (addr & ~mask)
                return au_error_set_field(err, field, "%s: '%s' has host bits set", field, s);
        r->addr = addr;
        r->prefix = (uint8_t) prefix;
        return 0;
}

static int read_rule(yajl_val v, const char *path, sbx_egress_rule *ret, au_error *err) {
        static const char *const known[] = {"cidr", "protocol", "ports", NULL};
        sbx_egress_rule r = {};
        char field[200];
        const char *s;
        yajl_val x;
        int e;

        if (!YAJL_IS_OBJECT(v))
                return au_error_set_field(err, path, "%s: expected an object with cidr, protocol, ports",
                                          path);
        if ((e = au_json_check_object(v, path, known, err)) < 0)
                return e;
        au_json_path(field, sizeof(field), path, "cidr");
        if (!(x = au_json_get(v, "cidr")))
                return au_error_set_field(err, field, "%s: required", field);
        if ((e = au_json_get_string(x, field, &s, err)) < 0 || (e = read_cidr(s, field, &r, err)) < 0)
                return e;
        if ((x = au_json_get(v, "protocol"))) {
                au_json_path(field, sizeof(field), path, "protocol");
                if ((e = au_json_get_string(x, field, &s, err)) < 0)
                        return e;
                if (strcmp(s, "tcp") == 0)
                        r.protocol = IPPROTO_TCP;
                else if (strcmp(s, "udp") == 0)
                        r.protocol = IPPROTO_UDP;
                else if (strcmp(s, "icmp") == 0)
                        r.protocol = IPPROTO_ICMP;
                else if (strcmp(s, "any") != 0)
                        return au_error_set_field(err, field,
                                                  "%s: unknown protocol '%.40s' (tcp, udp, icmp or any)",
                                                  field, s);
        }
        if ((x = au_json_get(v, "ports"))) {
                char buf[16];
                au_json_path(field, sizeof(field), path, "ports");
                if ((e = au_json_get_string(x, field, &s, err)) < 0)
                        return e;
                if (!has_ports(r.protocol))
                        return au_error_set_field(err, field, "%s: ports need protocol tcp or udp", field);
                if (strlen(s) >= sizeof(buf))
                        return au_error_set_field(err, field, "%s: '%.40s' is not a port or range", field,
                                                  s);
                strcpy(buf, s);
                char *dash = strchr(buf, '-');
                if (dash)
                        *dash = '\0';
                if (parse_port(buf, &r.port_min) < 0 || parse_port(dash ? dash + 1 : buf, &r.port_max) < 0)
                        return au_error_set_field(err, field, "%s: '%s' is not a port (1..65535) or range",
                                                  field, s);
                if (r.port_min > r.port_max)
                        return au_error_set_field(err, field, "%s: range '%s' is reversed", field, s);
        }
        *ret = r;
        return 0;
}

int sbx_egress_rules_from_json(yajl_val v, const char *path, sbx_egress_rule *rules, uint32_t *ret_n,
                               au_error *err) {
        sbx_egress_rule tmp[SBX_EGRESS_MAX_RULES];
        int r;

        if ((r = au_json_check_array(v, path, err)) < 0)
                return r;
        if (v->u.array.len > SBX_EGRESS_MAX_RULES)
                return au_error_set_field(err, path, "%s: %zu entries, over the limit of %d", path,
                                          v->u.array.len, SBX_EGRESS_MAX_RULES);
        for (size_t i = 0; i < v->u.array.len; i++) {
                char item[200];
                snprintf(item, sizeof(item), "%s[%zu]", path, i);
                if ((r = read_rule(v->u.array.values[i], item, &tmp[i], err)) < 0)
                        return r;
        }
        memcpy(rules, tmp, v->u.array.len * sizeof(tmp[0]));
        *ret_n = (uint32_t) v->u.array.len;
        return 0;
}

int sbx_egress_rules_gen(yajl_gen g, const sbx_egress_rule *rules, uint32_t n) {
        if (au_json_gen_array_open(g) < 0)
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
                const sbx_egress_rule *r = &rules[i];
                char cidr[32], ports[16];
                struct in_addr a = {.s_addr = htonl(r->addr)};
                char addr[INET_ADDRSTRLEN];
                inet_ntop(AF_INET, &a, addr, sizeof(addr));
                snprintf(cidr, sizeof(cidr), "%s/%u", addr, r->prefix);
                if (au_json_gen_map_open(g) < 0 || au_json_gen_kv_string(g, "cidr", cidr) < 0 ||
                    au_json_gen_kv_string(g, "protocol", sbx_egress_protocol_name(r->protocol)) < 0)
                        return -ENOMEM;
                if (r->port_min) {
                        if (r->port_min == r->port_max)
                                snprintf(ports, sizeof(ports), "%u", r->port_min);
                        else
                                snprintf(ports, sizeof(ports), "%u-%u", r->port_min, r->port_max);
                        if (au_json_gen_kv_string(g, "ports", ports) < 0)
                                return -ENOMEM;
                }
                if (au_json_gen_map_close(g) < 0)
                        return -ENOMEM;
        }
        return au_json_gen_array_close(g) < 0 ? -ENOMEM : 0;
}

bool sbx_egress_rule_within(const sbx_egress_rule *in, const sbx_egress_rule *out) {
        uint32_t mask = out->prefix == 0 ? 0 : ~0u << (32 - out->prefix);
        if (in->prefix < out->prefix || (in->addr & mask) != out->addr)
                return false;
        if (out->protocol != 0 && in->protocol != out->protocol)
                return false;
        if (out->port_min == 0)
                return true;
        /* outer names ports: inner must name a protocol with ports, and a range inside. */
        return has_ports(in->protocol) && in->port_min >= out->port_min && in->port_max <= out->port_max &&
               in->port_min != 0;
}

void sbx_egress_rule_format(const sbx_egress_rule *r, char *buf, size_t size) {
        struct in_addr a = {.s_addr = htonl(r->addr)};
        char addr[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &a, addr, sizeof(addr));
        if (r->port_min)
                snprintf(buf, size, "%s/%u %s %u-%u", addr, r->prefix, sbx_egress_protocol_name(r->protocol),
                         r->port_min, r->port_max);
        else
                snprintf(buf, size, "%s/%u %s", addr, r->prefix, sbx_egress_protocol_name(r->protocol));
}
