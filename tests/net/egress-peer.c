/* SPDX-License-Identifier: MIT */
/*
 * "The internet" for tests/sandbox/test-egress.sh, run inside its own
 * network namespace: a DNS responder (any A question gets ANSWER) and a TCP
 * sink that reads and discards, counting queries, bytes and the most
 * connections open at once into STATSFILE ("key=value" lines, replaced
 * whole after each event, first written once both sockets are bound).
 * For the last connection that closed: its bytes and the microseconds from
 * its first byte to its last (an upload's rate, whatever the client does
 * after sending).
 *
 *   egress-peer STATSFILE DNS_ADDR ANSWER SINK_ADDR SINK_PORT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1000

static const char *stats_path;
static unsigned long queries, max_conns, conns, accepted;
static unsigned long long sink_bytes, last_bytes, last_us;
static unsigned long long conn_bytes[MAX_CONNS + 2], conn_first[MAX_CONNS + 2], conn_last[MAX_CONNS + 2];

static unsigned long long now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (unsigned long long) ts.tv_sec * 1000000ull + (unsigned long long) ts.tv_nsec / 1000;
}

static void write_stats(void) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", stats_path);
        FILE *f = fopen(tmp, "w");
        if (!f)
                return;
        fprintf(f,
                "dns_queries=%lu\nsink_max_conns=%lu\nsink_open=%lu\nsink_accepted=%lu\nsink_bytes=%llu\n"
                "last_bytes=%llu\nlast_us=%llu\n",
                queries, max_conns, conns, accepted, sink_bytes, last_bytes, last_us);
        fclose(f);
        rename(tmp, stats_path);
}

static int bound(int type, const char *addr, int port) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
        int one = 1, fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
        if (fd < 0 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
                return -1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -1;
        if (type == SOCK_STREAM && listen(fd, 1024) < 0)
                return -1;
        return fd;
}

static void answer_dns(int fd, struct in_addr answer) {
        unsigned char q[512], r[600];
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *) &from, &fl);
        if (n < 12)
                return;
        queries++;
        /* Header + the question as sent, then one answer pointing at the question's name. */
        size_t qend = 12;
        while (qend < (size_t) n && q[qend] != 0)
                qend += q[qend] + 1;
        qend += 5; /* the root label, QTYPE, QCLASS */
        if (qend > (size_t) n)
                return;
        memcpy(r, q, qend);
        r[2] = 0x81;                     /* response, recursion desired */
        r[3] = 0x80;                     /* recursion available, no error */
        r[6] = 0, r[7] = 1;              /* ANCOUNT 1 */
        r[8] = r[9] = r[10] = r[11] = 0; /* no authority, no additional */
        unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
        memcpy(r + qend, rr, sizeof(rr));
        memcpy(r + qend + sizeof(rr), &answer, 4);
        sendto(fd, r, qend + sizeof(rr) + 4, 0, (struct sockaddr *) &from, fl);
        write_stats();
}

int main(int argc, char **argv) {
        struct in_addr answer;
        if (argc != 6 || inet_pton(AF_INET, argv[3], &answer) != 1) {
                fprintf(stderr, "usage: egress-peer STATSFILE DNS_ADDR ANSWER SINK_ADDR SINK_PORT\n");
                return 2;
        }
        stats_path = argv[1];
        int dns = bound(SOCK_DGRAM, argv[2], 53), sink = bound(SOCK_STREAM, argv[4], atoi(argv[5]));
        if (dns < 0 || sink < 0) {
                perror("egress-peer: bind");
                return 1;
        }
        static struct pollfd p[MAX_CONNS + 2];
        p[0] = (struct pollfd){.fd = dns, .events = POLLIN};
        p[1] = (struct pollfd){.fd = sink, .events = POLLIN};
        for (int i = 2; i < MAX_CONNS + 2; i++)
                p[i].fd = -1;
        write_stats();
        for (;;) {
                if (poll(p, MAX_CONNS + 2, -1) < 0 && errno != EINTR)
                        return 1;
                if (p[0].revents & POLLIN)
                        answer_dns(dns, answer);
                if (p[1].revents & POLLIN) {
                        int c = accept4(sink, NULL, NULL, SOCK_CLOEXEC);
                        for (int i = 2; c >= 0 && i < MAX_CONNS + 2; i++)
                                if (p[i].fd < 0) {
                                        p[i] = (struct pollfd){.fd = c, .events = POLLIN};
                                        conn_bytes[i] = conn_first[i] = conn_last[i] = 0;
                                        c = -1;
                                        accepted++;
                                        if (++conns > max_conns)
                                                max_conns = conns;
                                        write_stats();
                                }
                        if (c >= 0)
                                close(c);
                }
                for (int i = 2; i < MAX_CONNS + 2; i++) {
                        static char buf[65536];
                        if (p[i].fd < 0 || !p[i].revents)
                                continue;
                        ssize_t n = read(p[i].fd, buf, sizeof(buf));
                        if (n > 0) {
                                sink_bytes += (unsigned long long) n;
                                conn_last[i] = now_us();
                                if (conn_bytes[i] == 0)
                                        conn_first[i] = conn_last[i];
                                conn_bytes[i] += (unsigned long long) n;
                                continue;
                        }
                        last_bytes = conn_bytes[i];
                        last_us = conn_last[i] - conn_first[i];
                        close(p[i].fd);
                        p[i].fd = -1;
                        conns--;
                        write_stats();
                }
        }
}
