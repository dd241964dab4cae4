/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Accounting: process() runs a packet through parse, track / rules /
 * creation and counts its one outcome per program; the XDP interface
 * marks by which tc egress leaves alone a packet XDP already tracked.
 */
#ifndef PFSYNC_BPF_ACCOUNT_H
#define PFSYNC_BPF_ACCOUNT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "pfsync_common.h"
#include "maps.h"
#include "parse.h"
#include "state.h"
#include "track.h"

/* XDP: note that this interface's packets are tracked at ingress (at jiffy jif). */
static __always_inline void xdp_if_mark(__u32 ifindex, __u64 jif)
{
	__u32 slot = ifindex % XDP_IF_SLOTS;
	struct pfx_xdp_if *e = bpf_map_lookup_elem(&pfsync_xdp_ifs, &slot);

	if (e && (e->ifindex != ifindex || e->jiffies != (__u32)jif)) {
		e->ifindex = ifindex;
		e->jiffies = (__u32)jif;
	}
}

/* tc egress: did the packet come in through an interface XDP just ran on? */
static __always_inline int xdp_if_saw(__u32 ingress_ifindex, __u64 jif)
{
	__u32 slot = ingress_ifindex % XDP_IF_SLOTS;
	struct pfx_xdp_if *e;

	if (!ingress_ifindex)
		return 0; /* locally originated */
	e = bpf_map_lookup_elem(&pfsync_xdp_ifs, &slot);
	return e && e->ifindex == ingress_ifindex && (__u32)jif - e->jiffies <= XDP_IF_FRESH_JIF;
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
 * jif is the packet's jiffies64, read once by the program: the state clock
 * and the XDP interface marks share it. The config is looked up here once
 * and carried in the env (rules, maxupd, defer, fast path all read it).
 */
static __always_inline int process(struct parse_ctx *pc, struct pkt *pk, __u32 ifindex, __u8 dir,
				   __u8 seen_by_xdp, int prog, __u64 jif)
{
	struct pfsync_counters *c;
	struct pfsync_config *cfg;
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
	cfg = config_get();
	res = parse_frame(pc, pk);
	if (res == PARSE_NOT_IP) {
		out = PFSYNC_OUT_NOT_IP;
	} else if (res == PARSE_BAD) {
		c->bad_packet++;
		out = PFSYNC_OUT_BAD;
	} else if (res == PARSE_STATELESS) {
		out = PFSYNC_OUT_STATELESS;
	} else if (!pcpu || !cfg) {
		/* cannot happen (single-entry arrays); checked once here so
		 * that the verifier carries a plain pointer, not a maybe-NULL */
		out = PFSYNC_OUT_INTERNAL;
	} else {
		env.c = c;
		env.pcpu = pcpu;
		env.cfg = cfg;
		env.now = pfx_now(pcpu, jif);
		env.ifindex = ifindex;
		env.dir = dir;
		env.defer = 0;
		env.seen_by_xdp = seen_by_xdp;
		env.xdp = pc->xdp;
		out = handle_ip(&env, pk);
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

#endif /* PFSYNC_BPF_ACCOUNT_H */
