/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pfsync v6: conversion between our map entries and the wire pfsync_state,
 * pf's merge rules, action tables (pfsync-wire.md §2, §3.3, §3.4).
 */
#include <errno.h>
#include <netinet/in.h>

#include "pfsync_wire.h"
#include "pfsync_logic.h"

#define NSEC_PER_SEC 1000000000ULL

struct action_info {
	const char *label; /* tcpdump's */
	size_t msg_size;   /* 0 = no handler: skipped on input, never sent */
};

static const struct action_info action_table[PFSYNC_ACT_MAX] = {
    [PFSYNC_ACT_CLR] = {"CLR ST", sizeof(struct pfsync_clr)},
    [PFSYNC_ACT_OINS] = {"INS ST OLD", 0},
    [PFSYNC_ACT_INS_ACK] = {"INS ST ACK", sizeof(struct pfsync_ins_ack)},
    [PFSYNC_ACT_OUPD] = {"UPD ST OLD", 0},
    [PFSYNC_ACT_UPD_C] = {"UPD ST COMP", sizeof(struct pfsync_upd_c)},
    [PFSYNC_ACT_UPD_REQ] = {"UPD ST REQ", sizeof(struct pfsync_upd_req)},
    [PFSYNC_ACT_DEL] = {"DEL ST", sizeof(struct pfsync_state)},
    [PFSYNC_ACT_DEL_C] = {"DEL ST COMP", sizeof(struct pfsync_del_c)},
    [PFSYNC_ACT_INS_F] = {"INS FR", 0},
    [PFSYNC_ACT_DEL_F] = {"DEL FR", 0},
    [PFSYNC_ACT_BUS] = {"BULK UPD STAT", sizeof(struct pfsync_bus)},
    [PFSYNC_ACT_OTDB] = {"UPD TDB OLD", 0},
    [PFSYNC_ACT_EOF] = {"EOF", 0},
    [PFSYNC_ACT_INS] = {"INS ST", sizeof(struct pfsync_state)},
    [PFSYNC_ACT_UPD] = {"UPD ST", sizeof(struct pfsync_state)},
    [PFSYNC_ACT_TDB] = {"UPD TDB", sizeof(struct pfsync_tdb)},
};

const char *pfsync_action_label(unsigned int action)
{
	return action < PFSYNC_ACT_MAX ? action_table[action].label : "UNKNOWN";
}

size_t pfsync_action_msg_size(unsigned int action)
{
	return action < PFSYNC_ACT_MAX ? action_table[action].msg_size : 0;
}

/* ---- peers ---------------------------------------------------------------- */
void pfsync_peer_export(const struct pfsync_peer *p, struct pfsync_state_peer *out)
{
	memset(out, 0, sizeof(*out)); /* no scrub memory is kept */
	pfsync_put_be32(&out->seqlo, p->seqlo);
	pfsync_put_be32(&out->seqhi, p->seqhi);
	pfsync_put_be32(&out->seqdiff, p->seqdiff);
	pfsync_put_be16(&out->max_win, p->max_win);
	pfsync_put_be16(&out->mss, p->mss);
	out->state = p->state;
	out->wscale = p->wscale;
}

void pfsync_peer_import(const struct pfsync_state_peer *in, struct pfsync_peer *p)
{
	p->seqlo = pfsync_get_be32(&in->seqlo);
	p->seqhi = pfsync_get_be32(&in->seqhi);
	p->seqdiff = pfsync_get_be32(&in->seqdiff);
	p->max_win = pfsync_get_be16(&in->max_win);
	p->mss = pfsync_get_be16(&in->mss);
	p->state = in->state;
	p->wscale = in->wscale;
}

/* ---- address families ----------------------------------------------------- */
static __u8 af_to_wire(__u8 af)
{
	return af == PFSYNC_AF_INET6 ? PFSYNC_WIRE_AF_INET6 : PFSYNC_WIRE_AF_INET;
}

/* 0 when the wire value is not one we know */
static __u8 af_from_wire(__u8 wire_af)
{
	if (wire_af == PFSYNC_WIRE_AF_INET)
		return PFSYNC_AF_INET;
	if (wire_af == PFSYNC_WIRE_AF_INET6)
		return PFSYNC_AF_INET6;
	return 0;
}

static size_t af_addr_len(__u8 af)
{
	return af == PFSYNC_AF_INET6 ? 16 : 4;
}

/* ---- export --------------------------------------------------------------- */
static __u32 ns_to_secs_ceil(__u64 ns)
{
	__u64 s = (ns + NSEC_PER_SEC - 1) / NSEC_PER_SEC;

	return s > 0xffffffffULL ? 0xffffffffU : (__u32)s;
}

/* pf's index convention (§2.5): IN puts the initiator at [0], OUT at [1] */
static int initiator_wire_index(__u8 direction)
{
	return direction == PF_OUT ? 1 : 0;
}

/* k's side init_side is the initiator; direction places it in the wire slots */
static void key_export(const struct pfsync_key *k, __u8 init_side, __u8 direction,
		       struct pfsync_state_key *out)
{
	int init_w = initiator_wire_index(direction);
	int init_k = init_side & 1;
	size_t alen = af_addr_len(k->af);

	memset(out, 0, sizeof(*out));
	for (int w = 0; w < 2; w++) {
		/* wire slot w holds the initiator if w == init_w */
		int side = (w == init_w) ? init_k : !init_k;

		memcpy(out->addr[w], k->addr[side], alen);
		memcpy(&out->port[w], &k->port[side], sizeof(out->port[w]));
	}
	pfsync_put_be16(&out->rdomain, k->rdomain);
	out->af = af_to_wire(k->af);
}

/* a 64-bit counter as two big-endian words, high first (= one BE u64) */
static void put_counter(void *words, __u64 value)
{
	pfsync_put_be64(words, value);
}

static __u16 state_flags_export(const struct pfsync_state_value *v)
{
	__u16 f = v->state_flags & (PFSTATE_ALLOWOPTS | PFSTATE_SLOPPY | PFSTATE_PFLOW |
				    PFSTATE_NOSYNC | PFSTATE_ACK);

	if (v->flags & PFSYNC_SF_NOSYNC)
		f |= PFSTATE_NOSYNC;
	return f;
}

void pfsync_state_export(const struct pfsync_key *k, const struct pfsync_state_value *v,
			 __u64 now_ns, const struct pfsync_config *cfg, __u32 states_count,
			 struct pfsync_state *out)
{
	__u64 expires = pfsync_state_expires_ns(v, cfg, states_count);

	memset(out, 0, sizeof(*out));
	pfsync_put_be64(&out->id, v->id);
	memcpy(out->ifname, "all", 3); /* states float: not bound to an interface */
	key_export(k, v->init_side, v->direction, &out->key[0]);
	if (v->nat.type != PFSYNC_NAT_NONE)
		key_export(&v->nat.stack_key, v->nat.stack_init_side, v->direction, &out->key[1]);
	else
		out->key[1] = out->key[0]; /* no translation */
	pfsync_peer_export(&v->peer[0], &out->src);
	pfsync_peer_export(&v->peer[1], &out->dst);
	pfsync_put_be32(&out->rule, v->rule);
	pfsync_put_be32(&out->anchor, 0xffffffffU);
	pfsync_put_be32(&out->nat_rule, 0xffffffffU);
	pfsync_put_be32(&out->creation,
			now_ns > v->creation ? (__u32)((now_ns - v->creation) / NSEC_PER_SEC) : 0);
	pfsync_put_be32(&out->expire, expires > now_ns ? ns_to_secs_ceil(expires - now_ns) : 0);
	put_counter(&out->packets[0], v->packets[0]);
	put_counter(&out->packets[1], v->packets[1]);
	put_counter(&out->bytes[0], v->bytes[0]);
	put_counter(&out->bytes[1], v->bytes[1]);
	pfsync_put_be32(&out->creatorid, v->creatorid);
	pfsync_put_be32(&out->rtableid[0], 0xffffffffU); /* -1: no routing table */
	pfsync_put_be32(&out->rtableid[1], 0xffffffffU);
	out->af = af_to_wire(k->af);
	out->proto = k->proto;
	out->direction = v->direction;
	out->timeout = v->timeout;
	pfsync_put_be16(&out->state_flags, state_flags_export(v));
}

void pfsync_upd_c_export(const struct pfsync_state_value *v, struct pfsync_upd_c *out)
{
	memset(out, 0, sizeof(*out));
	pfsync_put_be64(&out->id, v->id);
	pfsync_peer_export(&v->peer[0], &out->src);
	pfsync_peer_export(&v->peer[1], &out->dst);
	pfsync_put_be32(&out->creatorid, v->creatorid);
	out->timeout = v->timeout; /* expire and state_flags stay 0, as OpenBSD sends them */
}

/* ---- validation ----------------------------------------------------------- */
static int wire_af_ok(__u8 af)
{
	return af == PFSYNC_WIRE_AF_INET || af == PFSYNC_WIRE_AF_INET6;
}

static int key_afs_ok(const struct pfsync_state *s)
{
	__u8 wire_af = s->key[0].af, stack_af = s->key[1].af;

	if ((wire_af && !wire_af_ok(wire_af)) || (stack_af && !wire_af_ok(stack_af)))
		return 0;
	/* the wire key is the one we keep: it has to be in the state's family */
	return wire_af == 0 || wire_af == s->af;
}

int pfsync_state_check(const struct pfsync_state *s, unsigned int action)
{
	if (s->timeout >= PFTM_MAX || s->src.state > PF_TCPS_PROXY_DST ||
	    s->dst.state > PF_TCPS_PROXY_DST)
		return -EINVAL;
	if (action != PFSYNC_ACT_INS)
		return 0;
	if (s->direction > PF_OUT || !wire_af_ok(s->af) || !key_afs_ok(s))
		return -EINVAL;
	return 0;
}

/* ---- import --------------------------------------------------------------- */
/* wire key slot -> local key (side 0 the initiator), normalised; returns init_side */
static __u8 key_import(const struct pfsync_state *in, const struct pfsync_state_key *wk,
		       struct pfsync_key *k)
{
	int init_w = initiator_wire_index(in->direction);
	size_t alen;

	memset(k, 0, sizeof(*k));
	/* a key af of 0 means the state's (§2.5) */
	k->af = af_from_wire(wk->af ? wk->af : in->af);
	k->proto = in->proto;
	k->rdomain = 0; /* Linux VRFs are not mapped (pfsync_common.h) */
	alen = af_addr_len(k->af);
	/* side 0 = initiator (packet source) before normalisation */
	memcpy(k->addr[0], wk->addr[init_w], alen);
	memcpy(&k->port[0], &wk->port[init_w], sizeof(k->port[0]));
	memcpy(k->addr[1], wk->addr[!init_w], alen);
	memcpy(&k->port[1], &wk->port[!init_w], sizeof(k->port[1]));
	return (__u8)pfsync_key_normalize(k);
}

static int endpoint_differs(const struct pfsync_key *a, int side_a, const struct pfsync_key *b,
			    int side_b)
{
	return memcmp(a->addr[side_a], b->addr[side_b], sizeof(a->addr[0])) ||
	       a->port[side_a] != b->port[side_b];
}

/*
 * Which endpoints two keys of one connection translate: PFSYNC_NAT_NAT when
 * the initiator's differs, PFSYNC_NAT_RDR the responder's, both or none.
 */
__u8 pfsync_nat_type_between(const struct pfsync_key *wire, __u8 wire_init,
			     const struct pfsync_key *stack, __u8 stack_init)
{
	__u8 type = PFSYNC_NAT_NONE;

	if (wire->af != stack->af || wire->proto != stack->proto)
		return PFSYNC_NAT_BINAT; /* af-to and the like: everything differs */
	if (endpoint_differs(wire, wire_init & 1, stack, stack_init & 1))
		type |= PFSYNC_NAT_NAT;
	if (endpoint_differs(wire, !(wire_init & 1), stack, !(stack_init & 1)))
		type |= PFSYNC_NAT_RDR;
	return type;
}

/* key[1] (stack) into v->nat when it differs from the wire key k */
static void stack_key_import(const struct pfsync_state *in, const struct pfsync_key *k,
			     struct pfsync_state_value *v)
{
	struct pfsync_state_nat *nat = &v->nat;

	nat->stack_init_side = key_import(in, &in->key[1], &nat->stack_key);
	nat->type = pfsync_nat_type_between(k, v->init_side, &nat->stack_key, nat->stack_init_side);
	if (nat->type == PFSYNC_NAT_NONE)
		memset(nat, 0, sizeof(*nat)); /* one key: an untranslated state */
}

static __u64 ns_before(__u64 now_ns, __u64 secs)
{
	__u64 delta = secs * NSEC_PER_SEC;

	return now_ns > delta ? now_ns - delta : 0;
}

int pfsync_state_import(const struct pfsync_state *in, __u64 now_ns,
			const struct pfsync_config *cfg, struct pfsync_key *k,
			struct pfsync_state_value *v)
{
	__u32 remaining, local_timeout;

	if (pfsync_state_check(in, PFSYNC_ACT_INS) || pfsync_get_be32(&in->creatorid) == 0)
		return -EINVAL;
	memset(v, 0, sizeof(*v));
	v->init_side = key_import(in, &in->key[0], k);
	stack_key_import(in, k, v);
	v->id = pfsync_get_be64(&in->id);
	v->creatorid = pfsync_get_be32(&in->creatorid);
	v->rule = 0xffffffffU; /* rule numbers are the sender's: pf uses its default rule */
	v->creation = ns_before(now_ns, pfsync_get_be32(&in->creation));
	v->timeout = in->timeout;
	remaining = pfsync_get_be32(&in->expire);
	local_timeout = pfsync_timeout_get(cfg, in->timeout);
	/* pf_state_import: last activity = now - (local timeout - remaining); 0 = fresh */
	v->last_seen = now_ns;
	if (remaining && remaining < local_timeout)
		v->last_seen = ns_before(now_ns, local_timeout - remaining);
	pfsync_peer_import(&in->src, &v->peer[0]);
	pfsync_peer_import(&in->dst, &v->peer[1]);
	v->state_flags =
	    pfsync_get_be16(&in->state_flags) &
	    (PFSTATE_ALLOWOPTS | PFSTATE_SLOPPY | PFSTATE_PFLOW | PFSTATE_NOSYNC | PFSTATE_ACK);
	v->flags = PFSYNC_SF_FROM_PEER;
	/* a no-sync state stays local here too (the mirror of state_flags_export) */
	if (v->state_flags & PFSTATE_NOSYNC)
		v->flags |= PFSYNC_SF_NOSYNC;
	v->direction = in->direction == PF_OUT ? PF_OUT : PF_IN;
	return 0;
}

/* ---- merge (§3.4) --------------------------------------------------------- */
int pfsync_merge_peers(struct pfsync_state_value *local, const struct pfsync_state_peer *in_src,
		       const struct pfsync_state_peer *in_dst, __u8 in_timeout, __u8 proto,
		       __u64 now_ns)
{
	struct pfsync_peer src = {0}, dst = {0};

	pfsync_peer_import(in_src, &src);
	pfsync_peer_import(in_dst, &dst);
	return pfsync_merge_halves(local, &src, &dst, in_timeout, proto, now_ns);
}
