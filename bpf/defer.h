/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Stage 5, defer: the first packet of a new state held in pfsync_defer
 * until a peer acknowledged its insert, and the released frame's mark.
 */
#ifndef PFSYNC_BPF_DEFER_H
#define PFSYNC_BPF_DEFER_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "pfsync_common.h"
#include "maps.h"
#include "parse.h"
#include "events.h"
#include "account.h"

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

#endif /* PFSYNC_BPF_DEFER_H */
