/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Change records: insert / update / delete records into the pfsync_events
 * ringbuf for the agent, and the in-band report of records lost while it
 * was full. Every stage that changes a state ends here.
 */
#ifndef PFSYNC_BPF_EVENTS_H
#define PFSYNC_BPF_EVENTS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "pfsync_common.h"
#include "maps.h"

/* Records lost earlier are reported in-band as soon as space returns. */
static __always_inline void report_lost(struct pfsync_globals *g)
{
	struct pfsync_event *rec;

	if (!g || !g->lost_pending)
		return;
	rec = bpf_ringbuf_reserve(&pfsync_events, sizeof(*rec), 0);
	if (!rec)
		return;
	__builtin_memset(rec, 0, sizeof(*rec));
	rec->type = PFSYNC_EV_LOST;
	rec->lost = (__u32)__sync_lock_test_and_set(&g->lost_pending, 0);
	rec->id = bpf_ktime_get_boot_ns(); /* every loss counted here came before */
	bpf_ringbuf_submit(rec, 0);
}

static __always_inline void emit_event(struct pfsync_counters *c, __u8 type, __u8 evflags,
				       const struct pfsync_key *k, __u64 id, __u32 creatorid,
				       __u32 flags)
{
	struct pfsync_globals *g = globals_get();
	struct pfsync_event *rec;

	report_lost(g);
	rec = bpf_ringbuf_reserve(&pfsync_events, sizeof(*rec), 0);
	if (!rec) {
		if (c)
			c->ringbuf_lost++;
		if (g)
			__sync_fetch_and_add(&g->lost_pending, 1);
		return;
	}
	rec->type = type;
	rec->evflags = evflags;
	rec->pad = 0;
	rec->lost = 0;
	rec->id = id;
	rec->creatorid = creatorid;
	rec->state_flags_local = flags;
	__builtin_memcpy(&rec->key, k, sizeof(*k));
	rec->pad2 = 0;
	bpf_ringbuf_submit(rec, 0);
}

#endif /* PFSYNC_BPF_EVENTS_H */
