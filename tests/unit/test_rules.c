/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * lib/pfsync_rules: pf syntax -> struct pfsync_rule, error messages naming
 * file, line and token, and the canonical printer (parse(print(r)) == r).
 * Interface tests use "lo", which exists in every network namespace.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include "pfsync_rules.h"

#define NAME "rules.conf"

static struct pfsync_rule rules[PFSYNC_RULES_MAX];
static char err[PFSYNC_RULES_ERR_MAX];

static unsigned int parse_ok(const char *text)
{
	unsigned int n = 12345;
	int ret;

	ret = pfsync_rules_parse(NAME, text, rules, PFSYNC_RULES_MAX, &n, err, sizeof(err));
	if (ret)
		fail_msg("parse of \"%s\" failed: %s", text, err);
	assert_string_equal(err, "");
	return n;
}

static const struct pfsync_rule *one_rule(const char *text)
{
	assert_int_equal(parse_ok(text), 1);
	return &rules[0];
}

static __u32 be32(const char *v4)
{
	__u32 a;

	assert_int_equal(inet_pton(AF_INET, v4, &a), 1);
	return a;
}

/* ---- keywords ------------------------------------------------------------ */

static void test_pass_defaults(void **state)
{
	const struct pfsync_rule *r = one_rule("pass");

	(void)state;
	assert_int_equal(r->action, PFSYNC_RULE_PASS);
	assert_int_equal(r->dir, PF_INOUT);
	assert_int_equal(r->af, 0);
	assert_int_equal(r->ifindex, 0);
	/* pf: pass keeps state unless told otherwise */
	assert_int_equal(r->rflags, PFSYNC_RF_KEEP_STATE);
	assert_int_equal(r->src_plen, 0);
	assert_int_equal(r->dst_plen, 0);
}

static void test_block_has_no_state(void **state)
{
	const struct pfsync_rule *r = one_rule("block");

	(void)state;
	assert_int_equal(r->action, PFSYNC_RULE_BLOCK);
	assert_int_equal(r->rflags, 0);
}

static void test_direction_quick_on(void **state)
{
	const struct pfsync_rule *r;

	(void)state;
	r = one_rule("block in quick on lo");
	assert_int_equal(r->dir, PF_IN);
	assert_int_equal(r->rflags, PFSYNC_RF_QUICK);
	assert_int_equal(r->ifindex, if_nametoindex("lo"));
	assert_string_equal(r->ifname, "lo");
	r = one_rule("pass out");
	assert_int_equal(r->dir, PF_OUT);
	assert_false(r->rflags & PFSYNC_RF_QUICK);
}

static void test_families(void **state)
{
	(void)state;
	assert_int_equal(one_rule("pass inet")->af, PFSYNC_AF_INET);
	assert_int_equal(one_rule("pass inet6")->af, PFSYNC_AF_INET6);
	/* an address implies its family */
	assert_int_equal(one_rule("pass from 10.0.0.1")->af, PFSYNC_AF_INET);
	assert_int_equal(one_rule("pass to 2001:db8::1")->af, PFSYNC_AF_INET6);
	assert_int_equal(one_rule("pass inet6 from ::1 to fe80::/10")->af, PFSYNC_AF_INET6);
}

static void test_protocols(void **state)
{
	static const struct {
		const char *text;
		__u8 proto;
	} cases[] = {
	    {"pass proto tcp", 6},    {"pass proto udp", 17}, {"pass proto icmp", 1},
	    {"pass proto icmp6", 58}, {"pass proto 47", 47},  {"pass proto 0", 0},
	    {"pass proto 255", 255},
	};
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pfsync_rule *r = one_rule(cases[i].text);

		assert_true(r->rflags & PFSYNC_RF_PROTO);
		assert_int_equal(r->proto, cases[i].proto);
	}
	assert_false(one_rule("pass")->rflags & PFSYNC_RF_PROTO);
}

static void test_ipv4_prefix_is_masked(void **state)
{
	const struct pfsync_rule *r = one_rule("pass from 10.1.2.3/8 to 192.168.7.9");

	(void)state;
	assert_int_equal(r->src_addr[0], be32("10.0.0.0"));
	assert_int_equal(r->src_mask[0], be32("255.0.0.0"));
	assert_int_equal(r->src_plen, 8);
	assert_int_equal(r->src_addr[1] | r->src_mask[1], 0);
	assert_int_equal(r->dst_addr[0], be32("192.168.7.9"));
	assert_int_equal(r->dst_mask[0], be32("255.255.255.255"));
	assert_int_equal(r->dst_plen, 32);
	r = one_rule("pass from 172.16.5.4/20");
	assert_int_equal(r->src_addr[0], be32("172.16.0.0"));
	assert_int_equal(r->src_mask[0], be32("255.255.240.0"));
}

static void test_ipv6_prefix_is_masked(void **state)
{
	const struct pfsync_rule *r = one_rule("pass from 2001:db8:aaaa:bbbb::1/36 to ::1");
	__u32 want[4];

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:a000::", want), 1);
	assert_memory_equal(r->src_addr, want, 16);
	assert_int_equal(r->src_mask[0], 0xffffffffU);
	assert_int_equal(r->src_mask[1], htonl(0xf0000000U));
	assert_int_equal(r->src_mask[2] | r->src_mask[3], 0);
	assert_int_equal(r->src_plen, 36);
	assert_int_equal(inet_pton(AF_INET6, "::1", want), 1);
	assert_memory_equal(r->dst_addr, want, 16);
	assert_int_equal(r->dst_plen, 128);
	assert_int_equal(r->dst_mask[3], 0xffffffffU);
}

static void test_zero_prefix_means_any(void **state)
{
	const struct pfsync_rule *r = one_rule("pass from 10.0.0.0/0");

	(void)state;
	assert_int_equal(r->src_plen, 0);
	assert_int_equal(r->src_mask[0], 0);
	assert_int_equal(r->af, PFSYNC_AF_INET);
}

static void test_ports(void **state)
{
	const struct pfsync_rule *r;

	(void)state;
	r = one_rule("pass proto tcp from any port 1234 to 10.0.0.1 port = 80");
	assert_int_equal(r->rflags & (PFSYNC_RF_SRC_PORT | PFSYNC_RF_DST_PORT),
			 PFSYNC_RF_SRC_PORT | PFSYNC_RF_DST_PORT);
	assert_int_equal(r->src_port, htons(1234));
	assert_int_equal(r->dst_port, htons(80));
	r = one_rule("pass proto udp to any port 65535");
	assert_int_equal(r->rflags & PFSYNC_RF_SRC_PORT, 0);
	assert_int_equal(r->dst_port, htons(65535));
}

static void test_state_option_spellings(void **state)
{
	static const struct {
		const char *text;
		__u32 opts;
	} cases[] = {
	    {"pass keep state", 0},
	    {"pass keep state (no-sync)", PFSYNC_RF_NOSYNC},
	    {"pass keep state (sloppy)", PFSYNC_RF_SLOPPY},
	    {"pass keep state (no-sync, sloppy)", PFSYNC_RF_NOSYNC | PFSYNC_RF_SLOPPY},
	    {"pass keep state (sloppy,no-sync)", PFSYNC_RF_NOSYNC | PFSYNC_RF_SLOPPY},
	    {"pass (no-sync)", PFSYNC_RF_NOSYNC},
	    {"pass all keep state (no-sync) (sloppy)", PFSYNC_RF_NOSYNC | PFSYNC_RF_SLOPPY},
	    {"pass (sloppy)", PFSYNC_RF_SLOPPY},
	};
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pfsync_rule *r = one_rule(cases[i].text);

		assert_int_equal(r->rflags, PFSYNC_RF_KEEP_STATE | cases[i].opts);
	}
	assert_int_equal(one_rule("pass no state")->rflags, 0);
}

static void test_all_equals_from_any_to_any(void **state)
{
	struct pfsync_rule a;

	(void)state;
	a = *one_rule("pass in all");
	assert_memory_equal(&a, one_rule("pass in from any to any"), sizeof(a));
	assert_memory_equal(&a, one_rule("pass in"), sizeof(a));
}

static void test_comments_blank_lines_continuations(void **state)
{
	const char *text = "# a ruleset\n"
			   "\n"
			   "block in all   # default deny\n"
			   "   \t\n"
			   "pass in proto tcp \\\n"
			   "   to any port 22 \\\n"
			   "   keep state\n"
			   "pass out#no space before the comment\n";

	(void)state;
	assert_int_equal(parse_ok(text), 3);
	assert_int_equal(rules[0].action, PFSYNC_RULE_BLOCK);
	assert_int_equal(rules[1].proto, 6);
	assert_int_equal(rules[1].dst_port, htons(22));
	assert_int_equal(rules[2].dir, PF_OUT);
	assert_int_equal(parse_ok(""), 0);
	assert_int_equal(parse_ok("# nothing\n\n"), 0);
	/* CRLF files */
	assert_int_equal(parse_ok("pass in \\\r\n quick\r\nblock\r\n"), 2);
	assert_true(rules[0].rflags & PFSYNC_RF_QUICK);
}

/* ---- printing ------------------------------------------------------------ */

static void test_canonical_text_and_round_trip(void **state)
{
	static const struct {
		const char *in, *canonical;
	} cases[] = {
	    {"pass", "pass all"},
	    {"block", "block all"},
	    {"pass in from any to any", "pass in all"},
	    {"block in quick on lo inet proto tcp from 10.9.8.7/8 port 1024 to 192.168.1.1 port = "
	     "22",
	     "block in quick on lo inet proto tcp from 10.0.0.0/8 port 1024 to 192.168.1.1 port "
	     "22"},
	    {"pass out inet6 proto udp from 2001:DB8::/32 to any port 53 keep state (no-sync)",
	     "pass out inet6 proto udp from 2001:db8::/32 to any port 53 keep state (no-sync)"},
	    {"pass proto icmp6 all keep state (sloppy)",
	     "pass proto icmp6 all keep state (sloppy)"},
	    {"pass proto 47 to 10.1.2.3/16 (sloppy, no-sync)",
	     "pass inet proto 47 from any to 10.1.0.0/16 keep state (no-sync, sloppy)"},
	    {"pass in no state", "pass in all no state"},
	    {"pass inet from any to any", "pass inet all"},
	    {"pass from 10.0.0.0/0", "pass inet all"},
	    {"pass proto udp from any port 5353", "pass proto udp from any port 5353 to any"},
	    {"pass proto icmp from fe80::1/64", "pass inet6 proto icmp from fe80::/64 to any"},
	};
	struct pfsync_rule parsed, again;
	char text[512];
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parsed = *one_rule(cases[i].in);
		assert_int_equal(pfsync_rule_print(&parsed, text, sizeof(text)),
				 (int)strlen(cases[i].canonical));
		assert_string_equal(text, cases[i].canonical);
		again = *one_rule(text);
		assert_memory_equal(&parsed, &again, sizeof(parsed));
	}
}

static void test_print_truncates_safely(void **state)
{
	struct pfsync_rule r = *one_rule("pass in quick proto tcp from 10.0.0.0/8 to any port 80");
	char small[8];
	int need;

	(void)state;
	need = pfsync_rule_print(&r, small, sizeof(small));
	assert_int_equal(
	    need, (int)strlen("pass in quick inet proto tcp from 10.0.0.0/8 to any port 80"));
	assert_string_equal(small, "pass in");
}

/* the JSON of the one rule in text (the caller frees it) */
static char *rule_json(const char *text)
{
	const struct pfsync_rule *r = one_rule(text);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	pfsync_rule_print_json(f, r);
	fclose(f);
	assert_non_null(buf);
	return buf;
}

static void test_json(void **state)
{
	char *buf = rule_json("pass in on lo proto tcp to 10.0.0.0/8 port 22 (no-sync)");

	(void)state;
	assert_non_null(strstr(buf, "\"action\":\"pass\",\"direction\":\"in\",\"quick\":false"));
	assert_non_null(strstr(buf, "\"interface\":\"lo\""));
	assert_non_null(strstr(buf, "\"to\":{\"any\":false,\"addr\":\"10.0.0.0\",\"prefixlen\":8,"
				    "\"port\":22}"));
	assert_non_null(
	    strstr(buf, "\"from\":{\"any\":true,\"addr\":null,\"prefixlen\":0,\"port\":null}"));
	assert_non_null(strstr(buf, "\"keep_state\":true,\"no_sync\":true,\"sloppy\":false"));
	assert_non_null(strstr(
	    buf, "\"text\":\"pass in on lo inet proto tcp from any to 10.0.0.0/8 port 22 keep "
		 "state (no-sync)\""));
	free(buf);
}

/* ---- translation (issue 15) ----------------------------------------------- */

static void test_nat_to_fields(void **state)
{
	const struct pfsync_rule *r =
	    one_rule("pass out on lo proto tcp from 10.0.0.0/8 nat-to 198.51.100.1 port "
		     "1024:2047 static-port");

	(void)state;
	assert_int_equal(r->action, PFSYNC_RULE_PASS);
	assert_int_equal(r->nat.type, PFSYNC_NAT_NAT);
	assert_int_equal(r->nat.af, PFSYNC_AF_INET);
	assert_int_equal(r->nat.addr[0], be32("198.51.100.1"));
	assert_int_equal(r->nat.port_low, 1024);
	assert_int_equal(r->nat.port_high, 2047);
	assert_int_equal(r->nat.nflags, PFSYNC_NATF_PORT | PFSYNC_NATF_STATIC_PORT);
	assert_int_equal(r->af, PFSYNC_AF_INET); /* from the translation address too */
	/* no range: pf's 50001-65535, chosen by the datapath */
	r = one_rule("pass out from 10.0.0.5 nat-to 198.51.100.1");
	assert_int_equal(r->nat.nflags, 0);
	assert_int_equal(r->nat.port_low, 0);
}

static void test_nat_to_interface_address(void **state)
{
	const struct pfsync_rule *r = one_rule("pass out on lo nat-to (lo)");

	(void)state;
	/* lo's first IPv4 address, and the interface to follow */
	assert_int_equal(r->nat.nflags, PFSYNC_NATF_IFADDR);
	assert_int_equal(r->nat.ifindex, if_nametoindex("lo"));
	assert_string_equal(r->nat_ifname, "lo");
	assert_int_equal(r->nat.addr[0], be32("127.0.0.1"));
	r = one_rule("pass out inet6 nat-to (lo)");
	assert_int_equal(r->nat.af, PFSYNC_AF_INET6);
	assert_int_equal(r->nat.addr[3], htonl(1)); /* ::1 */
}

static void test_rdr_binat_match(void **state)
{
	const struct pfsync_rule *r =
	    one_rule("pass in on lo proto tcp to 198.51.100.1 port 80 rdr-to 10.0.0.10 port 8080");

	(void)state;
	assert_int_equal(r->nat.type, PFSYNC_NAT_RDR);
	assert_int_equal(r->nat.addr[0], be32("10.0.0.10"));
	assert_int_equal(r->nat.port_low, 8080);
	assert_int_equal(r->nat.port_high, 8080);
	/* binat-to: pf's two halves, nat-to static-port out and rdr-to in */
	assert_int_equal(
	    parse_ok("pass on lo proto tcp from 10.0.0.5 port 22 binat-to 198.51.100.5"), 2);
	r = &rules[0];
	assert_int_equal(r->dir, PF_OUT);
	assert_int_equal(r->nat.type, PFSYNC_NAT_NAT);
	assert_int_equal(r->nat.nflags, PFSYNC_NATF_STATIC_PORT);
	assert_int_equal(r->nat.addr[0], be32("198.51.100.5"));
	assert_int_equal(r->src_addr[0], be32("10.0.0.5"));
	r = &rules[1];
	assert_int_equal(r->dir, PF_IN);
	assert_int_equal(r->nat.type, PFSYNC_NAT_RDR);
	assert_int_equal(r->nat.addr[0], be32("10.0.0.5"));
	assert_int_equal(r->dst_addr[0], be32("198.51.100.5"));
	assert_int_equal(r->dst_plen, 32);
	assert_int_equal(r->rflags & (PFSYNC_RF_SRC_PORT | PFSYNC_RF_DST_PORT), PFSYNC_RF_DST_PORT);
	assert_int_equal(ntohs(r->dst_port), 22);
	assert_int_equal(r->src_plen, 0);
	/* one direction: that half only */
	r = one_rule("pass in on lo from 10.0.0.5 binat-to 198.51.100.5");
	assert_int_equal(r->nat.type, PFSYNC_NAT_RDR);
	r = one_rule("match out on lo inet6 from 2001:db8::/64 nat-to 2001:db8:ffff::1");
	assert_int_equal(r->action, PFSYNC_RULE_MATCH);
	assert_int_equal(r->rflags & PFSYNC_RF_KEEP_STATE, 0); /* match creates nothing */
	assert_int_equal(r->nat.af, PFSYNC_AF_INET6);
}

static void test_nat_round_trip(void **state)
{
	static const char *const canonical[] = {
	    "pass out on lo inet proto tcp from 10.0.0.0/8 to any nat-to 198.51.100.1 port "
	    "50001:65535 static-port",
	    "pass out on lo inet all nat-to (lo)",
	    "pass in on lo inet proto tcp from any to 198.51.100.1 port 80 rdr-to 10.0.0.10 port "
	    "8080 keep state (no-sync)",
	    "pass out on lo inet from 10.0.0.5 to any nat-to 198.51.100.5 static-port",
	    "pass in on lo inet all rdr-to 10.0.0.5",
	    "match out inet6 from 2001:db8::/64 to any nat-to 2001:db8::1",
	    "pass out inet proto udp all nat-to 198.51.100.1 port 4000",
	};
	struct pfsync_rule parsed, again;
	char text[512];
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(canonical) / sizeof(canonical[0]); i++) {
		parsed = *one_rule(canonical[i]);
		pfsync_rule_print(&parsed, text, sizeof(text));
		assert_string_equal(text, canonical[i]);
		again = *one_rule(text);
		assert_memory_equal(&parsed, &again, sizeof(parsed));
	}
}

static void test_nat_json(void **state)
{
	char *buf = rule_json("pass out proto tcp nat-to 198.51.100.1 port 2000:2999");

	(void)state;
	assert_non_null(strstr(buf, "\"nat\":{\"type\":\"nat-to\",\"addr\":\"198.51.100.1\","
				    "\"interface\":null,\"port_low\":2000,\"port_high\":2999,"
				    "\"static_port\":false}"));
	free(buf);
	buf = rule_json("pass");
	assert_non_null(strstr(buf, "\"nat\":null"));
	free(buf);
}

/* ---- errors --------------------------------------------------------------- */

/* An input and the one error its parse must give. */
struct parse_error {
	const char *text, *msg;
};

/* each input is refused with exactly its message, and nothing is loaded from it */
static void assert_parse_errors(const struct parse_error *cases, unsigned int ncases)
{
	unsigned int i, n;
	int ret;

	for (i = 0; i < ncases; i++) {
		n = 99;
		ret = pfsync_rules_parse(NAME, cases[i].text, rules, PFSYNC_RULES_MAX, &n, err,
					 sizeof(err));
		if (ret != -EINVAL || strcmp(err, cases[i].msg))
			fail_msg("input \"%s\": got %d \"%s\", want \"%s\"", cases[i].text, ret,
				 err, cases[i].msg);
		assert_int_equal(n, 0);
	}
}

static void test_nat_errors(void **state)
{
	static const struct parse_error cases[] = {
	    {"pass in nat-to 10.0.0.1",
	     "rules.conf:1: nat-to needs an outbound rule (pass out) \"nat-to\""},
	    {"pass nat-to 10.0.0.1", "rules.conf:1: nat-to needs an outbound rule (pass out) "
				     "\"nat-to\""},
	    {"pass out rdr-to 10.0.0.1",
	     "rules.conf:1: rdr-to needs an inbound rule (pass in) \"rdr-to\""},
	    {"block out nat-to 10.0.0.1", "rules.conf:1: translation on a block rule \"nat-to\""},
	    {"pass from 10.0.0.0/24 binat-to 10.9.9.9",
	     "rules.conf:1: binat-to needs one source host (from ADDR) \"binat-to\""},
	    {"pass binat-to 10.9.9.9",
	     "rules.conf:1: binat-to needs one source host (from ADDR) \"binat-to\""},
	    {"pass out nat-to 10.0.0.0/24",
	     "rules.conf:1: invalid translation address \"10.0.0.0/24\""},
	    {"pass out nat-to wan0", "rules.conf:1: invalid translation address \"wan0\""},
	    {"pass out nat-to", "rules.conf:1: unexpected end of line after \"nat-to\""},
	    {"pass out nat-to (nosuchif0)", "rules.conf:1: unknown interface \"nosuchif0\""},
	    {"pass out nat-to (lo", "rules.conf:1: unexpected end of line after \"lo\""},
	    {"pass out inet6 nat-to 10.0.0.1",
	     "rules.conf:1: address family mismatch \"10.0.0.1\""},
	    {"pass out nat-to 10.0.0.1 port 1024",
	     "rules.conf:1: port needs proto tcp or udp \"port\""},
	    {"pass out proto tcp nat-to 10.0.0.1 port 2000:1000",
	     "rules.conf:1: invalid translation port \"2000:1000\""},
	    {"pass out proto tcp nat-to 10.0.0.1 port 0",
	     "rules.conf:1: invalid translation port \"0\""},
	    {"pass in proto tcp rdr-to 10.0.0.1 port 80:81",
	     "rules.conf:1: invalid translation port \"80:81\""},
	    {"pass from 10.0.0.5 binat-to 10.9.9.9 port 1",
	     "rules.conf:1: binat-to takes no port \"port\""},
	    {"pass in rdr-to 10.0.0.1 static-port",
	     "rules.conf:1: static-port needs nat-to \"static-port\""},
	    {"pass out nat-to 10.0.0.1 nat-to 10.0.0.2",
	     "rules.conf:1: one translation per rule \"nat-to\""},
	    {"match keep state", "rules.conf:1: keep state on a match rule \"keep\""},
	};

	(void)state;
	assert_parse_errors(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_error_messages(void **state)
{
	static const struct parse_error cases[] = {
	    {"pass frm any", "rules.conf:1: unexpected token \"frm\""},
	    {"\n\npass from any to any port 80",
	     "rules.conf:3: port needs proto tcp or udp \"port\""},
	    {"pass in on", "rules.conf:1: unexpected end of line after \"on\""},
	    {"pass on nosuchif0", "rules.conf:1: unknown interface \"nosuchif0\""},
	    {"pass on abcdefghijklmnopq",
	     "rules.conf:1: invalid interface name \"abcdefghijklmnopq\""},
	    {"pass from 10.0.0.300", "rules.conf:1: invalid address \"10.0.0.300\""},
	    {"pass from eth0", "rules.conf:1: invalid address \"eth0\""},
	    {"pass from 10.0.0.0/33", "rules.conf:1: invalid prefix length \"10.0.0.0/33\""},
	    {"pass to ::1/129", "rules.conf:1: invalid prefix length \"::1/129\""},
	    {"pass to 10.0.0.0/", "rules.conf:1: invalid prefix length \"10.0.0.0/\""},
	    {"pass to 10.0.0.0/-1", "rules.conf:1: invalid prefix length \"10.0.0.0/-1\""},
	    {"pass inet6 from 10.0.0.1", "rules.conf:1: address family mismatch \"10.0.0.1\""},
	    {"pass from 10.0.0.1 to ::1", "rules.conf:1: address family mismatch \"::1\""},
	    {"pass proto tcp to any port 0", "rules.conf:1: invalid port \"0\""},
	    {"pass proto tcp to any port 65536", "rules.conf:1: invalid port \"65536\""},
	    {"pass proto tcp to any port http", "rules.conf:1: invalid port \"http\""},
	    {"pass proto tcp from any port", "rules.conf:1: unexpected end of line after \"port\""},
	    {"pass proto tcp from any port =", "rules.conf:1: unexpected end of line after \"=\""},
	    {"pass proto foo", "rules.conf:1: invalid protocol \"foo\""},
	    {"pass proto 256", "rules.conf:1: invalid protocol \"256\""},
	    {"pass proto -1", "rules.conf:1: invalid protocol \"-1\""},
	    {"block keep state", "rules.conf:1: keep state on a block rule \"keep\""},
	    {"block (no-sync)", "rules.conf:1: state options need keep state \"(\""},
	    {"pass keep state (no-sync", "rules.conf:1: unexpected end of line after \"no-sync\""},
	    {"pass keep state (fast)", "rules.conf:1: unexpected token \"fast\""},
	    {"pass keep state ()", "rules.conf:1: unexpected token \")\""},
	    {"pass keep state (sloppy,)", "rules.conf:1: unexpected token \")\""},
	    {"pass keep", "rules.conf:1: unexpected end of line after \"keep\""},
	    {"pass keep fate", "rules.conf:1: unexpected token \"fate\""},
	    {"pass no state (sloppy)", "rules.conf:1: unexpected token \"(\""},
	    {"pass all all", "rules.conf:1: unexpected token \"all\""},
	    {"quick pass", "rules.conf:1: unexpected token \"quick\""},
	    {"pass quick in", "rules.conf:1: unexpected token \"in\""},
	    {"pass inet on lo", "rules.conf:1: unexpected token \"on\""},
	    {"pass ,", "rules.conf:1: unexpected token \",\""},
	    {"pass \\ in", "rules.conf:1: unexpected token \"\\\""},
	    {"pass\nblock\npass to", "rules.conf:3: unexpected end of line after \"to\""},
	    {"pass # fine\nblock in \\\n  frm any", "rules.conf:3: unexpected token \"frm\""},
	    {"pass from any to any keep state (no-sync) extra",
	     "rules.conf:1: unexpected token \"extra\""},
	};

	(void)state;
	assert_parse_errors(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_too_many_rules(void **state)
{
	size_t len = (PFSYNC_RULES_MAX + 1) * 5 + 1;
	char *text = malloc(len);
	unsigned int i, n = 7;
	char want[128];

	(void)state;
	assert_non_null(text);
	text[0] = '\0';
	for (i = 0; i < PFSYNC_RULES_MAX + 1; i++)
		strcat(text, "pass\n");
	assert_int_equal(
	    pfsync_rules_parse(NAME, text, rules, PFSYNC_RULES_MAX, &n, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "rules.conf:%u: too many rules (max %u) \"pass\"",
		 PFSYNC_RULES_MAX + 1, PFSYNC_RULES_MAX);
	assert_string_equal(err, want);
	assert_int_equal(n, 0);
	/* exactly the maximum is fine */
	text[PFSYNC_RULES_MAX * 5] = '\0';
	assert_int_equal(parse_ok(text), PFSYNC_RULES_MAX);
	free(text);
}

static void test_parse_file(void **state)
{
	char path[] = "/tmp/pfsync_test_rules_XXXXXX";
	const char *body = "pass in proto tcp to any port 80\nblock out frm any\n";
	unsigned int n = 5;
	char want[128];
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, strlen(body)), (int)strlen(body));
	close(fd);
	assert_int_equal(
	    pfsync_rules_parse_file(path, rules, PFSYNC_RULES_MAX, &n, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: unexpected token \"frm\"", path);
	assert_string_equal(err, want);
	assert_int_equal(n, 0);
	unlink(path);
	assert_int_equal(
	    pfsync_rules_parse_file(path, rules, PFSYNC_RULES_MAX, &n, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);
}

static void test_long_token_does_not_overflow(void **state)
{
	char text[600];
	unsigned int n;

	(void)state;
	memset(text, 'x', sizeof(text));
	memcpy(text, "pass from ", 10);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(
	    pfsync_rules_parse(NAME, text, rules, PFSYNC_RULES_MAX, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "rules.conf:1: invalid address \"xxxx"));
}

/* ---- loading into pinned maps (root + bpffs; skipped otherwise) ---------- */

/*
 * Maps shaped like the datapath's, pinned in a bpffs of the test's own
 * (mounted on a temp dir: the host's /sys/fs/bpf may be no bpffs at all),
 * so pfsync_maps_open and the bank switch run against the kernel without
 * the BPF object.
 */
struct pinned {
	char dir[128];
	int mounted;
	int fds[5];
	char why[160]; /* the skip's reason when fds[0] < 0 */
};

static const char *const pinned_names[5] = {PFSYNC_MAP_STATES, PFSYNC_MAP_RULES, PFSYNC_MAP_CONFIG,
					    PFSYNC_MAP_GLOBALS, PFSYNC_MAP_COUNTERS};

static void pinned_remove(struct pinned *p)
{
	char path[256];
	unsigned int i;

	for (i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s/%s", p->dir, pinned_names[i]);
		unlink(path);
		if (p->fds[i] >= 0)
			close(p->fds[i]);
		p->fds[i] = -1;
	}
	if (p->mounted && umount2(p->dir, MNT_DETACH) == 0)
		p->mounted = 0;
	rmdir(p->dir);
}

static int pinned_teardown(void **state)
{
	struct pinned *p = *state;

	if (p) {
		pinned_remove(p);
		free(p);
	}
	return 0;
}

static int pinned_setup(void **state)
{
	struct pinned *p = calloc(1, sizeof(*p));
	const struct {
		enum bpf_map_type type;
		__u32 key, value, max;
	} shapes[5] = {
	    {BPF_MAP_TYPE_HASH, sizeof(struct pfsync_key), sizeof(struct pfsync_state_value), 64},
	    {BPF_MAP_TYPE_ARRAY, 4, sizeof(struct pfsync_rule),
	     PFSYNC_RULES_MAX * PFSYNC_RULE_BANKS},
	    {BPF_MAP_TYPE_ARRAY, 4, sizeof(struct pfsync_config), 1},
	    {BPF_MAP_TYPE_ARRAY, 4, sizeof(struct pfsync_globals), 1},
	    {BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(struct pfsync_counters), 1},
	};
	char path[256];
	unsigned int i;

	assert_non_null(p);
	*state = p;
	snprintf(p->dir, sizeof(p->dir), "/tmp/pfsync-test-rules.XXXXXX");
	for (i = 0; i < 5; i++)
		p->fds[i] = -1;
	if (!mkdtemp(p->dir)) {
		snprintf(p->why, sizeof(p->why), "cannot create a temp dir: %s", strerror(errno));
		return 0;
	}
	if (geteuid() != 0 || mount("bpf", p->dir, "bpf", 0, NULL) != 0) {
		/* the tests skip, saying why */
		snprintf(p->why, sizeof(p->why), "%s",
			 geteuid() != 0 ? "not root: cannot mount a bpffs" : "kernel has no bpffs");
		rmdir(p->dir);
		return 0;
	}
	p->mounted = 1;
	for (i = 0; i < 5; i++) {
		p->fds[i] = bpf_map_create(shapes[i].type, NULL, shapes[i].key, shapes[i].value,
					   shapes[i].max, NULL);
		snprintf(path, sizeof(path), "%s/%s", p->dir, pinned_names[i]);
		if (p->fds[i] < 0 || bpf_obj_pin(p->fds[i], path)) {
			snprintf(p->why, sizeof(p->why), "kernel refuses BPF maps: %s",
				 strerror(errno));
			pinned_remove(p);
			return 0;
		}
	}
	return 0;
}

static void open_pinned(void **state, struct pfsync_maps *m, const char *test)
{
	struct pinned *p = *state;

	if (p->fds[0] < 0) {
		/* the reason, in the form scripts/count-checks.py reads */
		print_message("SKIP: %s: %s\n", test, p->why);
		skip();
	}
	assert_int_equal(pfsync_maps_open(m, p->dir), 0);
	assert_int_equal(m->events, -1); /* optional maps may be missing */
	assert_string_equal(m->pin_dir, p->dir);
}

static void test_load_flips_bank_atomically(void **state)
{
	struct pfsync_rule back[PFSYNC_RULES_MAX];
	struct pfsync_config cfg = {.maxupd = 77, .rules_bank = 0, .nrules = 0};
	struct pfsync_maps m;
	unsigned int n, got;
	__u32 key;

	open_pinned(state, &m, __func__);
	assert_int_equal(pfsync_config_write(&m, &cfg), 0);
	n = parse_ok("pass in on lo proto tcp to any port 22\nblock in all\n");
	assert_int_equal(pfsync_rules_load(&m, rules, n), 0);
	assert_int_equal(pfsync_config_read(&m, &cfg), 0);
	assert_int_equal(cfg.rules_bank, 1);
	assert_int_equal(cfg.nrules, 2);
	assert_int_equal(cfg.maxupd, 77); /* the rest of the config is kept */
	/* written at bank 1's keys */
	key = PFSYNC_RULES_MAX + 1;
	assert_int_equal(bpf_map_lookup_elem(m.rules, &key, &back[0]), 0);
	assert_memory_equal(&back[0], &rules[1], sizeof(back[0]));
	assert_int_equal(pfsync_rules_read(&m, back, PFSYNC_RULES_MAX, &got), 0);
	assert_int_equal(got, 2);
	assert_memory_equal(back, rules, 2 * sizeof(back[0]));

	/* the next load goes to bank 0 */
	n = parse_ok("pass out all keep state (no-sync)");
	assert_int_equal(pfsync_rules_load(&m, rules, n), 0);
	assert_int_equal(pfsync_config_read(&m, &cfg), 0);
	assert_int_equal(cfg.rules_bank, 0);
	assert_int_equal(pfsync_rules_read(&m, back, PFSYNC_RULES_MAX, &got), 0);
	assert_int_equal(got, 1);
	assert_memory_equal(&back[0], &rules[0], sizeof(back[0]));

	assert_int_equal(pfsync_rules_flush(&m), 0);
	assert_int_equal(pfsync_config_read(&m, &cfg), 0);
	assert_int_equal(cfg.nrules, 0);
	assert_int_equal(pfsync_rules_read(&m, back, PFSYNC_RULES_MAX, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(pfsync_rules_load(&m, rules, PFSYNC_RULES_MAX + 1), -E2BIG);
	pfsync_maps_close(&m);
}

static int count_and_check(const struct pfsync_key *k, const struct pfsync_state_value *v,
			   void *arg)
{
	unsigned int *seen = arg;

	/* the test stores id = first address word + 1000 */
	assert_int_equal(v->id, k->addr[0][0] + 1000);
	(*seen)++;
	return 0;
}

static int stop_at_first(const struct pfsync_key *k, const struct pfsync_state_value *v, void *arg)
{
	(void)k;
	(void)v;
	(*(unsigned int *)arg)++;
	return 42;
}

static void test_maps_states_and_counters(void **state)
{
	struct pfsync_counters sum, *percpu;
	struct pfsync_state_value v;
	struct pfsync_globals g = {.hostid = 0x1234, .states_count = 9};
	struct pfsync_maps m;
	struct pfsync_key k;
	unsigned int i, seen = 0;
	int ncpus = libbpf_num_possible_cpus();
	__u32 zero = 0;

	open_pinned(state, &m, __func__);
	assert_int_equal(pfsync_states_capacity(&m), 64);
	assert_int_equal(pfsync_states_foreach(&m, count_and_check, &seen), 0);
	assert_int_equal(seen, 0);
	for (i = 1; i <= 40; i++) {
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		k.addr[0][0] = i;
		k.af = PFSYNC_AF_INET;
		v.id = i + 1000;
		assert_int_equal(bpf_map_update_elem(m.states, &k, &v, BPF_NOEXIST), 0);
	}
	assert_int_equal(pfsync_states_foreach(&m, count_and_check, &seen), 0);
	assert_int_equal(seen, 40);
	seen = 0;
	assert_int_equal(pfsync_states_foreach(&m, stop_at_first, &seen), 42);
	assert_int_equal(seen, 1);

	assert_true(ncpus > 0);
	percpu = calloc((size_t)ncpus, sizeof(*percpu));
	assert_non_null(percpu);
	for (i = 0; i < (unsigned int)ncpus; i++) {
		percpu[i].packets_seen = 10 + i;
		percpu[i].defer_full = 1;
	}
	assert_int_equal(bpf_map_update_elem(m.counters, &zero, percpu, BPF_ANY), 0);
	free(percpu);
	assert_int_equal(pfsync_counters_sum(&m, &sum), 0);
	assert_int_equal(sum.packets_seen, 10ULL * ncpus + (__u64)ncpus * (ncpus - 1) / 2);
	assert_int_equal(sum.defer_full, ncpus);
	assert_int_equal(sum.blocked_rule, 0);

	assert_int_equal(pfsync_globals_write(&m, &g), 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(pfsync_globals_read(&m, &g), 0);
	assert_int_equal(g.hostid, 0x1234);
	assert_int_equal(g.states_count, 9);
	assert_true(pfsync_now_ns() > 0);
	pfsync_maps_close(&m);
	assert_int_equal(m.states, -1);
}

static void test_maps_missing_pin_dir(void **state)
{
	struct pfsync_maps m;

	(void)state;
	assert_int_equal(pfsync_maps_open(&m, "/nonexistent/pfsync"), -ENOENT);
	assert_int_equal(m.states, -1);
	assert_int_equal(m.rules, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pass_defaults),
	    cmocka_unit_test(test_block_has_no_state),
	    cmocka_unit_test(test_direction_quick_on),
	    cmocka_unit_test(test_families),
	    cmocka_unit_test(test_protocols),
	    cmocka_unit_test(test_ipv4_prefix_is_masked),
	    cmocka_unit_test(test_ipv6_prefix_is_masked),
	    cmocka_unit_test(test_zero_prefix_means_any),
	    cmocka_unit_test(test_ports),
	    cmocka_unit_test(test_state_option_spellings),
	    cmocka_unit_test(test_all_equals_from_any_to_any),
	    cmocka_unit_test(test_comments_blank_lines_continuations),
	    cmocka_unit_test(test_canonical_text_and_round_trip),
	    cmocka_unit_test(test_print_truncates_safely),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_nat_to_fields),
	    cmocka_unit_test(test_nat_to_interface_address),
	    cmocka_unit_test(test_rdr_binat_match),
	    cmocka_unit_test(test_nat_round_trip),
	    cmocka_unit_test(test_nat_json),
	    cmocka_unit_test(test_nat_errors),
	    cmocka_unit_test(test_error_messages),
	    cmocka_unit_test(test_too_many_rules),
	    cmocka_unit_test(test_parse_file),
	    cmocka_unit_test(test_long_token_does_not_overflow),
	    cmocka_unit_test_setup_teardown(test_load_flips_bank_atomically, pinned_setup,
					    pinned_teardown),
	    cmocka_unit_test_setup_teardown(test_maps_states_and_counters, pinned_setup,
					    pinned_teardown),
	    cmocka_unit_test(test_maps_missing_pin_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
