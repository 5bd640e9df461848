/* SPDX-License-Identifier: MIT */
/*
 * What api.c shows its tests (tests/fuzz/fuzz-http.c) beyond api.h. The
 * requests themselves are fuzzed through a real orc_api on a loopback port;
 * the listen address is only read at start, so its parser is reachable here.
 */
#pragma once
#include <stdbool.h>
#include <sys/socket.h>

/*
 * Parses an orc_api_config.listen string as orc_api_start() does: 0 with the
 * address in *ret_addr (port set) and *ret_any true for ":PORT" / "*:PORT"
 * ([::] there); -EINVAL when malformed, -EADDRNOTAVAIL when a host name does
 * not resolve (getaddrinfo). Outputs are untouched on failure.
 */
int orc_api_parse_listen(const char *listen, struct sockaddr_storage *ret_addr, bool *ret_any);
