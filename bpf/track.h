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
	const struct pfsync_config *cfg = env->cfg;
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
	maxupd = cfg->maxupd ? cfg->maxupd : DEFAULT_MAXUPD;
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
	int xact = fastpath_forward(env->xdp, env->c, env->cfg, v, pk->key.proto, echo,
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

/* The packet's outcome (enum pfsync_outcome). */
static __always_inline int handle_ip(struct pfx_env *env, struct pkt *pk)
{
	struct verdict vd;
	int src_side, attempt;

	if (pk->later_frag) {
		env->c->fragments++;
		evaluate_rules(env->cfg, pk, 0, env->dir, env->ifindex, &vd);
		if (vd.block) {
			env->c->blocked_rule++;
			return PFSYNC_OUT_BLOCKED;
		}
		return PFSYNC_OUT_PASSED;
	}
	if (pk->icmp_kind == ICMPK_ERROR && related_state_exists(pk))
		return PFSYNC_OUT_PASSED;
	src_side = pfsync_key_normalize(&pk->key);
	for (attempt = 0; attempt < 2; attempt++) {
		struct pfsync_state_value *v = bpf_map_lookup_elem(&pfsync_states, &pk->key);
		int out;

		if (v && v->timeout != PFTM_PURGE) {
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
		out = handle_new(env, pk, src_side);
		if (out != ACT_RETRY)
			return out;
	}
	/* two inserts lost to other CPUs and no state found in between */
	return PFSYNC_OUT_RACE;
}

#endif /* PFSYNC_BPF_TRACK_H */
