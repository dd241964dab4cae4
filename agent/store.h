/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The agent's view of the datapath: the states map and the two control
 * programs, behind function pointers so that the decode-and-apply path can
 * run against an in-memory stand-in (unit tests, fuzzing).
 */
#ifndef AGENT_STORE_H
#define AGENT_STORE_H

#include <linux/types.h>

#include "pfsync_common.h"

/* position of a batched walk over the states map */
struct store_cursor {
	__u64 token; /* opaque, from the map */
	int started;
	int done;
};

struct state_store {
	void *ctx;
	/* 0 or -ENOENT */
	int (*lookup)(void *ctx, const struct pfsync_key *k, struct pfsync_state_value *v);
	/* creates only: -EEXIST if the key is taken, -E2BIG/-ENOMEM when full */
	int (*insert)(void *ctx, const struct pfsync_key *k, const struct pfsync_state_value *v);
	/* replaces an existing entry only: -ENOENT if it is gone */
	int (*update)(void *ctx, const struct pfsync_key *k, const struct pfsync_state_value *v);
	int (*remove)(void *ctx, const struct pfsync_key *k); /* 0 or -ENOENT */
	/* up to *n entries after cur; *n = entries read; cur->done at the end */
	int (*read_batch)(void *ctx, struct store_cursor *cur, struct pfsync_key *keys,
			  struct pfsync_state_value *vals, unsigned int *n);
	/* the control programs (BPF_PROG_RUN); 0 or -errno */
	int (*sweep)(void *ctx, struct pfsync_sweep_args *args);
	int (*unqueue)(void *ctx, struct pfsync_unqueue_args *args);
};

/* calls fn for every state (in batches); stops when fn returns non-zero */
int store_foreach(const struct state_store *s,
		  int (*fn)(const struct pfsync_key *, const struct pfsync_state_value *, void *),
		  void *arg);

/* The BPF-backed store: map fd plus the loader's program runners. */
struct bpf_store {
	int states_fd;
	void *progs; /* handed to run_sweep / run_unqueue */
	int (*run_sweep)(void *progs, struct pfsync_sweep_args *args);
	int (*run_unqueue)(void *progs, struct pfsync_unqueue_args *args);
};

void bpf_store_bind(struct state_store *s, struct bpf_store *b);

#endif /* AGENT_STORE_H */
