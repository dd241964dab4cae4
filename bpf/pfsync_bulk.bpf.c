// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * pfsync-xdp agent batch programs (include/pfsync_bulk.h): states from
 * peers go into the states map, and queued states are unqueued and read
 * for sending, a batch per BPF_PROG_RUN. Kept apart from the datapath
 * object: the agent loads it after the datapath, replacing pfsync_states
 * below with the pinned map, and goes one bpf() call per state when it
 * cannot.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "pfsync_bulk.h"
#include "pfsync_common.h"
#include "pfsync_logic.h"

/* stands in for the pinned map (bpf_map__reuse_fd before loading) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct pfsync_key);
	__type(value, struct pfsync_state_value);
} pfsync_states SEC(".maps");

/* stands in for pfsync_nat_keys (stack key -> wire key), reused the same way */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pfsync_key);
	__type(value, struct pfsync_key);
} pfsync_nat_keys SEC(".maps");

/*
 * A translated state is found from its stack key too. The alias goes in
 * after the state: a packet seeing the alias always finds the state. If
 * the alias cannot be stored the state goes again (no half-installed NAT).
 */
static __always_inline long import_one(struct pfsync_import_entry *e)
{
	long rc = bpf_map_update_elem(&pfsync_states, &e->key, &e->val, BPF_NOEXIST);

	if (rc || e->val.nat.type == PFSYNC_NAT_NONE)
		return rc;
	rc = bpf_map_update_elem(&pfsync_nat_keys, &e->val.nat.stack_key, &e->key, BPF_ANY);
	if (rc)
		bpf_map_delete_elem(&pfsync_states, &e->key);
	return rc;
}

/* the batch, written and read by the agent through mmap; private to it */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct pfsync_batch_buf);
} pfsync_batch_buf SEC(".maps");

/* the batch the agent wrote (the programs' ctx is unused) */
static __always_inline struct pfsync_batch_buf *batch_buf(void *ctx)
{
	__u32 zero = 0;

	(void)ctx;
	return bpf_map_lookup_elem(&pfsync_batch_buf, &zero);
}

SEC("syscall")
int pfsync_import(void *ctx)
{
	struct pfsync_batch_buf *b;
	__u32 n, i;

	b = batch_buf(ctx);
	if (!b)
		return 0;
	n = b->count;
	for (i = 0; i < PFSYNC_IMPORT_BATCH; i++) {
		if (i >= n)
			break;
		/* creates only: a taken key is the agent's to merge */
		b->rc[i] = import_one(&b->e[i]);
	}
	b->done = i;
	return 0;
}

SEC("syscall")
int pfsync_fetch(void *ctx)
{
	struct pfsync_state_value *v;
	struct pfsync_batch_buf *b;
	__u32 n, i;

	b = batch_buf(ctx);
	if (!b)
		return 0;
	n = b->count;
	for (i = 0; i < PFSYNC_IMPORT_BATCH; i++) {
		if (i >= n)
			break;
		v = bpf_map_lookup_elem(&pfsync_states, &b->e[i].key);
		if (!v) {
			b->rc[i] = -2; /* -ENOENT */
			continue;
		}
		pfsync_state_unqueue(v);
		__builtin_memcpy(&b->e[i].val, v, sizeof(*v));
		b->rc[i] = 0;
	}
	b->done = i;
	return 0;
}

/*
 * The programs that walk their batch with bpf_loop: its callback is
 * verified once, not once per entry of an unrolled loop.
 */
static __always_inline int batch_loop(void *ctx, long (*entry)(__u32 i, void *unused))
{
	struct pfsync_batch_buf *b = batch_buf(ctx);
	__u32 n;

	if (!b)
		return 0;
	n = b->count < PFSYNC_IMPORT_BATCH ? b->count : PFSYNC_IMPORT_BATCH;
	b->done = (__u32)bpf_loop(n, entry, NULL, 0);
	return 0;
}

/* pfsync_merge's work on entry i (bpf_loop callback): 0, or 1 to stop */
static long merge_entry(__u32 i, void *unused)
{
	struct pfsync_batch_buf *b = batch_buf(unused);
	struct pfsync_import_entry *e;
	struct pfsync_state_value *v;

	if (!b || i >= PFSYNC_IMPORT_BATCH)
		return 1;
	e = &b->e[i];
	v = bpf_map_lookup_elem(&pfsync_states, &e->key);
	if (!v || v->id != e->val.id || v->creatorid != e->val.creatorid) {
		b->rc[i] = -2; /* -ENOENT: gone, or another state now */
		return 0;
	}
	b->rc[i] = pfsync_merge_halves(v, &e->val.peer[0], &e->val.peer[1], e->val.timeout,
				       e->key.proto, e->val.last_seen);
	e->val.flags = v->flags;
	return 0;
}

/* pfsync_unmark's: the defer marks off the live state, the other flags as they are */
static long unmark_entry(__u32 i, void *unused)
{
	struct pfsync_batch_buf *b = batch_buf(unused);
	struct pfsync_state_value *v;

	if (!b || i >= PFSYNC_IMPORT_BATCH)
		return 1;
	v = bpf_map_lookup_elem(&pfsync_states, &b->e[i].key);
	if (!v) {
		b->rc[i] = -2; /* -ENOENT */
		return 0;
	}
	__sync_fetch_and_and(&v->flags, ~(__u32)PFSYNC_SF_DEFERRED);
	v->state_flags &= ~PFSTATE_ACK;
	b->rc[i] = 0;
	return 0;
}

SEC("syscall")
int pfsync_merge(void *ctx)
{
	return batch_loop(ctx, merge_entry);
}

SEC("syscall")
int pfsync_unmark(void *ctx)
{
	return batch_loop(ctx, unmark_entry);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
