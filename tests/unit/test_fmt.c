/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * lib/pfsync_fmt: states printed as pfctl -ss -vv does (arrow and peer order
 * by direction, IPv6 ports in brackets, age/expiry from a fixed clock) and
 * as JSON.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "pfsync_fmt.h"
#include "pfsync_logic.h"

#define NS(sec) ((__u64)(sec)*PFSYNC_NSEC_PER_SEC)
#define T0	NS(100000) /* the fake clock's "now" */

struct fixture {
	struct pfsync_key k;
	struct pfsync_state_value v;
	struct pfsync_config cfg;
	struct pfsync_fmt_ctx ctx;
};

static void set_addr(struct pfsync_key *k, int side, const char *text, __u16 port)
{
	int family = k->af == PFSYNC_AF_INET6 ? AF_INET6 : AF_INET;

	assert_int_equal(inet_pton(family, text, k->addr[side]), 1);
	k->port[side] = htons(port);
}

static void fixture_init(struct fixture *fx, __u8 af, __u8 proto)
{
	memset(fx, 0, sizeof(*fx));
	fx->k.af = af;
	fx->k.proto = proto;
	fx->v.rule = 0xffffffffU;
	fx->ctx.now_ns = T0;
	fx->ctx.cfg = &fx->cfg;
}

/* Runs one of the printers into a string the caller frees. */
static char *render(const struct fixture *fx, int json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	if (json)
		pfsync_fmt_state_json(f, &fx->k, &fx->v, &fx->ctx);
	else
		pfsync_fmt_state(f, &fx->k, &fx->v, &fx->ctx);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void assert_render(const struct fixture *fx, int json, const char *want)
{
	char *got = render(fx, json);

	if (strcmp(got, want))
		fail_msg("got:\n%s\nwant:\n%s", got, want);
	free(got);
}

static void assert_render_has(const struct fixture *fx, int json, const char *part)
{
	char *got = render(fx, json);

	if (!strstr(got, part))
		fail_msg("\"%s\" not in:\n%s", part, got);
	free(got);
}

/* 10.0.1.10:45678 connected in to 10.0.2.10:80, established. */
static void tcp_in(struct fixture *fx)
{
	fixture_init(fx, PFSYNC_AF_INET, PFSYNC_IPPROTO_TCP);
	set_addr(&fx->k, 0, "10.0.1.10", 45678);
	set_addr(&fx->k, 1, "10.0.2.10", 80);
	fx->v.init_side = 0;
	fx->v.direction = PF_IN;
	fx->v.id = 0x6578a1c000000001ULL;
	fx->v.creatorid = 0x1234abcd;
	fx->v.rule = 0;
	fx->v.creation = T0 - NS(62);
	fx->v.last_seen = T0 - NS(62);
	fx->v.packets[0] = 10;
	fx->v.packets[1] = 5;
	fx->v.bytes[0] = 1000;
	fx->v.bytes[1] = 500;
	fx->v.timeout = PFTM_TCP_ESTABLISHED;
	fx->v.peer[0] = (struct pfsync_peer){.seqlo = 1000,
					     .seqhi = 1000 + 64240,
					     .max_win = 502,
					     .state = TCPS_ESTABLISHED,
					     .wscale = PF_WSCALE_FLAG | 7};
	fx->v.peer[1] = (struct pfsync_peer){.seqlo = 2000,
					     .seqhi = 2000 + 65160,
					     .max_win = 509,
					     .state = TCPS_ESTABLISHED,
					     .wscale = PF_WSCALE_FLAG | 7};
}

static void test_tcp_ipv4_in(void **state)
{
	struct fixture fx;

	(void)state;
	tcp_in(&fx);
	/* direction in: responder <- initiator, peers responder:initiator */
	assert_render(&fx, 0,
		      "all tcp 10.0.2.10:80 <- 10.0.1.10:45678       ESTABLISHED:ESTABLISHED\n"
		      "   [2000 + 65160] wscale 7  [1000 + 64240] wscale 7\n"
		      "   age 00:01:02, expires in 23:58:58, 10:5 pkts, 1000:500 bytes, rule 0\n"
		      "   id: 6578a1c000000001 creatorid: 1234abcd\n");
}

static void test_tcp_ipv4_out_initiator_on_side1(void **state)
{
	struct fixture fx;

	(void)state;
	fixture_init(&fx, PFSYNC_AF_INET, PFSYNC_IPPROTO_TCP);
	set_addr(&fx.k, 0, "10.0.0.5", 443);
	set_addr(&fx.k, 1, "10.0.9.9", 50000);
	fx.v.init_side = 1;
	fx.v.direction = PF_OUT;
	fx.v.id = 0x42;
	fx.v.creatorid = 7;
	fx.v.creation = T0 - NS(5);
	fx.v.last_seen = T0 - NS(5);
	fx.v.packets[0] = 1;
	fx.v.bytes[0] = 60;
	fx.v.timeout = PFTM_TCP_FIRST_PACKET;
	fx.v.peer[0] = (struct pfsync_peer){
	    .seqlo = 100, .seqhi = 101, .state = TCPS_SYN_SENT, .wscale = PF_WSCALE_FLAG | 2};
	fx.v.peer[1] = (struct pfsync_peer){.seqlo = 0, .seqhi = 1, .state = TCPS_CLOSED};
	/* direction out: initiator -> responder; wscale only when both sides have it; no rule */
	assert_render(&fx, 0,
		      "all tcp 10.0.9.9:50000 -> 10.0.0.5:443       SYN_SENT:CLOSED\n"
		      "   [100 + 1]  [0 + 1]\n"
		      "   age 00:00:05, expires in 00:01:55, 1:0 pkts, 60:0 bytes\n"
		      "   id: 0000000000000042 creatorid: 00000007\n");
}

static void test_tcp_configured_and_adaptive_timeouts(void **state)
{
	struct fixture fx;

	(void)state;
	tcp_in(&fx);
	fx.v.last_seen = T0;
	fx.cfg.timeouts[PFTM_TCP_ESTABLISHED] = 7200;
	assert_render_has(&fx, 0, "expires in 02:00:00,");
	/* set limit states 1000: scaling from 600 to 1200 states, 900 states = half */
	fx.cfg.state_limit = 1000;
	fx.ctx.states_count = 900;
	assert_render_has(&fx, 0, "expires in 01:00:00,");
	fx.ctx.states_count = 1200;
	assert_render_has(&fx, 0, "expires in 00:00:00,");
}

static void test_tcp_state_names_and_bad_levels(void **state)
{
	struct fixture fx;

	(void)state;
	tcp_in(&fx);
	fx.v.peer[0].state = TCPS_FIN_WAIT_2;
	fx.v.peer[1].state = TCPS_TIME_WAIT;
	assert_render_has(&fx, 0, "       TIME_WAIT:FIN_WAIT_2\n");
	fx.v.peer[0].state = TCPS_SYN_RECEIVED;
	fx.v.peer[1].state = TCPS_CLOSE_WAIT;
	assert_render_has(&fx, 0, "       CLOSE_WAIT:SYN_RCVD\n");
	fx.v.peer[1].state = 99;
	assert_render_has(&fx, 0, "   <BAD STATE LEVELS 99:3>\n");
	assert_string_equal(pfsync_fmt_peer_state(6, TCPS_LAST_ACK), "LAST_ACK");
	assert_null(pfsync_fmt_peer_state(6, 11));
}

static void udp6(struct fixture *fx)
{
	fixture_init(fx, PFSYNC_AF_INET6, PFSYNC_IPPROTO_UDP);
	set_addr(&fx->k, 0, "2001:db8::1", 5353);
	set_addr(&fx->k, 1, "2001:db8::2", 53);
	fx->v.init_side = 0;
	fx->v.direction = PF_IN;
	fx->v.id = 0xabcdef0123456789ULL;
	fx->v.creatorid = 0xdeadbeef;
	fx->v.rule = 3;
	fx->v.creation = T0 - NS(3700);
	fx->v.last_seen = T0 - NS(40);
	fx->v.packets[0] = 4;
	fx->v.packets[1] = 2;
	fx->v.bytes[0] = 400;
	fx->v.bytes[1] = 300;
	fx->v.timeout = PFTM_UDP_MULTIPLE;
	fx->v.ifindex = 3;
	fx->v.peer[0].state = PFUDPS_MULTIPLE;
	fx->v.peer[1].state = PFUDPS_SINGLE;
	fx->cfg.timeouts[PFTM_UDP_MULTIPLE] = 100;
}

static void test_udp_ipv6(void **state)
{
	struct fixture fx;

	(void)state;
	udp6(&fx);
	/* pf prints IPv6 ports as addr[port]; no window line for UDP */
	assert_render(&fx, 0,
		      "all udp 2001:db8::2[53] <- 2001:db8::1[5353]       SINGLE:MULTIPLE\n"
		      "   age 01:01:40, expires in 00:01:00, 4:2 pkts, 400:300 bytes, rule 3\n"
		      "   id: abcdef0123456789 creatorid: deadbeef\n");
}

static void test_udp_ipv6_json(void **state)
{
	struct fixture fx;

	(void)state;
	udp6(&fx);
	fx.v.flags = PFSYNC_SF_FROM_PEER | PFSYNC_SF_QUEUED;
	fx.v.state_flags = PFSTATE_SLOPPY;
	assert_render(
	    &fx, 1,
	    "{\"id\":\"abcdef0123456789\",\"creatorid\":\"deadbeef\",\"af\":\"inet6\","
	    "\"proto\":17,\"proto_name\":\"udp\",\"direction\":\"in\",\"ifindex\":3,"
	    "\"init_side\":0,\"initiator\":{\"addr\":\"2001:db8::1\",\"port\":5353},"
	    "\"responder\":{\"addr\":\"2001:db8::2\",\"port\":53},"
	    "\"key\":[{\"addr\":\"2001:db8::1\",\"port\":5353},{\"addr\":\"2001:db8::2\","
	    "\"port\":53}],\"wire_key\":{\"initiator\":{\"addr\":\"2001:db8::1\",\"port\":5353},"
	    "\"responder\":{\"addr\":\"2001:db8::2\",\"port\":53}},"
	    "\"stack_key\":{\"initiator\":{\"addr\":\"2001:db8::1\",\"port\":5353},"
	    "\"responder\":{\"addr\":\"2001:db8::2\",\"port\":53}},\"nat\":\"none\","
	    "\"rdomain\":0,\"peers\":[{\"state\":2,\"state_name\":\"MULTIPLE\","
	    "\"seqlo\":0,\"seqhi\":0,\"seqdiff\":0,\"max_win\":0,\"mss\":0,\"wscale\":0},"
	    "{\"state\":1,\"state_name\":\"SINGLE\",\"seqlo\":0,\"seqhi\":0,\"seqdiff\":0,"
	    "\"max_win\":0,\"mss\":0,\"wscale\":0}],\"packets\":[4,2],\"bytes\":[400,300],"
	    "\"age\":3700,\"expires_in\":60,\"creation_ns\":96300000000000,"
	    "\"last_seen_ns\":99960000000000,\"rule\":3,\"timeout\":8,"
	    "\"timeout_name\":\"udp.multiple\",\"state_flags\":2,\"sloppy\":true,"
	    "\"no_sync\":false,\"flags\":6,\"from_peer\":true,\"queued\":true,"
	    "\"deferred\":false,\"updates\":0}");
}

/*
 * nat-to (issue 15): 10.0.0.5:1234 -> 203.0.113.9:443 leaves as
 * 198.51.100.1:50123. The wire key is the map key; the stack key sits in
 * the value, normalised on its own (here the initiator is its side 0).
 */
static void nat_out(struct fixture *fx)
{
	tcp_in(fx);
	fx->v.direction = PF_OUT;
	set_addr(&fx->k, 0, "198.51.100.1", 50123);
	set_addr(&fx->k, 1, "203.0.113.9", 443);
	fx->v.init_side = 0;
	fx->v.nat.type = PFSYNC_NAT_NAT;
	fx->v.nat.stack_key.af = PFSYNC_AF_INET;
	fx->v.nat.stack_key.proto = PFSYNC_IPPROTO_TCP;
	set_addr(&fx->v.nat.stack_key, 0, "10.0.0.5", 1234);
	set_addr(&fx->v.nat.stack_key, 1, "203.0.113.9", 443);
	fx->v.nat.stack_init_side = 0;
}

static void test_nat_to_prints_both_keys(void **state)
{
	struct fixture fx;

	(void)state;
	nat_out(&fx);
	assert_render_has(&fx, 0,
			  "all tcp 10.0.0.5:1234 (198.51.100.1:50123) -> 203.0.113.9:443    ");
	assert_render_has(&fx, 1,
			  "\"wire_key\":{\"initiator\":{\"addr\":\"198.51.100.1\",\"port\":50123},"
			  "\"responder\":{\"addr\":\"203.0.113.9\",\"port\":443}},"
			  "\"stack_key\":{\"initiator\":{\"addr\":\"10.0.0.5\",\"port\":1234},"
			  "\"responder\":{\"addr\":\"203.0.113.9\",\"port\":443}},\"nat\":\"nat\"");
}

/* rdr-to: 192.0.2.7:40000 -> 198.51.100.1:80 goes in to 10.0.0.10:8080 */
static void test_rdr_to_prints_both_keys(void **state)
{
	struct fixture fx;

	(void)state;
	tcp_in(&fx);
	set_addr(&fx.k, 0, "192.0.2.7", 40000);
	set_addr(&fx.k, 1, "198.51.100.1", 80);
	fx.v.nat.type = PFSYNC_NAT_RDR;
	fx.v.nat.stack_key.af = PFSYNC_AF_INET;
	fx.v.nat.stack_key.proto = PFSYNC_IPPROTO_TCP;
	/* normalised: 10.0.0.10 sorts first, so the initiator is side 1 */
	set_addr(&fx.v.nat.stack_key, 0, "10.0.0.10", 8080);
	set_addr(&fx.v.nat.stack_key, 1, "192.0.2.7", 40000);
	fx.v.nat.stack_init_side = 1;
	/* direction in: responder <- initiator; the initiator is the same on both keys */
	assert_render_has(&fx, 0,
			  "all tcp 10.0.0.10:8080 (198.51.100.1:80) <- 192.0.2.7:40000    ");
	assert_render_has(&fx, 1,
			  "\"stack_key\":{\"initiator\":{\"addr\":\"192.0.2.7\",\"port\":40000},"
			  "\"responder\":{\"addr\":\"10.0.0.10\",\"port\":8080}},\"nat\":\"rdr\"");
}

static void test_tcp_json_fields(void **state)
{
	struct fixture fx;

	(void)state;
	tcp_in(&fx);
	fx.v.flags = PFSYNC_SF_NOSYNC;
	assert_render_has(&fx, 1, "\"id\":\"6578a1c000000001\",\"creatorid\":\"1234abcd\"");
	assert_render_has(&fx, 1, "\"initiator\":{\"addr\":\"10.0.1.10\",\"port\":45678}");
	assert_render_has(&fx, 1, "\"responder\":{\"addr\":\"10.0.2.10\",\"port\":80}");
	assert_render_has(&fx, 1,
			  "{\"state\":4,\"state_name\":\"ESTABLISHED\",\"seqlo\":1000,"
			  "\"seqhi\":65240,\"seqdiff\":0,\"max_win\":502,\"mss\":0,"
			  "\"wscale\":135}");
	assert_render_has(&fx, 1, "\"age\":62,\"expires_in\":86338,");
	assert_render_has(&fx, 1, "\"rule\":0,\"timeout\":2,\"timeout_name\":\"tcp.established\"");
	assert_render_has(&fx, 1, "\"no_sync\":true");
}

static void test_icmp_expired_and_no_rule(void **state)
{
	struct fixture fx;

	(void)state;
	fixture_init(&fx, PFSYNC_AF_INET, PFSYNC_IPPROTO_ICMP);
	/* pf's ICMP key: the initiator's port slot holds the echo id, the other the type */
	set_addr(&fx.k, 0, "10.0.0.1", 0x1234);
	set_addr(&fx.k, 1, "10.0.0.2", 8);
	fx.v.init_side = 0;
	fx.v.direction = PF_OUT;
	fx.v.id = 1;
	fx.v.creatorid = 2;
	fx.v.creation = T0 - NS(30);
	fx.v.last_seen = T0 - NS(25); /* icmp.first is 20 s: overdue, shown as 0 */
	fx.v.timeout = PFTM_ICMP_FIRST_PACKET;
	fx.v.packets[0] = 1;
	fx.v.packets[1] = 1;
	fx.v.bytes[0] = 84;
	fx.v.bytes[1] = 84;
	fx.v.peer[0].state = 1;
	assert_render(&fx, 0,
		      "all icmp 10.0.0.1:4660 -> 10.0.0.2:8       1:0\n"
		      "   age 00:00:30, expires in 00:00:00, 1:1 pkts, 84:84 bytes\n"
		      "   id: 0000000000000001 creatorid: 00000002\n");
	assert_render_has(&fx, 1, "\"rule\":null,");
	assert_render_has(&fx, 1, "\"expires_in\":0,");
	assert_render_has(&fx, 1, "\"state_name\":\"\"");
}

static void test_other_protocols(void **state)
{
	struct fixture fx;

	(void)state;
	fixture_init(&fx, PFSYNC_AF_INET, 47);
	set_addr(&fx.k, 0, "192.0.2.1", 0);
	set_addr(&fx.k, 1, "192.0.2.2", 0);
	fx.v.direction = PF_IN;
	fx.v.init_side = 1;
	fx.v.peer[0].state = PFUDPS_MULTIPLE;
	fx.v.peer[1].state = PFUDPS_SINGLE;
	fx.v.timeout = PFTM_OTHER_MULTIPLE;
	fx.v.last_seen = T0;
	fx.v.creation = T0;
	/* gre by name, no ports; in: responder (side 0) <- initiator (side 1) */
	assert_render_has(&fx, 0, "all gre 192.0.2.1 <- 192.0.2.2       SINGLE:MULTIPLE\n");
	assert_render_has(&fx, 0, "expires in 00:01:00,");
	fx.k.proto = 200;
	assert_render_has(&fx, 0, "all 200 192.0.2.1 <- 192.0.2.2       SINGLE:MULTIPLE\n");
	fx.v.peer[0].state = 9;
	assert_render_has(&fx, 0, "       1:9\n");
}

static void test_hms(void **state)
{
	char buf[32];

	(void)state;
	pfsync_fmt_hms(buf, sizeof(buf), 0);
	assert_string_equal(buf, "00:00:00");
	pfsync_fmt_hms(buf, sizeof(buf), 3600 * 123 + 61);
	assert_string_equal(buf, "123:01:01");
	assert_string_equal(pfsync_fmt_timeout_name(PFTM_TCP_FIN_WAIT), "tcp.finwait");
	assert_null(pfsync_fmt_timeout_name(PFTM_TS_DIFF));
	assert_null(pfsync_fmt_timeout_name(PFTM_PURGE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tcp_ipv4_in),
	    cmocka_unit_test(test_tcp_ipv4_out_initiator_on_side1),
	    cmocka_unit_test(test_tcp_configured_and_adaptive_timeouts),
	    cmocka_unit_test(test_tcp_state_names_and_bad_levels),
	    cmocka_unit_test(test_udp_ipv6),
	    cmocka_unit_test(test_udp_ipv6_json),
	    cmocka_unit_test(test_tcp_json_fields),
	    cmocka_unit_test(test_nat_to_prints_both_keys),
	    cmocka_unit_test(test_rdr_to_prints_both_keys),
	    cmocka_unit_test(test_icmp_expired_and_no_rule),
	    cmocka_unit_test(test_other_protocols),
	    cmocka_unit_test(test_hms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
