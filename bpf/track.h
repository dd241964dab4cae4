/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Stage 2, the established path: state lookup, TCP window and pseudo-state
 * tracking, counters, maxupd update records, the fast-path hook, purge on
 * port reuse; handle_ip chooses between this and the rules / creation
 * stages (and retries a lost insert race as a hit).
 */
#ifndef PFSYNC_BPF_TRACK_H
#define PFSYNC_BPF_TRACK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "pfsync_common.h"
#include "pfsync_logic.h"
#include "maps.h"
#include "parse.h"
#include "events.h"
#include "rules.h"
#include "state.h"
#include "fastpath.h"

#define DEFAULT_MAXUPD 128

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

/*
 * The rewrite state v asks of this packet here (nat_plan). Only
 * XDP with the wire key (the destination) and tc with the stack key (the
 * source) rewrite anything: the rest, untranslated states' packets first
 * of all, skip the plan.
 */
static __always_inline void nat_plan_here(struct pfx_env *env, const struct pkt *pk, int src_side,
					  const struct pfsync_state_value *v)
{
	int at_xdp = env->xdp ? NAT_AT_XDP : 0, via_stack = env->pcpu->rw.via_stack;

	if (v->nat.type == PFSYNC_NAT_NONE || !at_xdp == !via_stack)
		return;
	nat_plan(&pk->key, v, src_side, at_xdp | via_stack, &env->pcpu->rw);
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

/*
 * The fast path's hook: PFSYNC_OUT_FASTPATH when redirected, else
 * PFSYNC_OUT_PASSED. A translated packet is translated here when it takes
 * the fast path, since tc egress never sees it: rdr-to's destination (and
 * nat-to's reply's) was planned already and is what the route is looked up
 * for; nat-to's source (and rdr-to's reply's), tc egress's part, is planned
 * here and dropped again when the packet goes up the stack instead.
 */
static __always_inline int fastpath_verdict(struct pfx_env *env, const struct pkt *pk, int src_side,
					    const struct pfsync_state_value *v)
{
	int echo = pk->icmp_kind == ICMPK_ECHO_REQ || pk->icmp_kind == ICMPK_ECHO_REPLY;
	struct nat_rewrite *rw = &env->pcpu->rw;
	int nat = v->nat.type != PFSYNC_NAT_NONE, xact;

	if (!fastpath_on(config_get()))
		return PFSYNC_OUT_PASSED; /* before planning tc's part, which is then tc's */
	if (nat && rw->via_stack)
		nat_plan(&pk->key, v, src_side, NAT_VIA_STACK, rw);
	xact = fastpath_forward(env->xdp, env->c, v, pk->key.proto, echo, src_side != v->init_side,
				rw->op == NAT_OP_DST ? rw->addr : NULL);
	if (xact != XDP_REDIRECT) {
		if (rw->op == NAT_OP_SRC)
			rw->op = NAT_OP_NONE; /* tc egress's, on the stack's path */
		return PFSYNC_OUT_PASSED;
	}
	if (rw->op != NAT_OP_NONE) {
		nat_rewrite_offsets(rw, pk);
		if (pfsync_nat_apply_xdp(env->xdp, rw)) {
			env->c->bad_packet++;
			return PFSYNC_OUT_BAD;
		}
	}
	return PFSYNC_OUT_FASTPATH;
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
	if (pk->icmp_kind == ICMPK_ERROR && pk->has_inner &&
	    pfsync_nat_icmp_related(env->xdp ? NAT_AT_XDP : 0))
		return PFSYNC_OUT_PASSED;
	src_side = pfsync_key_normalize(&pk->key);
	v = bpf_map_lookup_elem(&pfsync_states, &pk->key);
	if (!v && nat_alias(env->pcpu, &pk->key)) {
		/* a translated state's stack key: pk->key is its wire key now */
		int found;

		v = bpf_map_lookup_elem(&pfsync_states, &pk->key);
		found = nat_via_stack(env->pcpu, &pk->key, v, src_side);
		if (found < 0) {
			v = NULL; /* not this packet's state: the stack key is new */
		} else {
			/* in the map value, where the verifier does not split paths on it */
			env->pcpu->rw.via_stack = found & NAT_VIA_STACK;
			src_side = found & 1;
		}
	}
	for (attempt = 0; attempt < 2; attempt++) {
		int out;

		if (attempt)
			v = bpf_map_lookup_elem(&pfsync_states, &pk->key);
		if (v && v->timeout != PFTM_PURGE) {
			nat_plan_here(env, pk, src_side, v);
			if (env->seen_by_xdp)
				return PFSYNC_OUT_PASSED;
			out = state_hit(env, pk, src_side, v);
			if (out == PFSYNC_OUT_PASSED && env->xdp)
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

#endif /* PFSYNC_BPF_TRACK_H */
