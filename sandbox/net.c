/* SPDX-License-Identifier: MIT */
/* Networking inside the sandbox's own network namespace (libnl-route). */
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>

#include "sandbox-internal.h"

/*
 * Brings the namespace's loopback interface up; nothing else exists there.
 * Runs in the child, which holds CAP_NET_ADMIN over the namespace it created.
 */
int sbx_net_loopback_up(au_error *err) {
        struct nl_sock *sk = nl_socket_alloc();
        struct rtnl_link *lo = NULL, *change = NULL;
        int r;

        if (!sk)
                return au_error_set(err, ENOMEM, "allocate netlink socket");
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0) {
                r = au_error_set(err, EIO, "connect to rtnetlink in sandbox: %s", nl_geterror(r));
                goto out;
        }
        r = rtnl_link_get_kernel(sk, 0, "lo", &lo);
        if (r < 0) {
                r = au_error_set(err, EIO, "find lo in sandbox: %s", nl_geterror(r));
                goto out;
        }
        change = rtnl_link_alloc();
        if (!change) {
                r = au_error_set(err, ENOMEM, "allocate link change");
                goto out;
        }
        rtnl_link_set_flags(change, IFF_UP);
        r = rtnl_link_change(sk, lo, change, 0);
        if (r < 0)
                r = au_error_set(err, EIO, "bring lo up in sandbox: %s", nl_geterror(r));
out:
        rtnl_link_put(change);
        rtnl_link_put(lo);
        nl_socket_free(sk);
        return r < 0 ? r : 0;
}
