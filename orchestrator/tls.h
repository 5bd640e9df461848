/* SPDX-License-Identifier: MIT */
/*
 * The HTTP API's TLS certificate and key, read and checked before the
 * listener starts, so that a bad file is refused with a message naming it
 * rather than by libmicrohttpd's "failed to set up TLS".
 */
#pragma once
#include "common/error.h"

typedef struct orc_tls_files {
        char *cert_pem; /* the certificate chain, PEM, NUL-terminated */
        char *key_pem;  /* its private key, PEM (wiped on orc_tls_files_done) */
} orc_tls_files;

/*
 * Reads cert_path (a PEM certificate, then any intermediates) and key_path
 * (a PEM private key) and checks that the key belongs to the first
 * certificate. Returns 0, or a negative errno with err naming the file and
 * why: unreadable (-errno of open/read), too large or not PEM (-EINVAL), key
 * and certificate do not match (-EKEYREJECTED). An expired certificate is
 * taken (clients refuse it; a notice is logged). ret is untouched on failure.
 */
int orc_tls_files_load(const char *cert_path, const char *key_path, orc_tls_files *ret, au_error *err);
/* Frees both (the key wiped first); accepts a zeroed struct. */
void orc_tls_files_done(orc_tls_files *f);
