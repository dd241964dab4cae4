/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Fast path (issue 16): a packet of an established state, already tracked
 * by the XDP program (windows, counters, last-seen, maxupd, so sync and
 * expiry see it as before), is routed with bpf_fib_lookup, its Ethernet
 * header rewritten, its TTL / hop limit decremented and redirected to the
 * egress interface through pfsync_fastpath_ifs. Anything the stack must
 * handle itself passes, with its reason counted:
 * - VLAN-tagged frames, IPv4 options and IPv6 extension headers, fragments;
 * - TTL / hop limit <= 1 (the stack sends time exceeded);
 * - blackhole, unreachable, prohibit, forwarding off, LWT (NO_ROUTE);
 * - neighbour not resolved (BPF_FIB_LKUP_RET_NO_NEIGH: the stack resolves
 *   it and later packets take the fast path);
 * - local destinations, broadcast, and no route at all: the kernel answers
 *   all three BPF_FIB_LKUP_RET_NOT_FWDED (NOT_FWDED);
 * - larger than the egress MTU (the stack fragments or sends too-big);
 * - an egress interface not in pfsync_fastpath_ifs (the set of interfaces
 *   running pfsync-xdp, filled by the agent or pfsyncctl): checked before
 *   the frame is touched, so the refused packet goes up unchanged.
 *
 * The lookup is made for every packet, nothing is cached: a route or
 * neighbour change takes effect with the next packet.
 *
 * Egress direction: the tc egress program never sees a redirected frame.
 * For a packet of an existing state it does nothing but pass (rules are
 * evaluated only without a state, and the packet was counted once at
 * ingress), so nothing of the egress side is skipped but NAT's source
 * rewrite, which track.h's fastpath_verdict does before the redirect.
 *
 * Accounting: a redirected packet ends in fastpath[PFSYNC_FP_FORWARDED],
 * not in packets_passed; the fallbacks pass and are counted in both.
 *
 * Only common types are used, so that the benchmark floor (bench_fwd) runs
 * the same routing code without a state table.
 */
#ifndef PFSYNC_BPF_FASTPATH_H
#define PFSYNC_BPF_FASTPATH_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "pfsync_common.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define FP_IP_MF	  0x2000
#define FP_IP_OFFSET	  0x1fff
#define FP_IPV6_FLOWINFO  0x0fffffff
#define FP_IPV6_FRAG_HDR  44
#define FP_ETH_P_8021Q	  0x8100
#define FP_ETH_P_8021AD	  0x88A8
#define FP_TCPS_ESTAB	  4 /* TCPS_ESTABLISHED */
#define FP_UDPS_MULTIPLE  2 /* PFUDPS_MULTIPLE */
#define FP_IPPROTO_ICMP	  1
#define FP_IPPROTO_TCP	  6
#define FP_IPPROTO_UDP	  17
#define FP_IPPROTO_ICMPV6 58

/*
 * Interfaces the fast path forwards between (struct pfsync_fastpath_if),
 * redirected to with bpf_redirect. Not a devmap: the kernel adds a flag to
 * every devmap that libbpf before 1.3 (Debian 12's, iproute2's) then finds
 * mismatched, so a pinned devmap cannot be reused by the second of
 * iproute2's two loads (XDP, then tc).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PFSYNC_FASTPATH_IFS_MAX);
	__type(key, __u32);
	__type(value, struct pfsync_fastpath_if);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_fastpath_ifs SEC(".maps");

/*
 * A state that has seen both directions: TCP established on both sides
 * (a FIN or RST this packet carried has already moved it on), UDP
 * MULTIPLE, an ICMP echo state with a reply.
 */
static __always_inline int fp_state_ready(const struct pfsync_state_value *v, __u8 proto,
					  int icmp_echo)
{
	switch (proto) {
	case FP_IPPROTO_TCP:
		return v->peer[0].state == FP_TCPS_ESTAB && v->peer[1].state == FP_TCPS_ESTAB;
	case FP_IPPROTO_UDP:
		return v->peer[0].state == FP_UDPS_MULTIPLE && v->peer[1].state == FP_UDPS_MULTIPLE;
	case FP_IPPROTO_ICMP:
	case FP_IPPROTO_ICMPV6:
		return icmp_echo && v->packets[0] && v->packets[1];
	}
	return 0;
}

/* RFC 1624 eqn. 3 for one 16-bit word; any byte order, as long as all agree. */
static __always_inline void fp_csum_replace16(__u16 *check, __u16 old_word, __u16 new_word)
{
	__u32 sum = (__u16) ~*check + (__u16)~old_word + (__u32)new_word;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	*check = (__u16)~sum;
}

/* TTL and protocol share a 16-bit word of the header checksum. */
static __always_inline void fp_ipv4_dec_ttl(struct iphdr *ip)
{
	__u16 *word = (__u16 *)&ip->ttl;
	__u16 old_word = *word;

	ip->ttl--;
	fp_csum_replace16(&ip->check, old_word, *word);
}

static __always_inline int fp_fib_reason(long rc)
{
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		return PFSYNC_FP_FORWARDED;
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		return PFSYNC_FP_NO_NEIGH;
	case BPF_FIB_LKUP_RET_NOT_FWDED:
		return PFSYNC_FP_NOT_FWDED;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		return PFSYNC_FP_MTU;
	}
	return PFSYNC_FP_NO_ROUTE;
}

/* IPv4 at l3: the checks that need no lookup, then the lookup. */
static __always_inline int fp_lookup_ipv4(struct xdp_md *ctx, struct iphdr *ip,
					  struct bpf_fib_lookup *fib, const __u32 *dst)
{
	if (ip->ihl != 5)
		return PFSYNC_FP_IP_OPTIONS;
	if (ip->frag_off & bpf_htons(FP_IP_MF | FP_IP_OFFSET))
		return PFSYNC_FP_FRAGMENT;
	if (ip->ttl <= 1)
		return PFSYNC_FP_TTL;
	fib->family = AF_INET;
	fib->tos = ip->tos;
	fib->l4_protocol = ip->protocol;
	fib->tot_len = bpf_ntohs(ip->tot_len);
	fib->ipv4_src = ip->saddr;
	fib->ipv4_dst = dst ? dst[0] : ip->daddr;
	fib->ifindex = ctx->ingress_ifindex;
	return fp_fib_reason(bpf_fib_lookup(ctx, fib, sizeof(*fib), 0));
}

static __always_inline int fp_lookup_ipv6(struct xdp_md *ctx, struct ipv6hdr *ip6,
					  struct bpf_fib_lookup *fib, const __u32 *dst)
{
	if (ip6->nexthdr == FP_IPV6_FRAG_HDR)
		return PFSYNC_FP_FRAGMENT;
	if (ip6->nexthdr != FP_IPPROTO_TCP && ip6->nexthdr != FP_IPPROTO_UDP &&
	    ip6->nexthdr != FP_IPPROTO_ICMPV6)
		return PFSYNC_FP_IP_OPTIONS; /* extension headers: the stack's business */
	if (ip6->hop_limit <= 1)
		return PFSYNC_FP_TTL;
	fib->family = AF_INET6;
	fib->flowinfo = *(__be32 *)ip6 & bpf_htonl(FP_IPV6_FLOWINFO);
	fib->l4_protocol = ip6->nexthdr;
	fib->tot_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	__builtin_memcpy(fib->ipv6_src, &ip6->saddr, sizeof(fib->ipv6_src));
	if (dst)
		__builtin_memcpy(fib->ipv6_dst, dst, sizeof(fib->ipv6_dst));
	else
		__builtin_memcpy(fib->ipv6_dst, &ip6->daddr, sizeof(fib->ipv6_dst));
	fib->ifindex = ctx->ingress_ifindex;
	return fp_fib_reason(bpf_fib_lookup(ctx, fib, sizeof(*fib), 0));
}

/* The ingress interface is in the set and the frame was sent to its MAC. */
static __always_inline int fp_sent_to_us(struct xdp_md *ctx, const struct ethhdr *eth)
{
	__u32 ingress = ctx->ingress_ifindex;
	const struct pfsync_fastpath_if *in = bpf_map_lookup_elem(&pfsync_fastpath_ifs, &ingress);

	/* 4 + 2 bytes: clang leaves a memcmp call, which BPF has not */
	return in && *(const __u32 *)eth->h_dest == *(const __u32 *)in->mac &&
	       *(const __u16 *)(eth->h_dest + 4) == *(const __u16 *)(in->mac + 4);
}

/*
 * Routes the frame in ctx and, when it may take the fast path, rewrites it
 * for the next hop and sets up the redirect. Returns PFSYNC_FP_FORWARDED
 * (the caller returns XDP_REDIRECT) or the reason the frame is left as it
 * was for the stack. dst (NULL: the frame's own) is the destination to
 * route to: rdr-to's inside address, which NAT writes into the frame after.
 */
static __always_inline int fp_route(struct xdp_md *ctx, const __u32 *dst)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct bpf_fib_lookup fib = {};
	struct ipv6hdr *ip6 = NULL;
	struct iphdr *ip = NULL;
	int reason;

	if ((void *)(eth + 1) > data_end)
		return PFSYNC_FP_NO_ROUTE;
	if (!fp_sent_to_us(ctx, eth))
		return PFSYNC_FP_NOT_OURS;
	if (eth->h_proto == bpf_htons(FP_ETH_P_8021Q) || eth->h_proto == bpf_htons(FP_ETH_P_8021AD))
		return PFSYNC_FP_VLAN;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return PFSYNC_FP_NO_ROUTE;
		reason = fp_lookup_ipv4(ctx, ip, &fib, dst);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return PFSYNC_FP_NO_ROUTE;
		reason = fp_lookup_ipv6(ctx, ip6, &fib, dst);
	} else {
		return PFSYNC_FP_NO_ROUTE;
	}
	if (reason != PFSYNC_FP_FORWARDED)
		return reason;
	if (!bpf_map_lookup_elem(&pfsync_fastpath_ifs, &fib.ifindex))
		return PFSYNC_FP_EGRESS_NOT_SET;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	if (ip)
		fp_ipv4_dec_ttl(ip);
	else if (ip6)
		ip6->hop_limit--;
	bpf_redirect(fib.ifindex, 0); /* always XDP_REDIRECT with flags 0 */
	return PFSYNC_FP_FORWARDED;
}

/* the fast path is switched on (--fastpath, pfsyncctl set fastpath on) */
static __always_inline int fastpath_on(const struct pfsync_config *cfg)
{
	return cfg && (cfg->cfg_flags & PFSYNC_CFG_FASTPATH);
}

/*
 * The hook after a state hit at XDP ingress, the fast path on (the caller
 * checked fastpath_on): XDP_REDIRECT (set up with bpf_redirect) when the
 * packet went the fast path, XDP_PASS otherwise (not ready, or a
 * fallback). Counted by reason and direction, dir 0 = from the state's
 * initiator.
 */
static __always_inline int fastpath_forward(struct xdp_md *ctx, struct pfsync_counters *c,
					    const struct pfsync_state_value *v, __u8 proto,
					    int icmp_echo, int dir, const __u32 *dst)
{
	int reason;

	reason = fp_state_ready(v, proto, icmp_echo) ? fp_route(ctx, dst) : PFSYNC_FP_NOT_READY;
	if ((unsigned int)reason >= PFSYNC_FP_REASONS)
		reason = PFSYNC_FP_NO_ROUTE; /* bounds the index for the verifier */
	c->fastpath[reason][dir & 1]++;
	return reason == PFSYNC_FP_FORWARDED ? XDP_REDIRECT : XDP_PASS;
}

#endif /* PFSYNC_BPF_FASTPATH_H */
