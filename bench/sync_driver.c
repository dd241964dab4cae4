// SPDX-License-Identifier: BSD-2-Clause
/*
 * bench/sync_driver: the measuring helper of bench/sync.sh (not a benchmark
 * on its own: run without a subcommand it says so and exits 0, because
 * scripts/run-bench.sh runs every build/bench/ binary).
 *
 *   config PIN_DIR
 *       set long UDP timeouts with adaptive scaling out of reach in the pinned
 *       pfsync_config, so no state expires while the bench runs (conntrackd's
 *       side gets nf_conntrack_udp_timeout the same way).
 *   run A_PIN B_PIN COUNT RATE BASE SAMPLES TIMEOUT_S
 *       create COUNT states on A by BPF_PROG_RUN of A's pfsync_xdp, one fresh
 *       UDP tuple per packet, paced to RATE/s (0 = as fast as possible);
 *       every (COUNT/SAMPLES)th key and the last one are looked up in B's
 *       states map by a second thread until they appear. Prints key=value
 *       lines: offered rate, applied rate (states on B, estimated from the
 *       samples found, / first insert on A -> last sample on B), lag
 *       p50/p99/max of the samples.
 *   fill A_PIN COUNT BASE RATE     the same without B (RATE 0: unpaced)
 *   count PIN_DIR                  entries in the states map
 *   missing A_PIN B_PIN MIN_AGE_S  A's states at least MIN_AGE_S old that B
 *                                  lacks: total=, old=, missing=
 *   mapmem PIN_DIR                 memlock (fdinfo), max_entries, key/value size
 *   now                            CLOCK_MONOTONIC seconds
 *   ctl CTL_SOCK COMMAND           one agent control command, reply printed
 *   waitidx CTL_SOCK N TIMEOUT_S START
 *       poll the agent's `status --json` until states_indexed >= N; prints
 *       elapsed=seconds since START (a `now` value) and the last figure.
 *   udpgen DST_BASE COUNT RATE BASE [TIMES_FILE]
 *       COUNT single-datagram UDP flows (fresh destination address/port per
 *       flow) paced to RATE/s; TIMES_FILE gets each send's CLOCK_MONOTONIC
 *       time as a double, for conntrackd's lag (bench/sync_ctdpoll.py).
 *   ctinsert SRC DST_BASE COUNT RATE BASE [TIMES_FILE]
 *       the same flows' conntrack entries created in this netns over
 *       ctnetlink (IPCTNL_MSG_CT_NEW, 600 s timeout, many per sendmsg),
 *       paced to RATE/s (0 = as fast as the kernel takes them): conntrackd
 *       sees the same NEW events as from forwarded packets, at a rate the
 *       packet path of this 2-core machine cannot offer (pfsync's load
 *       likewise creates states without packet I/O, by BPF_PROG_RUN).
 *       TIMES_FILE as udpgen's (each flow: when its message went out).
 *
 * Times are CLOCK_MONOTONIC throughout, so the shell, this helper and the
 * Python poller agree.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench_driver.h"
#include "pfsync_common.h"
#include "pfsync_loader.h"
#include "pfsync_logic.h"
#include "pfsync_maps.h"

#define UDP_TIMEOUT_S	   3600	     /* longer than any bench run */
#define ADAPTIVE_OFF_START 400000000 /* states: never reached */
#define ADAPTIVE_OFF_END   800000000
#define POLL_SLEEP_NS	   50000      /* B lookup thread: between passes */
#define SRC_NET		   0x0a800000 /* 10.128.0.0/16: sources of the flows */
#define DST_ADDR	   0x0aff0001 /* 10.255.0.1 */
#define FLOW_DPORT	   53
#define FLOWS_PER_ADDR	   60000 /* udpgen: ports per destination address */
#define CT_SPORT	   40000 /* ctinsert: the flows' source port */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int parse_num(const char *what, const char *s, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-') {
		fprintf(stderr, "sync_driver: %s: '%s' is not a number\n", what, s);
		return -1;
	}
	return 0;
}

/* ---- packets and keys ---------------------------------------------------- */
struct frame {
	unsigned char data[ETH_HLEN + sizeof(struct iphdr) + sizeof(struct udphdr) + 16];
	unsigned int len;
};

static __u16 ip_checksum(const void *hdr, size_t len)
{
	const __u16 *w = hdr;
	__u32 sum = 0;

	for (; len > 1; len -= 2)
		sum += *w++;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/*
 * Flow i, split as bpf/bench_driver.bpf.c rewrites a frame: the low 15 bits
 * pick the source port (32768..65535), the next 16 the last two bytes of the
 * source address in 10.128/16.
 */
static __u32 flow_src(__u64 i)
{
	return htonl(SRC_NET | (__u32)((i >> BENCH_FLOW_PORT_BITS) & 0xffff));
}

static __u16 flow_sport(__u64 i)
{
	return htons((__u16)(0x8000 | (i & ((1u << BENCH_FLOW_PORT_BITS) - 1))));
}

/* Ethernet + IPv4 + UDP, flow i: flow_src(i):flow_sport(i) -> 10.255.0.1:53 */
static void make_frame(struct frame *f, __u64 i)
{
	struct ethhdr *eth = (struct ethhdr *)f->data;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	struct udphdr *udp = (struct udphdr *)(ip + 1);
	static const unsigned char mac_a[ETH_ALEN] = {0x02, 0, 0, 0, 0, 1};
	static const unsigned char mac_b[ETH_ALEN] = {0x02, 0, 0, 0, 0, 2};

	memset(f, 0, sizeof(*f));
	memcpy(eth->h_dest, mac_a, ETH_ALEN);
	memcpy(eth->h_source, mac_b, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons(sizeof(*ip) + sizeof(*udp) + 16);
	ip->saddr = flow_src(i);
	ip->daddr = htonl(DST_ADDR);
	ip->check = ip_checksum(ip, sizeof(*ip));
	udp->source = flow_sport(i);
	udp->dest = htons(FLOW_DPORT);
	udp->len = htons(sizeof(*udp) + 16);
	f->len = sizeof(f->data);
}

/* The key the datapath stores for flow i (normalised like pf_state_key). */
static void make_key(struct pfsync_key *k, __u64 i)
{
	memset(k, 0, sizeof(*k));
	k->addr[0][0] = flow_src(i);
	k->addr[1][0] = htonl(DST_ADDR);
	k->port[0] = flow_sport(i);
	k->port[1] = htons(FLOW_DPORT);
	k->proto = IPPROTO_UDP;
	k->af = PFSYNC_AF_INET;
	pfsync_key_normalize(k);
}

static int prog_run(int prog_fd, const struct frame *f, __u32 *verdict)
{
	unsigned char out[sizeof(f->data) + 256];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->data, .data_size_in = f->len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);

	if (bpf_prog_test_run_opts(prog_fd, &o))
		return -errno;
	*verdict = o.retval;
	return 0;
}

/*
 * Unpaced runs: bench_driver.o (beside the pfsync_xdp.o in use) rewrites the
 * tuple of one frame per repeat and tail-calls A's pfsync_xdp, so a single
 * BPF_PROG_RUN makes a whole burst. One syscall per state would make the
 * load generator the limit of a burst; and a repeated XDP run costs a few
 * ms of set-up (the kernel swaps its XDP dispatcher), so runs are not cut
 * into small batches either: the driver stamps the sampled runs itself.
 */
struct batcher {
	struct bpf_object *obj;
	int prog_fd, seq_fd, stamps_fd;
};

static int batcher_set_target(struct bpf_object *obj, int target_fd)
{
	int slots = bpf_object__find_map_fd_by_name(obj, "bench_target");
	__u32 zero = 0;

	if (slots < 0 || bpf_map_update_elem(slots, &zero, &target_fd, BPF_ANY)) {
		fprintf(stderr, "sync_driver: bench_target: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int batcher_load(struct batcher *bt, int target_fd)
{
	char path[PATH_MAX];
	const char *obj_path = pfsync_bpf_default_obj(), *slash = strrchr(obj_path, '/');
	struct bpf_program *prog;

	snprintf(path, sizeof(path), "%.*s/bench_driver.o", slash ? (int)(slash - obj_path) : 1,
		 slash ? obj_path : ".");
	bt->obj = bpf_object__open_file(path, NULL);
	if (!bt->obj || bpf_object__load(bt->obj)) {
		fprintf(stderr, "sync_driver: cannot load %s: %s\n", path, strerror(errno));
		bpf_object__close(bt->obj);
		bt->obj = NULL;
		return -1;
	}
	prog = bpf_object__find_program_by_name(bt->obj, "bench_driver");
	bt->prog_fd = prog ? bpf_program__fd(prog) : -1;
	bt->seq_fd = bpf_object__find_map_fd_by_name(bt->obj, "bench_seq");
	bt->stamps_fd = bpf_object__find_map_fd_by_name(bt->obj, "bench_stamps");
	if (bt->prog_fd < 0 || bt->seq_fd < 0 || bt->stamps_fd < 0 ||
	    batcher_set_target(bt->obj, target_fd)) {
		fprintf(stderr, "sync_driver: %s lacks bench_driver or its maps\n", path);
		bpf_object__close(bt->obj);
		bt->obj = NULL;
		return -1;
	}
	return 0;
}

/*
 * Flows first .. first+n-1 in one BPF_PROG_RUN, stamping every `every`th
 * from the first on (stamp k) and the last (stamp BENCH_STAMPS_MAX - 1);
 * verdict of the last one.
 */
static int batch_run(const struct batcher *bt, __u64 first, __u32 n, __u32 every, __u32 *verdict)
{
	struct bench_seq seq = {.runs = (__u32)first,
				.stamp_every = every,
				.stamp_first = (__u32)first,
				.stamp_last = (__u32)(first + n - 1)};
	struct frame f;
	__u32 zero = 0;
	LIBBPF_OPTS(bpf_test_run_opts, o, .repeat = n);

	make_frame(&f, first);
	o.data_in = f.data;
	o.data_size_in = f.len;
	if (bpf_map_update_elem(bt->seq_fd, &zero, &seq, BPF_ANY) ||
	    bpf_prog_test_run_opts(bt->prog_fd, &o))
		return -errno;
	*verdict = o.retval;
	return 0;
}

/* stamp k of the last batch_run, CLOCK_MONOTONIC seconds (0: not stamped) */
static double stamp_s(const struct batcher *bt, __u32 k)
{
	__u64 ns = 0;

	if (bpf_map_lookup_elem(bt->stamps_fd, &k, &ns))
		return 0;
	return (double)ns / 1e9;
}

/* ---- loading ------------------------------------------------------------- */
/*
 * Only pfsync_xdp, against the maps pinned in pin_dir (the loader keeps a
 * pinned states map's size, set by the agent's --states-max). The object is
 * $PFSYNC_BPF_OBJ (bench/sync.sh sets it), as pfsync_bpf_default_obj() says.
 */
static int xdp_load(struct pfsync_bpf *b, const char *pin_dir)
{
	if (pfsync_bpf_load(b, NULL, pin_dir, 0, PFSYNC_LOAD_XDP))
		return -1;
	if (b->xdp_fd < 0) {
		fprintf(stderr, "sync_driver: pfsync_xdp not loaded\n");
		pfsync_bpf_close(b);
		return -1;
	}
	return 0;
}

/* ---- config -------------------------------------------------------------- */
static int cmd_config(const char *pin_dir)
{
	struct pfsync_maps maps;
	struct pfsync_config cfg;
	int rc;

	if (pfsync_maps_open(&maps, pin_dir))
		return 1;
	rc = pfsync_config_read(&maps, &cfg);
	if (!rc) {
		cfg.timeouts[PFTM_UDP_FIRST_PACKET] = UDP_TIMEOUT_S;
		cfg.timeouts[PFTM_UDP_SINGLE] = UDP_TIMEOUT_S;
		cfg.timeouts[PFTM_UDP_MULTIPLE] = UDP_TIMEOUT_S;
		cfg.timeouts[PFTM_ADAPTIVE_START] = ADAPTIVE_OFF_START;
		cfg.timeouts[PFTM_ADAPTIVE_END] = ADAPTIVE_OFF_END;
		rc = pfsync_config_write(&maps, &cfg);
	}
	if (rc)
		fprintf(stderr, "sync_driver: writing the configuration: %s\n", strerror(-rc));
	else
		printf("capacity=%u\n", pfsync_states_capacity(&maps));
	pfsync_maps_close(&maps);
	return rc ? 1 : 0;
}

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

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double percentile(const double *sorted, unsigned long n, double p)
{
	unsigned long idx;

	if (n == 0)
		return -1;
	idx = (unsigned long)(p * (double)(n - 1) + 0.5);
	return sorted[idx < n ? idx : n - 1];
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

static int open_xdp(struct pfsync_bpf *b, struct pfsync_maps *maps, const char *pin)
{
	if (xdp_load(b, pin))
		return -1;
	if (pfsync_maps_open(maps, pin)) {
		pfsync_bpf_close(b);
		return -1;
	}
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

static int cmd_run(char **argv, int with_b)
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

/* ---- count / mapmem ------------------------------------------------------ */
static long count_keys(int fd)
{
	struct pfsync_key key, next;
	void *prev = NULL;
	long n = 0;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		n++;
	}
	return errno == ENOENT ? n : -errno;
}

static int cmd_count(const char *pin_dir)
{
	struct pfsync_maps m;
	long n;

	if (pfsync_maps_open(&m, pin_dir))
		return 1;
	n = count_keys(m.states);
	pfsync_maps_close(&m);
	if (n < 0) {
		fprintf(stderr, "sync_driver: counting states: %s\n", strerror((int)-n));
		return 1;
	}
	printf("%ld\n", n);
	return 0;
}

/*
 * States of A at least MIN_AGE_S old (by their creation time) that B's map
 * lacks: the fault suite's measure of what loss repair left undone.
 */
static int cmd_missing(char **argv)
{
	struct pfsync_key key, next;
	struct pfsync_state_value val;
	struct pfsync_maps a, b;
	struct timespec ts;
	unsigned long old_enough = 0, missing = 0, total = 0;
	__u64 now, min_age = strtoull(argv[2], NULL, 10) * 1000000000ULL;
	void *prev = NULL;
	int rc = 0;

	if (pfsync_maps_open(&a, argv[0]))
		return 1;
	if (pfsync_maps_open(&b, argv[1])) {
		pfsync_maps_close(&a);
		return 1;
	}
	clock_gettime(CLOCK_BOOTTIME, &ts);
	now = (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
	while (bpf_map_get_next_key(a.states, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(a.states, &key, &val) != 0)
			continue; /* deleted meanwhile */
		total++;
		if (val.creation + min_age > now)
			continue;
		old_enough++;
		if (bpf_map_lookup_elem(b.states, &key, &val) != 0)
			missing++;
	}
	if (errno != ENOENT) {
		fprintf(stderr, "sync_driver: walking A's states: %s\n", strerror(errno));
		rc = 1;
	}
	printf("total=%lu old=%lu missing=%lu\n", total, old_enough, missing);
	pfsync_maps_close(&b);
	pfsync_maps_close(&a);
	return rc;
}

/* memlock as the kernel accounts it for this map fd (fdinfo). */
static long long fd_memlock(int fd)
{
	char path[64], line[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int cmd_mapmem(const char *pin_dir)
{
	struct bpf_map_info info = {0};
	__u32 len = sizeof(info);
	struct pfsync_maps m;

	if (pfsync_maps_open(&m, pin_dir))
		return 1;
	if (bpf_obj_get_info_by_fd(m.states, &info, &len)) {
		fprintf(stderr, "sync_driver: map info: %s\n", strerror(errno));
		pfsync_maps_close(&m);
		return 1;
	}
	printf("memlock=%lld\nmax_entries=%u\nkey_size=%u\nvalue_size=%u\nmap_flags=0x%x\n",
	       fd_memlock(m.states), info.max_entries, info.key_size, info.value_size,
	       info.map_flags);
	pfsync_maps_close(&m);
	return 0;
}

/* ---- waitidx ------------------------------------------------------------- */
/* One control-socket exchange (the agent's protocol: one line, then EOF). */
static int ctl_exchange(const char *sock_path, const char *cmd, char *buf, size_t cap)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t used = 0, len = strlen(cmd);
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, cmd, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		close(fd);
		return -1;
	}
	shutdown(fd, SHUT_WR);
	while (used < cap - 1 && (n = read(fd, buf + used, cap - 1 - used)) > 0)
		used += (size_t)n;
	close(fd);
	buf[used] = '\0';
	return 0;
}

/* states_indexed from `status --json`, or -1 */
static long agent_indexed(const char *sock_path)
{
	static const char field[] = "\"states_indexed\":";
	char buf[4096];
	const char *p;

	if (ctl_exchange(sock_path, "status --json", buf, sizeof(buf)))
		return -1;
	p = strstr(buf, field);
	return p ? strtol(p + strlen(field), NULL, 10) : -1;
}

static int cmd_ctl(const char *sock_path, const char *cmd)
{
	char buf[16384];

	if (ctl_exchange(sock_path, cmd, buf, sizeof(buf))) {
		fprintf(stderr, "sync_driver: control socket %s: %s\n", sock_path, strerror(errno));
		return 1;
	}
	fputs(buf, stdout);
	return strncmp(buf, "error: ", 7) == 0;
}

static int cmd_waitidx(char **argv)
{
	unsigned long long want, timeout;
	double start, deadline, t;
	long have = -1;

	if (parse_num("N", argv[1], &want) || parse_num("TIMEOUT_S", argv[2], &timeout))
		return 2;
	start = strtod(argv[3], NULL);
	deadline = now_s() + (double)timeout;
	for (;;) {
		have = agent_indexed(argv[0]);
		t = now_s();
		if (have >= 0 && (unsigned long long)have >= want)
			break;
		if (t > deadline) {
			printf("elapsed=-1\nindexed=%ld\n", have);
			return 1;
		}
		sleep_until(t + 0.002);
	}
	printf("elapsed=%.6f\nindexed=%ld\n", t - start, have);
	return 0;
}

/* ---- udpgen -------------------------------------------------------------- */
static int write_times(const char *path, const double *times, unsigned long long n)
{
	FILE *f = fopen(path, "wb");
	int rc = 0;

	if (!f || fwrite(times, sizeof(*times), n, f) != n)
		rc = -1;
	if (f && fclose(f))
		rc = -1;
	if (rc)
		fprintf(stderr, "sync_driver: writing %s failed\n", path);
	return rc;
}

static int cmd_udpgen(int argc, char **argv)
{
	unsigned long long count, rate, base, errors = 0;
	struct in_addr dst_base;
	double *times = NULL, t0;
	char payload[16] = "pfsync-bench";
	int fd, rc = 0;

	if (inet_pton(AF_INET, argv[0], &dst_base) != 1) {
		fprintf(stderr, "sync_driver: DST_BASE %s: not an IPv4 address\n", argv[0]);
		return 2;
	}
	if (parse_num("COUNT", argv[1], &count) || parse_num("RATE", argv[2], &rate) ||
	    parse_num("BASE", argv[3], &base))
		return 2;
	if (argc > 4 && !(times = calloc(count ? count : 1, sizeof(*times)))) {
		fprintf(stderr, "sync_driver: out of memory\n");
		return 1;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		fprintf(stderr, "sync_driver: socket: %s\n", strerror(errno));
		free(times);
		return 1;
	}
	t0 = now_s();
	for (unsigned long long i = 0; i < count; i++) {
		unsigned long long flow = base + i;
		struct sockaddr_in sa = {.sin_family = AF_INET};

		if (rate && (i & 7) == 0) {
			double due = t0 + (double)i / (double)rate;

			if (due > now_s())
				sleep_until(due);
		}
		sa.sin_addr.s_addr = htonl(ntohl(dst_base.s_addr) + (__u32)(flow / FLOWS_PER_ADDR));
		sa.sin_port = htons((__u16)(1024 + flow % FLOWS_PER_ADDR));
		while (sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&sa, sizeof(sa)) <
		       0) {
			if (errno != ENOBUFS && errno != EAGAIN) {
				fprintf(stderr, "sync_driver: sendto: %s\n", strerror(errno));
				close(fd);
				free(times);
				return 1;
			}
			errors++;
		}
		if (times)
			times[i] = now_s();
	}
	printf("count=%llu\nsend_s=%.6f\nretries=%llu\n", count, now_s() - t0, errors);
	close(fd);
	if (times)
		rc = write_times(argv[4], times, count) ? 1 : 0;
	free(times);
	return rc;
}

/* ---- ctinsert ------------------------------------------------------------ */
#define CT_BATCH   64  /* messages per sendmsg */
#define CT_MSG_MAX 256 /* bytes one CT_NEW takes, at most */
#define CT_TIMEOUT 600

struct nlbuf {
	unsigned char data[CT_BATCH * CT_MSG_MAX];
	size_t len;
};

static struct nlattr *nla_put(struct nlbuf *b, __u16 type, const void *val, size_t len)
{
	struct nlattr *a = (struct nlattr *)(b->data + b->len);

	a->nla_type = type;
	a->nla_len = (__u16)(NLA_HDRLEN + len);
	if (len)
		memcpy((unsigned char *)a + NLA_HDRLEN, val, len);
	b->len += NLA_ALIGN(a->nla_len);
	return a;
}

static struct nlattr *nest_start(struct nlbuf *b, __u16 type)
{
	return nla_put(b, type | NLA_F_NESTED, NULL, 0);
}

static void nest_end(struct nlbuf *b, struct nlattr *a)
{
	a->nla_len = (__u16)(b->data + b->len - (unsigned char *)a);
}

static void put_tuple(struct nlbuf *b, __u16 type, __u32 src, __u32 dst, __u16 sport, __u16 dport)
{
	struct nlattr *t = nest_start(b, type), *n;
	__u8 proto = IPPROTO_UDP;

	n = nest_start(b, CTA_TUPLE_IP);
	nla_put(b, CTA_IP_V4_SRC, &src, sizeof(src));
	nla_put(b, CTA_IP_V4_DST, &dst, sizeof(dst));
	nest_end(b, n);
	n = nest_start(b, CTA_TUPLE_PROTO);
	nla_put(b, CTA_PROTO_NUM, &proto, sizeof(proto));
	nla_put(b, CTA_PROTO_SRC_PORT, &sport, sizeof(sport));
	nla_put(b, CTA_PROTO_DST_PORT, &dport, sizeof(dport));
	nest_end(b, n);
	nest_end(b, t);
}

/* flow i as udpgen sends it: SRC:FLOW_SPORT -> DST_BASE + i / 60000 : 1024 + i % 60000 */
static void put_ct_new(struct nlbuf *b, __u32 seq, __u32 src, __u32 dst_base, __u64 flow)
{
	struct nlmsghdr *nh = (struct nlmsghdr *)(b->data + b->len);
	struct nfgenmsg *g;
	__u32 dst = htonl(ntohl(dst_base) + (__u32)(flow / FLOWS_PER_ADDR));
	__u16 dport = htons((__u16)(1024 + flow % FLOWS_PER_ADDR)), sport = htons(CT_SPORT);
	__u32 timeout = htonl(CT_TIMEOUT);

	nh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
	nh->nlmsg_seq = seq;
	nh->nlmsg_pid = 0;
	b->len += NLMSG_HDRLEN;
	g = (struct nfgenmsg *)(b->data + b->len);
	memset(g, 0, sizeof(*g));
	g->nfgen_family = AF_INET;
	g->version = NFNETLINK_V0;
	b->len += NLMSG_ALIGN(sizeof(*g));
	put_tuple(b, CTA_TUPLE_ORIG, src, dst, sport, dport);
	put_tuple(b, CTA_TUPLE_REPLY, dst, src, dport, sport);
	nla_put(b, CTA_TIMEOUT, &timeout, sizeof(timeout));
	nh->nlmsg_len = (__u32)(b->data + b->len - (unsigned char *)nh);
	b->len = NLMSG_ALIGN(b->len);
}

/* counts the error replies waiting (ctnetlink answers only failures) */
static unsigned long long drain_errors(int fd, int *first_err)
{
	static unsigned char buf[65536];
	unsigned long long errs = 0;
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
		     nh = NLMSG_NEXT(nh, n)) {
			struct nlmsgerr *e = NLMSG_DATA(nh);

			if (nh->nlmsg_type == NLMSG_ERROR && e->error) {
				if (!*first_err)
					*first_err = -e->error;
				errs++;
			}
		}
	}
	return errs;
}

static int cmd_ctinsert(int argc, char **argv)
{
	unsigned long long count, rate, base, errors = 0;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct in_addr src, dst_base;
	static struct nlbuf b;
	double *times = NULL;
	int fd, first_err = 0, rc, rcvbuf = 8 << 20;
	__u32 seq = 1;
	double t0;

	if (inet_pton(AF_INET, argv[0], &src) != 1 || inet_pton(AF_INET, argv[1], &dst_base) != 1) {
		fprintf(stderr, "sync_driver: ctinsert: SRC and DST_BASE are IPv4 addresses\n");
		return 2;
	}
	if (parse_num("COUNT", argv[2], &count) || parse_num("RATE", argv[3], &rate) ||
	    parse_num("BASE", argv[4], &base))
		return 2;
	if (argc > 5 && !(times = calloc(count ? count : 1, sizeof(*times)))) {
		fprintf(stderr, "sync_driver: out of memory\n");
		return 1;
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0) {
		fprintf(stderr, "sync_driver: netlink socket: %s\n", strerror(errno));
		free(times);
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	t0 = now_s();
	for (unsigned long long i = 0; i < count;) {
		unsigned long long first = i;
		double t;

		if (rate) {
			double due = t0 + (double)i / (double)rate;

			if (due > now_s())
				sleep_until(due);
		}
		b.len = 0;
		for (unsigned int k = 0; k < CT_BATCH && i < count; k++, i++)
			put_ct_new(&b, seq++, src.s_addr, dst_base.s_addr, base + i);
		while (sendto(fd, b.data, b.len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) <
		       0) {
			if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
				fprintf(stderr, "sync_driver: ctnetlink: %s\n", strerror(errno));
				close(fd);
				free(times);
				return 1;
			}
		}
		t = now_s();
		for (unsigned long long j = first; times && j < i; j++)
			times[j] = t;
		errors += drain_errors(fd, &first_err);
	}
	errors += drain_errors(fd, &first_err);
	printf("count=%llu\ninsert_s=%.6f\nerrors=%llu\n", count, now_s() - t0, errors);
	if (errors)
		fprintf(stderr, "sync_driver: ctinsert: %llu entries refused, first: %s\n", errors,
			strerror(first_err));
	close(fd);
	rc = errors ? 1 : 0;
	if (times && write_times(argv[5], times, count))
		rc = 1;
	free(times);
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: sync_driver config PIN_DIR\n"
			"       sync_driver run A_PIN B_PIN COUNT RATE BASE SAMPLES TIMEOUT_S\n"
			"       sync_driver fill A_PIN COUNT BASE RATE\n"
			"       sync_driver count|mapmem PIN_DIR\n"
			"       sync_driver missing A_PIN B_PIN MIN_AGE_S\n"
			"       sync_driver now\n"
			"       sync_driver ctl CTL_SOCK COMMAND\n"
			"       sync_driver waitidx CTL_SOCK N TIMEOUT_S START\n"
			"       sync_driver udpgen DST_BASE COUNT RATE BASE [TIMES_FILE]\n"
			"       sync_driver ctinsert SRC DST_BASE COUNT RATE BASE [TIMES_FILE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	int nargs = argc - 2;

	if (argc < 2 || cmd[0] == '-') {
		printf("sync_driver: helper of bench/sync.sh (run that); nothing to do\n");
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "config") && nargs == 1)
		return cmd_config(argv[2]);
	if (!strcmp(cmd, "run") && nargs == 7)
		return cmd_run(argv + 2, 1);
	if (!strcmp(cmd, "fill") && nargs == 4)
		return cmd_run(argv + 2, 0);
	if (!strcmp(cmd, "count") && nargs == 1)
		return cmd_count(argv[2]);
	if (!strcmp(cmd, "missing") && nargs == 3)
		return cmd_missing(argv + 2);
	if (!strcmp(cmd, "mapmem") && nargs == 1)
		return cmd_mapmem(argv[2]);
	if (!strcmp(cmd, "now") && nargs == 0)
		return printf("%.6f\n", now_s()) < 0;
	if (!strcmp(cmd, "ctl") && nargs == 2)
		return cmd_ctl(argv[2], argv[3]);
	if (!strcmp(cmd, "waitidx") && nargs == 4)
		return cmd_waitidx(argv + 2);
	if (!strcmp(cmd, "udpgen") && (nargs == 4 || nargs == 5))
		return cmd_udpgen(nargs, argv + 2);
	if (!strcmp(cmd, "ctinsert") && (nargs == 5 || nargs == 6))
		return cmd_ctinsert(nargs, argv + 2);
	return usage();
}
