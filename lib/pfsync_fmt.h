/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A state printed as `pfctl -ss -vv` does, and as JSON. Shared by pfsyncctl
 * and the agent.
 *
 * Text (one state; pf's "all" floating interface, pf's arrow convention:
 * direction in prints "responder <- initiator" and the peers responder:
 * initiator, direction out prints "initiator -> responder"; IPv6 ports as
 * addr[port]):
 *   all tcp 10.0.2.10:80 <- 10.0.1.10:45678       ESTABLISHED:ESTABLISHED
 *      [1000 + 64240](+0) wscale 7  [2000 + 65160] wscale 7      (TCP only)
 *      age 00:01:02, expires in 23:58:58, 10:5 pkts, 1000:500 bytes, rule 0
 *      id: 6578a1c000000001 creatorid: 1234abcd
 * A translated state (issue 15) prints each endpoint as the stack sees it
 * and, in parentheses, as the wire carries it when that differs:
 *   all tcp 10.0.0.5:1234 (198.51.100.1:50123) -> 203.0.113.9:443  ...
 * JSON adds "wire_key" and "stack_key" ({initiator, responder} each) and
 * "nat" ("none", "nat", "rdr", "binat": which endpoints differ).
 */
#ifndef PFSYNC_FMT_H
#define PFSYNC_FMT_H

#include <stdio.h>
#include "pfsync_common.h"

struct pfsync_fmt_ctx {
	__u64 now_ns;			 /* CLOCK_BOOTTIME */
	const struct pfsync_config *cfg; /* NULL = pf defaults */
	__u32 states_count;		 /* for adaptive timeouts */
};

/* pf names: "ESTABLISHED", "SINGLE", ...; NULL when out of range. */
const char *pfsync_fmt_peer_state(__u8 proto, __u8 state);
/* "tcp", "udp", "icmp", "ipv6-icmp", ... or NULL (print the number). */
const char *pfsync_fmt_proto(__u8 proto);
/* pf timeout names ("tcp.first" ...), NULL for indexes without a name */
const char *pfsync_fmt_timeout_name(__u32 pftm);
/* seconds -> "HH:MM:SS" (hours may exceed 99, as pfctl) */
void pfsync_fmt_hms(char *buf, size_t len, __u64 secs);

void pfsync_fmt_state(FILE *f, const struct pfsync_key *k, const struct pfsync_state_value *v,
		      const struct pfsync_fmt_ctx *ctx);
/* One JSON object (no trailing newline). */
void pfsync_fmt_state_json(FILE *f, const struct pfsync_key *k, const struct pfsync_state_value *v,
			   const struct pfsync_fmt_ctx *ctx);

#endif /* PFSYNC_FMT_H */
