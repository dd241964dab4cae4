// SPDX-License-Identifier: BSD-2-Clause
/* bench/sync_driver: run and fill (see run.h). */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "args.h"
#include "clock.h"
#include "flows.h"
#include "run.h"
#include "stats.h"

#define POLL_SLEEP_NS 50000 /* B lookup thread: between passes */

/* ---- run / fill ---------------------------------------------------------- */
struct sample {
	struct pfsync_key key;
	double t_insert;
	double t_found;	   /* 0 while not seen on B */
	double t_lastmiss; /* last lookup that missed: the arrival is after it */
};

struct run_ctx {
	int b_states_fd;
	struct sample *samples;
	atomic_ulong published; /* samples whose t_insert is set */
	atomic_int inserts_done;
	unsigned long nsamples;
	double deadline; /* set when inserts are done */
	unsigned long found;
};

static void *poll_b(void *arg)
{
	struct run_ctx *c = arg;
	struct pfsync_state_value v;
	unsigned long first = 0;

	for (;;) {
		unsigned long pub = atomic_load(&c->published);
		int done = atomic_load(&c->inserts_done);

		for (unsigned long s = first; s < pub; s++) {
			struct sample *sm = &c->samples[s];

			if (sm->t_found != 0)
				continue;
			if (bpf_map_lookup_elem(c->b_states_fd, &sm->key, &v) == 0) {
				sm->t_found = now_s();
				c->found++;
			} else {
				sm->t_lastmiss = now_s();
			}
		}
		while (first < pub && c->samples[first].t_found != 0)
			first++;
		if (done && first == c->nsamples)
			break;
		if (done && now_s() > c->deadline)
			break;
		struct timespec ts = {0, POLL_SLEEP_NS};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* Checks that flow `base` made a state on A under the key we compute. */
static int check_first_state(int a_states_fd, __u64 base, __u32 verdict)
{
	struct pfsync_key k;
	struct pfsync_state_value v;

	make_key(&k, base);
	if (bpf_map_lookup_elem(a_states_fd, &k, &v) == 0)
		return 0;
	fprintf(stderr,
		"sync_driver: the first packet (verdict %u) made no state on A under the "
		"expected key; is a ruleset loaded, or the table full?\n",
		verdict);
	return -1;
}

struct inserter {
	int prog_fd;
	int a_states_fd;
	const struct batcher *batcher; /* unpaced: the burst in one run */
	unsigned long long count, rate, base, stride;
	unsigned long not_passed; /* runs whose (last) packet was not passed */
	double t_first, t_last;
	double gap_max; /* longest stall between two inserts (descheduled) */
};

static int insert_one(struct inserter *in, unsigned long long i)
{
	struct frame f;
	__u32 verdict = 0;

	make_frame(&f, in->base + i);
	if (prog_run(in->prog_fd, &f, &verdict)) {
		fprintf(stderr, "sync_driver: BPF_PROG_RUN: %s\n", strerror(errno));
		return -1;
	}
	if (verdict != XDP_PASS)
		in->not_passed++;
	if (i == 0) {
		in->t_first = now_s();
		return check_first_state(in->a_states_fd, in->base, verdict);
	}
	return 0;
}

static void sample_add(struct run_ctx *c, unsigned long *s, __u64 flow, double t_insert)
{
	if (!c || *s >= c->nsamples)
		return;
	make_key(&c->samples[*s].key, flow);
	c->samples[*s].t_insert = t_insert;
	(*s)++;
	atomic_store(&c->published, *s);
}

/* paced: one BPF_PROG_RUN per flow, each sampled flow timed after its run */
static int insert_paced(struct inserter *in, struct run_ctx *c)
{
	unsigned long s = 0;
	double t0 = now_s(), t_prev = t0, t_now;

	for (unsigned long long i = 0; i < in->count; i++) {
		double due = t0 + (double)i / (double)in->rate;

		if (due > now_s())
			sleep_until(due);
		if (insert_one(in, i))
			return -1;
		t_now = now_s();
		if (i > 0 && t_now - t_prev > in->gap_max)
			in->gap_max = t_now - t_prev;
		t_prev = t_now;
		if (i % in->stride == 0 || i == in->count - 1)
			sample_add(c, &s, in->base + i, t_now);
	}
	in->t_last = now_s();
	return 0;
}

/*
 * unpaced: the first flow alone (checked), then flows 1 .. count-1 in one
 * run that stamps flow 1, every stride-th flow after it and the last. The
 * burst is timed by those stamps, so the run's set-up (the kernel swaps
 * its XDP dispatcher before and after) is not counted as inserting. The B
 * poller gets the sampled keys before the run, their times after it.
 */
static int insert_burst(struct inserter *in, struct run_ctx *c)
{
	unsigned long long rest = in->count - 1;
	unsigned long long nstamps = c && rest ? (rest - 1) / in->stride + 1 : 0;
	unsigned long s = 0;
	__u32 verdict = 0;

	if (nstamps > BENCH_STAMPS_MAX - 1) {
		fprintf(stderr, "sync_driver: at most %d samples per burst\n",
			BENCH_STAMPS_MAX - 1);
		return -1;
	}
	sample_add(c, &s, in->base, 0);
	for (unsigned long long k = 0; k < nstamps; k++)
		sample_add(c, &s, in->base + 1 + k * in->stride, 0);
	if (c && rest && (rest - 1) % in->stride)
		sample_add(c, &s, in->base + rest, 0);
	if (insert_one(in, 0))
		return -1;
	if (c)
		c->samples[0].t_insert = in->t_first;
	in->t_last = in->t_first;
	if (!rest)
		return 0;
	if (batch_run(in->batcher, in->base + 1, (__u32)rest, c ? (__u32)in->stride : 0,
		      &verdict)) {
		fprintf(stderr, "sync_driver: BPF_PROG_RUN of %llu: %s\n", rest, strerror(errno));
		return -1;
	}
	if (verdict != XDP_PASS)
		in->not_passed++;
	in->t_first = stamp_s(in->batcher, 0);
	in->t_last = stamp_s(in->batcher, BENCH_STAMPS_MAX - 1);
	/* the last flow's stamp is in the last slot, even when it is a stride-th */
	for (unsigned long k = 1; c && k < s; k++)
		c->samples[k].t_insert = k - 1 < nstamps && 1 + (k - 1) * in->stride < rest
					     ? stamp_s(in->batcher, (__u32)(k - 1))
					     : in->t_last;
	return 0;
}

/* $SYNC_DRIVER_SAMPLES=FILE: every sample as "t_insert lag_ms lag_lower_bound_ms" (diagnosis) */
static void dump_samples(const struct run_ctx *c)
{
	const char *path = getenv("SYNC_DRIVER_SAMPLES");
	FILE *f;

	if (!path || !*path || !(f = fopen(path, "w")))
		return;
	for (unsigned long s = 0; s < c->nsamples; s++) {
		const struct sample *sm = &c->samples[s];

		fprintf(f, "%.6f %.3f %.3f\n", sm->t_insert - c->samples[0].t_insert,
			sm->t_found ? (sm->t_found - sm->t_insert) * 1e3 : -1.0,
			sm->t_lastmiss > sm->t_insert ? (sm->t_lastmiss - sm->t_insert) * 1e3
						      : 0.0);
	}
	fclose(f);
}

/*
 * Each arrival lies between the last lookup that missed and the one that
 * hit. The upper bound is the lag reported; the lower bound shows how much
 * of a tail is this process being descheduled (both bounds then drift apart).
 */
static void print_lags(const struct run_ctx *c)
{
	unsigned long cap = c->nsamples ? c->nsamples : 1, n = 0;
	double *hi = calloc(cap, sizeof(*hi)), *lo = calloc(cap, sizeof(*lo));

	if (!hi || !lo) {
		free(hi);
		free(lo);
		return;
	}
	for (unsigned long s = 0; s < c->nsamples; s++) {
		const struct sample *sm = &c->samples[s];

		if (sm->t_found == 0)
			continue;
		hi[n] = (sm->t_found - sm->t_insert) * 1e3;
		lo[n] = sm->t_lastmiss > sm->t_insert ? (sm->t_lastmiss - sm->t_insert) * 1e3 : 0;
		n++;
	}
	qsort(hi, n, sizeof(*hi), cmp_double);
	qsort(lo, n, sizeof(*lo), cmp_double);
	printf("samples=%lu\nsamples_found=%lu\n", c->nsamples, n);
	printf("lag_p50_ms=%.3f\nlag_p99_ms=%.3f\nlag_max_ms=%.3f\n", percentile(hi, n, 0.50),
	       percentile(hi, n, 0.99), n ? hi[n - 1] : -1.0);
	printf("lag_lo_p50_ms=%.3f\nlag_lo_p99_ms=%.3f\nlag_lo_max_ms=%.3f\n",
	       percentile(lo, n, 0.50), percentile(lo, n, 0.99), n ? lo[n - 1] : -1.0);
	free(hi);
	free(lo);
}

/*
 * Applied rate: states that reached B (estimated from the share of samples
 * found, since pfsync may lose some) over first insert -> last arrival.
 */
static void print_applied(const struct run_ctx *c, unsigned long long count, double t_first)
{
	double t_last = 0;
	unsigned long found = 0;

	for (unsigned long s = 0; s < c->nsamples; s++) {
		if (c->samples[s].t_found == 0)
			continue;
		found++;
		if (c->samples[s].t_found > t_last)
			t_last = c->samples[s].t_found;
	}
	if (!found || t_last <= t_first) {
		printf("complete_s=-1\napplied_per_s=-1\n");
		return;
	}
	printf("complete_s=%.6f\napplied_per_s=%.0f\n", t_last - t_first,
	       (double)count * (double)found / (double)c->nsamples / (t_last - t_first));
}

int cmd_run(char **argv, int with_b)
{
	unsigned long long count, rate = 0, base, nsamples = 0, timeout = 0;
	struct pfsync_bpf xdp;
	struct pfsync_maps a, b;
	struct run_ctx c = {0};
	struct inserter in = {0};
	struct batcher bt = {0};
	pthread_t th;
	int rc = 1;

	if (parse_num("COUNT", argv[with_b ? 2 : 1], &count) ||
	    (with_b && (parse_num("RATE", argv[3], &rate) || parse_num("BASE", argv[4], &base) ||
			parse_num("SAMPLES", argv[5], &nsamples) ||
			parse_num("TIMEOUT_S", argv[6], &timeout))) ||
	    (!with_b && (parse_num("BASE", argv[2], &base) || parse_num("RATE", argv[3], &rate))) ||
	    count == 0)
		return 2;
	if (open_xdp(&xdp, &a, argv[0]))
		return 1;
	if (rate == 0 && batcher_load(&bt, xdp.xdp_fd))
		goto out_a;
	in = (struct inserter){.prog_fd = xdp.xdp_fd,
			       .a_states_fd = a.states,
			       .batcher = rate == 0 ? &bt : NULL,
			       .count = count,
			       .rate = rate,
			       .base = base,
			       .stride = 1};
	if (with_b) {
		if (pfsync_maps_open(&b, argv[1]))
			goto out_a;
		if (nsamples < 2)
			nsamples = 2;
		in.stride = count / (nsamples - 1) ? count / (nsamples - 1) : 1;
		c.nsamples = (unsigned long)(count / in.stride + 2);
		c.samples = calloc(c.nsamples, sizeof(*c.samples));
		c.b_states_fd = b.states;
		c.deadline = 1e300;
		if (!c.samples || pthread_create(&th, NULL, poll_b, &c)) {
			fprintf(stderr, "sync_driver: cannot start the B poller\n");
			free(c.samples);
			goto out_b;
		}
	}
	if (rate)
		rc = insert_paced(&in, with_b ? &c : NULL) ? 1 : 0;
	else
		rc = insert_burst(&in, with_b ? &c : NULL) ? 1 : 0;
	if (with_b) {
		c.nsamples = atomic_load(&c.published);
		c.deadline = now_s() + (double)timeout;
		atomic_store(&c.inserts_done, 1);
		pthread_join(th, NULL);
	}
	if (rc == 0) {
		double span = in.t_last - in.t_first;

		printf("count=%llu\nnot_passed=%lu\n", count, in.not_passed);
		printf("insert_gap_max_ms=%.3f\n", in.gap_max * 1e3);
		printf("insert_s=%.6f\noffered_per_s=%.0f\n", span,
		       span > 0 ? (double)(count - 1) / span : 0.0);
		if (with_b) {
			print_lags(&c);
			dump_samples(&c);
			print_applied(&c, count, in.t_first);
		}
	}
	if (with_b)
		free(c.samples);
out_b:
	if (with_b)
		pfsync_maps_close(&b);
out_a:
	bpf_object__close(bt.obj);
	pfsync_maps_close(&a);
	pfsync_bpf_close(&xdp);
	return rc;
}
