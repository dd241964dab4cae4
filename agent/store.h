/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The agent's view of the datapath: the states map and the two control
 * programs, behind function pointers so that the decode-and-apply path can
 * run against an in-memory stand-in (unit tests, fuzzing).
 */
#ifndef AGENT_STORE_H
#define AGENT_STORE_H

#include <linux/types.h>

#include "pfsync_bulk.h"
#include "pfsync_common.h"

/* position of a batched walk over the states map */
struct store_cursor {
	__u64 token; /* opaque, from the map */
	int started;
	int done;
	int iter_open; /* iter_fd is this walk's iterator (pfsync_table_iter) */
	int iter_fd;
};

/* back to the start, closing the walk's iterator if one is open */
void store_cursor_reset(struct store_cursor *cur);

struct state_store {
	void *ctx;
	/* 0 or -ENOENT */
	int (*lookup)(void *ctx, const struct pfsync_key *k, struct pfsync_state_value *v);
	/* creates only: -EEXIST if the key is taken, -E2BIG/-ENOMEM when full */
	int (*insert)(void *ctx, const struct pfsync_key *k, const struct pfsync_state_value *v);
	/* replaces an existing entry only: -ENOENT if it is gone */
	int (*update)(void *ctx, const struct pfsync_key *k, const struct pfsync_state_value *v);
	int (*remove)(void *ctx, const struct pfsync_key *k); /* 0 or -ENOENT */
	/*
	 * insert of up to PFSYNC_IMPORT_BATCH entries at once, rc[i] as insert's
	 * for entry i; returns 0, or -errno when the batch was not run (the
	 * caller then inserts one by one). NULL: no batch import.
	 */
	int (*insert_batch)(void *ctx, const struct pfsync_import_entry *e, unsigned int n,
			    int *rc);
	/*
	 * for the send queue, up to PFSYNC_IMPORT_BATCH keys: each state's
	 * QUEUED mark (and maxupd count) is cleared, then its value read into
	 * vals[i]; rc[i] 0 or -ENOENT. Returns 0, or -errno when not run (the
	 * caller then unqueues and looks up). NULL: not available.
	 */
	int (*fetch)(void *ctx, const struct pfsync_key *keys, unsigned int n,
		     struct pfsync_state_value *vals, int *rc);
	/*
	 * a peer's update merged on the live state (pfsync_bulk.h's
	 * pfsync_merge, e as it describes): the stale halves (0..2), -ENOENT
	 * when the key holds no state of e's identity, or another -errno when
	 * not run. NULL: not available (the caller merges into a copy it
	 * looked up and writes that back).
	 */
	int (*merge)(void *ctx, struct pfsync_import_entry *e);
	/*
	 * a released deferred state's marks cleared on the live state
	 * (pfsync_unmark): 0, -ENOENT, or another -errno when not run. NULL:
	 * not available (the caller clears them on a copy and writes it back).
	 */
	int (*unmark)(void *ctx, const struct pfsync_key *k);
	/*
	 * up to *n entries after cur; *n = entries read (0 is no end, a walk
	 * may pause); cur->done at the end. A walk given up before its end is
	 * ended with store_cursor_reset.
	 */
	int (*read_batch)(void *ctx, struct store_cursor *cur, struct pfsync_key *keys,
			  struct pfsync_state_value *vals, unsigned int *n);
	/* the control programs (BPF_PROG_RUN); 0 or -errno */
	int (*sweep)(void *ctx, struct pfsync_sweep_args *args);
	int (*unqueue)(void *ctx, struct pfsync_unqueue_args *args);
};

/*
 * A peer's update merged into the state at e->key (e as pfsync_bulk.h's
 * pfsync_merge describes it): on the live state by s->merge where the
 * store has it, else on a copy looked up and written back (the datapath's
 * changes in between are then lost). The stale halves (0..2), or -errno
 * (-ENOENT: no state of e's identity there); e->val.flags the state's flags.
 */
int store_merge(const struct state_store *s, struct pfsync_import_entry *e);

/* a released deferred state's marks cleared, by s->unmark where it exists, else on a copy */
int store_unmark(const struct state_store *s, const struct pfsync_key *k);

/* calls fn for every state (in batches); stops when fn returns non-zero */
int store_foreach(const struct state_store *s,
		  int (*fn)(const struct pfsync_key *, const struct pfsync_state_value *, void *),
		  void *arg);

/*
 * An expiry pass in bounded steps (pf's purge does a share of the table per
 * tick too): each step reads a batch of states, picks those due by the
 * values read, and hands their keys to the sweep program (PFSYNC_SWEEP_KEYS),
 * which checks each again on its live value before deleting it. The cursor
 * follows the map's buckets, so states added or removed meanwhile do not
 * derail it; one added behind the cursor waits for the next pass.
 */
struct store_sweep {
	int active;
	struct store_cursor cur;
	struct pfsync_key *keys; /* read buffers, `batch` entries each */
	struct pfsync_state_value *vals;
	unsigned int batch;
	__u32 seen;    /* states read by this pass */
	__u32 deleted; /* states the program removed */
	__u64 started_ns;
};

/* starts a pass (buffers for batch states a step); 0 or -ENOMEM */
int store_sweep_begin(struct store_sweep *sw, unsigned int batch, __u64 now_ns);
/*
 * One step: up to sw->batch states read, the due ones expired as of now_ns
 * (cfg and states_count as the datapath's, for the preselection). Returns 1
 * while the pass goes on, 0 when it has ended (sw->active cleared), -errno.
 */
int store_sweep_step(const struct state_store *s, struct store_sweep *sw, __u64 now_ns,
		     const struct pfsync_config *cfg, __u32 states_count);
void store_sweep_free(struct store_sweep *sw);

/* The BPF-backed store: map fd plus the loader's program runners. */
struct bpf_store {
	int states_fd;
	int nat_keys_fd; /* pfsync_nat_keys (stack key -> wire key), -1 if absent */
	void *progs;	 /* handed to run_sweep / run_unqueue */
	int (*run_sweep)(void *progs, struct pfsync_sweep_args *args);
	int (*run_unqueue)(void *progs, struct pfsync_unqueue_args *args);
	/* batch programs (bpf_store_open_import), else NULL / -1 */
	struct bpf_object *import_obj;
	int import_fd, fetch_fd, merge_fd, unmark_fd;
	struct pfsync_batch_buf *import_buf; /* the programs' buffer, mmapped */
	size_t import_buf_len;
	/* the iterator reader (bpf_store_open_iter), else NULL */
	struct bpf_object *iter_obj;
	struct bpf_link *iter_link;
	struct pfsync_import_entry *iter_buf; /* one read()'s records */
};

/* how the agent reads the whole table (--bulk-read) */
enum store_read_path {
	STORE_READ_AUTO,  /* the iterator when the kernel takes it, else batches */
	STORE_READ_ITER,  /* the iterator or nothing */
	STORE_READ_BATCH, /* bpf_map_lookup_batch */
};

/* "auto", "iter" or "batch" into *out: 0, or -1 (*out untouched) */
int store_read_path_parse(const char *s, enum store_read_path *out);

/*
 * The store's insert puts a translated state (v->nat.type) under both keys:
 * the state under k, then nat.stack_key -> k in pfsync_nat_keys; remove
 * takes both away. states_fd and nat_keys_fd are set by the caller.
 */
void bpf_store_bind(struct state_store *s, struct bpf_store *b);
/*
 * Loads PFSYNC_BULK_OBJ from the directory of xdp_obj (the datapath object)
 * onto b's states map and turns on s->insert_batch and s->fetch; 0, or
 * -errno (s then goes one state at a time).
 */
int bpf_store_open_import(struct state_store *s, struct bpf_store *b, const char *xdp_obj);
void bpf_store_close_import(struct state_store *s, struct bpf_store *b);
/*
 * Loads PFSYNC_ITER_OBJ from the directory of xdp_obj onto b's states map
 * and attaches its iterator; s->read_batch then reads through it. 0, or
 * -errno (the kernel's refusal included: s keeps the batch reads).
 */
int bpf_store_open_iter(struct state_store *s, struct bpf_store *b, const char *xdp_obj);
void bpf_store_close_iter(struct state_store *s, struct bpf_store *b);

#endif /* AGENT_STORE_H */
