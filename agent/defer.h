/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Defer (pfsync-wire.md §3.7): with --defer the datapath holds the first
 * packet of a new state in pfsync_defer (a FIFO) and the INS goes out at
 * once with PFSTATE_ACK. The agent puts the packet back on its way when a
 * peer acknowledges the state (INS_ACK, or any update of it) or when the
 * defer timeout (20 ms, as pf) passes, in queue order:
 *  - held at XDP ingress: the XDP program runs again on the frame with
 *    BPF_PROG_RUN in live-frame mode, which passes it into the stack as
 *    if it had arrived on its interface (the state exists now);
 *  - held at tc egress: the frame is sent again on its interface.
 */
#ifndef AGENT_DEFER_H
#define AGENT_DEFER_H

#include <linux/types.h>

#include "htab.h"
#include "pfsync_common.h"

struct defer_state {
	int queue_fd;  /* pfsync_defer, -1 = defer unavailable */
	int xdp_fd;    /* XDP program to re-run held ingress frames */
	int packet_fd; /* AF_PACKET socket for held egress frames */
	__u64 timeout_ns;
	unsigned int pending; /* held packets we know of (INS with EVF_ACK) */
	struct htab acked;    /* keys of held states a peer acknowledged */
	__u64 released_ack, released_timeout, release_failed;
};

struct agent;
void defer_init(struct defer_state *d, int queue_fd, int xdp_fd, unsigned int timeout_ms);
void defer_free(struct defer_state *d);
/* the datapath held a packet of this new state */
void defer_held(struct agent *a);
/* a peer acknowledged (INS_ACK) or updated the state at key */
void defer_ack(struct agent *a, const struct pfsync_key *key);
/* releases what is due; returns the next deadline (0 = nothing held) */
__u64 defer_run(struct agent *a);

#endif /* AGENT_DEFER_H */
