/* SPDX-License-Identifier: MIT */
/*
 * Network egress for elevated runs (DESIGN.md "Trust levels").
 *
 * An egress run gets a veth pair: "eth0" in its network namespace (which
 * belongs to the host's user namespace, so nobody inside can reconfigure
 * it) and <prefix><slot> on the node. Slot n of the node's pool is the /30
 * at pool + 4n: .1 on the node's end, .2 in the run, default route via .1.
 * Links, addresses, routes and the tbf qdiscs that cap bandwidth each way
 * are made with libnl-route; filtering and masquerade are one nftables
 * table per node, "inet autoos_<prefix>", through libnftables:
 *
 *   forward: iifname vmap @out  -> <name>_out   (what the run sends)
 *            oifname vmap @in   -> <name>_in    (replies only)
 *   input:   iifname vmap @local -> <name>_local (the node's own addresses;
 *            prerouting sends multicast and broadcast there too)
 *   postrouting: ip saddr <pool> oifname <uplink> masquerade
 *
 * What a run may not send jumps to <name>_refuse, which records
 * address . protocol . port in the dynamic set <name>_refused (with a
 * counter per element) and drops it; the result names those. A slot is
 * held by an flock on <state_dir>/egress/slot-<n>; a slot whose lock
 * nobody holds has nobody's traffic, so whatever carries its name (a link,
 * chains, map elements, left by a process killed with SIGKILL) is removed
 * when the next process starts or takes the slot.
 *
 * The node's resolvers are written to <state_dir>/egress-<prefix>/resolv.conf
 * (one "nameserver" line each), which the child binds read-only over the
 * sandbox's /etc/resolv.conf (rootfs.c).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/inet6.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/route.h>
#include <dlfcn.h>
#include <nftables/libnftables.h>
#include <pthread.h>

#include "common/buf.h"
#include "common/macro.h"
#include "egress-rules.h"
#include "egress.h"
#include "sandbox-internal.h"

#define MAX_SLOTS 1024

/*
 * libnftables is loaded when the first egress context is made, not linked:
 * its chain (libnftnl, libmnl, libxtables, libjansson, libgmp) cost every
 * start of autoosctl run about 1.4 ms in the dynamic loader (issue 12),
 * though only egress runs use it. The pointers take the header's own types,
 * so a call is checked as a linked one would be.
 */
#define NFT_SONAME "libnftables.so.1"
static struct {
        typeof(nft_ctx_new) *ctx_new;
        typeof(nft_ctx_free) *ctx_free;
        typeof(nft_ctx_buffer_output) *buffer_output;
        typeof(nft_ctx_buffer_error) *buffer_error;
        typeof(nft_ctx_get_error_buffer) *get_error_buffer;
        typeof(nft_ctx_get_output_buffer) *get_output_buffer;
        typeof(nft_run_cmd_from_buffer) *run_cmd_from_buffer;
        char error[256]; /* why it could not be loaded; "" when loaded */
} nftlib;
static pthread_once_t nftlib_once = PTHREAD_ONCE_INIT;

static void nftlib_load(void) {
        void *h = dlopen(NFT_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!h) {
                snprintf(nftlib.error, sizeof(nftlib.error), "load %s: %s", NFT_SONAME, dlerror());
                return;
        }
#define NFT_SYM(field, name)                                                                     \
        if (!(nftlib.field = (typeof(nftlib.field)) dlsym(h, #name))) {                          \
                snprintf(nftlib.error, sizeof(nftlib.error), "%s has no %s", NFT_SONAME, #name); \
                return;                                                                          \
        }
        NFT_SYM(ctx_new, nft_ctx_new)
        NFT_SYM(ctx_free, nft_ctx_free)
        NFT_SYM(buffer_output, nft_ctx_buffer_output)
        NFT_SYM(buffer_error, nft_ctx_buffer_error)
        NFT_SYM(get_error_buffer, nft_ctx_get_error_buffer)
        NFT_SYM(get_output_buffer, nft_ctx_get_output_buffer)
        NFT_SYM(run_cmd_from_buffer, nft_run_cmd_from_buffer)
#undef NFT_SYM
}

struct sbx_egress {
        sbx_egress_config cfg;
        char table[32];
        char lock_dir[512];
        char resolv_conf[600]; /* <lock_dir>/resolv.conf, bound over each run's /etc/resolv.conf */
        unsigned n_slots, next_slot;
        struct nft_ctx *nft;
        struct nl_sock *nl; /* in the node's network namespace */
        int host_netns;
};

struct sbx_egress_link {
        sbx_egress *eg;
        unsigned slot;
        int lock_fd;
        char name[16];
};

/* ---- settings ------------------------------------------------------------------ */

static int parse_ipv4(const char *s, uint32_t *ret) {
        struct in_addr a;
        if (inet_pton(AF_INET, s, &a) != 1)
                return -EINVAL;
        *ret = ntohl(a.s_addr);
        return 0;
}

static void format_ipv4(uint32_t addr, char *buf) {
        struct in_addr a = {.s_addr = htonl(addr)};
        inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

int sbx_egress_config_set(sbx_egress_config *c, const char *key, const char *value, au_error *err) {
        if (strcmp(key, "egress_uplink") == 0) {
                size_t n = strlen(value);
                if (n == 0 || n >= sizeof(c->uplink) || strchr(value, '/') || strchr(value, ' ') ||
                    strchr(value, '"') || strchr(value, '*'))
                        return au_error_set_field(err, key, "%s: '%s' is not an interface name", key, value);
                strcpy(c->uplink, value);
                return 0;
        }
        if (strcmp(key, "egress_pool") == 0) {
                char buf[32], *slash, *end;
                uint32_t a;
                if (strlen(value) >= sizeof(buf) || !(slash = strchr(strcpy(buf, value), '/')))
                        return au_error_set_field(err, key, "%s: '%s' is not an IPv4 CIDR (a.b.c.d/n)", key,
                                                  value);
                *slash = '\0';
                unsigned long prefix = strtoul(slash + 1, &end, 10);
                if (parse_ipv4(buf, &a) < 0 || *end || slash[1] == '\0' || prefix < 16 || prefix > 29)
                        return au_error_set_field(err, key,
                                                  "%s: '%s' is not an IPv4 CIDR with a prefix of 16..29",
                                                  key, value);
                if (a & ~(~0u << (32 - prefix)))
                        return au_error_set_field(err, key, "%s: '%s' has host bits set", key, value);
                c->pool_addr = a;
                c->pool_prefix = (uint8_t) prefix;
                return 0;
        }
        if (strcmp(key, "egress_resolvers") == 0) {
                char buf[256];
                uint32_t res[4];
                unsigned n = 0;
                if (strlen(value) >= sizeof(buf))
                        return au_error_set_field(err, key, "%s: too long", key);
                strcpy(buf, value);
                for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t;
                     t = strtok_r(NULL, ", ", &save)) {
                        if (n == ELEMENTSOF(res))
                                return au_error_set_field(err, key, "%s: more than %zu resolvers", key,
                                                          ELEMENTSOF(res));
                        if (parse_ipv4(t, &res[n]) < 0)
                                return au_error_set_field(err, key, "%s: '%s' is not an IPv4 address", key,
                                                          t);
                        n++;
                }
                memcpy(c->resolvers, res, n * sizeof(res[0]));
                c->n_resolvers = n;
                return 0;
        }
        if (strcmp(key, "egress_prefix") == 0) {
                size_t n = strlen(value);
                if (n == 0 || n > 6 || strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789") != n)
                        return au_error_set_field(err, key, "%s: '%s' is not 1..6 of [a-z0-9]", key, value);
                strcpy(c->prefix, value);
                return 0;
        }
        return -ENOENT;
}

bool sbx_egress_config_usable(const sbx_egress_config *c) {
        return c && c->uplink[0] && c->pool_prefix != 0;
}

int sbx_egress_config_load(sbx_egress_config *c, const char *path, au_error *err) {
        FILE *f = fopen(path, "re");
        sbx_egress_config tmp = *c;
        char line[1024];
        unsigned lineno = 0;

        if (!f)
                return errno == ENOENT ? 0 : au_error_set(err, errno, "open %s", path);
        while (fgets(line, sizeof(line), f)) {
                char *k = line, *eq, *v, *e;
                lineno++;
                while (*k == ' ' || *k == '\t')
                        k++;
                if (strncmp(k, "egress_", 7) != 0 || !(eq = strchr(k, '=')))
                        continue;
                for (e = eq; e > k && (e[-1] == ' ' || e[-1] == '\t'); e--)
                        ;
                *e = '\0';
                for (v = eq + 1; *v == ' ' || *v == '\t'; v++)
                        ;
                for (e = v + strlen(v); e > v && (e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'); e--)
                        ;
                *e = '\0';
                au_error sub = {};
                int r = sbx_egress_config_set(&tmp, k, v, &sub);
                if (r == -ENOENT)
                        r = au_error_set_field(err, k, "%s:%u: unknown key '%s'", path, lineno, k);
                else if (r < 0)
                        r = au_error_set_field(err, k, "%s:%u: %s", path, lineno, sub.msg);
                if (r < 0) {
                        fclose(f);
                        return r;
                }
        }
        fclose(f);
        *c = tmp;
        return 0;
}

/* ---- nftables ---------------------------------------------------------------------- */

/* A script being written: the first failure to append sticks. */
typedef struct script {
        au_buf b;
        bool bad;
} script;

static void script_done(script *s) {
        au_buf_done(&s->b);
}

_printf_(2, 3) static void emit(script *s, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        if (au_buf_vprintf(&s->b, fmt, ap) < 0)
                s->bad = true;
        va_end(ap);
}

/* Runs one nftables script; err gets libnftables' own message. */
static int nft_run(sbx_egress *eg, const char *text, const char *what, au_error *err) {
        if (nftlib.run_cmd_from_buffer(eg->nft, text) != 0) {
                const char *m = nftlib.get_error_buffer(eg->nft);
                char first[300] = "";
                if (m) {
                        snprintf(first, sizeof(first), "%s", m);
                        first[strcspn(first, "\n")] = '\0';
                }
                return au_error_set(err, EIO, "nftables: %s: %s", what, first[0] ? first : "failed");
        }
        return 0;
}

/* The text nftables printed for a list command, or NULL. */
static const char *nft_list(sbx_egress *eg, const char *cmd) {
        if (nftlib.run_cmd_from_buffer(eg->nft, cmd) != 0)
                return NULL;
        return nftlib.get_output_buffer(eg->nft);
}

static int base_table(sbx_egress *eg, bool recreate, au_error *err) {
        char pool[INET_ADDRSTRLEN];
        _cleanup_(script_done) script b = {.b = AU_BUF_INIT(65536)};
        format_ipv4(eg->cfg.pool_addr, pool);

        char cmd[64];
        snprintf(cmd, sizeof(cmd), "list table inet %s", eg->table);
        bool exists = nft_list(eg, cmd) != NULL;
        if (exists && !recreate)
                return 0;
        if (exists)
                emit(&b, "delete table inet %s\n", eg->table);
        emit(&b,
             "table inet %1$s {\n"
             " map out { type ifname : verdict; }\n"
             " map in { type ifname : verdict; }\n"
             " map local { type ifname : verdict; }\n"
             " chain forward { type filter hook forward priority filter; policy accept;\n"
             "  iifname vmap @out\n"
             "  iifname \"%2$s*\" drop\n"
             "  oifname vmap @in\n"
             "  oifname \"%2$s*\" drop\n"
             " }\n"
             /* Multicast and broadcast are never forwarded: refuse them before routing. */
             " chain prerouting { type filter hook prerouting priority filter; policy accept;\n"
             "  ip daddr { 224.0.0.0/4, 255.255.255.255 } iifname vmap @local\n"
             " }\n"
             " chain input { type filter hook input priority filter; policy accept;\n"
             "  iifname vmap @local\n"
             "  iifname \"%2$s*\" drop\n"
             " }\n"
             " chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n"
             "  ip saddr %3$s/%4$u oifname \"%5$s\" masquerade\n"
             " }\n"
             "}\n",
             eg->table, eg->cfg.prefix, pool, eg->cfg.pool_prefix, eg->cfg.uplink);
        if (b.bad)
                return -ENOMEM;
        return nft_run(eg, b.b.p, "create the node's table", err);
}

/*
 * Removes what exists of a slot's chains, set and map elements, in one
 * transaction: a failed nftables transaction costs the kernel an RCU grace
 * period, so nothing is deleted that the table's listing does not show.
 * listing NULL: list the table now.
 */
static void nft_remove_slot(sbx_egress *eg, const char *name, const char *listing) {
        static const char *const maps[] = {"out", "in", "local"};
        static const char *const chains[] = {"out", "local", "in", "refuse"};
        _cleanup_(script_done) script b = {.b = AU_BUF_INIT(0)};
        _cleanup_free_ char *own = NULL;
        char pat[64];

        if (!listing) {
                char cmd[64];
                snprintf(cmd, sizeof(cmd), "list table inet %s", eg->table);
                const char *out = nft_list(eg, cmd);
                if (!out || !(own = strdup(out)))
                        return;
                listing = own;
        }
        /* Elements of every map print as "<name>" : jump <name>_<map>. */
        for (size_t i = 0; i < ELEMENTSOF(maps); i++) {
                snprintf(pat, sizeof(pat), "\"%s\" : jump %s_%s", name, name, maps[i]);
                if (strstr(listing, pat))
                        emit(&b, "delete element inet %s %s { \"%s\" }\n", eg->table, maps[i], name);
        }
        for (size_t i = 0; i < ELEMENTSOF(chains); i++) {
                snprintf(pat, sizeof(pat), "chain %s_%s {", name, chains[i]);
                if (strstr(listing, pat))
                        emit(&b, "flush chain inet %1$s %2$s_%3$s\ndelete chain inet %1$s %2$s_%3$s\n",
                             eg->table, name, chains[i]);
        }
        snprintf(pat, sizeof(pat), "set %s_refused {", name);
        if (strstr(listing, pat))
                emit(&b, "delete set inet %s %s_refused\n", eg->table, name);
        if (b.b.len > 0 && !b.bad)
                nftlib.run_cmd_from_buffer(eg->nft, b.b.p);
}

/* ---- slots -------------------------------------------------------------------------- */

static int slot_lock(sbx_egress *eg, unsigned slot) {
        char path[600];
        snprintf(path, sizeof(path), "%s/slot-%u", eg->lock_dir, slot);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static void slot_name(sbx_egress *eg, unsigned slot, char name[16]) {
        snprintf(name, 16, "%s%u", eg->cfg.prefix, slot);
}

static void link_delete_by_name(struct nl_sock *nl, const char *name) {
        struct rtnl_link *l = NULL;
        if (rtnl_link_get_kernel(nl, 0, name, &l) == 0) {
                rtnl_link_delete(nl, l);
                rtnl_link_put(l);
        }
}

/* Removes what free slots' names carry: links and nftables objects a dead process left. */
static void sweep(sbx_egress *eg, bool *ret_all_free) {
        bool all_free = true;
        for (unsigned s = 0; s < eg->n_slots; s++) {
                char name[16];
                int fd = slot_lock(eg, s);
                if (fd < 0) {
                        all_free = false;
                        continue;
                }
                slot_name(eg, s, name);
                link_delete_by_name(eg->nl, name);
                close(fd);
        }
        *ret_all_free = all_free;
}

/* ---- context ------------------------------------------------------------------------ */

/*
 * Writes the resolvers' resolv.conf, whole (a new file renamed over the old:
 * a run of another process binding it meanwhile sees one or the other).
 */
static int write_resolv_conf(sbx_egress *eg, au_error *err) {
        char tmp[700], text[4 * (INET_ADDRSTRLEN + 12)] = "";
        for (uint32_t i = 0; i < eg->cfg.n_resolvers && i < ELEMENTSOF(eg->cfg.resolvers); i++) {
                char a[INET_ADDRSTRLEN];
                format_ipv4(eg->cfg.resolvers[i], a);
                snprintf(text + strlen(text), sizeof(text) - strlen(text), "nameserver %s\n", a);
        }
        snprintf(eg->resolv_conf, sizeof(eg->resolv_conf), "%s/resolv.conf", eg->lock_dir);
        snprintf(tmp, sizeof(tmp), "%s.%d", eg->resolv_conf, (int) getpid());
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return au_error_set(err, errno, "egress: create %s", tmp);
        size_t n = strlen(text);
        if (write(fd, text, n) != (ssize_t) n || fchmod(fd, 0644) < 0) {
                int e = errno ? errno : EIO;
                unlink(tmp);
                return au_error_set(err, e, "egress: write %s", tmp);
        }
        if (rename(tmp, eg->resolv_conf) < 0) {
                int e = errno;
                unlink(tmp);
                return au_error_set(err, e, "egress: install %s", eg->resolv_conf);
        }
        return 0;
}

const char *sbx_egress_resolv_conf(const sbx_egress *eg) {
        return eg ? eg->resolv_conf : NULL;
}

int sbx_egress_new(const sbx_egress_config *cfg, const char *state_dir, sbx_egress **ret, au_error *err) {
        char buf[8] = "";
        int r;

        _cleanup_close_ int fwd = open("/proc/sys/net/ipv4/ip_forward", O_RDONLY | O_CLOEXEC);
        if (fwd < 0 || read(fwd, buf, sizeof(buf) - 1) <= 0)
                return au_error_set(err, errno ? errno : EIO, "egress: read net.ipv4.ip_forward");
        if (buf[0] != '1')
                return au_error_set(err, EHOSTUNREACH,
                                    "egress: net.ipv4.ip_forward is 0 on this node; egress runs need it on");

        sbx_egress *eg = calloc(1, sizeof(*eg));
        if (!eg)
                return -ENOMEM;
        eg->cfg = *cfg;
        eg->host_netns = -1;
        if (!eg->cfg.prefix[0])
                strcpy(eg->cfg.prefix, "aeg");
        snprintf(eg->table, sizeof(eg->table), "autoos_%s", eg->cfg.prefix);
        eg->n_slots = MIN(1u << (32 - eg->cfg.pool_prefix - 2), (unsigned) MAX_SLOTS);
        snprintf(eg->lock_dir, sizeof(eg->lock_dir), "%s/egress-%s", state_dir, eg->cfg.prefix);
        if (mkdir(eg->lock_dir, 0700) < 0 && errno != EEXIST) {
                r = au_error_set(err, errno, "egress: create %s", eg->lock_dir);
                goto fail;
        }
        /* Searchable by the runs' ids (the child binds resolv.conf from here); not listable. */
        if (chmod(eg->lock_dir, 0711) < 0) {
                r = au_error_set(err, errno, "egress: chmod %s", eg->lock_dir);
                goto fail;
        }
        if ((r = write_resolv_conf(eg, err)) < 0)
                goto fail;
        eg->host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (eg->host_netns < 0) {
                r = au_error_set(err, errno, "egress: open our network namespace");
                goto fail;
        }
        eg->nl = nl_socket_alloc();
        if (!eg->nl || nl_connect(eg->nl, NETLINK_ROUTE) < 0) {
                r = au_error_set(err, ENOMEM, "egress: open a netlink socket");
                goto fail;
        }
        struct rtnl_link *up = NULL;
        if (rtnl_link_get_kernel(eg->nl, 0, eg->cfg.uplink, &up) < 0) {
                r = au_error_set(err, ENODEV, "egress: uplink %s not found", eg->cfg.uplink);
                goto fail;
        }
        rtnl_link_put(up);
        pthread_once(&nftlib_once, nftlib_load);
        if (nftlib.error[0]) {
                r = au_error_set(err, ENOSYS, "egress: %s", nftlib.error);
                goto fail;
        }
        eg->nft = nftlib.ctx_new(NFT_CTX_DEFAULT);
        if (!eg->nft) {
                r = au_error_set(err, ENOMEM, "egress: create a libnftables context");
                goto fail;
        }
        nftlib.buffer_output(eg->nft);
        nftlib.buffer_error(eg->nft);

        bool all_free;
        sweep(eg, &all_free);
        /* Nobody's run holds a slot: build the table afresh (settings may have changed). */
        if ((r = base_table(eg, all_free, err)) < 0)
                goto fail;
        if (all_free)
                /* The table went with its chains; only links remained, removed by sweep(). */
                ;
        else {
                char cmd[64];
                snprintf(cmd, sizeof(cmd), "list table inet %s", eg->table);
                const char *out = nft_list(eg, cmd);
                _cleanup_free_ char *listing = out ? strdup(out) : NULL;
                for (unsigned s = 0; listing && s < eg->n_slots; s++) {
                        char name[16], pat[32];
                        slot_name(eg, s, name);
                        snprintf(pat, sizeof(pat), "%s_", name);
                        if (!strstr(listing, pat))
                                continue;
                        int fd = slot_lock(eg, s);
                        if (fd < 0)
                                continue;
                        nft_remove_slot(eg, name, listing);
                        close(fd);
                }
        }
        *ret = eg;
        return 0;
fail:
        sbx_egress_free(eg);
        return r;
}

sbx_egress *sbx_egress_free(sbx_egress *eg) {
        if (!eg)
                return NULL;
        if (eg->nft)
                nftlib.ctx_free(eg->nft);
        if (eg->nl)
                nl_socket_free(eg->nl);
        safe_close(eg->host_netns);
        free(eg);
        return NULL;
}

/* ---- one run -------------------------------------------------------------------------- */

static int add_addr(struct nl_sock *nl, int ifindex, uint32_t addr, int prefix, au_error *err) {
        struct rtnl_addr *a = rtnl_addr_alloc();
        struct nl_addr *local = NULL;
        uint32_t be = htonl(addr);
        int r;
        if (!a)
                return -ENOMEM;
        local = nl_addr_build(AF_INET, &be, 4);
        if (!local) {
                rtnl_addr_put(a);
                return -ENOMEM;
        }
        nl_addr_set_prefixlen(local, prefix);
        rtnl_addr_set_ifindex(a, ifindex);
        rtnl_addr_set_local(a, local);
        r = rtnl_addr_add(nl, a, 0);
        nl_addr_put(local);
        rtnl_addr_put(a);
        return r < 0 ? au_error_set(err, EIO, "egress: add an address: %s", nl_geterror(r)) : 0;
}

static int link_up(struct nl_sock *nl, const char *name, int *ret_ifindex, au_error *err) {
        struct rtnl_link *l = NULL, *change = rtnl_link_alloc();
        int r;
        if (!change)
                return -ENOMEM;
        if ((r = rtnl_link_get_kernel(nl, 0, name, &l)) < 0) {
                rtnl_link_put(change);
                return au_error_set(err, ENODEV, "egress: find link %s: %s", name, nl_geterror(r));
        }
        rtnl_link_set_flags(change, IFF_UP);
        /* No IPv6 link-local address, so neither end says anything the run did not (where IPv6 is on). */
        rtnl_link_inet6_set_addr_gen_mode(change, rtnl_link_inet6_str2addrgenmode("none"));
        r = rtnl_link_change(nl, l, change, 0);
        if (r < 0) {
                rtnl_link_put(change);
                if (!(change = rtnl_link_alloc())) {
                        rtnl_link_put(l);
                        return -ENOMEM;
                }
                rtnl_link_set_flags(change, IFF_UP);
                r = rtnl_link_change(nl, l, change, 0);
        }
        *ret_ifindex = rtnl_link_get_ifindex(l);
        rtnl_link_put(l);
        rtnl_link_put(change);
        return r < 0 ? au_error_set(err, EIO, "egress: bring %s up: %s", name, nl_geterror(r)) : 0;
}

/* A token bucket on the link's egress: rate bytes/s, a bucket of 1/100 s (at least 16 KiB). */
static int add_tbf(struct nl_sock *nl, int ifindex, uint64_t rate, au_error *err) {
        struct rtnl_qdisc *q = rtnl_qdisc_alloc();
        int r;
        if (!q)
                return -ENOMEM;
        rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
        rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
        if ((r = rtnl_tc_set_kind(TC_CAST(q), "tbf")) < 0) {
                rtnl_qdisc_put(q);
                return au_error_set(err, EIO, "egress: tbf qdisc: %s", nl_geterror(r));
        }
        int bucket = (int) MAX(rate / 100, (uint64_t) 16384);
        rtnl_qdisc_tbf_set_limit(q, (int) MAX(rate / 4, (uint64_t) 65536));
        rtnl_qdisc_tbf_set_rate(q, (int) rate, bucket, 0);
        r = rtnl_qdisc_add(nl, q, NLM_F_CREATE | NLM_F_REPLACE);
        rtnl_qdisc_put(q);
        return r < 0 ? au_error_set(err, EIO, "egress: set the bandwidth limit: %s", nl_geterror(r)) : 0;
}

/* Inside the run's namespace: eth0 up with the run's address, a default route via the node, the cap. */
static int configure_inside(sbx_egress *eg, int netns_fd, uint32_t run_addr, uint32_t node_addr,
                            uint64_t rate, au_error *err) {
        int r, ifindex;
        if (setns(netns_fd, CLONE_NEWNET) < 0)
                return au_error_set(err, errno, "egress: enter the run's network namespace");
        struct nl_sock *nl = nl_socket_alloc();
        if (!nl || nl_connect(nl, NETLINK_ROUTE) < 0) {
                r = au_error_set(err, ENOMEM, "egress: open a netlink socket in the run's namespace");
                goto out;
        }
        if ((r = link_up(nl, "eth0", &ifindex, err)) < 0 ||
            (r = add_addr(nl, ifindex, run_addr, 30, err)) < 0)
                goto out;
        struct rtnl_route *rt = rtnl_route_alloc();
        struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
        uint32_t gw_be = htonl(node_addr), any = 0;
        struct nl_addr *gw = nl_addr_build(AF_INET, &gw_be, 4), *dst = nl_addr_build(AF_INET, &any, 4);
        if (!rt || !nh || !gw || !dst) {
                r = -ENOMEM;
        } else {
                nl_addr_set_prefixlen(dst, 0);
                rtnl_route_set_family(rt, AF_INET);
                rtnl_route_set_dst(rt, dst);
                rtnl_route_nh_set_gateway(nh, gw);
                rtnl_route_nh_set_ifindex(nh, ifindex);
                rtnl_route_add_nexthop(rt, nh);
                nh = NULL; /* the route owns it */
                r = rtnl_route_add(nl, rt, NLM_F_CREATE);
                if (r < 0)
                        r = au_error_set(err, EIO, "egress: add the run's default route: %s",
                                         nl_geterror(r));
        }
        if (nh)
                rtnl_route_nh_free(nh);
        if (rt)
                rtnl_route_put(rt);
        if (gw)
                nl_addr_put(gw);
        if (dst)
                nl_addr_put(dst);
        if (r >= 0 && rate > 0)
                r = add_tbf(nl, ifindex, rate, err);
out:
        if (nl)
                nl_socket_free(nl);
        if (setns(eg->host_netns, CLONE_NEWNET) < 0)
                abort(); /* never keep running in a sandbox's network (netpool.c) */
        return r;
}

static void gen_rule_match(script *b, const sbx_egress_rule *r) {
        char a[INET_ADDRSTRLEN];
        format_ipv4(r->addr, a);
        emit(b, "ip daddr %s/%u", a, r->prefix);
        if (r->protocol && r->port_min)
                emit(b, " %s dport %u-%u", sbx_egress_protocol_name(r->protocol), r->port_min, r->port_max);
        else if (r->protocol)
                emit(b, " meta l4proto %s", sbx_egress_protocol_name(r->protocol));
}

/* Ranges a run never reaches unless a rule names a destination inside one of them. */
static const struct {
        uint32_t addr;
        uint8_t prefix;
} forbidden[] = {
        {0x00000000, 8},  {0x0a000000, 8},  {0x64400000, 10}, {0x7f000000, 8},
        {0xa9fe0000, 16}, {0xac100000, 12}, {0xc0a80000, 16}, {0xe0000000, 3},
};

static bool names_forbidden(const sbx_egress_rule *r, const sbx_egress_config *c) {
        sbx_egress_rule pool = {.addr = c->pool_addr, .prefix = c->pool_prefix};
        if (sbx_egress_rule_within(&(sbx_egress_rule){.addr = r->addr, .prefix = r->prefix}, &pool))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(forbidden); i++) {
                sbx_egress_rule f = {.addr = forbidden[i].addr, .prefix = forbidden[i].prefix};
                if (sbx_egress_rule_within(&(sbx_egress_rule){.addr = r->addr, .prefix = r->prefix}, &f))
                        return true;
        }
        return false;
}

static int run_ruleset(sbx_egress *eg, const char *n, uint32_t run_addr, const sbx_egress_policy *ep,
                       script *b) {
        const char *t = eg->table;
        char ra[INET_ADDRSTRLEN], pool[INET_ADDRSTRLEN], res[128] = "";
        format_ipv4(run_addr, ra);
        format_ipv4(eg->cfg.pool_addr, pool);
        for (uint32_t i = 0; i < eg->cfg.n_resolvers; i++) {
                char a[INET_ADDRSTRLEN];
                format_ipv4(eg->cfg.resolvers[i], a);
                snprintf(res + strlen(res), sizeof(res) - strlen(res), "%s%s", i ? ", " : "", a);
        }

        emit(b,
             "add chain inet %1$s %2$s_out\nflush chain inet %1$s %2$s_out\n"
             "add chain inet %1$s %2$s_in\nflush chain inet %1$s %2$s_in\n"
             "add chain inet %1$s %2$s_local\nflush chain inet %1$s %2$s_local\n"
             "add chain inet %1$s %2$s_refuse\nflush chain inet %1$s %2$s_refuse\n"
             "add set inet %1$s %2$s_refused { type ipv4_addr . inet_proto . inet_service; "
             "flags dynamic; counter; size %3$d; }\n"
             "flush set inet %1$s %2$s_refused\n"
             "add rule inet %1$s %2$s_refuse meta l4proto { tcp, udp } "
             "add @%2$s_refused { ip daddr . meta l4proto . th dport } drop\n"
             "add rule inet %1$s %2$s_refuse meta nfproto ipv4 "
             "add @%2$s_refused { ip daddr . meta l4proto . 0 } drop\n"
             "add rule inet %1$s %2$s_refuse drop\n"
             /* received: replies only */
             "add rule inet %1$s %2$s_in counter comment \"received\"\n"
             "add rule inet %1$s %2$s_in ct state established,related accept\n"
             "add rule inet %1$s %2$s_in drop\n"
             /* sent */
             "add rule inet %1$s %2$s_out counter comment \"sent\"\n"
             "add rule inet %1$s %2$s_out meta nfproto != ipv4 drop\n"
             "add rule inet %1$s %2$s_out ip saddr != %4$s drop\n"
             "add rule inet %1$s %2$s_local counter comment \"sent\"\n"
             "add rule inet %1$s %2$s_local meta nfproto != ipv4 drop\n"
             "add rule inet %1$s %2$s_local ip saddr != %4$s drop\n",
             t, n, SBX_EGRESS_MAX_REFUSED, ra);
        if (ep->packets_per_second)
                emit(b, "add rule inet %1$s %2$s_out limit rate over %3$u/second burst %3$u packets drop\n",
                     t, n, ep->packets_per_second);
        /* The DNS rate counts every UDP query, not just a flow's first: down one socket, each query
         * sent after the last one's answer belongs to an established flow (a paced tunnel, which
         * adversarial's egress-dns-flood tries). Over TCP, each new connection. */
        for (int local = 0; res[0] && ep->dns_queries_per_second && local < 2; local++)
                emit(b,
                     "add rule inet %1$s %2$s_%3$s ip daddr { %4$s } udp dport 53 limit rate over "
                     "%5$u/second "
                     "burst %5$u packets jump %2$s_refuse\n"
                     "add rule inet %1$s %2$s_%3$s ip daddr { %4$s } tcp dport 53 ct state new limit rate "
                     "over "
                     "%5$u/second burst %5$u packets jump %2$s_refuse\n",
                     t, n, local ? "local" : "out", res, ep->dns_queries_per_second);
        emit(b, "add rule inet %1$s %2$s_out ct state established,related accept\n", t, n);
        if (ep->connections)
                emit(b, "add rule inet %1$s %2$s_out ct state new ct count over %3$u jump %2$s_refuse\n", t,
                     n, ep->connections);
        if (res[0]) {
                for (int local = 0; local < 2; local++) {
                        const char *ch = local ? "local" : "out";
                        emit(b,
                             "add rule inet %1$s %2$s_%3$s ip daddr { %4$s } meta l4proto { tcp, udp } "
                             "th dport 53 accept\n",
                             t, n, ch, res);
                }
        }
        emit(b, "add rule inet %1$s %2$s_local jump %2$s_refuse\n", t, n);
        for (int pass = 0; pass < 2; pass++) {
                /* Rules naming a forbidden range explicitly come before its refusal, the rest after. */
                if (pass == 1) {
                        emit(b, "add rule inet %1$s %2$s_out ip daddr { %3$s/%4$u", t, n, pool,
                             eg->cfg.pool_prefix);
                        for (size_t i = 0; i < ELEMENTSOF(forbidden); i++) {
                                char a[INET_ADDRSTRLEN];
                                format_ipv4(forbidden[i].addr, a);
                                emit(b, ", %s/%u", a, forbidden[i].prefix);
                        }
                        emit(b, " } jump %s_refuse\n", n);
                }
                for (uint32_t i = 0; i < ep->n_allow; i++) {
                        if (names_forbidden(&ep->allow[i], &eg->cfg) != (pass == 0))
                                continue;
                        emit(b, "add rule inet %s %s_out ", t, n);
                        gen_rule_match(b, &ep->allow[i]);
                        emit(b, " accept\n");
                }
        }
        emit(b,
             "add rule inet %1$s %2$s_out jump %2$s_refuse\n"
             "add element inet %1$s out { \"%2$s\" : jump %2$s_out }\n"
             "add element inet %1$s in { \"%2$s\" : jump %2$s_in }\n"
             "add element inet %1$s local { \"%2$s\" : jump %2$s_local }\n",
             t, n);
        return b->bad ? -ENOMEM : 0;
}

int sbx_egress_attach(sbx_egress *eg, int netns_fd, const sbx_egress_policy *ep, sbx_egress_link **ret,
                      au_error *err) {
        _cleanup_(script_done) script b = {.b = AU_BUF_INIT(1 << 20)};
        int r, ifindex;

        sbx_egress_link *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->eg = eg;
        l->lock_fd = -1;
        for (unsigned i = 0; i < eg->n_slots && l->lock_fd < 0; i++) {
                unsigned s = (eg->next_slot + i) % eg->n_slots;
                int fd = slot_lock(eg, s);
                if (fd >= 0) {
                        l->lock_fd = fd;
                        l->slot = s;
                }
        }
        if (l->lock_fd < 0) {
                free(l);
                return au_error_set(err, EBUSY, "egress: every address of the pool (%u runs) is in use",
                                    eg->n_slots);
        }
        eg->next_slot = (l->slot + 1) % eg->n_slots;
        slot_name(eg, l->slot, l->name);
        uint32_t base = eg->cfg.pool_addr + 4 * l->slot, node_addr = base + 1, run_addr = base + 2;

        /* Leftovers of a process killed while it held this slot. */
        link_delete_by_name(eg->nl, l->name);

        if ((r = run_ruleset(eg, l->name, run_addr, ep, &b)) < 0 ||
            (r = nft_run(eg, b.b.p, "install the run's rules", err)) < 0)
                goto fail;

        struct rtnl_link *veth = rtnl_link_veth_alloc();
        if (!veth) {
                r = -ENOMEM;
                goto fail;
        }
        struct rtnl_link *peer = rtnl_link_veth_get_peer(veth);
        rtnl_link_set_name(veth, l->name);
        rtnl_link_set_name(peer, "eth0");
        rtnl_link_set_ns_fd(peer, netns_fd);
        r = rtnl_link_add(eg->nl, veth, NLM_F_CREATE | NLM_F_EXCL);
        rtnl_link_put(peer);
        rtnl_link_veth_release(veth);
        if (r < 0) {
                r = au_error_set(err, EIO, "egress: create veth %s: %s", l->name, nl_geterror(r));
                goto fail;
        }
        if ((r = link_up(eg->nl, l->name, &ifindex, err)) < 0 ||
            (r = add_addr(eg->nl, ifindex, node_addr, 30, err)) < 0 ||
            (ep->bandwidth_bytes && (r = add_tbf(eg->nl, ifindex, ep->bandwidth_bytes, err)) < 0) ||
            (r = configure_inside(eg, netns_fd, run_addr, node_addr, ep->bandwidth_bytes, err)) < 0)
                goto fail;
        *ret = l;
        return 0;
fail:
        link_delete_by_name(eg->nl, l->name);
        nft_remove_slot(eg, l->name, NULL);
        safe_close(l->lock_fd);
        free(l);
        return r;
}

/*
 * The part of a table listing that holds one object: from "<kind> <name> {"
 * to its closing brace at the start of a line. *ret_len 0 when absent.
 */
static const char *listing_section(const char *listing, const char *kind, const char *name,
                                   size_t *ret_len) {
        char head[64];
        snprintf(head, sizeof(head), "%s %s {", kind, name);
        const char *p = listing ? strstr(listing, head) : NULL;
        *ret_len = 0;
        if (!p)
                return NULL;
        const char *e = strstr(p, "\n\t}");
        *ret_len = e ? (size_t) (e - p) : strlen(p);
        return p;
}

/* "counter packets P bytes B comment \"what\"" lines of a chain's section, summed. */
static void read_counter(const char *listing, const char *chain, const char *what, uint64_t *packets,
                         uint64_t *bytes) {
        char tag[32];
        size_t len;
        const char *sec = listing_section(listing, "chain", chain, &len);
        snprintf(tag, sizeof(tag), "comment \"%s\"", what);
        for (const char *p = sec; p && (p = strstr(p, "counter packets ")) && p < sec + len; p++) {
                unsigned long long pk, by;
                const char *eol = strchr(p, '\n');
                const char *c = strstr(p, tag);
                if (!c || (eol && c > eol))
                        continue;
                if (sscanf(p, "counter packets %llu bytes %llu", &pk, &by) == 2) {
                        *packets += pk;
                        *bytes += by;
                }
        }
}

/* The refused set's elements: "a.b.c.d . proto . port counter packets N bytes M". */
static void read_refused(const char *listing, const char *name, sbx_result *res) {
        char set[32];
        size_t len;
        snprintf(set, sizeof(set), "%s_refused", name);
        const char *sec = listing_section(listing, "set", set, &len);
        const char *p = sec ? strstr(sec, "elements = {") : NULL;
        if (!p || p >= sec + len)
                return;
        p += strlen("elements = {");
        while (res->n_egress_refused < SBX_EGRESS_MAX_REFUSED) {
                char addr[64], proto[32], port[16];
                unsigned long long pk, by;
                int used = 0;
                p += strspn(p, " \t\n,");
                if (*p == '}' || !*p)
                        break;
                if (sscanf(p, "%63s . %31s . %15s counter packets %llu bytes %llu%n", addr, proto, port, &pk,
                           &by, &used) != 5 ||
                    used == 0)
                        break;
                p += used;
                char entry[128];
                snprintf(entry, sizeof(entry), "%s:%s/%s", addr, port, proto);
                uint64_t *counts =
                        realloc(res->egress_refused_counts, (res->n_egress_refused + 1) * sizeof(*counts));
                if (!counts)
                        break;
                res->egress_refused_counts = counts;
                counts[res->n_egress_refused] = pk;
                if (au_strv_push(&res->egress_refused, &res->n_egress_refused, entry) < 0)
                        break;
        }
}

sbx_egress_link *sbx_egress_detach(sbx_egress_link *l, sbx_result *res) {
        if (!l)
                return NULL;
        sbx_egress *eg = l->eg;
        char chain[32], cmd[64];
        /* One listing of the table serves the counters, the refusals and the removal. */
        snprintf(cmd, sizeof(cmd), "list table inet %s", eg->table);
        const char *out = nft_list(eg, cmd);
        _cleanup_free_ char *listing = out ? strdup(out) : NULL;
        if (res) {
                res->has_egress = true;
                snprintf(chain, sizeof(chain), "%s_out", l->name);
                read_counter(listing, chain, "sent", &res->egress_sent_packets, &res->egress_sent_bytes);
                snprintf(chain, sizeof(chain), "%s_local", l->name);
                read_counter(listing, chain, "sent", &res->egress_sent_packets, &res->egress_sent_bytes);
                snprintf(chain, sizeof(chain), "%s_in", l->name);
                read_counter(listing, chain, "received", &res->egress_received_packets,
                             &res->egress_received_bytes);
                read_refused(listing, l->name, res);
        }
        link_delete_by_name(eg->nl, l->name);
        nft_remove_slot(eg, l->name, listing);
        safe_close(l->lock_fd);
        free(l);
        return NULL;
}
