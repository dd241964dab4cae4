// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * pfsync-xdp datapath: XDP ingress and tc egress programs sharing a pinned
 * pf-style connection-state table, a small ruleset, a change-record ringbuf
 * and two control programs (sweep, unqueue) run with BPF_PROG_RUN. This file
 * holds only the programs; the stages are headers of inline functions, all
 * built into this one object (program and map names are what iproute2 and
 * lib/pfsync_loader.c look for).
 *
 * A packet's way (pfsync_xdp / pfsync_tc below):
 *   account.h  process(): counts it seen, then
 *   parse.h    parse_frame(): struct pkt (key, TCP segment, ICMP kind)
 *   track.h    handle_ip(): state lookup; a hit is tracked there (windows,
 *              counters, maxupd records, fastpath.h's redirect at XDP),
 *              a miss or a reused TCP tuple goes on to
 *   rules.h    evaluate_rules(): a struct verdict, applied by
 *   state.h    handle_new() / create_state(): the new state under its key
 *   events.h   emit_event(): the change record for the agent (ringbuf)
 *   account.h  count_outcome(): one outcome per packet, pass or drop
 *   defer.h    a new state's first packet held for the agent (optional)
 * maps.h has the maps all of them use; release.h and control.h serve the
 * release program on lo and the sweep program.
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
#include "maps.h"
#include "parse.h"
#include "events.h"
#include "rules.h"
#include "state.h"
#include "track.h"
#include "account.h"
#include "defer.h"
#include "release.h"
#include "control.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int pfsync_xdp(struct xdp_md *ctx)
{
	struct parse_ctx pc;
	struct pkt pk;
	__u64 jif = bpf_jiffies64();
	__u32 ifindex;
	int act, group;

	/* first thing: checked after process(), it costs the verifier a third more */
	if (defer_released(ctx)) {
		xdp_if_mark(ctx->ingress_ifindex, jif);
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
	xdp_if_mark(ifindex, jif);
	act = process(&pc, &pk, ifindex, PF_IN, 0, PFSYNC_PROG_XDP, jif);
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
	__u64 jif = bpf_jiffies64();
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
	act = process(&pc, &pk, skb->ifindex, PF_OUT, xdp_if_saw(skb->ingress_ifindex, jif),
		      PFSYNC_PROG_TC, jif);
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
