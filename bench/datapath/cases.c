// SPDX-License-Identifier: BSD-2-Clause
/* bench/datapath: the cases (see cases.h). */

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cases.h"
#include "stats.h"

static struct bcase *case_add(struct bench *b, const char *name, enum case_kind kind,
			      enum case_table table, int fd, int af, const char *note)
{
	struct bcase *c;

	if (b->n == MAX_CASES || fd < 0)
		return NULL;
	c = &b->c[b->n++];
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->note = note;
	c->kind = kind;
	c->table = table;
	c->fd = fd;
	c->af = af;
	c->base = -1;
	return c;
}

static int case_index(const struct bench *b, const char *name)
{
	for (int i = 0; i < b->n; i++)
		if (!strcmp(b->c[i].name, name))
			return i;
	return -1;
}

double case_ns(const struct bench *b, const char *name)
{
	int i = case_index(b, name);

	return i < 0 || b->c[i].failed ? -1 : b->c[i].ns;
}

/* One fresh-tuple batch of c: empties its table, runs, checks the inserts. */
static double run_fresh_batch(struct bench *b, struct bcase *c)
{
	__u64 before = 0, after = 0;
	__u32 verdict = 0;
	double ns;

	if (c->table == T_INSERT) {
		if (minimal_reset(b->m))
			return -1;
		before = minimal_count(b->m, BENCH_INSERTED);
	}
#if HAVE_LOADER
	if (c->table == T_OURS) {
		if (ours_reset(b->ours))
			return -1;
		before = ours_inserted(b->ours);
	}
#endif
	if (driver_set_target(b->d, c->fd))
		return -1;
	ns = prog_run(b->d->base.prog_fd, &c->p, (__u32)b->o->fresh, &verdict);
	if (ns < 0 || verdict != XDP_PASS) {
		fprintf(stderr, "datapath: %s: batch failed (verdict %u)\n", c->name, verdict);
		return -1;
	}
	if (c->table == T_INSERT)
		after = minimal_count(b->m, BENCH_INSERTED);
#if HAVE_LOADER
	if (c->table == T_OURS)
		after = ours_inserted(b->ours);
#endif
	if (c->table != T_NONE && after - before != (__u64)b->o->fresh) {
		fprintf(stderr, "datapath: %s: batch inserted %llu states, expected %d\n", c->name,
			(unsigned long long)(after - before), b->o->fresh);
		return -1;
	}
	return ns;
}

/* Rounds of every case of `kind`, one case after the other in each round. */
void run_cases(struct bench *b, enum case_kind kind, int rounds)
{
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < b->n; i++) {
			struct bcase *c = &b->c[i];
			__u32 verdict = 0;
			double ns;

			if (c->kind != kind || c->failed)
				continue;
			if (kind == K_HIT) {
				ns = prog_run(c->fd, &c->p, b->o->repeat, &verdict);
				if (ns >= 0 && verdict != XDP_PASS) {
					fprintf(stderr, "datapath: %s: verdict %u\n", c->name,
						verdict);
					ns = -1;
				}
			} else {
				ns = run_fresh_batch(b, c);
			}
			if (ns < 0)
				c->failed = 1;
			else if (c->n < MAX_ROUNDS)
				c->v[c->n++] = ns;
		}
#if HAVE_LOADER
		/* maxupd records of the established cases: keep the ring from filling */
		if (kind == K_HIT && b->ours)
			ring_buffer__consume(b->ours->events);
#endif
	}
	for (int i = 0; i < b->n; i++)
		if (b->c[i].kind == kind && !b->c[i].failed)
			b->c[i].ns = median(b->c[i].v, b->c[i].n);
}

void print_table(const struct bench *b, double driver_cost)
{
	double empty = case_ns(b, "empty XDP_PASS");
	double min4 = case_ns(b, "minimal state table v4");
	double min6 = case_ns(b, "minimal state table v6");

	printf("\nBPF_PROG_RUN, ns per packet (median of rounds, cases interleaved)\n");
	printf("new-state driver (tuple rewrite + tail call): %.1f ns, subtracted from the "
	       "fresh-tuple rows\n",
	       driver_cost);
	printf("%-40s %9s %8s %8s %8s  %s\n", "case", "ns/pkt", "x empty", "x minimal", "x insert",
	       "note");
	for (int i = 0; i < b->n; i++) {
		const struct bcase *c = &b->c[i];
		double ns = c->failed ? -1 : c->ns;

		if (!strcmp(c->name, "driver -> empty"))
			continue;
		if (ns < 0)
			printf("%-40s %9s", c->name, "FAILED");
		else
			printf("%-40s %9.1f", c->name, ns);
		print_ratio(ns, empty);
		print_ratio(ns, c->af == AF_INET6 ? min6 : min4);
		print_ratio(ns, c->base >= 0 && !b->c[c->base].failed ? b->c[c->base].ns : -1);
		printf("  %s\n", c->note);
	}
	printf("targets: established <= 1.50x minimal, new state <= 8.00x minimal\n"
	       "x insert: against the minimal insert + record of the same family "
	       "(what the new-state path cannot go below)\n");
}

/* The baseline must measure hits, or it would flatter us: checks that
 * bench_minimal found its keys and never missed during the hit rounds. */
void minimal_check_hits(const struct minimal *m, __u64 hits0, __u64 misses0)
{
	__u64 hits = minimal_count(m, BENCH_HIT) - hits0;
	__u64 misses = minimal_count(m, BENCH_MISS) - misses0;

	if (!hits || misses)
		fprintf(stderr, "datapath: WARNING bench_minimal hits %llu misses %llu\n",
			(unsigned long long)hits, (unsigned long long)misses);
}

static const int bench_afs[2] = {AF_INET, AF_INET6};

/* Repeated-packet cases: the floor, the minimal lookup, ours on states
 * that exist (set up here, all at once, so the rounds can interleave). */
void add_hit_cases(struct bench *b, int empty_fd)
{
	static const char *const min_names[2] = {"minimal state table v4",
						 "minimal state table v6"};
	struct flow f4 = make_flow(AF_INET, IPPROTO_TCP, 40000);
	struct bcase *c;

	c = case_add(b, "empty XDP_PASS", K_HIT, T_NONE, empty_fd, AF_INET,
		     "the floor: one BPF_PROG_RUN iteration");
	if (c)
		build_tcp(&c->p, &f4, 0, TH_ACK | TH_PSH, 1001, 5001, 64);
	for (int i = 0; i < 2; i++) {
		struct flow f = make_flow(bench_afs[i], IPPROTO_TCP, 40000);

		minimal_insert(b->m, &f);
		c = case_add(b, min_names[i], K_HIT, T_NONE, b->m->lookup_fd, bench_afs[i],
			     "5-tuple hash hit + per-CPU counter");
		if (c)
			build_tcp(&c->p, &f, 0, TH_ACK | TH_PSH, 1001, 5001, 64);
	}
#if HAVE_LOADER
	static const char *const est_names[2] = {"ours: TCP established v4",
						 "ours: TCP established v6"};
	static const char *const udp_names[2] = {"ours: UDP v4", "ours: UDP v6"};

	if (!b->ours)
		return;
	ours_reset(b->ours);
	for (int i = 0; i < 2; i++) {
		struct flow tcp = make_flow(bench_afs[i], IPPROTO_TCP, 40000);
		struct flow udp = make_flow(bench_afs[i], IPPROTO_UDP, 40001);
		int fd = b->ours->b.xdp_fd;

		if (ours_establish(b->ours, &tcp) == 0 &&
		    (c = case_add(b, est_names[i], K_HIT, T_NONE, fd, bench_afs[i],
				  "64-byte segment, state 4:4")))
			build_tcp(&c->p, &tcp, 0, TH_ACK | TH_PSH, 1001, 5001, 64);
		c = case_add(b, udp_names[i], K_HIT, T_NONE, fd, bench_afs[i],
			     "64-byte datagram, state exists");
		if (c) {
			build_udp(&c->p, &udp, 64);
			prog_run(fd, &c->p, 1, NULL); /* creates the state */
		}
	}
#endif
}

/* Fresh-tuple cases (bench_driver): its own cost, the baselines, ours. */
void add_fresh_cases(struct bench *b, int empty_fd)
{
	static const char *const miss_names[2] = {"minimal state table v4, miss",
						  "minimal state table v6, miss"};
	static const char *const ins_names[2] = {"minimal lookup+insert v4",
						 "minimal lookup+insert v6"};
	static const char *const sync_names[2] = {"minimal insert+record v4",
						  "minimal insert+record v6"};
	struct bcase *c;

	for (int i = 0; i < 2; i++) {
		struct flow f = make_flow(bench_afs[i], IPPROTO_TCP, 40000);
		int base;

		if (i == 0 &&
		    (c = case_add(b, "driver -> empty", K_FRESH, T_NONE, empty_fd, AF_INET, "")))
			build_tcp(&c->p, &f, 0, TH_SYN, 1000, 0, 0);
		c = case_add(b, miss_names[i], K_FRESH, T_NONE, b->m->lookup_fd, bench_afs[i],
			     "fresh tuple per packet (driver)");
		if (c)
			build_tcp(&c->p, &f, 0, TH_SYN, 1000, 0, 0);
		c = case_add(b, ins_names[i], K_FRESH, T_INSERT, b->m->insert_fd, bench_afs[i],
			     "miss, then insert of a pfsync-sized value, table sized as ours");
		if (c)
			build_tcp(&c->p, &f, 0, TH_SYN, 1000, 0, 0);
		base = b->n;
		c = case_add(b, sync_names[i], K_FRESH, T_INSERT, b->m->sync_fd, bench_afs[i],
			     "the same + one change record on a ringbuf (pfsync's sizes)");
		if (!c)
			continue;
		build_tcp(&c->p, &f, 0, TH_SYN, 1000, 0, 0);
		c->base = base;
#if HAVE_LOADER
		static const char *const new_names[2] = {"ours: new state v4 (TCP SYN)",
							 "ours: new state v6 (TCP SYN)"};
		static const char *const opt_names[2] = {"ours: new state v4 (SYN+options)",
							 "ours: new state v6 (SYN+options)"};

		if (!b->ours)
			continue;
		c = case_add(b, new_names[i], K_FRESH, T_OURS, b->ours->b.xdp_fd, bench_afs[i],
			     "fresh tuple per packet, bare SYN");
		if (c) {
			build_tcp(&c->p, &f, 0, TH_SYN, 1000, 0, 0);
			c->base = base;
		}
		c = case_add(b, opt_names[i], K_FRESH, T_OURS, b->ours->b.xdp_fd, bench_afs[i],
			     "fresh tuple per packet, SYN with Linux's 20 option bytes");
		if (c) {
			build_tcp_opts(&c->p, &f, 0, TH_SYN, 1000, 0, linux_syn_opts,
				       sizeof(linux_syn_opts), 0);
			c->base = base;
		}
#endif
	}
}
