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
int sbx_caps_drop_all(void *none, au_error *err) {
        int bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                   SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                   SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
        if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0)
                return au_error_set(err, errno, "lock securebits");

        for (cap_value_t c = 0; c < (cap_value_t) cap_max_bits(); c++)
                if (cap_drop_bound(c) < 0 && errno != EINVAL)
                        return au_error_set(err, errno, "drop capability %d from the bounding set", (int) c);

        /* One call: libcap's cap_reset_ambient() first asks the kernel about every capability. */
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return au_error_set(err, errno, "clear ambient capabilities");

        if (cap_set_proc((cap_t) none) < 0)
                return au_error_set(err, errno, "clear capability sets");
        return 0;
}
