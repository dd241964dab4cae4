// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * pfsync-xdp datapath: XDP ingress and tc egress programs sharing a pinned
 * pf-style connection-state table, a small ruleset, a change-record ringbuf
 * and two control programs (sweep, unqueue) run with BPF_PROG_RUN.
 *
 * Policies worth knowing (see also the README / issue note):
 * - Non-first fragments carry no ports: they are never looked up in the
 *   state table and never create a state. They are evaluated by the rules
 *   with has_ports = 0 (port rules never match) and pass when the verdict is
 *   pass (no ruleset = pass). Counted in `fragments`.
 * - IP protocols 240 (pfsync) and 112 (CARP/VRRP) always pass, statelessly.
 * - No ruleset loaded (nrules == 0): everything passes and gets a state,
 *   TCP included whatever its flags (the rule). With a ruleset, a
 *   `pass ... keep state` rule creates a TCP state only on a SYN (pf's
 *   default `flags S/SA`); any other TCP packet without a state that such a
 *   rule would pass is counted in no_state and dropped. No matching rule at
 *   all = pf's default pass, without state.
 * - State values are updated without a lock (the value layout is shared
 *   with userspace and has no bpf_spin_lock); flags and the packet/byte
 *   counters use atomics, sequence tracking and the maxupd count
 *   (`updates`) may race between CPUs as in pf without state locks. Last
 *   writer wins, which only widens a window briefly.
 * - A packet is counted (and tracked) once per state: a forwarded packet
 *   at XDP ingress, not again at tc egress (see pfsync_xdp_ifs); a packet
 *   the host sends, or one that came in where XDP did not run, at egress.
 * - last_seen/creation come from a per-CPU clock read once per jiffy.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "pfsync_common.h"
#include "pfsync_logic.h"
#include "fastpath.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#ifndef EEXIST
#define EEXIST 17
#endif

#define ETH_P_8021Q_	0x8100
#define ETH_P_8021AD_	0x88A8
#define IPPROTO_PFSYNC_ 240
#define IPPROTO_CARP_	112
#define IPV6_EXT_MAX	6      /* extension headers walked before giving up */
#define L3_OFF_MAX	0x3000 /* keeps packet offsets provably bounded */
#define DEFAULT_MAXUPD	128
#define RULE_NONE	0xffffffffU /* state created without a rule (default pass) */

/* ---- maps (pinned by name so XDP, tc, agent and pfsyncctl share them) --- */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PFSYNC_STATES_MAX);
	__type(key, struct pfsync_key);
	__type(value, struct pfsync_state_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PFSYNC_RULES_MAX *PFSYNC_RULE_BANKS);
	__type(key, __u32);
	__type(value, struct pfsync_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PFSYNC_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, PFSYNC_DEFER_MAX);
	__type(value, struct pfsync_deferred);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_defer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfsync_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfsync_globals);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_globals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfsync_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_counters SEC(".maps");

#include "nat_maps.h"

/*
 * The datapath's per-CPU scratch, all behind one lookup:
 * - CLOCK_BOOTTIME read once per jiffy: the helper costs about as much as
 *   the rest of an established packet's path, and last_seen only needs to
 *   be right to well under a second (timeouts are whole seconds).
 * - A block of PFX_ID_BLOCK state ids reserved from pfsync_globals.next_id
 *   with one atomic add, so that creating a state does not bounce that
 *   cache line between CPUs (nor wait for a locked add) every time. Ids
 *   stay unique (each block is handed out once); across CPUs they are not
 *   in creation order, which nothing relies on (pf's wire and the agent
 *   only need (id, creatorid) to be unique). The tc program, loaded on its
 *   own by iproute2, has its own copy of this map and its own blocks.
 * - The value of a state being created (too big for the stack as well).
 */
#define PFX_ID_BLOCK 64

struct pfx_percpu {
	__u64 jiffies;
	__u64 boot_ns;
	__u64 id_next; /* next id of this CPU's block */
	__u64 id_end;  /* first id past it */
	struct pfsync_state_value nv;
	struct nat_alloc na;   /* nat-to's port search (nat.h) */
	struct nat_rewrite rw; /* what NAT makes of this packet's headers (nat.h) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfx_percpu);
} pfsync_percpu SEC(".maps");

/*
 * Interfaces the XDP program ran on lately, slot ifindex % XDP_IF_SLOTS.
 * A forwarded packet meets the state twice, at XDP ingress and at tc
 * egress; pf counts a packet once per state, so tc egress leaves a state
 * alone when the packet came in on an interface whose XDP program already
 * tracked and counted it. Shared (not per-CPU) so that RPS or a test
 * moving between CPUs does not matter; written only when a slot changes
 * (at most once per jiffy). Pinned: iproute2 loads XDP and tc separately.
 */
#define XDP_IF_SLOTS	 256
#define XDP_IF_FRESH_JIF 1000 /* 1 to 10 s: longer than any packet's way through */

struct pfx_xdp_if {
	__u32 ifindex;
	__u32 jiffies; /* low 32 bits of jiffies64 when XDP last ran on it */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDP_IF_SLOTS);
	__type(key, __u32);
	__type(value, struct pfx_xdp_if);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_xdp_ifs SEC(".maps");

/* ---- parsed packet ------------------------------------------------------ */
enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_IP,	 /* ARP and friends: pass (outcome not_ip) */
	PARSE_BAD,	 /* truncated or inconsistent: bad_packet, drop */
	PARSE_STATELESS, /* pfsync / CARP: pass, never a state */
};

enum icmp_kind {
	ICMPK_NONE = 0,
	ICMPK_ECHO_REQ,
	ICMPK_ECHO_REPLY,
	ICMPK_ERROR,
	ICMPK_OTHER,
};

struct pkt {
	struct pfsync_key key; /* side 0 = packet source, not normalised yet */
	struct pfsync_tcp_seg seg;
	__u32 ip_len; /* IP total length, for byte counters */
	__u64 new_id; /* PFSYNC_OUT_DEFERRED: identity of the state just created */
	__u32 new_creatorid;
	__u32 new_flags;
	__u8 later_frag;
	__u8 icmp_kind;
	__u8 has_inner;
	__u8 pad;
	__u16 l3_off; /* IP header */
	__u16 l4_off; /* TCP/UDP/ICMP header */
	/* last: pkt_init leaves it alone, parse_icmp_inner clears it */
	struct pfsync_key inner; /* ICMP error: the embedded packet's key */
};

/* Clears all but `inner`, which only ICMP errors use (fewer stores). */
static __always_inline void pkt_init(struct pkt *pk)
{
	__builtin_memset(pk, 0, __builtin_offsetof(struct pkt, inner));
}

struct parse_ctx {
	void *data;
	void *data_end;
	__u32 frame_len;    /* whole frame, including any non-linear part (tc) */
	struct xdp_md *xdp; /* exactly one of xdp / skb is set */
	struct __sk_buff *skb;
};

static __always_inline int frame_has(const struct parse_ctx *pc, __u32 off, __u32 len)
{
	return pc->data + off + len <= pc->data_end;
}

/*
 * TCP options that pf keeps: MSS and window scale, only on a SYN. The
 * options are copied to the stack and walked by a global function, which
 * the verifier checks once instead of once per path into the parser, and
 * which costs one call (a bpf_loop callback cost one per option).
 */
#define TCP_OPT_MAX 40
struct tcp_opt_walk {
	__u8 buf[TCP_OPT_MAX];
	__u32 len;
	__u16 mss;
	__u8 wscale;
	__u8 has_wscale;
};

/*
 * Walks byte by byte, skipping each option's body: indexing by the loop
 * counter rather than by a data-dependent position keeps the verifier's
 * work to one pass per byte on every kernel.
 */
__noinline int pfsync_tcp_opt_walk(struct tcp_opt_walk *w)
{
	__u32 i, len, skip = 0;

	if (!w)
		return 0;
	len = w->len;
	for (i = 0; i < TCP_OPT_MAX; i++) {
		__u8 kind, olen;

		if (i >= len)
			break;
		if (skip) {
			skip--;
			continue;
		}
		kind = w->buf[i];
		if (kind == 0)
			break;
		if (kind == 1)
			continue;
		if (i + 1 >= TCP_OPT_MAX)
			break;
		olen = w->buf[i + 1];
		if (olen < 2)
			break;
		if (kind == 2 && olen == 4 && i + 3 < TCP_OPT_MAX)
			w->mss = ((__u16)w->buf[i + 2] << 8) | w->buf[i + 3];
		if (kind == 3 && olen == 3 && i + 2 < TCP_OPT_MAX) {
			w->wscale = w->buf[i + 2];
			w->has_wscale = 1;
		}
		skip = olen - 1;
	}
	return 0;
}

/*
 * The options are in the linear part (parse_tcp checked the whole header):
 * copied word by word with direct loads, which cost a fraction of a
 * bpf_xdp_load_bytes / bpf_skb_load_bytes call.
 */
static __always_inline void parse_tcp_options(const struct parse_ctx *pc, const __u8 *opt,
					      __u32 opt_len, struct pfsync_tcp_seg *seg)
{
	struct tcp_opt_walk w = {};
	__u32 *buf = (__u32 *)w.buf;
	__u32 i;

	if (opt_len == 0 || opt_len > TCP_OPT_MAX)
		return;
#pragma unroll
	for (i = 0; i < TCP_OPT_MAX / 4; i++) {
		if (i * 4 >= opt_len)
			break;
		if ((void *)(opt + i * 4 + 4) > pc->data_end)
			return;
		buf[i] = *(const __u32 *)(opt + i * 4);
	}
	w.len = opt_len;
	pfsync_tcp_opt_walk(&w);
	seg->mss = w.mss;
	seg->wscale = w.wscale;
	seg->has_wscale = w.has_wscale;
}

static __always_inline int parse_tcp(const struct parse_ctx *pc, __u32 off, __u32 l4_len,
				     struct pkt *pk)
{
	struct tcphdr_min {
		__u16 source, dest;
		__u32 seq, ack_seq;
		__u8 doff_res, flags;
		__u16 window, check, urg_ptr;
	} * th;
	__u32 doff;

	if (l4_len < sizeof(*th) || !frame_has(pc, off, sizeof(*th)))
		return PARSE_BAD;
	th = pc->data + off;
	doff = (th->doff_res >> 4) * 4;
	if (doff < sizeof(*th) || doff > l4_len || !frame_has(pc, off, doff))
		return PARSE_BAD;
	pk->key.port[0] = th->source;
	pk->key.port[1] = th->dest;
	pk->seg.seq = bpf_ntohl(th->seq);
	pk->seg.ack = bpf_ntohl(th->ack_seq);
	pk->seg.win = bpf_ntohs(th->window);
	pk->seg.flags = th->flags & 0x3f;
	pk->seg.payload_len = l4_len - doff;
	if ((pk->seg.flags & PFSYNC_TH_SYN) && doff > sizeof(*th))
		parse_tcp_options(pc, (const __u8 *)(th + 1), doff - sizeof(*th), &pk->seg);
	return PARSE_OK;
}

static __always_inline int icmp_is_error(__u8 proto, __u8 type)
{
	if (proto == IPPROTO_ICMP)
		return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
	return type >= 1 && type <= 4;
}

/* Ports of the packet embedded in an ICMP error (TCP/UDP ports, echo id). */
static __always_inline void inner_ports(const struct parse_ctx *pc, __u32 off, struct pkt *pk)
{
	__u8 *p;

	if (!frame_has(pc, off, 8))
		return;
	p = pc->data + off;
	if (pk->inner.proto == IPPROTO_TCP || pk->inner.proto == IPPROTO_UDP) {
		pk->inner.port[0] = *(__u16 *)p;
		pk->inner.port[1] = *(__u16 *)(p + 2);
		pk->has_inner = 1;
	} else if ((pk->inner.proto == IPPROTO_ICMP && p[0] == 8) ||
		   (pk->inner.proto == IPPROTO_ICMPV6 && p[0] == 128)) {
		pk->inner.port[0] = *(__u16 *)(p + 4);
		pk->inner.port[1] = bpf_htons(p[0]);
		pk->has_inner = 1;
	} else if (pk->inner.proto != IPPROTO_ICMP && pk->inner.proto != IPPROTO_ICMPV6) {
		pk->has_inner = 1;
	}
}

/* The packet quoted by an ICMP error was sent by the state's own peers. */
static __always_inline void parse_icmp_inner(const struct parse_ctx *pc, __u32 off, struct pkt *pk)
{
	__builtin_memset(&pk->inner, 0, sizeof(pk->inner));
	pk->inner.af = pk->key.af;
	if (pk->key.af == PFSYNC_AF_INET) {
		struct iphdr *ip;
		__u32 ihl;

		if (!frame_has(pc, off, sizeof(*ip)))
			return;
		ip = pc->data + off;
		ihl = ip->ihl * 4;
		if (ihl < sizeof(*ip) || (ip->frag_off & bpf_htons(0x1fff)))
			return;
		pk->inner.addr[0][0] = ip->saddr;
		pk->inner.addr[1][0] = ip->daddr;
		pk->inner.proto = ip->protocol;
		inner_ports(pc, off + ihl, pk);
	} else {
		struct ipv6hdr *ip6;

		if (!frame_has(pc, off, sizeof(*ip6)))
			return;
		ip6 = pc->data + off;
		__builtin_memcpy(pk->inner.addr[0], &ip6->saddr, 16);
		__builtin_memcpy(pk->inner.addr[1], &ip6->daddr, 16);
		pk->inner.proto = ip6->nexthdr;
		inner_ports(pc, off + sizeof(*ip6), pk);
	}
}

static __always_inline int parse_icmp(const struct parse_ctx *pc, __u32 off, __u32 l4_len,
				      struct pkt *pk)
{
	__u8 echo_req = pk->key.proto == IPPROTO_ICMP ? 8 : 128;
	__u8 echo_reply = pk->key.proto == IPPROTO_ICMP ? 0 : 129;
	__u8 *p;

	if (l4_len < 8 || !frame_has(pc, off, 8))
		return PARSE_BAD;
	p = pc->data + off;
	if (p[0] == echo_req) {
		pk->icmp_kind = ICMPK_ECHO_REQ;
		pk->key.port[0] = *(__u16 *)(p + 4);
		pk->key.port[1] = bpf_htons(echo_req);
	} else if (p[0] == echo_reply) {
		/* the reply's source is the responder: its slot holds the type */
		pk->icmp_kind = ICMPK_ECHO_REPLY;
		pk->key.port[0] = bpf_htons(echo_req);
		pk->key.port[1] = *(__u16 *)(p + 4);
	} else if (icmp_is_error(pk->key.proto, p[0])) {
		pk->icmp_kind = ICMPK_ERROR;
		parse_icmp_inner(pc, off + 8, pk);
	} else {
		pk->icmp_kind = ICMPK_OTHER;
	}
	return PARSE_OK;
}

static __always_inline int parse_l4(const struct parse_ctx *pc, __u32 off, __u32 l4_len,
				    struct pkt *pk)
{
	if (pk->later_frag)
		return PARSE_OK; /* no L4 header in this fragment */
	switch (pk->key.proto) {
	case IPPROTO_TCP:
		return parse_tcp(pc, off, l4_len, pk);
	case IPPROTO_UDP: {
		__u16 *ports;

		if (l4_len < 8 || !frame_has(pc, off, 8))
			return PARSE_BAD;
		ports = pc->data + off;
		pk->key.port[0] = ports[0];
		pk->key.port[1] = ports[1];
		return PARSE_OK;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return parse_icmp(pc, off, l4_len, pk);
	case IPPROTO_PFSYNC_:
	case IPPROTO_CARP_:
		return PARSE_STATELESS;
	default:
		return PARSE_OK;
	}
}

static __always_inline int parse_ipv4(const struct parse_ctx *pc, __u32 off, struct pkt *pk)
{
	struct iphdr *ip;
	__u32 ihl, tot;
	__u16 frag;

	if (!frame_has(pc, off, sizeof(*ip)))
		return PARSE_BAD;
	ip = pc->data + off;
	ihl = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (ip->version != 4 || ihl < sizeof(*ip) || !frame_has(pc, off, ihl))
		return PARSE_BAD;
	if (tot < ihl || tot > pc->frame_len - off)
		return PARSE_BAD;
	pk->key.af = PFSYNC_AF_INET;
	pk->key.proto = ip->protocol;
	pk->l3_off = (__u16)off;
	pk->l4_off = (__u16)(off + ihl);
	pk->key.addr[0][0] = ip->saddr;
	pk->key.addr[1][0] = ip->daddr;
	pk->ip_len = tot;
	frag = bpf_ntohs(ip->frag_off);
	pk->later_frag = (frag & 0x1fff) != 0;
	return parse_l4(pc, off + ihl, tot - ihl, pk);
}

static __always_inline int ipv6_is_ext(__u8 nh)
{
	return nh == 0 || nh == 43 || nh == 60 || nh == 44;
}

static __always_inline int parse_ipv6(const struct parse_ctx *pc, __u32 off, struct pkt *pk)
{
	struct ipv6hdr *ip6;
	__u32 plen, end, l4;
	__u8 nh;
	int n;

	if (!frame_has(pc, off, sizeof(*ip6)))
		return PARSE_BAD;
	ip6 = pc->data + off;
	if (ip6->version != 6)
		return PARSE_BAD;
	plen = bpf_ntohs(ip6->payload_len);
	if (plen > pc->frame_len - off - sizeof(*ip6))
		return PARSE_BAD;
	pk->key.af = PFSYNC_AF_INET6;
	__builtin_memcpy(pk->key.addr[0], &ip6->saddr, 16);
	__builtin_memcpy(pk->key.addr[1], &ip6->daddr, 16);
	pk->ip_len = plen + sizeof(*ip6);
	end = off + sizeof(*ip6) + plen;
	nh = ip6->nexthdr;
	l4 = off + sizeof(*ip6);
	for (n = 0; n < IPV6_EXT_MAX; n++) {
		__u8 *h;

		if (!ipv6_is_ext(nh))
			break;
		if (l4 > L3_OFF_MAX || l4 + 8 > end || !frame_has(pc, l4, 8))
			return PARSE_BAD;
		h = pc->data + l4;
		if (nh == 44) {
			if ((bpf_ntohs(*(__u16 *)(h + 2)) & 0xfff8) != 0)
				pk->later_frag = 1;
			nh = h[0];
			l4 += 8;
		} else {
			nh = h[0];
			l4 += ((__u32)h[1] + 1) * 8;
		}
	}
	if (ipv6_is_ext(nh) || l4 > end)
		return PARSE_BAD; /* chain too long or running past the payload */
	pk->key.proto = nh;
	pk->l3_off = (__u16)off;
	pk->l4_off = (__u16)l4;
	return parse_l4(pc, l4, end - l4, pk);
}

static __always_inline int parse_frame(const struct parse_ctx *pc, struct pkt *pk)
{
	struct ethhdr *eth;
	__u32 off = sizeof(*eth);
	__u16 proto;

	if (!frame_has(pc, 0, sizeof(*eth)))
		return PARSE_BAD;
	eth = pc->data;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q_) || proto == bpf_htons(ETH_P_8021AD_)) {
		__u16 *tag;

		if (!frame_has(pc, off, 4))
			return PARSE_BAD;
		tag = pc->data + off;
		proto = tag[1];
		off += 4;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(pc, off, pk);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(pc, off, pk);
	return PARSE_NOT_IP;
}

/* ---- change records ----------------------------------------------------- */
static __always_inline struct pfsync_globals *globals_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pfsync_globals, &zero);
}

static __always_inline struct pfsync_config *config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pfsync_config, &zero);
}

/* Records lost earlier are reported in-band as soon as space returns. */
static __always_inline void report_lost(struct pfsync_globals *g)
{
	struct pfsync_event *rec;

	if (!g || !g->lost_pending)
		return;
	rec = bpf_ringbuf_reserve(&pfsync_events, sizeof(*rec), 0);
	if (!rec)
		return;
	__builtin_memset(rec, 0, sizeof(*rec));
	rec->type = PFSYNC_EV_LOST;
	rec->lost = (__u32)__sync_lock_test_and_set(&g->lost_pending, 0);
	rec->id = bpf_ktime_get_boot_ns(); /* every loss counted here came before */
	bpf_ringbuf_submit(rec, 0);
}

static __always_inline void emit_event(struct pfsync_counters *c, __u8 type, __u8 evflags,
				       const struct pfsync_key *k, __u64 id, __u32 creatorid,
				       __u32 flags)
{
	struct pfsync_globals *g = globals_get();
	struct pfsync_event *rec;

	report_lost(g);
	rec = bpf_ringbuf_reserve(&pfsync_events, sizeof(*rec), 0);
	if (!rec) {
		if (c)
			c->ringbuf_lost++;
		if (g)
			__sync_fetch_and_add(&g->lost_pending, 1);
		return;
	}
	rec->type = type;
	rec->evflags = evflags;
	rec->pad = 0;
	rec->lost = 0;
	rec->id = id;
	rec->creatorid = creatorid;
	rec->state_flags_local = flags;
	__builtin_memcpy(&rec->key, k, sizeof(*k));
	rec->pad2 = 0;
	bpf_ringbuf_submit(rec, 0);
}

/* ---- rules -------------------------------------------------------------- */
struct rule_walk {
	struct pfsync_rule_pkt p;
	__u32 base;
	__s32 match;
	__s32 nat_match; /* last match rule with a translation */
};

static long rule_walk_step(__u32 i, void *data)
{
	struct rule_walk *w = data;
	struct pfsync_rule *r;
	__u32 idx = w->base + i;

	r = bpf_map_lookup_elem(&pfsync_rules, &idx);
	if (!r)
		return 1;
	return pfsync_rule_step_nat(r, i, &w->p, &w->match, &w->nat_match);
}

struct verdict {
	__u32 rule;   /* rule number or RULE_NONE */
	__u32 rflags; /* the deciding rule's flags */
	__u8 block;
	__u8 keep_state;
};

/* pf_test_rule over the active bank; nrules == 0 means pass all with state. */
static __always_inline void evaluate_rules(const struct pfsync_config *cfg, const struct pkt *pk,
					   int src_side, __u8 dir, __u32 ifindex,
					   struct verdict *vd, struct nat_rewrite *pcpu_rw)
{
	struct rule_walk w = {};
	struct pfsync_rule *r;
	__u32 nrules = cfg ? cfg->nrules : 0;
	__u32 idx;

	vd->rule = RULE_NONE;
	vd->rflags = 0;
	vd->block = 0;
	vd->keep_state = 1;
	if (pcpu_rw) {
		pcpu_rw->decider = -1;
		pcpu_rw->nat_match = -1;
	}
	if (!nrules)
		return;
	if (nrules > PFSYNC_RULES_MAX)
		nrules = PFSYNC_RULES_MAX;
	w.base = (cfg->rules_bank & 1) * PFSYNC_RULES_MAX;
	w.match = -1;
	w.nat_match = -1;
	/*
	 * The key may be normalised already: src_side says where the source
	 * is. Constant indexes only: clang turns a variable one into pointer
	 * arithmetic the verifier refuses on the stack.
	 */
	if (src_side) {
		__builtin_memcpy(w.p.saddr, pk->key.addr[1], 16);
		__builtin_memcpy(w.p.daddr, pk->key.addr[0], 16);
		w.p.sport = pk->key.port[1];
		w.p.dport = pk->key.port[0];
	} else {
		__builtin_memcpy(w.p.saddr, pk->key.addr[0], 16);
		__builtin_memcpy(w.p.daddr, pk->key.addr[1], 16);
		w.p.sport = pk->key.port[0];
		w.p.dport = pk->key.port[1];
	}
	w.p.ifindex = ifindex;
	w.p.proto = pk->key.proto;
	w.p.af = pk->key.af;
	w.p.dir = dir;
	w.p.has_ports = !pk->later_frag;
	bpf_loop(nrules, rule_walk_step, &w, 0);
	vd->keep_state = 0; /* pf's default rule keeps no state */
	r = NULL;
	if (w.match >= 0) {
		idx = w.base + ((__u32)w.match & (PFSYNC_RULES_MAX - 1));
		r = bpf_map_lookup_elem(&pfsync_rules, &idx);
		if (!r)
			return;
		vd->rule = (__u32)w.match;
		vd->rflags = r->rflags;
		vd->block = r->action == PFSYNC_RULE_BLOCK;
		vd->keep_state = !vd->block && (r->rflags & PFSYNC_RF_KEEP_STATE);
	}
	/*
	 * Handed to nat.h through the per-CPU scratch, without a branch here:
	 * a branch on it doubled the verifier's walk of state creation.
	 */
	if (pcpu_rw) {
		pcpu_rw->decider = w.match;
		pcpu_rw->nat_match = w.nat_match;
	}
}

/* ---- state creation ----------------------------------------------------- */
static __always_inline void ensure_identity(struct pfsync_globals *g)
{
	if (!g->next_id) {
		__u64 first = ((bpf_ktime_get_tai_ns() / 1000000000ULL) << 32) + 1;

		__sync_val_compare_and_swap(&g->next_id, 0, first);
	}
	if (!g->hostid) {
		__u32 hostid = bpf_get_prandom_u32();

		if (!hostid)
			hostid = 1;
		__sync_val_compare_and_swap(&g->hostid, 0, hostid);
	}
}

struct pfx_env {
	struct pfsync_counters *c;
	struct pfx_percpu *pcpu;
	__u64 now;
	__u32 ifindex;
	__u8 dir;
	__u8 defer;	    /* config asks to hold first packets (PFSYNC_CFG_DEFER) */
	__u8 seen_by_xdp;   /* tc egress: XDP ingress already tracked and counted it */
	struct xdp_md *xdp; /* XDP ingress (fast path), NULL at tc egress */
};

/* CLOCK_BOOTTIME as of this jiffy (see pfsync_percpu). */
static __always_inline __u64 pfx_now(struct pfx_percpu *clk)
{
	__u64 jif;

	jif = bpf_jiffies64();
	if (clk->jiffies != jif || !clk->boot_ns) {
		clk->boot_ns = bpf_ktime_get_boot_ns();
		clk->jiffies = jif;
	}
	return clk->boot_ns;
}

/* XDP: note that this interface's packets are tracked at ingress. */
static __always_inline void xdp_if_mark(__u32 ifindex)
{
	__u32 slot = ifindex % XDP_IF_SLOTS;
	__u32 jif = (__u32)bpf_jiffies64();
	struct pfx_xdp_if *e = bpf_map_lookup_elem(&pfsync_xdp_ifs, &slot);

	if (e && (e->ifindex != ifindex || e->jiffies != jif)) {
		e->ifindex = ifindex;
		e->jiffies = jif;
	}
}

/* tc egress: did the packet come in through an interface XDP just ran on? */
static __always_inline int xdp_if_saw(__u32 ingress_ifindex)
{
	__u32 slot = ingress_ifindex % XDP_IF_SLOTS;
	struct pfx_xdp_if *e;

	if (!ingress_ifindex)
		return 0; /* locally originated */
	e = bpf_map_lookup_elem(&pfsync_xdp_ifs, &slot);
	return e && e->ifindex == ingress_ifindex &&
	       (__u32)bpf_jiffies64() - e->jiffies <= XDP_IF_FRESH_JIF;
}

/*
 * The state functions return an outcome (enum pfsync_outcome, counted once
 * by process()) or one of these, which handle_ip resolves: ACT_RETRY, the
 * insert met a state another CPU just created (handle it as a hit);
 * ACT_REUSE, a SYN reuses a closed connection's tuple (purge, create anew).
 * PFSYNC_OUT_DEFERRED from create_state means "to be held": defer_commit
 * decides and counts.
 */
enum { ACT_RETRY = PFSYNC_OUT_SLOTS, ACT_REUSE };

/* The next id of this CPU's block, reserving a new block when it is used up. */
static __always_inline __u64 next_state_id(struct pfx_percpu *pcpu, struct pfsync_globals *g)
{
	if (pcpu->id_next == pcpu->id_end) {
		__u64 base = __sync_fetch_and_add(&g->next_id, PFX_ID_BLOCK);

		pcpu->id_next = base;
		pcpu->id_end = base + PFX_ID_BLOCK;
	}
	return pcpu->id_next++;
}

#include "nat.h"

/* The new state's entry: under the packet's key, or NAT's two keys. */
static __always_inline long insert_state(struct pkt *pk, int src_side,
					 struct pfsync_state_value *nv, int prog)
{
	__u32 kind = pk->key.proto | ((__u32)pk->icmp_kind << 8);
	int rc;

	/*
	 * prog is a constant: XDP links only rdr-to's insert, tc only nat-to's,
	 * whose port search would take XDP's call chain past 512 stack bytes.
	 * Called whether or not a rule translates: the rules are looked at in
	 * there, so that this program does not branch on them.
	 */
	if (prog == PFSYNC_PROG_XDP)
		rc = pfsync_nat_insert_rdr(&pk->key, src_side, kind);
	else if (pfsync_nat_prepare(&pk->key, src_side, kind) == 0)
		rc = pfsync_nat_search(&pk->key);
	else
		rc = 1;
	if (rc != 1)
		return rc;
	return bpf_map_update_elem(&pfsync_states, &pk->key, nv, BPF_NOEXIST);
}

static __always_inline int create_state(struct pfx_env *env, struct pkt *pk, int src_side,
					const struct verdict *vd, int prog)
{
	struct pfsync_globals *g = globals_get();
	struct pfsync_state_value *nv = &env->pcpu->nv;
	long err;

	if (!g)
		return PFSYNC_OUT_INTERNAL;
	__builtin_memset(nv, 0, sizeof(*nv));
	ensure_identity(g);
	nv->id = next_state_id(env->pcpu, g);
	nv->creatorid = g->hostid;
	nv->rule = vd->rule;
	nv->creation = env->now;
	nv->last_seen = env->now;
	nv->packets[0] = 1;
	nv->bytes[0] = pk->ip_len;
	nv->ifindex = env->ifindex;
	nv->direction = env->dir;
	nv->init_side = (__u8)src_side;
	if (vd->rflags & PFSYNC_RF_NOSYNC) {
		nv->flags |= PFSYNC_SF_NOSYNC;
		nv->state_flags |= PFSTATE_NOSYNC;
	}
	if (vd->rflags & PFSYNC_RF_SLOPPY)
		nv->state_flags |= PFSTATE_SLOPPY;
	if (pk->key.proto == IPPROTO_TCP)
		pfsync_tcp_init(nv, &pk->seg);
	else
		pfsync_other_init(nv, pk->key.proto);
	err = insert_state(pk, src_side, nv, prog);
	if (err == -NAT_ERR_EXHAUSTED) {
		env->c->nat_exhausted++; /* every candidate tuple was in use */
		return PFSYNC_OUT_NAT_EXHAUSTED;
	}
	if (err == -EEXIST)
		return ACT_RETRY; /* another CPU created it: handle as a hit */
	if (err) {
		env->c->table_full++;
		return PFSYNC_OUT_TABLE_FULL;
	}
	env->c->states_inserted++;
	if (nv->flags & PFSYNC_SF_NOSYNC)
		return PFSYNC_OUT_PASSED;
	if (env->defer) {
		/* the program holds the packet, then emits the insert */
		pk->new_id = nv->id;
		pk->new_creatorid = nv->creatorid;
		pk->new_flags = nv->flags;
		return PFSYNC_OUT_DEFERRED;
	}
	emit_event(env->c, PFSYNC_EV_INSERT, 0, &pk->key, nv->id, nv->creatorid, nv->flags);
	return PFSYNC_OUT_PASSED;
}

/* ---- established path --------------------------------------------------- */
static __always_inline void note_change(struct pfx_env *env, struct pfsync_state_value *v,
					const struct pfsync_key *k)
{
	struct pfsync_config *cfg;
	__u32 maxupd, n;

	if (v->flags & PFSYNC_SF_NOSYNC)
		return;
	if (!(v->flags & PFSYNC_SF_QUEUED)) {
		__u32 old = __sync_fetch_and_or(&v->flags, PFSYNC_SF_QUEUED);

		if (!(old & PFSYNC_SF_QUEUED))
			emit_event(env->c, PFSYNC_EV_UPDATE, 0, k, v->id, v->creatorid,
				   old | PFSYNC_SF_QUEUED);
		return;
	}
	if (k->proto != IPPROTO_TCP)
		return;
	/*
	 * A plain increment: a lost one only delays a maxupd record by a
	 * packet, and one that overwrites pfsync_unqueue's reset only brings
	 * it forward. A locked add here cost as much as the window check.
	 */
	n = ++v->updates;
	cfg = config_get();
	maxupd = cfg && cfg->maxupd ? cfg->maxupd : DEFAULT_MAXUPD;
	if (n >= maxupd) {
		v->updates = 0;
		emit_event(env->c, PFSYNC_EV_UPDATE, PFSYNC_EVF_MAXUPD, k, v->id, v->creatorid,
			   v->flags);
	}
}

static __always_inline int state_hit(struct pfx_env *env, struct pkt *pk, int src_side,
				     struct pfsync_state_value *v)
{
	int from_init = src_side == v->init_side;
	int i = from_init ? 0 : 1;

	if (pk->key.proto == IPPROTO_TCP) {
		int r = pfsync_tcp_track(v, from_init, &pk->seg, v->state_flags & PFSTATE_SLOPPY);

		if (r == PFSYNC_TCP_REUSE) {
			/*
			 * A new SYN on a closed connection's tuple: the old state
			 * is purged and this very SYN goes on to the rules, as in
			 * pf_test (pf_test_state drops and forgets the state,
			 * then pf_test_rule creates a new one). Dropping it made
			 * every reused tuple wait for a SYN retransmission (issue
			 * 12).
			 */
			return ACT_REUSE;
		}
		if (r != PFSYNC_TCP_PASS) {
			env->c->out_of_window++;
			return PFSYNC_OUT_WINDOW;
		}
	} else {
		pfsync_other_track(v, pk->key.proto, from_init);
	}
	v->last_seen = env->now;
	/*
	 * Locked adds kept: plain ones measured no faster here (the cost that
	 * profiles show on them is the wait for the state's cache lines,
	 * which moves to the next load without them), and they keep the
	 * counters exact when two CPUs see one connection at once.
	 */
	__sync_fetch_and_add(&v->packets[i & 1], 1);
	__sync_fetch_and_add(&v->bytes[i & 1], pk->ip_len);
	note_change(env, v, &pk->key);
	return PFSYNC_OUT_PASSED;
}

/* A state due for purge (TCP port reuse) is removed and treated as absent. */
static __always_inline void purge_state(struct pfx_env *env, struct pkt *pk,
					struct pfsync_state_value *v)
{
	__u64 id = v->id;
	__u32 creatorid = v->creatorid, flags = v->flags;

	if (v->nat.type != PFSYNC_NAT_NONE)
		nat_forget(&pk->key, &v->nat.stack_key);
	if (bpf_map_delete_elem(&pfsync_states, &pk->key) == 0) {
		env->c->states_removed++;
		if (!(flags & PFSYNC_SF_NOSYNC))
			emit_event(env->c, PFSYNC_EV_DELETE, 0, &pk->key, id, creatorid, flags);
	}
}

/* The fast path's hook: PFSYNC_OUT_FASTPATH when redirected, else PFSYNC_OUT_PASSED. */
static __always_inline int fastpath_verdict(struct pfx_env *env, const struct pkt *pk, int src_side,
					    const struct pfsync_state_value *v)
{
	int echo = pk->icmp_kind == ICMPK_ECHO_REQ || pk->icmp_kind == ICMPK_ECHO_REPLY;
	int xact = fastpath_forward(env->xdp, env->c, config_get(), v, pk->key.proto, echo,
				    src_side != v->init_side);

	return xact == XDP_REDIRECT ? PFSYNC_OUT_FASTPATH : PFSYNC_OUT_PASSED;
}

/* ICMP error quoting a packet of a known state: related, pass. */
static __always_inline int related_state_exists(struct pkt *pk)
{
	if (!pk->has_inner)
		return 0;
	pfsync_key_normalize(&pk->inner);
	return bpf_map_lookup_elem(&pfsync_states, &pk->inner) != NULL;
}

/* Rules for a packet without a usable state, and the state they keep. */
static __always_inline int handle_new(struct pfx_env *env, struct pkt *pk, int src_side, int prog)
{
	struct pfsync_config *cfg = config_get();
	struct verdict vd;

	env->defer = cfg && (cfg->cfg_flags & PFSYNC_CFG_DEFER);
	evaluate_rules(cfg, pk, src_side, env->dir, env->ifindex, &vd, &env->pcpu->rw);
	if (vd.block) {
		env->c->blocked_rule++;
		return PFSYNC_OUT_BLOCKED;
	}
	if (!vd.keep_state)
		return PFSYNC_OUT_PASSED;
	if (pk->key.proto == IPPROTO_TCP && vd.rule != RULE_NONE &&
	    (pk->seg.flags & (PFSYNC_TH_SYN | PFSYNC_TH_ACK)) != PFSYNC_TH_SYN) {
		env->c->no_state++;
		return PFSYNC_OUT_NO_STATE;
	}
	return create_state(env, pk, src_side, &vd, prog);
}

/* The packet's outcome (enum pfsync_outcome). */
static __always_inline int handle_ip(struct pfx_env *env, struct pkt *pk, int prog)
{
	struct pfsync_state_value *v;
	struct verdict vd;
	int src_side, attempt;

	if (pk->later_frag) {
		env->c->fragments++;
		evaluate_rules(config_get(), pk, 0, env->dir, env->ifindex, &vd, NULL);
		if (vd.block) {
			env->c->blocked_rule++;
			return PFSYNC_OUT_BLOCKED;
		}
		return PFSYNC_OUT_PASSED;
	}
	if (pk->icmp_kind == ICMPK_ERROR && related_state_exists(pk))
		return PFSYNC_OUT_PASSED;
	src_side = pfsync_key_normalize(&pk->key);
	v = bpf_map_lookup_elem(&pfsync_states, &pk->key);
	if (!v) {
		/* a translated state's stack key? then pk->key becomes its wire key */
		int found = pfsync_nat_lookup_stack(&pk->key, src_side);

		/* in the map value, where the verifier does not split paths on it */
		env->pcpu->rw.via_stack = found & NAT_VIA_STACK;
		/* constants, as from the normalisation: the verifier prunes this path */
		if (found & 1)
			src_side = 1;
		else
			src_side = 0;
		v = bpf_map_lookup_elem(&pfsync_states, &pk->key);
	}
	for (attempt = 0; attempt < 2; attempt++) {
		int out;

		if (attempt)
			v = bpf_map_lookup_elem(&pfsync_states, &pk->key);

		if (v && v->timeout != PFTM_PURGE) {
			pfsync_nat_plan(&pk->key, v, src_side,
					(env->xdp ? NAT_AT_XDP : 0) | env->pcpu->rw.via_stack,
					&env->pcpu->rw);
			if (env->seen_by_xdp)
				return PFSYNC_OUT_PASSED;
			out = state_hit(env, pk, src_side, v);
			/* translated packets stay on the stack's path (nat.h rewrites them) */
			if (out == PFSYNC_OUT_PASSED && env->xdp && v->nat.type == PFSYNC_NAT_NONE)
				return fastpath_verdict(env, pk, src_side, v);
			if (out != ACT_REUSE)
				return out;
		}
		if (v)
			purge_state(env, pk, v);
		out = handle_new(env, pk, src_side, prog);
		if (out != ACT_RETRY)
			return out;
	}
	/* two inserts lost to other CPUs and no state found in between */
	return PFSYNC_OUT_RACE;
}

/* Counts the outcome of one packet of program `prog` (a constant). */
static __always_inline void count_outcome(struct pfsync_counters *c, int prog, int out)
{
	if (out == PFSYNC_OUT_PASSED) {
		/* the established path: constant offsets, no index arithmetic */
		c->prog[prog].outcome[PFSYNC_OUT_PASSED]++;
		c->packets_passed++;
		return;
	}
	c->prog[prog].outcome[out & (PFSYNC_OUT_SLOTS - 1)]++;
	if (out == PFSYNC_OUT_STATELESS)
		c->packets_passed++;
}

/*
 * Parses and judges one packet; returns its outcome, counted here except
 * PFSYNC_OUT_DEFERRED (the caller holds the packet, defer_commit counts).
 */
static __always_inline int process(struct parse_ctx *pc, struct pkt *pk, __u32 ifindex, __u8 dir,
				   __u8 seen_by_xdp, int prog)
{
	struct pfsync_counters *c;
	struct pfx_percpu *pcpu;
	struct pfx_env env;
	__u32 zero = 0;
	int res, out;

	c = bpf_map_lookup_elem(&pfsync_counters, &zero);
	if (!c)
		return PFSYNC_OUT_PASSED; /* cannot happen; nowhere to count it */
	c->packets_seen++;
	c->prog[prog].seen++;
	pcpu = bpf_map_lookup_elem(&pfsync_percpu, &zero);
	res = parse_frame(pc, pk);
	if (res == PARSE_NOT_IP) {
		out = PFSYNC_OUT_NOT_IP;
	} else if (res == PARSE_BAD) {
		c->bad_packet++;
		out = PFSYNC_OUT_BAD;
	} else if (res == PARSE_STATELESS) {
		out = PFSYNC_OUT_STATELESS;
	} else if (!pcpu) {
		out = PFSYNC_OUT_INTERNAL;
	} else {
		env.c = c;
		env.pcpu = pcpu;
		env.now = pfx_now(pcpu);
		env.ifindex = ifindex;
		env.dir = dir;
		env.defer = 0;
		env.seen_by_xdp = seen_by_xdp;
		env.xdp = pc->xdp;
		pcpu->rw.op = NAT_OP_NONE;
		pcpu->rw.via_stack = 0;
		out = handle_ip(&env, pk, prog);
		if (out == PFSYNC_OUT_PASSED || out == PFSYNC_OUT_DEFERRED)
			out = nat_apply(pc, pk, &pcpu->rw, c, out, prog);
		if (out == PFSYNC_OUT_DEFERRED)
			return out;
	}
	count_outcome(c, prog, out);
	return out;
}

/* The verdict of an outcome: pass or drop. */
static __always_inline int outcome_passes(int out)
{
	return out == PFSYNC_OUT_PASSED || out == PFSYNC_OUT_NOT_IP || out == PFSYNC_OUT_STATELESS;
}

/*
 * Defer (issue 4): the first packet of a new state is copied into
 * pfsync_defer for the agent to release once a peer acknowledged the insert.
 * The copy needs each program's own helper, hence the split: defer_slot
 * before it, defer_commit after it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfsync_deferred);
} pfsync_defer_scratch SEC(".maps");

static __always_inline struct pfsync_deferred *defer_slot(const struct pkt *pk, __u32 len,
							  __u32 ifindex, __u8 at_egress)
{
	struct pfsync_counters *c;
	struct pfsync_deferred *d;
	__u32 zero = 0;

	if (len > PFSYNC_DEFER_PKT_MAX) {
		c = bpf_map_lookup_elem(&pfsync_counters, &zero);
		if (c)
			c->defer_too_big++;
		return NULL;
	}
	d = bpf_map_lookup_elem(&pfsync_defer_scratch, &zero);
	if (!d)
		return NULL;
	__builtin_memcpy(&d->key, &pk->key, sizeof(d->key));
	d->held_ns = bpf_ktime_get_boot_ns();
	d->ifindex = ifindex;
	d->len = (__u16)len;
	d->at_egress = at_egress;
	d->pad = 0;
	return d;
}

/*
 * Queues the copy; on any failure the packet passes and the state is plain.
 * Returns and counts the outcome: PFSYNC_OUT_DEFERRED or PFSYNC_OUT_PASSED.
 */
static __always_inline int defer_commit(struct pkt *pk, struct pfsync_deferred *d, long copy_err,
					int prog)
{
	struct pfsync_state_value *v = bpf_map_lookup_elem(&pfsync_states, &pk->key);
	struct pfsync_counters *c;
	__u32 zero = 0;
	int held = 0;

	c = bpf_map_lookup_elem(&pfsync_counters, &zero);
	if (!c)
		return PFSYNC_OUT_PASSED;
	if (d && !copy_err) {
		held = bpf_map_push_elem(&pfsync_defer, d, 0) == 0;
		if (!held)
			c->defer_full++;
	}
	if (!held) {
		count_outcome(c, prog, PFSYNC_OUT_PASSED);
		emit_event(c, PFSYNC_EV_INSERT, 0, &pk->key, pk->new_id, pk->new_creatorid,
			   pk->new_flags);
		return PFSYNC_OUT_PASSED;
	}
	c->defer_held++;
	count_outcome(c, prog, PFSYNC_OUT_DEFERRED);
	if (v) {
		/* cleared again by the agent when it releases the packet */
		__sync_fetch_and_or(&v->flags, PFSYNC_SF_DEFERRED);
		v->state_flags |= PFSTATE_ACK;
	}
	emit_event(c, PFSYNC_EV_INSERT, PFSYNC_EVF_ACK, &pk->key, pk->new_id, pk->new_creatorid,
		   pk->new_flags | PFSYNC_SF_DEFERRED);
	return PFSYNC_OUT_DEFERRED;
}

/* Frame length re-checked in the register the helper gets (1..MAX). */
static __always_inline __u32 defer_len(__u32 len)
{
	asm volatile("" : "+r"(len));
	if (len == 0 || len > PFSYNC_DEFER_PKT_MAX)
		return 0;
	return len;
}

/* Copy the parked frame. The length goes through n = len - 1 and an empty asm
 * so that older verifiers (6.1) see a value proven to be in [1, MAX]; a plain
 * "if (len)" test is lost by the time the helper call is checked. */
static __always_inline long defer_copy(struct xdp_md *xdp, struct __sk_buff *skb,
				       struct pfsync_deferred *d, __u32 len)
{
	__u32 n = len - 1;

	asm volatile("" : "+r"(n));
	if (n >= PFSYNC_DEFER_PKT_MAX)
		return -1;
	if (skb)
		return bpf_skb_load_bytes(skb, 0, d->data, n + 1);
	return bpf_xdp_load_bytes(xdp, 0, d->data, n + 1);
}

/*
 * A held frame the agent releases carries PFSYNC_DEFER_META (XDP metadata,
 * which only BPF can set): it passes untracked, as pf lets the packets it
 * released through; the state tracked it when it was held.
 */
static __always_inline int defer_released(struct xdp_md *ctx)
{
	void *meta = (void *)(long)ctx->data_meta;

	return meta + PFSYNC_DEFER_META_LEN <= (void *)(long)ctx->data &&
	       *(__u32 *)meta == PFSYNC_DEFER_META;
}

/* A released held frame is seen by XDP too: one more outcome, passed. */
static __always_inline void count_released(void)
{
	struct pfsync_counters *c;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&pfsync_counters, &zero);
	if (!c)
		return;
	c->prog[PFSYNC_PROG_XDP].seen++;
	c->prog[PFSYNC_PROG_XDP].outcome[PFSYNC_OUT_RELEASED]++;
}

/* pf defers no broadcast or multicast packet: the dst MAC's group bit */
static __always_inline int defer_group_dst(const struct parse_ctx *pc)
{
	return frame_has(pc, 0, 1) && (*(__u8 *)pc->data & 1);
}

SEC("xdp")
int pfsync_xdp(struct xdp_md *ctx)
{
	struct parse_ctx pc;
	struct pkt pk;
	__u32 ifindex;
	int act, group;

	/* first thing: checked after process(), it costs the verifier a third more */
	if (defer_released(ctx)) {
		xdp_if_mark(ctx->ingress_ifindex);
		count_released();
		return XDP_PASS;
	}
	pc.data = (void *)(long)ctx->data;
	pc.data_end = (void *)(long)ctx->data_end;
	pc.frame_len = pc.data_end - pc.data;
	pc.xdp = ctx;
	pc.skb = NULL;
	group = defer_group_dst(&pc); /* read here: cheaper to verify than after process() */
	pkt_init(&pk);
	/* once: each read of the field is three dependent loads */
	ifindex = ctx->ingress_ifindex;
	xdp_if_mark(ifindex);
	act = process(&pc, &pk, ifindex, PF_IN, 0, PFSYNC_PROG_XDP);
	if (act == PFSYNC_OUT_DEFERRED) {
		struct pfsync_deferred *d =
		    group ? NULL : defer_slot(&pk, pc.frame_len, ctx->ingress_ifindex, 0);
		__u32 len = defer_len(pc.frame_len);
		long err = -1;

		if (d)
			err = defer_copy(ctx, NULL, d, len);
		act = defer_commit(&pk, d, err, PFSYNC_PROG_XDP);
	}
	if (act == PFSYNC_OUT_FASTPATH)
		return XDP_REDIRECT; /* bpf_redirect() was set up by the fast path */
	return outcome_passes(act) ? XDP_PASS : XDP_DROP;
}

#define TC_PULL_LEN 256 /* headers we need linear: L2 + IPv6 ext chain + L4 */

SEC("tc")
int pfsync_tc(struct __sk_buff *skb)
{
	struct parse_ctx pc;
	struct pkt pk;
	__u32 linear = skb->data_end - skb->data;
	int act, group;

	if (linear < skb->len && linear < TC_PULL_LEN)
		bpf_skb_pull_data(skb, skb->len < TC_PULL_LEN ? skb->len : TC_PULL_LEN);
	pc.data = (void *)(long)skb->data;
	pc.data_end = (void *)(long)skb->data_end;
	pc.frame_len = skb->len;
	pc.xdp = NULL;
	pc.skb = skb;
	group = defer_group_dst(&pc);
	pkt_init(&pk);
	act = process(&pc, &pk, skb->ifindex, PF_OUT, xdp_if_saw(skb->ingress_ifindex),
		      PFSYNC_PROG_TC);
	if (act == PFSYNC_OUT_DEFERRED) {
		struct pfsync_deferred *d =
		    group ? NULL : defer_slot(&pk, skb->len, skb->ifindex, 1);
		__u32 len = defer_len(skb->len);
		long err = -1;

		if (d)
			err = defer_copy(NULL, skb, d, len);
		act = defer_commit(&pk, d, err, PFSYNC_PROG_TC);
	}
	return outcome_passes(act) ? TC_ACT_OK : TC_ACT_SHOT;
}

/*
 * Release by redirect (pfsync_common.h): attached by the agent at tc egress
 * of its namespace's loopback device. A frame marked by the agent goes into
 * the ingress of the interface it was held on, as if received there; the
 * stack takes it from there. Native XDP does not run on a redirected skb, so
 * the datapath does not track it twice (generic XDP would: see
 * pfsync-agent(8)). Every other frame on lo passes untouched.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfsync_release_counters);
} pfsync_release_ctr SEC(".maps");

/* an interface the XDP program ran on (its slot names it, whatever its age) */
static __always_inline int xdp_if_known(__u32 ifindex)
{
	__u32 slot = ifindex % XDP_IF_SLOTS;
	struct pfx_xdp_if *e = bpf_map_lookup_elem(&pfsync_xdp_ifs, &slot);

	return ifindex && e && e->ifindex == ifindex;
}

SEC("tc")
int pfsync_release(struct __sk_buff *skb)
{
	struct pfsync_release_counters *c;
	__u32 target = skb->priority, zero = 0;

	if (skb->mark != PFSYNC_RELEASE_MARK)
		return TC_ACT_OK;
	/* nothing of the agent's socket travels on with the frame */
	skb->mark = 0;
	skb->priority = 0;
	c = bpf_map_lookup_elem(&pfsync_release_ctr, &zero);
	if (!c)
		return TC_ACT_SHOT;
	if (target == PFSYNC_RELEASE_PROBE_IFX) {
		c->probes++;
		return TC_ACT_SHOT;
	}
	if (!xdp_if_known(target)) {
		c->refused++;
		return TC_ACT_SHOT;
	}
	c->redirected++;
	return bpf_redirect(target, BPF_F_INGRESS);
}

/* ---- control programs (BPF_PROG_RUN) ------------------------------------ */
struct sweep_walk {
	struct pfsync_config cfg;
	__u64 now;
	__u32 sweep_flags;
	__u32 creatorid;
	__u32 states_count;
	__u32 seen;
	__u32 deleted;
};

static __always_inline int sweep_due(const struct sweep_walk *w, const struct pfsync_state_value *v)
{
	if (w->sweep_flags & PFSYNC_SWEEP_FLUSH)
		return !(w->sweep_flags & PFSYNC_SWEEP_CREATOR) || v->creatorid == w->creatorid;
	return pfsync_state_expires_ns(v, &w->cfg, w->states_count) <= w->now;
}

struct bpf_map;

static __always_inline void sweep_entry(struct pfsync_key *k, struct pfsync_state_value *v,
					struct sweep_walk *w)
{
	struct pfsync_key key;
	__u64 id;
	__u32 creatorid, flags;

	if (!sweep_due(w, v))
		return;
	/* copy before deleting: a preallocated element is recycled at once */
	__builtin_memcpy(&key, k, sizeof(key));
	id = v->id;
	creatorid = v->creatorid;
	flags = v->flags;
	if (v->nat.type != PFSYNC_NAT_NONE)
		nat_forget(&key, &v->nat.stack_key);
	if (bpf_map_delete_elem(&pfsync_states, &key))
		return;
	w->deleted++;
	if (!(w->sweep_flags & PFSYNC_SWEEP_QUIET) && !(flags & PFSYNC_SF_NOSYNC)) {
		__u32 zero = 0;

		emit_event(bpf_map_lookup_elem(&pfsync_counters, &zero), PFSYNC_EV_DELETE, 0, &key,
			   id, creatorid, flags);
	}
}

static long sweep_one(struct bpf_map *map, struct pfsync_key *k, struct pfsync_state_value *v,
		      struct sweep_walk *w)
{
	(void)map;
	w->seen++;
	sweep_entry(k, v, w);
	return 0;
}

/*
 * One key handed over by the agent's pass: judged on its live value.
 * Global, so that the verifier checks it once: as a static function it was
 * checked again at each of the PFSYNC_SWEEP_BATCH call sites, which 6.1's
 * verifier gave up on (over a million instructions).
 */
__noinline int pfsync_sweep_key(struct pfsync_key *key, struct sweep_walk *w)
{
	struct pfsync_state_value *v;
	struct pfsync_key k;

	if (!key || !w)
		return 0;
	/* on the stack: 6.1 takes no argument memory as a map key */
	__builtin_memcpy(&k, key, sizeof(k));
	v = bpf_map_lookup_elem(&pfsync_states, &k);
	if (!v)
		return 0;
	w->seen++;
	sweep_entry(&k, v, w);
	return 0;
}

static __always_inline void sweep_keys(struct pfsync_sweep_args *args, struct sweep_walk *w)
{
	__u32 count = args->count;
	__u32 i;

	/* unrolled: ctx may only be read at constant offsets */
#pragma unroll
	for (i = 0; i < PFSYNC_SWEEP_BATCH; i++) {
		struct pfsync_key key;

		if (i >= count)
			break;
		__builtin_memcpy(&key, &args->keys[i], sizeof(key));
		pfsync_sweep_key(&key, w);
	}
}

SEC("syscall")
int pfsync_sweep(struct pfsync_sweep_args *args)
{
	struct pfsync_globals *g = globals_get();
	struct pfsync_config *cfg = config_get();
	struct pfsync_counters *c;
	struct sweep_walk w = {};
	__u32 zero = 0;

	/* a loss is reported with the next record; on a quiet table the agent's
	 * calls (even one with no keys) are what brings it */
	report_lost(g);
	if (cfg)
		__builtin_memcpy(&w.cfg, cfg, sizeof(w.cfg));
	w.now = args->now_ns ? args->now_ns : bpf_ktime_get_boot_ns();
	w.sweep_flags = args->sweep_flags;
	w.creatorid = args->creatorid;
	w.states_count = g ? g->states_count : 0;
	if (w.sweep_flags & PFSYNC_SWEEP_KEYS)
		sweep_keys(args, &w);
	else
		bpf_for_each_map_elem(&pfsync_states, sweep_one, &w, 0);
	args->seen = w.seen;
	args->deleted = w.deleted;
	if (g && !(w.sweep_flags & PFSYNC_SWEEP_KEYS)) {
		g->states_count = w.seen;
		g->last_sweep_ns = w.now;
	} else if (g && (w.sweep_flags & PFSYNC_SWEEP_PASS_END)) {
		g->states_count = args->pass_seen;
		g->last_sweep_ns = w.now;
	}
	c = bpf_map_lookup_elem(&pfsync_counters, &zero);
	if (c)
		c->states_removed += w.deleted;
	return 0;
}

SEC("syscall")
int pfsync_unqueue(struct pfsync_unqueue_args *args)
{
	__u32 count = args->count, done = 0;
	__u32 i;

	if (count > PFSYNC_UNQUEUE_BATCH)
		count = PFSYNC_UNQUEUE_BATCH;
		/* unrolled: ctx may only be read at constant offsets */
#pragma unroll
	for (i = 0; i < PFSYNC_UNQUEUE_BATCH; i++) {
		struct pfsync_state_value *v;
		struct pfsync_key key;

		if (i >= count)
			break;
		/* map helpers do not take ctx memory as a key: copy it to the stack */
		__builtin_memcpy(&key, &args->keys[i], sizeof(key));
		v = bpf_map_lookup_elem(&pfsync_states, &key);
		if (!v)
			continue;
		pfsync_state_unqueue(v);
		done++;
	}
	args->done = done;
	return 0;
}
