/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pf's state logic as pure inline helpers: timeouts and their adaptive
 * scaling, key normalisation, the TCP/UDP/ICMP/other state machines and
 * rule matching. Shared by the BPF datapath, the agent and the host unit
 * tests, so: no libc, no pointers kept, no loop without a constant bound,
 * no division by a value that could be 0.
 *
 * The behaviour follows OpenBSD's sys/net/pf.c (pf_create_state,
 * pf_test_state, pf_tcp_track_full, pf_tcp_track_sloppy, pf_state_expires,
 * pf_test_rule); deliberate differences are noted where they occur.
 *
 * Clocks are not read here: the caller owns last_seen and passes "now".
 */
#ifndef PFSYNC_LOGIC_H
#define PFSYNC_LOGIC_H

#include <linux/types.h>
#include "pfsync_common.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define PFSYNC_NSEC_PER_SEC 1000000000ULL

/* TCP header flags as they appear in the segment's flags byte. */
#define PFSYNC_TH_FIN 0x01
#define PFSYNC_TH_SYN 0x02
#define PFSYNC_TH_RST 0x04
#define PFSYNC_TH_PSH 0x08
#define PFSYNC_TH_ACK 0x10

#define PFSYNC_TCP_MAXWIN	65535 /* largest unscaled window */
#define PFSYNC_TCP_MAX_WINSHIFT 14    /* RFC 7323 limit, pf caps to it */
/* How far an ACK may lag or lead; 1500 is pf's fudge for fragments. */
#define PFSYNC_MAXACKWINDOW (0xffff + 1500)

#define PFSYNC_IPPROTO_ICMP   1
#define PFSYNC_IPPROTO_TCP    6
#define PFSYNC_IPPROTO_UDP    17
#define PFSYNC_IPPROTO_ICMPV6 58

/* ---- queued for sending -------------------------------------------------- */

/*
 * The agent has packed this state's change: a change from now on is
 * recorded again (QUEUED cleared, the maxupd count reset), with atomics so
 * that no concurrent datapath write is lost. pfsync_unqueue and
 * pfsync_fetch both do it.
 */
static __always_inline void pfsync_state_unqueue(struct pfsync_state_value *v)
{
	__sync_fetch_and_and(&v->flags, ~(__u32)PFSYNC_SF_QUEUED);
	__sync_lock_test_and_set(&v->updates, 0);
}

/* ---- timeouts ----------------------------------------------------------- */

/* pf's built-in timeout for a PFTM_* index (seconds, or states for adaptive). */
static __always_inline __u32 pfsync_timeout_default(__u32 pftm)
{
	switch (pftm) {
	case PFTM_TCP_FIRST_PACKET:
		return 120;
	case PFTM_TCP_OPENING:
		return 30;
	case PFTM_TCP_ESTABLISHED:
		return 24 * 60 * 60;
	case PFTM_TCP_CLOSING:
		return 15 * 60;
	case PFTM_TCP_FIN_WAIT:
		return 45;
	case PFTM_TCP_CLOSED:
		return 90;
	case PFTM_UDP_FIRST_PACKET:
		return 60;
	case PFTM_UDP_SINGLE:
		return 30;
	case PFTM_UDP_MULTIPLE:
		return 60;
	case PFTM_ICMP_FIRST_PACKET:
		return 20;
	case PFTM_ICMP_ERROR_REPLY:
		return 10;
	case PFTM_OTHER_FIRST_PACKET:
		return 60;
	case PFTM_OTHER_SINGLE:
		return 30;
	case PFTM_OTHER_MULTIPLE:
		return 60;
	case PFTM_FRAG:
		return 60;
	case PFTM_INTERVAL:
		return 10;
	case PFTM_ADAPTIVE_START:
		return 60000;
	case PFTM_ADAPTIVE_END:
		return 120000;
	case PFTM_SRC_NODE:
		return 0;
	case PFTM_TS_DIFF:
		return 30;
	default:
		return 0; /* PURGE, UNLINKED and garbage: due at once */
	}
}

/* The configured value for a PFTM_* index, pf's default where it is 0. */
static __always_inline __u32 pfsync_timeout_get(const struct pfsync_config *cfg, __u32 pftm)
{
	if (pftm >= PFTM_MAX)
		return 0;
	if (cfg && cfg->timeouts[pftm])
		return cfg->timeouts[pftm];
	return pfsync_timeout_default(pftm);
}

/*
 * The state limit adaptive timeouts scale with: `set limit states`, else
 * the table's size (--states-max), else the size it is compiled with.
 */
static __always_inline __u32 pfsync_state_limit(const struct pfsync_config *cfg)
{
	if (cfg && cfg->state_limit)
		return cfg->state_limit;
	if (cfg && cfg->table_size)
		return cfg->table_size;
	return PFSYNC_STATES_MAX;
}

/* One adaptive bound: the explicit value (0 included), else pct % of the limit. */
static __always_inline __u32 pfsync_adaptive_bound(const struct pfsync_config *cfg, __u32 pftm,
						   __u32 set_flag, __u32 pct)
{
	__u32 value = cfg ? cfg->timeouts[pftm] : 0;

	if (value || (cfg && (cfg->cfg_flags & set_flag)))
		return value;
	return (__u32)((__u64)pfsync_state_limit(cfg) * pct / 100);
}

/*
 * Adaptive thresholds as pf.conf(5): adaptive.start and adaptive.end are
 * 60 % and 120 % of the state limit unless set; both 0 turn scaling off.
 * (Fixed at 60000/120000 they wiped a bigger table past 120000 states and
 * never scaled a smaller one.)
 */
static __always_inline void pfsync_adaptive_bounds(const struct pfsync_config *cfg, __u32 *start,
						   __u32 *end)
{
	*start = pfsync_adaptive_bound(cfg, PFTM_ADAPTIVE_START, PFSYNC_CFG_ADAPTIVE_START, 60);
	*end = pfsync_adaptive_bound(cfg, PFTM_ADAPTIVE_END, PFSYNC_CFG_ADAPTIVE_END, 120);
}

/* The state's timeout in seconds after adaptive scaling (pf_state_expires). */
static __always_inline __u32 pfsync_state_timeout_secs(const struct pfsync_state_value *v,
						       const struct pfsync_config *cfg,
						       __u32 states_count)
{
	__u32 timeout, start, end;

	if (v->timeout >= PFTM_MAX)
		return 0; /* PFTM_PURGE / UNLINKED: remove now */
	timeout = pfsync_timeout_get(cfg, v->timeout);
	pfsync_adaptive_bounds(cfg, &start, &end);
	if (end && states_count > start && start < end) {
		if (states_count >= end)
			return 0;
		/* end - start > 0 here; pf truncates to whole seconds too */
		timeout = (__u32)((__u64)timeout * (end - states_count) / (end - start));
	}
	return timeout;
}

/* Absolute CLOCK_BOOTTIME ns at which the state is due (<= now: remove it). */
static __always_inline __u64 pfsync_state_expires_ns(const struct pfsync_state_value *v,
						     const struct pfsync_config *cfg,
						     __u32 states_count)
{
	__u32 secs = pfsync_state_timeout_secs(v, cfg, states_count);

	return v->last_seen + (__u64)secs * PFSYNC_NSEC_PER_SEC;
}

/* ---- key normalisation -------------------------------------------------- */

static __always_inline __u32 pfsync_be32_to_host(__u32 x)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return __builtin_bswap32(x);
#else
	return x;
#endif
}

static __always_inline __u16 pfsync_be16_to_host(__u16 x)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return __builtin_bswap16(x);
#else
	return x;
#endif
}

/* Compare one network-order word as bytes would compare: -1, 0 or 1. */
static __always_inline int pfsync_cmp_be32(__u32 a, __u32 b)
{
	__u32 ha = pfsync_be32_to_host(a), hb = pfsync_be32_to_host(b);

	return ha < hb ? -1 : ha > hb;
}

/* Compare (addr[0], port[0]) with (addr[1], port[1]) bytewise. */
static __always_inline int pfsync_key_side_cmp(const struct pfsync_key *k)
{
	int c;

	c = pfsync_cmp_be32(k->addr[0][0], k->addr[1][0]);
	if (c)
		return c;
	c = pfsync_cmp_be32(k->addr[0][1], k->addr[1][1]);
	if (c)
		return c;
	c = pfsync_cmp_be32(k->addr[0][2], k->addr[1][2]);
	if (c)
		return c;
	c = pfsync_cmp_be32(k->addr[0][3], k->addr[1][3]);
	if (c)
		return c;
	{
		__u16 pa = pfsync_be16_to_host(k->port[0]);
		__u16 pb = pfsync_be16_to_host(k->port[1]);

		return pa < pb ? -1 : pa > pb;
	}
}

/*
 * Sort the key's sides so that side 0 is the smaller (addr, port). On entry
 * side 0 is the packet source; returns where the source ended up.
 */
static __always_inline int pfsync_key_normalize(struct pfsync_key *k)
{
	__u32 tmp;
	__u16 port;

	if (pfsync_key_side_cmp(k) <= 0)
		return 0;
	tmp = k->addr[0][0];
	k->addr[0][0] = k->addr[1][0];
	k->addr[1][0] = tmp;
	tmp = k->addr[0][1];
	k->addr[0][1] = k->addr[1][1];
	k->addr[1][1] = tmp;
	tmp = k->addr[0][2];
	k->addr[0][2] = k->addr[1][2];
	k->addr[1][2] = tmp;
	tmp = k->addr[0][3];
	k->addr[0][3] = k->addr[1][3];
	k->addr[1][3] = tmp;
	port = k->port[0];
	k->port[0] = k->port[1];
	k->port[1] = port;
	return 1;
}

/* ---- TCP ---------------------------------------------------------------- */

struct pfsync_tcp_seg {
	__u32 seq, ack;	 /* host order */
	__u16 win;	 /* host order, as in the header (unscaled) */
	__u16 mss;	 /* MSS option, 0 if absent */
	__u8 flags;	 /* PFSYNC_TH_* */
	__u8 wscale;	 /* window scale option shift */
	__u8 has_wscale; /* the window scale option was present */
	__u8 pad;
	__u32 payload_len; /* TCP payload bytes */
};

/*
 * pfsync_tcp_track results. Anything but PFSYNC_TCP_PASS means "drop".
 * BAD_WINDOW also covers a bare SYN on an established connection (pf sends
 * a challenge ACK there, which we do not); the state is left untouched.
 */
#define PFSYNC_TCP_PASS	      0
#define PFSYNC_TCP_BAD_WINDOW 1 /* outside the window: count out_of_window and drop */
/*
 * A bare SYN for a connection both of whose ends are closed (FIN_WAIT_2 or
 * later): like pf, the old state is marked PFTM_PURGE (due at once, see
 * pfsync_state_expires_ns) and treated as absent: the caller removes it and
 * judges the same SYN as the first packet of a new connection (pf_test goes
 * on to pf_test_rule), so the SYN is not lost.
 */
#define PFSYNC_TCP_REUSE 2

/* Sequence space comparisons (RFC 793 modular arithmetic). */
static __always_inline int pfsync_seq_geq(__u32 a, __u32 b)
{
	return (__s32)(a - b) >= 0;
}

static __always_inline int pfsync_seq_gt(__u32 a, __u32 b)
{
	return (__s32)(a - b) > 0;
}

/*
 * The sequence edges a segment raises (the sender's seqlo, the other
 * side's seqhi), raised atomically. Packets of one direction can be tracked
 * on two CPUs at once, where pf holds the state's lock: the firewall's own
 * connections at tc egress (a TCP stack transmits from the process and from
 * the softirq that took the peer's ACK), a flow coming in through two
 * interfaces or receive queues. With a plain test-and-write, a CPU that
 * tested the edge before another raised it wrote its older, lower value over
 * the higher one. A window edge moved back below the sender's next byte
 * drops every later segment, the retransmissions too, as out of window, and
 * none reaches the receiver to bring an ACK that would move it on: the
 * connection stalls for good. A compare-and-swap writes only over the value
 * it tested; a lost race tests again against the winner's value.
 */
#define PFSYNC_RAISE_TRIES 4

/*
 * *edge = val while test is past it (past_only) or at or past it; a lost
 * race is judged again against the value the winner wrote
 */
static __always_inline void pfsync_edge_raise(__u32 *edge, __u32 test, __u32 val, int past_only)
{
	__u32 cur = *(volatile __u32 *)edge;

	for (int i = 0; i < PFSYNC_RAISE_TRIES &&
			(past_only ? pfsync_seq_gt(test, cur) : pfsync_seq_geq(test, cur));
	     i++) {
		__u32 seen = __sync_val_compare_and_swap(edge, cur, val);

		if (seen == cur)
			return;
		cur = seen;
	}
}

/* seqhi = val if edge is at or past it (pf: SEQ_GEQ(ack + win, seqhi)) */
static __always_inline void pfsync_seqhi_raise(__u32 *seqhi, __u32 edge, __u32 val)
{
	pfsync_edge_raise(seqhi, edge, val, 0);
}

/* seqlo = end if end is past it (pf: SEQ_GT(end, seqlo)) */
static __always_inline void pfsync_seqlo_raise(__u32 *seqlo, __u32 end)
{
	pfsync_edge_raise(seqlo, end, end, 1);
}

static __always_inline __u32 pfsync_max_u32(__u32 a, __u32 b)
{
	return a > b ? a : b;
}

/*
 * pf's stale rule for one half of a peer's update (pfsync-wire.md §3.4,
 * pfsync_upd_tcp): ours is newer when its TCP level is higher (a synproxy
 * level aside) or the same with a later seqlo; for other protocols when
 * its state is higher. 1: ours stays, and is stale news for the peer.
 */
static __always_inline int pfsync_half_stale(const struct pfsync_peer *local,
					     const struct pfsync_peer *in, int is_tcp, int is_src)
{
	if (!is_tcp)
		return local->state > in->state;
	if (local->state > in->state &&
	    (!is_src || local->state < PF_TCPS_PROXY_SRC || in->state >= PF_TCPS_PROXY_SRC))
		return 1;
	return local->state == in->state && pfsync_seq_gt(local->seqlo, in->seqlo);
}

/*
 * A peer's half taken over ours. One with our level and our seqlo (pf's
 * rule takes it) brings no news but its edges, and those only move
 * forward: it may have been packed before our latest packets raised seqhi
 * or max_win (our own update looped back on lo did exactly that), and a
 * seqhi moved back to the sender's next byte dropped every later segment
 * of the connection for good. seqhi is raised by compare-and-swap, as the
 * datapath raises it at the same time.
 */
static __always_inline void pfsync_half_take(struct pfsync_peer *local,
					     const struct pfsync_peer *in, int is_tcp)
{
	if (is_tcp && local->seqlo && local->state == in->state && local->seqlo == in->seqlo) {
		pfsync_edge_raise(&local->seqhi, in->seqhi, in->seqhi, 1);
		if (in->max_win > local->max_win)
			local->max_win = in->max_win;
		return;
	}
	*local = *in;
}

/*
 * A peer's halves (host order) merged into local: each is taken unless
 * ours is newer; with fewer than 2 stale halves the state is refreshed
 * (last_seen = now_ns, its timeout class the peer's). Returns the stale
 * halves (0..2). Shared by the agent and pfsync_bulk.bpf.c's pfsync_merge,
 * which runs it on the live map value: only the halves taken are written.
 */
static __always_inline int pfsync_merge_halves(struct pfsync_state_value *local,
					       const struct pfsync_peer *src,
					       const struct pfsync_peer *dst, __u8 timeout,
					       __u8 proto, __u64 now_ns)
{
	int is_tcp = proto == PFSYNC_IPPROTO_TCP;
	int stale_src = pfsync_half_stale(&local->peer[0], src, is_tcp, 1);
	int stale_dst = pfsync_half_stale(&local->peer[1], dst, is_tcp, 0);

	if (!stale_src)
		pfsync_half_take(&local->peer[0], src, is_tcp);
	if (!stale_dst)
		pfsync_half_take(&local->peer[1], dst, is_tcp);
	if (stale_src + stale_dst < 2) {
		local->last_seen = now_ns;
		local->timeout = timeout;
	}
	return stale_src + stale_dst;
}

/* pf_get_wscale: the option counts only on a SYN; its shift is capped. */
static __always_inline __u8 pfsync_seg_wscale(const struct pfsync_tcp_seg *s)
{
	__u8 shift;

	if (!(s->flags & PFSYNC_TH_SYN) || !s->has_wscale)
		return 0;
	shift = s->wscale;
	if (shift > PFSYNC_TCP_MAX_WINSHIFT)
		shift = PFSYNC_TCP_MAX_WINSHIFT;
	return PF_WSCALE_FLAG | shift;
}

/* Window expressed in units of 2^shift, rounded up (pf's "remove scale"). */
static __always_inline __u32 pfsync_unscale_win(__u32 win, __u8 shift)
{
	return (win + (1U << shift) - 1) >> shift;
}

/*
 * pf_create_state for TCP: the initiator's first packet. Unlike pf (which
 * fills mss only for synproxy states) the MSS option of each side's SYN is
 * kept in its peer, for display; nothing depends on it.
 */
static __always_inline void pfsync_tcp_init(struct pfsync_state_value *v,
					    const struct pfsync_tcp_seg *s)
{
	struct pfsync_peer *src = &v->peer[0], *dst = &v->peer[1];
	__u32 win = s->win ? s->win : 1;

	src->seqlo = s->seq;
	src->seqhi = s->seq + s->payload_len + 1;
	src->seqdiff = 0;
	src->wscale = 0;
	src->mss = 0;
	if (s->flags & PFSYNC_TH_SYN) {
		src->seqhi++;
		src->wscale = pfsync_seg_wscale(s);
		src->mss = s->mss;
	}
	if (src->wscale & PF_WSCALE_MASK)
		win = pfsync_unscale_win(win, src->wscale & PF_WSCALE_MASK);
	src->max_win = (__u16)win;
	if (s->flags & PFSYNC_TH_FIN)
		src->seqhi++;
	src->state = TCPS_SYN_SENT;

	dst->seqlo = 0;
	dst->seqhi = 1;
	dst->seqdiff = 0;
	dst->max_win = 1;
	dst->mss = 0;
	dst->wscale = 0;
	dst->state = TCPS_CLOSED;
	v->timeout = PFTM_TCP_FIRST_PACKET;
}

/* pf's timeout class from the two TCP peer levels. */
static __always_inline __u8 pfsync_tcp_timeout_class(const struct pfsync_peer *src,
						     const struct pfsync_peer *dst)
{
	if (src->state >= TCPS_FIN_WAIT_2 && dst->state >= TCPS_FIN_WAIT_2)
		return PFTM_TCP_CLOSED;
	if (src->state >= TCPS_CLOSING && dst->state >= TCPS_CLOSING)
		return PFTM_TCP_FIN_WAIT;
	if (src->state < TCPS_ESTABLISHED || dst->state < TCPS_ESTABLISHED)
		return PFTM_TCP_OPENING;
	if (src->state >= TCPS_CLOSING || dst->state >= TCPS_CLOSING)
		return PFTM_TCP_CLOSING;
	return PFTM_TCP_ESTABLISHED;
}

/* Level changes driven by the flags of an accepted segment. */
static __always_inline void pfsync_tcp_flag_levels(struct pfsync_peer *src, struct pfsync_peer *dst,
						   __u8 flags)
{
	if ((flags & PFSYNC_TH_SYN) && src->state < TCPS_SYN_SENT)
		src->state = TCPS_SYN_SENT;
	if ((flags & PFSYNC_TH_FIN) && src->state < TCPS_CLOSING)
		src->state = TCPS_CLOSING;
	if (flags & PFSYNC_TH_ACK) {
		if (dst->state == TCPS_SYN_SENT)
			dst->state = TCPS_ESTABLISHED;
		else if (dst->state == TCPS_CLOSING)
			dst->state = TCPS_FIN_WAIT_2;
	}
	if (flags & PFSYNC_TH_RST) {
		src->state = TCPS_TIME_WAIT;
		dst->state = TCPS_TIME_WAIT;
	}
}

/* pf_tcp_track_sloppy: levels only, no sequence checks, always passes. */
static __always_inline int pfsync_tcp_track_sloppy(struct pfsync_state_value *v,
						   struct pfsync_peer *src, struct pfsync_peer *dst,
						   __u8 flags)
{
	if ((flags & PFSYNC_TH_SYN) && src->state < TCPS_SYN_SENT)
		src->state = TCPS_SYN_SENT;
	if ((flags & PFSYNC_TH_FIN) && src->state < TCPS_CLOSING)
		src->state = TCPS_CLOSING;
	if (flags & PFSYNC_TH_ACK) {
		if (dst->state == TCPS_SYN_SENT) {
			dst->state = TCPS_ESTABLISHED;
		} else if (dst->state == TCPS_CLOSING) {
			dst->state = TCPS_FIN_WAIT_2;
		} else if (src->state == TCPS_SYN_SENT && dst->state < TCPS_SYN_SENT) {
			/* only one half of the connection is visible here */
			src->state = TCPS_ESTABLISHED;
			dst->state = TCPS_ESTABLISHED;
		} else if (src->state == TCPS_CLOSING && dst->state == TCPS_ESTABLISHED &&
			   dst->seqlo == 0) {
			/* half-seen close: the FIN/ACK+ACK exchange is not visible */
			dst->state = TCPS_CLOSING;
		}
	}
	if (flags & PFSYNC_TH_RST) {
		src->state = TCPS_TIME_WAIT;
		dst->state = TCPS_TIME_WAIT;
	}
	v->timeout = pfsync_tcp_timeout_class(src, dst);
	return PFSYNC_TCP_PASS;
}

/*
 * Values computed from a segment before the window checks; nothing in the
 * state is touched until the segment has been accepted.
 */
struct pfsync_tcp_calc {
	__u32 seq, orig_seq, ack, end, data_end, win;
	__u8 sws, dws; /* window shifts of src and dst for this segment */
	/* first packet from src: values to store on acceptance */
	__u8 first, src_wscale, dst_wscale;
	__u16 dst_max_win, src_mss;
};

/*
 * The first segment seen from this end (src->seqlo == 0): window scale
 * negotiation happens on the SYN|ACK, counting only if both SYNs had it.
 */
static __always_inline void pfsync_tcp_first_from_src(struct pfsync_tcp_calc *c,
						      const struct pfsync_peer *src,
						      const struct pfsync_peer *dst,
						      const struct pfsync_tcp_seg *s)
{
	c->first = 1;
	c->src_wscale = src->wscale;
	c->dst_wscale = dst->wscale;
	c->dst_max_win = dst->max_win;
	c->src_mss = src->mss;
	c->end = c->seq + s->payload_len;
	if (s->flags & PFSYNC_TH_SYN) {
		c->end++;
		c->src_mss = s->mss;
		if (dst->wscale & PF_WSCALE_FLAG) {
			c->src_wscale = pfsync_seg_wscale(s);
			if (c->src_wscale & PF_WSCALE_FLAG) {
				c->sws = c->src_wscale & PF_WSCALE_MASK;
				c->win = pfsync_unscale_win(c->win, c->sws);
				c->dws = dst->wscale & PF_WSCALE_MASK;
			} else {
				/* peer did not agree: undo the scaling of its window */
				__u32 w = (__u32)dst->max_win << (dst->wscale & PF_WSCALE_MASK);

				c->dst_max_win =
				    (__u16)(w < PFSYNC_TCP_MAXWIN ? w : PFSYNC_TCP_MAXWIN);
				c->dst_wscale = 0;
			}
		}
	}
	c->data_end = c->end;
	if (s->flags & PFSYNC_TH_FIN)
		c->end++;
}

/* Store what the first segment from src taught us (on acceptance only). */
static __always_inline void pfsync_tcp_commit_first(const struct pfsync_tcp_calc *c,
						    struct pfsync_peer *src,
						    struct pfsync_peer *dst)
{
	__u32 room;

	src->wscale = c->src_wscale;
	dst->wscale = c->dst_wscale;
	dst->max_win = c->dst_max_win;
	src->mss = c->src_mss;
	src->seqlo = c->orig_seq;
	if (src->state < TCPS_SYN_SENT)
		src->state = TCPS_SYN_SENT;
	/* seqhi may be stale (connection picked up late): slide it */
	room = pfsync_max_u32(1, (__u32)dst->max_win << c->dws);
	if (src->seqhi == 1 || pfsync_seq_geq(c->end + room, src->seqhi))
		src->seqhi = c->end + room;
	if (c->win > src->max_win)
		src->max_win = (__u16)c->win;
}

/* Sequence, window and level updates shared by both acceptance branches. */
static __always_inline void pfsync_tcp_slide(const struct pfsync_tcp_calc *c,
					     struct pfsync_peer *src, struct pfsync_peer *dst)
{
	__u32 scaled_win = c->win << c->sws;

	if (src->max_win < c->win)
		src->max_win = (__u16)c->win;
	pfsync_seqlo_raise(&src->seqlo, c->end);
	pfsync_seqhi_raise(&dst->seqhi, c->ack + scaled_win,
			   c->ack + pfsync_max_u32(scaled_win, 1));
}

/*
 * A RST must hit the sequence exactly (or by one), unless it acknowledges
 * exactly what the peer sent and lies inside the window (RFC 5961 style).
 */
static __always_inline int pfsync_tcp_rst_ok(const struct pfsync_tcp_calc *c, __u8 flags,
					     __u32 src_seqlo, __u32 back_win, __s32 ackskew)
{
	if (!(flags & PFSYNC_TH_RST))
		return 1;
	if (c->orig_seq == src_seqlo || c->orig_seq == src_seqlo + 1 ||
	    c->orig_seq + 1 == src_seqlo)
		return 1;
	return (flags & PFSYNC_TH_ACK) && ackskew == 0 &&
	       pfsync_seq_geq(c->orig_seq, src_seqlo - back_win) &&
	       !pfsync_seq_gt(c->orig_seq, src_seqlo + 1);
}

/*
 * pf's window checks on a segment already prepared in *c, against peers
 * src/dst (the state's own, or copies holding a first segment's lessons).
 * Writes the peers (and v->timeout) only when it returns PFSYNC_TCP_PASS.
 */
static __always_inline int pfsync_tcp_window(struct pfsync_state_value *v, struct pfsync_peer *src,
					     struct pfsync_peer *dst, struct pfsync_tcp_calc *c,
					     __u8 flags)
{
	__u32 src_seqlo = src->seqlo;
	__u32 back_win = (__u32)dst->max_win << c->dws;
	__s32 ackskew;

	if (c->seq == c->end) {
		/* no data: ease sequencing restrictions */
		c->seq = src_seqlo;
		c->data_end = c->end = c->seq;
	}
	ackskew = (__s32)(dst->seqlo - c->ack);
	if (pfsync_seq_geq(src->seqhi, c->data_end) &&
	    pfsync_seq_geq(c->seq, src_seqlo - back_win) && ackskew >= -PFSYNC_MAXACKWINDOW &&
	    (__s64)ackskew <= ((__s64)PFSYNC_MAXACKWINDOW << c->sws) &&
	    pfsync_tcp_rst_ok(c, flags, src_seqlo, back_win, ackskew)) {
		pfsync_tcp_slide(c, src, dst);
		pfsync_tcp_flag_levels(src, dst, flags);
		v->timeout = pfsync_tcp_timeout_class(src, dst);
		return PFSYNC_TCP_PASS;
	}
	/*
	 * Loose acceptance: shotgunned SYNs before the peer answered,
	 * streams picked up mid-way, stray packets after the close.
	 */
	if ((dst->state < TCPS_SYN_SENT || dst->state >= TCPS_FIN_WAIT_2 ||
	     src->state >= TCPS_FIN_WAIT_2) &&
	    pfsync_seq_geq(src->seqhi + PFSYNC_MAXACKWINDOW, c->data_end) &&
	    pfsync_seq_geq(c->seq, src_seqlo - PFSYNC_MAXACKWINDOW)) {
		pfsync_tcp_slide(c, src, dst);
		if ((flags & PFSYNC_TH_FIN) && src->state < TCPS_CLOSING)
			src->state = TCPS_CLOSING;
		if (flags & PFSYNC_TH_RST) {
			src->state = TCPS_TIME_WAIT;
			dst->state = TCPS_TIME_WAIT;
		}
		return PFSYNC_TCP_PASS;
	}
	return PFSYNC_TCP_BAD_WINDOW;
}

/*
 * pf_tcp_track_full. Differences from pf: no sequence modulation or scrub,
 * and a segment that fails every check leaves the state exactly as it was
 * (pf resets a half-open src to re-learn after sending a RST, which we never
 * send). pf also does not refresh the expiry on the loose branch; the
 * caller owns last_seen and may check v->timeout.
 */
static __always_inline int pfsync_tcp_track_full(struct pfsync_state_value *v,
						 struct pfsync_peer *src, struct pfsync_peer *dst,
						 const struct pfsync_tcp_seg *s)
{
	struct pfsync_tcp_calc c = {};
	int r;

	c.win = s->win;
	c.orig_seq = c.seq = s->seq;
	if (src->wscale && dst->wscale && !(s->flags & PFSYNC_TH_SYN)) {
		c.sws = src->wscale & PF_WSCALE_MASK;
		c.dws = dst->wscale & PF_WSCALE_MASK;
	}
	if (src->seqlo == 0) {
		pfsync_tcp_first_from_src(&c, src, dst, s);
	} else {
		c.end = c.seq + s->payload_len;
		if (s->flags & PFSYNC_TH_SYN) {
			c.end++;
			/*
			 * A repeated SYN: its window counts bytes, while max_win
			 * counts in units of the scale src offered (unscaled at
			 * creation). Taken raw it would inflate max_win 2^wscale
			 * times, and the peer's SYN|ACK could then fall outside
			 * the window computed from it.
			 */
			if (src->wscale & PF_WSCALE_FLAG)
				c.win = pfsync_unscale_win(c.win, src->wscale & PF_WSCALE_MASK);
		}
		c.data_end = c.end;
		if (s->flags & PFSYNC_TH_FIN)
			c.end++;
	}
	c.ack = s->ack;
	if (!(s->flags & PFSYNC_TH_ACK))
		c.ack = dst->seqlo; /* no ACK: let it pass the ackskew check */
	else if ((c.ack == 0 && (s->flags & PFSYNC_TH_RST)) || dst->state < TCPS_SYN_SENT)
		c.ack = dst->seqlo; /* stacks that send ACK with nothing to ack */

	/*
	 * The checks use the state as it would be after learning from a first
	 * segment: that case works on copies, so that a rejected segment
	 * changes nothing. Any later segment (the hot path) is checked in
	 * place, as the checks write nothing before accepting.
	 */
	if (c.first) {
		struct pfsync_peer nsrc = *src, ndst = *dst;

		pfsync_tcp_commit_first(&c, &nsrc, &ndst);
		r = pfsync_tcp_window(v, &nsrc, &ndst, &c, s->flags);
		if (r == PFSYNC_TCP_PASS) {
			*src = nsrc;
			*dst = ndst;
		}
		return r;
	}
	return pfsync_tcp_window(v, src, dst, &c, s->flags);
}

/*
 * pfsync_tcp_track_full for the segment nearly every packet is: ACK set, no
 * SYN, FIN or RST, both peers ESTABLISHED, src not on its first segment
 * (seqlo != 0). The same computation with the branches that cannot be
 * taken there left out: the ack is the segment's, no window is unscaled,
 * the flags change no level, the timeout class stays ESTABLISHED and the
 * loose branch cannot accept (it needs a peer below SYN_SENT or at
 * FIN_WAIT_2). Callers check those conditions (pfsync_tcp_is_plain_est).
 */
static __always_inline int pfsync_tcp_is_plain_est(const struct pfsync_peer *src,
						   const struct pfsync_peer *dst,
						   const struct pfsync_tcp_seg *s)
{
	return (s->flags & (PFSYNC_TH_SYN | PFSYNC_TH_FIN | PFSYNC_TH_RST | PFSYNC_TH_ACK)) ==
		   PFSYNC_TH_ACK &&
	       src->state == TCPS_ESTABLISHED && dst->state == TCPS_ESTABLISHED && src->seqlo != 0;
}

static __always_inline int pfsync_tcp_track_est(struct pfsync_state_value *v,
						struct pfsync_peer *src, struct pfsync_peer *dst,
						const struct pfsync_tcp_seg *s)
{
	struct pfsync_tcp_calc c;
	__u32 src_seqlo = src->seqlo;
	__s32 ackskew;

	c.sws = c.dws = 0;
	if (src->wscale && dst->wscale) {
		c.sws = src->wscale & PF_WSCALE_MASK;
		c.dws = dst->wscale & PF_WSCALE_MASK;
	}
	c.win = s->win;
	c.ack = s->ack;
	c.seq = s->seq;
	c.end = c.seq + s->payload_len;
	if (c.seq == c.end)
		c.seq = c.end = src_seqlo; /* no data: ease sequencing restrictions */
	ackskew = (__s32)(dst->seqlo - c.ack);
	if (!pfsync_seq_geq(src->seqhi, c.end) ||
	    !pfsync_seq_geq(c.seq, src_seqlo - ((__u32)dst->max_win << c.dws)) ||
	    ackskew < -PFSYNC_MAXACKWINDOW ||
	    (__s64)ackskew > ((__s64)PFSYNC_MAXACKWINDOW << c.sws))
		return PFSYNC_TCP_BAD_WINDOW;
	pfsync_tcp_slide(&c, src, dst);
	v->timeout = PFTM_TCP_ESTABLISHED;
	return PFSYNC_TCP_PASS;
}

/*
 * A later packet of a TCP state (pf_test_state): from_initiator selects
 * which peer is the packet's source; sloppy = pf's `keep state (sloppy)`.
 */
static __always_inline int pfsync_tcp_track(struct pfsync_state_value *v, int from_initiator,
					    const struct pfsync_tcp_seg *s, int sloppy)
{
	struct pfsync_peer *src = from_initiator ? &v->peer[0] : &v->peer[1];
	struct pfsync_peer *dst = from_initiator ? &v->peer[1] : &v->peer[0];

	if (!sloppy && pfsync_tcp_is_plain_est(src, dst, s))
		return pfsync_tcp_track_est(v, src, dst, s);
	if ((s->flags & (PFSYNC_TH_SYN | PFSYNC_TH_ACK)) == PFSYNC_TH_SYN) {
		if (src->state >= TCPS_FIN_WAIT_2 && dst->state >= TCPS_FIN_WAIT_2) {
			v->timeout = PFTM_PURGE;
			return PFSYNC_TCP_REUSE;
		}
		/* pf answers with a challenge ACK (not sent here) and drops */
		if (src->state >= TCPS_ESTABLISHED && dst->state >= TCPS_ESTABLISHED)
			return PFSYNC_TCP_BAD_WINDOW;
	}
	if (sloppy)
		return pfsync_tcp_track_sloppy(v, src, dst, s->flags);
	return pfsync_tcp_track_full(v, src, dst, s);
}

/* ---- UDP, ICMP and other protocols -------------------------------------- */

static __always_inline int pfsync_proto_is_icmp(__u8 proto)
{
	return proto == PFSYNC_IPPROTO_ICMP || proto == PFSYNC_IPPROTO_ICMPV6;
}

/* pf_create_state for non-TCP protocols. */
static __always_inline void pfsync_other_init(struct pfsync_state_value *v, __u8 proto)
{
	struct pfsync_peer *src = &v->peer[0], *dst = &v->peer[1];

	src->seqlo = src->seqhi = src->seqdiff = 0;
	dst->seqlo = dst->seqhi = dst->seqdiff = 0;
	src->max_win = dst->max_win = 0;
	src->mss = dst->mss = 0;
	src->wscale = dst->wscale = 0;
	if (pfsync_proto_is_icmp(proto)) {
		/* pf keeps no levels for ICMP states */
		src->state = dst->state = 0;
		v->timeout = PFTM_ICMP_FIRST_PACKET;
		return;
	}
	src->state = PFUDPS_SINGLE;
	dst->state = PFUDPS_NO_TRAFFIC;
	v->timeout = proto == PFSYNC_IPPROTO_UDP ? PFTM_UDP_FIRST_PACKET : PFTM_OTHER_FIRST_PACKET;
}

/* A later packet: levels go SINGLE then MULTIPLE once both sides spoke. */
static __always_inline void pfsync_other_track(struct pfsync_state_value *v, __u8 proto,
					       int from_initiator)
{
	struct pfsync_peer *src = from_initiator ? &v->peer[0] : &v->peer[1];
	struct pfsync_peer *dst = from_initiator ? &v->peer[1] : &v->peer[0];
	int udp = proto == PFSYNC_IPPROTO_UDP;

	if (pfsync_proto_is_icmp(proto)) {
		/* pf_test_state_icmp: any later echo/reply shortens the timeout */
		v->timeout = PFTM_ICMP_ERROR_REPLY;
		return;
	}
	if (src->state < PFUDPS_SINGLE)
		src->state = PFUDPS_SINGLE;
	if (dst->state == PFUDPS_SINGLE)
		dst->state = PFUDPS_MULTIPLE;
	if (src->state == PFUDPS_MULTIPLE && dst->state == PFUDPS_MULTIPLE)
		v->timeout = udp ? PFTM_UDP_MULTIPLE : PFTM_OTHER_MULTIPLE;
	else
		v->timeout = udp ? PFTM_UDP_SINGLE : PFTM_OTHER_SINGLE;
}

/* ---- rules -------------------------------------------------------------- */

struct pfsync_rule_pkt {
	__u32 saddr[4], daddr[4]; /* network order */
	__u16 sport, dport;	  /* network order */
	__u32 ifindex;
	__u8 proto, af, dir /* PF_IN/PF_OUT */, has_ports /* 0: non-first fragment */;
};

/* addr & mask == net, word by word (all in network order). */
static __always_inline int pfsync_addr_match(const __u32 *net, const __u32 *mask, const __u32 *addr)
{
	return (addr[0] & mask[0]) == net[0] && (addr[1] & mask[1]) == net[1] &&
	       (addr[2] & mask[2]) == net[2] && (addr[3] & mask[3]) == net[3];
}

/* 1 when every criterion the rule sets matches the packet (pf_test_rule). */
static __always_inline int pfsync_rule_match(const struct pfsync_rule *r,
					     const struct pfsync_rule_pkt *p)
{
	__u32 port_flags = r->rflags & (PFSYNC_RF_SRC_PORT | PFSYNC_RF_DST_PORT);

	if (r->dir != PF_INOUT && r->dir != p->dir)
		return 0;
	if (r->ifindex && r->ifindex != p->ifindex)
		return 0;
	if (r->af && r->af != p->af)
		return 0;
	if ((r->rflags & PFSYNC_RF_PROTO) && r->proto != p->proto)
		return 0;
	if (r->src_plen && !pfsync_addr_match(r->src_addr, r->src_mask, p->saddr))
		return 0;
	if (r->dst_plen && !pfsync_addr_match(r->dst_addr, r->dst_mask, p->daddr))
		return 0;
	if (port_flags) {
		/* ports exist only for TCP/UDP, and not in later fragments */
		if (!p->has_ports)
			return 0;
		if (p->proto != PFSYNC_IPPROTO_TCP && p->proto != PFSYNC_IPPROTO_UDP)
			return 0;
		if ((r->rflags & PFSYNC_RF_SRC_PORT) && r->src_port != p->sport)
			return 0;
		if ((r->rflags & PFSYNC_RF_DST_PORT) && r->dst_port != p->dport)
			return 0;
	}
	return 1;
}

/*
 * One step of pf's evaluation, for idx = 0..nrules-1 with *match_idx
 * starting at -1: the last matching rule wins unless one is quick.
 * Returns 1 when evaluation must stop (a quick rule matched). A match rule
 * never wins: it decides nothing (see pfsync_rule_step_nat for its nat).
 */
static __always_inline int pfsync_rule_step(const struct pfsync_rule *r, __u32 idx,
					    const struct pfsync_rule_pkt *p, __s32 *match_idx)
{
	if (!pfsync_rule_match(r, p))
		return 0;
	if (r->action == PFSYNC_RULE_MATCH)
		return 0;
	*match_idx = (__s32)idx;
	return (r->rflags & PFSYNC_RF_QUICK) ? 1 : 0;
}

/*
 * pfsync_rule_step, and *nat_match_idx (starting at -1) follows the last
 * matching match rule that translates. pf applies a match rule's nat-to as
 * the evaluation passes it; the deciding rule's own translation, if it has
 * one, replaces it: see pfsync_rule_nat_source.
 */
static __always_inline int pfsync_rule_step_nat(const struct pfsync_rule *r, __u32 idx,
						const struct pfsync_rule_pkt *p, __s32 *match_idx,
						__s32 *nat_match_idx)
{
	if (r->action == PFSYNC_RULE_MATCH && r->nat.type != PFSYNC_NAT_NONE &&
	    pfsync_rule_match(r, p)) {
		*nat_match_idx = (__s32)idx;
		return 0;
	}
	return pfsync_rule_step(r, idx, p, match_idx);
}

/*
 * The rule whose translation a new state takes: the deciding rule's when
 * it has one, else the last match rule's; -1 for none (or a block).
 */
static __always_inline __s32 pfsync_rule_nat_source(const struct pfsync_rule *decider,
						    __s32 match_idx, __s32 nat_match_idx)
{
	if (match_idx < 0 || !decider || decider->action != PFSYNC_RULE_PASS)
		return match_idx < 0 ? nat_match_idx : -1;
	return decider->nat.type != PFSYNC_NAT_NONE ? match_idx : nat_match_idx;
}

/* ---- nat-to port allocation (issue 15) ----------------------------------- */

/*
 * Where a nat-to state's translated source port comes from:
 * - static-port: the original port, nothing else (a taken tuple is
 *   nat_exhausted, as pf gives up too);
 * - else the rule's `port LOW:HIGH`, or pf's 50001-65535. A free original
 *   port is not kept: pf does not either, and a port picked from the range
 *   hides the inside host's port choice.
 * With parts > 1 (two firewalls both creating states: defer on) the range
 * is cut into `parts` slices and this host uses slice hostid % parts, so
 * two hosts with different slices never pick one port for two connections
 * in the instant before each learns of the other's state. A range too
 * small to cut (fewer ports than parts) is used whole.
 * A tuple is never handed out twice all the same: the caller inserts each
 * candidate as the state's wire key with "create only", and the states map
 * holds the peers' states under their wire keys too.
 */
#define PFSYNC_NAT_TRIES 64 /* candidates tried before nat_exhausted */

struct pfsync_nat_ports {
	__u32 low;   /* first port of this host's part (host order) */
	__u32 count; /* ports in it, >= 1 */
};

static __always_inline void pfsync_nat_port_range(const struct pfsync_rule_nat *n, __u16 orig_port,
						  __u32 hostid, __u32 parts,
						  struct pfsync_nat_ports *out)
{
	__u32 low = PFSYNC_NAT_PORT_LOW, high = PFSYNC_NAT_PORT_HIGH, slice;

	if (n->nflags & PFSYNC_NATF_STATIC_PORT) {
		out->low = orig_port;
		out->count = 1;
		return;
	}
	if (n->nflags & PFSYNC_NATF_PORT) {
		low = n->port_low;
		high = n->port_high >= n->port_low ? n->port_high : n->port_low;
	}
	out->low = low;
	out->count = high - low + 1;
	if (parts < 2 || out->count < parts)
		return;
	slice = out->count / parts;
	out->low = low + (hostid % parts) * slice;
	/* the last slice takes the remainder */
	out->count = hostid % parts == parts - 1 ? high - out->low + 1 : slice;
}

/* The i-th candidate port (host order) starting at offset start within the part. */
static __always_inline __u16 pfsync_nat_port_candidate(const struct pfsync_nat_ports *r,
						       __u32 start, __u32 i)
{
	__u32 count = r->count ? r->count : 1;

	return (__u16)(r->low + (start + i) % count);
}

#endif /* PFSYNC_LOGIC_H */
