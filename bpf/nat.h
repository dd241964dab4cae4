/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * NAT as pf does it (issue 15): nat-to and rdr-to on new states, replies
 * and later packets translated from the state's two keys.
 *
 * Where a packet is rewritten (pf: rdr-to before routing, nat-to after):
 * - XDP ingress rewrites the DESTINATION of a packet that carries a
 *   translated state's wire key, to the stack key's: rdr-to's requests,
 *   nat-to's replies. Routing then sees the inside address.
 * - tc egress rewrites the SOURCE of a packet that carries the stack key,
 *   to the wire key's: nat-to's requests, rdr-to's replies, after the
 *   route was chosen on the inside address.
 * Nothing else is rewritten: a packet with the stack key at XDP (nat-to's
 * request coming in from the inside) or the wire key at tc (a reply already
 * rewritten at XDP) passes as it is.
 *
 * Checksums are updated incrementally: at XDP by hand (RFC 1624), at tc by
 * the kernel's helpers, which also handle a checksum the stack has yet to
 * complete (CHECKSUM_PARTIAL). An XDP program cannot tell a partial
 * checksum from a full one: a frame that a local socket sent through a
 * veth with tx checksum offload on carries a partial one, which the
 * by-hand update gets wrong. Real NICs always deliver full checksums;
 * on veth, turn tx checksumming off on the peer (ethtool -K PEER tx off).
 *
 * Needs, from the including file: the maps, struct pkt (l3_off, l4_off,
 * via_stack), struct parse_ctx, struct pfx_percpu (na, nv),
 * config_get() and globals_get().
 */
#ifndef PFSYNC_BPF_NAT_H
#define PFSYNC_BPF_NAT_H

#ifndef EEXIST
#define EEXIST 17
#endif

/* ---- endpoints ----------------------------------------------------------- */

/*
 * Endpoint (address, port) side 0 or 1 of a key, written out so that no
 * index is variable (the verifier refuses variable stack offsets). The
 * NAT functions keep nothing big on their stack: they run below the
 * programs' own frames, and the two together must stay within 512 bytes.
 */
static __always_inline const __u32 *nat_addr(const struct pfsync_key *k, int side)
{
	return side ? k->addr[1] : k->addr[0];
}

static __always_inline __u16 nat_port(const struct pfsync_key *k, int side)
{
	return side ? k->port[1] : k->port[0];
}

/* side `side` of k becomes (addr, port) */
static __always_inline void nat_set_endpoint(struct pfsync_key *k, int side, const __u32 *addr,
					     __u16 port)
{
	if (side) {
		__builtin_memcpy(k->addr[1], addr, 16);
		k->port[1] = port;
	} else {
		__builtin_memcpy(k->addr[0], addr, 16);
		k->port[0] = port;
	}
}

/* to's side ts is copied to from's side fs (keys of one family) */
static __always_inline void nat_copy_endpoint(struct pfsync_key *to, int ts,
					      const struct pfsync_key *from, int fs)
{
	nat_set_endpoint(to, ts, nat_addr(from, fs), nat_port(from, fs));
}

static __always_inline int nat_keys_equal(const struct pfsync_key *a, const struct pfsync_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	__u32 diff = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*a) / 4); i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

/*
 * Plans the rewrite of the endpoint `from` (side fs of key f) into the
 * endpoint of key t at side ts, when they differ.
 */
static __always_inline void nat_plan_endpoint(struct nat_rewrite *rw, const struct pfsync_key *f,
					      int fs, const struct pfsync_key *t, int ts, __u8 op)
{
	const __u32 *faddr = nat_addr(f, fs);

	__builtin_memcpy(rw->addr, nat_addr(t, ts), 16);
	rw->port = nat_port(t, ts);
	if (faddr[0] != rw->addr[0] || faddr[1] != rw->addr[1] || faddr[2] != rw->addr[2] ||
	    faddr[3] != rw->addr[3] || nat_port(f, fs) != rw->port)
		rw->op = op;
}

/* ---- established packets -------------------------------------------------- */

/*
 * An established packet's steps (alias, its state, the plan) are inline:
 * every translated packet takes them, and as global functions their calls
 * and argument copies cost a stack-key packet 197 ns against 159 inline,
 * a wire-key one 115 against 102 (BPF_PROG_RUN). The verifier's count on
 * Debian 6.1 stayed below what it was (XDP 385k, tc 683k instructions).
 * The rest of NAT (new states, ICMP errors, the rewrite) is global: the
 * verifier checks each once, on its own, instead of once per path of
 * every caller, which took the XDP program past the verifier's limit.
 */

#define NAT_VIA_STACK 2 /* nat_via_stack: the key was a stack key */

/*
 * A packet whose key missed pfsync_states: a translated state's stack key?
 * Then *key becomes the wire key its alias names and 1 is returned, the
 * stack key kept in pcpu->key_arg for nat_via_stack; else 0. Inline,
 * not a global function: the key is then still known to be map memory
 * (the per-CPU packet), which a lookup takes as its key without a copy.
 */
static __always_inline int nat_alias(struct pfx_percpu *pcpu, struct pfsync_key *key)
{
	struct pfsync_key *w = bpf_map_lookup_elem(&pfsync_nat_keys, key);

	if (!w)
		return 0;
	__builtin_memcpy(&pcpu->key_arg, key, sizeof(*key));
	__builtin_memcpy(key, w, sizeof(*key));
	return 1;
}

/*
 * v, the state the alias led to, is the one whose stack key the packet
 * carried: NAT_VIA_STACK | the sender's side in the wire key. Else (an
 * alias outliving its state, or taken over) -1, and *key is the stack key
 * again (kept in pcpu->key_arg by nat_alias).
 */
static __always_inline int nat_via_stack(struct pfx_percpu *pcpu, struct pfsync_key *key,
					 const struct pfsync_state_value *v, int src_side)
{
	int from_init;

	if (!v || v->nat.type == PFSYNC_NAT_NONE ||
	    !nat_keys_equal(&v->nat.stack_key, &pcpu->key_arg)) {
		__builtin_memcpy(key, &pcpu->key_arg, sizeof(*key));
		return -1;
	}
	from_init = src_side == (v->nat.stack_init_side & 1);
	return NAT_VIA_STACK | (from_init ? (v->init_side & 1) : !(v->init_side & 1));
}

#define NAT_AT_XDP 1 /* nat_plan: XDP ingress, else tc egress */

/*
 * What an established packet of state v (a translated one: the callers
 * checked) becomes here: key is its wire key, src_side the sender's side in
 * it, where NAT_AT_XDP and NAT_VIA_STACK.
 */
static __always_inline void nat_plan(const struct pfsync_key *key,
				     const struct pfsync_state_value *v, int src_side, int where,
				     struct nat_rewrite *rw)
{
	int from_init, wire_init, stack_init;
	int at_xdp = where & NAT_AT_XDP, via_stack = where & NAT_VIA_STACK;

	from_init = src_side == (v->init_side & 1);
	wire_init = v->init_side & 1;
	stack_init = v->nat.stack_init_side & 1;
	if (at_xdp && !via_stack) {
		/* the destination: the responder when the initiator sends */
		if (from_init)
			nat_plan_endpoint(rw, key, !wire_init, &v->nat.stack_key, !stack_init,
					  NAT_OP_DST);
		else
			nat_plan_endpoint(rw, key, wire_init, &v->nat.stack_key, stack_init,
					  NAT_OP_DST);
	} else if (!at_xdp && via_stack) {
		if (from_init)
			nat_plan_endpoint(rw, &v->nat.stack_key, stack_init, key, wire_init,
					  NAT_OP_SRC);
		else
			nat_plan_endpoint(rw, &v->nat.stack_key, !stack_init, key, !wire_init,
					  NAT_OP_SRC);
	}
}

/*
 * An ICMP error's quoted packet (pkt scratch's inner key) is one of a
 * state's, by its key or, translated, by its stack key: 1 (related, it
 * passes), else 0. A translated state's error is planned in pfsync_percpu.rw
 * as its packets are: one quoting the wire key at XDP (sent to the public
 * side: the quoted source and the outer destination become the stack
 * key's), one quoting the stack key at tc (the quoted destination and the
 * outer source become the wire key's). So traceroute and path-MTU
 * discovery work through the NAT.
 */
__noinline int pfsync_nat_icmp_related(int where)
{
	struct pfsync_state_value *v;
	struct pfx_percpu *pcpu;
	struct pfsync_key *w;
	struct pkt *pk = pkt_scratch();
	__u32 zero = 0;
	int src_side, role_init, at_xdp = where & NAT_AT_XDP;

	pcpu = bpf_map_lookup_elem(&pfsync_percpu, &zero);
	if (!pk || !pcpu || !pk->has_inner)
		return 0;
	/* the quoted packet's source is at this side of the normalised key */
	src_side = pfsync_key_normalize(&pk->inner) & 1;
	v = bpf_map_lookup_elem(&pfsync_states, &pk->inner);
	if (v) {
		if (!at_xdp || v->nat.type == PFSYNC_NAT_NONE)
			return 1;
		role_init = src_side == (v->init_side & 1);
		nat_plan_endpoint(&pcpu->rw, &pk->inner, src_side, &v->nat.stack_key,
				  role_init ? (v->nat.stack_init_side & 1)
					    : !(v->nat.stack_init_side & 1),
				  NAT_OP_ICMP_SRC);
		return 1;
	}
	w = bpf_map_lookup_elem(&pfsync_nat_keys, &pk->inner);
	if (!w)
		return 0;
	v = bpf_map_lookup_elem(&pfsync_states, w);
	if (!v || v->nat.type == PFSYNC_NAT_NONE || !nat_keys_equal(&v->nat.stack_key, &pk->inner))
		return 0;
	if (at_xdp)
		return 1;
	/* the quoted destination: the other side of the stack key */
	role_init = (!src_side) == (v->nat.stack_init_side & 1);
	nat_plan_endpoint(&pcpu->rw, &pk->inner, !src_side, w,
			  role_init ? (v->init_side & 1) : !(v->init_side & 1), NAT_OP_ICMP_DST);
	return 1;
}

/*
 * A translated state is going: its alias goes first, if it still names
 * the state (stack: the state's own nat.stack_key, still in place).
 */
static __always_inline void nat_forget(const struct pfsync_key *wire,
				       const struct pfsync_key *stack)
{
	struct pfsync_key *target = bpf_map_lookup_elem(&pfsync_nat_keys, stack);

	if (target && nat_keys_equal(target, wire))
		bpf_map_delete_elem(&pfsync_nat_keys, stack);
}

/* ---- new states ------------------------------------------------------------ */

#define NAT_ERR_EXHAUSTED 28 /* ENOSPC: nat-to found every candidate tuple taken */

/* The active bank's rule i, or NULL. */
static __always_inline struct pfsync_rule *nat_rule_at(const struct pfsync_config *cfg, __s32 i)
{
	__u32 idx;

	if (i < 0)
		return NULL;
	idx = (cfg->rules_bank & 1) * PFSYNC_RULES_MAX + ((__u32)i & (PFSYNC_RULES_MAX - 1));
	return bpf_map_lookup_elem(&pfsync_rules, &idx);
}

/*
 * The translation a new state takes from the rule walk's result (the
 * deciding rule and the last translating match rule, pfsync_logic.h), or
 * NULL: pf's nat-to applies on the way out, rdr-to on the way in.
 */
static __always_inline const struct pfsync_rule_nat *nat_rule_of(const struct nat_rewrite *rw,
								 int dir)
{
	struct pfsync_config *cfg = config_get();
	struct pfsync_rule *r;
	__s32 src;

	if (!cfg || (rw->decider < 0 && rw->nat_match < 0))
		return NULL;
	src = pfsync_rule_nat_source(nat_rule_at(cfg, rw->decider), rw->decider, rw->nat_match);
	r = nat_rule_at(cfg, src);
	if (!r)
		return NULL;
	/* pf: nat-to applies on the way out, rdr-to on the way in */
	if (r->nat.type == PFSYNC_NAT_NAT && dir == PF_OUT)
		return &r->nat;
	if (r->nat.type == PFSYNC_NAT_RDR && dir == PF_IN)
		return &r->nat;
	return NULL;
}

/*
 * Ports (or echo ids) exist for these; other protocols translate the
 * address only. kind: IP protocol | icmp_kind << 8.
 */
static __always_inline int nat_has_ports(__u32 kind)
{
	__u8 proto = kind & 0xff;

	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || (kind >> 8) == ICMPK_ECHO_REQ;
}

/* the alias after the state, so that a packet finding the alias finds the state */
static __always_inline long nat_insert_pair(const struct pfsync_key *wire,
					    struct pfsync_state_value *nv)
{
	long err = bpf_map_update_elem(&pfsync_states, wire, nv, BPF_NOEXIST);

	if (err)
		return err;
	err = bpf_map_update_elem(&pfsync_nat_keys, &nv->nat.stack_key, wire, BPF_ANY);
	if (err)
		bpf_map_delete_elem(&pfsync_states, wire);
	return err;
}

/*
 * rdr-to: the packet's key is the wire key; the stack key has the
 * responder's endpoint replaced by the rule's address (and port).
 */
static __always_inline long nat_insert_rdr(struct pfsync_key *key, int src_side, int has_ports,
					   struct pfsync_state_value *nv,
					   const struct pfsync_rule_nat *n, struct nat_rewrite *rw)
{
	struct pfsync_key *sk = &nv->nat.stack_key;
	__u16 port = nat_port(key, !src_side);
	int swapped;

	if ((n->nflags & PFSYNC_NATF_PORT) && has_ports)
		port = bpf_htons(n->port_low);
	__builtin_memcpy(sk, key, sizeof(*sk));
	nat_set_endpoint(sk, !src_side, n->addr, port);
	swapped = pfsync_key_normalize(sk);
	nv->nat.type = PFSYNC_NAT_RDR;
	nv->nat.stack_init_side = (__u8)(src_side ^ swapped);
	rw->op = NAT_OP_DST;
	__builtin_memcpy(rw->addr, n->addr, 16);
	rw->port = port;
	return nat_insert_pair(key, nv);
}

/* One candidate of nat-to's port search (bpf_loop callback). */
static long nat_try_port(__u32 i, void *data)
{
	struct pfx_percpu *pcpu;
	struct nat_alloc *na;
	__u32 zero = 0;
	__u16 port;
	long err;

	(void)data;
	pcpu = bpf_map_lookup_elem(&pfsync_percpu, &zero);
	if (!pcpu)
		return 1;
	na = &pcpu->na;
	port = bpf_htons(pfsync_nat_port_candidate(&na->range, na->start, i));
	__builtin_memcpy(&na->cand, &na->base, sizeof(na->cand));
	na->cand.port[0] = port;
	na->init_side = (__u8)pfsync_key_normalize(&na->cand);
	pcpu->nv.init_side = na->init_side;
	err = nat_insert_pair(&na->cand, &pcpu->nv);
	na->err = (__s32)err;
	na->port = port;
	return err == -EEXIST ? 0 : 1; /* taken: the next one */
}

/*
 * nat-to: the packet's key is the stack key; the wire key has the
 * initiator's endpoint replaced by the rule's address and a port from its
 * range that makes a tuple no state holds (pfsync_logic.h).
 */
/*
 * Keeps clang from computing every address up front, which it then spills:
 * this function's frame adds to the tc program's own (512 bytes together).
 */
#define NAT_NO_HOIST() asm volatile("" ::: "memory")

static __always_inline __u32 nat_parts_and_hostid(__u32 *hostid)
{
	struct pfsync_globals *g = globals_get();
	struct pfsync_config *cfg = config_get();

	*hostid = g ? g->hostid : 0;
	return cfg && (cfg->cfg_flags & PFSYNC_CFG_DEFER) ? 2 : 1;
}

/*
 * The search's inputs into pcpu->na, the state's stack key into pcpu->nv
 * and the translated address into pcpu->rw. Everything goes through pcpu:
 * few pointers stay live across helper calls, so little goes on the stack.
 */
static __always_inline void nat_search_setup(struct pfx_percpu *pcpu, const struct pfsync_key *key,
					     int src_side, int has_ports,
					     const struct pfsync_rule_nat *n, __u32 hostid,
					     __u32 parts)
{
	struct nat_alloc *na = &pcpu->na;
	__u16 port = nat_port(key, src_side);

	__builtin_memcpy(&pcpu->nv.nat.stack_key, key, sizeof(*key));
	pcpu->nv.nat.type = PFSYNC_NAT_NAT;
	pcpu->nv.nat.stack_init_side = (__u8)src_side;
	__builtin_memcpy(pcpu->rw.addr, n->addr, 16);
	NAT_NO_HOIST();
	/* the base: initiator at side 0 (address translated), the responder at 1 */
	__builtin_memcpy(&na->base, key, sizeof(*key));
	NAT_NO_HOIST();
	nat_copy_endpoint(&na->base, 1, key, !src_side);
	NAT_NO_HOIST();
	nat_set_endpoint(&na->base, 0, n->addr, port);
	NAT_NO_HOIST();
	if (n->nflags & PFSYNC_NATF_NOADDR) {
		na->range.count = 0; /* nothing to translate to: no candidate at all */
	} else if (has_ports) {
		pfsync_nat_port_range(n, bpf_ntohs(port), hostid, parts, &na->range);
	} else {
		na->range.low = bpf_ntohs(port);
		na->range.count = 1;
	}
	na->err = -EEXIST;
}

/*
 * A new state with its translation (rule nat_rule), from this CPU's
 * pfsync_percpu.nv: 0 inserted (pk->key is its wire key, pfsync_percpu.rw
 * the packet's rewrite), 1 no translation applies here (the caller inserts
 * as usual), else the insert's error; -EEXIST from nat-to means every
 * candidate tuple was taken. rdr-to applies on the way in (XDP), nat-to on
 * the way out (tc).
 */
__noinline int pfsync_nat_insert_rdr(struct pfsync_key *key, int src_side, __u32 kind)
{
	const struct pfsync_rule_nat *n;
	struct pfx_percpu *pcpu;
	__u32 zero = 0;

	pcpu = bpf_map_lookup_elem(&pfsync_percpu, &zero);
	if (!key || !pcpu)
		return 1;
	n = nat_rule_of(&pcpu->rw, PF_IN);
	if (!n)
		return 1;
	__builtin_memcpy(&pcpu->key_arg, key, sizeof(*key));
	return (int)nat_insert_rdr(&pcpu->key_arg, src_side & 1, nat_has_ports(kind), &pcpu->nv, n,
				   &pcpu->rw);
}

/* nat-to's rule into pcpu->na.rule: 0, or 1 when none applies */
__noinline int pfsync_nat_pick_out(void)
{
	const struct pfsync_rule_nat *n;
	struct pfx_percpu *pcpu;
	__u32 zero = 0;

	pcpu = bpf_map_lookup_elem(&pfsync_percpu, &zero);
	if (!pcpu)
		return 1;
	n = nat_rule_of(&pcpu->rw, PF_OUT);
	if (!n)
		return 1;
	__builtin_memcpy(&pcpu->na.rule, n, sizeof(*n));
	return 0;
}

/*
 * nat-to in two global functions, called one after the other: each frame
 * adds to the tc program's own on its own (512 bytes at most together).
 * pfsync_nat_prepare: 1 when no nat-to applies, else 0 (the search is set up).
 */
__noinline int pfsync_nat_prepare(const struct pfsync_key *key, int src_side, __u32 kind)
{
	struct pfx_percpu *pcpu;
	__u32 zero = 0, hostid, parts, count;

	if (!key || pfsync_nat_pick_out())
		return 1;
	parts = nat_parts_and_hostid(&hostid);
	pcpu = bpf_map_lookup_elem(&pfsync_percpu, &zero);
	if (!pcpu)
		return 1;
	nat_search_setup(pcpu, key, src_side & 1, nat_has_ports(kind), &pcpu->na.rule, hostid,
			 parts);
	count = pcpu->na.range.count;
	pcpu->na.start = count > 1 ? bpf_get_prandom_u32() % count : 0;
	return 0;
}

/* The search itself: 0 (key becomes the wire key), -NAT_ERR_EXHAUSTED, or an insert's error. */
__noinline int pfsync_nat_search(struct pfsync_key *key)
{
	struct pfx_percpu *pcpu;
	__u32 zero = 0, tries;

	pcpu = bpf_map_lookup_elem(&pfsync_percpu, &zero);
	if (!key || !pcpu)
		return -NAT_ERR_EXHAUSTED;
	tries = pcpu->na.range.count < PFSYNC_NAT_TRIES ? pcpu->na.range.count : PFSYNC_NAT_TRIES;
	bpf_loop(tries, nat_try_port, NULL, 0);
	pcpu = bpf_map_lookup_elem(&pfsync_percpu, &zero);
	if (!pcpu)
		return -NAT_ERR_EXHAUSTED;
	if (pcpu->na.err)
		return pcpu->na.err == -EEXIST ? -NAT_ERR_EXHAUSTED : pcpu->na.err;
	__builtin_memcpy(key, &pcpu->na.cand, sizeof(*key));
	pcpu->rw.op = NAT_OP_SRC;
	pcpu->rw.port = pcpu->na.port;
	return 0;
}

/* ---- rewriting ------------------------------------------------------------- */

/* RFC 1624: a 16-bit word old -> new changes a one's complement sum by ~old + new */
static __always_inline __u32 nat_csum_delta16(__u16 old, __u16 new)
{
	return (__u32)(__u16)~old + new;
}

static __always_inline __u32 nat_csum_delta32(__u32 old, __u32 new)
{
	return nat_csum_delta16((__u16)old, (__u16) new) +
	       nat_csum_delta16((__u16)(old >> 16), (__u16)(new >> 16));
}

static __always_inline __u16 nat_csum_apply(__u16 sum, __u32 delta)
{
	__u32 s = (__u32)(__u16)~sum + delta;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

struct nat_fields {
	__u32 addr_off; /* the address rewritten */
	__u32 port_off; /* port or echo id, 0 = none */
	__u32 csum_off; /* L4 checksum */
	__u8 alen;	/* 4 or 16 */
	__u8 pseudo;	/* the L4 checksum covers the addresses */
	__u8 udp;	/* checksum 0 means none (IPv4) */
	__u8 ip4_csum;	/* IPv4 header checksum to update */
};

static __always_inline int nat_fields_of(const struct nat_rewrite *rw, struct nat_fields *f)
{
	__u32 l3 = rw->l3_off, l4 = rw->l4_off;
	int v6 = rw->af == PFSYNC_AF_INET6, dst = rw->op == NAT_OP_DST;

	f->alen = v6 ? 16 : 4;
	f->addr_off = l3 + (v6 ? 8 : 12) + (dst ? f->alen : 0);
	f->ip4_csum = !v6;
	f->udp = 0;
	f->port_off = 0;
	f->csum_off = 0;
	f->pseudo = 1;
	if (rw->later_frag)
		return 0; /* no L4 header: the address only */
	switch (rw->proto) {
	case IPPROTO_TCP:
		f->csum_off = l4 + 16;
		f->port_off = l4 + (dst ? 2 : 0);
		break;
	case IPPROTO_UDP:
		f->csum_off = l4 + 6;
		f->port_off = l4 + (dst ? 2 : 0);
		f->udp = !v6;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		f->csum_off = l4 + 2;
		f->pseudo = v6; /* ICMPv4 has no pseudo header */
		if (rw->echo)
			f->port_off = l4 + 4;
		break;
	default:
		f->pseudo = 0;
	}
	return 0;
}

#define NAT_OFF_MAX 0x3fff /* offsets stay provably small (L3_OFF_MAX and a bit) */

/* *p16 becomes v, its change added to *delta */
static __always_inline void nat_put16(__u16 *p16, __u16 v, __u32 *delta)
{
	*delta += nat_csum_delta16(*p16, v);
	*p16 = v;
}

/*
 * The 16-bit word at off of [data, end) for a rewrite: NULL when the frame
 * is shorter (a quote may be cut short: what is not there is not fixed).
 */
static __always_inline __u16 *nat_word(void *data, void *end, __u32 off)
{
	__u16 *p16 = data + (off & NAT_OFF_MAX);

	return (void *)(p16 + 1) > end ? NULL : p16;
}

/*
 * The quoted packet's address, port and checksums, and the outer address
 * when it was the quoted one (an error from the translated host itself),
 * by hand. The outer ICMP checksum covers the whole quote, so it takes
 * every word changed in it (and, for ICMPv6, the outer address through
 * the pseudo header). 0, or -1 when the frame lacks the quoted headers.
 */
static __always_inline int nat_icmp_rewrite(void *data, void *end, const struct nat_rewrite *rw)
{
	int v6 = rw->af == PFSYNC_AF_INET6, quoted_src = rw->op == NAT_OP_ICMP_SRC;
	__u32 alen = v6 ? 16 : 4, addr0 = v6 ? 8 : 12, i;
	__u32 in_addr = rw->in_l3_off + addr0 + (quoted_src ? 0 : alen);
	__u32 out_addr = rw->l3_off + addr0 + (quoted_src ? alen : 0);
	__u32 d_inner = 0, d_outer = 0, d_icmp = 0, d_l4 = 0, port_off = 0, csum_off = 0;
	int outer_too = 1, pseudo = 1;
	__u16 *p16, *q16;

	for (i = 0; i < 8; i++) {
		if (i * 2 >= alen)
			break;
		p16 = nat_word(data, end, in_addr + i * 2);
		q16 = nat_word(data, end, out_addr + i * 2);
		if (!p16 || !q16)
			return -1;
		if (*p16 != *q16)
			outer_too = 0;
	}
	for (i = 0; i < 8; i++) {
		__u16 want = ((const __u16 *)rw->addr)[i & 7];

		if (i * 2 >= alen)
			break;
		p16 = nat_word(data, end, in_addr + i * 2);
		q16 = nat_word(data, end, out_addr + i * 2);
		if (!p16 || !q16)
			return -1;
		nat_put16(p16, want, &d_inner);
		if (outer_too)
			nat_put16(q16, want, &d_outer);
	}
	d_icmp = d_inner;
	if (!v6) {
		p16 = nat_word(data, end, rw->in_l3_off + 10);
		if (!p16)
			return -1;
		nat_put16(p16, nat_csum_apply(*p16, d_inner), &d_icmp);
	}
	switch (rw->in_proto) {
	case IPPROTO_TCP:
		port_off = rw->in_l4_off + (quoted_src ? 0 : 2);
		csum_off = rw->in_l4_off + 16;
		break;
	case IPPROTO_UDP:
		port_off = rw->in_l4_off + (quoted_src ? 0 : 2);
		csum_off = rw->in_l4_off + 6;
		break;
	default: /* ICMP: an echo request's id is its source "port" */
		port_off = rw->in_echo && quoted_src ? rw->in_l4_off + 4 : 0;
		csum_off = rw->in_l4_off + 2;
		pseudo = v6;
	}
	p16 = port_off ? nat_word(data, end, port_off) : NULL;
	if (p16)
		nat_put16(p16, rw->port, &d_l4);
	d_icmp += d_l4;
	if (pseudo)
		d_l4 += d_inner;
	p16 = nat_word(data, end, csum_off);
	if (p16 && d_l4 && !(rw->in_proto == IPPROTO_UDP && !v6 && *p16 == 0)) {
		__u16 sum = nat_csum_apply(*p16, d_l4);

		if (rw->in_proto == IPPROTO_UDP && sum == 0)
			sum = 0xffff;
		nat_put16(p16, sum, &d_icmp);
	}
	if (v6)
		d_icmp += d_outer; /* ICMPv6's pseudo header */
	p16 = nat_word(data, end, rw->l4_off + 2);
	if (!p16)
		return -1;
	*p16 = nat_csum_apply(*p16, d_icmp);
	if (!v6 && d_outer) {
		p16 = nat_word(data, end, rw->l3_off + 10);
		if (!p16)
			return -1;
		*p16 = nat_csum_apply(*p16, d_outer);
	}
	return 0;
}

/* XDP: by hand, on the frame. 0, or -1 when the frame is shorter than its headers said. */
__noinline int pfsync_nat_apply_xdp(struct xdp_md *ctx, const struct nat_rewrite *rw)
{
	void *data, *end;
	struct nat_fields f;
	__u32 delta = 0, i, off;
	__u16 *p16;

	if (!ctx || !rw)
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (rw->op == NAT_OP_ICMP_SRC || rw->op == NAT_OP_ICMP_DST)
		return nat_icmp_rewrite(data, end, rw);
	nat_fields_of(rw, &f);
	off = f.addr_off & NAT_OFF_MAX;
	for (i = 0; i < 4; i++) {
		__u32 *a = data + off + i * 4;

		if (i * 4 >= f.alen)
			break;
		if ((void *)(a + 1) > end)
			return -1;
		delta += nat_csum_delta32(*a, rw->addr[i]);
		*a = rw->addr[i];
	}
	if (f.ip4_csum) {
		p16 = data + ((rw->l3_off + 10) & NAT_OFF_MAX);
		if ((void *)(p16 + 1) > end)
			return -1;
		*p16 = nat_csum_apply(*p16, delta);
	}
	if (!f.pseudo)
		delta = 0;
	if (f.port_off) {
		p16 = data + (f.port_off & NAT_OFF_MAX);
		if ((void *)(p16 + 1) > end)
			return -1;
		delta += nat_csum_delta16(*p16, rw->port);
		*p16 = rw->port;
	}
	if (!f.csum_off || !delta)
		return 0;
	p16 = data + (f.csum_off & NAT_OFF_MAX);
	if ((void *)(p16 + 1) > end)
		return -1;
	if (f.udp && *p16 == 0)
		return 0; /* UDP over IPv4 without a checksum stays without */
	*p16 = nat_csum_apply(*p16, delta);
	if (f.udp && *p16 == 0)
		*p16 = 0xffff; /* 0 would mean "none" */
	return 0;
}

/* tc: the kernel's helpers keep a partial checksum right. 0 or -1. */
__noinline int pfsync_nat_apply_tc(struct __sk_buff *skb, const struct nat_rewrite *rw)
{
	__u64 l4flags = 0;
	struct nat_fields f;
	__u32 old, i;
	__u16 oldp;

	if (!skb || !rw)
		return -1;
	/*
	 * An ICMP error by hand, like XDP: its checksum covers no pseudo header
	 * the stack could have left partial (ICMPv4), or is always complete
	 * (the stack computes ICMPv6's itself); the headers are in the linear
	 * part (pfsync_tc pulls them).
	 */
	if (rw->op == NAT_OP_ICMP_SRC || rw->op == NAT_OP_ICMP_DST)
		return nat_icmp_rewrite((void *)(long)skb->data, (void *)(long)skb->data_end, rw);
	nat_fields_of(rw, &f);
	if (f.pseudo)
		l4flags = BPF_F_PSEUDO_HDR;
	if (f.udp)
		l4flags |= BPF_F_MARK_MANGLED_0;
	for (i = 0; i < 4; i++) {
		if (i * 4 >= f.alen)
			break;
		if (bpf_skb_load_bytes(skb, f.addr_off + i * 4, &old, 4))
			return -1;
		if (f.ip4_csum && bpf_l3_csum_replace(skb, rw->l3_off + 10, old, rw->addr[i], 4))
			return -1;
		if (f.csum_off && f.pseudo &&
		    bpf_l4_csum_replace(skb, f.csum_off, old, rw->addr[i], l4flags | 4))
			return -1;
		if (bpf_skb_store_bytes(skb, f.addr_off + i * 4, &rw->addr[i], 4, 0))
			return -1;
	}
	if (!f.port_off)
		return 0;
	if (bpf_skb_load_bytes(skb, f.port_off, &oldp, 2))
		return -1;
	if (oldp == rw->port)
		return 0;
	if (f.csum_off && bpf_l4_csum_replace(skb, f.csum_off, oldp, rw->port,
					      (l4flags & BPF_F_MARK_MANGLED_0) | 2))
		return -1;
	return bpf_skb_store_bytes(skb, f.port_off, &rw->port, 2, 0) ? -1 : 0;
}

/* where the planned rewrite finds its fields in this packet */
static __always_inline void nat_rewrite_offsets(struct nat_rewrite *rw, const struct pkt *pk)
{
	rw->l3_off = pk->l3_off;
	rw->l4_off = pk->l4_off;
	rw->af = pk->key.af;
	rw->proto = pk->key.proto;
	rw->later_frag = pk->later_frag;
	rw->echo = pk->icmp_kind == ICMPK_ECHO_REQ || pk->icmp_kind == ICMPK_ECHO_REPLY;
	rw->in_l3_off = pk->inner_l3_off;
	rw->in_l4_off = pk->inner_l4_off;
	rw->in_proto = pk->inner.proto;
	/* a quoted ICMP packet is related only when an echo request (parse.h) */
	rw->in_echo = pk->inner.proto == IPPROTO_ICMP || pk->inner.proto == IPPROTO_ICMPV6;
}

/*
 * The planned rewrite, if any: the outcome stays, or becomes bad_packet.
 * prog is a constant (enum pfsync_prog_idx): each program keeps only its
 * own code, the verifier refuses the other's helpers even when unreachable.
 */
static __always_inline int nat_apply(const struct parse_ctx *pc, const struct pkt *pk,
				     struct nat_rewrite *rw, struct pfsync_counters *c, int out,
				     int prog)
{
	int err;

	if (rw->op == NAT_OP_NONE)
		return out;
	nat_rewrite_offsets(rw, pk);
	err = prog == PFSYNC_PROG_XDP ? pfsync_nat_apply_xdp(pc->xdp, rw)
				      : pfsync_nat_apply_tc(pc->skb, rw);
	if (!err)
		return out;
	c->bad_packet++;
	return PFSYNC_OUT_BAD;
}

#endif /* PFSYNC_BPF_NAT_H */
