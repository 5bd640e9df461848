/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "common/macro.h"
#include "orchestrator/tls.h"

#define MAX_PEM_BYTES (1u << 20)

static int read_pem(const char *what, const char *path, char **ret, au_error *err) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        size_t len = 0;
        char *buf;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return au_error_set(err, errno, "TLS %s '%s': cannot open", what, path);
        if (fstat(fd, &st) < 0)
                return au_error_set(err, errno, "TLS %s '%s': cannot stat", what, path);
        if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t) st.st_size > MAX_PEM_BYTES)
                return au_error_set(err, 0, "TLS %s '%s': expected a PEM file of 1 byte to 1 MiB", what,
                                    path);
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return au_error_set(err, ENOMEM, "TLS %s '%s'", what, path);
        while (len < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + len, (size_t) st.st_size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int e = n < 0 ? errno : EIO;
                        explicit_bzero(buf, len);
                        free(buf);
                        return au_error_set(err, e, "TLS %s '%s': cannot read", what, path);
                }
                len += (size_t) n;
        }
        buf[len] = '\0';
        *ret = buf;
        return 0;
}

static void free_secret(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

int orc_tls_files_load(const char *cert_path, const char *key_path, orc_tls_files *ret, au_error *err) {
        char *cert_pem = NULL, *key_pem = NULL;
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        BIO *bio = NULL;
        int r;

        if (!cert_path || !key_path)
                return au_error_set(err, 0, "TLS needs both a certificate (tls_cert) and its key (tls_key)");
        r = read_pem("certificate", cert_path, &cert_pem, err);
        if (r < 0)
                return r;
        r = read_pem("key", key_path, &key_pem, err);
        if (r < 0)
                goto out;

        r = -EINVAL;
        bio = BIO_new_mem_buf(cert_pem, -1);
        if (!bio || !(cert = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
                au_error_set(err, 0, "TLS certificate '%s': no PEM certificate in it", cert_path);
                goto out;
        }
        BIO_free(bio);
        bio = BIO_new_mem_buf(key_pem, -1);
        if (!bio || !(key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL))) {
                au_error_set(err, 0, "TLS key '%s': no unencrypted PEM private key in it", key_path);
                goto out;
        }
        if (X509_check_private_key(cert, key) != 1) {
                au_error_set(err, 0, "TLS key '%s' does not belong to the certificate '%s'", key_path,
                             cert_path);
                r = -EKEYREJECTED;
                goto out;
        }
        if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
                log_warning("TLS certificate '%s' has expired: clients will refuse it", cert_path);
        ret->cert_pem = TAKE_PTR(cert_pem);
        ret->key_pem = TAKE_PTR(key_pem);
        r = 0;
out:
        ERR_clear_error();
        BIO_free(bio);
        X509_free(cert);
        EVP_PKEY_free(key);
        free(cert_pem);
        free_secret(key_pem);
        return r;
}

void orc_tls_files_done(orc_tls_files *f) {
        free(f->cert_pem);
        free_secret(f->key_pem);
        f->cert_pem = f->key_pem = NULL;
}
