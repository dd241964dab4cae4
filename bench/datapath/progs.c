// SPDX-License-Identifier: BSD-2-Clause
/* bench/datapath: loading and running the programs measured (see progs.h). */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "progs.h"

/* ---- running programs ---------------------------------------------------- */

/* One BPF_PROG_RUN; returns kernel ns per run (-1 on error). */
double prog_run(int fd, const struct pkt *p, __u32 repeat, __u32 *verdict)
{
	__u8 out[PKT_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->data, .data_size_in = p->len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = repeat);

	if (bpf_prog_test_run_opts(fd, &o)) {
		fprintf(stderr, "datapath: BPF_PROG_RUN: %s\n", strerror(errno));
		return -1;
	}
	if (verdict)
		*verdict = o.retval;
	return o.duration;
}

/* A SEC("syscall") program without arguments. */
static int syscall_run(int fd)
{
	LIBBPF_OPTS(bpf_test_run_opts, o);

	return bpf_prog_test_run_opts(fd, &o);
}

/* Sum over CPUs of slot `slot` of a per-CPU array of __u64 (or of the
 * __u64 at `off` in a per-CPU struct of `size` bytes). */
static __u64 percpu_sum(int fd, __u32 slot, size_t size, size_t off)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 sum = 0;

	if (ncpu <= 0 || fd < 0)
		return 0;
	size_t stride = (size + 7) & ~(size_t)7;
	__u8 *vals = calloc((size_t)ncpu, stride);

	if (vals && bpf_map_lookup_elem(fd, &slot, vals) == 0)
		for (int i = 0; i < ncpu; i++) {
			__u64 v;

			memcpy(&v, vals + (size_t)i * stride + off, sizeof(v));
			sum += v;
		}
	free(vals);
	return sum;
}

static int drop_record(void *ctx, void *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	return 0;
}

/* ---- baselines ----------------------------------------------------------- */

static int obj_open_load(struct bpf_object **obj, const char *build, const char *file,
			 const char *sized_map, __u32 size)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s.o", build, file);
	*obj = bpf_object__open_file(path, NULL);
	if (!*obj) {
		fprintf(stderr, "datapath: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (sized_map) {
		struct bpf_map *m = bpf_object__find_map_by_name(*obj, sized_map);

		if (!m || bpf_map__set_max_entries(m, size)) {
			fprintf(stderr, "datapath: cannot size %s in %s\n", sized_map, path);
			goto fail;
		}
	}
	if (bpf_object__load(*obj)) {
		fprintf(stderr, "datapath: cannot load %s: %s\n", path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	bpf_object__close(*obj);
	*obj = NULL;
	return -1;
}

static int prog_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, name);

	return prog ? bpf_program__fd(prog) : -1;
}

int baseline_load(struct baseline *b, const char *build, const char *name)
{
	if (obj_open_load(&b->obj, build, name, NULL, 0))
		return -1;
	b->prog_fd = prog_fd(b->obj, name);
	return b->prog_fd < 0 ? -1 : 0;
}

int minimal_load(struct minimal *m, const char *build)
{
	int ev;

	memset(m, 0, sizeof(*m));
	if (obj_open_load(&m->obj, build, "bench_minimal", "bench_insert_states", BENCH_STATES_MAX))
		return -1;
	m->lookup_fd = prog_fd(m->obj, "bench_minimal");
	m->insert_fd = prog_fd(m->obj, "bench_insert");
	m->sync_fd = prog_fd(m->obj, "bench_insert_sync");
	m->flush_fd = prog_fd(m->obj, "bench_insert_flush");
	m->states_fd = bpf_object__find_map_fd_by_name(m->obj, "bench_states");
	m->counters_fd = bpf_object__find_map_fd_by_name(m->obj, "bench_counters");
	ev = bpf_object__find_map_fd_by_name(m->obj, "bench_events");
	if (ev >= 0)
		m->events = ring_buffer__new(ev, drop_record, NULL, NULL);
	if (m->lookup_fd < 0 || m->insert_fd < 0 || m->sync_fd < 0 || m->flush_fd < 0 ||
	    m->states_fd < 0 || m->counters_fd < 0 || !m->events) {
		fprintf(stderr, "datapath: bench_minimal.o lacks a program or map\n");
		return -1;
	}
	return 0;
}

void minimal_close(struct minimal *m)
{
	if (m->events)
		ring_buffer__free(m->events);
	if (m->obj)
		bpf_object__close(m->obj);
}

/* bench_minimal's key, as its parser builds it from the packet. */
struct minimal_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport, dport;
	__u8 proto;
	__u8 pad[3];
};

void minimal_insert(const struct minimal *m, const struct flow *f)
{
	struct minimal_key k = {0};
	__u64 created = 1;

	memcpy(k.saddr, f->saddr, f->af == AF_INET ? 4 : 16);
	memcpy(k.daddr, f->daddr, f->af == AF_INET ? 4 : 16);
	k.sport = htons(f->sport);
	k.dport = htons(f->dport);
	k.proto = f->proto;
	if (bpf_map_update_elem(m->states_fd, &k, &created, BPF_ANY))
		fprintf(stderr, "datapath: bench_states update: %s\n", strerror(errno));
}

__u64 minimal_count(const struct minimal *m, __u32 slot)
{
	return percpu_sum(m->counters_fd, slot, sizeof(__u64), 0);
}

/* Empties bench_insert_states and its ringbuf before a batch. */
int minimal_reset(const struct minimal *m)
{
	int err = syscall_run(m->flush_fd);

	ring_buffer__consume(m->events);
	return err;
}

/* ---- the new-state driver -------------------------------------------------- */

int driver_load(struct driver *d, const char *build)
{
	if (baseline_load(&d->base, build, "bench_driver"))
		return -1;
	d->target_fd = bpf_object__find_map_fd_by_name(d->base.obj, "bench_target");
	return d->target_fd < 0 ? -1 : 0;
}

int driver_set_target(const struct driver *d, int target)
{
	__u32 zero = 0;

	if (bpf_map_update_elem(d->target_fd, &zero, &target, BPF_ANY)) {
		fprintf(stderr, "datapath: bench_target update: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- our program ------------------------------------------------------------ */

#if HAVE_LOADER
/* A private bpffs so the bench never touches /sys/fs/bpf/tc/globals. */
int ours_load(struct ours *o, const char *build)
{
	char obj[PATH_MAX];
	int fd;

	memset(o, 0, sizeof(*o));
	snprintf(o->pin_dir, sizeof(o->pin_dir), "/tmp/pfsync-bench.XXXXXX");
	if (!mkdtemp(o->pin_dir)) {
		fprintf(stderr, "datapath: mkdtemp: %s\n", strerror(errno));
		return -1;
	}
	if (mount("bpf", o->pin_dir, "bpf", 0, NULL)) {
		fprintf(stderr, "datapath: mount bpffs on %s: %s\n", o->pin_dir, strerror(errno));
		rmdir(o->pin_dir);
		o->pin_dir[0] = '\0';
		return -1;
	}
	o->mounted = 1;
	snprintf(obj, sizeof(obj), "%s/pfsync_xdp.o", build);
	if (pfsync_bpf_load(&o->b, obj, o->pin_dir, BENCH_STATES_MAX,
			    PFSYNC_LOAD_XDP | PFSYNC_LOAD_CTL))
		return -1;
	o->counters_fd = bpf_object__find_map_fd_by_name(o->b.obj, PFSYNC_MAP_COUNTERS);
	fd = bpf_object__find_map_fd_by_name(o->b.obj, PFSYNC_MAP_EVENTS);
	if (fd >= 0)
		o->events = ring_buffer__new(fd, drop_record, NULL, NULL);
	return o->events && o->counters_fd >= 0 ? 0 : -1;
}

void ours_close(struct ours *o)
{
	if (o->events)
		ring_buffer__free(o->events);
	if (o->b.obj)
		pfsync_bpf_close(&o->b);
	if (o->mounted) {
		umount2(o->pin_dir, MNT_DETACH);
		rmdir(o->pin_dir);
	}
}

/* Empties the table and the change stream, so each measurement starts
 * from the same place and inserts never hit a full ringbuf. */
int ours_reset(const struct ours *o)
{
	struct pfsync_sweep_args a = {.sweep_flags = PFSYNC_SWEEP_FLUSH | PFSYNC_SWEEP_QUIET};
	int err = pfsync_bpf_sweep(&o->b, &a);

	if (err)
		fprintf(stderr, "datapath: flush sweep failed\n");
	ring_buffer__consume(o->events);
	return err;
}

/* Runs the handshake of f so that its state is ESTABLISHED:ESTABLISHED. */
int ours_handshake(const struct ours *o, const struct flow *f, const struct flow *answer)
{
	struct pkt p;
	__u32 v1 = 0, v2 = 0, v3 = 0;

	build_tcp(&p, f, 0, TH_SYN, 1000, 0, 0);
	prog_run(o->b.xdp_fd, &p, 1, &v1);
	build_tcp(&p, answer, 1, TH_SYN | TH_ACK, 5000, 1001, 0);
	prog_run(o->b.xdp_fd, &p, 1, &v2);
	build_tcp(&p, f, 0, TH_ACK, 1001, 5001, 0);
	prog_run(o->b.xdp_fd, &p, 1, &v3);
	if (v1 != XDP_PASS || v2 != XDP_PASS || v3 != XDP_PASS) {
		fprintf(stderr, "datapath: handshake verdicts %u %u %u\n", v1, v2, v3);
		return -1;
	}
	return 0;
}

int ours_establish(const struct ours *o, const struct flow *f)
{
	return ours_handshake(o, f, f);
}

__u64 ours_inserted(const struct ours *o)
{
	return percpu_sum(o->counters_fd, 0, sizeof(struct pfsync_counters),
			  offsetof(struct pfsync_counters, states_inserted));
}
#endif
