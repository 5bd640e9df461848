/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "memory/store.h"

/* Appends s to a PostgreSQL array literal, quoted ({"a","b"}), NULL as NULL. */
static int array_append(au_buf *b, const char *s) {
        int r = au_buf_append(b, b->len == 0 ? "{" : ",", 1);

        if (r < 0 || !s)
                return r < 0 ? r : au_buf_puts(b, "NULL");
        r = au_buf_append(b, "\"", 1);
        for (const char *p = s; r >= 0 && *p; p++) {
                if (*p == '"' || *p == '\\')
                        r = au_buf_append(b, "\\", 1);
                if (r >= 0)
                        r = au_buf_append(b, p, 1);
        }
        return r < 0 ? r : au_buf_append(b, "\"", 1);
}

char *mem_store_array(char *const *items, size_t n) {
        _cleanup_buf_ au_buf buf = AU_BUF_INIT(0);

        if (n == 0)
                return strdup("{}");
        for (size_t i = 0; i < n; i++)
                if (array_append(&buf, items[i]) < 0)
                        return NULL;
        if (au_buf_append(&buf, "}", 1) < 0)
                return NULL;
        return au_buf_steal(&buf, NULL);
}

int mem_store_int(const PGresult *res, int row, int col) {
        const char *v = mem_pg_value(res, row, col);
        return v ? atoi(v) : 0;
}

long long mem_store_ll(const PGresult *res, int row, int col) {
        const char *v = mem_pg_value(res, row, col);
        return v ? atoll(v) : 0;
}

bool mem_store_bool(const PGresult *res, int row, int col) {
        const char *v = mem_pg_value(res, row, col);
        return v && strcmp(v, "t") == 0;
}

int mem_store_arrays(char *const *cols, size_t n, size_t n_cols, char **arrays) {
        for (size_t k = 0; k < n_cols; k++)
                if (!(arrays[k] = mem_store_array(cols + k * n, n)))
                        return -ENOMEM;
        return 0;
}

void mem_store_arrays_free(char **arrays, size_t n_cols) {
        for (size_t k = 0; k < n_cols; k++)
                free(arrays[k]);
}
