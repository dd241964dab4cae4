/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pfsync v6 codec for userspace: state <-> wire conversion, pf's merge
 * rules, a packet builder and a decoder with OpenBSD's receive checks and
 * counters (pfsync-wire.md §1.2, §1.4, §2, §3.3, §3.4, §3.9).
 *
 * Split over lib/pfsync_wire.c (conversion, merge, helpers),
 * lib/pfsync_builder.c, lib/pfsync_decode.c and lib/pfsync_stats.c.
 */
#ifndef PFSYNC_WIRE_LIB_H
#define PFSYNC_WIRE_LIB_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <endian.h>
#include <linux/types.h>

#include "pfsync_common.h"
#include "../include/pfsync_wire.h"

/* OpenBSD's struct pfsyncstats (16 counters, same order), one of ours, per-action counts. */
struct pfsync_stats {
	__u64 ipackets, ipackets6, badif, badttl, hdrops, badver, badauth, badact, badlen, badval,
	    stale, badstate, opackets, opackets6, onomem, oerrors;
	/* ours: states refused because their (id, creatorid) is another state's
	 * (pf refuses them in pf_state_insert and counts them in badstate) */
	__u64 dupident;
	/* ours: our own packets come back to us (on lo), ignored */
	__u64 looped;
	__u64 iacts[PFSYNC_ACT_MAX], oacts[PFSYNC_ACT_MAX];
};

/* netstat -s -p pfsync text, then a per-action in/out table (tcpdump labels). */
void pfsync_stats_print(FILE *f, const struct pfsync_stats *st);
/* one JSON object: the counters by name and "actions": [{action,label,in,out}] */
void pfsync_stats_print_json(FILE *f, const struct pfsync_stats *st);

/* tcpdump's label for an action ("INS ST", "UPD ST COMP", ...); "UNKNOWN" if >= 16 */
const char *pfsync_action_label(unsigned int action);
/* our message size for an action, 0 for actions without a handler (1,3,8,9,11,12) or >= 16 */
size_t pfsync_action_msg_size(unsigned int action);

/*
 * State <-> wire. Export: times become ages / seconds remaining (pf's
 * adaptive scaling with states_count), keys are laid out by pf's index
 * convention for v->direction, BSD constants are used. cfg may be NULL
 * (pf defaults).
 */
void pfsync_state_export(const struct pfsync_key *k, const struct pfsync_state_value *v,
			 __u64 now_ns, const struct pfsync_config *cfg, __u32 states_count,
			 struct pfsync_state *out);
/*
 * Import: OpenBSD's INS checks (pfsync_state_check) plus creatorid != 0,
 * -EINVAL if bad. last_seen/creation are rebuilt from the relative times,
 * counters start at 0, v->flags = PFSYNC_SF_FROM_PEER (| PFSYNC_SF_NOSYNC
 * when state_flags has PFSTATE_NOSYNC), rule = 0xffffffff, k is normalised
 * and v->init_side says where the initiator ended up.
 */
/*
 * Import keeps both keys (issue 15): key[0] (wire) becomes k, key[1]
 * (stack) v->nat.stack_key when it differs, with v->nat.type saying which
 * endpoints differ (pfsync_nat_type_between); export writes them back.
 */
__u8 pfsync_nat_type_between(const struct pfsync_key *wire, __u8 wire_init,
			     const struct pfsync_key *stack, __u8 stack_init);
int pfsync_state_import(const struct pfsync_state *in, __u64 now_ns,
			const struct pfsync_config *cfg, struct pfsync_key *k,
			struct pfsync_state_value *v); /* marks v->flags FROM_PEER */
/*
 * Value checks of OpenBSD's pfsync_in_ins (action INS: timeout, peer states,
 * direction, af, key afs) or pfsync_in_upd (UPD: timeout and peer states).
 * 0 = fine, -EINVAL = the message counts as badval.
 */
int pfsync_state_check(const struct pfsync_state *s, unsigned int action);
void pfsync_upd_c_export(const struct pfsync_state_value *v, struct pfsync_upd_c *out);
/* wire peer -> local peer and back (BSD numbers are kept as they are) */
void pfsync_peer_export(const struct pfsync_peer *p, struct pfsync_state_peer *out);
void pfsync_peer_import(const struct pfsync_state_peer *in, struct pfsync_peer *p);

/*
 * pf's stale/merge rules (pfsync-wire.md §3.4): each incoming half either
 * overwrites the local one or is stale. With fewer than 2 stale halves the
 * state is refreshed (last_seen = now, timeout = in_timeout). Returns the
 * number of stale halves (0..2); the caller counts `stale` and re-announces
 * the state when it is > 0.
 */
int pfsync_merge_peers(struct pfsync_state_value *local, const struct pfsync_state_peer *in_src,
		       const struct pfsync_state_peer *in_dst, __u8 in_timeout, __u8 proto,
		       __u64 now_ns);

/*
 * Packet builder. Messages are kept per action and written at finish in
 * this order (OpenBSD's for the first six; CLR first so a flush precedes
 * new states; BUS before everything if its first message is START, after
 * everything if it is END):
 *   [BUS START] CLR(0) INS_ACK(2) UPD_C(4) DEL_C(7) INS(13) UPD(14) DEL(6)
 *   UPD_REQ(5) TDB(15) [BUS END]
 * One section per action, subheader len in words, header len set, pfcksum
 * zero, no EOF. The packet plus the 20-byte IP header never exceeds mtu.
 */
struct pfsync_builder;
/* mtu includes the 20-byte IP header; 0 = 1500. NULL if too small for one state (< 308). */
struct pfsync_builder *pfsync_builder_new(unsigned int mtu);
void pfsync_builder_free(struct pfsync_builder *b);
void pfsync_builder_reset(struct pfsync_builder *b);
/*
 * Queues a copy of msg (pfsync_action_msg_size(action) bytes). -ENOSPC if
 * it does not fit in this packet (finish, send, reset, add again); -EINVAL
 * for actions we never send (1,3,8,9,11,12, >= 16).
 */
int pfsync_builder_add(struct pfsync_builder *b, __u8 action, const void *msg);
size_t pfsync_builder_count(const struct pfsync_builder *b); /* messages queued */
size_t pfsync_builder_bytes(const struct pfsync_builder *b); /* payload size finish would write */
/*
 * Writes the packet (pfsync header onwards, no IP header) into out and
 * RESETS the builder. Returns the bytes written; 0 when nothing is queued
 * or cap is too small (then nothing is reset).
 */
size_t pfsync_builder_finish(struct pfsync_builder *b, __u8 *out, size_t cap);

/*
 * Decoder. Callbacks get pointers into the packet (unaligned: use
 * pfsync_get_be* / memcpy). Any callback may be NULL.
 */
struct pfsync_decode_ops {
	void (*clr)(void *ctx, const struct pfsync_clr *m);
	void (*ins)(void *ctx, const struct pfsync_state *m);
	void (*ins_ack)(void *ctx, const struct pfsync_ins_ack *m);
	void (*upd)(void *ctx, const struct pfsync_state *m);
	void (*upd_c)(void *ctx, const struct pfsync_upd_c *m);
	void (*upd_req)(void *ctx, const struct pfsync_upd_req *m);
	void (*del)(void *ctx, const struct pfsync_state *m); /* DEL (6): id+creatorid used */
	void (*del_c)(void *ctx, const struct pfsync_del_c *m);
	void (*bus)(void *ctx, const struct pfsync_bus *m);
	void (*tdb)(void *ctx, const struct pfsync_tdb *m);
};
/*
 * payload starts at the pfsync header. Checks in OpenBSD's order: hdrops,
 * badver, badlen (header len > bytes; fewer claimed = trimmed), then the
 * section loop (badact, badlen stop the packet; badval skips one message).
 * iacts[action] += count for each processed section.
 * Returns 0 if the whole packet was processed, -1 if it stopped on an error.
 */
int pfsync_decode(const __u8 *payload, size_t len, const struct pfsync_decode_ops *ops, void *ctx,
		  struct pfsync_stats *st);
/*
 * IPv4 input (an IPv4 header first, as a raw socket delivers it):
 * ipackets++, malformed IPv4 header / not protocol 240 -> hdrops,
 * TTL != 255 -> badttl, then pfsync_decode on the payload (trimmed to the
 * IP total length).
 */
int pfsync_input_ipv4(const __u8 *ip, size_t len, const struct pfsync_decode_ops *ops, void *ctx,
		      struct pfsync_stats *st);

/* ---- unaligned big-endian field access ----------------------------------- */
static inline __u64 pfsync_get_be64(const void *p)
{
	__u64 v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

static inline __u32 pfsync_get_be32(const void *p)
{
	__u32 v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

static inline __u16 pfsync_get_be16(const void *p)
{
	__u16 v;

	memcpy(&v, p, sizeof(v));
	return be16toh(v);
}

static inline void pfsync_put_be64(void *p, __u64 v)
{
	v = htobe64(v);
	memcpy(p, &v, sizeof(v));
}

static inline void pfsync_put_be32(void *p, __u32 v)
{
	v = htobe32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void pfsync_put_be16(void *p, __u16 v)
{
	v = htobe16(v);
	memcpy(p, &v, sizeof(v));
}

/* Message (id, creatorid) in host order; every 12-byte message and the state start this way. */
#define PFSYNC_MSG_ID(m)      pfsync_get_be64(&(m)->id)
#define PFSYNC_MSG_CREATOR(m) pfsync_get_be32(&(m)->creatorid)

/* Fill a 12-byte id message (INS_ACK, UPD_REQ, DEL_C share the layout). */
static inline void pfsync_id_msg_fill(void *msg12, __u64 id, __u32 creatorid)
{
	pfsync_put_be64(msg12, id);
	pfsync_put_be32((__u8 *)msg12 + 8, creatorid);
}

#endif /* PFSYNC_WIRE_LIB_H */
