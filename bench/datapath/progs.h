/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/datapath: the programs measured: baselines (bench_minimal.o),
 * the new-state driver (bench_driver.o) and ours (pfsync_xdp.o). */
#ifndef BENCH_DATAPATH_PROGS_H
#define BENCH_DATAPATH_PROGS_H

#include <limits.h>
#include <linux/types.h>

#include <bpf/libbpf.h>

#include "pfsync_common.h"
#include "pkt.h"

#if __has_include("pfsync_loader.h")
#include "pfsync_loader.h"
#define HAVE_LOADER 1
#else
#define HAVE_LOADER 0
#endif

/* table size for our program and bench_insert: a new-state batch fills it
 * to about a third */
#define BENCH_STATES_MAX (1u << 18)

struct baseline {
	struct bpf_object *obj;
	int prog_fd;
};

/* bench_minimal.o: bench_minimal, bench_insert(_sync) and their maps. */
struct minimal {
	struct bpf_object *obj;
	int lookup_fd, insert_fd, sync_fd, flush_fd;
	int states_fd, counters_fd;
	struct ring_buffer *events;
};

/* Slots of bench_counters (bpf/bench_minimal.bpf.c). */
enum { BENCH_HIT = 0, BENCH_MISS = 1, BENCH_INSERTED = 2 };

/* bench_driver gives every run a fresh tuple and tail-calls its target. */
struct driver {
	struct baseline base;
	int target_fd; /* bench_target prog array */
};

#if HAVE_LOADER
struct ours {
	struct pfsync_bpf b;
	struct ring_buffer *events;
	int counters_fd;
	char pin_dir[PATH_MAX];
	int mounted;
};

int ours_load(struct ours *o, const char *build);
void ours_close(struct ours *o);
int ours_reset(const struct ours *o);
/* A TCP handshake through ours: SYN and ACK as f, the SYN+ACK from answer's
 * other end (f itself, or the flow as a translation hands it on). */
int ours_handshake(const struct ours *o, const struct flow *f, const struct flow *answer);
int ours_establish(const struct ours *o, const struct flow *f);
__u64 ours_inserted(const struct ours *o);
#endif

double prog_run(int fd, const struct pkt *p, __u32 repeat, __u32 *verdict);
int baseline_load(struct baseline *b, const char *build, const char *name);
int minimal_load(struct minimal *m, const char *build);
void minimal_close(struct minimal *m);
void minimal_insert(const struct minimal *m, const struct flow *f);
__u64 minimal_count(const struct minimal *m, __u32 slot);
int minimal_reset(const struct minimal *m);
int driver_load(struct driver *d, const char *build);
int driver_set_target(const struct driver *d, int target);

#endif /* BENCH_DATAPATH_PROGS_H */
