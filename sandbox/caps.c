/* SPDX-License-Identifier: MIT */
/* Capabilities: the child ends with none at all (libcap). */
#include <linux/securebits.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "sandbox-internal.h"

/*
 * Drops every capability from the bounding, ambient, inheritable, permitted
 * and effective sets, and locks the securebits so that no later execve (not
 * even of a uid-0 or file-capability binary) can bring one back.
 * Order matters: securebits and the bounding set need CAP_SETPCAP, so the
 * process sets (which hold it) are cleared last.
 */
int sbx_caps_drop_all(au_error *err) {
        int bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                   SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                   SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
        if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0)
                return au_error_set(err, errno, "lock securebits");

        for (cap_value_t c = 0; c < (cap_value_t) cap_max_bits(); c++)
                if (cap_drop_bound(c) < 0 && errno != EINVAL)
                        return au_error_set(err, errno, "drop capability %d from the bounding set", (int) c);

        if (cap_reset_ambient() < 0 && errno != EINVAL)
                return au_error_set(err, errno, "clear ambient capabilities");

        cap_t none = cap_init(); /* all three sets empty */
        if (!none)
                return au_error_set(err, ENOMEM, "allocate capability set");
        int r = cap_set_proc(none);
        int saved = errno;
        cap_free(none);
        if (r < 0)
                return au_error_set(err, saved, "clear capability sets");
        return 0;
}
