/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Defer (pfsync-wire.md §3.7): with --defer the datapath holds the first
 * packet of a new state in pfsync_defer and the INS goes out at once with
 * PFSTATE_ACK. The agent takes the held packets out of that queue as soon as
 * it sees them (their insert records, and every loop turn) and keeps them
 * here, each until a peer acknowledges its state (INS_ACK, or any update of
 * it) or the defer timeout (20 ms, as pf) passes, independently of the
 * others. At most PFSYNC_DEFER_MAX are kept; beyond that the oldest goes at
 * once, as in pf. A released packet is put back on its way as pf sends its
 * released packets, without a second pass through the state table, by the
 * paths of release.h (ingress: live or redirect, probed at start; egress: a
 * packet socket past tc egress).
 * Counters: every packet taken from the queue ends up released on an ack,
 * released by the timeout (or the limit, or at stop), or failed, once:
 * taken = released_ack + released_timeout + release_failed + pending.
 */
#ifndef AGENT_DEFER_H
#define AGENT_DEFER_H

#include <linux/types.h>

#include "htab.h"
#include "pfsync_common.h"
#include "release.h"

struct defer_held {
	struct pfsync_deferred pkt;
	int acked;
};

struct defer_state {
	int queue_fd;	      /* pfsync_defer, -1 = defer unavailable */
	struct release_io io; /* how held frames are sent again */
	__u64 timeout_ns;
	/* the datapath side (NULL pop = defer off); tests plug in their own */
	int (*pop)(struct defer_state *d, struct pfsync_deferred *out); /* 0, -ENOENT if empty */
	int (*send)(struct defer_state *d, const struct pfsync_deferred *h); /* 0 or -errno */
	struct defer_held *pool;			/* PFSYNC_DEFER_MAX + 1 slots */
	struct defer_held *spare[PFSYNC_DEFER_MAX + 1]; /* unused slots */
	unsigned int nspare;
	struct defer_held *held[PFSYNC_DEFER_MAX]; /* oldest first */
	unsigned int pending;			   /* packets held here now */
	struct htab keys;			   /* state key -> number of held packets with it */
	__u64 taken;				   /* packets taken from the datapath's queue */
	__u64 released_ack, released_timeout, release_failed;
};

struct agent;
void defer_init(struct defer_state *d, int queue_fd, unsigned int timeout_ms);
void defer_free(struct defer_state *d);
/* the datapath held a packet (an insert record with EVF_ACK): take it now,
 * before the INS that will bring its ack goes out */
void defer_held(struct agent *a);
/*
 * A peer acknowledged (INS_ACK) or updated the state at key: its held
 * packets, if any, are released at the next defer_run. flagged: the state
 * carries PFSYNC_SF_DEFERRED, so its packet may still be in the queue.
 */
void defer_ack(struct agent *a, const struct pfsync_key *key, int flagged);
/* releases what is due; returns the next deadline (0 = nothing held) */
__u64 defer_run(struct agent *a);
/* releases everything held (agent stopping): nothing held is lost */
void defer_flush(struct agent *a);

#endif /* AGENT_DEFER_H */
