/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the pfsync fuzzers share: CHECK, an invariant that aborts (the
 * fuzzer reports the input), and the table fuzz_apply and fuzz_decode
 * start from: PRESET_STATES states of two
 * creators (TCP, UDP and ICMP in turn; ids shared in pairs, so that a CLR or
 * DEL_C of one creator leaves the other's), old enough to be updated.
 */
#ifndef PFSYNC_FUZZ_COMMON_H
#define PFSYNC_FUZZ_COMMON_H

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include "pfsync_common.h"
#include "pfsync_logic.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__,         \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define NS		1000000000ULL
#define PRESET_STATES	24
#define MAX_NAMED	8192 /* > messages in a 64 KiB packet */
#define PRESET_CREATOR	0x1234abcdU
#define PRESET_CREATOR2 0x0badcafeU
#define PRESET_ID	0x6578a1c000000001ULL
#define FUZZ_NOW	(100000 * NS)

/* The i-th preset state (0 <= i < PRESET_STATES): its key and value. */
static inline void fuzz_preset_state(int i, struct pfsync_key *k, struct pfsync_state_value *v)
{
	*k = (struct pfsync_key){0};
	*v = (struct pfsync_state_value){0};
	k->af = PFSYNC_AF_INET;
	k->proto = i % 3 == 0 ? IPPROTO_TCP : (i % 3 == 1 ? IPPROTO_UDP : IPPROTO_ICMP);
	k->addr[0][0] = htonl(0x0a000001);
	k->addr[1][0] = htonl(0x0a000100 + (__u32)i);
	k->port[0] = htons(1000 + i);
	k->port[1] = htons(80);
	v->id = PRESET_ID + (__u64)(i / 2);
	v->creatorid = i % 2 ? PRESET_CREATOR2 : PRESET_CREATOR;
	v->creation = FUZZ_NOW - 60 * NS;
	v->last_seen = FUZZ_NOW - NS;
	v->direction = PF_IN;
	v->timeout = k->proto == IPPROTO_TCP ? PFTM_TCP_ESTABLISHED : PFTM_UDP_MULTIPLE;
	v->peer[0].state = k->proto == IPPROTO_TCP ? TCPS_ESTABLISHED : PFUDPS_MULTIPLE;
	v->peer[1].state = v->peer[0].state;
	v->peer[0].seqlo = 0x80000000U + (__u32)i;
}

#endif /* PFSYNC_FUZZ_COMMON_H */
