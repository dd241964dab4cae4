/* SPDX-License-Identifier: BSD-2-Clause */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pfsync_logic.h"
#include "store.h"

#define FOREACH_BATCH 1024

int store_foreach(const struct state_store *s,
		  int (*fn)(const struct pfsync_key *, const struct pfsync_state_value *, void *),
		  void *arg)
{
	struct pfsync_key *keys = calloc(FOREACH_BATCH, sizeof(*keys));
	struct pfsync_state_value *vals = calloc(FOREACH_BATCH, sizeof(*vals));
	struct store_cursor cur = {0};
	int rc = 0;

	if (!keys || !vals) {
		rc = -ENOMEM;
		goto out;
	}
	while (!cur.done && rc == 0) {
		unsigned int n = FOREACH_BATCH;

		rc = s->read_batch(s->ctx, &cur, keys, vals, &n);
		for (unsigned int i = 0; i < n && rc == 0; i++)
			if (fn(&keys[i], &vals[i], arg))
				cur.done = 1;
	}
out:
	free(keys);
	free(vals);
	return rc;
}

int store_sweep_begin(struct store_sweep *sw, unsigned int batch, __u64 now_ns)
{
	if (sw->batch != batch) {
		store_sweep_free(sw);
		sw->keys = calloc(batch, sizeof(*sw->keys));
		sw->vals = calloc(batch, sizeof(*sw->vals));
		if (!sw->keys || !sw->vals) {
			store_sweep_free(sw);
			return -ENOMEM;
		}
		sw->batch = batch;
	}
	memset(&sw->cur, 0, sizeof(sw->cur));
	sw->seen = sw->deleted = 0;
	sw->started_ns = now_ns;
	sw->active = 1;
	return 0;
}

/* hands the collected keys to the program; the pass's last call says so */
static int sweep_submit(const struct state_store *s, struct store_sweep *sw,
			struct pfsync_sweep_args *args, int pass_end)
{
	int rc;

	if (!args->count && !pass_end)
		return 0;
	args->sweep_flags = PFSYNC_SWEEP_KEYS | (pass_end ? PFSYNC_SWEEP_PASS_END : 0);
	args->pass_seen = sw->seen;
	rc = s->sweep(s->ctx, args);
	if (rc == 0)
		sw->deleted += args->deleted;
	args->count = 0;
	return rc;
}

int store_sweep_step(const struct state_store *s, struct store_sweep *sw, __u64 now_ns,
		     const struct pfsync_config *cfg, __u32 states_count)
{
	struct pfsync_sweep_args args = {.now_ns = now_ns};
	unsigned int n = sw->batch;
	int rc;

	if (!sw->active)
		return 0;
	rc = s->read_batch(s->ctx, &sw->cur, sw->keys, sw->vals, &n);
	for (unsigned int i = 0; i < n && rc == 0; i++) {
		sw->seen++;
		if (pfsync_state_expires_ns(&sw->vals[i], cfg, states_count) > now_ns)
			continue;
		args.keys[args.count++] = sw->keys[i];
		if (args.count == PFSYNC_SWEEP_BATCH)
			rc = sweep_submit(s, sw, &args, 0);
	}
	rc = rc ?: sweep_submit(s, sw, &args, sw->cur.done);
	if (rc || sw->cur.done)
		sw->active = 0;
	return rc ? rc : sw->active;
}

void store_sweep_free(struct store_sweep *sw)
{
	free(sw->keys);
	free(sw->vals);
	memset(sw, 0, sizeof(*sw));
}

static int bpf_lookup(void *ctx, const struct pfsync_key *k, struct pfsync_state_value *v)
{
	const struct bpf_store *b = ctx;

	return bpf_map_lookup_elem(b->states_fd, k, v) ? -errno : 0;
}

static int bpf_insert(void *ctx, const struct pfsync_key *k, const struct pfsync_state_value *v)
{
	const struct bpf_store *b = ctx;

	return bpf_map_update_elem(b->states_fd, k, v, BPF_NOEXIST) ? -errno : 0;
}

static int bpf_update(void *ctx, const struct pfsync_key *k, const struct pfsync_state_value *v)
{
	const struct bpf_store *b = ctx;

	return bpf_map_update_elem(b->states_fd, k, v, BPF_EXIST) ? -errno : 0;
}

static int bpf_remove(void *ctx, const struct pfsync_key *k)
{
	const struct bpf_store *b = ctx;

	return bpf_map_delete_elem(b->states_fd, k) ? -errno : 0;
}

/* batch lookup walks hash buckets; the token is the next bucket */
static int bpf_read_batch(void *ctx, struct store_cursor *cur, struct pfsync_key *keys,
			  struct pfsync_state_value *vals, unsigned int *n)
{
	const struct bpf_store *b = ctx;
	__u32 out_token = 0, in_token = (__u32)cur->token;
	__u32 count = *n;
	int rc;

	rc = bpf_map_lookup_batch(b->states_fd, cur->started ? &in_token : NULL, &out_token, keys,
				  vals, &count, NULL);
	cur->started = 1;
	cur->token = out_token;
	if (rc && errno == ENOENT) {
		/* end of the map: count holds what this last call returned */
		cur->done = 1;
		*n = count;
		return 0;
	}
	if (rc) {
		*n = 0;
		cur->done = 1;
		return -errno;
	}
	*n = count;
	return 0;
}

static int bpf_sweep(void *ctx, struct pfsync_sweep_args *args)
{
	const struct bpf_store *b = ctx;

	return b->run_sweep ? b->run_sweep(b->progs, args) : -EOPNOTSUPP;
}

static int bpf_unqueue(void *ctx, struct pfsync_unqueue_args *args)
{
	const struct bpf_store *b = ctx;

	return b->run_unqueue ? b->run_unqueue(b->progs, args) : -EOPNOTSUPP;
}

void bpf_store_bind(struct state_store *s, struct bpf_store *b)
{
	memset(s, 0, sizeof(*s));
	s->ctx = b;
	s->lookup = bpf_lookup;
	s->insert = bpf_insert;
	s->update = bpf_update;
	s->remove = bpf_remove;
	s->read_batch = bpf_read_batch;
	s->sweep = bpf_sweep;
	s->unqueue = bpf_unqueue;
}
