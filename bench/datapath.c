// SPDX-License-Identifier: BSD-2-Clause
/*
 * bench/datapath: what one packet costs in pfsync_xdp, against baselines
 * measured in the same run (these machines are noisy: read the ratios).
 *
 * 1. BPF_PROG_RUN, repeat >= 1M, kernel-reported ns per run:
 *    bench_empty (XDP_PASS, the floor), bench_minimal (5-tuple hash lookup
 *    + per-CPU counter, the limit for any hash state table), pfsync_xdp on
 *    an established TCP packet and a UDP packet, IPv4 and IPv6.
 * 2. The new-state path needs a fresh tuple per packet, which repeat alone
 *    cannot give (the first run creates the state, the rest hit it). So
 *    BPF_PROG_RUN runs bench_driver, which rewrites the source port and
 *    address from a run counter and tail-calls pfsync_xdp, in batches of
 *    --fresh SYNs (table flushed and ringbuf drained between batches, each
 *    batch checked to insert one state per packet, >= 1M packets in all).
 *    The driver's own cost (driver -> bench_empty, minus bench_empty) is
 *    subtracted. The same driver gives bench_minimal's miss cost.
 * 3. Forwarded packets per second through a firewall namespace, by running
 *    bench/datapath/forward.sh (no filter, nftables conntrack, pfsync-xdp),
 *    which uses this binary's `gen` and `sink` subcommands as load.
 *
 * Build directory: --build DIR, else $PFSYNC_BUILD, else ./build.
 * Usage: datapath [--repeat N] [--rounds N] [--fresh N] [--no-forward]
 *                 [--seconds S] [--fwd-rounds N] [--build DIR]
 *        datapath gen udp|tcp ADDR PORT SECONDS   (load generator)
 *        datapath xdpgen IFNAME DST_MAC SRC_MAC SRC_IP DST_IP PORT SECONDS
 *                 (UDP frames out of IFNAME at XDP speed, live-frame mode)
 *        datapath sink udp|tcp PORT               (discarding receiver)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pfsync_common.h"

#if __has_include("pfsync_loader.h")
#include "pfsync_loader.h"
#define HAVE_LOADER 1
#else
#define HAVE_LOADER 0
#endif

#define PKT_MAX	   256
#define MAX_CASES  32
#define MAX_ROUNDS 31
/* table size for our program: a new-state batch fills it to about a third */
#define BENCH_STATES_MAX (1u << 18)

struct opts {
	__u32 repeat;
	int rounds;
	int fresh; /* fresh tuples per new-state round */
	int forward;
	int seconds;
	int fwd_rounds;
	const char *build;
};

/* ---- packets ------------------------------------------------------------- */

struct pkt {
	__u8 data[PKT_MAX];
	__u32 len;
};

struct flow {
	int af; /* AF_INET / AF_INET6 */
	__u8 proto;
	__u8 saddr[16], daddr[16];
	__u16 sport, dport; /* host order */
};

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_PSH 0x08
#define TH_ACK 0x10

static __u16 csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __u16 ip_header_csum(const void *hdr, size_t len)
{
	const __u8 *p = hdr;
	__u32 sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (__u32)(p[i] << 8 | p[i + 1]);
	return htons(csum_fold(sum));
}

/* Writes Ethernet + IP header for f carrying l4len bytes; returns the L4 offset. */
static size_t put_l3(struct pkt *p, const struct flow *f, size_t l4len)
{
	struct ethhdr *eth = (struct ethhdr *)p->data;

	memset(p->data, 0, sizeof(p->data));
	memcpy(eth->h_dest, "\x02\x00\x00\x00\x00\x02", ETH_ALEN);
	memcpy(eth->h_source, "\x02\x00\x00\x00\x00\x01", ETH_ALEN);
	if (f->af == AF_INET) {
		struct iphdr *ip = (struct iphdr *)(eth + 1);

		eth->h_proto = htons(ETH_P_IP);
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = f->proto;
		ip->tot_len = htons((__u16)(sizeof(*ip) + l4len));
		memcpy(&ip->saddr, f->saddr, 4);
		memcpy(&ip->daddr, f->daddr, 4);
		ip->check = ip_header_csum(ip, sizeof(*ip));
		return sizeof(*eth) + sizeof(*ip);
	}
	struct ipv6hdr *ip6 = (struct ipv6hdr *)(eth + 1);

	eth->h_proto = htons(ETH_P_IPV6);
	ip6->version = 6;
	ip6->hop_limit = 64;
	ip6->nexthdr = f->proto;
	ip6->payload_len = htons((__u16)l4len);
	memcpy(&ip6->saddr, f->saddr, 16);
	memcpy(&ip6->daddr, f->daddr, 16);
	return sizeof(*eth) + sizeof(*ip6);
}

/* A TCP segment of f (or of its reverse) with flags, seq, ack, payload bytes. */
static void build_tcp(struct pkt *p, const struct flow *f, int reverse, __u8 flags, __u32 seq,
		      __u32 ack, size_t payload)
{
	struct flow r = *f;
	struct tcphdr th;
	size_t off;

	if (reverse) {
		memcpy(r.saddr, f->daddr, 16);
		memcpy(r.daddr, f->saddr, 16);
		r.sport = f->dport;
		r.dport = f->sport;
	}
	off = put_l3(p, &r, sizeof(th) + payload);
	memset(&th, 0, sizeof(th));
	th.source = htons(r.sport);
	th.dest = htons(r.dport);
	th.seq = htonl(seq);
	th.ack_seq = htonl(ack);
	th.doff = 5;
	th.fin = !!(flags & TH_FIN);
	th.syn = !!(flags & TH_SYN);
	th.psh = !!(flags & TH_PSH);
	th.ack = !!(flags & TH_ACK);
	th.window = htons(65535);
	memcpy(p->data + off, &th, sizeof(th));
	memset(p->data + off + sizeof(th), 'x', payload);
	p->len = (__u32)(off + sizeof(th) + payload);
}

static void build_udp(struct pkt *p, const struct flow *f, size_t payload)
{
	struct udphdr uh;
	size_t off = put_l3(p, f, sizeof(uh) + payload);

	uh.source = htons(f->sport);
	uh.dest = htons(f->dport);
	uh.len = htons((__u16)(sizeof(uh) + payload));
	uh.check = 0;
	memcpy(p->data + off, &uh, sizeof(uh));
	memset(p->data + off + sizeof(uh), 'u', payload);
	p->len = (__u32)(off + sizeof(uh) + payload);
}

static struct flow make_flow(int af, __u8 proto, __u16 sport)
{
	struct flow f = {.af = af, .proto = proto, .sport = sport, .dport = 80};

	if (af == AF_INET) {
		inet_pton(AF_INET, "10.0.0.1", f.saddr);
		inet_pton(AF_INET, "10.0.0.2", f.daddr);
	} else {
		inet_pton(AF_INET6, "fd00::1", f.saddr);
		inet_pton(AF_INET6, "fd00::2", f.daddr);
	}
	return f;
}

/* ---- running programs ---------------------------------------------------- */

/* One BPF_PROG_RUN; returns kernel ns per run (-1 on error). */
static double prog_run(int fd, const struct pkt *p, __u32 repeat, __u32 *verdict)
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

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- baselines ----------------------------------------------------------- */

struct baseline {
	struct bpf_object *obj;
	int prog_fd;
	int states_fd; /* bench_minimal only */
};

static int baseline_load(struct baseline *b, const char *build, const char *name)
{
	char path[PATH_MAX];
	struct bpf_program *prog;

	snprintf(path, sizeof(path), "%s/%s.o", build, name);
	b->obj = bpf_object__open_file(path, NULL);
	if (!b->obj) {
		fprintf(stderr, "datapath: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (bpf_object__load(b->obj)) {
		fprintf(stderr, "datapath: cannot load %s: %s\n", path, strerror(errno));
		bpf_object__close(b->obj);
		b->obj = NULL;
		return -1;
	}
	prog = bpf_object__find_program_by_name(b->obj, name);
	b->prog_fd = prog ? bpf_program__fd(prog) : -1;
	b->states_fd = bpf_object__find_map_fd_by_name(b->obj, "bench_states");
	return b->prog_fd < 0 ? -1 : 0;
}

/* bench_minimal's key, as its parser builds it from the packet. */
struct minimal_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport, dport;
	__u8 proto;
	__u8 pad[3];
};

static void minimal_insert(const struct baseline *b, const struct flow *f)
{
	struct minimal_key k = {0};
	__u64 created = 1;

	memcpy(k.saddr, f->saddr, f->af == AF_INET ? 4 : 16);
	memcpy(k.daddr, f->daddr, f->af == AF_INET ? 4 : 16);
	k.sport = htons(f->sport);
	k.dport = htons(f->dport);
	k.proto = f->proto;
	if (bpf_map_update_elem(b->states_fd, &k, &created, BPF_ANY))
		fprintf(stderr, "datapath: bench_states update: %s\n", strerror(errno));
}

/* ---- results ------------------------------------------------------------- */

struct result {
	const char *name;
	double ns;
	const char *note;
};

static struct result results[MAX_CASES];
static int nresults;

static void add_result(const char *name, double ns, const char *note)
{
	if (nresults < MAX_CASES)
		results[nresults++] = (struct result){name, ns, note};
}

static double result_ns(const char *name)
{
	for (int i = 0; i < nresults; i++)
		if (!strcmp(results[i].name, name))
			return results[i].ns;
	return -1;
}

/* Median over rounds of prog_run(repeat); -1 if any run fails or the
 * verdict is not `want`. */
static double measure(int fd, const struct pkt *p, const struct opts *o, __u32 want)
{
	double v[MAX_ROUNDS];
	__u32 verdict = 0;

	for (int r = 0; r < o->rounds; r++) {
		v[r] = prog_run(fd, p, o->repeat, &verdict);
		if (v[r] < 0)
			return -1;
		if (verdict != want) {
			fprintf(stderr, "datapath: verdict %u, expected %u\n", verdict, want);
			return -1;
		}
	}
	return median(v, o->rounds);
}

/* ---- new-state driver ------------------------------------------------------ */

/* bench_driver gives every run a fresh tuple and tail-calls its target. */
struct driver {
	struct baseline base;
	int target_fd; /* bench_target prog array */
};

static int driver_load(struct driver *d, const char *build)
{
	if (baseline_load(&d->base, build, "bench_driver"))
		return -1;
	d->target_fd = bpf_object__find_map_fd_by_name(d->base.obj, "bench_target");
	return d->target_fd < 0 ? -1 : 0;
}

static int driver_set_target(const struct driver *d, int prog_fd)
{
	__u32 zero = 0;

	if (bpf_map_update_elem(d->target_fd, &zero, &prog_fd, BPF_ANY)) {
		fprintf(stderr, "datapath: bench_target update: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- our program ---------------------------------------------------------- */

#if HAVE_LOADER
struct ours {
	struct pfsync_bpf b;
	struct ring_buffer *events;
	char pin_dir[PATH_MAX];
	int mounted;
};

static int drop_event(void *ctx, void *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	return 0;
}

/* A private bpffs so the bench never touches /sys/fs/bpf/tc/globals. */
static int ours_load(struct ours *o, const char *build)
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
		return -1;
	}
	o->mounted = 1;
	snprintf(obj, sizeof(obj), "%s/pfsync_xdp.o", build);
	if (pfsync_bpf_load(&o->b, obj, o->pin_dir, BENCH_STATES_MAX,
			    PFSYNC_LOAD_XDP | PFSYNC_LOAD_CTL))
		return -1;
	fd = bpf_object__find_map_fd_by_name(o->b.obj, PFSYNC_MAP_EVENTS);
	if (fd >= 0)
		o->events = ring_buffer__new(fd, drop_event, NULL, NULL);
	return 0;
}

static void ours_close(struct ours *o)
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

/* Empties the table and the change stream between measurements, so each
 * one starts from the same place and inserts never hit a full ringbuf. */
static void ours_reset(struct ours *o)
{
	struct pfsync_sweep_args a = {.sweep_flags = PFSYNC_SWEEP_FLUSH | PFSYNC_SWEEP_QUIET};

	if (pfsync_bpf_sweep(&o->b, &a))
		fprintf(stderr, "datapath: flush sweep failed\n");
	if (o->events)
		ring_buffer__consume(o->events);
}

/* Runs the handshake of f so that its state is ESTABLISHED:ESTABLISHED. */
static int ours_establish(const struct ours *o, const struct flow *f)
{
	struct pkt p;
	__u32 v1, v2, v3;

	build_tcp(&p, f, 0, TH_SYN, 1000, 0, 0);
	prog_run(o->b.xdp_fd, &p, 1, &v1);
	build_tcp(&p, f, 1, TH_SYN | TH_ACK, 5000, 1001, 0);
	prog_run(o->b.xdp_fd, &p, 1, &v2);
	build_tcp(&p, f, 0, TH_ACK, 1001, 5001, 0);
	prog_run(o->b.xdp_fd, &p, 1, &v3);
	if (v1 != XDP_PASS || v2 != XDP_PASS || v3 != XDP_PASS) {
		fprintf(stderr, "datapath: handshake verdicts %u %u %u\n", v1, v2, v3);
		return -1;
	}
	return 0;
}

/* Sum over CPUs of pfsync_counters.states_inserted. */
static __u64 ours_inserted(const struct ours *o)
{
	int ncpu = libbpf_num_possible_cpus();
	int fd = bpf_object__find_map_fd_by_name(o->b.obj, PFSYNC_MAP_COUNTERS);
	__u32 zero = 0;
	__u64 sum = 0;

	if (ncpu <= 0 || fd < 0)
		return 0;
	struct pfsync_counters c[ncpu];

	if (bpf_map_lookup_elem(fd, &zero, c))
		return 0;
	for (int i = 0; i < ncpu; i++)
		sum += c[i].states_inserted;
	return sum;
}

/*
 * ns per packet of bench_driver -> pfsync_xdp on SYNs with fresh tuples:
 * median over batches of op->fresh packets (one BPF_PROG_RUN each, the
 * table flushed and the ringbuf drained before each, so every insert
 * takes the full path, records included); batches until >= 1M packets.
 * Each batch must have inserted exactly one state per packet.
 */
static double measure_new_states(struct ours *o, const struct driver *d, const struct pkt *p,
				 const struct opts *op)
{
	int batches = (1000000 + op->fresh - 1) / op->fresh;
	double v[MAX_ROUNDS];
	__u32 verdict;

	if (batches < op->rounds)
		batches = op->rounds;
	if (batches > MAX_ROUNDS)
		batches = MAX_ROUNDS;
	if (driver_set_target(d, o->b.xdp_fd))
		return -1;
	for (int r = 0; r < batches; r++) {
		ours_reset(o);
		__u64 before = ours_inserted(o);

		v[r] = prog_run(d->base.prog_fd, p, (__u32)op->fresh, &verdict);
		if (v[r] < 0 || verdict != XDP_PASS) {
			fprintf(stderr, "datapath: new-state batch failed (verdict %u)\n", verdict);
			return -1;
		}
		if (ours_inserted(o) - before != (__u64)op->fresh) {
			fprintf(stderr, "datapath: batch inserted %llu states, expected %d\n",
				(unsigned long long)(ours_inserted(o) - before), op->fresh);
			return -1;
		}
	}
	return median(v, batches);
}

static void bench_ours(struct ours *o, const struct opts *op, const struct driver *d,
		       double driver_cost)
{
	static const int afs[2] = {AF_INET, AF_INET6};
	static const char *const est_names[2] = {"ours: TCP established v4",
						 "ours: TCP established v6"};
	static const char *const udp_names[2] = {"ours: UDP v4", "ours: UDP v6"};
	static const char *const new_names[2] = {"ours: new state v4 (TCP SYN)",
						 "ours: new state v6 (TCP SYN)"};
	for (int i = 0; i < 2; i++) {
		struct flow tcp = make_flow(afs[i], IPPROTO_TCP, 40000);
		struct flow udp = make_flow(afs[i], IPPROTO_UDP, 40001);
		struct pkt p;

		ours_reset(o);
		if (ours_establish(o, &tcp) == 0) {
			build_tcp(&p, &tcp, 0, TH_ACK | TH_PSH, 1001, 5001, 64);
			add_result(est_names[i], measure(o->b.xdp_fd, &p, op, XDP_PASS),
				   "64-byte segment, state 4:4");
		}
		build_udp(&p, &udp, 64);
		prog_run(o->b.xdp_fd, &p, 1, NULL); /* creates the state */
		add_result(udp_names[i], measure(o->b.xdp_fd, &p, op, XDP_PASS),
			   "64-byte datagram, state exists");

		if (driver_cost < 0)
			continue;
		build_tcp(&p, &tcp, 0, TH_SYN, 1000, 0, 0);
		double fresh = measure_new_states(o, d, &p, op);

		add_result(new_names[i], fresh < 0 ? -1 : fresh - driver_cost,
			   "fresh tuple per packet (driver, see above)");
	}
	ours_reset(o);
}
#endif

/* ---- table --------------------------------------------------------------- */

static void print_ratio(double ns, double base)
{
	if (ns > 0 && base > 0)
		printf(" %7.2fx", ns / base);
	else
		printf(" %8s", "-");
}

static void print_table(void)
{
	double empty = result_ns("empty XDP_PASS");
	double min4 = result_ns("minimal state table v4");
	double min6 = result_ns("minimal state table v6");

	printf("\nBPF_PROG_RUN, ns per packet (median of rounds)\n");
	printf("%-38s %9s %8s %8s  %s\n", "case", "ns/pkt", "x empty", "x minimal", "note");
	for (int i = 0; i < nresults; i++) {
		const struct result *r = &results[i];
		double base = strstr(r->name, "v6") ? min6 : min4;

		if (r->ns < 0)
			printf("%-38s %9s", r->name, "FAILED");
		else
			printf("%-38s %9.1f", r->name, r->ns);
		print_ratio(r->ns, empty);
		print_ratio(r->ns, base);
		printf("  %s\n", r->note);
	}
	printf("targets: established <= 1.50x minimal, new state <= 8.00x minimal\n");
}

/* ---- forwarding ------------------------------------------------------------ */

/* Median pkts/s of one (mode, load) over the rounds forward.sh ran. */
struct fwd_row {
	char mode[32];
	char load[8];
	double pps[MAX_ROUNDS];
	int n;
};

static struct fwd_row *fwd_row_get(struct fwd_row *rows, int *nrows, const char *mode,
				   const char *load)
{
	for (int i = 0; i < *nrows; i++)
		if (!strcmp(rows[i].mode, mode) && !strcmp(rows[i].load, load))
			return &rows[i];
	if (*nrows == MAX_CASES)
		return NULL;
	struct fwd_row *r = &rows[(*nrows)++];

	snprintf(r->mode, sizeof(r->mode), "%s", mode);
	snprintf(r->load, sizeof(r->load), "%s", load);
	r->n = 0;
	return r;
}

static double fwd_median(struct fwd_row *rows, int nrows, const char *mode, const char *load)
{
	for (int i = 0; i < nrows; i++)
		if (!strcmp(rows[i].mode, mode) && !strcmp(rows[i].load, load) && rows[i].n)
			return median(rows[i].pps, rows[i].n);
	return -1;
}

/* Runs forward.sh, which prints "RESULT mode load pps" lines (several
 * rounds, modes interleaved); prints medians with ratios against the
 * no-filter and nftables rows of the same load. */
static int bench_forward(const struct opts *o)
{
	static struct fwd_row rows[MAX_CASES];
	char cmd[PATH_MAX + 64], line[256], mode[32], load[8];
	int nrows = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "bench/datapath/forward.sh %d '%s' %d", o->seconds, o->build,
		 o->fwd_rounds);
	fflush(stdout);
	f = popen(cmd, "r");
	if (!f) {
		fprintf(stderr, "datapath: cannot run %s\n", cmd);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		struct fwd_row *r;
		double v;

		if (sscanf(line, "RESULT %31s %7s %lf", mode, load, &v) != 3) {
			fputs(line, stderr);
			continue;
		}
		r = fwd_row_get(rows, &nrows, mode, load);
		if (r && r->n < MAX_ROUNDS)
			r->pps[r->n++] = v;
	}
	if (pclose(f) != 0)
		fprintf(stderr, "datapath: forward.sh failed\n");

	printf("\nforwarded packets/s through a firewall namespace "
	       "(median of %d rounds of %d s)\n",
	       o->fwd_rounds, o->seconds);
	printf("%-16s %-5s %12s %9s %11s\n", "mode", "load", "pkts/s", "x none", "x nftables");
	for (int i = 0; i < nrows; i++) {
		double pps = median(rows[i].pps, rows[i].n);

		printf("%-16s %-5s %12.0f", rows[i].mode, rows[i].load, pps);
		print_ratio(pps, fwd_median(rows, nrows, "none", rows[i].load));
		printf("   ");
		print_ratio(pps, fwd_median(rows, nrows, "nftables", rows[i].load));
		printf("\n");
	}
	printf("target: pfsync-xdp >= 1.00x nftables\n");
	return nrows ? 0 : -1;
}

/* ---- load generator and sink ------------------------------------------------ */

static volatile sig_atomic_t stop_flag;

static void on_alarm(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int connect_to(int type, const char *addr, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((__u16)port)};
	int fd = socket(AF_INET, type, 0);

	if (fd < 0 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "datapath gen: connect %s:%d: %s\n", addr, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Sends as fast as it can until `seconds` pass; prints packets/bytes sent. */
static int gen_main(const char *proto, const char *addr, int port, int seconds)
{
	static char buf[65536];
	int udp = !strcmp(proto, "udp");
	int fd = connect_to(udp ? SOCK_DGRAM : SOCK_STREAM, addr, port);
	unsigned long long sent = 0, bytes = 0;

	if (fd < 0)
		return 1;
	memset(buf, 'g', sizeof(buf));
	signal(SIGALRM, on_alarm);
	alarm((unsigned)seconds);
	while (!stop_flag) {
		if (udp) {
			struct mmsghdr msgs[64];
			struct iovec iov = {.iov_base = buf, .iov_len = 18};

			memset(msgs, 0, sizeof(msgs));
			for (int i = 0; i < 64; i++) {
				msgs[i].msg_hdr.msg_iov = &iov;
				msgs[i].msg_hdr.msg_iovlen = 1;
			}
			int n = sendmmsg(fd, msgs, 64, 0);

			if (n > 0) {
				sent += (unsigned)n;
				bytes += 18ull * (unsigned)n;
			}
		} else {
			ssize_t n = send(fd, buf, sizeof(buf), 0);

			if (n > 0) {
				sent++;
				bytes += (unsigned long long)n;
			} else if (n < 0 && errno != EINTR) {
				break;
			}
		}
	}
	printf("sent %llu writes %llu bytes\n", sent, bytes);
	close(fd);
	return 0;
}

/* Parses "aa:bb:cc:dd:ee:ff". */
static int parse_mac(const char *text, __u8 mac[ETH_ALEN])
{
	unsigned int b[ETH_ALEN];

	if (sscanf(text, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return -1;
	for (int i = 0; i < ETH_ALEN; i++)
		mac[i] = (__u8)b[i];
	return 0;
}

/* An Ethernet/IPv4/UDP frame of 64 bytes (22-byte payload; bench_tx
 * restores exactly these 64 bytes), UDP checksum 0 (allowed for IPv4). */
static int build_gen_frame(struct pkt *p, const char *dst_mac, const char *src_mac,
			   const char *src_ip, const char *dst_ip, int port)
{
	struct flow f = {.af = AF_INET, .proto = IPPROTO_UDP, .sport = 40000};
	struct ethhdr *eth = (struct ethhdr *)p->data;

	f.dport = (__u16)port;
	if (inet_pton(AF_INET, src_ip, f.saddr) != 1 || inet_pton(AF_INET, dst_ip, f.daddr) != 1)
		return -1;
	build_udp(p, &f, 22);
	if (parse_mac(dst_mac, eth->h_dest) || parse_mac(src_mac, eth->h_source))
		return -1;
	return 0;
}

/*
 * xdpgen: BPF_PROG_RUN of bench_tx (XDP_TX) in live-frame mode with the
 * frame's ingress set to IFNAME, so each run transmits the frame out of
 * IFNAME (a veth: the peer must have NAPI, i.e. XDP or GRO on). Runs
 * batches of `repeat` frames until `seconds` pass.
 */
static int xdpgen_main(char **argv)
{
	const char *build = getenv("PFSYNC_BUILD");
	const char *ifname = argv[0];
	int seconds = atoi(argv[6]);
	char path[PATH_MAX];
	struct baseline tx = {0};
	struct xdp_md ctx = {0};
	unsigned long long runs = 0;
	struct timespec t0, t;
	struct pkt p;

	snprintf(path, sizeof(path), "%s", build ? build : "build");
	if (build_gen_frame(&p, argv[1], argv[2], argv[3], argv[4], atoi(argv[5]))) {
		fprintf(stderr, "datapath xdpgen: bad MAC or address\n");
		return 2;
	}
	ctx.ingress_ifindex = if_nametoindex(ifname);
	if (!ctx.ingress_ifindex) {
		fprintf(stderr, "datapath xdpgen: no interface %s\n", ifname);
		return 1;
	}
	ctx.data_end = p.len;
	if (baseline_load(&tx, path, "bench_tx"))
		return 1;
	int tmpl_fd = bpf_object__find_map_fd_by_name(tx.obj, "bench_tx_frame");
	__u32 zero = 0;

	if (tmpl_fd < 0 || bpf_map_update_elem(tmpl_fd, &zero, p.data, BPF_ANY)) {
		fprintf(stderr, "datapath xdpgen: cannot store the frame template\n");
		bpf_object__close(tx.obj);
		return 1;
	}
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p.data, .data_size_in = p.len, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1 << 12,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (bpf_prog_test_run_opts(tx.prog_fd, &o)) {
			fprintf(stderr, "datapath xdpgen: live-frame BPF_PROG_RUN: %s\n",
				strerror(errno));
			bpf_object__close(tx.obj);
			return 1;
		}
		runs += o.repeat;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < seconds);
	printf("frames %llu\n", runs);
	bpf_object__close(tx.obj);
	return 0;
}

/* Receives and discards until killed. */
static int sink_main(const char *proto, int port)
{
	static char buf[65536];
	int udp = !strcmp(proto, "udp");
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((__u16)port)};
	int one = 1;
	int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);

	if (fd < 0)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || (!udp && listen(fd, 8))) {
		fprintf(stderr, "datapath sink: bind port %d: %s\n", port, strerror(errno));
		close(fd);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = udp ? fd : accept(fd, NULL, NULL);

		if (c < 0)
			continue;
		while (recv(c, buf, sizeof(buf), 0) > 0)
			;
		if (!udp)
			close(c);
	}
}

/* ---- main ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr, "usage: datapath [--repeat N] [--rounds N] [--fresh N] [--no-forward] "
			"[--seconds S] [--fwd-rounds N] [--build DIR]\n"
			"       datapath gen udp|tcp ADDR PORT SECONDS\n"
			"       datapath xdpgen IFNAME DST_MAC SRC_MAC SRC_IP DST_IP PORT SECONDS\n"
			"       datapath sink udp|tcp PORT\n");
	exit(2);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.repeat = 1000000,
			   .rounds = 5,
			   .fresh = 90000,
			   .forward = 1,
			   .seconds = 3,
			   .fwd_rounds = 3,
			   .build = getenv("PFSYNC_BUILD")};
	if (!o->build)
		o->build = "build";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--no-forward")) {
			o->forward = 0;
			continue;
		}
		if (!v)
			usage();
		if (!strcmp(a, "--repeat"))
			o->repeat = (__u32)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--rounds"))
			o->rounds = atoi(v);
		else if (!strcmp(a, "--fresh"))
			o->fresh = atoi(v);
		else if (!strcmp(a, "--fwd-rounds"))
			o->fwd_rounds = atoi(v);
		else if (!strcmp(a, "--seconds"))
			o->seconds = atoi(v);
		else if (!strcmp(a, "--build"))
			o->build = v;
		else
			usage();
		i++;
	}
	if (o->repeat < 1 || o->rounds < 1 || o->rounds > MAX_ROUNDS || o->fresh < 1 ||
	    o->fresh > 100000 || o->seconds < 1 || o->fwd_rounds < 1 || o->fwd_rounds > MAX_ROUNDS)
		usage();
}

/* The baseline must measure hits, or it would flatter us: checks that
 * bench_minimal found its keys (counter slot 0) and never missed (slot 1). */
static void minimal_check_hits(const struct baseline *b)
{
	int ncpu = libbpf_num_possible_cpus();
	int fd = bpf_object__find_map_fd_by_name(b->obj, "bench_counters");
	__u64 hits = 0, misses = 0;

	if (ncpu <= 0 || fd < 0)
		return;
	__u64 vals[ncpu];

	for (__u32 slot = 0; slot < 2; slot++) {
		if (bpf_map_lookup_elem(fd, &slot, vals))
			return;
		for (int c = 0; c < ncpu; c++)
			*(slot ? &misses : &hits) += vals[c];
	}
	if (!hits || misses)
		fprintf(stderr, "datapath: WARNING bench_minimal hits %llu misses %llu\n",
			(unsigned long long)hits, (unsigned long long)misses);
}

static void bench_baselines(const struct opts *o, struct baseline *empty, struct baseline *minimal)
{
	static const int afs[2] = {AF_INET, AF_INET6};
	static const char *const names[2] = {"minimal state table v4", "minimal state table v6"};
	struct flow f4 = make_flow(AF_INET, IPPROTO_TCP, 40000);
	struct pkt p;

	build_tcp(&p, &f4, 0, TH_ACK | TH_PSH, 1001, 5001, 64);
	add_result("empty XDP_PASS", measure(empty->prog_fd, &p, o, XDP_PASS),
		   "the floor: one BPF_PROG_RUN iteration");
	for (int i = 0; i < 2; i++) {
		struct flow f = make_flow(afs[i], IPPROTO_TCP, 40000);

		minimal_insert(minimal, &f);
		build_tcp(&p, &f, 0, TH_ACK | TH_PSH, 1001, 5001, 64);
		add_result(names[i], measure(minimal->prog_fd, &p, o, XDP_PASS),
			   "5-tuple hash hit + per-CPU counter");
	}
	minimal_check_hits(minimal);
}

int main(int argc, char **argv)
{
	struct baseline empty = {0}, minimal = {0};
	struct opts o;
	struct pkt p;
	struct flow f4 = make_flow(AF_INET, IPPROTO_TCP, 40000);

	if (argc >= 2 && !strcmp(argv[1], "gen")) {
		if (argc != 6)
			usage();
		return gen_main(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
	}
	if (argc >= 2 && !strcmp(argv[1], "xdpgen")) {
		if (argc != 9)
			usage();
		return xdpgen_main(argv + 2);
	}
	if (argc >= 2 && !strcmp(argv[1], "sink")) {
		if (argc != 4)
			usage();
		return sink_main(argv[2], atoi(argv[3]));
	}
	parse_opts(argc, argv, &o);
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
	if (baseline_load(&empty, o.build, "bench_empty") ||
	    baseline_load(&minimal, o.build, "bench_minimal"))
		return 1;
	printf("datapath bench: repeat %u, median of %d rounds; new state: batches of %d fresh "
	       "tuples\n",
	       o.repeat, o.rounds, o.fresh);
	bench_baselines(&o, &empty, &minimal);

	/* the driver's own cost: rewriting the tuple and one tail call */
	struct driver drv = {0};
	double driver_cost = -1;

	if (driver_load(&drv, o.build) == 0 && driver_set_target(&drv, empty.prog_fd) == 0) {
		build_tcp(&p, &f4, 0, TH_SYN, 1000, 0, 0);
		double with_empty = measure(drv.base.prog_fd, &p, &o, XDP_PASS);

		if (with_empty > 0)
			driver_cost = with_empty - result_ns("empty XDP_PASS");
		if (driver_set_target(&drv, minimal.prog_fd) == 0)
			add_result("minimal state table v4, miss",
				   driver_cost < 0
				       ? -1
				       : measure(drv.base.prog_fd, &p, &o, XDP_PASS) - driver_cost,
				   "fresh tuple per packet (driver)");
	}
	printf("new-state driver (tuple rewrite + tail call): %.1f ns, subtracted\n", driver_cost);

#if HAVE_LOADER
	struct ours ours;

	if (driver_cost < 0)
		fprintf(stderr, "datapath: no driver, new-state rows are missing\n");
	if (ours_load(&ours, o.build) == 0)
		bench_ours(&ours, &o, &drv, driver_cost);
	else
		fprintf(stderr, "datapath: pfsync_xdp.o not loaded, its rows are missing\n");
	ours_close(&ours);
#else
	fprintf(stderr, "datapath: built without lib/pfsync_loader.h, only baselines\n");
#endif
	if (drv.base.obj)
		bpf_object__close(drv.base.obj);
	print_table();
	fflush(stdout);
	bpf_object__close(empty.obj);
	bpf_object__close(minimal.obj);
	if (o.forward && bench_forward(&o))
		return 1;
	return 0;
}
