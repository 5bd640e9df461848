/* SPDX-License-Identifier: MIT */
/* common/url: au_url_mask hides every credential a connection string can carry. */
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/url.h"
#include "tests/tap.h"

static void mask_is(const char *in, const char *want) {
        _cleanup_free_ char *got = au_url_mask(in);

        ok(got && strcmp(got, want) == 0, "'%s' -> '%s' (got '%s')", in ? in : "(null)", want,
           got ? got : "(null)");
}

int main(void) {
        tap_plan(19);

        mask_is("redis://127.0.0.1:6379", "redis://127.0.0.1:6379");
        mask_is("redis://user:secret@host:6379/0", "redis://user:***@host:6379/0");
        mask_is("redis://:secret@host", "redis://:***@host");
        mask_is("redis://secret@host", "redis://***@host");
        mask_is("redis://u:p@ss/w@rd@host/1", "redis://u:***@host/1");
        mask_is("rediss://u:s@host", "rediss://u:***@host");
        mask_is("unix:///run/redis.sock", "unix:///run/redis.sock");
        mask_is("postgresql://autoos:hunter2@db.example:5432/autoos",
                "postgresql://autoos:***@db.example:5432/autoos");
        mask_is("postgresql://autoos@db/autoos", "postgresql://autoos@db/autoos");
        mask_is("postgres://u:p@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require");
        mask_is("postgresql://h/db?user=u&password=hunter2&sslmode=require",
                "postgresql://h/db?user=u&password=***&sslmode=require");
        mask_is("postgresql:///db?PASSWORD=x", "postgresql:///db?PASSWORD=***");
        mask_is("postgresql://h/db?sslpassword=k&password=p",
                "postgresql://h/db?sslpassword=***&password=***");
        mask_is("postgresql://h/db?bypassword=1", "postgresql://h/db?bypassword=1");
        mask_is("host=db user=u password=hunter2 dbname=autoos",
                "host=db user=u password=*** dbname=autoos");
        mask_is("host=db password='a b\\' c' dbname=x", "host=db password=*** dbname=x");
        mask_is("password=", "password=***");
        mask_is("", "");
        mask_is(NULL, "(null)");
        return tap_failed ? 1 : 0;
}
