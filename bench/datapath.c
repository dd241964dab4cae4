// SPDX-License-Identifier: BSD-2-Clause
/*
 * bench/datapath: what one packet costs in pfsync_xdp, against baselines
 * measured in the same run (these machines are noisy: read the ratios).
 * Cases are measured round-robin, one round of every case after another,
 * so that a slow phase of the machine hits baselines and ours alike.
 *
 * 1. BPF_PROG_RUN, repeat >= 1M, kernel-reported ns per run:
 *    bench_empty (XDP_PASS, the floor), bench_minimal (5-tuple hash lookup
 *    + per-CPU counter, the limit for any hash state table), pfsync_xdp on
 *    an established TCP packet and a UDP packet, IPv4 and IPv6.
 * 2. The new-state path needs a fresh tuple per packet, which repeat alone
 *    cannot give (the first run creates the state, the rest hit it). So
 *    BPF_PROG_RUN runs bench_driver, which rewrites the source port and
 *    address from a run counter and tail-calls the program under test, in
 *    batches of --fresh packets (each table flushed and each ringbuf
 *    drained before a batch, each batch checked to insert one state per
 *    packet, >= 1M packets per case). The driver's own cost (driver ->
 *    bench_empty, minus bench_empty) is subtracted. Baselines for it:
 *    bench_minimal's miss; bench_insert, which on the miss inserts a value
 *    of pfsync's size into a table of pfsync's size (what any state table
 *    pays to create an entry: mostly cache misses on a large table); and
 *    bench_insert_sync, which adds one ringbuf record of pfsync's size
 *    (what a synced insert pays at the least). Ours runs on a bare SYN and
 *    on a SYN with the options Linux sends (MSS, SACK, timestamps, WS).
 * 3. Forwarded packets per second through a firewall namespace, by running
 *    bench/datapath/forward.sh (see there), which uses this binary's
 *    `xdpgen` (or, where live frames are refused, `pktsend`), `gen` and
 *    `sink` subcommands as load.
 *
 * Build directory: --build DIR, else $PFSYNC_BUILD, else ./build.
 * Usage: datapath [--repeat N] [--rounds N] [--fresh N] [--no-forward]
 *                 [--seconds S] [--fwd-rounds N] [--build DIR]
 *        datapath gen udp|tcp ADDR PORT SECONDS   (load generator)
 *        datapath xdpgen IFNAME DST_MAC SRC_MAC SRC_IP DST_IP PORT SECONDS
 *                 (UDP frames out of IFNAME at XDP speed, live-frame mode)
 *        datapath pktsend IFNAME DST_MAC SRC_MAC SRC_IP DST_IP PORT SECONDS
 *                 (the same frames from a packet socket, without live frames)
 *        datapath sink udp|tcp PORT               (discarding receiver)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
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
/* table size for our program and bench_insert: a new-state batch fills it
 * to about a third */
#define BENCH_STATES_MAX (1u << 18)

struct opts {
	__u32 repeat;
	int rounds;
	int fresh; /* fresh tuples per new-state batch */
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

/* What a Linux SYN carries: MSS 1460, SACK permitted, timestamps, NOP, WS 7. */
static const __u8 linux_syn_opts[20] = {2,    4,    0x05, 0xb4, 4, 2, 8, 10, 0, 0x12,
					0x34, 0x56, 0,	  0,	0, 0, 1, 3,  3, 7};

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

/* A TCP segment of f (or of its reverse) with flags, seq, ack, TCP options
 * (a multiple of 4 bytes) and payload bytes. */
static void build_tcp_opts(struct pkt *p, const struct flow *f, int reverse, __u8 flags, __u32 seq,
			   __u32 ack, const __u8 *opts, size_t optlen, size_t payload)
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
	off = put_l3(p, &r, sizeof(th) + optlen + payload);
	memset(&th, 0, sizeof(th));
	th.source = htons(r.sport);
	th.dest = htons(r.dport);
	th.seq = htonl(seq);
	th.ack_seq = htonl(ack);
	th.doff = (__u16)((sizeof(th) + optlen) / 4);
	th.fin = !!(flags & TH_FIN);
	th.syn = !!(flags & TH_SYN);
	th.psh = !!(flags & TH_PSH);
	th.ack = !!(flags & TH_ACK);
	th.window = htons(65535);
	memcpy(p->data + off, &th, sizeof(th));
	if (optlen)
		memcpy(p->data + off + sizeof(th), opts, optlen);
	memset(p->data + off + sizeof(th) + optlen, 'x', payload);
	p->len = (__u32)(off + sizeof(th) + optlen + payload);
}

static void build_tcp(struct pkt *p, const struct flow *f, int reverse, __u8 flags, __u32 seq,
		      __u32 ack, size_t payload)
{
	build_tcp_opts(p, f, reverse, flags, seq, ack, NULL, 0, payload);
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

/* A SEC("syscall") program without arguments. */
static int syscall_run(int fd)
{
	LIBBPF_OPTS(bpf_test_run_opts, o);

	return bpf_prog_test_run_opts(fd, &o);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	double s[MAX_ROUNDS];

	if (n <= 0)
		return -1;
	memcpy(s, v, (size_t)n * sizeof(*v));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
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

struct baseline {
	struct bpf_object *obj;
	int prog_fd;
};

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

static int baseline_load(struct baseline *b, const char *build, const char *name)
{
	if (obj_open_load(&b->obj, build, name, NULL, 0))
		return -1;
	b->prog_fd = prog_fd(b->obj, name);
	return b->prog_fd < 0 ? -1 : 0;
}

/* bench_minimal.o: bench_minimal, bench_insert(_sync) and their maps. */
struct minimal {
	struct bpf_object *obj;
	int lookup_fd, insert_fd, sync_fd, flush_fd;
	int states_fd, counters_fd;
	struct ring_buffer *events;
};

/* Slots of bench_counters (bpf/bench_minimal.bpf.c). */
enum { BENCH_HIT = 0, BENCH_MISS = 1, BENCH_INSERTED = 2 };

static int minimal_load(struct minimal *m, const char *build)
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

static void minimal_close(struct minimal *m)
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

static void minimal_insert(const struct minimal *m, const struct flow *f)
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

static __u64 minimal_count(const struct minimal *m, __u32 slot)
{
	return percpu_sum(m->counters_fd, slot, sizeof(__u64), 0);
}

/* Empties bench_insert_states and its ringbuf before a batch. */
static int minimal_reset(const struct minimal *m)
{
	int err = syscall_run(m->flush_fd);

	ring_buffer__consume(m->events);
	return err;
}

/* ---- the new-state driver -------------------------------------------------- */

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

static int driver_set_target(const struct driver *d, int target)
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
struct ours {
	struct pfsync_bpf b;
	struct ring_buffer *events;
	int counters_fd;
	char pin_dir[PATH_MAX];
	int mounted;
};

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

/* Empties the table and the change stream, so each measurement starts
 * from the same place and inserts never hit a full ringbuf. */
static int ours_reset(const struct ours *o)
{
	struct pfsync_sweep_args a = {.sweep_flags = PFSYNC_SWEEP_FLUSH | PFSYNC_SWEEP_QUIET};
	int err = pfsync_bpf_sweep(&o->b, &a);

	if (err)
		fprintf(stderr, "datapath: flush sweep failed\n");
	ring_buffer__consume(o->events);
	return err;
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

static __u64 ours_inserted(const struct ours *o)
{
	return percpu_sum(o->counters_fd, 0, sizeof(struct pfsync_counters),
			  offsetof(struct pfsync_counters, states_inserted));
}
#endif

/* ---- cases ----------------------------------------------------------------- */

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

static double case_ns(const struct bench *b, const char *name)
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
static void run_cases(struct bench *b, enum case_kind kind, int rounds)
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

/* ---- table --------------------------------------------------------------- */

static void print_ratio(double ns, double base)
{
	if (ns > 0 && base > 0)
		printf(" %7.2fx", ns / base);
	else
		printf(" %8s", "-");
}

static void print_table(const struct bench *b, double driver_cost)
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

static double row_max(const struct fwd_row *r)
{
	double m = -1;

	for (int i = 0; i < r->n; i++)
		if (r->pps[i] > m)
			m = r->pps[i];
	return m;
}

/* Median (best = 0) or best (best = 1) pkts/s of (mode, load); -1 if none. */
static double fwd_stat(struct fwd_row *rows, int nrows, const char *mode, const char *load,
		       int best)
{
	for (int i = 0; i < nrows; i++)
		if (!strcmp(rows[i].mode, mode) && !strcmp(rows[i].load, load) && rows[i].n)
			return best ? row_max(&rows[i]) : median(rows[i].pps, rows[i].n);
	return -1;
}

/* The fast path's targets (issue 16), medians of each load: >= 2x nftables
 * conntrack, >= 1.3x the flowtable, and how near the floor (xdp-fwd) it is. */
static void print_fastpath_targets(struct fwd_row *rows, int nrows)
{
	static const char *const loads[] = {"udp", "tcp"};

	for (size_t i = 0; i < sizeof(loads) / sizeof(loads[0]); i++) {
		double fp = fwd_stat(rows, nrows, "pfsync-xdp+fp", loads[i], 0);

		if (fp < 0)
			continue;
		printf("fast path, %s: x nftables", loads[i]);
		print_ratio(fp, fwd_stat(rows, nrows, "nftables", loads[i], 0));
		printf(" (target 2.00x), x nft-flowtable");
		print_ratio(fp, fwd_stat(rows, nrows, "nft-flowtable", loads[i], 0));
		printf(" (target 1.30x), x xdp-fwd floor");
		print_ratio(fp, fwd_stat(rows, nrows, "xdp-fwd", loads[i], 0));
		printf(", x pfsync-xdp");
		print_ratio(fp, fwd_stat(rows, nrows, "pfsync-xdp", loads[i], 0));
		printf("\n");
	}
}

/* Runs forward.sh, which prints "RESULT mode load pps" lines (several
 * rounds, modes interleaved); prints medians with ratios against the
 * no-filter and nftables rows of the same load. */
static int bench_forward(const struct opts *o)
{
	static struct fwd_row rows[MAX_CASES];
	char cmd[PATH_MAX + 64], line[256], mode[32], load[8], udp_gen[32] = "?";
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

		if (sscanf(line, "GENERATOR udp %31s", udp_gen) == 1)
			continue;
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
	       "(%d rounds of %d s, modes interleaved)\n",
	       o->fwd_rounds, o->seconds);
	printf("Other work on the machine only ever slows a round down: the best round is the\n"
	       "least disturbed one, the median the typical one. Ratios of each against each.\n");
	printf("%-14s %-4s %10s %10s | %7s %7s %8s | %7s %7s %8s\n", "mode", "load", "median",
	       "best", "x none", "x nft", "x nft+xdp", "x none", "x nft", "x nft+xdp");
	for (int i = 0; i < nrows; i++) {
		const char *ld = rows[i].load;

		printf("%-14s %-4s %10.0f %10.0f |", rows[i].mode, ld,
		       median(rows[i].pps, rows[i].n), row_max(&rows[i]));
		for (int best = 0; best < 2; best++) {
			double pps = best ? row_max(&rows[i]) : median(rows[i].pps, rows[i].n);

			print_ratio(pps, fwd_stat(rows, nrows, "none", ld, best));
			print_ratio(pps, fwd_stat(rows, nrows, "nftables", ld, best));
			print_ratio(pps, fwd_stat(rows, nrows, "nftables+xdp", ld, best));
			printf(best ? "\n" : " |");
		}
	}
	printf("udp load generated by %s (xdpgen: live-frame XDP_TX; pktsend: packet socket, "
	       "PACKET_QDISC_BYPASS + sendmmsg, where live frames are refused)\n",
	       udp_gen);
	printf("target: pfsync-xdp >= 1.00x nftables\n"
	       "x nft+xdp: against nftables paying the same veth XDP cost (see forward.sh)\n");
	print_fastpath_targets(rows, nrows);
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

/*
 * pktsend: the frame of xdpgen from an AF_PACKET socket on IFNAME, past the
 * qdisc layer (PACKET_QDISC_BYPASS), PKTSEND_BATCH frames per sendmmsg:
 * the UDP load on kernels that refuse live-frame test runs. Each frame is
 * an skb through veth's xmit: dearer for the sender than an XDP frame, far
 * cheaper than a UDP socket's way through the stack.
 */
#define PKTSEND_BATCH 64

static int pktsend_main(char **argv)
{
	static struct mmsghdr msgs[PKTSEND_BATCH];
	struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_halen = ETH_ALEN};
	unsigned long long frames = 0, refused = 0;
	int seconds = atoi(argv[6]), one = 1, fd;
	struct timespec t0, t;
	struct iovec iov;
	struct pkt p;

	if (build_gen_frame(&p, argv[1], argv[2], argv[3], argv[4], atoi(argv[5]))) {
		fprintf(stderr, "datapath pktsend: bad MAC or address\n");
		return 2;
	}
	to.sll_ifindex = (int)if_nametoindex(argv[0]);
	if (!to.sll_ifindex) {
		fprintf(stderr, "datapath pktsend: no interface %s\n", argv[0]);
		return 1;
	}
	memcpy(to.sll_addr, p.data, ETH_ALEN);
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0 || setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one))) {
		fprintf(stderr, "datapath pktsend: packet socket: %s\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	iov = (struct iovec){.iov_base = p.data, .iov_len = p.len};
	for (int i = 0; i < PKTSEND_BATCH; i++)
		msgs[i].msg_hdr = (struct msghdr){
		    .msg_name = &to, .msg_namelen = sizeof(to), .msg_iov = &iov, .msg_iovlen = 1};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		int n = sendmmsg(fd, msgs, PKTSEND_BATCH, 0);

		if (n > 0) {
			frames += (unsigned long long)n;
		} else if (errno == ENOBUFS || errno == EAGAIN) {
			refused++; /* the peer's queue is full: the receiver is the bottleneck */
		} else {
			fprintf(stderr, "datapath pktsend: sendmmsg: %s\n", strerror(errno));
			close(fd);
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < seconds);
	printf("frames %llu (batches refused: %llu)\n", frames, refused);
	close(fd);
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
	fprintf(stderr,
		"usage: datapath [--repeat N] [--rounds N] [--fresh N] [--no-forward] "
		"[--seconds S] [--fwd-rounds N] [--build DIR]\n"
		"       datapath gen udp|tcp ADDR PORT SECONDS\n"
		"       datapath xdpgen IFNAME DST_MAC SRC_MAC SRC_IP DST_IP PORT SECONDS\n"
		"       datapath pktsend IFNAME DST_MAC SRC_MAC SRC_IP DST_IP PORT SECONDS\n"
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
 * bench_minimal found its keys and never missed during the hit rounds. */
static void minimal_check_hits(const struct minimal *m, __u64 hits0, __u64 misses0)
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
static void add_hit_cases(struct bench *b, int empty_fd)
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
static void add_fresh_cases(struct bench *b, int empty_fd)
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

int main(int argc, char **argv)
{
	struct baseline empty = {0};
	struct minimal minimal = {0};
	struct driver drv = {0};
	struct bench b = {0};
	struct opts o;
#if HAVE_LOADER
	struct ours ours;
#endif

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
	if (argc >= 2 && !strcmp(argv[1], "pktsend")) {
		if (argc != 9)
			usage();
		return pktsend_main(argv + 2);
	}
	if (argc >= 2 && !strcmp(argv[1], "sink")) {
		if (argc != 4)
			usage();
		return sink_main(argv[2], atoi(argv[3]));
	}
	parse_opts(argc, argv, &o);
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
	if (baseline_load(&empty, o.build, "bench_empty") || minimal_load(&minimal, o.build))
		return 1;
	b.o = &o;
	b.m = &minimal;
	b.d = &drv;
	printf("datapath bench: repeat %u, median of %d rounds; new state: batches of %d fresh "
	       "tuples\n",
	       o.repeat, o.rounds, o.fresh);
#if HAVE_LOADER
	if (ours_load(&ours, o.build) == 0)
		b.ours = &ours;
	else
		fprintf(stderr, "datapath: pfsync_xdp.o not loaded, its rows are missing\n");
#else
	fprintf(stderr, "datapath: built without lib/pfsync_loader.h, only baselines\n");
#endif

	__u64 hits0 = minimal_count(&minimal, BENCH_HIT);
	__u64 misses0 = minimal_count(&minimal, BENCH_MISS);

	add_hit_cases(&b, empty.prog_fd);
	run_cases(&b, K_HIT, o.rounds);
	minimal_check_hits(&minimal, hits0, misses0);

	double driver_cost = -1;

	if (driver_load(&drv, o.build) == 0) {
		int batches = (1000000 + o.fresh - 1) / o.fresh;

		if (batches < o.rounds)
			batches = o.rounds;
		if (batches > MAX_ROUNDS)
			batches = MAX_ROUNDS;
		add_fresh_cases(&b, empty.prog_fd);
		run_cases(&b, K_FRESH, batches);
		double with_empty = case_ns(&b, "driver -> empty");

		/* noise can make it come out below the floor: then it is 0 */
		if (with_empty > 0 && case_ns(&b, "empty XDP_PASS") > 0)
			driver_cost = with_empty > case_ns(&b, "empty XDP_PASS")
					  ? with_empty - case_ns(&b, "empty XDP_PASS")
					  : 0;
		for (int i = 0; i < b.n; i++)
			if (b.c[i].kind == K_FRESH) {
				if (driver_cost < 0)
					b.c[i].failed = 1;
				else
					b.c[i].ns -= driver_cost;
			}
	} else {
		fprintf(stderr, "datapath: no driver, new-state rows are missing\n");
	}
	print_table(&b, driver_cost);
	fflush(stdout);
#if HAVE_LOADER
	ours_close(&ours);
#endif
	if (drv.base.obj)
		bpf_object__close(drv.base.obj);
	minimal_close(&minimal);
	bpf_object__close(empty.obj);
	if (o.forward && bench_forward(&o))
		return 1;
	return 0;
}
