/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Pending outgoing messages: collapse, send triggers and packing.
 *
 * The queue holds names, not states: INS, UPD_C and UPD entries hold the
 * state's key and identity; the current value is read from the map when the
 * packet is built (after the datapath's QUEUED mark is cleared, so that a
 * change made after that point is recorded again). At most one of INS/UPD_C/
 * UPD is pending per key ("collapse": later changes ride on the entry
 * already queued); a delete of a state whose INS is still pending just drops
 * the INS, as pf does.
 *
 * When a packet goes out (sendq_decide):
 *  - ALL: something urgent is pending (INS, DEL_C, INS_ACK, full UPD reply,
 *    an update that reached maxupd) and no packet went out in the last
 *    250 us, or the oldest pending message is 1 s old. The agent asks after
 *    draining everything that woke it up, so the changes of one wake-up
 *    share packets (micro-batching) and an idle agent sends a lone insert
 *    at once; under a stream of inserts the 250 us hold-off fills packets
 *    instead of sending one per wake-up (at most 250 us added latency;
 *    at most 4000 partly filled packets a second, which also keeps a
 *    jumbo-frame sync link's packets from waiting long to fill).
 *  - FULL: only UPD_C are pending but more than a packet's worth: full
 *    packets go, the remainder keeps collapsing.
 *  - IDLE: wait until sendq_deadline().
 */
#ifndef AGENT_SENDQ_H
#define AGENT_SENDQ_H

#include <stddef.h>
#include <linux/types.h>

#include "htab.h"
#include "pfsync_common.h"
#include "pfsync_wire.h"

#define SENDQ_MAX_DELAY_NS 1000000000ULL /* pfsync's "at most one second" */
#define SENDQ_HOLDOFF_NS   250000ULL	 /* urgent packets at most every 250 us, unless full */

enum sendq_kind {
	SQ_INS = 0,
	SQ_UPD_C,
	SQ_UPD,
	SQ_DEL_C,
	SQ_INS_ACK,
	SQ_KINDS,
};

enum sendq_mode {
	SENDQ_IDLE = 0,
	SENDQ_FULL, /* send only complete packets */
	SENDQ_ALL,  /* send everything pending */
};

struct sendq_msg {
	struct pfsync_key key; /* INS, UPD_C, UPD */
	__u64 id;
	__u32 creatorid;
	__u8 kind; /* enum sendq_kind */
	__u8 live; /* 0 once sent, collapsed away or forgotten */
	__u8 pad[2];
};

/* What packing needs from the outside world (maps, socket); faked in tests. */
struct sendq_io {
	void *ctx;
	/* current value of the state at key; 0 if found */
	int (*lookup)(void *ctx, const struct pfsync_key *key, struct pfsync_state_value *val);
	/* clears PFSYNC_SF_QUEUED of keys about to be packed */
	void (*unqueue)(void *ctx, const struct pfsync_key *keys, unsigned int n);
	/*
	 * unqueue and lookup of n keys at once (rc[i] 0 or -ENOENT); 0, or
	 * -errno when not done (then unqueue and lookup are used). May be NULL.
	 */
	int (*fetch)(void *ctx, const struct pfsync_key *keys, unsigned int n,
		     struct pfsync_state_value *vals, int *rc);
	/* payload = pfsync header onwards; acts[a] = messages of action a; 0 if sent */
	int (*send)(void *ctx, const __u8 *payload, size_t len, const unsigned int *acts);
	const struct pfsync_config *cfg; /* for exported expiry times, may be NULL */
	__u32 states_count;		 /* adaptive timeout scaling */
};

struct sendq {
	struct sendq_msg *ring; /* messages by sequence number, seq & (cap - 1) */
	size_t cap;
	__u64 head, tail;  /* oldest and next sequence numbers */
	struct htab bykey; /* key -> seq of its pending INS/UPD_C/UPD */
	size_t count[SQ_KINDS];
	size_t live;
	__u64 first_ns;	    /* when the oldest pending message was queued */
	__u64 last_send_ns; /* when the last packet went out */
	int urgent;
	unsigned int mtu; /* includes the IPv4 header */
	struct pfsync_builder *builder;
	__u8 *pkt;
	__u64 *plan; /* seqs chosen for the packet being built */
	size_t plan_cap;
	__u64 collapsed;   /* changes that rode on a pending entry */
	__u64 ins_dropped; /* inserts cancelled by their delete */
	__u64 vanished;	   /* pending states gone from the map at pack time */
};

int sendq_init(struct sendq *q, unsigned int mtu);
void sendq_free(struct sendq *q);

/* local new state: INS, sent at the next decision */
int sendq_insert(struct sendq *q, const struct pfsync_key *key, __u64 id, __u32 creatorid,
		 __u64 now_ns);
/* packet-driven change: UPD_C, collapsed; send_now for maxupd */
int sendq_update(struct sendq *q, const struct pfsync_key *key, __u64 id, __u32 creatorid,
		 __u64 now_ns, int send_now);
/* answer to UPD_REQ: full UPD (replaces a pending UPD_C), sent at the next decision */
int sendq_full_update(struct sendq *q, const struct pfsync_key *key, __u64 id, __u32 creatorid,
		      __u64 now_ns);
/* state removed locally: 1 if its pending INS was dropped (nothing goes out), 0 if DEL_C queued */
int sendq_delete(struct sendq *q, const struct pfsync_key *key, __u64 id, __u32 creatorid,
		 __u64 now_ns);
int sendq_ins_ack(struct sendq *q, __u64 id, __u32 creatorid, __u64 now_ns);

/* drop what is pending for a key (a peer deleted the state) */
void sendq_forget_key(struct sendq *q, const struct pfsync_key *key);
/* drop what is pending about states of creatorid (peer CLR) */
void sendq_forget_creator(struct sendq *q, __u32 creatorid);
void sendq_forget_all(struct sendq *q);

enum sendq_mode sendq_decide(const struct sendq *q, __u64 now_ns);
/* when an IDLE queue must be looked at again; 0 if nothing is pending */
__u64 sendq_deadline(const struct sendq *q);
/* payload bytes the pending messages need in one packet (may exceed the MTU) */
size_t sendq_pending_bytes(const struct sendq *q);
size_t sendq_pending(const struct sendq *q);
/* builds and sends packets; returns the number of packets handed to io->send */
int sendq_flush(struct sendq *q, __u64 now_ns, enum sendq_mode mode, const struct sendq_io *io);

#endif /* AGENT_SENDQ_H */
