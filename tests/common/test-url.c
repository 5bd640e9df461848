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

static void text_is(const char *text, const char *url, const char *want) {
        _cleanup_free_ char *got = au_text_mask_url(text, url);

        ok(got && strcmp(got, want) == 0, "'%s' with '%s' -> '%s' (got '%s')", text, url, want,
           got ? got : "(null)");
}

int main(void) {
        tap_plan(24);

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

        /* libpq quotes parts of what it was given. */
        text_is("invalid percent-encoded token: \"s3cr%ZZet\"", "postgresql://u:s3cr%ZZet@h/db",
                "invalid percent-encoded token: \"***\"");
        text_is("end of string reached in URI: \"postgresql://u:s3cret@[::1/db\"",
                "postgresql://u:s3cret@[::1/db",
                "end of string reached in URI: \"postgresql://u:***@[::1/db\"");
        text_is("could not connect: password authentication failed for user \"u\"", "postgresql://u:pw@h/db",
                "could not connect: password authentication failed for user \"u\"");
        text_is("missing \"=\" after \"x\" with password=hunter2", "host=h password=hunter2 x",
                "missing \"=\" after \"x\" with password=***");
        text_is("no credentials here", NULL, "no credentials here");
        return tap_failed ? 1 : 0;
}
