/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * lib/pfsync_print: OpenBSD tcpdump text and JSON of pfsync payloads.
 * The pfsync-wire.md §5.3 vectors and builder-made packets are printed and
 * compared line by line with text written from §5.2; truncated and garbage
 * payloads must print the error words and stay inside the buffer (ASan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "pfsync_print.h"
#include "pfsync_wire.h"

#define CREATOR 0x1234abcdu
#define ID_BASE 0x6578a1c000000000ull

static const __u8 v_bulk[] = {0x06, 0x00, 0x00, 0x24, 0, 0, 0, 0, 0,	0,    0,    0,
			      0,    0,	  0,	0,    0, 0, 0, 0, 0x05, 0x03, 0x00, 0x01,
			      0,    0,	  0,	0,    0, 0, 0, 0, 0,	0,    0,    0};
static const __u8 v_ins_ack[] = {0x06, 0x00, 0x00, 0x24, 0,    0,    0,	   0,	 0,
				 0,    0,    0,	   0,	 0,    0,    0,	   0,	 0,
				 0,    0,    0x02, 0x03, 0x00, 0x01, 0x65, 0x78, 0xa1,
				 0xc0, 0x00, 0x00, 0x00, 0x01, 0x12, 0x34, 0xab, 0xcd};
static const __u8 v_del_c[] = {
    0x06, 0x00, 0x00, 0x30, 0,	  0,	0,    0,    0,	  0,	0,    0,    0,	  0,	0,    0,
    0,	  0,	0,    0,    0x07, 0x03, 0x00, 0x02, 0x65, 0x78, 0xa1, 0xc0, 0x00, 0x00, 0x00, 0x01,
    0x12, 0x34, 0xab, 0xcd, 0x65, 0x78, 0xa1, 0xc0, 0x00, 0x00, 0x00, 0x02, 0x12, 0x34, 0xab, 0xcd};
static const __u8 v_bus_end[] = {0x06, 0x00, 0x00, 0x24, 0,    0,    0,	   0,	 0,
				 0,    0,    0,	   0,	 0,    0,    0,	   0,	 0,
				 0,    0,    0x0a, 0x03, 0x00, 0x01, 0x12, 0x34, 0xab,
				 0xcd, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00};
static const __u8 v_clr[] = {0x06, 0x00, 0x00, 0x2c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			     0x00, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			     0x12, 0x34, 0xab, 0xcd};

/* the sizes §5.3 gives, so a typo in the tables above cannot go unnoticed */
_Static_assert(sizeof(v_bulk) == 36, "bulk vector");
_Static_assert(sizeof(v_ins_ack) == 36, "INS_ACK vector");
_Static_assert(sizeof(v_del_c) == 48, "DEL_C vector");
_Static_assert(sizeof(v_bus_end) == 36, "BUS vector");
_Static_assert(sizeof(v_clr) == 44, "CLR vector");

/* ---- capture helpers ---------------------------------------------------------- */

static char *print_text(const __u8 *p, size_t len, int verbose)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	assert_non_null(f);
	pfsync_print_text(f, p, len, verbose);
	fclose(f);
	return buf;
}

static char *print_json(const __u8 *p, size_t len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	assert_non_null(f);
	pfsync_print_json(f, p, len);
	fclose(f);
	return buf;
}

/* compares line by line so a failure names the first differing line */
static void assert_lines(const char *got, const char *want)
{
	unsigned int line = 1;

	while (*got || *want) {
		size_t gl = strcspn(got, "\n"), wl = strcspn(want, "\n");

		if (gl != wl || memcmp(got, want, gl) != 0) {
			print_error("line %u:\n  got:  %.*s\n  want: %.*s\n", line, (int)gl, got,
				    (int)wl, want);
			fail();
		}
		got += gl + (got[gl] == '\n');
		want += wl + (want[wl] == '\n');
		line++;
	}
}

static void check_text(const __u8 *p, size_t len, int verbose, const char *want)
{
	char *got = print_text(p, len, verbose);

	assert_lines(got, want);
	free(got);
}

/* ---- §5.3 vectors -------------------------------------------------------------------- */

static void test_vectors(void **state)
{
	(void)state;
	check_text(v_bulk, sizeof(v_bulk), 0,
		   "PFSYNCv6 len 36\n    act UPD ST REQ count 1\n"
		   "\tid: 0000000000000000 creatorid: 00000000");
	check_text(v_ins_ack, sizeof(v_ins_ack), 0,
		   "PFSYNCv6 len 36\n    act INS ST ACK count 1\n"
		   "\tid: 6578a1c000000001 creatorid: 1234abcd");
	check_text(v_del_c, sizeof(v_del_c), 0,
		   "PFSYNCv6 len 48\n    act DEL ST COMP count 2\n"
		   "\tid: 6578a1c000000001 creatorid: 1234abcd\n"
		   "\tid: 6578a1c000000002 creatorid: 1234abcd");
	check_text(v_bus_end, sizeof(v_bus_end), 0,
		   "PFSYNCv6 len 36\n    act BULK UPD STAT count 1\n"
		   "\tcreatorid: 1234abcd age: 00:00:00 status: end");
	check_text(v_clr, sizeof(v_clr), 0,
		   "PFSYNCv6 len 44\n    act CLR ST count 1\n\tcreatorid: 1234abcd");
}

static void test_vector_json(void **state)
{
	char *got = print_json(v_bulk, sizeof(v_bulk));

	(void)state;
	assert_non_null(strstr(got, "\"version\":6,\"len\":36,"));
	assert_non_null(strstr(got,
			       "\"sections\":[{\"action\":5,\"label\":\"UPD ST REQ\",\"count\":1,"
			       "\"msglen\":12,\"messages\":[{\"id\":\"0000000000000000\","
			       "\"creatorid\":\"00000000\"}]}]"));
	assert_non_null(strstr(got, "\"errors\":[]"));
	assert_non_null(strstr(got, "\"accepted\":true"));
	free(got);
}

/* ---- builder-made packets ----------------------------------------------------------- */

static void fill_key(struct pfsync_state_key *k, const char *a0, const char *a1, __u16 p0, __u16 p1)
{
	memset(k, 0, sizeof(*k));
	assert_int_equal(inet_pton(AF_INET, a0, k->addr[0]), 1);
	assert_int_equal(inet_pton(AF_INET, a1, k->addr[1]), 1);
	pfsync_put_be16(&k->port[0], p0);
	pfsync_put_be16(&k->port[1], p1);
	k->af = PFSYNC_WIRE_AF_INET;
}

static void fill_peer(struct pfsync_state_peer *p, __u32 seqlo, __u32 seqhi, __u8 level)
{
	memset(p, 0, sizeof(*p));
	pfsync_put_be32(&p->seqlo, seqlo);
	pfsync_put_be32(&p->seqhi, seqhi);
	pfsync_put_be16(&p->max_win, 65535);
	p->state = level;
	p->wscale = PF_WSCALE_FLAG | 7;
}

/* inbound established TCP 10.0.0.1:40000 -> 10.0.0.2:22, bound to em0 */
static void make_tcp_state(struct pfsync_state *s, __u64 id)
{
	memset(s, 0, sizeof(*s));
	pfsync_put_be64(&s->id, id);
	strcpy(s->ifname, "em0");
	fill_key(&s->key[0], "10.0.0.1", "10.0.0.2", 40000, 22);
	s->key[1] = s->key[0];
	fill_peer(&s->src, 1000, 66535, 4);
	fill_peer(&s->dst, 5000, 70000, 4);
	pfsync_put_be32(&s->rule, 0);
	pfsync_put_be32(&s->anchor, 0xffffffffu);
	pfsync_put_be32(&s->nat_rule, 0xffffffffu);
	pfsync_put_be32(&s->creation, 3725);
	pfsync_put_be32(&s->expire, 86399);
	pfsync_put_be64(&s->packets[0], 10);
	pfsync_put_be64(&s->packets[1], 8);
	pfsync_put_be64(&s->bytes[0], 1000);
	pfsync_put_be64(&s->bytes[1], 2000);
	pfsync_put_be32(&s->creatorid, CREATOR);
	s->af = PFSYNC_WIRE_AF_INET;
	s->proto = IPPROTO_TCP;
	s->direction = PF_IN;
	s->timeout = PFTM_TCP_ESTABLISHED;
}

/* outbound UDP NATed from 192.168.1.10:5353 to 203.0.113.1:61000 */
static void make_udp_state(struct pfsync_state *s, __u64 id)
{
	memset(s, 0, sizeof(*s));
	pfsync_put_be64(&s->id, id);
	strcpy(s->ifname, "all");
	fill_key(&s->key[0], "198.51.100.7", "203.0.113.1", 53, 61000);
	fill_key(&s->key[1], "198.51.100.7", "192.168.1.10", 53, 5353);
	s->src.state = 2;
	s->dst.state = 1;
	pfsync_put_be32(&s->rule, 0xffffffffu);
	pfsync_put_be32(&s->anchor, 0xffffffffu);
	pfsync_put_be32(&s->creation, 59);
	pfsync_put_be32(&s->expire, 60);
	pfsync_put_be32(&s->creatorid, CREATOR);
	s->af = PFSYNC_WIRE_AF_INET;
	s->proto = IPPROTO_UDP;
	s->direction = PF_OUT;
	s->timeout = PFTM_UDP_MULTIPLE;
	pfsync_put_be16(&s->state_flags, PFSTATE_SLOPPY | PFSTATE_ACK);
}

static size_t build_all(__u8 *out, size_t cap)
{
	struct pfsync_builder *b = pfsync_builder_new(0);
	struct pfsync_state ins, upd;
	struct pfsync_upd_c uc;
	struct pfsync_clr clr;
	struct pfsync_bus bus;
	struct pfsync_tdb tdb;
	size_t len;

	assert_non_null(b);
	make_tcp_state(&ins, ID_BASE + 1);
	make_udp_state(&upd, ID_BASE + 2);
	memset(&uc, 0, sizeof(uc));
	pfsync_put_be64(&uc.id, ID_BASE + 1);
	pfsync_put_be32(&uc.creatorid, CREATOR);
	uc.timeout = PFTM_TCP_ESTABLISHED;
	memset(&clr, 0, sizeof(clr));
	strcpy(clr.ifname, "em1");
	pfsync_put_be32(&clr.creatorid, CREATOR);
	memset(&bus, 0, sizeof(bus));
	pfsync_put_be32(&bus.creatorid, CREATOR);
	pfsync_put_be32(&bus.endtime, 3723);
	bus.status = PFSYNC_BUS_END;
	memset(&tdb, 0, sizeof(tdb));
	pfsync_put_be32(&tdb.spi, 0xdeadbeef);
	pfsync_put_be64(&tdb.rpl, 16384);
	pfsync_put_be64(&tdb.cur_bytes, 123456);
	tdb.sproto = IPPROTO_ESP;
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS, &ins), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_UPD, &upd), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_UPD_C, &uc), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_BUS, &bus), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_CLR, &clr), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_TDB, &tdb), 0);
	len = pfsync_builder_finish(b, out, cap);
	pfsync_builder_free(b);
	return len;
}

/* builder order (lib/pfsync_wire.h): CLR UPD_C INS UPD TDB then BUS END */
static const char all_text[] =
    "PFSYNCv6 len 740\n"
    "    act CLR ST count 1\n"
    "\tcreatorid: 1234abcd interface: em1\n"
    "    act UPD ST COMP count 1\n"
    "\tid: 6578a1c000000001 creatorid: 1234abcd\n"
    "    act INS ST count 1\n"
    "\tem0 tcp 10.0.0.2:22 <- 10.0.0.1:40000    ESTABLISHED:ESTABLISHED\n"
    "    act UPD ST count 1\n"
    "\tall udp 203.0.113.1:61000 (192.168.1.10:5353) -> 198.51.100.7:53    MULTIPLE:SINGLE\n"
    "    act UPD TDB count 1\n"
    "\tspi: 0xdeadbeef rpl: 16384 cur_bytes: 123456\n"
    "    act BULK UPD STAT count 1\n"
    "\tcreatorid: 1234abcd age: 01:02:03 status: end";

static void test_builder_packet(void **state)
{
	__u8 pkt[1500];
	size_t len = build_all(pkt, sizeof(pkt));

	(void)state;
	assert_int_equal(len, 740);
	check_text(pkt, len, 0, all_text);
}

static void test_builder_packet_verbose(void **state)
{
	__u8 pkt[1500];
	size_t len = build_all(pkt, sizeof(pkt));
	char *got = print_text(pkt, len, 1);

	(void)state;
	assert_non_null(strstr(got, "\tem0 tcp 10.0.0.2:22 <- 10.0.0.1:40000    "
				    "ESTABLISHED:ESTABLISHED\n"
				    "\t   [5000 + 65000] wscale 7  [1000 + 65535] wscale 7\n"
				    "\t   age 01:02:05, expires in 23:59:59, 10:8 pkts, 1000:2000 "
				    "bytes, rule 0\n"
				    "\t   id: 6578a1c000000001 creatorid: 1234abcd\n"
				    "\t   timeout tcp.established, state flags 0x0000\n"));
	assert_non_null(strstr(got,
			       "MULTIPLE:SINGLE\n"
			       "\t   age 00:00:59, expires in 00:01:00, 0:0 pkts, 0:0 bytes\n"
			       "\t   id: 6578a1c000000002 creatorid: 1234abcd\n"
			       "\t   timeout udp.multiple, state flags 0x0012 <sloppy,ack>\n"));
	free(got);
}

static void test_builder_json(void **state)
{
	__u8 pkt[1500];
	size_t len = build_all(pkt, sizeof(pkt));
	char *got = print_json(pkt, len);

	(void)state;
	assert_non_null(strstr(got, "\"ifname\":\"em0\",\"key\":[{\"addr0\":\"10.0.0.1\","
				    "\"addr1\":\"10.0.0.2\",\"port0\":40000,\"port1\":22,"));
	assert_non_null(strstr(got, "\"packets\":[10,8],\"bytes\":[1000,2000]"));
	assert_non_null(strstr(got, "\"timeout\":2,\"timeout_name\":\"tcp.established\""));
	assert_non_null(strstr(got, "{\"creatorid\":\"1234abcd\",\"endtime\":3723,\"status\":2,"
				    "\"status_name\":\"end\"}"));
	assert_non_null(strstr(got, "\"spi\":\"deadbeef\""));
	assert_non_null(strstr(got, "\"addr1\":\"192.168.1.10\",\"port0\":53,\"port1\":5353"));
	assert_non_null(strstr(got, "\"accepted\":true"));
	free(got);
}

/* ---- malformed --------------------------------------------------------------------- */

static void test_error_words(void **state)
{
	__u8 p[64];

	(void)state;
	check_text(v_bulk, 19, 0, "[|pfsync]");
	check_text(NULL, 0, 0, "[|pfsync]");
	memcpy(p, v_bulk, sizeof(v_bulk));
	p[0] = 5;
	check_text(p, sizeof(v_bulk), 1, "PFSYNCv5 len 36");
	check_text(v_del_c, 40, 0,
		   "PFSYNCv6 len 48\n    act DEL ST COMP count 2\n"
		   "\tid: 6578a1c000000001 creatorid: 1234abcd\n    ...");
	memcpy(p, v_bulk, sizeof(v_bulk));
	p[3] = 24; /* the section runs past the claimed length */
	check_text(p, sizeof(v_bulk), 0,
		   "PFSYNCv6 len 24\n    act UPD ST REQ count 1\n"
		   "\tid: 0000000000000000 creatorid: 00000000\n    invalid header length");
	memcpy(p, v_bulk, sizeof(v_bulk));
	memset(p + sizeof(v_bulk), 0, 4); /* bytes beyond the claimed length */
	check_text(p, sizeof(v_bulk) + 4, 0,
		   "PFSYNCv6 len 36\n    act UPD ST REQ count 1\n"
		   "\tid: 0000000000000000 creatorid: 00000000\n    invalid packet length");
	memcpy(p, v_bulk, 24);
	p[3] = 24;
	p[20] = 19; /* unknown action */
	check_text(p, 24, 0, "PFSYNCv6 len 24\n    act UNKNOWN id 19");
	p[20] = PFSYNC_ACT_OUPD;
	check_text(p, 24, 0,
		   "PFSYNCv6 len 24\n    act UPD ST OLD count 1\n    unimplemented action");
	p[20] = PFSYNC_ACT_EOF; /* EOF ends the packet without a word */
	check_text(p, 24, 0, "PFSYNCv6 len 24\n    act EOF count 1");
}

/* every prefix of a real packet: the header line, then "..." as the last word */
static void test_every_truncation(void **state)
{
	__u8 pkt[1500];
	size_t len = build_all(pkt, sizeof(pkt));

	(void)state;
	for (size_t n = 0; n < len; n++) {
		__u8 *copy = malloc(n ? n : 1); /* exact size so ASan sees any over-read */
		char *got, *json;

		assert_non_null(copy);
		memcpy(copy, pkt, n);
		got = print_text(copy, n, 1);
		json = print_json(copy, n);
		if (n < PFSYNC_HDRLEN) {
			assert_string_equal(got, "[|pfsync]");
			assert_non_null(strstr(json, "\"errors\":[\"[|pfsync]\"]"));
		} else {
			size_t gl = strlen(got);

			assert_true(strncmp(got, "PFSYNCv6 len 740", 16) == 0);
			assert_true(gl >= 8 && strcmp(got + gl - 8, "\n    ...") == 0);
			assert_non_null(strstr(json, "\"errors\":[\"...\"]"));
			assert_non_null(strstr(json, "\"accepted\":false"));
		}
		free(got);
		free(json);
		free(copy);
	}
}

/* braces and brackets balance outside strings: a cheap well-formedness check */
static void assert_json_balanced(const char *s)
{
	int depth = 0, in_string = 0;

	for (; *s; s++) {
		if (in_string) {
			if (*s == '\\' && s[1])
				s++;
			else if (*s == '"')
				in_string = 0;
			continue;
		}
		if (*s == '"')
			in_string = 1;
		else if (*s == '{' || *s == '[')
			depth++;
		else if (*s == '}' || *s == ']')
			assert_true(--depth >= 0);
		else
			assert_true(*s != '\n');
	}
	assert_int_equal(depth, 0);
	assert_false(in_string);
}

static void test_garbage(void **state)
{
	__u32 seed = 12345;

	(void)state;
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(round % 700);
		__u8 *buf = malloc(n ? n : 1);
		char *got, *json;

		assert_non_null(buf);
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (__u8)(seed >> 16);
		}
		if (n >= 4 && round % 2) { /* a plausible header so the section walk runs */
			buf[0] = PFSYNC_VERSION;
			pfsync_put_be16(buf + 2, (__u16)n);
		}
		got = print_text(buf, n, round % 3 == 0);
		json = print_json(buf, n);
		assert_true(strlen(got) > 0);
		assert_json_balanced(json);
		free(got);
		free(json);
		free(buf);
	}
}

static void test_untrusted_names(void **state)
{
	__u8 p[sizeof(v_clr)];

	(void)state;
	memcpy(p, v_clr, sizeof(p));
	memcpy(p + 24, "e m\"\n\\", 6);
	check_text(p, sizeof(p), 0,
		   "PFSYNCv6 len 44\n    act CLR ST count 1\n"
		   "\tcreatorid: 1234abcd interface: e\\040m\"\\012\\134");
	char *json = print_json(p, sizeof(p));
	assert_non_null(strstr(json, "\"ifname\":\"e m\\\"\\u000a\\\\\""));
	free(json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),	     cmocka_unit_test(test_vector_json),
	    cmocka_unit_test(test_builder_packet),   cmocka_unit_test(test_builder_packet_verbose),
	    cmocka_unit_test(test_builder_json),     cmocka_unit_test(test_error_words),
	    cmocka_unit_test(test_every_truncation), cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_untrusted_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
