/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Control programs' work (run by the agent with BPF_PROG_RUN; the
 * programs are in pfsync_xdp.bpf.c): the sweep of expired or flushed
 * states, whole table or a batch of keys.
 */
#ifndef PFSYNC_BPF_CONTROL_H
#define PFSYNC_BPF_CONTROL_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "pfsync_common.h"
#include "pfsync_logic.h"
#include "maps.h"
#include "events.h"

struct sweep_walk {
	struct pfsync_config cfg;
	__u64 now;
	__u32 sweep_flags;
	__u32 creatorid;
	__u32 states_count;
	__u32 seen;
	__u32 deleted;
};

static __always_inline int sweep_due(const struct sweep_walk *w, const struct pfsync_state_value *v)
{
	if (w->sweep_flags & PFSYNC_SWEEP_FLUSH)
		return !(w->sweep_flags & PFSYNC_SWEEP_CREATOR) || v->creatorid == w->creatorid;
	return pfsync_state_expires_ns(v, &w->cfg, w->states_count) <= w->now;
}

struct bpf_map;

static __always_inline void sweep_entry(struct pfsync_key *k, struct pfsync_state_value *v,
					struct sweep_walk *w)
{
	struct pfsync_key key;
	__u64 id;
	__u32 creatorid, flags;

	if (!sweep_due(w, v))
		return;
	/* copy before deleting: a preallocated element is recycled at once */
	__builtin_memcpy(&key, k, sizeof(key));
	id = v->id;
	creatorid = v->creatorid;
	flags = v->flags;
	if (v->nat.type != PFSYNC_NAT_NONE)
		nat_forget(&key, &v->nat.stack_key);
	if (bpf_map_delete_elem(&pfsync_states, &key))
		return;
	w->deleted++;
	if (!(w->sweep_flags & PFSYNC_SWEEP_QUIET) && !(flags & PFSYNC_SF_NOSYNC)) {
		__u32 zero = 0;

		emit_event(bpf_map_lookup_elem(&pfsync_counters, &zero), PFSYNC_EV_DELETE, 0, &key,
			   id, creatorid, flags);
	}
}

static long sweep_one(struct bpf_map *map, struct pfsync_key *k, struct pfsync_state_value *v,
		      struct sweep_walk *w)
{
	(void)map;
	w->seen++;
	sweep_entry(k, v, w);
	return 0;
}

/*
 * One key handed over by the agent's pass: judged on its live value.
 * Global, so that the verifier checks it once: as a static function it was
 * checked again at each of the PFSYNC_SWEEP_BATCH call sites, which 6.1's
 * verifier gave up on (over a million instructions).
 */
__noinline int pfsync_sweep_key(struct pfsync_key *key, struct sweep_walk *w)
{
	struct pfsync_state_value *v;
	struct pfsync_key k;

	if (!key || !w)
		return 0;
	/* on the stack: 6.1 takes no argument memory as a map key */
	__builtin_memcpy(&k, key, sizeof(k));
	v = bpf_map_lookup_elem(&pfsync_states, &k);
	if (!v)
		return 0;
	w->seen++;
	sweep_entry(&k, v, w);
	return 0;
}

static __always_inline void sweep_keys(struct pfsync_sweep_args *args, struct sweep_walk *w)
{
	__u32 count = args->count;
	__u32 i;

	/* unrolled: ctx may only be read at constant offsets */
#pragma unroll
	for (i = 0; i < PFSYNC_SWEEP_BATCH; i++) {
		struct pfsync_key key;

		if (i >= count)
			break;
		__builtin_memcpy(&key, &args->keys[i], sizeof(key));
		pfsync_sweep_key(&key, w);
	}
}

#endif /* PFSYNC_BPF_CONTROL_H */
