// SPDX-License-Identifier: BSD-2-Clause
/*
 * BPF_PROG_RUN vectors of the fast path (bpf/fastpath.h, needs root). The
 * process moves into a network namespace of its own (gone with it), where
 * veths, addresses, routes and permanent neighbours give bpf_fib_lookup
 * something to find:
 *   fpin   10.1.0.1/24 fd01::1/64   neighbour .2 / ::2   in the fast-path set
 *   fpout  10.2.0.1/24 fd02::1/64   neighbour .2 / ::2   in the set
 *                                   10.2.0.3: no neighbour
 *                                   10.5.0.0/24 with mtu 600, neighbour .2
 *   fpoff  10.3.0.1/24              neighbour .2          not in the set
 *   unreachable 10.8.0.0/16
 * Each test establishes a state with packets through the XDP program, then
 * checks one packet's verdict, its bytes and the counters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pfsync_common.h"
#include "pfsync_logic.h"
#include "pfsync_loader.h"
#include "pfsync_maps.h"
#include "libpkt.h"

#define OUT_MAC	 "\x02\x00\x00\x00\x02\x01" /* fpout's own address */
#define HOP_MAC	 "\x02\x00\x00\x00\x02\x02" /* its neighbours' */
#define IN_MAC	 "\x02\x00\x00\x00\x01\x01"
#define PEER_MAC "\x02\x00\x00\x00\x01\x02"
#define OFF_MAC	 "\x02\x00\x00\x00\x03\x01"

#define A4 "10.1.0.2"
#define B4 "10.2.0.2"
#define A6 "fd01::2"
#define B6 "fd02::2"

static const char *const topology[] = {
    "sysctl -qw net.ipv4.conf.all.forwarding=1 net.ipv6.conf.all.forwarding=1",
    "ip link set lo up",
    "ip link add fpin address 02:00:00:00:01:01 type veth peer name fpin_p",
    "ip link add fpout address 02:00:00:00:02:01 type veth peer name fpout_p",
    "ip link add fpoff address 02:00:00:00:03:01 type veth peer name fpoff_p",
    "for d in fpin fpin_p fpout fpout_p fpoff fpoff_p; do ip link set $d up; done",
    "ip addr add 10.1.0.1/24 dev fpin && ip addr add fd01::1/64 dev fpin nodad",
    "ip addr add 10.2.0.1/24 dev fpout && ip addr add fd02::1/64 dev fpout nodad",
    "ip addr add 10.3.0.1/24 dev fpoff",
    "ip neigh add 10.1.0.2 lladdr 02:00:00:00:01:02 dev fpin nud permanent",
    "ip neigh add fd01::2 lladdr 02:00:00:00:01:02 dev fpin nud permanent",
    "ip neigh add 10.2.0.2 lladdr 02:00:00:00:02:02 dev fpout nud permanent",
    "ip neigh add fd02::2 lladdr 02:00:00:00:02:02 dev fpout nud permanent",
    "ip neigh add 10.5.0.2 lladdr 02:00:00:00:02:02 dev fpout nud permanent",
    "ip neigh add 10.3.0.2 lladdr 02:00:00:00:03:02 dev fpoff nud permanent",
    "ip route add 10.5.0.0/24 dev fpout mtu lock 600",
    "ip route add unreachable 10.8.0.0/16",
};

struct fixture {
	struct pkt_obj o; /* libpkt's shared fixture */
	struct pfsync_maps m;
	int maps_open;
	__u32 if_in, if_out, if_off;
};

struct run {
	int verdict;
	__u8 out[PKT_MAX];
	__u32 out_len;
};

/* ---- fixture ------------------------------------------------------------ */
static int topology_up(void)
{
	if (unshare(CLONE_NEWNET)) {
		perror("unshare(CLONE_NEWNET)");
		return -1;
	}
	for (size_t i = 0; i < sizeof(topology) / sizeof(topology[0]); i++) {
		if (system(topology[i]) != 0) {
			fprintf(stderr, "fastpath: set-up step failed: %s\n", topology[i]);
			return -1;
		}
	}
	return 0;
}

static void fixture_free(struct fixture *f)
{
	if (f->maps_open)
		pfsync_maps_close(&f->m);
	pkt_obj_close(&f->o);
	free(f);
}

static int group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || topology_up())
		goto fail;
	f->if_in = if_nametoindex("fpin");
	f->if_out = if_nametoindex("fpout");
	f->if_off = if_nametoindex("fpoff");
	if (pkt_obj_open(&f->o, "fastpath", 0, PFSYNC_LOAD_XDP | PFSYNC_LOAD_CTL))
		goto fail;
	if (pfsync_maps_open(&f->m, f->o.pin_dir))
		goto fail;
	f->maps_open = 1;
	/* through the library, which reads each interface's MAC */
	if (pfsync_fastpath_if_add(&f->m, f->if_in) || pfsync_fastpath_if_add(&f->m, f->if_out))
		goto fail;
	*state = f;
	return 0;
fail:
	if (f)
		fixture_free(f);
	return -1;
}

static int group_teardown(void **state)
{
	if (*state)
		fixture_free(*state);
	return 0;
}

static void config_set(struct fixture *f, __u32 cfg_flags)
{
	struct pfsync_config cfg = {.cfg_flags = cfg_flags};

	assert_int_equal(pfsync_config_write(&f->m, &cfg), 0);
}

/* Empty table, zero counters, fast path on. */
static int test_reset(void **state)
{
	struct fixture *f = *state;
	struct pfsync_sweep_args args = {.sweep_flags = PFSYNC_SWEEP_FLUSH | PFSYNC_SWEEP_QUIET};
	struct pfsync_config cfg = {.cfg_flags = PFSYNC_CFG_FASTPATH};

	if (pfsync_bpf_sweep(&f->o.b, &args) || pfsync_counters_zero(&f->m))
		return -1;
	return pfsync_config_write(&f->m, &cfg);
}

/* ---- helpers ------------------------------------------------------------ */
static struct pfsync_counters counters_sum(struct fixture *f)
{
	struct pfsync_counters sum;

	assert_int_equal(pfsync_counters_sum(&f->m, &sum), 0);
	return sum;
}

/* One's complement sum of an IPv4 header, folded: 0xffff when valid. */
static __u16 ipv4_sum(const __u8 *ip, size_t len)
{
	__u32 sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (__u32)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* libpkt leaves the IPv4 checksum 0: the fast path updates it incrementally. */
static void ipv4_fix_csum(__u8 *ip)
{
	size_t len = (size_t)(ip[0] & 0xf) * 4;
	__u16 c;

	ip[10] = ip[11] = 0;
	c = (__u16)~ipv4_sum(ip, len);
	ip[10] = (__u8)(c >> 8);
	ip[11] = (__u8)c;
}

/* The MAC a frame arriving on ifindex was sent to. */
static const char *mac_of(struct fixture *f, __u32 ifindex)
{
	if (ifindex == f->if_in)
		return IN_MAC;
	return ifindex == f->if_out ? OUT_MAC : OFF_MAC;
}

/* The frame of s (TTL set, checksum valid) sent to the MAC of ifindex. */
static size_t frame_of(struct fixture *f, const struct pkt_spec *s, __u32 ifindex, __u8 ttl,
		       __u8 *buf)
{
	size_t len = pkt_build(s, buf, PKT_MAX), l3 = pkt_l3_off(s);

	assert_true(len > 0);
	memcpy(buf, mac_of(f, ifindex), 6);
	if (s->af == AF_INET) {
		buf[l3 + 8] = ttl;
		ipv4_fix_csum(buf + l3);
	} else {
		buf[l3 + 7] = ttl;
	}
	return len;
}

static void xdp_run_ttl(struct fixture *f, const struct pkt_spec *s, __u32 ifindex, __u8 ttl,
			struct run *r)
{
	__u8 in[PKT_MAX];
	size_t len = frame_of(f, s, ifindex, ttl, in);
	struct xdp_md ctx = {.data_end = (__u32)len, .ingress_ifindex = ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = (__u32)len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(f->o.b.xdp_fd, &opts), 0);
	r->verdict = (int)opts.retval;
	r->out_len = opts.data_size_out;
}

static int xdp_run(struct fixture *f, const struct pkt_spec *s, __u32 ifindex)
{
	struct run r;

	xdp_run_ttl(f, s, ifindex, 64, &r);
	return r.verdict;
}

/* A UDP spec of the tests' one port pair. */
static struct pkt_spec udp(int af, const char *src, const char *dst)
{
	return pkt_udp(af, src, dst, 1000, 2000);
}

/* A UDP state that has seen both directions (the reply comes in on `back`). */
static void udp_establish(struct fixture *f, const struct pkt_spec *s, __u32 back)
{
	struct pkt_spec reply = pkt_reverse(s);

	assert_int_equal(xdp_run(f, s, f->if_in), XDP_PASS);
	assert_int_equal(xdp_run(f, &reply, back), XDP_PASS); /* SINGLE -> MULTIPLE on one side */
}

static __u64 fp_count(struct fixture *f, int reason, int dir)
{
	return counters_sum(f).fastpath[reason][dir];
}

/*
 * A fallback from the initiator's side: the packet passes unchanged, one
 * more in packets_passed and in (reason, dir 0), no other fast-path
 * counter moved.
 */
static void expect_fallback(struct fixture *f, const struct pkt_spec *s, __u32 ifindex, __u8 ttl,
			    int reason)
{
	struct pfsync_counters before = counters_sum(f), after;
	struct run r;
	__u8 in[PKT_MAX];
	size_t len = frame_of(f, s, ifindex, ttl, in);

	xdp_run_ttl(f, s, ifindex, ttl, &r);
	assert_int_equal(r.verdict, XDP_PASS);
	assert_int_equal(r.out_len, len);
	assert_memory_equal(r.out, in, len);
	after = counters_sum(f);
	before.fastpath[reason][0]++;
	before.packets_passed++;
	assert_memory_equal(after.fastpath, before.fastpath, sizeof(after.fastpath));
	assert_int_equal(after.packets_passed, before.packets_passed);
}

/* ---- redirect ------------------------------------------------------------ */
static void check_forwarded(struct fixture *f, const struct run *r, const struct pkt_spec *s,
			    const char *dmac, const char *smac)
{
	size_t l3 = pkt_l3_off(s);

	assert_int_equal(r->verdict, XDP_REDIRECT);
	assert_memory_equal(r->out, dmac, 6);
	assert_memory_equal(r->out + 6, smac, 6);
	if (s->af == AF_INET) {
		assert_int_equal(r->out[l3 + 8], 63);
		assert_int_equal(ipv4_sum(r->out + l3, 20), 0xffff);
	} else {
		assert_int_equal(r->out[l3 + 7], 63);
	}
	(void)f;
}

static void check_udp_redirect(struct fixture *f, int af, const char *a, const char *b)
{
	struct pkt_spec s = udp(af, a, b), reply = pkt_reverse(&s);
	struct pfsync_counters c;
	struct run r;

	udp_establish(f, &s, f->if_out);
	xdp_run_ttl(f, &s, f->if_in, 64, &r);
	check_forwarded(f, &r, &s, HOP_MAC, OUT_MAC);
	xdp_run_ttl(f, &reply, f->if_out, 64, &r);
	check_forwarded(f, &r, &reply, PEER_MAC, IN_MAC);
	c = counters_sum(f);
	assert_int_equal(c.fastpath[PFSYNC_FP_FORWARDED][0], 1);
	assert_int_equal(c.fastpath[PFSYNC_FP_FORWARDED][1], 1);
	/* establishing: the first packet makes the state, the reply finds one side SINGLE */
	assert_int_equal(c.fastpath[PFSYNC_FP_NOT_READY][1], 1);
	/* a fast-pathed packet is its own outcome: seen 4, passed only the 2 that went up */
	assert_int_equal(c.packets_seen, 4);
	assert_int_equal(c.packets_passed, 2);
	assert_int_equal(c.prog[PFSYNC_PROG_XDP].outcome[PFSYNC_OUT_FASTPATH], 2);
	assert_int_equal(pfsync_prog_unaccounted(&c.prog[PFSYNC_PROG_XDP]), 0);
}

static void test_udp4_redirect(void **state)
{
	check_udp_redirect(*state, AF_INET, A4, B4);
}

static void test_udp6_redirect(void **state)
{
	check_udp_redirect(*state, AF_INET6, A6, B6);
}

/* The state is tracked as before: counters and last-seen of the redirected packet. */
static void test_tcp_redirect_tracks(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec syn = udp(AF_INET, A4, B4), synack, ack;
	struct run r;

	syn.proto = IPPROTO_TCP;
	syn.tcp_flags = PFSYNC_TH_SYN;
	syn.seq = 1000;
	syn.win = 65535;
	synack = pkt_reverse(&syn);
	synack.tcp_flags = PFSYNC_TH_SYN | PFSYNC_TH_ACK;
	synack.seq = 5000;
	synack.ack = 1001;
	ack = syn;
	ack.tcp_flags = PFSYNC_TH_ACK;
	ack.seq = 1001;
	ack.ack = 5001;
	assert_int_equal(xdp_run(f, &syn, f->if_in), XDP_PASS);
	assert_int_equal(xdp_run(f, &synack, f->if_out), XDP_PASS);
	/* the ACK completes the handshake: established both ways, fast-pathed */
	xdp_run_ttl(f, &ack, f->if_in, 64, &r);
	check_forwarded(f, &r, &ack, HOP_MAC, OUT_MAC);
	/* a FIN moves the state on: to the stack */
	ack.tcp_flags = PFSYNC_TH_ACK | PFSYNC_TH_FIN;
	assert_int_equal(xdp_run(f, &ack, f->if_in), XDP_PASS);
	assert_int_equal(fp_count(f, PFSYNC_FP_FORWARDED, 0), 1);
	assert_int_equal(fp_count(f, PFSYNC_FP_NOT_READY, 0), 1);
	assert_int_equal(counters_sum(f).states_inserted, 1);
	assert_int_equal(counters_sum(f).packets_passed, 3);
}

static void test_icmp_echo_reply_redirect(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec req = udp(AF_INET, A4, B4), rep;
	struct run r;

	req.proto = IPPROTO_ICMP;
	req.icmp_type = 8;
	req.icmp_id = 77;
	rep = pkt_reverse(&req);
	rep.icmp_type = 0;
	assert_int_equal(xdp_run(f, &req, f->if_in), XDP_PASS); /* creates the state */
	xdp_run_ttl(f, &rep, f->if_out, 64, &r);
	check_forwarded(f, &r, &rep, PEER_MAC, IN_MAC);
	assert_int_equal(fp_count(f, PFSYNC_FP_FORWARDED, 1), 1);
}

static void test_off_by_default(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec s = udp(AF_INET, A4, B4);

	static const struct pfsync_counters zero;

	config_set(f, 0);
	udp_establish(f, &s, f->if_out);
	assert_int_equal(xdp_run(f, &s, f->if_in), XDP_PASS);
	assert_memory_equal(counters_sum(f).fastpath, zero.fastpath, sizeof(zero.fastpath));
}

/* ---- fallbacks ------------------------------------------------------------ */
static void fallback_to(struct fixture *f, const char *dst, __u32 back, int reason)
{
	struct pkt_spec s = udp(AF_INET, A4, dst);

	udp_establish(f, &s, back);
	expect_fallback(f, &s, f->if_in, 64, reason);
}

static void test_fallback_no_neigh(void **state)
{
	fallback_to(*state, "10.2.0.3", ((struct fixture *)*state)->if_out, PFSYNC_FP_NO_NEIGH);
}

static void test_fallback_local(void **state)
{
	fallback_to(*state, "10.1.0.1", ((struct fixture *)*state)->if_in, PFSYNC_FP_NOT_FWDED);
}

static void test_fallback_unreachable(void **state)
{
	fallback_to(*state, "10.8.1.1", ((struct fixture *)*state)->if_in, PFSYNC_FP_NO_ROUTE);
}

static void test_fallback_egress_not_in_set(void **state)
{
	fallback_to(*state, "10.3.0.2", ((struct fixture *)*state)->if_off,
		    PFSYNC_FP_EGRESS_NOT_SET);
}

static void test_fallback_mtu(void **state)
{
	struct fixture *f = *state;
	static const __u8 big[700];
	struct pkt_spec s = udp(AF_INET, A4, "10.5.0.2");

	udp_establish(f, &s, f->if_out);
	assert_int_equal(xdp_run(f, &s, f->if_in), XDP_REDIRECT); /* small ones go */
	s.payload = big;
	s.payload_len = sizeof(big);
	expect_fallback(f, &s, f->if_in, 64, PFSYNC_FP_MTU);
}

static void test_fallback_ttl(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec s = udp(AF_INET, A4, B4), s6 = udp(AF_INET6, A6, B6);

	udp_establish(f, &s, f->if_out);
	expect_fallback(f, &s, f->if_in, 1, PFSYNC_FP_TTL);
	udp_establish(f, &s6, f->if_out);
	expect_fallback(f, &s6, f->if_in, 1, PFSYNC_FP_TTL);
}

static void test_fallback_vlan(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec s = udp(AF_INET, A4, B4);

	udp_establish(f, &s, f->if_out);
	s.vlan = 5;
	expect_fallback(f, &s, f->if_in, 64, PFSYNC_FP_VLAN);
}

static void test_fallback_ip_options(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec s = udp(AF_INET, A4, B4), s6 = udp(AF_INET6, A6, B6);

	udp_establish(f, &s, f->if_out);
	s.ip_opt_len = 4;
	expect_fallback(f, &s, f->if_in, 64, PFSYNC_FP_IP_OPTIONS);
	udp_establish(f, &s6, f->if_out);
	s6.n_ext = 1;
	s6.ext[0] = 0; /* hop-by-hop */
	expect_fallback(f, &s6, f->if_in, 64, PFSYNC_FP_IP_OPTIONS);
}

static void test_fallback_first_fragment(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec s = udp(AF_INET, A4, B4);

	udp_establish(f, &s, f->if_out);
	s.more_frags = 1;
	expect_fallback(f, &s, f->if_in, 64, PFSYNC_FP_FRAGMENT);
}

/* Ingress not in the set (fpoff), or a frame for another host. */
static void test_fallback_not_ours(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec s = udp(AF_INET, "10.3.0.2", B4);
	struct pkt_spec s_reply = pkt_reverse(&s), t = udp(AF_INET, A4, B4);
	struct pfsync_counters before;
	__u8 in[PKT_MAX];
	size_t len;
	struct xdp_md ctx = {.ingress_ifindex = 0};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	assert_int_equal(xdp_run(f, &s, f->if_off), XDP_PASS);
	assert_int_equal(xdp_run(f, &s_reply, f->if_out), XDP_PASS);
	expect_fallback(f, &s, f->if_off, 64, PFSYNC_FP_NOT_OURS);

	udp_establish(f, &t, f->if_out);
	before = counters_sum(f);
	len = frame_of(f, &t, f->if_in, 64, in);
	in[5] ^= 0x10; /* another host's address, as a promiscuous port receives it */
	ctx.data_end = (__u32)len;
	ctx.ingress_ifindex = f->if_in;
	opts.data_size_in = (__u32)len;
	assert_int_equal(bpf_prog_test_run_opts(f->o.b.xdp_fd, &opts), 0);
	assert_int_equal(opts.retval, XDP_PASS);
	assert_int_equal(counters_sum(f).fastpath[PFSYNC_FP_NOT_OURS][0],
			 before.fastpath[PFSYNC_FP_NOT_OURS][0] + 1);
}

static void test_not_ready_counted(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec s = udp(AF_INET, A4, B4);

	assert_int_equal(xdp_run(f, &s, f->if_in), XDP_PASS);
	assert_int_equal(xdp_run(f, &s, f->if_in), XDP_PASS); /* one side only */
	assert_int_equal(fp_count(f, PFSYNC_FP_NOT_READY, 0), 1);
	assert_int_equal(fp_count(f, PFSYNC_FP_FORWARDED, 0), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup(fn, test_reset)
	const struct CMUnitTest tests[] = {
	    T(test_udp4_redirect),	  T(test_udp6_redirect),
	    T(test_tcp_redirect_tracks),  T(test_icmp_echo_reply_redirect),
	    T(test_off_by_default),	  T(test_not_ready_counted),
	    T(test_fallback_no_neigh),	  T(test_fallback_local),
	    T(test_fallback_unreachable), T(test_fallback_egress_not_in_set),
	    T(test_fallback_not_ours),	  T(test_fallback_mtu),
	    T(test_fallback_ttl),	  T(test_fallback_vlan),
	    T(test_fallback_ip_options),  T(test_fallback_first_fragment),
	};
	const char *filter = getenv("TEST_FILTER");

	if (filter && *filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests_name("fastpath", tests, group_setup, group_teardown) ? 1 : 0;
}
