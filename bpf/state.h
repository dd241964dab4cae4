/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Stage 4, state creation: the per-packet environment, the state clock,
 * the creator identity and state ids, the insert of a new state under a
 * given key and handle_new, which applies the rules' verdict to a packet
 * without a usable state.
 */
#ifndef PFSYNC_BPF_STATE_H
#define PFSYNC_BPF_STATE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "pfsync_common.h"
#include "pfsync_logic.h"
#include "maps.h"
#include "parse.h"
#include "events.h"
#include "rules.h"

#ifndef EEXIST
#define EEXIST 17
#endif

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

/* The new state's entry: under the packet's key, or NAT's two keys (nat.h). */
static __always_inline long insert_state(struct pkt *pk, int src_side,
					 struct pfsync_state_value *nv, int prog)
{
	__u32 kind = pk->key.proto | ((__u32)pk->icmp_kind << 8);
	int rc;

	/*
	 * prog is a constant: XDP links only rdr-to's insert, tc only nat-to's,
	 * whose port search would take XDP's call chain past 512 stack bytes.
	 * Called whether or not a rule translates: the rules are looked at in
	 * there, so that this program does not branch on them. A translation
	 * turns pk->key into the state's wire key.
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

/*
 * Inserts the state of `pk` under `key` (the table's normalised key; NAT
 * will pass its translated one here, so the key is not taken from pk).
 * key is pk->key: a translated state's insert makes it the wire key.
 */
static __always_inline int create_state(struct pfx_env *env, struct pkt *pk,
					const struct pfsync_key *key, int src_side,
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
		env->c->nat_exhausted++; /* every candidate tuple in use, or (IF) without address */
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
	emit_event(env->c, PFSYNC_EV_INSERT, 0, key, nv->id, nv->creatorid, nv->flags);
	return PFSYNC_OUT_PASSED;
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
	return create_state(env, pk, &pk->key, src_side, &vd, prog);
}

#endif /* PFSYNC_BPF_STATE_H */
