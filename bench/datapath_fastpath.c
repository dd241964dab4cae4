// SPDX-License-Identifier: BSD-2-Clause
/*
 * bench/datapath_fastpath: what one established packet costs in
 * pfsync_xdp's fast path (bpf/fastpath.h), against the floor measured in
 * the same run: bench_fwd, which only routes and redirects (the same set
 * lookups, bpf_fib_lookup, rewrite, bpf_redirect) with no state table.
 *
 * The process moves into a network namespace of its own with two veths,
 * addresses and permanent neighbours, so that bpf_fib_lookup finds a route
 * and a next hop. BPF_PROG_RUN without live frames (which this kernel
 * refuses) runs every repeat on the frame the previous one rewrote, so the
 * neighbours are given the MAC of the interface the frame arrives on: the
 * rewritten frame is again addressed to the firewall, and with a TTL of 255
 * each of up to FRAME_REPEAT_MAX repeats is one more fast-pathed packet
 * (checked: the last repeat's verdict must still be the redirect). So a
 * call's own timing (ktime reads, program entry) is spread over the
 * repeats, which bench_empty (XDP_PASS) measures and the ratios subtract.
 * Cases run round-robin (machines are shared and noisy), median of the
 * rounds.
 *
 * Usage: datapath_fastpath [--calls N] [--repeat N] [--rounds N] [--build DIR]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pfsync_common.h"
#include "pfsync_loader.h"
#include "pfsync_maps.h"
#include "stats.h"

#define FRAME_LEN  (14 + 20 + 20 + 64)
#define MAX_ROUNDS 31
#define FRAME_TTL  255
/* every repeat decrements the TTL; the fast path leaves TTL <= 1 to the stack */
#define FRAME_REPEAT_MAX (FRAME_TTL - 2)

static const char *const topology[] = {
    "ip link set lo up",
    "sysctl -qw net.ipv4.conf.all.forwarding=1",
    "ip link add fpin address 02:00:00:00:01:01 type veth peer name fpin_p",
    "ip link add fpout address 02:00:00:00:02:01 type veth peer name fpout_p",
    "for d in fpin fpin_p fpout fpout_p; do ip link set $d up; done",
    "ip addr add 10.1.0.1/24 dev fpin && ip addr add 10.2.0.1/24 dev fpout",
    /* next hops answer to the ingress MAC of the other side (see above) */
    "ip neigh add 10.1.0.2 lladdr 02:00:00:00:02:01 dev fpin nud permanent",
    "ip neigh add 10.2.0.2 lladdr 02:00:00:00:01:01 dev fpout nud permanent",
};

static const __u8 in_mac[6] = {2, 0, 0, 0, 1, 1}, out_mac[6] = {2, 0, 0, 0, 2, 1};

struct frame {
	__u8 data[FRAME_LEN];
	__u32 len;
	__u32 ifindex; /* where it arrives */
};

enum { C_EMPTY, C_FLOOR, C_UDP_OFF, C_UDP_FP, C_TCP_OFF, C_TCP_FP, C_COUNT };

static const char *const case_names[C_COUNT] = {
    "empty XDP_PASS (test-run overhead)",   "floor: fib lookup + redirect",
    "ours: UDP established, fast path off", "ours: UDP established, fast path",
    "ours: TCP established, fast path off", "ours: TCP established, fast path",
};

struct bench {
	char pin_dir[64];
	struct pfsync_bpf ours;
	struct pfsync_maps maps;
	int maps_open;
	struct bpf_object *floor, *empty;
	int floor_fd, empty_fd;
	__u32 if_in, if_out;
	struct frame udp, tcp;
	int calls;    /* BPF_PROG_RUN calls per case and round */
	__u32 repeat; /* runs per call */
	double ns[C_COUNT][MAX_ROUNDS];
};

/* ---- frames --------------------------------------------------------------- */
static void put16(__u8 *p, __u16 v)
{
	p[0] = (__u8)(v >> 8);
	p[1] = (__u8)v;
}

static void put32(__u8 *p, __u32 v)
{
	put16(p, (__u16)(v >> 16));
	put16(p + 2, (__u16)v);
}

static void ipv4_csum(__u8 *ip)
{
	__u32 sum = 0;

	put16(ip + 10, 0);
	for (int i = 0; i < 20; i += 2)
		sum += (__u32)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16(ip + 10, (__u16)~sum);
}

/* IPv4 from src to dst, TCP (flags, seq, ack) or UDP, 64 bytes of payload. */
static void frame_build(struct frame *f, __u8 proto, int reverse, __u8 flags, __u32 seq, __u32 ack,
			const struct bench *b)
{
	__u8 *ip = f->data + 14, *l4 = ip + 20;
	__u32 l4len = proto == IPPROTO_TCP ? 20 : 8;

	memset(f, 0, sizeof(*f));
	memcpy(f->data, reverse ? out_mac : in_mac, 6);
	memcpy(f->data + 6, "\x02\x00\x00\x00\x09\x09", 6);
	put16(f->data + 12, ETH_P_IP);
	ip[0] = 0x45;
	put16(ip + 2, (__u16)(20 + l4len + 64));
	ip[8] = FRAME_TTL;
	ip[9] = proto;
	inet_pton(AF_INET, reverse ? "10.2.0.2" : "10.1.0.2", ip + 12);
	inet_pton(AF_INET, reverse ? "10.1.0.2" : "10.2.0.2", ip + 16);
	ipv4_csum(ip);
	put16(l4, reverse ? 2000 : 1000);
	put16(l4 + 2, reverse ? 1000 : 2000);
	if (proto == IPPROTO_TCP) {
		put32(l4 + 4, seq);
		put32(l4 + 8, ack);
		l4[12] = 5 << 4;
		l4[13] = flags;
		put16(l4 + 14, 65535);
	} else {
		put16(l4 + 4, 8 + 64);
	}
	f->len = 14 + 20 + l4len + 64;
	f->ifindex = reverse ? b->if_out : b->if_in;
}

/* ---- runs ----------------------------------------------------------------- */
/* One call of `repeat` runs; kernel ns per run, -1 on error. */
static double run_once(int fd, const struct frame *f, __u32 repeat, __u32 *verdict)
{
	__u8 out[FRAME_LEN];
	struct xdp_md ctx = {.data_end = f->len, .ingress_ifindex = f->ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->data, .data_size_in = f->len,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = repeat);

	if (bpf_prog_test_run_opts(fd, &o)) {
		fprintf(stderr, "datapath_fastpath: BPF_PROG_RUN: %s\n", strerror(errno));
		return -1;
	}
	*verdict = o.retval;
	return o.duration;
}

/* Mean kernel ns per run over calls x repeat runs, each call checked to end in want. */
static double run_mean(int fd, const struct frame *f, int calls, __u32 repeat, __u32 want)
{
	double sum = 0;
	__u32 verdict;

	for (int i = 0; i < calls; i++) {
		double ns = run_once(fd, f, repeat, &verdict);

		if (ns < 0 || verdict != want) {
			fprintf(stderr, "datapath_fastpath: verdict %u, expected %u\n", verdict,
				want);
			return -1;
		}
		sum += ns;
	}
	return sum / calls;
}

static int fastpath_set(struct bench *b, int on)
{
	struct pfsync_config cfg;

	if (pfsync_config_read(&b->maps, &cfg))
		return -1;
	cfg.cfg_flags =
	    on ? cfg.cfg_flags | PFSYNC_CFG_FASTPATH : cfg.cfg_flags & ~PFSYNC_CFG_FASTPATH;
	return pfsync_config_write(&b->maps, &cfg);
}

/* UDP A->B, B->A (both sides spoke), TCP's handshake: both established. */
static int establish(struct bench *b)
{
	struct frame f;
	__u32 v[5];

	frame_build(&f, IPPROTO_UDP, 0, 0, 0, 0, b);
	run_once(b->ours.xdp_fd, &f, 1, &v[0]);
	frame_build(&f, IPPROTO_UDP, 1, 0, 0, 0, b);
	run_once(b->ours.xdp_fd, &f, 1, &v[1]);
	frame_build(&f, IPPROTO_TCP, 0, 0x02, 1000, 0, b);
	run_once(b->ours.xdp_fd, &f, 1, &v[2]);
	frame_build(&f, IPPROTO_TCP, 1, 0x12, 5000, 1001, b);
	run_once(b->ours.xdp_fd, &f, 1, &v[3]);
	frame_build(&f, IPPROTO_TCP, 0, 0x10, 1001, 5001, b);
	run_once(b->ours.xdp_fd, &f, 1, &v[4]);
	for (int i = 0; i < 5; i++)
		if (v[i] != XDP_PASS && !(i == 4 && v[i] == XDP_REDIRECT)) {
			fprintf(stderr, "datapath_fastpath: set-up packet %d: verdict %u\n", i,
				v[i]);
			return -1;
		}
	frame_build(&b->udp, IPPROTO_UDP, 0, 0, 0, 0, b);
	frame_build(&b->tcp, IPPROTO_TCP, 0, 0x10, 1001, 5001, b);
	return 0;
}

/* ---- set-up ----------------------------------------------------------------- */
static int netns_up(struct bench *b)
{
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "datapath_fastpath: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(topology) / sizeof(topology[0]); i++)
		if (system(topology[i]) != 0) {
			fprintf(stderr, "datapath_fastpath: set-up failed: %s\n", topology[i]);
			return -1;
		}
	b->if_in = if_nametoindex("fpin");
	b->if_out = if_nametoindex("fpout");
	return b->if_in && b->if_out ? 0 : -1;
}

/* bench_fwd shares pfsync_xdp's pinned interface set (pin_root_path). */
static int load_plain(struct bench *b, const char *build, const char *name, struct bpf_object **obj,
		      int *fd)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = b->pin_dir);
	char path[PATH_MAX];
	struct bpf_program *prog;

	snprintf(path, sizeof(path), "%s/%s.o", build, name);
	*obj = bpf_object__open_file(path, &oo);
	if (!*obj || bpf_object__load(*obj)) {
		fprintf(stderr, "datapath_fastpath: cannot load %s: %s\n", path, strerror(errno));
		return -1;
	}
	prog = bpf_object__find_program_by_name(*obj, name);
	*fd = prog ? bpf_program__fd(prog) : -1;
	return *fd < 0 ? -1 : 0;
}

static int bench_setup(struct bench *b, const char *build)
{
	char obj[PATH_MAX];

	snprintf(b->pin_dir, sizeof(b->pin_dir), "/tmp/pfsync-fpbench.XXXXXX");
	if (!mkdtemp(b->pin_dir) || mount("bpf", b->pin_dir, "bpf", 0, NULL)) {
		fprintf(stderr, "datapath_fastpath: bpffs on %s: %s\n", b->pin_dir,
			strerror(errno));
		return -1;
	}
	snprintf(obj, sizeof(obj), "%s/pfsync_xdp.o", build);
	if (pfsync_bpf_load(&b->ours, obj, b->pin_dir, 0, PFSYNC_LOAD_XDP | PFSYNC_LOAD_CTL) ||
	    pfsync_maps_open(&b->maps, b->pin_dir))
		return -1;
	b->maps_open = 1;
	if (pfsync_fastpath_if_add(&b->maps, b->if_in) ||
	    pfsync_fastpath_if_add(&b->maps, b->if_out) || fastpath_set(b, 1)) {
		fprintf(stderr, "datapath_fastpath: cannot turn the fast path on\n");
		return -1;
	}
	if (load_plain(b, build, "bench_fwd", &b->floor, &b->floor_fd) ||
	    load_plain(b, build, "bench_empty", &b->empty, &b->empty_fd))
		return -1;
	return establish(b);
}

static void bench_free(struct bench *b)
{
	if (b->floor)
		bpf_object__close(b->floor);
	if (b->empty)
		bpf_object__close(b->empty);
	if (b->maps_open)
		pfsync_maps_close(&b->maps);
	if (b->ours.obj)
		pfsync_bpf_close(&b->ours);
	umount2(b->pin_dir, MNT_DETACH);
	rmdir(b->pin_dir);
}

/* ---- measuring ---------------------------------------------------------------- */
static int measure_round(struct bench *b, int r)
{
	int calls = b->calls;
	__u32 rep = b->repeat;

	double *ns[C_COUNT];

	for (int c = 0; c < C_COUNT; c++)
		ns[c] = &b->ns[c][r];
	*ns[C_EMPTY] = run_mean(b->empty_fd, &b->udp, calls, rep, XDP_PASS);
	*ns[C_FLOOR] = run_mean(b->floor_fd, &b->udp, calls, rep, XDP_REDIRECT);
	*ns[C_UDP_FP] = run_mean(b->ours.xdp_fd, &b->udp, calls, rep, XDP_REDIRECT);
	*ns[C_TCP_FP] = run_mean(b->ours.xdp_fd, &b->tcp, calls, rep, XDP_REDIRECT);
	if (fastpath_set(b, 0))
		return -1;
	*ns[C_UDP_OFF] = run_mean(b->ours.xdp_fd, &b->udp, calls, rep, XDP_PASS);
	*ns[C_TCP_OFF] = run_mean(b->ours.xdp_fd, &b->tcp, calls, rep, XDP_PASS);
	if (fastpath_set(b, 1))
		return -1;
	for (int c = 0; c < C_COUNT; c++)
		if (*ns[c] < 0)
			return -1;
	return 0;
}

static void print_table(struct bench *b, int rounds)
{
	double med[C_COUNT], over, floor_net;

	for (int c = 0; c < C_COUNT; c++)
		med[c] = median(b->ns[c], rounds);
	over = med[C_EMPTY];
	floor_net = med[C_FLOOR] - over;
	printf("fast path, BPF_PROG_RUN: %d calls x %u repeats of one packet per case and round, "
	       "median of %d rounds\n",
	       b->calls, b->repeat, rounds);
	printf("%-40s %9s %9s %9s\n", "case", "ns/run", "net ns", "x floor");
	for (int c = 0; c < C_COUNT; c++) {
		double net = med[c] - over;

		printf("%-40s %9.1f %9.1f", case_names[c], med[c], c == C_EMPTY ? 0.0 : net);
		if (c != C_EMPTY && floor_net > 0)
			printf(" %8.2fx\n", net / floor_net);
		else
			printf(" %9s\n", "-");
	}
	printf("net: minus the empty program's (the test run's own timing per run)\n"
	       "target: ours with the fast path <= 1.30x the floor\n");
}

int main(int argc, char **argv)
{
	const char *build = getenv("PFSYNC_BUILD") ? getenv("PFSYNC_BUILD") : "build";
	/* a call with repeat > 1 swaps the kernel's XDP dispatcher in and out
	 * (tens of ms of wall time, not in the measured time): few, long calls */
	int calls = 40, repeat = FRAME_REPEAT_MAX, rounds = 5, rc = 1;
	struct bench *b;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--calls") && i + 1 < argc)
			calls = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
			repeat = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--build") && i + 1 < argc)
			build = argv[++i];
		else /* BENCH_ARGS meant for bench/datapath */
			fprintf(stderr, "datapath_fastpath: ignoring %s\n", argv[i]);
	}
	if (calls < 1 || rounds < 1 || rounds > MAX_ROUNDS || repeat < 1 ||
	    repeat > FRAME_REPEAT_MAX) {
		fprintf(stderr, "datapath_fastpath: --repeat 1..%d, --rounds 1..%d, --calls >= 1\n",
			FRAME_REPEAT_MAX, MAX_ROUNDS);
		return 2;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return 1;
	b->calls = calls;
	b->repeat = (__u32)repeat;
	if (netns_up(b) == 0 && bench_setup(b, build) == 0) {
		rc = 0;
		for (int r = 0; r < rounds && !rc; r++)
			rc = measure_round(b, r);
		if (!rc)
			print_table(b, rounds);
	}
	if (b->pin_dir[0])
		bench_free(b);
	free(b);
	return rc;
}
