/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Stage 1, parse: Ethernet (one VLAN tag), IPv4 / IPv6 with its
 * extension chain, TCP (options on a SYN), UDP, ICMP (echo ids, the packet
 * quoted by an error) into struct pkt, whose key is not normalised yet.
 * Reads the frame only; touches no map.
 */
#ifndef PFSYNC_BPF_PARSE_H
#define PFSYNC_BPF_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "pfsync_common.h"
#include "pfsync_logic.h"

#define ETH_P_8021Q_	0x8100
#define ETH_P_8021AD_	0x88A8
#define IPPROTO_PFSYNC_ 240
#define IPPROTO_CARP_	112
#define IPV6_EXT_MAX	6      /* extension headers walked before giving up */
#define L3_OFF_MAX	0x3000 /* keeps packet offsets provably bounded */

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
	__u16 l3_off;	    /* IP header (NAT rewrites, nat.h) */
	__u16 l4_off;	    /* TCP/UDP/ICMP header */
	__u16 inner_l3_off; /* ICMP error: the quoted IP header */
	__u16 inner_l4_off; /* and the quoted packet's ports */
	/* last: pkt_init leaves it alone, parse_icmp_inner clears it */
	struct pfsync_key inner; /* ICMP error: the embedded packet's key */
};

/*
 * The packet being judged lives here, not on the stack: the verifier does
 * not follow what is stored in a map value, so the paths that parsing
 * splits (IPv4/IPv6, TCP/UDP/ICMP) join again right after it instead of
 * each being walked through the whole state machine and NAT (Debian 6.1's
 * verifier ran out of its 1M instructions), and the programs' frames keep
 * room for NAT's. One slot per CPU: XDP and tc egress never nest on a CPU.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pkt);
} pfsync_pkt_scratch SEC(".maps");

static __always_inline struct pkt *pkt_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pfsync_pkt_scratch, &zero);
}

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
		pk->inner_l3_off = (__u16)off;
		pk->inner_l4_off = (__u16)(off + ihl);
		inner_ports(pc, off + ihl, pk);
	} else {
		struct ipv6hdr *ip6;

		if (!frame_has(pc, off, sizeof(*ip6)))
			return;
		ip6 = pc->data + off;
		__builtin_memcpy(pk->inner.addr[0], &ip6->saddr, 16);
		__builtin_memcpy(pk->inner.addr[1], &ip6->daddr, 16);
		pk->inner.proto = ip6->nexthdr;
		pk->inner_l3_off = (__u16)off;
		pk->inner_l4_off = (__u16)(off + sizeof(*ip6));
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

#endif /* PFSYNC_BPF_PARSE_H */
