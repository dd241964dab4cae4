// SPDX-License-Identifier: BSD-2-Clause
/*
 * BPF_PROG_RUN packet-vector tests of build/pfsync_xdp.o (needs root).
 * Each group mounts its own bpffs on a fresh temp dir, loads the object
 * with pfsync_bpf_load pinning there, and removes everything in teardown.
 * Every test starts from an empty table, zero counters, default config,
 * no rules and a drained event ring, then checks verdicts AND map changes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pfsync_common.h"
#include "pfsync_logic.h"
#include "pfsync_loader.h"
#include "libpkt.h"

#define LO_IFINDEX  1
#define SMALL_TABLE 4

struct fixture {
	struct pkt_obj o; /* libpkt's shared fixture */
	int states, rules, config, globals, counters, events, defer;
	struct ring_buffer *rb;
	struct pkt_events log;
};

/* ---- fixture ------------------------------------------------------------ */
static int map_fd(struct fixture *f, const char *name)
{
	return pkt_obj_map_fd(&f->o, name);
}

static void fixture_free(struct fixture *f)
{
	if (f->rb)
		ring_buffer__free(f->rb);
	pkt_obj_close(&f->o);
	free(f);
}

static int fixture_setup(void **state, __u32 states_max)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (pkt_obj_open(&f->o, "prog", states_max,
			 PFSYNC_LOAD_XDP | PFSYNC_LOAD_TC | PFSYNC_LOAD_CTL))
		goto fail;
	f->states = map_fd(f, PFSYNC_MAP_STATES);
	f->rules = map_fd(f, PFSYNC_MAP_RULES);
	f->config = map_fd(f, PFSYNC_MAP_CONFIG);
	f->globals = map_fd(f, PFSYNC_MAP_GLOBALS);
	f->counters = map_fd(f, PFSYNC_MAP_COUNTERS);
	f->events = map_fd(f, PFSYNC_MAP_EVENTS);
	f->defer = map_fd(f, PFSYNC_MAP_DEFER);
	f->rb = ring_buffer__new(f->events, pkt_events_record, &f->log, NULL);
	if (!f->rb)
		goto fail;
	*state = f;
	return 0;
fail:
	fixture_free(f);
	return -1;
}

static int group_setup(void **state)
{
	return fixture_setup(state, 0);
}

static int group_setup_small(void **state)
{
	return fixture_setup(state, SMALL_TABLE);
}

static int group_teardown(void **state)
{
	if (*state)
		fixture_free(*state);
	return 0;
}

static void events_drain(struct fixture *f)
{
	f->log.n = 0;
	ring_buffer__consume(f->rb);
	f->log.n = 0;
}

static void events_read(struct fixture *f)
{
	f->log.n = 0;
	assert_true(ring_buffer__consume(f->rb) >= 0);
}

static int defer_pop(struct fixture *f, struct pfsync_deferred *d)
{
	return bpf_map_lookup_and_delete_elem(f->defer, NULL, d);
}

static void defer_drain(struct fixture *f)
{
	struct pfsync_deferred d;

	while (defer_pop(f, &d) == 0)
		;
}

static void config_write(struct fixture *f, const struct pfsync_config *cfg)
{
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(f->config, &zero, cfg, BPF_ANY), 0);
}

/* Empty table, zero counters, default config, no rules, nothing queued. */
static int test_reset(void **state)
{
	struct fixture *f = *state;
	struct pfsync_sweep_args args = {.sweep_flags = PFSYNC_SWEEP_FLUSH | PFSYNC_SWEEP_QUIET};
	struct pfsync_config cfg = {};
	int ncpu = libbpf_num_possible_cpus();
	struct pfsync_counters *zeros = calloc(ncpu, sizeof(*zeros));
	__u32 zero = 0;
	int err;

	if (!zeros)
		return -1;
	err = pfsync_bpf_sweep(&f->o.b, &args);
	if (!err)
		err = bpf_map_update_elem(f->counters, &zero, zeros, BPF_ANY);
	if (!err)
		err = bpf_map_update_elem(f->config, &zero, &cfg, BPF_ANY);
	free(zeros);
	events_drain(f);
	defer_drain(f);
	return err;
}

/* ---- helpers ------------------------------------------------------------ */
static struct pfsync_counters counters_sum(struct fixture *f)
{
	int ncpu = libbpf_num_possible_cpus(), i;
	struct pfsync_counters *per = calloc(ncpu, sizeof(*per)), sum = {};
	__u32 zero = 0;

	assert_non_null(per);
	assert_int_equal(bpf_map_lookup_elem(f->counters, &zero, per), 0);
	for (i = 0; i < ncpu; i++) {
		__u64 *dst = (__u64 *)&sum;
		const __u64 *src = (const __u64 *)&per[i];
		size_t k;

		for (k = 0; k < sizeof(sum) / sizeof(__u64); k++)
			dst[k] += src[k];
	}
	free(per);
	return sum;
}

static struct pfsync_globals globals_read(struct fixture *f)
{
	struct pfsync_globals g;
	__u32 zero = 0;

	assert_int_equal(bpf_map_lookup_elem(f->globals, &zero, &g), 0);
	return g;
}

static int run_xdp(struct fixture *f, const void *frame, size_t len)
{
	struct xdp_md ctx = {.data_end = (__u32)len, .ingress_ifindex = LO_IFINDEX};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (__u32)len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(f->o.b.xdp_fd, &opts), 0);
	return (int)opts.retval;
}

static int run_tc(struct fixture *f, const void *frame, size_t len)
{
	struct __sk_buff ctx = {.ifindex = LO_IFINDEX};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (__u32)len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(f->o.b.tc_fd, &opts), 0);
	return (int)opts.retval;
}

/* tc egress of a packet that came in on ingress_ifindex (0: sent locally). */
static int tc_spec_from(struct fixture *f, const struct pkt_spec *s, __u32 ingress_ifindex)
{
	struct __sk_buff ctx = {.ifindex = LO_IFINDEX, .ingress_ifindex = ingress_ifindex};
	__u8 buf[PKT_MAX];
	size_t len = pkt_build(s, buf, sizeof(buf));
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf, .data_size_in = (__u32)len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);

	assert_true(len > 0);
	assert_int_equal(bpf_prog_test_run_opts(f->o.b.tc_fd, &opts), 0);
	return (int)opts.retval;
}

static int xdp_spec(struct fixture *f, const struct pkt_spec *s)
{
	__u8 buf[PKT_MAX];
	size_t len = pkt_build(s, buf, sizeof(buf));

	assert_true(len > 0);
	return run_xdp(f, buf, len);
}

static int tc_spec(struct fixture *f, const struct pkt_spec *s)
{
	__u8 buf[PKT_MAX];
	size_t len = pkt_build(s, buf, sizeof(buf));

	assert_true(len > 0);
	return run_tc(f, buf, len);
}

/* A packet forwarded by the firewall: XDP ingress on lo, then tc egress. */
static void forward_spec(struct fixture *f, const struct pkt_spec *s)
{
	assert_int_equal(xdp_spec(f, s), XDP_PASS);
	assert_int_equal(tc_spec_from(f, s, LO_IFINDEX), TC_ACT_OK);
}

/* The normalised key of a packet, as the datapath builds it. */
static struct pfsync_key key_of(const struct pkt_spec *s, int *src_side)
{
	struct pfsync_key k = {};
	int side;

	pkt_addr(s->af, s->saddr, k.addr[0]);
	pkt_addr(s->af, s->daddr, k.addr[1]);
	k.proto = s->proto;
	k.af = s->af == AF_INET ? PFSYNC_AF_INET : PFSYNC_AF_INET6;
	if (s->proto == IPPROTO_TCP || s->proto == IPPROTO_UDP) {
		k.port[0] = htons(s->sport);
		k.port[1] = htons(s->dport);
	} else if (s->proto == IPPROTO_ICMP || s->proto == IPPROTO_ICMPV6) {
		__u8 req = s->proto == IPPROTO_ICMP ? 8 : 128;

		if (s->icmp_type == req) {
			k.port[0] = htons(s->icmp_id);
			k.port[1] = htons(req);
		} else {
			k.port[0] = htons(req);
			k.port[1] = htons(s->icmp_id);
		}
	}
	side = pfsync_key_normalize(&k);
	if (src_side)
		*src_side = side;
	return k;
}

static int state_get(struct fixture *f, const struct pkt_spec *s, struct pfsync_state_value *v)
{
	struct pfsync_key k = key_of(s, NULL);

	return bpf_map_lookup_elem(f->states, &k, v);
}

static int states_count(struct fixture *f)
{
	struct pfsync_key k, next;
	int n = 0;
	void *prev = NULL;

	while (bpf_map_get_next_key(f->states, prev, &next) == 0) {
		k = next;
		prev = &k;
		n++;
	}
	return n;
}

static void rules_load(struct fixture *f, const struct pfsync_rule *rules, __u32 n, __u32 bank)
{
	struct pfsync_config cfg = {};
	__u32 zero = 0, i;

	for (i = 0; i < n; i++) {
		__u32 idx = bank * PFSYNC_RULES_MAX + i;

		assert_int_equal(bpf_map_update_elem(f->rules, &idx, &rules[i], BPF_ANY), 0);
	}
	assert_int_equal(bpf_map_lookup_elem(f->config, &zero, &cfg), 0);
	cfg.rules_bank = bank;
	cfg.nrules = n;
	config_write(f, &cfg);
}

static void rule_net(struct pfsync_rule *r, int dst, int af, const char *addr, int plen)
{
	__u32 *net = dst ? r->dst_addr : r->src_addr, *mask = dst ? r->dst_mask : r->src_mask;
	int i;

	pkt_addr(af, addr, net);
	for (i = 0; i < 4; i++) {
		int bits = plen - i * 32;
		__u32 m = bits >= 32 ? 0xffffffffU : bits <= 0 ? 0 : ~(0xffffffffU >> bits);

		mask[i] = htonl(m);
		net[i] &= mask[i];
	}
	if (dst)
		r->dst_plen = (__u8)plen;
	else
		r->src_plen = (__u8)plen;
	r->af = af == AF_INET ? PFSYNC_AF_INET : PFSYNC_AF_INET6;
}

static struct pkt_spec tcp4(const char *src, const char *dst, __u16 sport, __u16 dport, __u8 flags,
			    __u32 seq, __u32 ack)
{
	struct pkt_spec s = {.af = AF_INET,
			     .saddr = src,
			     .daddr = dst,
			     .proto = IPPROTO_TCP,
			     .sport = sport,
			     .dport = dport,
			     .tcp_flags = flags,
			     .seq = seq,
			     .ack = ack,
			     .win = 65535,
			     .wscale = -1};
	return s;
}

#define A4  "10.1.0.2"
#define B4  "192.0.2.10"
#define A6  "2001:db8::2"
#define B6  "2001:db8:1::10"
#define SYN PFSYNC_TH_SYN
#define ACK PFSYNC_TH_ACK
#define FIN PFSYNC_TH_FIN
#define RST PFSYNC_TH_RST

/* ---- TCP ---------------------------------------------------------------- */
static void check_tcp_handshake(struct fixture *f, struct pkt_spec syn)
{
	struct pfsync_state_value v;
	struct pkt_spec synack = pkt_reverse(&syn), ack = syn;
	int src_side;
	struct pfsync_key k = key_of(&syn, &src_side);

	syn.mss = 1460;
	syn.wscale = 7;
	assert_int_equal(xdp_spec(f, &syn), XDP_PASS);
	assert_int_equal(state_get(f, &syn, &v), 0);
	assert_int_equal(v.init_side, src_side);
	assert_int_equal(v.direction, PF_IN);
	assert_int_equal(v.ifindex, LO_IFINDEX);
	assert_int_equal(v.peer[0].state, TCPS_SYN_SENT);
	assert_int_equal(v.peer[1].state, TCPS_CLOSED);
	assert_int_equal(v.peer[0].seqlo, syn.seq);
	assert_int_equal(v.peer[0].mss, 1460);
	assert_int_equal(v.peer[0].wscale, PF_WSCALE_FLAG | 7);
	assert_int_equal(v.timeout, PFTM_TCP_FIRST_PACKET);
	assert_int_equal(v.rule, 0xffffffffU);
	assert_true(v.id != 0);
	assert_true(v.creatorid != 0);
	assert_int_equal(v.creatorid, globals_read(f).hostid);
	events_read(f);
	assert_int_equal(f->log.n, 1);
	assert_int_equal(f->log.ev[0].type, PFSYNC_EV_INSERT);
	assert_int_equal(f->log.ev[0].id, v.id);
	assert_memory_equal(&f->log.ev[0].key, &k, sizeof(k));

	/* the reply leaves through tc egress and finds the same state */
	synack.tcp_flags = SYN | ACK;
	synack.seq = 5000;
	synack.ack = syn.seq + 1;
	synack.mss = 1400;
	synack.wscale = 6;
	assert_int_equal(tc_spec(f, &synack), TC_ACT_OK);
	assert_int_equal(state_get(f, &syn, &v), 0);
	assert_int_equal(v.peer[1].state, TCPS_SYN_SENT);
	assert_int_equal(v.peer[0].state, TCPS_ESTABLISHED);
	assert_int_equal(v.peer[1].seqlo, 5001); /* pf: seq + SYN */
	assert_int_equal(v.packets[0], 1);
	assert_int_equal(v.packets[1], 1);
	assert_true(v.flags & PFSYNC_SF_QUEUED);
	events_read(f);
	assert_int_equal(f->log.n, 1);
	assert_int_equal(f->log.ev[0].type, PFSYNC_EV_UPDATE);

	ack.tcp_flags = ACK;
	ack.seq = syn.seq + 1;
	ack.ack = 5001;
	assert_int_equal(xdp_spec(f, &ack), XDP_PASS);
	assert_int_equal(state_get(f, &syn, &v), 0);
	assert_int_equal(v.peer[0].state, TCPS_ESTABLISHED);
	assert_int_equal(v.peer[1].state, TCPS_ESTABLISHED);
	assert_int_equal(v.timeout, PFTM_TCP_ESTABLISHED);
	assert_int_equal(v.updates, 1);
	events_read(f);
	assert_int_equal(f->log.n, 0); /* already queued: no record */
	assert_int_equal(states_count(f), 1);
	assert_int_equal(counters_sum(f).states_inserted, 1);
	assert_int_equal(counters_sum(f).packets_passed, 3);
}

static void test_tcp4_handshake(void **state)
{
	check_tcp_handshake(*state, tcp4(A4, B4, 40000, 80, SYN, 1000, 0));
}

static void test_tcp6_handshake(void **state)
{
	struct pkt_spec syn = tcp4(A6, B6, 40001, 443, SYN, 7000, 0);

	syn.af = AF_INET6;
	check_tcp_handshake(*state, syn);
}

/* The SYN|ACK (seq 5000, at tc egress) and the ACK that answer syn. */
static void complete_handshake(struct fixture *f, const struct pkt_spec *syn)
{
	struct pkt_spec synack = pkt_reverse(syn), ack = *syn;

	synack.tcp_flags = SYN | ACK;
	synack.seq = 5000;
	synack.ack = syn->seq + 1;
	assert_int_equal(tc_spec(f, &synack), TC_ACT_OK);
	ack.tcp_flags = ACK;
	ack.seq = syn->seq + 1;
	ack.ack = 5001;
	ack.mss = 0;
	ack.wscale = -1;
	assert_int_equal(xdp_spec(f, &ack), XDP_PASS);
}

static void establish(struct fixture *f, struct pkt_spec *syn)
{
	assert_int_equal(xdp_spec(f, syn), XDP_PASS);
	complete_handshake(f, syn);
}

static void test_tcp_data_fin(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec syn = tcp4(A4, B4, 40002, 80, SYN, 1000, 0), data, fin;
	__u8 payload[100] = {0};
	struct pfsync_state_value v;

	establish(f, &syn);
	data = syn;
	data.tcp_flags = ACK | PFSYNC_TH_PSH;
	data.seq = 1001;
	data.ack = 5001;
	data.payload = payload;
	data.payload_len = sizeof(payload);
	assert_int_equal(xdp_spec(f, &data), XDP_PASS);
	assert_int_equal(state_get(f, &syn, &v), 0);
	assert_int_equal(v.peer[0].seqlo, 1101);
	assert_int_equal(v.packets[0], 3);
	assert_int_equal(v.bytes[0], 40 + 40 + 140); /* SYN, ACK, data: IP lengths */
	fin = data;
	fin.tcp_flags = FIN | ACK;
	fin.seq = 1101;
	fin.payload_len = 0;
	assert_int_equal(xdp_spec(f, &fin), XDP_PASS);
	assert_int_equal(state_get(f, &syn, &v), 0);
	assert_int_equal(v.peer[0].state, TCPS_CLOSING);
	assert_int_equal(v.peer[1].state, TCPS_ESTABLISHED);
	assert_int_equal(v.timeout, PFTM_TCP_CLOSING);
}

static void test_tcp_rst(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec syn = tcp4(A4, B4, 40003, 80, SYN, 1000, 0), rst;
	struct pfsync_state_value v;

	establish(f, &syn);
	rst = pkt_reverse(&syn);
	rst.tcp_flags = RST | ACK;
	rst.seq = 5001;
	rst.ack = 1001;
	assert_int_equal(tc_spec(f, &rst), TC_ACT_OK);
	assert_int_equal(state_get(f, &syn, &v), 0);
	assert_int_equal(v.peer[0].state, TCPS_TIME_WAIT);
	assert_int_equal(v.peer[1].state, TCPS_TIME_WAIT);
	assert_int_equal(v.timeout, PFTM_TCP_CLOSED);
}

static void test_tcp_out_of_window(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec syn = tcp4(A4, B4, 40004, 80, SYN, 1000, 0), bad;
	struct pfsync_state_value before, after;
	__u8 junk[10] = {0};

	establish(f, &syn);
	assert_int_equal(state_get(f, &syn, &before), 0);
	/* data far ahead (pf lets empty ACKs through whatever their seq) */
	bad = syn;
	bad.tcp_flags = ACK;
	bad.seq = 1000 + 0x40000000;
	bad.ack = 5001;
	bad.payload = junk;
	bad.payload_len = sizeof(junk);
	assert_int_equal(xdp_spec(f, &bad), XDP_DROP);
	assert_int_equal(counters_sum(f).out_of_window, 1);
	assert_int_equal(state_get(f, &syn, &after), 0);
	assert_int_equal(after.packets[0], before.packets[0]);
	assert_int_equal(after.peer[0].seqlo, before.peer[0].seqlo);
}

/*
 * A transfer whose receiver let its window shrink, then reopened it, as a
 * loaded machine's sink does: the packets of a test_fastpath control
 * transfer that stalled (every segment after the reopening dropped out of
 * window), in their order. Both sides scale by 2^10, the receiver's windows
 * are 57, 50, 45, 45, 45 (x1024) while the sender fills each to its edge,
 * then 135 at the last edge. In order, one at a time, the state follows
 * every edge.
 */
static void test_tcp_window_reopened(void **state)
{
	static const struct {
		__u32 ack, win; /* the receiver's ACKs, relative to the sender's ISN */
	} acks[] = {{7241, 57}, {14481, 50}, {43441, 45}, {89521, 45}, {135601, 45}, {181681, 135}};
	static __u8 payload[1448];
	struct fixture *f = *state;
	struct pkt_spec syn = tcp4(A4, B4, 40010, 80, SYN, 1000, 0), synack, data, ack;
	struct pfsync_state_value v;
	__u32 sent = 1, edge = 1 + (64u << 10); /* the SYN|ACK's 65160, in units of 2^10 */
	size_t i;

	syn.win = 64240;
	syn.mss = 1460;
	syn.wscale = 10;
	assert_int_equal(xdp_spec(f, &syn), XDP_PASS);
	synack = pkt_reverse(&syn);
	synack.tcp_flags = SYN | ACK;
	synack.seq = 5000;
	synack.ack = 1001;
	synack.win = 65160;
	synack.mss = 1460;
	synack.wscale = 10;
	assert_int_equal(xdp_spec(f, &synack), XDP_PASS);
	data = syn;
	data.tcp_flags = ACK;
	data.seq = 1001;
	data.ack = 5001;
	data.win = 63;
	data.mss = 0;
	data.wscale = -1;
	assert_int_equal(xdp_spec(f, &data), XDP_PASS);
	data.payload = payload;
	ack = synack;
	ack.tcp_flags = ACK;
	ack.seq = 5001;
	ack.mss = 0;
	ack.wscale = -1;
	for (i = 0; i <= sizeof(acks) / sizeof(acks[0]); i++) {
		/* the sender fills the window up to its edge */
		while (sent < edge) {
			__u32 len = edge - sent < sizeof(payload) ? edge - sent : sizeof(payload);

			data.seq = 1000 + sent;
			data.payload_len = len;
			assert_int_equal(xdp_spec(f, &data), XDP_PASS);
			sent += len;
		}
		if (i == sizeof(acks) / sizeof(acks[0]))
			break;
		ack.ack = 1000 + acks[i].ack;
		ack.win = (__u16)acks[i].win;
		assert_int_equal(xdp_spec(f, &ack), XDP_PASS);
		edge = acks[i].ack + (acks[i].win << 10);
		assert_int_equal(state_get(f, &syn, &v), 0);
		assert_int_equal(v.peer[0].seqhi, 1000 + edge);
	}
	assert_int_equal(state_get(f, &syn, &v), 0);
	assert_int_equal(v.peer[1].max_win, 135);
	assert_int_equal(counters_sum(f).out_of_window, 0);
}

/*
 * Issue 12: a client reusing a closed connection's tuple (10.77.1.2:40404 to
 * 10.77.2.2:8080 in the report) lost its first SYN, so every such connect
 * waited for a retransmission. As in pf_test, the SYN purges the old state
 * and creates the new one at once.
 */
static void test_tcp_port_reuse(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec syn = tcp4("10.77.1.2", "10.77.2.2", 40404, 8080, SYN, 1000, 0), fin,
			fin_back, last;
	struct pfsync_state_value old, fresh;

	establish(f, &syn);
	fin = syn;
	fin.tcp_flags = FIN | ACK;
	fin.seq = 1001;
	fin.ack = 5001;
	assert_int_equal(xdp_spec(f, &fin), XDP_PASS);
	fin_back = pkt_reverse(&syn);
	fin_back.tcp_flags = FIN | ACK;
	fin_back.seq = 5001;
	fin_back.ack = 1002;
	assert_int_equal(tc_spec(f, &fin_back), TC_ACT_OK);
	last = syn;
	last.tcp_flags = ACK;
	last.seq = 1002;
	last.ack = 5002;
	assert_int_equal(xdp_spec(f, &last), XDP_PASS);
	assert_int_equal(state_get(f, &syn, &old), 0);
	assert_true(old.peer[0].state >= TCPS_FIN_WAIT_2);
	assert_true(old.peer[1].state >= TCPS_FIN_WAIT_2);
	events_drain(f);
	/* a new SYN (as Linux sends it) on the closed tuple replaces the state */
	syn.seq = 900000;
	syn.mss = 1460;
	syn.wscale = 10;
	assert_int_equal(xdp_spec(f, &syn), XDP_PASS);
	assert_int_equal(counters_sum(f).no_state, 0);
	assert_int_equal(counters_sum(f).states_removed, 1);
	assert_int_equal(state_get(f, &syn, &fresh), 0);
	assert_true(fresh.id != old.id);
	assert_int_equal(fresh.peer[0].state, TCPS_SYN_SENT);
	assert_int_equal(fresh.peer[0].seqlo, 900000);
	events_read(f);
	assert_int_equal(f->log.n, 2);
	assert_int_equal(f->log.ev[0].type, PFSYNC_EV_DELETE);
	assert_int_equal(f->log.ev[0].id, old.id);
	assert_int_equal(f->log.ev[1].type, PFSYNC_EV_INSERT);
	assert_int_equal(states_count(f), 1);
	/* and the new connection completes on that first SYN */
	complete_handshake(f, &syn);
	assert_int_equal(state_get(f, &syn, &fresh), 0);
	assert_int_equal(fresh.peer[0].state, TCPS_ESTABLISHED);
	assert_int_equal(fresh.peer[1].state, TCPS_ESTABLISHED);
}

/*
 * A SYN carrying the given TCP option bytes (a multiple of 4, at most 40):
 * built with them as payload, then the data offset is raised over them.
 */
static int xdp_syn_opts(struct fixture *f, struct pkt_spec syn, const __u8 *opts, size_t len)
{
	__u8 buf[PKT_MAX];
	size_t n;

	syn.payload = opts;
	syn.payload_len = len;
	n = pkt_build(&syn, buf, sizeof(buf));
	assert_true(n > 0);
	buf[pkt_l4_off(&syn) + 12] = (__u8)(((20 + len) / 4) << 4);
	return run_xdp(f, buf, n);
}

/* MSS and window scale as pf keeps them, from option lists seen in the wild
 * and from broken ones (the walk stops where pf's does). */
static void test_tcp_syn_options(void **state)
{
	static const struct {
		__u8 opts[20];
		__u8 len;
		__u16 mss;
		__u8 wscale;
	} cases[] = {
	    /* Linux: MSS, SACK permitted, timestamps, NOP, WS */
	    {{2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7},
	     20,
	     1460,
	     PF_WSCALE_FLAG | 7},
	    /* Windows: MSS, NOP, WS, NOP, NOP, SACK permitted */
	    {{2, 4, 5, 0x78, 1, 3, 3, 8, 1, 1, 4, 2}, 12, 1400, PF_WSCALE_FLAG | 8},
	    /* end of option list before the WS */
	    {{2, 4, 5, 0xb4, 0, 3, 3, 7}, 8, 1460, 0},
	    /* an option length below 2 ends the walk */
	    {{2, 4, 5, 0xb4, 8, 1, 3, 7}, 8, 1460, 0},
	    /* WS first, then an option running past the end; shift capped at 14 */
	    {{1, 1, 3, 3, 15, 2, 40, 0}, 8, 0, PF_WSCALE_FLAG | 14},
	    /* MSS with a wrong length is not an MSS */
	    {{2, 5, 5, 0xb4, 0, 1, 3, 3, 7, 0, 0, 0}, 12, 0, PF_WSCALE_FLAG | 7},
	};
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pkt_spec syn = tcp4(A4, B4, (__u16)(41000 + i), 80, SYN, 1000, 0);
		struct pfsync_state_value v;

		assert_int_equal(xdp_syn_opts(f, syn, cases[i].opts, cases[i].len), XDP_PASS);
		assert_int_equal(state_get(f, &syn, &v), 0);
		assert_int_equal(v.peer[0].mss, cases[i].mss);
		assert_int_equal(v.peer[0].wscale, cases[i].wscale);
		assert_int_equal(v.peer[0].seqhi, 1000 + 1 + 1); /* no payload: options only */
	}
}

/* State ids come from per-CPU blocks of pfsync_globals.next_id: unique, and
 * none beyond what was reserved there. */
static void test_state_ids_unique(void **state)
{
	enum { N = 150 }; /* more than two blocks */
	struct fixture *f = *state;
	__u64 ids[N];
	struct pfsync_globals g;
	int i, j;

	for (i = 0; i < N; i++) {
		struct pkt_spec s = pkt_udp(AF_INET, A4, B4, (__u16)(20000 + i), 53);
		struct pfsync_state_value v;

		assert_int_equal(xdp_spec(f, &s), XDP_PASS);
		assert_int_equal(state_get(f, &s, &v), 0);
		ids[i] = v.id;
	}
	g = globals_read(f);
	for (i = 0; i < N; i++) {
		assert_true(ids[i] >> 32 != 0); /* seeded from the clock */
		assert_true(ids[i] < g.next_id);
		for (j = 0; j < i; j++)
			assert_true(ids[i] != ids[j]);
	}
	assert_int_equal(counters_sum(f).states_inserted, N);
}

/* ---- UDP / ICMP / other ------------------------------------------------- */
static void test_udp(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec out = pkt_udp(AF_INET, A4, B4, 5353, 53), back = pkt_reverse(&out);
	struct pfsync_state_value v;

	assert_int_equal(xdp_spec(f, &out), XDP_PASS);
	assert_int_equal(state_get(f, &out, &v), 0);
	assert_int_equal(v.peer[0].state, PFUDPS_SINGLE);
	assert_int_equal(v.peer[1].state, PFUDPS_NO_TRAFFIC);
	assert_int_equal(v.timeout, PFTM_UDP_FIRST_PACKET);
	assert_int_equal(xdp_spec(f, &back), XDP_PASS);
	assert_int_equal(xdp_spec(f, &out), XDP_PASS);
	assert_int_equal(state_get(f, &out, &v), 0);
	assert_int_equal(v.peer[0].state, PFUDPS_MULTIPLE);
	assert_int_equal(v.peer[1].state, PFUDPS_MULTIPLE);
	assert_int_equal(v.timeout, PFTM_UDP_MULTIPLE);
	assert_int_equal(v.packets[0], 2);
	assert_int_equal(v.packets[1], 1);
	assert_int_equal(v.bytes[1], 28);
	assert_int_equal(states_count(f), 1);
}

/*
 * pf counts a packet once per state: a forwarded packet, tracked and
 * counted at XDP ingress, is left alone by tc egress. Packets sent by the
 * host itself, or that came in where XDP did not run, count at egress.
 */
static void test_forwarded_counted_once(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec syn = tcp4(A4, B4, 40009, 80, SYN, 1000, 0), synack = pkt_reverse(&syn),
			ack;
	struct pkt_spec dgram = pkt_udp(AF_INET, A4, B4, 5454, 53);
	struct pfsync_state_value v;

	synack.tcp_flags = SYN | ACK;
	synack.seq = 5000;
	synack.ack = 1001;
	ack = syn;
	ack.tcp_flags = ACK;
	ack.seq = 1001;
	ack.ack = 5001;
	forward_spec(f, &syn);
	forward_spec(f, &synack);
	forward_spec(f, &ack);
	assert_int_equal(state_get(f, &syn, &v), 0);
	assert_int_equal(v.peer[0].state, TCPS_ESTABLISHED);
	assert_int_equal(v.peer[1].state, TCPS_ESTABLISHED);
	assert_int_equal(v.packets[0], 2);
	assert_int_equal(v.packets[1], 1);
	assert_int_equal(v.bytes[0], 80);
	assert_int_equal(v.bytes[1], 40);

	forward_spec(f, &dgram);
	assert_int_equal(state_get(f, &dgram, &v), 0);
	assert_int_equal(v.packets[0], 1);
	assert_int_equal(v.bytes[0], 28);
	/* sent by the host: counted at egress */
	assert_int_equal(tc_spec_from(f, &dgram, 0), TC_ACT_OK);
	assert_int_equal(state_get(f, &dgram, &v), 0);
	assert_int_equal(v.packets[0], 2);
	/* came in on an interface without our XDP program: counted at egress */
	assert_int_equal(tc_spec_from(f, &dgram, 77), TC_ACT_OK);
	assert_int_equal(state_get(f, &dgram, &v), 0);
	assert_int_equal(v.packets[0], 3);
	assert_int_equal(v.bytes[0], 3 * 28);
}

static void check_echo(struct fixture *f, int af, const char *a, const char *b, __u8 proto,
		       __u8 req, __u8 reply)
{
	struct pkt_spec ping = {.af = af,
				.saddr = a,
				.daddr = b,
				.proto = proto,
				.icmp_type = req,
				.icmp_id = 0x4242,
				.wscale = -1};
	struct pkt_spec pong = ping;
	struct pfsync_state_value v;
	struct pfsync_key k = key_of(&ping, NULL);

	pong.saddr = b;
	pong.daddr = a;
	pong.icmp_type = reply;
	assert_int_equal(xdp_spec(f, &ping), XDP_PASS);
	assert_int_equal(state_get(f, &ping, &v), 0);
	assert_int_equal(v.timeout, PFTM_ICMP_FIRST_PACKET);
	/* pf's echo key: the id in the initiator's slot, the type in the other */
	assert_true((k.port[0] == htons(0x4242) && k.port[1] == htons(req)) ||
		    (k.port[1] == htons(0x4242) && k.port[0] == htons(req)));
	assert_int_equal(tc_spec(f, &pong), TC_ACT_OK);
	assert_int_equal(state_get(f, &ping, &v), 0);
	assert_int_equal(v.packets[1], 1);
	assert_int_equal(v.timeout, PFTM_ICMP_ERROR_REPLY);
	assert_int_equal(states_count(f), 1);
}

static void test_icmp_echo(void **state)
{
	check_echo(*state, AF_INET, A4, B4, IPPROTO_ICMP, 8, 0);
}

static void test_icmp6_echo(void **state)
{
	check_echo(*state, AF_INET6, A6, B6, IPPROTO_ICMPV6, 128, 129);
}

static void test_other_proto(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec gre = {.af = AF_INET, .saddr = A4, .daddr = B4, .proto = 47, .wscale = -1};
	struct pfsync_state_value v;

	assert_int_equal(xdp_spec(f, &gre), XDP_PASS);
	assert_int_equal(state_get(f, &gre, &v), 0);
	assert_int_equal(v.timeout, PFTM_OTHER_FIRST_PACKET);
}

static void test_pfsync_carp_stateless(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec sync = {
	    .af = AF_INET, .saddr = A4, .daddr = "224.0.0.240", .proto = 240, .wscale = -1};
	struct pkt_spec carp = sync;

	carp.proto = 112;
	carp.daddr = "224.0.0.18";
	assert_int_equal(xdp_spec(f, &sync), XDP_PASS);
	assert_int_equal(tc_spec(f, &carp), TC_ACT_OK);
	assert_int_equal(states_count(f), 0);
	assert_int_equal(counters_sum(f).packets_passed, 2);
}

static void test_arp_passes_uncounted(void **state)
{
	struct fixture *f = *state;
	__u8 arp[42] = {0};
	struct pfsync_counters c;

	arp[12] = 0x08;
	arp[13] = 0x06;
	assert_int_equal(run_xdp(f, arp, sizeof(arp)), XDP_PASS);
	c = counters_sum(f);
	assert_int_equal(c.packets_seen, 1);
	assert_int_equal(c.packets_passed, 0);
	assert_int_equal(c.bad_packet, 0);
	assert_int_equal(c.prog[PFSYNC_PROG_XDP].outcome[PFSYNC_OUT_NOT_IP], 1);
	assert_int_equal(states_count(f), 0);
}

/* ---- encapsulation and headers ------------------------------------------ */
static void test_vlan(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec s = pkt_udp(AF_INET, A4, B4, 1111, 2222);
	struct pfsync_state_value v;

	s.vlan = 100;
	assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	assert_int_equal(state_get(f, &s, &v), 0);
	s.vlan = 0; /* the untagged reverse finds the same state */
	s = pkt_reverse(&s);
	assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	assert_int_equal(state_get(f, &s, &v), 0);
	assert_int_equal(v.packets[1], 1);
}

static void test_ipv4_options(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec s = tcp4(A4, B4, 40005, 22, SYN, 1, 0);
	struct pfsync_state_value v;

	s.ip_opt_len = 8;
	assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	assert_int_equal(state_get(f, &s, &v), 0);
	assert_int_equal(v.peer[0].seqlo, 1);
}

static void test_ipv6_ext_headers(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec s = pkt_udp(AF_INET6, A6, B6, 3000, 4000);
	struct pfsync_state_value v;

	s.n_ext = 3;
	s.ext[0] = 0;  /* hop-by-hop */
	s.ext[1] = 43; /* routing */
	s.ext[2] = 60; /* destination options */
	assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	assert_int_equal(state_get(f, &s, &v), 0);
	assert_int_equal(counters_sum(f).bad_packet, 0);
}

static void test_ipv6_ext_chain_too_long(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec s = pkt_udp(AF_INET6, A6, B6, 3000, 4001);
	int i;

	s.n_ext = 7;
	for (i = 0; i < 7; i++)
		s.ext[i] = 60;
	assert_int_equal(xdp_spec(f, &s), XDP_DROP);
	assert_int_equal(counters_sum(f).bad_packet, 1);
	assert_int_equal(states_count(f), 0);
}

static void test_fragments(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec first = pkt_udp(AF_INET, A4, B4, 7000, 53), later = first;
	struct pkt_spec later6 = pkt_udp(AF_INET6, A6, B6, 7000, 53);
	struct pfsync_state_value v;

	first.more_frags = 1;
	assert_int_equal(xdp_spec(f, &first), XDP_PASS);
	assert_int_equal(state_get(f, &first, &v), 0); /* first fragment has ports */
	later.frag_off = 185;
	later.no_l4 = 1;
	assert_int_equal(xdp_spec(f, &later), XDP_PASS);
	later6.n_ext = 1;
	later6.ext[0] = 44;
	later6.frag_off = 185;
	later6.no_l4 = 1;
	assert_int_equal(xdp_spec(f, &later6), XDP_PASS);
	assert_int_equal(counters_sum(f).fragments, 2);
	assert_int_equal(states_count(f), 1);
	assert_int_equal(state_get(f, &first, &v), 0);
	assert_int_equal(v.packets[0], 1); /* later fragments never touch the state */
}

static void test_fragments_rules(void **state)
{
	struct fixture *f = *state;
	struct pfsync_rule rules[2] = {};
	struct pkt_spec later = pkt_udp(AF_INET, A4, B4, 7001, 53);

	/* a port rule cannot match a later fragment: it falls to `block in` */
	rules[0].action = PFSYNC_RULE_BLOCK;
	rules[0].dir = PF_IN;
	rules[1].action = PFSYNC_RULE_PASS;
	rules[1].dir = PF_IN;
	rules[1].rflags = PFSYNC_RF_KEEP_STATE | PFSYNC_RF_PROTO | PFSYNC_RF_DST_PORT;
	rules[1].proto = IPPROTO_UDP;
	rules[1].dst_port = htons(53);
	rules_load(f, rules, 2, 0);
	later.frag_off = 100;
	later.no_l4 = 1;
	assert_int_equal(xdp_spec(f, &later), XDP_DROP);
	assert_int_equal(counters_sum(f).blocked_rule, 1);
	/* outbound there is no block rule: default pass, still no state */
	assert_int_equal(tc_spec(f, &later), TC_ACT_OK);
	assert_int_equal(counters_sum(f).fragments, 2);
	assert_int_equal(states_count(f), 0);
}

/* ---- malformed ---------------------------------------------------------- */
/* Runs a malformed frame through both programs; bad_packet grows by 2. */
static void expect_bad(struct fixture *f, const __u8 *frame, size_t len, __u64 *bad)
{
	assert_int_equal(run_xdp(f, frame, len), XDP_DROP);
	assert_int_equal(run_tc(f, frame, len), TC_ACT_SHOT);
	*bad += 2;
	assert_int_equal(counters_sum(f).bad_packet, *bad);
	assert_int_equal(states_count(f), 0);
}

/* tc's BPF_PROG_RUN refuses IP frames shorter than an IP header: XDP only. */
static void expect_bad_xdp(struct fixture *f, const __u8 *frame, size_t len, __u64 *bad)
{
	assert_int_equal(run_xdp(f, frame, len), XDP_DROP);
	*bad += 1;
	assert_int_equal(counters_sum(f).bad_packet, *bad);
	assert_int_equal(states_count(f), 0);
}

static void test_malformed(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec t = tcp4(A4, B4, 40006, 80, SYN, 1, 0);
	struct pkt_spec u6 = pkt_udp(AF_INET6, A6, B6, 1, 2);
	struct pkt_spec vl = pkt_udp(AF_INET, A4, B4, 1, 2);
	__u8 buf[PKT_MAX];
	size_t len, l3 = pkt_l3_off(&t), l4 = pkt_l4_off(&t);
	__u64 n = 0;

	/* truncated VLAN tag (frames under 14 bytes cannot be test-run) */
	vl.vlan = 5;
	pkt_build(&vl, buf, sizeof(buf));
	expect_bad(f, buf, PKT_ETH_LEN + 2, &n);
	/* truncated IPv4 header */
	len = pkt_build(&t, buf, sizeof(buf));
	expect_bad_xdp(f, buf, l3 + 10, &n);
	/* bad IHL (< 5) */
	pkt_build(&t, buf, sizeof(buf));
	buf[l3] = 0x44;
	expect_bad(f, buf, len, &n);
	/* IHL beyond the total length */
	pkt_build(&t, buf, sizeof(buf));
	buf[l3] = 0x4f;
	buf[l3 + 2] = 0;
	buf[l3 + 3] = 40;
	expect_bad(f, buf, len, &n);
	/* total length larger than the frame */
	pkt_build(&t, buf, sizeof(buf));
	buf[l3 + 2] = 0x05;
	expect_bad(f, buf, len, &n);
	/* total length smaller than the header */
	pkt_build(&t, buf, sizeof(buf));
	buf[l3 + 2] = 0;
	buf[l3 + 3] = 12;
	expect_bad(f, buf, len, &n);
	/* truncated TCP: IP says 10 bytes of TCP */
	pkt_build(&t, buf, sizeof(buf));
	buf[l3 + 2] = 0;
	buf[l3 + 3] = 30;
	expect_bad(f, buf, l4 + 10, &n);
	/* TCP data offset below 5 */
	pkt_build(&t, buf, sizeof(buf));
	buf[l4 + 12] = 0x40;
	expect_bad(f, buf, len, &n);
	/* TCP data offset beyond the segment */
	pkt_build(&t, buf, sizeof(buf));
	buf[l4 + 12] = 0xf0;
	expect_bad(f, buf, len, &n);
	/* truncated UDP */
	len = pkt_build(&vl, buf, sizeof(buf));
	l3 = pkt_l3_off(&vl);
	buf[l3 + 3] = 20 + 4;
	expect_bad(f, buf, l3 + 24, &n);
	/* truncated IPv6 header */
	len = pkt_build(&u6, buf, sizeof(buf));
	expect_bad_xdp(f, buf, PKT_ETH_LEN + 30, &n);
	/* IPv6 payload length beyond the frame */
	pkt_build(&u6, buf, sizeof(buf));
	buf[PKT_ETH_LEN + 4] = 0x10;
	expect_bad(f, buf, len, &n);
	/* truncated ICMP */
	{
		struct pkt_spec ic = {.af = AF_INET,
				      .saddr = A4,
				      .daddr = B4,
				      .proto = IPPROTO_ICMP,
				      .icmp_type = 8,
				      .wscale = -1};

		len = pkt_build(&ic, buf, sizeof(buf));
		buf[PKT_ETH_LEN + 3] = 20 + 4;
		expect_bad(f, buf, len - 4, &n);
	}
}

/* ---- rules -------------------------------------------------------------- */
static void test_rule_block_in(void **state)
{
	struct fixture *f = *state;
	struct pfsync_rule r = {.action = PFSYNC_RULE_BLOCK, .dir = PF_IN};
	struct pkt_spec syn = tcp4(B4, A4, 50000, 22, SYN, 1, 0);

	rules_load(f, &r, 1, 0);
	assert_int_equal(xdp_spec(f, &syn), XDP_DROP);
	assert_int_equal(counters_sum(f).blocked_rule, 1);
	assert_int_equal(states_count(f), 0);
	/* outbound: no rule matches, pf's default pass without state */
	assert_int_equal(tc_spec(f, &syn), TC_ACT_OK);
	assert_int_equal(states_count(f), 0);
	events_read(f);
	assert_int_equal(f->log.n, 0);
}

static void test_rule_last_match(void **state)
{
	struct fixture *f = *state;
	struct pfsync_rule rules[2] = {};
	struct pkt_spec p80 = tcp4(B4, A4, 50001, 80, SYN, 1, 0);
	struct pkt_spec p81 = tcp4(B4, A4, 50001, 81, SYN, 1, 0);
	struct pfsync_state_value v;

	rules[0].action = PFSYNC_RULE_BLOCK;
	rules[1].action = PFSYNC_RULE_PASS;
	rules[1].dir = PF_IN;
	rules[1].rflags = PFSYNC_RF_KEEP_STATE | PFSYNC_RF_PROTO | PFSYNC_RF_DST_PORT;
	rules[1].proto = IPPROTO_TCP;
	rules[1].dst_port = htons(80);
	rules_load(f, rules, 2, 1); /* the second bank */
	assert_int_equal(xdp_spec(f, &p80), XDP_PASS);
	assert_int_equal(state_get(f, &p80, &v), 0);
	assert_int_equal(v.rule, 1);
	assert_int_equal(xdp_spec(f, &p81), XDP_DROP);
	assert_int_equal(states_count(f), 1);
	assert_int_equal(counters_sum(f).blocked_rule, 1);
}

static void test_rule_quick(void **state)
{
	struct fixture *f = *state;
	struct pfsync_rule rules[2] = {};
	struct pkt_spec s = pkt_udp(AF_INET, B4, A4, 999, 53);
	struct pfsync_state_value v;

	rules[0].action = PFSYNC_RULE_PASS;
	rules[0].rflags = PFSYNC_RF_QUICK | PFSYNC_RF_KEEP_STATE | PFSYNC_RF_PROTO;
	rules[0].proto = IPPROTO_UDP;
	rules[1].action = PFSYNC_RULE_BLOCK;
	rules_load(f, rules, 2, 0);
	assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	assert_int_equal(state_get(f, &s, &v), 0);
	assert_int_equal(v.rule, 0);
	s.proto = 47; /* not UDP: quick rule does not match, block wins */
	assert_int_equal(xdp_spec(f, &s), XDP_DROP);
}

static void test_rule_addr(void **state)
{
	struct fixture *f = *state;
	struct pfsync_rule rules[2] = {};
	struct pkt_spec in_net = pkt_udp(AF_INET, "10.9.8.7", A4, 1000, 2000);
	struct pkt_spec outside = pkt_udp(AF_INET, "192.168.1.1", A4, 1000, 2000);
	struct pkt_spec v6 = pkt_udp(AF_INET6, A6, B6, 1000, 2000);

	rules[0].action = PFSYNC_RULE_BLOCK;
	rules[0].dir = PF_IN;
	rules[1].action = PFSYNC_RULE_PASS;
	rules[1].dir = PF_IN;
	rules[1].rflags = PFSYNC_RF_KEEP_STATE;
	rule_net(&rules[1], 0, AF_INET, "10.0.0.0", 8);
	rules_load(f, rules, 2, 0);
	assert_int_equal(xdp_spec(f, &in_net), XDP_PASS);
	assert_int_equal(xdp_spec(f, &outside), XDP_DROP);
	assert_int_equal(xdp_spec(f, &v6), XDP_DROP); /* inet rule, inet6 packet */
	assert_int_equal(states_count(f), 1);
}

static void test_rule_tcp_needs_syn(void **state)
{
	struct fixture *f = *state;
	struct pfsync_rule r = {.action = PFSYNC_RULE_PASS, .rflags = PFSYNC_RF_KEEP_STATE};
	struct pkt_spec ack = tcp4(B4, A4, 50002, 80, ACK, 1, 1);

	rules_load(f, &r, 1, 0);
	assert_int_equal(xdp_spec(f, &ack), XDP_DROP);
	assert_int_equal(counters_sum(f).no_state, 1);
	assert_int_equal(states_count(f), 0);
}

static void test_no_ruleset_tcp_midstream(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec ack = tcp4(B4, A4, 50003, 80, ACK, 1, 1);
	struct pfsync_state_value v;

	/* no ruleset: everything passes and gets a state (issue 2) */
	assert_int_equal(xdp_spec(f, &ack), XDP_PASS);
	assert_int_equal(state_get(f, &ack, &v), 0);
}

static void test_icmp_error_related(void **state)
{
	struct fixture *f = *state;
	struct pfsync_rule rules[2] = {};
	struct pkt_spec out = pkt_udp(AF_INET, A4, B4, 6000, 7000), quoted = out, unrelated;
	struct pkt_spec err = {.af = AF_INET,
			       .saddr = B4,
			       .daddr = A4,
			       .proto = IPPROTO_ICMP,
			       .icmp_type = 3,
			       .wscale = -1};
	__u8 inner[PKT_MAX];
	size_t inner_len;

	rules[0].action = PFSYNC_RULE_BLOCK;
	rules[0].dir = PF_IN;
	rules[1].action = PFSYNC_RULE_PASS;
	rules[1].dir = PF_OUT;
	rules[1].rflags = PFSYNC_RF_KEEP_STATE;
	rules_load(f, rules, 2, 0);
	assert_int_equal(tc_spec(f, &out), TC_ACT_OK);
	assert_int_equal(states_count(f), 1);
	inner_len = pkt_build(&quoted, inner, sizeof(inner));
	err.payload = inner + PKT_ETH_LEN;
	err.payload_len = inner_len - PKT_ETH_LEN;
	assert_int_equal(xdp_spec(f, &err), XDP_PASS);
	unrelated = quoted;
	unrelated.sport = 6001;
	inner_len = pkt_build(&unrelated, inner, sizeof(inner));
	assert_int_equal(xdp_spec(f, &err), XDP_DROP);
	assert_int_equal(states_count(f), 1);
	assert_int_equal(counters_sum(f).blocked_rule, 1);
}

/* ---- sync flags --------------------------------------------------------- */
static void test_nosync(void **state)
{
	struct fixture *f = *state;
	struct pfsync_rule r = {.action = PFSYNC_RULE_PASS,
				.rflags = PFSYNC_RF_KEEP_STATE | PFSYNC_RF_NOSYNC};
	struct pkt_spec s = pkt_udp(AF_INET, A4, B4, 1234, 4321), back = pkt_reverse(&s);
	struct pfsync_state_value v;

	rules_load(f, &r, 1, 0);
	assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	assert_int_equal(tc_spec(f, &back), TC_ACT_OK);
	assert_int_equal(state_get(f, &s, &v), 0);
	assert_true(v.flags & PFSYNC_SF_NOSYNC);
	assert_true(v.state_flags & PFSTATE_NOSYNC);
	assert_false(v.flags & PFSYNC_SF_QUEUED);
	events_read(f);
	assert_int_equal(f->log.n, 0);
	/* nor on deletion */
	{
		struct pfsync_sweep_args a = {.sweep_flags = PFSYNC_SWEEP_FLUSH};

		assert_int_equal(pfsync_bpf_sweep(&f->o.b, &a), 0);
		assert_int_equal(a.deleted, 1);
		events_read(f);
		assert_int_equal(f->log.n, 0);
	}
}

static void test_sloppy(void **state)
{
	struct fixture *f = *state;
	struct pfsync_rule r = {.action = PFSYNC_RULE_PASS,
				.rflags = PFSYNC_RF_KEEP_STATE | PFSYNC_RF_SLOPPY};
	struct pkt_spec syn = tcp4(A4, B4, 40007, 80, SYN, 1000, 0), bad;
	struct pfsync_state_value v;
	__u8 junk[10] = {0};

	rules_load(f, &r, 1, 0);
	establish(f, &syn);
	assert_int_equal(state_get(f, &syn, &v), 0);
	assert_true(v.state_flags & PFSTATE_SLOPPY);
	bad = syn;
	bad.tcp_flags = ACK;
	bad.seq = 1000 + 0x40000000;
	bad.ack = 5001;
	bad.payload = junk;
	bad.payload_len = sizeof(junk);
	assert_int_equal(xdp_spec(f, &bad), XDP_PASS);
	assert_int_equal(counters_sum(f).out_of_window, 0);
}

static void test_unqueue_and_maxupd(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec syn = tcp4(A4, B4, 40008, 80, SYN, 1000, 0), ack;
	struct pfsync_unqueue_args *ua = calloc(1, sizeof(*ua));
	struct pfsync_config cfg = {.maxupd = 3};
	struct pfsync_state_value v;
	int i;

	assert_non_null(ua);
	config_write(f, &cfg);
	establish(f, &syn); /* INSERT, UPDATE (queued), then one update */
	events_read(f);
	assert_int_equal(f->log.n, 2);
	ua->count = 2;
	ua->keys[0] = key_of(&syn, NULL);
	ua->keys[1] = key_of(&syn, NULL);
	ua->keys[1].port[0] ^= 1; /* absent: not counted */
	assert_int_equal(pfsync_bpf_unqueue(&f->o.b, ua), 0);
	assert_int_equal(ua->done, 1);
	assert_int_equal(state_get(f, &syn, &v), 0);
	assert_false(v.flags & PFSYNC_SF_QUEUED);
	assert_int_equal(v.updates, 0);
	ack = syn;
	ack.tcp_flags = ACK;
	ack.seq = 1001;
	ack.ack = 5001;
	assert_int_equal(xdp_spec(f, &ack), XDP_PASS); /* not queued: UPDATE */
	events_read(f);
	assert_int_equal(f->log.n, 1);
	assert_int_equal(f->log.ev[0].type, PFSYNC_EV_UPDATE);
	assert_int_equal(f->log.ev[0].evflags, 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(xdp_spec(f, &ack), XDP_PASS);
	events_read(f);
	assert_int_equal(f->log.n, 1);
	assert_int_equal(f->log.ev[0].type, PFSYNC_EV_UPDATE);
	assert_int_equal(f->log.ev[0].evflags, PFSYNC_EVF_MAXUPD);
	assert_int_equal(state_get(f, &syn, &v), 0);
	assert_int_equal(v.updates, 0);
	free(ua);
}

/* ---- sweep -------------------------------------------------------------- */
static void test_sweep_expires(void **state)
{
	struct fixture *f = *state;
	struct pfsync_config cfg = {};
	struct pkt_spec short_lived = pkt_udp(AF_INET, A4, B4, 1, 2);
	struct pkt_spec long_lived = tcp4(A4, B4, 3, 4, SYN, 1, 0);
	struct pfsync_sweep_args a = {};
	struct pfsync_state_value v;
	struct pfsync_key k = key_of(&short_lived, NULL);

	cfg.timeouts[PFTM_UDP_FIRST_PACKET] = 1;
	config_write(f, &cfg);
	assert_int_equal(xdp_spec(f, &short_lived), XDP_PASS);
	assert_int_equal(xdp_spec(f, &long_lived), XDP_PASS);
	assert_int_equal(state_get(f, &short_lived, &v), 0);
	events_drain(f);
	/* now = last activity + 2 s: only the 1 s UDP state is due */
	a.now_ns = v.last_seen + 2 * PFSYNC_NSEC_PER_SEC;
	assert_int_equal(pfsync_bpf_sweep(&f->o.b, &a), 0);
	assert_int_equal(a.seen, 2);
	assert_int_equal(a.deleted, 1);
	assert_int_not_equal(state_get(f, &short_lived, &v), 0);
	assert_int_equal(state_get(f, &long_lived, &v), 0);
	events_read(f);
	assert_int_equal(f->log.n, 1);
	assert_int_equal(f->log.ev[0].type, PFSYNC_EV_DELETE);
	assert_memory_equal(&f->log.ev[0].key, &k, sizeof(k));
	assert_int_equal(counters_sum(f).states_removed, 1);
	assert_int_equal(globals_read(f).states_count, 2);
	assert_int_equal(globals_read(f).last_sweep_ns, a.now_ns);
}

static void test_flush(void **state)
{
	struct fixture *f = *state;
	struct pfsync_sweep_args a = {.sweep_flags = PFSYNC_SWEEP_FLUSH};
	struct pfsync_sweep_args quiet = {.sweep_flags = PFSYNC_SWEEP_FLUSH | PFSYNC_SWEEP_QUIET};
	struct pfsync_sweep_args creator = {
	    .sweep_flags = PFSYNC_SWEEP_FLUSH | PFSYNC_SWEEP_CREATOR, .creatorid = 0x1234};
	struct pkt_spec s = pkt_udp(AF_INET, A4, B4, 10, 20);
	struct pfsync_state_value v;
	struct pfsync_key k;
	int i;

	for (i = 0; i < 3; i++) {
		s.sport = (__u16)(10 + i);
		assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	}
	events_drain(f);
	assert_int_equal(pfsync_bpf_sweep(&f->o.b, &a), 0);
	assert_int_equal(a.deleted, 3);
	assert_int_equal(states_count(f), 0);
	events_read(f);
	assert_int_equal(f->log.n, 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(f->log.ev[i].type, PFSYNC_EV_DELETE);

	for (i = 0; i < 2; i++) {
		s.sport = (__u16)(10 + i);
		assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	}
	/* one state as if imported from peer 0x1234 */
	k = key_of(&s, NULL);
	assert_int_equal(bpf_map_lookup_elem(f->states, &k, &v), 0);
	v.creatorid = 0x1234;
	assert_int_equal(bpf_map_update_elem(f->states, &k, &v, BPF_EXIST), 0);
	events_drain(f);
	assert_int_equal(pfsync_bpf_sweep(&f->o.b, &creator), 0);
	assert_int_equal(creator.deleted, 1);
	assert_int_not_equal(bpf_map_lookup_elem(f->states, &k, &v), 0);
	assert_int_equal(pfsync_bpf_sweep(&f->o.b, &quiet), 0);
	assert_int_equal(quiet.deleted, 1);
	events_read(f);
	assert_int_equal(f->log.n, 1); /* only the creator flush spoke */
	assert_int_equal(states_count(f), 0);
}

/* ---- ringbuf loss ------------------------------------------------------- */
static __u64 boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

/*
 * n inserts and n deletes nobody reads overflow the ring (the ring holds
 * more records than the table has entries); the ring is drained after.
 * Returns the records lost, all of them still to be reported.
 */
static __u64 overflow_ring(struct fixture *f)
{
	struct pkt_spec s = pkt_udp(AF_INET, "10.200.0.0", B4, 0, 9);
	struct pfsync_sweep_args flush = {.sweep_flags = PFSYNC_SWEEP_FLUSH};
	__u32 rec = (__u32)(sizeof(struct pfsync_event) + 8), fill = PFSYNC_EVENTS_BYTES / rec;
	__u32 i, n = fill / 2 + 1000;
	char src[32];
	__u64 lost;

	for (i = 0; i < n; i++) {
		snprintf(src, sizeof(src), "10.200.%u.%u", (i >> 8) & 0xff, i & 0xff);
		s.saddr = src;
		s.sport = (__u16)(1000 + (i >> 16));
		assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	}
	assert_int_equal(counters_sum(f).ringbuf_lost, 0);
	assert_int_equal(pfsync_bpf_sweep(&f->o.b, &flush), 0);
	assert_int_equal(flush.deleted, n);
	lost = counters_sum(f).ringbuf_lost;
	assert_int_equal(lost, 2 * (__u64)n - fill);
	assert_int_equal(globals_read(f).lost_pending, lost);
	events_drain(f);
	return lost;
}

/* the report: its count, and when it was written (CLOCK_BOOTTIME), so that
 * the agent can tell it from later losses */
static void check_lost_report(struct fixture *f, __u64 lost, __u64 t_before)
{
	assert_int_equal(f->log.ev[0].type, PFSYNC_EV_LOST);
	assert_int_equal(f->log.ev[0].lost, lost);
	assert_true(f->log.ev[0].id > t_before && f->log.ev[0].id < boot_ns());
	assert_int_equal(globals_read(f).lost_pending, 0);
}

static void test_lost_records_reported(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec s = pkt_udp(AF_INET, "10.201.0.1", B4, 1000, 9);
	__u64 lost = overflow_ring(f), t_drained = boot_ns();

	/* space again: the next record is preceded by the loss report */
	assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	events_read(f);
	assert_int_equal(f->log.n, 2);
	check_lost_report(f, lost, t_drained);
	assert_int_equal(f->log.ev[1].type, PFSYNC_EV_INSERT);
}

/* no traffic after the burst: the agent's sweep call on no keys brings it */
static void test_lost_records_reported_by_sweep(void **state)
{
	struct fixture *f = *state;
	struct pfsync_sweep_args none = {.sweep_flags = PFSYNC_SWEEP_KEYS, .count = 0};
	__u64 lost = overflow_ring(f), t_drained = boot_ns();

	assert_int_equal(pfsync_bpf_sweep(&f->o.b, &none), 0);
	assert_int_equal(none.seen + none.deleted, 0);
	events_read(f);
	assert_int_equal(f->log.n, 1);
	check_lost_report(f, lost, t_drained);
}

/* ---- defer (issue 4) ----------------------------------------------------- */
static void check_defer(struct fixture *f, int egress)
{
	struct pfsync_config cfg = {.cfg_flags = PFSYNC_CFG_DEFER};
	struct pkt_spec s = pkt_udp(AF_INET, A4, B4, 4444, 5555);
	struct pfsync_key k = key_of(&s, NULL);
	struct pfsync_state_value v;
	struct pfsync_deferred d;
	__u8 frame[PKT_MAX];
	size_t len;

	config_write(f, &cfg);
	len = pkt_build(&s, frame, sizeof(frame));
	if (egress)
		assert_int_equal(run_tc(f, frame, len), TC_ACT_SHOT);
	else
		assert_int_equal(run_xdp(f, frame, len), XDP_DROP);
	assert_int_equal(state_get(f, &s, &v), 0);
	assert_true(v.flags & PFSYNC_SF_DEFERRED);
	assert_true(v.state_flags & PFSTATE_ACK);
	events_read(f);
	assert_int_equal(f->log.n, 1);
	assert_int_equal(f->log.ev[0].type, PFSYNC_EV_INSERT);
	assert_int_equal(f->log.ev[0].evflags, PFSYNC_EVF_ACK);
	assert_int_equal(defer_pop(f, &d), 0);
	assert_int_equal(d.len, len);
	assert_memory_equal(d.data, frame, len);
	assert_memory_equal(&d.key, &k, sizeof(k));
	assert_int_equal(d.at_egress, egress);
	assert_int_equal(d.ifindex, LO_IFINDEX);
	assert_int_not_equal(defer_pop(f, &d), 0); /* exactly one held */
	assert_int_equal(counters_sum(f).defer_held, 1);
	/* later packets of the state are not held */
	assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	assert_int_not_equal(defer_pop(f, &d), 0);
}

static void test_defer_xdp(void **state)
{
	check_defer(*state, 0);
}

static void test_defer_tc(void **state)
{
	check_defer(*state, 1);
}

static void test_defer_nosync_not_held(void **state)
{
	struct fixture *f = *state;
	struct pfsync_rule r = {.action = PFSYNC_RULE_PASS,
				.rflags = PFSYNC_RF_KEEP_STATE | PFSYNC_RF_NOSYNC};
	struct pfsync_config cfg = {.cfg_flags = PFSYNC_CFG_DEFER};
	struct pkt_spec s = pkt_udp(AF_INET, A4, B4, 4445, 5555);
	struct pfsync_deferred d;

	rules_load(f, &r, 1, 0);
	assert_int_equal(bpf_map_lookup_elem(f->config, &(__u32){0}, &cfg), 0);
	cfg.cfg_flags = PFSYNC_CFG_DEFER;
	config_write(f, &cfg);
	assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	assert_int_not_equal(defer_pop(f, &d), 0);
	assert_int_equal(counters_sum(f).defer_held, 0);
}

/* a first packet too big for the defer queue passes at once, counted, its state not deferred */
static void test_defer_too_big_passes(void **state)
{
	struct fixture *f = *state;
	struct pfsync_config cfg = {.cfg_flags = PFSYNC_CFG_DEFER};
	static const __u8 payload[PFSYNC_DEFER_PKT_MAX] = {0};
	struct pkt_spec s = pkt_udp(AF_INET, A4, B4, 4446, 5555);
	struct pfsync_state_value v;
	struct pfsync_deferred d;
	__u8 frame[PKT_MAX];
	size_t len;

	config_write(f, &cfg);
	s.payload = payload;
	s.payload_len = sizeof(payload); /* frame = headers + 1536 > PFSYNC_DEFER_PKT_MAX */
	len = pkt_build(&s, frame, sizeof(frame));
	assert_true(len > PFSYNC_DEFER_PKT_MAX);
	assert_int_equal(run_xdp(f, frame, len), XDP_PASS);
	assert_int_not_equal(defer_pop(f, &d), 0);
	assert_int_equal(counters_sum(f).defer_too_big, 1);
	assert_int_equal(counters_sum(f).defer_held, 0);
	assert_int_equal(state_get(f, &s, &v), 0);
	assert_false(v.flags & PFSYNC_SF_DEFERRED);
	/* a frame of exactly the limit is held as usual */
	s.payload_len -= len - PFSYNC_DEFER_PKT_MAX;
	s.sport = 4447;
	len = pkt_build(&s, frame, sizeof(frame));
	assert_int_equal(len, PFSYNC_DEFER_PKT_MAX);
	assert_int_equal(run_xdp(f, frame, len), XDP_DROP);
	assert_int_equal(defer_pop(f, &d), 0);
	assert_int_equal(counters_sum(f).defer_too_big, 1);
}

/* pf defers no multicast or broadcast packet: it passes, its insert asks no ack */
static void test_defer_group_not_held(void **state)
{
	struct fixture *f = *state;
	struct pfsync_config cfg = {.cfg_flags = PFSYNC_CFG_DEFER};
	struct pkt_spec s = pkt_udp(AF_INET, A4, "224.0.0.251", 5353, 5353);
	struct pkt_spec b = pkt_udp(AF_INET, A4, "10.1.0.255", 137, 137);
	struct pfsync_state_value v;
	struct pfsync_deferred d;
	__u8 frame[PKT_MAX];
	size_t len;

	config_write(f, &cfg);
	len = pkt_build(&s, frame, sizeof(frame));
	memcpy(frame, "\x01\x00\x5e\x00\x00\xfb", 6);
	assert_int_equal(run_xdp(f, frame, len), XDP_PASS);
	len = pkt_build(&b, frame, sizeof(frame));
	memcpy(frame, "\xff\xff\xff\xff\xff\xff", 6);
	assert_int_equal(run_tc(f, frame, len), TC_ACT_OK);
	assert_int_not_equal(defer_pop(f, &d), 0);
	assert_int_equal(counters_sum(f).defer_held, 0);
	assert_int_equal(state_get(f, &s, &v), 0);
	assert_false(v.flags & PFSYNC_SF_DEFERRED);
	assert_int_equal(state_get(f, &b, &v), 0);
	assert_false(v.state_flags & PFSTATE_ACK);
	events_read(f);
	assert_int_equal(f->log.n, 2);
	assert_int_equal(f->log.ev[0].evflags, 0);
	assert_int_equal(f->log.ev[1].evflags, 0);
}

/* XDP ingress of a held frame the agent releases (PFSYNC_DEFER_META in front) */
static int run_xdp_released(struct fixture *f, const void *frame, size_t len)
{
	__u8 buf[PFSYNC_DEFER_META_LEN + PKT_MAX];
	__u32 meta = PFSYNC_DEFER_META;
	struct xdp_md ctx = {.data = PFSYNC_DEFER_META_LEN,
			     .data_end = (__u32)(PFSYNC_DEFER_META_LEN + len),
			     .ingress_ifindex = LO_IFINDEX};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf,
		    .data_size_in = (__u32)(PFSYNC_DEFER_META_LEN + len), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1);

	memcpy(buf, &meta, sizeof(meta));
	memcpy(buf + PFSYNC_DEFER_META_LEN, frame, len);
	assert_int_equal(bpf_prog_test_run_opts(f->o.b.xdp_fd, &opts), 0);
	return (int)opts.retval;
}

/*
 * A held SYN, released, passes untracked: the state is as the SYN left it.
 * Tracked a second time, the SYN raised the client's max_win to its
 * unscaled window (64240); scaled by the client's wscale, that kept the
 * first SYN-ACK's seqhi from sliding, and a SYN-ACK whose sequence number
 * lies in the 64240 << 10 below 2^31 (1.5 % of them) was dropped as out of
 * window, each retransmission too: the connection never completed.
 */
static void test_defer_released_syn_untracked(void **state)
{
	struct fixture *f = *state;
	struct pfsync_config cfg = {.cfg_flags = PFSYNC_CFG_DEFER};
	struct pkt_spec syn = tcp4(A4, B4, 40000, 80, SYN, 4050864249u, 0);
	struct pkt_spec synack = tcp4(B4, A4, 80, 40000, SYN | ACK, 0x7f000000u, 4050864250u);
	struct pfsync_state_value held, released;
	struct pfsync_deferred d;
	__u8 frame[PKT_MAX];
	size_t len;

	syn.win = 64240;
	syn.mss = 1460;
	syn.wscale = 10;
	synack.win = 65160;
	synack.mss = 1460;
	synack.wscale = 7;
	config_write(f, &cfg);
	len = pkt_build(&syn, frame, sizeof(frame));
	assert_int_equal(run_xdp(f, frame, len), XDP_DROP);
	assert_int_equal(state_get(f, &syn, &held), 0);
	assert_int_equal(defer_pop(f, &d), 0);
	assert_int_equal(run_xdp_released(f, d.data, d.len), XDP_PASS);
	assert_int_equal(state_get(f, &syn, &released), 0);
	assert_memory_equal(released.peer, held.peer, sizeof(held.peer));
	assert_int_equal(released.packets[0], 1);
	assert_int_equal(counters_sum(f).defer_held, 1);
	/* the server's answer to it */
	assert_int_equal(xdp_spec(f, &synack), XDP_PASS);
	assert_int_equal(counters_sum(f).out_of_window, 0);
	assert_int_not_equal(defer_pop(f, &d), 0);
}

/* ---- table full (own group, tiny map) ----------------------------------- */
static void test_table_full(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec s = pkt_udp(AF_INET, A4, B4, 100, 200);
	struct pfsync_state_value v;
	int i;

	for (i = 0; i < SMALL_TABLE; i++) {
		s.sport = (__u16)(100 + i);
		assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	}
	s.sport = 999;
	assert_int_equal(xdp_spec(f, &s), XDP_DROP);
	assert_int_not_equal(state_get(f, &s, &v), 0);
	assert_int_equal(counters_sum(f).table_full, 1);
	assert_int_equal(states_count(f), SMALL_TABLE);
	/* existing states still pass */
	s.sport = 100;
	assert_int_equal(xdp_spec(f, &s), XDP_PASS);
}

/* A second load on the same pin dir shares the pinned maps, whatever size. */
static void test_loader_reuses_pins(void **state)
{
	struct fixture *f = *state;
	struct pfsync_sweep_args a = {.sweep_flags = PFSYNC_SWEEP_FLUSH | PFSYNC_SWEEP_QUIET};
	struct pkt_spec s = pkt_udp(AF_INET, A4, B4, 300, 400);
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);
	struct pfsync_bpf b2;
	int fd;

	assert_int_equal(xdp_spec(f, &s), XDP_PASS);
	assert_int_equal(pfsync_bpf_load(&b2, pkt_object_path(), f->o.pin_dir, 0, PFSYNC_LOAD_CTL),
			 0);
	assert_int_equal(b2.xdp_fd, -1);
	assert_int_equal(b2.tc_fd, -1);
	assert_true(b2.sweep_fd >= 0);
	fd = bpf_object__find_map_fd_by_name(b2.obj, PFSYNC_MAP_STATES);
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &info_len), 0);
	assert_int_equal(info.max_entries, SMALL_TABLE);
	assert_int_equal(pfsync_bpf_sweep(&b2, &a), 0);
	pfsync_bpf_close(&b2);
	assert_int_equal(a.deleted, 1);
	assert_int_equal(states_count(f), 0);
}

/*
 * After every test: each packet a program saw ended in exactly one outcome
 * (issue 12). A teardown, so that no test can leave a packet unaccounted.
 */
static int test_accounted(void **state)
{
	struct pfsync_counters c = counters_sum(*state);
	int prog, bad = 0;

	for (prog = 0; prog < PFSYNC_PROG_COUNT; prog++) {
		__u64 sum = 0;
		int i;

		for (i = 0; i < PFSYNC_OUT_SLOTS; i++)
			sum += c.prog[prog].outcome[i];
		if (sum != c.prog[prog].seen) {
			fprintf(stderr, "program %d: %llu seen, %llu in outcomes\n", prog,
				(unsigned long long)c.prog[prog].seen, (unsigned long long)sum);
			bad = 1;
		}
	}
	return bad ? -1 : 0;
}

/* ---- NAT (issue 15) ------------------------------------------------------- */

static int run_out(int prog_fd, void *ctx, __u32 ctx_size, const void *frame, size_t len, __u8 *out,
		   __u32 *out_len)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (__u32)len,
		    .data_out = out, .data_size_out = PKT_MAX, .ctx_in = ctx,
		    .ctx_size_in = ctx_size, .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(prog_fd, &opts), 0);
	*out_len = opts.data_size_out;
	return (int)opts.retval;
}

/* XDP ingress of s; the frame as it leaves the program in out */
static int xdp_nat(struct fixture *f, const struct pkt_spec *s, __u8 *out, __u32 *out_len)
{
	struct xdp_md ctx = {.ingress_ifindex = LO_IFINDEX};
	__u8 buf[PKT_MAX];
	size_t len = pkt_build(s, buf, sizeof(buf));

	assert_true(len > 0);
	pkt_fill_checksums_v4(buf, len);
	ctx.data_end = (__u32)len;
	return run_out(f->o.b.xdp_fd, &ctx, sizeof(ctx), buf, len, out, out_len);
}

/* tc egress of s, forwarded (came in where XDP ran) */
static int tc_nat(struct fixture *f, const struct pkt_spec *s, __u8 *out, __u32 *out_len)
{
	struct __sk_buff ctx = {.ifindex = LO_IFINDEX, .ingress_ifindex = LO_IFINDEX};
	__u8 buf[PKT_MAX];
	size_t len = pkt_build(s, buf, sizeof(buf));

	assert_true(len > 0);
	pkt_fill_checksums_v4(buf, len);
	return run_out(f->o.b.tc_fd, &ctx, sizeof(ctx), buf, len, out, out_len);
}

static void assert_checksums_v4(const __u8 *frame, __u32 len)
{
	assert_int_equal(pkt_checksums_ok_v4(frame, len), 1);
}

static void assert_v4(const __u8 *p, const char *want)
{
	__u32 w[4];

	pkt_addr(AF_INET, want, w);
	assert_memory_equal(p, &w[0], 4);
}

static __u16 be16_at(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

/* `pass in|out [proto P] ... nat-to|rdr-to ADDR [port LOW:HIGH]`; proto 0: any */
static void rule_nat(struct pfsync_rule *r, __u8 dir, __u8 type, const char *addr, __u8 proto,
		     __u16 low, __u16 high)
{
	memset(r, 0, sizeof(*r));
	r->action = PFSYNC_RULE_PASS;
	r->rflags = PFSYNC_RF_KEEP_STATE | (proto ? PFSYNC_RF_PROTO : 0);
	r->proto = proto;
	r->dir = dir;
	r->af = PFSYNC_AF_INET;
	r->nat.type = type;
	r->nat.af = PFSYNC_AF_INET;
	pkt_addr(AF_INET, addr, r->nat.addr);
	if (low) {
		r->nat.nflags = PFSYNC_NATF_PORT;
		r->nat.port_low = low;
		r->nat.port_high = high;
	}
}

/*
 * `pass out ... nat-to 198.51.100.1` loaded, s's first packet through tc
 * egress: passed, its source the public address, checksums right. The
 * frame as it left is in out.
 */
static void nat_to_first(struct fixture *f, const struct pkt_spec *s, __u8 *out, __u32 *len)
{
	struct pfsync_rule r;

	rule_nat(&r, PF_OUT, PFSYNC_NAT_NAT, "198.51.100.1", 0, 0, 0);
	rules_load(f, &r, 1, 0);
	assert_int_equal(tc_nat(f, s, out, len), TC_ACT_OK);
	assert_checksums_v4(out, *len);
	assert_v4(out + PKT_ETH_LEN + 12, "198.51.100.1");
}

/* nat-to at tc egress, the reply translated back at XDP ingress, checksums right */
static void test_nat_to_tcp(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec syn = tcp4("10.0.0.5", "203.0.113.9", 1234, 443, SYN, 1000, 0);
	struct pkt_spec synack;
	struct pfsync_state_value v;
	struct pfsync_key stack, alias_wire;
	__u8 out[PKT_MAX];
	__u32 len;
	__u16 port;

	nat_to_first(f, &syn, out, &len);
	port = be16_at(out + PKT_ETH_LEN + 20);
	assert_true(port >= PFSYNC_NAT_PORT_LOW);
	assert_int_equal(be16_at(out + PKT_ETH_LEN + 22), 443);
	/* one state, under the wire key, its stack key kept, the alias in place */
	assert_int_equal(states_count(f), 1);
	synack = tcp4("203.0.113.9", "198.51.100.1", 443, port, SYN | ACK, 5000, 1001);
	assert_int_equal(state_get(f, &synack, &v), 0);
	assert_int_equal(v.nat.type, PFSYNC_NAT_NAT);
	assert_int_equal(v.direction, PF_OUT);
	stack = key_of(&syn, NULL);
	assert_memory_equal(&v.nat.stack_key, &stack, sizeof(stack));
	assert_int_equal(bpf_map_lookup_elem(map_fd(f, PFSYNC_MAP_NAT_KEYS), &stack, &alias_wire),
			 0);
	/* the reply comes in on the wire key and leaves for the inside host */
	assert_int_equal(xdp_nat(f, &synack, out, &len), XDP_PASS);
	assert_checksums_v4(out, len);
	assert_v4(out + PKT_ETH_LEN + 16, "10.0.0.5");
	assert_int_equal(be16_at(out + PKT_ETH_LEN + 22), 1234);
	assert_int_equal(be16_at(out + PKT_ETH_LEN + 20), 443);
	/* the inside host's next packet, seen at XDP on the inside: tracked, not rewritten */
	syn.tcp_flags = ACK;
	syn.seq = 1001;
	syn.ack = 5001;
	assert_int_equal(xdp_nat(f, &syn, out, &len), XDP_PASS);
	assert_v4(out + PKT_ETH_LEN + 12, "10.0.0.5");
	assert_int_equal(state_get(f, &synack, &v), 0);
	assert_int_equal(v.peer[0].state, TCPS_ESTABLISHED);
	assert_int_equal(states_count(f), 1);
}

/* rdr-to at XDP ingress (destination and port), the reply's source at tc egress */
static void test_rdr_to_udp(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec q = pkt_udp(AF_INET, "192.0.2.7", "198.51.100.1", 40000, 53);
	struct pkt_spec a = pkt_udp(AF_INET, "10.0.0.10", "192.0.2.7", 5353, 40000);
	struct pfsync_state_value v;
	struct pfsync_rule r;
	__u8 out[PKT_MAX];
	__u32 len;

	rule_nat(&r, PF_IN, PFSYNC_NAT_RDR, "10.0.0.10", IPPROTO_UDP, 5353, 5353);
	rules_load(f, &r, 1, 0);
	assert_int_equal(xdp_nat(f, &q, out, &len), XDP_PASS);
	assert_checksums_v4(out, len);
	assert_v4(out + PKT_ETH_LEN + 16, "10.0.0.10");
	assert_int_equal(be16_at(out + PKT_ETH_LEN + 22), 5353);
	assert_int_equal(state_get(f, &q, &v), 0); /* the wire key */
	assert_int_equal(v.nat.type, PFSYNC_NAT_RDR);
	assert_int_equal(tc_nat(f, &a, out, &len), TC_ACT_OK);
	assert_checksums_v4(out, len);
	assert_v4(out + PKT_ETH_LEN + 12, "198.51.100.1");
	assert_int_equal(be16_at(out + PKT_ETH_LEN + 20), 53);
	assert_int_equal(states_count(f), 1);
}

/* nat-to of an echo request: address and echo id out, both back on the reply */
static void test_nat_to_icmp_echo(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec req = {.af = AF_INET,
			       .saddr = "10.0.0.5",
			       .daddr = "203.0.113.9",
			       .proto = IPPROTO_ICMP,
			       .icmp_type = 8,
			       .icmp_id = 0x1234,
			       .wscale = -1};
	struct pkt_spec rep = req;
	__u8 out[PKT_MAX];
	__u32 len;
	__u16 id;

	nat_to_first(f, &req, out, &len);
	id = be16_at(out + PKT_ETH_LEN + 20 + 4);
	assert_true(id >= PFSYNC_NAT_PORT_LOW);
	rep.saddr = "203.0.113.9";
	rep.daddr = "198.51.100.1";
	rep.icmp_type = 0;
	rep.icmp_id = id;
	assert_int_equal(xdp_nat(f, &rep, out, &len), XDP_PASS);
	assert_checksums_v4(out, len);
	assert_v4(out + PKT_ETH_LEN + 16, "10.0.0.5");
	assert_int_equal(be16_at(out + PKT_ETH_LEN + 20 + 4), 0x1234);
}

/*
 * An ICMP error from src to dst quoting `quoted` (a whole IPv4 packet with
 * its checksums), into frame; its length.
 */
static size_t icmp_error_v4(const char *src, const char *dst, const struct pkt_spec *quoted,
			    __u8 *frame)
{
	__u8 inner[PKT_MAX];
	size_t ilen = pkt_build(quoted, inner, sizeof(inner));
	struct pkt_spec err = {.af = AF_INET,
			       .saddr = src,
			       .daddr = dst,
			       .proto = IPPROTO_ICMP,
			       .icmp_type = 3, /* destination unreachable */
			       .wscale = -1};
	size_t len;

	assert_true(ilen > PKT_ETH_LEN);
	pkt_fill_checksums_v4(inner, ilen);
	err.payload = inner + PKT_ETH_LEN;
	err.payload_len = ilen - PKT_ETH_LEN;
	len = pkt_build(&err, frame, PKT_MAX);
	assert_true(len > 0);
	pkt_fill_checksums_v4(frame, len);
	return len;
}

/* the quoted packet of an ICMP error frame: its checksums and its endpoints */
static void assert_quote_v4(const __u8 *frame, __u32 len, const char *src, __u16 sport,
			    const char *dst, __u16 dport)
{
	const __u8 *quote = frame + PKT_ETH_LEN + 20 + 8;

	assert_true(len >= PKT_ETH_LEN + 28 + 28);
	/* seen as a frame of its own, its IP and UDP checksums must hold */
	assert_int_equal(pkt_checksums_ok_v4(quote - PKT_ETH_LEN, len - 28), 1);
	assert_v4(quote + 12, src);
	assert_v4(quote + 16, dst);
	assert_int_equal(be16_at(quote + 20), sport);
	assert_int_equal(be16_at(quote + 22), dport);
}

/*
 * An ICMP error quoting a nat-to packet comes in to the public address: the
 * quoted source and the outer destination go back to the inside host, at
 * XDP, with every checksum right (outer IP, ICMP over the quote, the
 * quote's own IP and UDP).
 */
static void test_nat_to_icmp_error(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec q = pkt_udp(AF_INET, "10.0.0.5", "203.0.113.9", 1234, 53);
	__u8 out[PKT_MAX], err[PKT_MAX];
	__u32 len;
	size_t elen;
	__u16 port;

	nat_to_first(f, &q, out, &len);
	port = be16_at(out + PKT_ETH_LEN + 20);
	/* the server's port unreachable quotes what it got: the public tuple */
	q.saddr = "198.51.100.1";
	q.sport = port;
	elen = icmp_error_v4("203.0.113.9", "198.51.100.1", &q, err);
	{
		struct xdp_md ctx = {.ingress_ifindex = LO_IFINDEX, .data_end = (__u32)elen};

		assert_int_equal(run_out(f->o.b.xdp_fd, &ctx, sizeof(ctx), err, elen, out, &len),
				 XDP_PASS);
	}
	assert_checksums_v4(out, len);
	assert_v4(out + PKT_ETH_LEN + 12, "203.0.113.9");
	assert_v4(out + PKT_ETH_LEN + 16, "10.0.0.5");
	assert_quote_v4(out, len, "10.0.0.5", 1234, "203.0.113.9", 53);
	assert_int_equal(states_count(f), 1); /* related: no state of its own */
}

/*
 * The rdr-to server's own ICMP error quotes the inside tuple: at tc egress
 * the quoted destination and the outer source (the server, which is the
 * quoted destination) become the public ones.
 */
static void test_rdr_to_icmp_error(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec q = pkt_udp(AF_INET, "192.0.2.7", "198.51.100.1", 40000, 53);
	struct pkt_spec inside = pkt_udp(AF_INET, "192.0.2.7", "10.0.0.10", 40000, 5353);
	struct pfsync_rule r;
	__u8 out[PKT_MAX], err[PKT_MAX];
	__u32 len;
	size_t elen;

	rule_nat(&r, PF_IN, PFSYNC_NAT_RDR, "10.0.0.10", 0, 5353, 5353);
	rules_load(f, &r, 1, 0);
	assert_int_equal(xdp_nat(f, &q, out, &len), XDP_PASS);
	elen = icmp_error_v4("10.0.0.10", "192.0.2.7", &inside, err);
	{
		struct __sk_buff ctx = {.ifindex = LO_IFINDEX, .ingress_ifindex = LO_IFINDEX};

		assert_int_equal(run_out(f->o.b.tc_fd, &ctx, sizeof(ctx), err, elen, out, &len),
				 TC_ACT_OK);
	}
	assert_checksums_v4(out, len);
	assert_v4(out + PKT_ETH_LEN + 12, "198.51.100.1");
	assert_v4(out + PKT_ETH_LEN + 16, "192.0.2.7");
	assert_quote_v4(out, len, "192.0.2.7", 40000, "198.51.100.1", 53);
	assert_int_equal(states_count(f), 1);
}

/*
 * An alias that names no translated state of its key (left over, or the
 * wire key now taken by a plain state) is not followed: the packet is new
 * under its own key, and is not rewritten.
 */
static void test_nat_stale_alias(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec inside = pkt_udp(AF_INET, "10.0.0.5", "203.0.113.9", 1234, 53);
	struct pkt_spec wire = pkt_udp(AF_INET, "198.51.100.1", "203.0.113.9", 50001, 53);
	struct pfsync_key stack = key_of(&inside, NULL), wkey = key_of(&wire, NULL);
	struct pfsync_state_value v;
	__u8 out[PKT_MAX];
	__u32 len;

	assert_int_equal(
	    bpf_map_update_elem(map_fd(f, PFSYNC_MAP_NAT_KEYS), &stack, &wkey, BPF_ANY), 0);
	/* no state under the wire key at all */
	assert_int_equal(xdp_nat(f, &inside, out, &len), XDP_PASS);
	assert_v4(out + PKT_ETH_LEN + 12, "10.0.0.5");
	assert_int_equal(state_get(f, &inside, &v), 0);
	assert_int_equal(v.nat.type, PFSYNC_NAT_NONE);
	assert_int_equal(states_count(f), 1);
	/* a plain state under the wire key: still not this packet's */
	assert_int_equal(xdp_nat(f, &wire, out, &len), XDP_PASS);
	inside.sport = 1235;
	stack = key_of(&inside, NULL);
	assert_int_equal(
	    bpf_map_update_elem(map_fd(f, PFSYNC_MAP_NAT_KEYS), &stack, &wkey, BPF_ANY), 0);
	assert_int_equal(xdp_nat(f, &inside, out, &len), XDP_PASS);
	assert_int_equal(be16_at(out + PKT_ETH_LEN + 20), 1235);
	assert_int_equal(state_get(f, &inside, &v), 0);
	assert_int_equal(states_count(f), 3);
}

/* p, through nat-to at tc, is dropped: the first nat_exhausted of the test */
static void assert_nat_dropped(struct fixture *f, const struct pkt_spec *p)
{
	struct pfsync_counters c;
	__u8 out[PKT_MAX];
	__u32 len;

	assert_int_equal(tc_nat(f, p, out, &len), TC_ACT_SHOT);
	c = counters_sum(f);
	assert_int_equal(c.nat_exhausted, 1);
	assert_int_equal(c.prog[PFSYNC_PROG_TC].outcome[PFSYNC_OUT_NAT_EXHAUSTED], 1);
}

/* a one-port range: the second connection to the same server finds no tuple */
static void test_nat_exhausted(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec a = tcp4("10.0.0.5", "203.0.113.9", 1234, 443, SYN, 1000, 0);
	struct pkt_spec b = tcp4("10.0.0.6", "203.0.113.9", 1234, 443, SYN, 1000, 0);
	struct pkt_spec other = tcp4("10.0.0.6", "203.0.113.10", 1234, 443, SYN, 1000, 0);
	struct pfsync_rule r;
	__u8 out[PKT_MAX];
	__u32 len;

	rule_nat(&r, PF_OUT, PFSYNC_NAT_NAT, "198.51.100.1", IPPROTO_TCP, 60000, 60000);
	rules_load(f, &r, 1, 0);
	assert_int_equal(tc_nat(f, &a, out, &len), TC_ACT_OK);
	assert_int_equal(be16_at(out + PKT_ETH_LEN + 20), 60000);
	assert_nat_dropped(f, &b);
	/* another server: the same public port is a different tuple */
	assert_int_equal(tc_nat(f, &other, out, &len), TC_ACT_OK);
	assert_int_equal(be16_at(out + PKT_ETH_LEN + 20), 60000);
	assert_int_equal(states_count(f), 2);
}

/*
 * nat-to (IF) while the interface has no address: nothing to translate to,
 * so the connection is dropped and counted as pf does, and no state (nor
 * alias) is left behind; with the address back it is translated.
 */
static void test_nat_to_no_address(void **state)
{
	struct fixture *f = *state;
	struct pkt_spec a = tcp4("10.0.0.5", "203.0.113.9", 1234, 443, SYN, 1000, 0);
	struct pfsync_rule r;
	__u8 out[PKT_MAX];
	__u32 len;

	rule_nat(&r, PF_OUT, PFSYNC_NAT_NAT, "0.0.0.0", 0, 0, 0);
	r.nat.nflags |= PFSYNC_NATF_IFADDR | PFSYNC_NATF_NOADDR;
	rules_load(f, &r, 1, 0);
	assert_nat_dropped(f, &a);
	assert_int_equal(states_count(f), 0);
	/* the agent saw an address: the same rule, the flag gone */
	inet_pton(AF_INET, "198.51.100.1", r.nat.addr);
	r.nat.nflags &= (__u8)~PFSYNC_NATF_NOADDR;
	rules_load(f, &r, 1, 1);
	assert_int_equal(tc_nat(f, &a, out, &len), TC_ACT_OK);
	assert_v4(out + PKT_ETH_LEN + 12, "198.51.100.1");
	assert_int_equal(states_count(f), 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, test_reset, test_accounted)

int main(void)
{
	const struct CMUnitTest main_tests[] = {
	    T(test_tcp4_handshake),
	    T(test_tcp6_handshake),
	    T(test_tcp_data_fin),
	    T(test_tcp_rst),
	    T(test_tcp_out_of_window),
	    T(test_tcp_window_reopened),
	    T(test_tcp_port_reuse),
	    T(test_tcp_syn_options),
	    T(test_state_ids_unique),
	    T(test_udp),
	    T(test_forwarded_counted_once),
	    T(test_icmp_echo),
	    T(test_icmp6_echo),
	    T(test_other_proto),
	    T(test_pfsync_carp_stateless),
	    T(test_arp_passes_uncounted),
	    T(test_vlan),
	    T(test_ipv4_options),
	    T(test_ipv6_ext_headers),
	    T(test_ipv6_ext_chain_too_long),
	    T(test_fragments),
	    T(test_fragments_rules),
	    T(test_malformed),
	    T(test_rule_block_in),
	    T(test_rule_last_match),
	    T(test_rule_quick),
	    T(test_rule_addr),
	    T(test_rule_tcp_needs_syn),
	    T(test_no_ruleset_tcp_midstream),
	    T(test_icmp_error_related),
	    T(test_nosync),
	    T(test_sloppy),
	    T(test_unqueue_and_maxupd),
	    T(test_sweep_expires),
	    T(test_flush),
	    T(test_lost_records_reported),
	    T(test_lost_records_reported_by_sweep),
	    T(test_defer_xdp),
	    T(test_defer_tc),
	    T(test_defer_nosync_not_held),
	    T(test_defer_group_not_held),
	    T(test_defer_too_big_passes),
	    T(test_defer_released_syn_untracked),
	    T(test_nat_to_tcp),
	    T(test_rdr_to_udp),
	    T(test_nat_to_icmp_echo),
	    T(test_nat_exhausted),
	    T(test_nat_to_no_address),
	    T(test_nat_to_icmp_error),
	    T(test_rdr_to_icmp_error),
	    T(test_nat_stale_alias),
	};
	const struct CMUnitTest small_tests[] = {
	    T(test_table_full),
	    T(test_loader_reuses_pins),
	};
	const char *filter = getenv("TEST_FILTER");
	int failed;

	if (filter && *filter)
		cmocka_set_test_filter(filter);
	failed = cmocka_run_group_tests_name("datapath", main_tests, group_setup, group_teardown);
	failed += cmocka_run_group_tests_name("datapath_small_table", small_tests,
					      group_setup_small, group_teardown);
	return failed ? 1 : 0;
}
