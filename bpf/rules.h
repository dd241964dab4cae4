/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Stage 3 (no usable state), rules: pf_test_rule over the active bank of
 * pfsync_rules. The stage's whole answer is a struct verdict (the deciding
 * rule, its flags, block, keep state), which the state stage acts on.
 */
#ifndef PFSYNC_BPF_RULES_H
#define PFSYNC_BPF_RULES_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "pfsync_common.h"
#include "pfsync_logic.h"
#include "maps.h"
#include "parse.h"

#define RULE_NONE 0xffffffffU /* state created without a rule (default pass) */

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

/*
 * pf_test_rule over the active bank; nrules == 0 means pass all with state.
 * pcpu_rw (NULL: not wanted) gets the deciding rule and the last match rule
 * with a translation, for nat.h.
 */
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
	/*
	 * Handed to nat.h through the per-CPU scratch, without a branch here:
	 * a branch on it doubled the verifier's walk of state creation.
	 */
	if (pcpu_rw) {
		pcpu_rw->decider = w.match;
		pcpu_rw->nat_match = w.nat_match;
	}
	vd->keep_state = 0; /* pf's default rule keeps no state */
	if (w.match < 0)
		return;
	idx = w.base + ((__u32)w.match & (PFSYNC_RULES_MAX - 1));
	r = bpf_map_lookup_elem(&pfsync_rules, &idx);
	if (!r)
		return;
	vd->rule = (__u32)w.match;
	vd->rflags = r->rflags;
	vd->block = r->action == PFSYNC_RULE_BLOCK;
	vd->keep_state = !vd->block && (r->rflags & PFSYNC_RF_KEEP_STATE);
}

#endif /* PFSYNC_BPF_RULES_H */
