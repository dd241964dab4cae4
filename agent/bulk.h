/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Bulk update (pfsync-wire.md §3.6).
 *
 * Requester: at start the agent sends UPD_REQ(0,0) and retries every 2 s,
 * 12 tries in all, until a peer's BUS START; then it waits for BUS END
 * ("done") as long as the peer keeps sending (10 s of silence = failed).
 * With nobody answering it ends "failed", as OpenBSD gives up after its
 * tries; `pfsyncctl status` shows which.
 *
 * Responder (the walker): BUS START, every non-NOSYNC state as UPD in full
 * packets, BUS END. Unlike OpenBSD's 1 packet per 20 ms it moves a batch of
 * packets per event-loop iteration, so live changes (ringbuf, received
 * packets) are handled between batches and a full table moves in seconds.
 * The same walker, without BUS messages, resends every state after a
 * ringbuf loss.
 *
 * Pacing: bulk_rate states/s (--bulk-rate, default WALKER_DEFAULT_RATE:
 * about 80% of what a receiver on a 2-core VM applies at 9000 MTU with the
 * batch import, ~1.8M/s; the sender there reads its map at ~1.6M/s, so
 * the pace rarely binds). A turn of the event loop sends for at most
 * WALKER_TURN_NS, then records, received packets and control requests are
 * served; while the walk has credit the loop does not sleep. pfsync has
 * no acknowledgements, but a receiver that lost packets of a bulk update
 * (its socket counted drops) asks for another at once when BUS END
 * arrives, or when the transfer goes silent for BULK_IDLE_TIMEOUT_NS (BUS
 * END may have been lost). A request at one of those two moments after a
 * big answer halves the pace (down to WALKER_MIN_RATE); a request at any
 * other time (a new peer, a restart, a flush) doubles it back towards the
 * configured one. Small packets are paced by WALKER_MAX_PACKET_RATE too:
 * at a 1500-byte MTU the cap is 500k states/s.
 */
#ifndef AGENT_BULK_H
#define AGENT_BULK_H

#include <linux/types.h>

#include "pfsync_common.h"
#include "pfsync_wire.h"
#include "store.h"

#define BULK_REQ_RETRY_NS      2000000000ULL
#define BULK_REQ_MAX_TRIES     12
#define BULK_IDLE_TIMEOUT_NS   10000000000ULL
#define BULK_MAX_REREQUESTS    3	     /* new requests after bulk updates that lost packets */
#define BULK_RESYNC_QUIET_NS   1000000000ULL /* drops outside a bulk: ask one after this quiet */
#define WALKER_BATCH	       256	     /* states read from the map at a time */
#define WALKER_DEFAULT_RATE    1500000	     /* states/s: 1M in 0.67 s, see above */
#define WALKER_MIN_RATE	       20000	     /* adaptive pacing never goes below */
#define WALKER_LOSS_QUICK_NS   3000000000ULL /* a request this soon after END = loss */
#define WALKER_LOSS_SLACK_NS   1000000000ULL /* ... or this close to the idle timeout */
#define WALKER_LOSSY_STATES    10000	     /* smaller answers fit any receive buffer */
#define WALKER_MAX_PACKET_RATE 100000	     /* bulk packets/s, whatever their size */
#define WALKER_TURN_NS	       1000000ULL    /* sending per loop turn, at most */
#define WALKER_BURST_NS	       5000000ULL    /* credit kept while the loop was busy */
#define WALKER_PKT_OVERHEAD    (PFSYNC_IP_HDRLEN + PFSYNC_HDRLEN + sizeof(struct pfsync_subheader))

enum bulk_req_state {
	BULK_REQ_NONE = 0,
	BULK_REQ_REQUESTED,   /* UPD_REQ(0,0) sent, waiting for BUS START */
	BULK_REQ_IN_PROGRESS, /* BUS START seen */
	BULK_REQ_DONE,	      /* BUS END seen */
	BULK_REQ_FAILED,      /* no (complete) answer */
};

struct bulk_req {
	enum bulk_req_state state;
	unsigned int tries;
	__u64 timer_ns; /* next retry, or the in-progress silence limit */
	__u64 requested_ns;
	__u64 finished_ns;
};

/* pure state machine; the return value says whether to send UPD_REQ(0,0) now */
int bulk_req_start(struct bulk_req *r, __u64 now_ns);
int bulk_req_tick(struct bulk_req *r, __u64 now_ns);
/* a request is out, or its answer is arriving */
int bulk_req_busy(const struct bulk_req *r);
void bulk_req_bus(struct bulk_req *r, __u8 status, __u64 now_ns);
void bulk_req_activity(struct bulk_req *r, __u64 now_ns); /* a full UPD from a peer */
__u64 bulk_req_deadline(const struct bulk_req *r);	  /* 0 = no timer */
const char *bulk_req_state_name(enum bulk_req_state s);

struct walker {
	int active;
	int with_bus; /* a bulk answer (BUS START/END) or a plain resend */
	int bus_started;
	struct store_cursor cur;
	struct pfsync_key *keys;
	struct pfsync_state_value *vals;
	unsigned int n, pos;
	struct pfsync_builder *builder;	   /* its own: live packets are built meanwhile */
	__u8 *pkt;			   /* output buffer (the agent's) */
	unsigned int acts[PFSYNC_ACT_MAX]; /* messages in the packet being built */
	double credit;			   /* states the pace allows now */
	__u64 credit_at_ns;
	__u64 started_ns;
	__u32 started_after_seq; /* loss repair: the last number sent before this walk began */
	__u64 states_sent;
	__u64 packets_sent;
	__u64 last_bus_end_ns;	  /* when the last bulk answer (BUS END) went out */
	__u64 last_bus_states;	  /* and how many states it carried */
	__u64 last_resend_end_ns; /* when the last full resend (no BUS) ended */
	__u64 last_resend_states; /* and how many states it carried */
	__u64 rate_cfg;		  /* the configured pace, what adapt_pace climbs back to */
	__u64 runs;		  /* walks completed */
	__u64 last_states;	  /* states in the last completed walk */
	__u64 last_duration_ns;
};

struct agent;
/* request a bulk update from the peers now */
void bulk_request(struct agent *a);
void bulk_tick(struct agent *a);
/* a BUS message from a peer */
void bulk_on_bus(struct agent *a, __u8 status);
/* begin a walk; a walk already running restarts (a bulk answer stays one) */
int walker_start(struct agent *a, int with_bus);
/*
 * A peer's loss repair asks for a full resend (walker_start(a, 0) follows):
 * asked while our last one runs or soon after it ended, its packets were
 * lost and the pace halves; otherwise it climbs back, as for bulk requests.
 */
void walker_pace_resend(struct agent *a);
/* sends up to max_states states; returns 1 while the walk is unfinished */
int walker_step(struct agent *a, unsigned int max_states);
/* one event-loop turn of the walk, paced to a->bulk_rate states/s; 1 while unfinished */
int walker_run(struct agent *a);
/* when the walk wants its next turn (now when it has credit); 0 = no walk */
__u64 walker_deadline(const struct agent *a);
void walker_free(struct walker *w);

#endif /* AGENT_BULK_H */
