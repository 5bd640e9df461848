/* SPDX-License-Identifier: MIT */
/*
 * Connection strings as they may appear in logs and error messages.
 */
#pragma once

/*
 * A copy of url with every credential replaced by "***", for logs. In URLs
 * (scheme "://" userinfo "@" host ...):
 *   user:secret@host     -> user:***@host
 *   secret@host          -> ***@host        (redis and others: a bare userinfo is the password)
 *   user@host            -> user@host       (postgres, postgresql: a bare userinfo is the user)
 *   ?password=pw&x=1     -> ?password=***&x=1   (also sslpassword= and pass=, any case)
 * and in libpq key=value strings: host=h password='p w' -> host=h password=***
 * Returns a string the caller frees, or NULL (out of memory); a NULL url gives "(null)".
 */
char *au_url_mask(const char *url);

/*
 * A copy of text (an error message, e.g. libpq's, which may quote what it
 * was given) in which url is replaced by au_url_mask(url) and each
 * credential of url, wherever it appears alone, by "***". A NULL or empty
 * url gives a plain copy. Returns a string the caller frees, or NULL (out of
 * memory, or a NULL text).
 */
char *au_text_mask_url(const char *text, const char *url);
