/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Host tests of include/pfsync_logic.h: pf's timeouts, key normalisation,
 * TCP/UDP/ICMP/other state machines and rule matching. Time is a fake
 * clock: the tests set last_seen themselves and pass "now" explicitly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <cmocka.h>

#include "pfsync_logic.h"

#define NS(sec) ((__u64)(sec)*PFSYNC_NSEC_PER_SEC)

/* ---- helpers ------------------------------------------------------------ */

static struct pfsync_tcp_seg seg(__u32 seq, __u32 ack, __u16 win, __u8 flags, __u32 len)
{
	struct pfsync_tcp_seg s;

	memset(&s, 0, sizeof(s));
	s.seq = seq;
	s.ack = ack;
	s.win = win;
	s.flags = flags;
	s.payload_len = len;
	return s;
}

static struct pfsync_tcp_seg syn_seg(__u32 seq, __u32 ack, __u16 win, __u8 flags, int wscale)
{
	struct pfsync_tcp_seg s = seg(seq, ack, win, flags, 0);

	if (wscale >= 0) {
		s.has_wscale = 1;
		s.wscale = (__u8)wscale;
	}
	s.mss = 1460;
	return s;
}

static void ip4(__u32 *out, const char *text)
{
	memset(out, 0, 16);
	assert_int_equal(inet_pton(AF_INET, text, out), 1);
}

static void ip6(__u32 *out, const char *text)
{
	assert_int_equal(inet_pton(AF_INET6, text, out), 1);
}

/* Mask for a prefix length, network order, as the rule loader stores it. */
static void prefix_mask(__u32 *mask, unsigned int plen)
{
	unsigned int i;

	for (i = 0; i < 4; i++) {
		unsigned int bits = plen > 32 * i ? plen - 32 * i : 0;

		if (bits >= 32)
			mask[i] = 0xffffffffu;
		else if (bits == 0)
			mask[i] = 0;
		else
			mask[i] = htonl(~0u << (32 - bits));
	}
}

#define FLAG_SA (PFSYNC_TH_SYN | PFSYNC_TH_ACK)
#define FLAG_FA (PFSYNC_TH_FIN | PFSYNC_TH_ACK)
#define FLAG_RA (PFSYNC_TH_RST | PFSYNC_TH_ACK)

/* ---- timeouts ----------------------------------------------------------- */

static void test_timeout_defaults(void **unused)
{
	/* pfsync-wire.md §2.10, OpenBSD PFTM_*_VAL */
	static const __u32 expected[PFTM_MAX] = {
	    120, 30, 86400, 900, 45, 90, 60,	30,	60, 20,
	    10,	 60, 30,    60,	 60, 10, 60000, 120000, 0,  30,
	};
	__u32 i;

	(void)unused;
	for (i = 0; i < PFTM_MAX; i++) {
		assert_int_equal(pfsync_timeout_default(i), expected[i]);
		assert_int_equal(pfsync_timeout_get(NULL, i), expected[i]);
	}
	assert_int_equal(pfsync_timeout_default(PFTM_PURGE), 0);
	assert_int_equal(pfsync_timeout_default(1000), 0);
	assert_int_equal(pfsync_timeout_get(NULL, PFTM_MAX), 0);
}

static void test_timeout_cfg_override(void **unused)
{
	struct pfsync_config cfg;

	(void)unused;
	memset(&cfg, 0, sizeof(cfg));
	cfg.timeouts[PFTM_TCP_ESTABLISHED] = 600;
	cfg.timeouts[PFTM_UDP_SINGLE] = 5;
	assert_int_equal(pfsync_timeout_get(&cfg, PFTM_TCP_ESTABLISHED), 600);
	assert_int_equal(pfsync_timeout_get(&cfg, PFTM_UDP_SINGLE), 5);
	/* 0 means "pf's default" */
	assert_int_equal(pfsync_timeout_get(&cfg, PFTM_TCP_OPENING),
			 pfsync_timeout_default(PFTM_TCP_OPENING));
	assert_int_equal(pfsync_timeout_get(&cfg, PFTM_MAX + 3), 0);
}

static void test_expires_basic(void **unused)
{
	struct pfsync_state_value v;
	struct pfsync_config cfg;
	__u64 now = NS(1000);

	(void)unused;
	memset(&v, 0, sizeof(v));
	memset(&cfg, 0, sizeof(cfg));
	v.last_seen = now;
	v.timeout = PFTM_UDP_SINGLE;
	assert_true(pfsync_state_expires_ns(&v, &cfg, 10) == now + NS(30));
	/* not due 29 s later, due 30 s later */
	assert_true(pfsync_state_expires_ns(&v, &cfg, 10) > now + NS(29));
	assert_true(pfsync_state_expires_ns(&v, &cfg, 10) <= now + NS(30));

	cfg.timeouts[PFTM_UDP_SINGLE] = 7;
	assert_true(pfsync_state_expires_ns(&v, &cfg, 10) == now + NS(7));
	assert_true(pfsync_state_expires_ns(&v, NULL, 10) == now + NS(30));

	/* a state pf marked for purge (or garbage) is due at once */
	v.timeout = PFTM_PURGE;
	assert_true(pfsync_state_expires_ns(&v, &cfg, 10) <= now);
	v.timeout = 0xff;
	assert_true(pfsync_state_expires_ns(&v, &cfg, 10) <= now);
}

static void test_expires_adaptive_defaults(void **unused)
{
	struct pfsync_state_value v;
	struct pfsync_config cfg;
	__u64 now = NS(50);

	(void)unused;
	memset(&v, 0, sizeof(v));
	memset(&cfg, 0, sizeof(cfg));
	v.last_seen = now;
	v.timeout = PFTM_TCP_ESTABLISHED;
	cfg.table_size = 100000; /* pf's default limit: 60000 .. 120000 */

	/* at or below adaptive.start (60000): unscaled */
	assert_true(pfsync_state_expires_ns(&v, &cfg, 0) == now + NS(86400));
	assert_true(pfsync_state_expires_ns(&v, &cfg, 60000) == now + NS(86400));
	/* halfway between start and end: half the timeout */
	assert_true(pfsync_state_expires_ns(&v, &cfg, 90000) == now + NS(43200));
	/* a quarter of the way: three quarters */
	assert_true(pfsync_state_expires_ns(&v, &cfg, 75000) == now + NS(64800));
	/* pf truncates to whole seconds: 86400 * 1 / 60000 = 1.44 -> 1 */
	assert_true(pfsync_state_expires_ns(&v, &cfg, 119999) == now + NS(1));
	/* at adaptive.end and beyond: due now */
	assert_true(pfsync_state_expires_ns(&v, &cfg, 120000) <= now);
	assert_true(pfsync_state_expires_ns(&v, &cfg, 500000) <= now);
}

static void test_expires_adaptive_cfg(void **unused)
{
	struct pfsync_state_value v;
	struct pfsync_config cfg;
	__u64 now = NS(50);

	(void)unused;
	memset(&v, 0, sizeof(v));
	memset(&cfg, 0, sizeof(cfg));
	v.last_seen = now;
	v.timeout = PFTM_TCP_OPENING; /* 30 s */

	/* explicit adaptive.start/end */
	cfg.timeouts[PFTM_ADAPTIVE_START] = 100;
	cfg.timeouts[PFTM_ADAPTIVE_END] = 200;
	assert_true(pfsync_state_expires_ns(&v, &cfg, 100) == now + NS(30));
	assert_true(pfsync_state_expires_ns(&v, &cfg, 150) == now + NS(15));
	assert_true(pfsync_state_expires_ns(&v, &cfg, 200) <= now);

	/* start >= end disables scaling, as in pf */
	cfg.timeouts[PFTM_ADAPTIVE_START] = 300;
	assert_true(pfsync_state_expires_ns(&v, &cfg, 250) == now + NS(30));

	/* only a state limit: 60 % / 120 % of it (pfctl `set limit states`) */
	cfg.timeouts[PFTM_ADAPTIVE_START] = 0;
	cfg.timeouts[PFTM_ADAPTIVE_END] = 0;
	cfg.state_limit = 1000;
	assert_true(pfsync_state_expires_ns(&v, &cfg, 600) == now + NS(30));
	assert_true(pfsync_state_expires_ns(&v, &cfg, 900) == now + NS(15));
	assert_true(pfsync_state_expires_ns(&v, &cfg, 1200) <= now);
	/* with 60000..120000 this count would not scale at all */
	assert_true(pfsync_state_expires_ns(&v, &cfg, 1100) < now + NS(30));
}

static void test_expires_adaptive_table_size(void **unused)
{
	struct pfsync_state_value v;
	struct pfsync_config cfg;
	__u32 start, end;
	__u64 now = NS(50);

	(void)unused;
	memset(&v, 0, sizeof(v));
	memset(&cfg, 0, sizeof(cfg));
	v.last_seen = now;
	v.timeout = PFTM_TCP_ESTABLISHED;

	/* --states-max 200000, no limit set: 120000 .. 240000 */
	cfg.table_size = 200000;
	pfsync_adaptive_bounds(&cfg, &start, &end);
	assert_int_equal(start, 120000);
	assert_int_equal(end, 240000);
	/* 130000 states: 86400 * 110000 / 120000 = 79200 s, not "due now" */
	assert_true(pfsync_state_expires_ns(&v, &cfg, 130000) == now + NS(79200));
	/* a state limit wins over the table size */
	cfg.state_limit = 1000;
	pfsync_adaptive_bounds(&cfg, &start, &end);
	assert_int_equal(start, 600);
	assert_int_equal(end, 1200);
	/* one bound set explicitly, the other still derived */
	cfg.timeouts[PFTM_ADAPTIVE_END] = 5000;
	pfsync_adaptive_bounds(&cfg, &start, &end);
	assert_int_equal(start, 600);
	assert_int_equal(end, 5000);
	/* `set timeout adaptive.start 0` and `adaptive.end 0`: scaling off */
	cfg.timeouts[PFTM_ADAPTIVE_END] = 0;
	cfg.cfg_flags |= PFSYNC_CFG_ADAPTIVE_START | PFSYNC_CFG_ADAPTIVE_END;
	pfsync_adaptive_bounds(&cfg, &start, &end);
	assert_int_equal(start, 0);
	assert_int_equal(end, 0);
	assert_true(pfsync_state_expires_ns(&v, &cfg, 999999) == now + NS(86400));
}

/* ---- key normalisation -------------------------------------------------- */

static void make_key4(struct pfsync_key *k, const char *src, __u16 sport, const char *dst,
		      __u16 dport)
{
	memset(k, 0, sizeof(*k));
	ip4(k->addr[0], src);
	ip4(k->addr[1], dst);
	k->port[0] = htons(sport);
	k->port[1] = htons(dport);
	k->proto = PFSYNC_IPPROTO_TCP;
	k->af = PFSYNC_AF_INET;
}

static void test_key_normalize_ipv4(void **unused)
{
	struct pfsync_key fwd, rev;
	int side_fwd, side_rev;

	(void)unused;
	make_key4(&fwd, "10.0.0.2", 40000, "10.0.1.5", 80);
	make_key4(&rev, "10.0.1.5", 80, "10.0.0.2", 40000);
	side_fwd = pfsync_key_normalize(&fwd);
	side_rev = pfsync_key_normalize(&rev);
	assert_memory_equal(&fwd, &rev, sizeof(fwd));
	assert_int_equal(side_fwd, 0); /* 10.0.0.2 < 10.0.1.5 */
	assert_int_equal(side_rev, 1);
	assert_int_equal(ntohs(fwd.port[0]), 40000);
	assert_int_equal(ntohs(fwd.port[1]), 80);

	/* bytes, not host integers: 1.0.0.2 < 2.0.0.1 although as a
	 * little-endian word the first is larger */
	make_key4(&fwd, "2.0.0.1", 1, "1.0.0.2", 1);
	assert_int_equal(pfsync_key_normalize(&fwd), 1);
	make_key4(&rev, "1.0.0.2", 1, "2.0.0.1", 1);
	assert_int_equal(pfsync_key_normalize(&rev), 0);
	assert_memory_equal(&fwd, &rev, sizeof(fwd));

	/* same address: the port decides, compared in network byte order
	 * (0x0100 = 256 > 0x0002 = 2) */
	make_key4(&fwd, "10.0.0.1", 256, "10.0.0.1", 2);
	assert_int_equal(pfsync_key_normalize(&fwd), 1);
	assert_int_equal(ntohs(fwd.port[0]), 2);
	assert_int_equal(ntohs(fwd.port[1]), 256);
	/* identical sides: nothing moves */
	make_key4(&fwd, "10.0.0.1", 7, "10.0.0.1", 7);
	assert_int_equal(pfsync_key_normalize(&fwd), 0);
}

static void test_key_normalize_ipv6(void **unused)
{
	struct pfsync_key fwd, rev;
	int side_fwd, side_rev;

	(void)unused;
	memset(&fwd, 0, sizeof(fwd));
	ip6(fwd.addr[0], "2001:db8::ff02");
	ip6(fwd.addr[1], "2001:db8::1:1");
	fwd.port[0] = htons(5353);
	fwd.port[1] = htons(53);
	fwd.proto = PFSYNC_IPPROTO_UDP;
	fwd.af = PFSYNC_AF_INET6;
	rev = fwd;
	memcpy(rev.addr[0], fwd.addr[1], 16);
	memcpy(rev.addr[1], fwd.addr[0], 16);
	rev.port[0] = fwd.port[1];
	rev.port[1] = fwd.port[0];

	side_fwd = pfsync_key_normalize(&fwd);
	side_rev = pfsync_key_normalize(&rev);
	assert_memory_equal(&fwd, &rev, sizeof(fwd));
	/* bytes 12..15: ::ff02 is 00 00 ff 02, ::1:1 is 00 01 00 01, so the
	 * source ::ff02 sorts first although its last word is larger as a
	 * little-endian integer */
	assert_int_equal(side_fwd, 0);
	assert_int_equal(side_rev, 1);
	assert_int_equal(memcmp(fwd.addr[0], fwd.addr[1], 16) < 0, 1);

	/* difference in the first word dominates later words */
	memset(&fwd, 0, sizeof(fwd));
	ip6(fwd.addr[0], "fe80::1");
	ip6(fwd.addr[1], "2001:db8::ffff:ffff");
	assert_int_equal(pfsync_key_normalize(&fwd), 1);
	assert_int_equal(memcmp(fwd.addr[0], fwd.addr[1], 16) < 0, 1);
}

/* ---- TCP ---------------------------------------------------------------- */

/* Client 1000 -> server 5000 handshake, both offering window scale 7. */
#define C_ISN 1000u
#define S_ISN 5000u

static void tcp_handshake(struct pfsync_state_value *v, int c_ws, int s_ws)
{
	struct pfsync_tcp_seg s;

	memset(v, 0, sizeof(*v));
	s = syn_seg(C_ISN, 0, 64240, PFSYNC_TH_SYN, c_ws);
	pfsync_tcp_init(v, &s);
	s = syn_seg(S_ISN, C_ISN + 1, 65160, FLAG_SA, s_ws);
	assert_int_equal(pfsync_tcp_track(v, 0, &s, 0), PFSYNC_TCP_PASS);
	s = seg(C_ISN + 1, S_ISN + 1, 502, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(v, 1, &s, 0), PFSYNC_TCP_PASS);
}

/*
 * A retransmitted SYN (or a deferred SYN seen twice) keeps max_win in the
 * scaled units of the first one; the server's SYN|ACK then passes even
 * with an ISN where an inflated window would have pushed seqhi around.
 */
static void test_tcp_repeated_syn_keeps_scaled_window(void **unused)
{
	static const __u32 server_isns[] = {S_ISN, 0x7f000000u, 0x7ff00000u, 0xfff00000u};
	struct pfsync_state_value v;
	struct pfsync_tcp_seg s;

	(void)unused;
	for (size_t i = 0; i < sizeof(server_isns) / sizeof(server_isns[0]); i++) {
		memset(&v, 0, sizeof(v));
		s = syn_seg(C_ISN, 0, 64240, PFSYNC_TH_SYN, 10);
		pfsync_tcp_init(&v, &s);
		assert_int_equal(v.peer[0].max_win, (64240 + 1023) / 1024);
		assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_PASS);
		assert_int_equal(v.peer[0].max_win, (64240 + 1023) / 1024);
		s = syn_seg(server_isns[i], C_ISN + 1, 65160, FLAG_SA, 7);
		assert_int_equal(pfsync_tcp_track(&v, 0, &s, 0), PFSYNC_TCP_PASS);
		assert_int_equal(v.peer[1].state, TCPS_SYN_SENT);
		s = seg(C_ISN + 1, server_isns[i] + 1, 502, PFSYNC_TH_ACK, 0);
		assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_PASS);
	}
}

static void test_tcp_full_lifecycle(void **unused)
{
	struct pfsync_state_value v;
	struct pfsync_tcp_seg s;
	struct pfsync_peer *cli = &v.peer[0], *srv = &v.peer[1];

	(void)unused;
	memset(&v, 0, sizeof(v));

	/* SYN, window 64240 with scale 7: stored as ceil(64240 / 128) */
	s = syn_seg(C_ISN, 0, 64240, PFSYNC_TH_SYN, 7);
	pfsync_tcp_init(&v, &s);
	assert_int_equal(cli->state, TCPS_SYN_SENT);
	assert_int_equal(srv->state, TCPS_CLOSED);
	assert_int_equal(cli->seqlo, C_ISN);
	assert_int_equal(cli->seqhi, C_ISN + 2); /* seq + len + 1, +1 for SYN */
	assert_int_equal(cli->wscale, PF_WSCALE_FLAG | 7);
	assert_int_equal(cli->max_win, (64240 + 127) / 128);
	assert_int_equal(srv->seqhi, 1);
	assert_int_equal(srv->max_win, 1);
	assert_int_equal(v.timeout, PFTM_TCP_FIRST_PACKET);

	/* SYN|ACK with scale 7: server learns its window, client established */
	s = syn_seg(S_ISN, C_ISN + 1, 65160, FLAG_SA, 7);
	assert_int_equal(pfsync_tcp_track(&v, 0, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(srv->wscale, PF_WSCALE_FLAG | 7);
	assert_int_equal(srv->seqlo, S_ISN + 1);
	assert_int_equal(srv->max_win, (65160 + 127) / 128);
	assert_int_equal(srv->seqhi, S_ISN + 1 + (502u << 7));
	assert_int_equal(srv->mss, 1460);
	assert_int_equal(cli->seqhi, C_ISN + 1 + (510u << 7));
	assert_int_equal(cli->state, TCPS_ESTABLISHED);
	assert_int_equal(srv->state, TCPS_SYN_SENT);
	assert_int_equal(v.timeout, PFTM_TCP_OPENING);

	/* ACK completes the handshake */
	s = seg(C_ISN + 1, S_ISN + 1, 502, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(srv->state, TCPS_ESTABLISHED);
	assert_int_equal(v.timeout, PFTM_TCP_ESTABLISHED);

	/* 100 bytes client -> server */
	s = seg(C_ISN + 1, S_ISN + 1, 502, PFSYNC_TH_ACK | PFSYNC_TH_PSH, 100);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(cli->seqlo, C_ISN + 101);
	/* 200 bytes back, acking the 100; window 600 (x128) grows max_win */
	s = seg(S_ISN + 1, C_ISN + 101, 600, PFSYNC_TH_ACK, 200);
	assert_int_equal(pfsync_tcp_track(&v, 0, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(srv->seqlo, S_ISN + 201);
	assert_int_equal(srv->max_win, 600);
	assert_int_equal(cli->seqhi, C_ISN + 101 + (600u << 7));
	assert_int_equal(v.timeout, PFTM_TCP_ESTABLISHED);

	/* client FIN: CLOSING, timeout tcp.closing */
	s = seg(C_ISN + 101, S_ISN + 201, 502, FLAG_FA, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(cli->state, TCPS_CLOSING);
	assert_int_equal(srv->state, TCPS_ESTABLISHED);
	assert_int_equal(cli->seqlo, C_ISN + 102); /* FIN takes a number */
	assert_int_equal(v.timeout, PFTM_TCP_CLOSING);

	/* server ACKs the FIN: client FIN_WAIT_2 */
	s = seg(S_ISN + 201, C_ISN + 102, 600, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(&v, 0, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(cli->state, TCPS_FIN_WAIT_2);
	assert_int_equal(v.timeout, PFTM_TCP_CLOSING);

	/* server FIN: both at least CLOSING -> tcp.finwait */
	s = seg(S_ISN + 201, C_ISN + 102, 600, FLAG_FA, 0);
	assert_int_equal(pfsync_tcp_track(&v, 0, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(srv->state, TCPS_CLOSING);
	assert_int_equal(v.timeout, PFTM_TCP_FIN_WAIT);

	/* last ACK: both FIN_WAIT_2 -> tcp.closed */
	s = seg(C_ISN + 102, S_ISN + 202, 502, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(srv->state, TCPS_FIN_WAIT_2);
	assert_int_equal(cli->state, TCPS_FIN_WAIT_2);
	assert_int_equal(v.timeout, PFTM_TCP_CLOSED);

	/* a new SYN on the closed connection: purge it and drop (state reuse) */
	s = syn_seg(C_ISN + 90000, 0, 64240, PFSYNC_TH_SYN, 7);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_REUSE);
	assert_int_equal(v.timeout, PFTM_PURGE);
	v.last_seen = NS(10);
	assert_true(pfsync_state_expires_ns(&v, NULL, 1) <= NS(10));
}

static void test_tcp_wscale_needs_both(void **unused)
{
	struct pfsync_state_value v;

	(void)unused;
	/* client offers no scale: server's option is ignored, windows raw */
	tcp_handshake(&v, -1, 7);
	assert_int_equal(v.peer[0].wscale, 0);
	assert_int_equal(v.peer[1].wscale, 0);
	assert_int_equal(v.peer[0].max_win, 64240);
	assert_int_equal(v.peer[1].max_win, 65160);
	assert_int_equal(v.peer[0].seqhi, C_ISN + 1 + 65160);

	/* server refuses: client's scaled-down window is restored */
	tcp_handshake(&v, 7, -1);
	assert_int_equal(v.peer[0].wscale, 0);
	assert_int_equal(v.peer[1].wscale, 0);
	assert_int_equal(v.peer[0].max_win, ((64240 + 127) / 128) << 7);
	assert_int_equal(v.peer[1].max_win, 65160);

	/* scale is capped at 14 like pf_get_wscale */
	tcp_handshake(&v, 15, 14);
	assert_int_equal(v.peer[0].wscale, PF_WSCALE_FLAG | 14);
	assert_int_equal(v.peer[1].wscale, PF_WSCALE_FLAG | 14);

	/* an option on a non-SYN segment means nothing */
	{
		struct pfsync_tcp_seg s = seg(1, 0, 1000, PFSYNC_TH_ACK, 0);

		s.has_wscale = 1;
		s.wscale = 5;
		memset(&v, 0, sizeof(v));
		pfsync_tcp_init(&v, &s);
		assert_int_equal(v.peer[0].wscale, 0);
		assert_int_equal(v.peer[0].max_win, 1000);
		assert_int_equal(v.peer[0].seqhi, 2);
	}
}

static void test_tcp_scaled_window_accepts_large_data(void **unused)
{
	struct pfsync_state_value v;
	struct pfsync_tcp_seg s;
	__u32 limit;

	(void)unused;
	tcp_handshake(&v, 7, 7);
	/* the server accepts 510 << 7 = 65280 bytes past C_ISN + 1 */
	limit = v.peer[0].seqhi;
	assert_int_equal(limit, C_ISN + 1 + (510u << 7));
	s = seg(C_ISN + 1, S_ISN + 1, 502, PFSYNC_TH_ACK, limit - (C_ISN + 1));
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(v.peer[0].seqlo, limit);
}

static void test_tcp_out_of_window_unchanged(void **unused)
{
	struct pfsync_state_value v, before;
	struct pfsync_tcp_seg s;

	(void)unused;
	tcp_handshake(&v, 7, 7);
	before = v;

	/* data far beyond what the server allowed */
	s = seg(C_ISN + 1 + 10000000, S_ISN + 1, 502, PFSYNC_TH_ACK, 100);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_BAD_WINDOW);
	assert_memory_equal(&v, &before, sizeof(v));

	/* one byte past the right edge */
	s = seg(v.peer[0].seqhi - 99, S_ISN + 1, 502, PFSYNC_TH_ACK, 100);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_BAD_WINDOW);
	assert_memory_equal(&v, &before, sizeof(v));

	/* more than one window behind */
	s = seg(C_ISN + 1 - (510u << 7) - 1000, S_ISN + 1, 502, PFSYNC_TH_ACK, 10);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_BAD_WINDOW);
	assert_memory_equal(&v, &before, sizeof(v));

	/* acking data the server never sent (ackskew below -MAXACKWINDOW) */
	s = seg(C_ISN + 1, S_ISN + 1 + PFSYNC_MAXACKWINDOW + 1, 502, PFSYNC_TH_ACK, 10);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_BAD_WINDOW);
	assert_memory_equal(&v, &before, sizeof(v));

	/* a SYN on an established connection (pf: challenge ACK + drop) */
	s = syn_seg(C_ISN + 5, 0, 64240, PFSYNC_TH_SYN, 7);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_BAD_WINDOW);
	assert_memory_equal(&v, &before, sizeof(v));

	/* sloppy tracking does not look at sequence numbers */
	s = seg(C_ISN + 1 + 10000000, S_ISN + 1, 502, PFSYNC_TH_ACK, 100);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 1), PFSYNC_TCP_PASS);
	assert_int_equal(v.peer[0].seqlo, before.peer[0].seqlo);
	assert_int_equal(v.timeout, PFTM_TCP_ESTABLISHED);
}

static void test_tcp_ackskew_scaled(void **unused)
{
	struct pfsync_state_value v, before;
	struct pfsync_tcp_seg s;

	(void)unused;
	tcp_handshake(&v, 7, 7);
	/* acking 100000 behind is more than MAXACKWINDOW but within it << 7 */
	before = v;
	s = seg(C_ISN + 1, v.peer[1].seqlo - 100000, 502, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_PASS);
	/* a peer's state may carry shift 15 (the wire allows 4 bits): the
	 * backward limit is then beyond 2^31 and must not wrap negative */
	v = before;
	v.peer[0].wscale = PF_WSCALE_FLAG | 15;
	v.peer[1].wscale = PF_WSCALE_FLAG | 15;
	s = seg(C_ISN + 1, v.peer[1].seqlo - 100000, 2, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_PASS);
	/* without scaling the same ack is refused */
	tcp_handshake(&v, -1, -1);
	before = v;
	s = seg(C_ISN + 1, v.peer[1].seqlo - 100000, 502, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_BAD_WINDOW);
	assert_memory_equal(&v, &before, sizeof(v));
}

static void test_tcp_ackskew_limits(void **unused)
{
	struct pfsync_state_value v, before;
	struct pfsync_tcp_seg s;

	(void)unused;
	tcp_handshake(&v, -1, -1); /* no scaling: limits are unshifted */
	before = v;
	/* exactly MAXACKWINDOW ahead of what was sent is tolerated */
	s = seg(C_ISN + 1, S_ISN + 1 + PFSYNC_MAXACKWINDOW, 1000, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_PASS);
	v = before;
	s = seg(C_ISN + 1, S_ISN + 1 + PFSYNC_MAXACKWINDOW + 1, 1000, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_BAD_WINDOW);
	/* acking far behind: more than MAXACKWINDOW back is refused */
	s = seg(C_ISN + 1, S_ISN + 1 - PFSYNC_MAXACKWINDOW, 1000, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_PASS);
	v = before;
	s = seg(C_ISN + 1, S_ISN + 1 - PFSYNC_MAXACKWINDOW - 1, 1000, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_BAD_WINDOW);
	assert_memory_equal(&v, &before, sizeof(v));
}

static void test_tcp_rst(void **unused)
{
	struct pfsync_state_value v, before;
	struct pfsync_tcp_seg s;

	(void)unused;
	tcp_handshake(&v, 7, 7);
	before = v;

	/* RST far from the expected sequence and not acking exactly: refused */
	s = seg(S_ISN + 1 + 3000, 0, 0, PFSYNC_TH_RST, 0);
	assert_int_equal(pfsync_tcp_track(&v, 0, &s, 0), PFSYNC_TCP_BAD_WINDOW);
	assert_memory_equal(&v, &before, sizeof(v));

	/* RST|ACK inside the window acking exactly the client's seqlo (the
	 * client sent no data, so that is still its ISN): accepted */
	s = seg(S_ISN + 1 - 3000, before.peer[0].seqlo, 0, FLAG_RA, 0);
	assert_int_equal(pfsync_tcp_track(&v, 0, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(v.peer[0].state, TCPS_TIME_WAIT);
	v = before;
	/* ... but not with an imperfect one */
	s = seg(S_ISN + 1 - 3000, before.peer[0].seqlo + 5, 0, FLAG_RA, 0);
	assert_int_equal(pfsync_tcp_track(&v, 0, &s, 0), PFSYNC_TCP_BAD_WINDOW);
	assert_memory_equal(&v, &before, sizeof(v));

	/* exact RST: both peers TIME_WAIT, tcp.closed */
	s = seg(S_ISN + 1, 0, 0, PFSYNC_TH_RST, 0);
	assert_int_equal(pfsync_tcp_track(&v, 0, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(v.peer[0].state, TCPS_TIME_WAIT);
	assert_int_equal(v.peer[1].state, TCPS_TIME_WAIT);
	assert_int_equal(v.timeout, PFTM_TCP_CLOSED);

	/* sloppy RST too */
	v = before;
	s = seg(12345, 0, 0, PFSYNC_TH_RST, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 1), PFSYNC_TCP_PASS);
	assert_int_equal(v.peer[0].state, TCPS_TIME_WAIT);
	assert_int_equal(v.peer[1].state, TCPS_TIME_WAIT);
	assert_int_equal(v.timeout, PFTM_TCP_CLOSED);
}

static void test_tcp_loose_shotgun_syn(void **unused)
{
	struct pfsync_state_value v, before;
	struct pfsync_tcp_seg s;

	(void)unused;
	memset(&v, 0, sizeof(v));
	s = syn_seg(C_ISN, 0, 1000, PFSYNC_TH_SYN, -1);
	pfsync_tcp_init(&v, &s);
	before = v;

	/* another SYN 30000 further on before the server answered: outside
	 * the strict window, but the peer is unseen so pf lets it through
	 * without refreshing the timeout class */
	s = syn_seg(C_ISN + 30000, 0, 1000, PFSYNC_TH_SYN, -1);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(v.peer[0].seqlo, C_ISN + 30001);
	assert_int_equal(v.timeout, PFTM_TCP_FIRST_PACKET);
	assert_int_equal(v.peer[1].state, TCPS_CLOSED);

	/* too far even for the loose check */
	v = before;
	s = syn_seg(C_ISN + 200000, 0, 1000, PFSYNC_TH_SYN, -1);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_BAD_WINDOW);
	assert_memory_equal(&v, &before, sizeof(v));
}

static void test_tcp_midstream_pickup(void **unused)
{
	struct pfsync_state_value v;
	struct pfsync_tcp_seg s;

	(void)unused;
	/* state created from a plain ACK (e.g. after a table flush) */
	memset(&v, 0, sizeof(v));
	s = seg(777777, 888888, 2000, PFSYNC_TH_ACK, 50);
	pfsync_tcp_init(&v, &s);
	assert_int_equal(v.peer[0].seqhi, 777777 + 51);
	assert_int_equal(v.peer[0].state, TCPS_SYN_SENT);
	/* the responder's first packet is learnt, and establishes the peers */
	s = seg(888888, 777777 + 50, 3000, PFSYNC_TH_ACK, 10);
	assert_int_equal(pfsync_tcp_track(&v, 0, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(v.peer[1].seqlo, 888888 + 10);
	assert_int_equal(v.peer[0].state, TCPS_ESTABLISHED);
	assert_int_equal(v.peer[1].state, TCPS_SYN_SENT);
	s = seg(777777 + 50, 888888 + 10, 2000, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 0), PFSYNC_TCP_PASS);
	assert_int_equal(v.peer[1].state, TCPS_ESTABLISHED);
	assert_int_equal(v.timeout, PFTM_TCP_ESTABLISHED);
}

static void test_tcp_sloppy_half_connection(void **unused)
{
	struct pfsync_state_value v;
	struct pfsync_tcp_seg s;

	(void)unused;
	/* only the client half is visible: SYN then ACK establishes both */
	memset(&v, 0, sizeof(v));
	s = syn_seg(C_ISN, 0, 1000, PFSYNC_TH_SYN, -1);
	pfsync_tcp_init(&v, &s);
	s = seg(C_ISN + 1, 424242, 1000, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 1), PFSYNC_TCP_PASS);
	assert_int_equal(v.peer[0].state, TCPS_ESTABLISHED);
	assert_int_equal(v.peer[1].state, TCPS_ESTABLISHED);
	assert_int_equal(v.timeout, PFTM_TCP_ESTABLISHED);

	/* a bare client FIN, then its ACK: the unseen half follows to CLOSING */
	s = seg(C_ISN + 1, 0, 1000, PFSYNC_TH_FIN, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 1), PFSYNC_TCP_PASS);
	assert_int_equal(v.peer[0].state, TCPS_CLOSING);
	assert_int_equal(v.peer[1].state, TCPS_ESTABLISHED);
	assert_int_equal(v.timeout, PFTM_TCP_CLOSING);
	s = seg(C_ISN + 2, 424243, 1000, PFSYNC_TH_ACK, 0);
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 1), PFSYNC_TCP_PASS);
	assert_int_equal(v.peer[1].state, TCPS_CLOSING);
	assert_int_equal(v.timeout, PFTM_TCP_FIN_WAIT);
	/* the next ACK counts as the ACK of the other side's FIN */
	assert_int_equal(pfsync_tcp_track(&v, 1, &s, 1), PFSYNC_TCP_PASS);
	assert_int_equal(v.peer[1].state, TCPS_FIN_WAIT_2);
	assert_int_equal(v.timeout, PFTM_TCP_FIN_WAIT);
	/* and the other side's ACK finishes it */
	assert_int_equal(pfsync_tcp_track(&v, 0, &s, 1), PFSYNC_TCP_PASS);
	assert_int_equal(v.peer[0].state, TCPS_FIN_WAIT_2);
	assert_int_equal(v.timeout, PFTM_TCP_CLOSED);
}

static void test_tcp_timeout_classes(void **unused)
{
	struct pfsync_peer a, b;

	(void)unused;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.state = TCPS_FIN_WAIT_2;
	b.state = TCPS_TIME_WAIT;
	assert_int_equal(pfsync_tcp_timeout_class(&a, &b), PFTM_TCP_CLOSED);
	a.state = TCPS_CLOSING;
	assert_int_equal(pfsync_tcp_timeout_class(&a, &b), PFTM_TCP_FIN_WAIT);
	a.state = TCPS_SYN_SENT;
	assert_int_equal(pfsync_tcp_timeout_class(&a, &b), PFTM_TCP_OPENING);
	a.state = TCPS_ESTABLISHED;
	assert_int_equal(pfsync_tcp_timeout_class(&a, &b), PFTM_TCP_CLOSING);
	b.state = TCPS_ESTABLISHED;
	assert_int_equal(pfsync_tcp_timeout_class(&a, &b), PFTM_TCP_ESTABLISHED);
}

/*
 * pfsync_tcp_track takes a shortcut for a plain ACK between ESTABLISHED
 * peers: it must give exactly pfsync_tcp_track_full's verdict and state,
 * checked on random segments and peers near and far from the windows.
 */
static __u32 rnd32(__u64 *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (__u32)(*x >> 11);
}

static void test_tcp_established_shortcut(void **unused)
{
	__u64 x = 0x9e3779b97f4a7c15ULL;
	int i, taken = 0, passed = 0;

	(void)unused;
	for (i = 0; i < 200000; i++) {
		struct pfsync_state_value a, b;
		struct pfsync_tcp_seg s;
		__u32 base = rnd32(&x);
		int k, from_init = rnd32(&x) & 1, ra, rb;

		memset(&a, 0, sizeof(a));
		for (k = 0; k < 2; k++) {
			struct pfsync_peer *p = &a.peer[k];

			p->seqlo = base + rnd32(&x) % 200000 - 100000;
			p->seqhi = base + rnd32(&x) % 400000 - 100000;
			p->max_win = (__u16)rnd32(&x);
			p->state = TCPS_ESTABLISHED;
			p->wscale = rnd32(&x) % 3 ? (__u8)(PF_WSCALE_FLAG | rnd32(&x) % 15) : 0;
		}
		a.timeout = PFTM_TCP_ESTABLISHED;
		s = seg(base + rnd32(&x) % 300000 - 150000, base + rnd32(&x) % 300000 - 150000,
			(__u16)rnd32(&x), PFSYNC_TH_ACK | (rnd32(&x) & PFSYNC_TH_PSH),
			rnd32(&x) % 3 ? 0 : rnd32(&x) % 3000);
		if (!pfsync_tcp_is_plain_est(from_init ? &a.peer[0] : &a.peer[1],
					     from_init ? &a.peer[1] : &a.peer[0], &s))
			continue;
		b = a;
		ra = pfsync_tcp_track(&a, from_init, &s, 0);
		rb = pfsync_tcp_track_full(&b, from_init ? &b.peer[0] : &b.peer[1],
					   from_init ? &b.peer[1] : &b.peer[0], &s);
		assert_int_equal(ra, rb);
		assert_memory_equal(&a, &b, sizeof(a));
		taken++;
		passed += ra == PFSYNC_TCP_PASS;
	}
	/* both outcomes were exercised */
	assert_true(passed > 1000);
	assert_true(taken - passed > 1000);
}

/* ---- UDP / other / ICMP ------------------------------------------------- */

static void check_single_multiple(__u8 proto, __u8 first, __u8 single, __u8 multiple)
{
	struct pfsync_state_value v;

	memset(&v, 0xa5, sizeof(v)); /* init must not depend on zeroed memory */
	pfsync_other_init(&v, proto);
	assert_int_equal(v.peer[0].state, PFUDPS_SINGLE);
	assert_int_equal(v.peer[1].state, PFUDPS_NO_TRAFFIC);
	assert_int_equal(v.peer[0].seqlo, 0);
	assert_int_equal(v.timeout, first);

	/* the initiator again: nothing new learnt about the responder */
	pfsync_other_track(&v, proto, 1);
	assert_int_equal(v.peer[0].state, PFUDPS_SINGLE);
	assert_int_equal(v.peer[1].state, PFUDPS_NO_TRAFFIC);
	assert_int_equal(v.timeout, single);

	/* the responder answers: it is SINGLE, the initiator MULTIPLE */
	pfsync_other_track(&v, proto, 0);
	assert_int_equal(v.peer[1].state, PFUDPS_SINGLE);
	assert_int_equal(v.peer[0].state, PFUDPS_MULTIPLE);
	assert_int_equal(v.timeout, single);

	/* the initiator once more: both MULTIPLE */
	pfsync_other_track(&v, proto, 1);
	assert_int_equal(v.peer[1].state, PFUDPS_MULTIPLE);
	assert_int_equal(v.timeout, multiple);
	pfsync_other_track(&v, proto, 0);
	assert_int_equal(v.peer[0].state, PFUDPS_MULTIPLE);
	assert_int_equal(v.peer[1].state, PFUDPS_MULTIPLE);
	assert_int_equal(v.timeout, multiple);
}

static void test_udp_levels(void **unused)
{
	(void)unused;
	check_single_multiple(PFSYNC_IPPROTO_UDP, PFTM_UDP_FIRST_PACKET, PFTM_UDP_SINGLE,
			      PFTM_UDP_MULTIPLE);
}

static void test_other_levels(void **unused)
{
	(void)unused;
	check_single_multiple(47 /* GRE */, PFTM_OTHER_FIRST_PACKET, PFTM_OTHER_SINGLE,
			      PFTM_OTHER_MULTIPLE);
	check_single_multiple(132 /* SCTP */, PFTM_OTHER_FIRST_PACKET, PFTM_OTHER_SINGLE,
			      PFTM_OTHER_MULTIPLE);
}

static void test_icmp_levels(void **unused)
{
	struct pfsync_state_value v;
	__u8 protos[2] = {PFSYNC_IPPROTO_ICMP, PFSYNC_IPPROTO_ICMPV6};
	unsigned int i;

	(void)unused;
	for (i = 0; i < 2; i++) {
		memset(&v, 0x5a, sizeof(v));
		pfsync_other_init(&v, protos[i]);
		assert_int_equal(v.timeout, PFTM_ICMP_FIRST_PACKET);
		assert_int_equal(v.peer[0].state, 0);
		assert_int_equal(v.peer[1].state, 0);
		/* pf_test_state_icmp: every later query/reply, either way */
		pfsync_other_track(&v, protos[i], 0);
		assert_int_equal(v.timeout, PFTM_ICMP_ERROR_REPLY);
		pfsync_other_track(&v, protos[i], 1);
		assert_int_equal(v.timeout, PFTM_ICMP_ERROR_REPLY);
		assert_int_equal(v.peer[0].state, 0);
		assert_int_equal(v.peer[1].state, 0);
	}
}

/* ---- rules -------------------------------------------------------------- */

static struct pfsync_rule any_rule(void)
{
	struct pfsync_rule r;

	memset(&r, 0, sizeof(r));
	r.action = PFSYNC_RULE_PASS;
	r.dir = PF_INOUT;
	return r;
}

static struct pfsync_rule_pkt tcp_pkt4(const char *src, __u16 sport, const char *dst, __u16 dport)
{
	struct pfsync_rule_pkt p;

	memset(&p, 0, sizeof(p));
	ip4(p.saddr, src);
	ip4(p.daddr, dst);
	p.sport = htons(sport);
	p.dport = htons(dport);
	p.ifindex = 3;
	p.proto = PFSYNC_IPPROTO_TCP;
	p.af = PFSYNC_AF_INET;
	p.dir = PF_IN;
	p.has_ports = 1;
	return p;
}

static void rule_net4(__u32 *addr, __u32 *mask, __u8 *plen, const char *net, unsigned int bits)
{
	ip4(addr, net);
	prefix_mask(mask, bits);
	addr[0] &= mask[0];
	*plen = (__u8)bits;
}

static void test_rule_any_matches_everything(void **unused)
{
	struct pfsync_rule r = any_rule();
	struct pfsync_rule_pkt p = tcp_pkt4("10.0.0.1", 1234, "10.0.0.2", 80);

	(void)unused;
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
	p.dir = PF_OUT;
	p.has_ports = 0;
	p.proto = 47;
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
	memset(&p, 0, sizeof(p));
	p.af = PFSYNC_AF_INET6;
	ip6(p.saddr, "2001:db8::1");
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
}

static void test_rule_dir_if_af_proto(void **unused)
{
	struct pfsync_rule r;
	struct pfsync_rule_pkt p = tcp_pkt4("10.0.0.1", 1234, "10.0.0.2", 80);

	(void)unused;
	r = any_rule();
	r.dir = PF_IN;
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
	r.dir = PF_OUT;
	assert_int_equal(pfsync_rule_match(&r, &p), 0);

	r = any_rule();
	r.ifindex = 3;
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
	r.ifindex = 4;
	assert_int_equal(pfsync_rule_match(&r, &p), 0);

	r = any_rule();
	r.af = PFSYNC_AF_INET;
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
	r.af = PFSYNC_AF_INET6;
	assert_int_equal(pfsync_rule_match(&r, &p), 0);

	r = any_rule();
	r.proto = PFSYNC_IPPROTO_UDP; /* ignored without PFSYNC_RF_PROTO */
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
	r.rflags |= PFSYNC_RF_PROTO;
	assert_int_equal(pfsync_rule_match(&r, &p), 0);
	r.proto = PFSYNC_IPPROTO_TCP;
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
}

static void test_rule_addresses(void **unused)
{
	struct pfsync_rule r;
	struct pfsync_rule_pkt p = tcp_pkt4("192.168.7.20", 1234, "10.1.2.3", 80);
	struct pfsync_rule_pkt p6;

	(void)unused;
	r = any_rule();
	r.af = PFSYNC_AF_INET;
	rule_net4(r.src_addr, r.src_mask, &r.src_plen, "192.168.7.0", 24);
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
	rule_net4(r.src_addr, r.src_mask, &r.src_plen, "192.168.6.0", 24);
	assert_int_equal(pfsync_rule_match(&r, &p), 0);
	rule_net4(r.src_addr, r.src_mask, &r.src_plen, "192.168.6.0", 23);
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
	rule_net4(r.src_addr, r.src_mask, &r.src_plen, "192.168.7.20", 32);
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
	rule_net4(r.src_addr, r.src_mask, &r.src_plen, "192.168.7.21", 32);
	assert_int_equal(pfsync_rule_match(&r, &p), 0);

	r = any_rule();
	rule_net4(r.dst_addr, r.dst_mask, &r.dst_plen, "10.0.0.0", 8);
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
	rule_net4(r.dst_addr, r.dst_mask, &r.dst_plen, "11.0.0.0", 8);
	assert_int_equal(pfsync_rule_match(&r, &p), 0);
	/* source and destination are not interchangeable */
	r = any_rule();
	rule_net4(r.src_addr, r.src_mask, &r.src_plen, "10.0.0.0", 8);
	assert_int_equal(pfsync_rule_match(&r, &p), 0);

	/* IPv6 /64 */
	memset(&p6, 0, sizeof(p6));
	p6.af = PFSYNC_AF_INET6;
	p6.proto = PFSYNC_IPPROTO_UDP;
	p6.dir = PF_OUT;
	ip6(p6.saddr, "2001:db8:0:1::55");
	ip6(p6.daddr, "2001:db8:0:2::1");
	r = any_rule();
	r.af = PFSYNC_AF_INET6;
	ip6(r.dst_addr, "2001:db8:0:2::");
	prefix_mask(r.dst_mask, 64);
	r.dst_plen = 64;
	assert_int_equal(pfsync_rule_match(&r, &p6), 1);
	ip6(r.dst_addr, "2001:db8:0:3::");
	assert_int_equal(pfsync_rule_match(&r, &p6), 0);
	/* an IPv4 rule never matches the IPv6 packet */
	r = any_rule();
	r.af = PFSYNC_AF_INET;
	assert_int_equal(pfsync_rule_match(&r, &p6), 0);
}

static void test_rule_ports_and_fragments(void **unused)
{
	struct pfsync_rule r;
	struct pfsync_rule_pkt p = tcp_pkt4("10.0.0.1", 1234, "10.0.0.2", 22);

	(void)unused;
	r = any_rule();
	r.rflags = PFSYNC_RF_DST_PORT;
	r.dst_port = htons(22);
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
	r.dst_port = htons(23);
	assert_int_equal(pfsync_rule_match(&r, &p), 0);

	r = any_rule();
	r.rflags = PFSYNC_RF_SRC_PORT;
	r.src_port = htons(1234);
	assert_int_equal(pfsync_rule_match(&r, &p), 1);
	r.src_port = htons(22); /* the destination port is not the source */
	assert_int_equal(pfsync_rule_match(&r, &p), 0);

	r = any_rule();
	r.rflags = PFSYNC_RF_SRC_PORT | PFSYNC_RF_DST_PORT;
	r.src_port = htons(1234);
	r.dst_port = htons(22);
	assert_int_equal(pfsync_rule_match(&r, &p), 1);

	/* UDP too */
	p.proto = PFSYNC_IPPROTO_UDP;
	assert_int_equal(pfsync_rule_match(&r, &p), 1);

	/* a later fragment has no ports: a port rule never matches it ... */
	p.has_ports = 0;
	assert_int_equal(pfsync_rule_match(&r, &p), 0);
	/* ... while a rule without ports does */
	r.rflags = 0;
	assert_int_equal(pfsync_rule_match(&r, &p), 1);

	/* ports mean nothing for other protocols */
	p.has_ports = 1;
	p.proto = PFSYNC_IPPROTO_ICMP;
	r.rflags = PFSYNC_RF_DST_PORT;
	r.dst_port = p.dport;
	assert_int_equal(pfsync_rule_match(&r, &p), 0);
}

/* Runs pf's evaluation over a ruleset the way the datapath loop does. */
static __s32 evaluate(const struct pfsync_rule *rules, __u32 n, const struct pfsync_rule_pkt *p)
{
	__s32 match = -1;
	__u32 i;

	for (i = 0; i < n; i++)
		if (pfsync_rule_step(&rules[i], i, p, &match))
			break;
	return match;
}

static void test_rule_last_match_and_quick(void **unused)
{
	struct pfsync_rule rules[4];
	struct pfsync_rule_pkt ssh = tcp_pkt4("10.0.0.1", 1234, "10.0.0.2", 22);
	struct pfsync_rule_pkt web = tcp_pkt4("10.0.0.1", 1234, "10.0.0.2", 80);
	struct pfsync_rule_pkt dns = tcp_pkt4("10.0.0.1", 1234, "10.0.0.2", 53);
	__s32 match = -1;

	(void)unused;
	/* 0: block all; 1: pass tcp port 80; 2: pass quick port 22; 3: block port 22 */
	rules[0] = any_rule();
	rules[0].action = PFSYNC_RULE_BLOCK;
	rules[1] = any_rule();
	rules[1].rflags = PFSYNC_RF_PROTO | PFSYNC_RF_DST_PORT;
	rules[1].proto = PFSYNC_IPPROTO_TCP;
	rules[1].dst_port = htons(80);
	rules[2] = any_rule();
	rules[2].rflags = PFSYNC_RF_QUICK | PFSYNC_RF_DST_PORT;
	rules[2].dst_port = htons(22);
	rules[3] = any_rule();
	rules[3].action = PFSYNC_RULE_BLOCK;
	rules[3].rflags = PFSYNC_RF_DST_PORT;
	rules[3].dst_port = htons(22);

	assert_int_equal(evaluate(rules, 4, &web), 1); /* last match wins */
	assert_int_equal(evaluate(rules, 4, &ssh), 2); /* quick stops before 3 */
	assert_int_equal(evaluate(rules, 4, &dns), 0);
	/* without the quick flag the later block wins */
	rules[2].rflags &= ~PFSYNC_RF_QUICK;
	assert_int_equal(evaluate(rules, 4, &ssh), 3);
	/* nothing matches: -1 (default pass) */
	assert_int_equal(evaluate(&rules[1], 1, &dns), -1);

	/* step semantics: returns 1 only for a matching quick rule */
	rules[2].rflags |= PFSYNC_RF_QUICK;
	assert_int_equal(pfsync_rule_step(&rules[2], 7, &web, &match), 0);
	assert_int_equal(match, -1);
	assert_int_equal(pfsync_rule_step(&rules[1], 5, &web, &match), 0);
	assert_int_equal(match, 5);
	assert_int_equal(pfsync_rule_step(&rules[2], 9, &ssh, &match), 1);
	assert_int_equal(match, 9);
}

/* match rules decide nothing; their nat applies unless the decider has its own */
static void test_rule_match_and_nat_source(void **unused)
{
	struct pfsync_rule rules[3];
	struct pfsync_rule_pkt web = tcp_pkt4("10.0.0.1", 1234, "10.0.0.2", 80);
	__s32 match = -1, nat = -1;
	__u32 i;

	(void)unused;
	rules[0] = any_rule(); /* match nat-to */
	rules[0].action = PFSYNC_RULE_MATCH;
	rules[0].nat.type = PFSYNC_NAT_NAT;
	rules[1] = any_rule(); /* pass */
	rules[2] = any_rule(); /* match without nat */
	rules[2].action = PFSYNC_RULE_MATCH;
	for (i = 0; i < 3; i++)
		assert_int_equal(pfsync_rule_step_nat(&rules[i], i, &web, &match, &nat), 0);
	assert_int_equal(match, 1); /* the match rules never decide */
	assert_int_equal(nat, 0);
	assert_int_equal(pfsync_rule_nat_source(&rules[1], match, nat), 0);
	/* the deciding rule's own translation wins */
	rules[1].nat.type = PFSYNC_NAT_NAT;
	assert_int_equal(pfsync_rule_nat_source(&rules[1], match, nat), 1);
	/* a block translates nothing */
	rules[1].action = PFSYNC_RULE_BLOCK;
	assert_int_equal(pfsync_rule_nat_source(&rules[1], match, nat), -1);
	/* no deciding rule: the match rule's still applies; none at all: -1 */
	assert_int_equal(pfsync_rule_nat_source(NULL, -1, nat), 0);
	assert_int_equal(pfsync_rule_nat_source(NULL, -1, -1), -1);
	/* plain evaluation: a lone match rule leaves the default */
	assert_int_equal(evaluate(rules, 1, &web), -1);
}

static void test_nat_port_ranges(void **unused)
{
	struct pfsync_rule_nat n = {0};
	struct pfsync_nat_ports r, a, b;

	(void)unused;
	pfsync_nat_port_range(&n, 1234, 7, 1, &r);
	assert_int_equal(r.low, 50001);
	assert_int_equal(r.count, 15535);
	/* two parts: hostids of different parity get disjoint slices covering all */
	pfsync_nat_port_range(&n, 1234, 6, 2, &a);
	pfsync_nat_port_range(&n, 1234, 7, 2, &b);
	assert_int_equal(a.low, 50001);
	assert_int_equal(a.count, 7767);
	assert_int_equal(b.low, 50001 + 7767);
	assert_int_equal(b.low + b.count - 1, 65535);
	/* wrap-around inside the part, never outside */
	assert_int_equal(pfsync_nat_port_candidate(&a, 7766, 0), 50001 + 7766);
	assert_int_equal(pfsync_nat_port_candidate(&a, 7766, 1), 50001);
	/* the rule's range, and one too small to cut */
	n.nflags = PFSYNC_NATF_PORT;
	n.port_low = 2000;
	n.port_high = 2000;
	pfsync_nat_port_range(&n, 1234, 7, 2, &r);
	assert_int_equal(r.low, 2000);
	assert_int_equal(r.count, 1);
	/* static-port: the original port only */
	n.nflags = PFSYNC_NATF_STATIC_PORT;
	pfsync_nat_port_range(&n, 1234, 7, 2, &r);
	assert_int_equal(r.low, 1234);
	assert_int_equal(r.count, 1);
	assert_int_equal(pfsync_nat_port_candidate(&r, 99, 5), 1234);
}

/*
 * Two CPUs raising one window edge at once (packets of one direction on
 * two CPUs): after a thread's raise the edge is at or past its value, no
 * thread ever sees it move back, and the last edge is the highest raised. A
 * plain test-and-write breaks this when the threads overlap (a lower value
 * written over a higher one). The threads take their edges from one
 * counter, so both raise current edges and overlap all the time: the old
 * code failed each of six runs here (57 to 401 moves back), the
 * compare-and-swap holds in every run.
 */
#define RAISE_ROUNDS 4000000u

struct raise_race {
	__u32 seqhi, seqlo;
	__u32 ticket;		   /* the next edge, shared: both threads raise current edges */
	unsigned long long behind; /* raises after which the edge was below the value */
};

static struct raise_race race;

/* 1 if the edge seen now is below one seen before by this thread (it moved back) */
static int moved_back(const __u32 *edge, __u32 *seen)
{
	__u32 now = __atomic_load_n(edge, __ATOMIC_RELAXED);

	if (!pfsync_seq_geq(now, *seen))
		return 1;
	*seen = now;
	return 0;
}

static void *raise_worker(void *arg)
{
	unsigned long long behind = 0;
	__u32 base = 0xfff00000u; /* wraps during the run: modular order counts */
	__u32 seen_hi = race.seqhi, seen_lo = race.seqlo;

	(void)arg;
	for (__u32 i = 0; i < RAISE_ROUNDS; i++) {
		__u32 edge = base + __atomic_fetch_add(&race.ticket, 1, __ATOMIC_RELAXED) * 1448u;

		pfsync_seqhi_raise(&race.seqhi, edge, edge + 1);
		behind += !pfsync_seq_geq(__atomic_load_n(&race.seqhi, __ATOMIC_RELAXED), edge + 1);
		behind += moved_back(&race.seqhi, &seen_hi);
		pfsync_seqlo_raise(&race.seqlo, edge);
		behind += !pfsync_seq_geq(__atomic_load_n(&race.seqlo, __ATOMIC_RELAXED), edge);
		behind += moved_back(&race.seqlo, &seen_lo);
	}
	__atomic_fetch_add(&race.behind, behind, __ATOMIC_RELAXED);
	return NULL;
}

static void test_edges_raised_from_two_cpus(void **unused)
{
	pthread_t t[2];
	__u32 last = 0xfff00000u + (2 * RAISE_ROUNDS - 1) * 1448u;

	(void)unused;
	race.seqhi = race.seqlo = 0xfff00000u - 1;
	race.behind = 0;
	race.ticket = 0;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, raise_worker, NULL), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(race.behind, 0);
	assert_int_equal(race.seqhi, last + 1);
	assert_int_equal(race.seqlo, last);
}

/* the raises keep pf's tests: seqhi at an equal edge, seqlo only past it */
static void test_edge_raise_conditions(void **unused)
{
	__u32 hi = 1000, lo = 1000;

	(void)unused;
	pfsync_seqhi_raise(&hi, 999, 5000); /* edge behind: unchanged */
	assert_int_equal(hi, 1000);
	pfsync_seqhi_raise(&hi, 1000, 1001); /* edge at seqhi: raised (a zero window) */
	assert_int_equal(hi, 1001);
	pfsync_seqlo_raise(&lo, 1000); /* not past: unchanged */
	assert_int_equal(lo, 1000);
	pfsync_seqlo_raise(&lo, 1001);
	assert_int_equal(lo, 1001);
	pfsync_seqlo_raise(&lo, 0x80000000u + 1002); /* behind in modular order */
	assert_int_equal(lo, 1001);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_edges_raised_from_two_cpus),
	    cmocka_unit_test(test_edge_raise_conditions),
	    cmocka_unit_test(test_timeout_defaults),
	    cmocka_unit_test(test_timeout_cfg_override),
	    cmocka_unit_test(test_expires_basic),
	    cmocka_unit_test(test_expires_adaptive_defaults),
	    cmocka_unit_test(test_expires_adaptive_cfg),
	    cmocka_unit_test(test_expires_adaptive_table_size),
	    cmocka_unit_test(test_key_normalize_ipv4),
	    cmocka_unit_test(test_key_normalize_ipv6),
	    cmocka_unit_test(test_tcp_full_lifecycle),
	    cmocka_unit_test(test_tcp_repeated_syn_keeps_scaled_window),
	    cmocka_unit_test(test_tcp_wscale_needs_both),
	    cmocka_unit_test(test_tcp_scaled_window_accepts_large_data),
	    cmocka_unit_test(test_tcp_out_of_window_unchanged),
	    cmocka_unit_test(test_tcp_ackskew_limits),
	    cmocka_unit_test(test_tcp_ackskew_scaled),
	    cmocka_unit_test(test_tcp_rst),
	    cmocka_unit_test(test_tcp_loose_shotgun_syn),
	    cmocka_unit_test(test_tcp_midstream_pickup),
	    cmocka_unit_test(test_tcp_sloppy_half_connection),
	    cmocka_unit_test(test_tcp_timeout_classes),
	    cmocka_unit_test(test_tcp_established_shortcut),
	    cmocka_unit_test(test_udp_levels),
	    cmocka_unit_test(test_other_levels),
	    cmocka_unit_test(test_icmp_levels),
	    cmocka_unit_test(test_rule_any_matches_everything),
	    cmocka_unit_test(test_rule_dir_if_af_proto),
	    cmocka_unit_test(test_rule_addresses),
	    cmocka_unit_test(test_rule_ports_and_fragments),
	    cmocka_unit_test(test_rule_last_match_and_quick),
	    cmocka_unit_test(test_rule_match_and_nat_source),
	    cmocka_unit_test(test_nat_port_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
