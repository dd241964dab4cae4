/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Repair of sync-link loss (an extension: pfsync has no sequence numbers,
 * so a lost INS stays lost until the next bulk update).
 *
 * Every packet we send carries a trailer after the length the pfsync
 * header announces (before the auth trailer, which covers it), so an
 * OpenBSD receiver, which trims to that length, still reads the packet:
 *
 *   off  size  field
 *     0     4  magic "PFR1"
 *     4     1  kind: 1 DATA, 2 BEACON, 3 NAK, 4 DONE
 *     5     1  flags: REPAIR_F_ALL (NAK: resend everything; DONE: doing so)
 *     6     2  ranges that follow (big-endian)
 *     8     4  sender's hostid (big-endian)
 *    12     4  sender's session: random at its start (big-endian)
 *    16     4  DATA: this packet's sequence number; other kinds: the
 *              highest sequence number the sender has used (big-endian)
 *    20     8  NAK only: the target's hostid and session
 *    ..   8*n  ranges, first and last sequence number (big-endian)
 *
 * DATA packets are the pfsync packets themselves (20 bytes more each).
 * BEACON, NAK and DONE ride on a bare 20-byte pfsync header (no sections:
 * an OpenBSD receiver counts it and finds nothing to do).
 *
 * Sender: numbers its packets and keeps copies of the last ones
 * (REPAIR_HISTORY_BYTES). When idle it sends a BEACON naming its highest
 * number, so a lost last packet is noticed too. A NAK naming some of its
 * numbers is answered with the current value of every state those packets
 * carried (a full UPD, or DEL_C for a state gone since), in new numbered
 * packets, then a DONE naming the ranges; numbers no longer in the history
 * are answered with a resend of every state (the walker).
 *
 * Receiver: per sender (hostid, session) the next number expected and the
 * ranges missing; each range is named in a NAK at once and again every
 * REPAIR_RETRY_NS until a DONE covers it. A lost repair packet is a gap
 * of its own, repaired the same way, so repair converges under any loss
 * rate below 100 %. Too many ranges: one NAK with REPAIR_F_ALL instead.
 *
 * This file holds the pure parts (trailer codec, history, gap tracking);
 * the agent's use of them is in repair_io.c.
 */
#ifndef AGENT_REPAIR_H
#define AGENT_REPAIR_H

#include <stddef.h>
#include <linux/types.h>

#define REPAIR_HDR_LEN	      20
#define REPAIR_NAK_EXTRA      8 /* target hostid and session */
#define REPAIR_MAX_RANGES     64
#define REPAIR_TRAILER_MAX    (REPAIR_HDR_LEN + REPAIR_NAK_EXTRA + 8 * REPAIR_MAX_RANGES)
#define REPAIR_HISTORY_BYTES  (8u << 20) /* copies of sent packets: ~5600 at MTU 1500 */
#define REPAIR_HISTORY_SLOTS  16384	 /* packets remembered, at most (power of 2) */
#define REPAIR_MAX_SENDERS    16
#define REPAIR_MAX_MISSING    2048	     /* ranges per sender; more = ask for everything */
#define REPAIR_RETRY_NS	      200000000ULL   /* a range NAKed again after this */
#define REPAIR_NAK_GAP_NS     10000000ULL    /* NAKs to one sender at most this often */
#define REPAIR_BEACON_NS      250000000ULL   /* idle sender: a beacon after this ... */
#define REPAIR_BUSY_NS	      5000000000ULL  /* ... within this of its last data */
#define REPAIR_IDLE_BEACON_NS 1000000000ULL  /* otherwise one a second */
#define REPAIR_SENDER_IDLE_NS 60000000000ULL /* a silent sender's slot may be reused */

enum repair_kind {
	REPAIR_DATA = 1,
	REPAIR_BEACON = 2,
	REPAIR_NAK = 3,
	REPAIR_DONE = 4,
};

#define REPAIR_F_ALL 0x01
/* never a packet's number: next to the last one, "next expected" would wrap to 0 */
#define REPAIR_SEQ_NONE 0xffffffffu

struct repair_range {
	__u32 first, last;
};

/* a parsed trailer (ranges point into the packet: big-endian pairs) */
struct repair_trailer {
	__u8 kind, flags;
	__u16 nranges;
	__u32 hostid, session, seq;
	__u32 target_hostid, target_session; /* NAK */
	const __u8 *ranges;
};

/*
 * Finds and checks the trailer of payload[0..len) (pfsync header first):
 * right after the header's length. 0 and *t filled; -1 none; -2 malformed.
 */
int repair_parse(const __u8 *payload, size_t len, struct repair_trailer *t);
/* writes t (ranges from r, t->nranges of them) into out; returns its length */
size_t repair_encode(const struct repair_trailer *t, const struct repair_range *r, __u8 *out);
/* the i-th range of a parsed trailer */
struct repair_range repair_range_at(const struct repair_trailer *t, unsigned int i);

/* ---- sender ------------------------------------------------------------- */
struct repair_slot {
	__u32 seq; /* 0 = empty */
	__u32 len;
	__u64 vpos; /* where its copy starts in the arena's virtual stream */
};

struct repair_tx {
	__u32 session;
	__u32 seq; /* the last number used, 0 = none yet */
	__u8 *arena;
	__u64 head; /* virtual end of the copies written */
	struct repair_slot *slots;
	__u64 last_send_ns, last_data_ns;
	__u64 answer_window_ns; /* repair_io.c: the second NAK answers are counted in */
	unsigned int answered_in_window;
	/* counters */
	__u64 data_packets, beacons, naks_heard, naks_answered, seqs_resent, seqs_unavailable,
	    full_resends, states_resent, dels_resent;
};

int repair_tx_init(struct repair_tx *tx, __u32 session);
void repair_tx_free(struct repair_tx *tx);
/* numbers a packet and keeps its copy; returns the number */
__u32 repair_tx_record(struct repair_tx *tx, const __u8 *payload, size_t len);
/* the copy of packet seq: 0 with payload and len set, or -1 when no longer kept */
int repair_tx_get(const struct repair_tx *tx, __u32 seq, const __u8 **payload, size_t *len);
/* when the next beacon is due (last_send_ns plus the idle interval) */
__u64 repair_tx_beacon_due(const struct repair_tx *tx);

/* ---- receiver ----------------------------------------------------------- */
struct repair_missing {
	struct repair_range r;
	__u64 nak_ns; /* last named in a NAK, 0 = not yet */
};

struct repair_peer {
	int used;
	__u32 hostid, session;
	__u32 next; /* the next number expected */
	struct repair_missing missing[REPAIR_MAX_MISSING];
	unsigned int nmissing;
	int want_all;	   /* everything asked for (REPAIR_F_ALL) until a DONE says so */
	__u64 all_nak_ns;  /* last such NAK */
	__u64 last_nak_ns; /* last NAK of any kind to this sender */
	__u64 last_heard_ns;
	__u64 gaps, lost_seqs, repaired_seqs, naks_sent, sessions;
};

struct repair_rx {
	struct repair_peer peers[REPAIR_MAX_SENDERS];
	__u64 overflows; /* gap lists that became "everything" */
};

/*
 * A packet from (hostid, session) said seq: its own number (data) or the
 * highest it used (any other kind). Opens a range for what was skipped,
 * closes the number when it was missing. Returns the sender's slot.
 */
struct repair_peer *repair_rx_seen(struct repair_rx *rx, __u32 hostid, __u32 session, __u32 seq,
				   int data, __u64 now_ns);
/* a DONE from the sender: these ranges (or, with REPAIR_F_ALL, everything) are answered */
void repair_rx_done(struct repair_peer *p, const struct repair_trailer *t);
/*
 * The ranges to name in a NAK now (at most max, marked as named); *all =
 * ask for everything. 0 when nothing is due.
 */
unsigned int repair_rx_nak_due(struct repair_peer *p, __u64 now_ns, struct repair_range *out,
			       unsigned int max, int *all);
/* when p next wants a NAK sent (0 = nothing missing) */
__u64 repair_rx_deadline(const struct repair_peer *p);
/* numbers missing now, over every sender */
__u64 repair_rx_missing(const struct repair_rx *rx);

#endif /* AGENT_REPAIR_H */
