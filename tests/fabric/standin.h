/* SPDX-License-Identifier: MIT */
/*
 * The provider stand-in (tests/fabric/provider-standin.py) for C tests:
 * started on a free loopback port, scripted per case, its request log read
 * back, and stopped whatever happens (atexit, and PR_SET_PDEATHSIG plus its
 * own parent watch if the test dies).
 */
#pragma once

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/json.h"
#include "tests/tap.h"

static pid_t standin_pid = -1;
static int standin_port;
static char standin_dir[64];

static void standin_stop(void) {
        char path[128];
        if (standin_pid > 0) {
                kill(standin_pid, SIGTERM);
                waitpid(standin_pid, NULL, 0);
                standin_pid = -1;
        }
        if (standin_dir[0]) {
                snprintf(path, sizeof(path), "%s/port", standin_dir);
                unlink(path);
                rmdir(standin_dir);
                standin_dir[0] = '\0';
        }
}

/* Starts the stand-in, or skips the whole test when python3 cannot run it. */
static void standin_start(void) {
        const char *srcdir = getenv("top_srcdir");
        char script[4096], portfile[128];

        snprintf(script, sizeof(script), "%s/tests/fabric/provider-standin.py", srcdir ? srcdir : ".");
        if (access(script, R_OK) < 0)
                skip_all("tests/fabric/provider-standin.py not found (top_srcdir unset?)");
        if (system("python3 -c 'import http.server' >/dev/null 2>&1") != 0)
                skip_all("python3 with http.server is needed for the provider stand-in");
        snprintf(standin_dir, sizeof(standin_dir), "/tmp/fabric-standin.XXXXXX");
        if (!mkdtemp(standin_dir))
                skip_all("mkdtemp failed");
        snprintf(portfile, sizeof(portfile), "%s/port", standin_dir);
        atexit(standin_stop);
        fflush(NULL);
        standin_pid = fork();
        if (standin_pid < 0)
                skip_all("fork failed");
        if (standin_pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                execlp("python3", "python3", script, "--port-file", portfile, (char *) NULL);
                _exit(127);
        }
        /* a generous deadline: a loaded machine starts python slowly */
        for (int i = 0; i < 600; i++) {
                FILE *f = fopen(portfile, "re");
                if (f) {
                        if (fscanf(f, "%d", &standin_port) == 1 && standin_port > 0) {
                                fclose(f);
                                return;
                        }
                        fclose(f);
                }
                if (waitpid(standin_pid, NULL, WNOHANG) == standin_pid) {
                        standin_pid = -1;
                        break;
                }
                struct timespec ts = {0, 100 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        printf("Bail out! the provider stand-in did not start\n");
        exit(1);
}

static size_t standin_write(char *p, size_t size, size_t n, void *userdata) {
        return au_buf_append(userdata, p, size * n) < 0 ? 0 : size * n;
}

/* One request to the stand-in's control side; the reply body in *ret (caller frees). */
static int standin_http(const char *path, const char *post, char **ret) {
        char url[256];
        au_buf b = AU_BUF_INIT(0);
        CURL *c = curl_easy_init();
        long status = 0;
        CURLcode cr;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", standin_port, path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        if (post)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, standin_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
        cr = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        if (cr != CURLE_OK || status != 200) {
                au_buf_done(&b);
                return -EIO;
        }
        *ret = au_buf_steal(&b, NULL);
        return 0;
}

/* Replaces the stand-in's script (and clears its log); bails out if it cannot. */
static void standin_script(const char *json) {
        char *reply = NULL;
        if (standin_http("/_script", json, &reply) < 0) {
                printf("Bail out! the stand-in refused the script %s\n", json);
                exit(1);
        }
        free(reply);
}

/* The stand-in's request log, parsed: an array of {prefix, path, t, headers, body}. */
static yajl_val standin_log(void) {
        char *text = NULL;
        yajl_val v = NULL;
        au_error err = {};
        if (standin_http("/_log", NULL, &text) < 0 ||
            au_json_parse(text, strlen(text), 64 << 20, &v, &err) < 0) {
                printf("Bail out! cannot read the stand-in's log\n");
                exit(1);
        }
        free(text);
        return v;
}
