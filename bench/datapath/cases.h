/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/datapath: the BPF_PROG_RUN cases, measured round-robin, and their table. */
#ifndef BENCH_DATAPATH_CASES_H
#define BENCH_DATAPATH_CASES_H

#include <linux/types.h>

#include "progs.h"

#define MAX_CASES  32
#define MAX_ROUNDS 31

struct opts {
	__u32 repeat;
	int rounds;
	int fresh; /* fresh tuples per new-state batch */
	int forward;
	int seconds;
	int fwd_rounds;
	int nat_only; /* --nat-only: the NAT rows alone */
	const char *build;
};

enum case_kind {
	K_HIT,	 /* repeat one packet */
	K_FRESH, /* bench_driver -> target, a fresh tuple per packet */
};

/* What a fresh-tuple batch needs before it runs and checks after. */
enum case_table {
	T_NONE,	  /* nothing to empty, nothing to check */
	T_INSERT, /* bench_insert_states: flushed; +fresh inserts */
	T_OURS,	  /* pfsync_states: flushed; +fresh states_inserted */
};

struct bcase {
	const char *name;
	const char *note;
	enum case_kind kind;
	enum case_table table;
	int fd; /* the program run (K_HIT) or tail-called (K_FRESH) */
	struct pkt p;
	int af;
	int base; /* index of the "x insert" baseline, -1 for none */
	double v[MAX_ROUNDS];
	int n;
	int failed;
	double ns; /* median, driver subtracted */
};

struct bench {
	const struct opts *o;
	struct bcase c[MAX_CASES];
	int n;
	const struct minimal *m;
	const struct driver *d;
#if HAVE_LOADER
	const struct ours *ours;
#endif
};

double case_ns(const struct bench *b, const char *name);
void run_cases(struct bench *b, enum case_kind kind, int rounds);
void print_table(const struct bench *b, double driver_cost);
void minimal_check_hits(const struct minimal *m, __u64 hits0, __u64 misses0);
void add_hit_cases(struct bench *b, int empty_fd);
void add_fresh_cases(struct bench *b, int empty_fd);

#endif /* BENCH_DATAPATH_CASES_H */
