/* SPDX-License-Identifier: BSD-2-Clause */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pfsync_logic.h"
#include "store.h"

#define FOREACH_BATCH 1024
/* records a read() of the iterator asks for: its seq_file fills 8 pages at most */
#define ITER_READ_RECS ((8 * 4096) / sizeof(struct pfsync_import_entry))

int store_read_path_parse(const char *s, enum store_read_path *out)
{
	static const char *const names[] = {
	    [STORE_READ_AUTO] = "auto",
	    [STORE_READ_ITER] = "iter",
	    [STORE_READ_BATCH] = "batch",
	};

	for (unsigned int i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i])) {
			*out = (enum store_read_path)i;
			return 0;
		}
	return -1;
}

void store_cursor_reset(struct store_cursor *cur)
{
	if (cur->iter_open)
		close(cur->iter_fd);
	memset(cur, 0, sizeof(*cur));
}

int store_merge(const struct state_store *s, struct pfsync_import_entry *e)
{
	struct pfsync_state_value v;
	int stale, rc;

	if (s->merge)
		return s->merge(s->ctx, e);
	if (s->lookup(s->ctx, &e->key, &v) != 0 || v.id != e->val.id ||
	    v.creatorid != e->val.creatorid)
		return -ENOENT;
	stale = pfsync_merge_halves(&v, &e->val.peer[0], &e->val.peer[1], e->val.timeout,
				    e->key.proto, e->val.last_seen);
	e->val.flags = v.flags;
	rc = s->update(s->ctx, &e->key, &v);
	return rc ? rc : stale;
}

int store_unmark(const struct state_store *s, const struct pfsync_key *k)
{
	struct pfsync_state_value v;
	int rc;

	if (s->unmark)
		return s->unmark(s->ctx, k);
	rc = s->lookup(s->ctx, k, &v);
	if (rc || (!(v.flags & PFSYNC_SF_DEFERRED) && !(v.state_flags & PFSTATE_ACK)))
		return rc;
	v.flags &= ~PFSYNC_SF_DEFERRED;
	v.state_flags &= ~PFSTATE_ACK;
	return s->update(s->ctx, k, &v);
}

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
	store_cursor_reset(&cur);
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
	store_cursor_reset(&sw->cur);
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
	if (rc || sw->cur.done) {
		store_cursor_reset(&sw->cur);
		sw->active = 0;
	}
	return rc ? rc : sw->active;
}

void store_sweep_free(struct store_sweep *sw)
{
	store_cursor_reset(&sw->cur);
	free(sw->keys);
	free(sw->vals);
	memset(sw, 0, sizeof(*sw));
}

static int bpf_lookup(void *ctx, const struct pfsync_key *k, struct pfsync_state_value *v)
{
	const struct bpf_store *b = ctx;

	return bpf_map_lookup_elem(b->states_fd, k, v) ? -errno : 0;
}

/* drops stack -> wire, unless the stack key has been given to another state since */
static void alias_remove(int nat_keys_fd, const struct pfsync_key *stack,
			 const struct pfsync_key *wire)
{
	struct pfsync_key target;

	if (bpf_map_lookup_elem(nat_keys_fd, stack, &target) == 0 &&
	    !memcmp(&target, wire, sizeof(target)))
		bpf_map_delete_elem(nat_keys_fd, stack);
}

/* the second key of a translated state; the state is taken back if it fails */
static int alias_insert(const struct bpf_store *b, const struct pfsync_key *k,
			const struct pfsync_state_value *v)
{
	int rc;

	if (v->nat.type == PFSYNC_NAT_NONE)
		return 0;
	rc = b->nat_keys_fd < 0 ? -EOPNOTSUPP : 0;
	if (!rc && bpf_map_update_elem(b->nat_keys_fd, &v->nat.stack_key, k, BPF_ANY))
		rc = -errno;
	if (rc)
		bpf_map_delete_elem(b->states_fd, k);
	return rc;
}

static int bpf_insert(void *ctx, const struct pfsync_key *k, const struct pfsync_state_value *v)
{
	const struct bpf_store *b = ctx;

	if (bpf_map_update_elem(b->states_fd, k, v, BPF_NOEXIST))
		return -errno;
	return alias_insert(b, k, v);
}

static int bpf_update(void *ctx, const struct pfsync_key *k, const struct pfsync_state_value *v)
{
	const struct bpf_store *b = ctx;

	return bpf_map_update_elem(b->states_fd, k, v, BPF_EXIST) ? -errno : 0;
}

static int bpf_remove(void *ctx, const struct pfsync_key *k)
{
	const struct bpf_store *b = ctx;
	struct pfsync_state_value v;
	int translated;

	/* a translated state's alias goes with it, if it still names this state */
	translated = b->nat_keys_fd >= 0 && bpf_map_lookup_elem(b->states_fd, k, &v) == 0 &&
		     v.nat.type != PFSYNC_NAT_NONE;
	if (bpf_map_delete_elem(b->states_fd, k))
		return -errno;
	if (translated)
		alias_remove(b->nat_keys_fd, &v.nat.stack_key, k);
	return 0;
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

/*
 * The iterator's records, a read() at a time: the seq_file hands out whole
 * records only (a state that does not fit waits for the next read), and
 * each show is bounded by the kernel, so a read may bring none before the
 * end (-EAGAIN after a million states shown empty): that is a pause.
 */
static int iter_read_batch(void *ctx, struct store_cursor *cur, struct pfsync_key *keys,
			   struct pfsync_state_value *vals, unsigned int *n)
{
	const struct bpf_store *b = ctx;
	size_t want = *n < ITER_READ_RECS ? *n : ITER_READ_RECS;
	ssize_t got;
	size_t recs;

	*n = 0;
	if (!cur->started) {
		int fd = bpf_iter_create(bpf_link__fd(b->iter_link));

		cur->started = 1;
		if (fd < 0) {
			cur->done = 1;
			return -errno;
		}
		cur->iter_fd = fd;
		cur->iter_open = 1;
	}
	if (cur->done)
		return 0;
	got = read(cur->iter_fd, b->iter_buf, want * sizeof(*b->iter_buf));
	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (got < 0 || (size_t)got % sizeof(*b->iter_buf)) {
		int rc = got < 0 ? -errno : -EIO;

		store_cursor_reset(cur);
		cur->started = cur->done = 1;
		return rc;
	}
	recs = (size_t)got / sizeof(*b->iter_buf);
	for (size_t i = 0; i < recs; i++) {
		keys[i] = b->iter_buf[i].key;
		vals[i] = b->iter_buf[i].val;
	}
	*n = (unsigned int)recs;
	if (got == 0) {
		store_cursor_reset(cur);
		cur->started = cur->done = 1;
	}
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

static int run_batch(const struct bpf_store *b, int prog_fd, unsigned int n)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	b->import_buf->count = n;
	b->import_buf->done = 0;
	if (bpf_prog_test_run_opts(prog_fd, &opts) != 0)
		return -errno;
	return b->import_buf->done == n ? 0 : -EIO;
}

static int bpf_insert_batch(void *ctx, const struct pfsync_import_entry *e, unsigned int n, int *rc)
{
	const struct bpf_store *b = ctx;
	struct pfsync_batch_buf *buf = b->import_buf;
	int err;

	if (!buf || n > PFSYNC_IMPORT_BATCH)
		return -EINVAL;
	memcpy(buf->e, e, n * sizeof(*e));
	err = run_batch(b, b->import_fd, n);
	if (err)
		return err;
	for (unsigned int i = 0; i < n; i++)
		rc[i] = buf->rc[i];
	return 0;
}

static int bpf_fetch(void *ctx, const struct pfsync_key *keys, unsigned int n,
		     struct pfsync_state_value *vals, int *rc)
{
	const struct bpf_store *b = ctx;
	struct pfsync_batch_buf *buf = b->import_buf;
	int err;

	if (!buf || n > PFSYNC_IMPORT_BATCH)
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++)
		buf->e[i].key = keys[i];
	err = run_batch(b, b->fetch_fd, n);
	if (err)
		return err;
	for (unsigned int i = 0; i < n; i++) {
		rc[i] = buf->rc[i];
		if (rc[i] == 0)
			vals[i] = buf->e[i].val;
	}
	return 0;
}

/* one entry through a batch program, e in and out: its rc, or the run's error */
static int run_one(const struct bpf_store *b, int prog_fd, struct pfsync_import_entry *e)
{
	struct pfsync_batch_buf *buf = b->import_buf;
	int err;

	if (!buf)
		return -EINVAL;
	buf->e[0] = *e;
	err = run_batch(b, prog_fd, 1);
	if (err)
		return err;
	*e = buf->e[0];
	return buf->rc[0];
}

static int bpf_merge(void *ctx, struct pfsync_import_entry *e)
{
	const struct bpf_store *b = ctx;

	return run_one(b, b->merge_fd, e);
}

static int bpf_unmark(void *ctx, const struct pfsync_key *k)
{
	const struct bpf_store *b = ctx;
	struct pfsync_import_entry e = {.key = *k};

	return run_one(b, b->unmark_fd, &e);
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
	b->import_fd = b->fetch_fd = b->merge_fd = b->unmark_fd = -1;
}

/* NAME in the directory of the datapath object */
static int sibling_path(const char *xdp_obj, const char *name, char *buf, size_t cap)
{
	const char *slash = strrchr(xdp_obj, '/');
	int dir_len = slash ? (int)(slash - xdp_obj) : 1;
	int n = snprintf(buf, cap, "%.*s/%s", dir_len, slash ? xdp_obj : ".", name);

	return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

/* opens NAME beside xdp_obj with its states map replaced by b's */
static struct bpf_object *open_on_states(const struct bpf_store *b, const char *xdp_obj,
					 const char *name, int *err)
{
	char path[PATH_MAX];
	struct bpf_object *obj;
	struct bpf_map *states;

	*err = sibling_path(xdp_obj, name, path, sizeof(path));
	if (*err)
		return NULL;
	if (access(path, R_OK) != 0) {
		*err = -errno;
		return NULL;
	}
	obj = bpf_object__open_file(path, NULL);
	*err = libbpf_get_error(obj);
	if (*err)
		return NULL;
	states = bpf_object__find_map_by_name(obj, PFSYNC_MAP_STATES);
	*err = states ? bpf_map__reuse_fd(states, b->states_fd) : -ENOENT;
	if (*err) {
		bpf_object__close(obj);
		return NULL;
	}
	return obj;
}

int bpf_store_open_import(struct state_store *s, struct bpf_store *b, const char *xdp_obj)
{
	struct bpf_program *prog, *fetch, *merge, *unmark;
	struct bpf_map *buf, *nat_keys;
	void *mem;
	int rc;

	b->import_obj = open_on_states(b, xdp_obj, PFSYNC_BULK_OBJ, &rc);
	if (!b->import_obj)
		return rc;
	/* a translated state's import puts its alias in the datapath's map too */
	nat_keys = bpf_object__find_map_by_name(b->import_obj, PFSYNC_MAP_NAT_KEYS);
	rc = nat_keys && b->nat_keys_fd >= 0 ? bpf_map__reuse_fd(nat_keys, b->nat_keys_fd) : 0;
	if (rc)
		goto fail;
	buf = bpf_object__find_map_by_name(b->import_obj, PFSYNC_MAP_BATCH_BUF);
	prog = bpf_object__find_program_by_name(b->import_obj, PFSYNC_PROG_IMPORT);
	fetch = bpf_object__find_program_by_name(b->import_obj, PFSYNC_PROG_FETCH);
	merge = bpf_object__find_program_by_name(b->import_obj, PFSYNC_PROG_MERGE);
	unmark = bpf_object__find_program_by_name(b->import_obj, PFSYNC_PROG_UNMARK);
	rc = !buf || !prog || !fetch || !merge || !unmark ? -ENOENT : 0;
	rc = rc ?: bpf_object__load(b->import_obj);
	if (rc)
		goto fail;
	b->import_buf_len = ((size_t)bpf_map__value_size(buf) + (size_t)getpagesize() - 1) &
			    ~((size_t)getpagesize() - 1);
	mem =
	    mmap(NULL, b->import_buf_len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(buf), 0);
	if (mem == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	b->import_buf = mem;
	b->import_fd = bpf_program__fd(prog);
	b->fetch_fd = bpf_program__fd(fetch);
	b->merge_fd = bpf_program__fd(merge);
	b->unmark_fd = bpf_program__fd(unmark);
	s->insert_batch = bpf_insert_batch;
	s->fetch = bpf_fetch;
	s->merge = bpf_merge;
	s->unmark = bpf_unmark;
	return 0;
fail:
	bpf_object__close(b->import_obj);
	b->import_obj = NULL;
	return rc;
}

void bpf_store_close_import(struct state_store *s, struct bpf_store *b)
{
	s->insert_batch = NULL;
	s->fetch = NULL;
	s->merge = NULL;
	s->unmark = NULL;
	if (b->import_buf)
		munmap(b->import_buf, b->import_buf_len);
	b->import_buf = NULL;
	b->import_fd = b->fetch_fd = b->merge_fd = b->unmark_fd = -1;
	bpf_object__close(b->import_obj);
	b->import_obj = NULL;
}

int bpf_store_open_iter(struct state_store *s, struct bpf_store *b, const char *xdp_obj)
{
	DECLARE_LIBBPF_OPTS(bpf_iter_attach_opts, opts);
	union bpf_iter_link_info info = {.map.map_fd = (__u32)b->states_fd};
	struct bpf_program *prog;
	int rc;

	b->iter_obj = open_on_states(b, xdp_obj, PFSYNC_ITER_OBJ, &rc);
	if (!b->iter_obj)
		return rc;
	prog = bpf_object__find_program_by_name(b->iter_obj, PFSYNC_PROG_ITER);
	rc = prog ? bpf_object__load(b->iter_obj) : -ENOENT;
	if (rc)
		goto fail;
	opts.link_info = &info;
	opts.link_info_len = sizeof(info);
	b->iter_link = bpf_program__attach_iter(prog, &opts);
	rc = libbpf_get_error(b->iter_link);
	if (rc) {
		b->iter_link = NULL;
		goto fail;
	}
	b->iter_buf = calloc(ITER_READ_RECS, sizeof(*b->iter_buf));
	if (!b->iter_buf) {
		rc = -ENOMEM;
		goto fail;
	}
	s->read_batch = iter_read_batch;
	return 0;
fail:
	bpf_store_close_iter(s, b);
	return rc;
}

void bpf_store_close_iter(struct state_store *s, struct bpf_store *b)
{
	if (s->read_batch == iter_read_batch)
		s->read_batch = bpf_read_batch;
	free(b->iter_buf);
	b->iter_buf = NULL;
	bpf_link__destroy(b->iter_link);
	b->iter_link = NULL;
	bpf_object__close(b->iter_obj);
	b->iter_obj = NULL;
}
