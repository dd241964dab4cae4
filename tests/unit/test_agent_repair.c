/* SPDX-License-Identifier: BSD-2-Clause */
/* Loss repair's pure parts: trailer codec, sender history, receiver gaps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../agent/repair.h"
#include "pfsync_wire.h"

#define HOST  0x0a0b0c0d
#define SESS  77
#define T0_NS 1000000000ULL

/* a bare pfsync header followed by the encoded trailer; returns the length */
static size_t packet_with(const struct repair_trailer *t, const struct repair_range *r, __u8 *pkt)
{
	memset(pkt, 0, PFSYNC_HDRLEN);
	pkt[0] = PFSYNC_VERSION;
	pfsync_put_be16(pkt + 2, PFSYNC_HDRLEN);
	return PFSYNC_HDRLEN + repair_encode(t, r, pkt + PFSYNC_HDRLEN);
}

static void test_trailer_round_trip(void **unused)
{
	struct repair_range r[2] = {{3, 5}, {9, 9}};
	struct repair_trailer t = {.kind = REPAIR_NAK,
				   .flags = REPAIR_F_ALL,
				   .nranges = 2,
				   .hostid = HOST,
				   .session = SESS,
				   .seq = 40,
				   .target_hostid = 0x99,
				   .target_session = 5};
	struct repair_trailer got;
	__u8 pkt[256];
	size_t len;

	(void)unused;
	len = packet_with(&t, r, pkt);
	assert_int_equal(len, PFSYNC_HDRLEN + REPAIR_HDR_LEN + REPAIR_NAK_EXTRA + 16);
	assert_int_equal(repair_parse(pkt, len, &got), 0);
	assert_int_equal(got.kind, REPAIR_NAK);
	assert_int_equal(got.flags, REPAIR_F_ALL);
	assert_int_equal(got.hostid, HOST);
	assert_int_equal(got.session, SESS);
	assert_int_equal(got.seq, 40);
	assert_int_equal(got.target_hostid, 0x99);
	assert_int_equal(got.target_session, 5);
	assert_int_equal(got.nranges, 2);
	assert_int_equal(repair_range_at(&got, 1).first, 9);
	/* an auth trailer behind it changes nothing */
	memset(pkt + len, 0xaa, 56);
	assert_int_equal(repair_parse(pkt, len + 56, &got), 0);
	/* cut short, or a range upside down: malformed; no trailer: none */
	assert_int_equal(repair_parse(pkt, len - 1, &got), -2);
	pfsync_put_be32(pkt + PFSYNC_HDRLEN + REPAIR_HDR_LEN + REPAIR_NAK_EXTRA, 6);
	assert_int_equal(repair_parse(pkt, len, &got), -2);
	assert_int_equal(repair_parse(pkt, PFSYNC_HDRLEN, &got), -1);
	/* numbers whose successor would wrap to 0, and data numbered 0, are refused */
	t.kind = REPAIR_DATA;
	t.nranges = 0;
	t.seq = REPAIR_SEQ_NONE;
	assert_int_equal(repair_parse(pkt, packet_with(&t, NULL, pkt), &got), -2);
	t.seq = 0;
	assert_int_equal(repair_parse(pkt, packet_with(&t, NULL, pkt), &got), -2);
	t.seq = 1;
	len = packet_with(&t, NULL, pkt);
	assert_int_equal(repair_parse(pkt, len, &got), 0);
	pkt[PFSYNC_HDRLEN] = 'X';
	assert_int_equal(repair_parse(pkt, len, &got), -1);
}

static void test_history_keeps_and_forgets(void **unused)
{
	struct repair_tx tx;
	__u8 pkt[1400];
	const __u8 *copy;
	size_t len;
	__u32 first, seq = 0;

	(void)unused;
	assert_int_equal(repair_tx_init(&tx, SESS), 0);
	memset(pkt, 1, sizeof(pkt));
	first = repair_tx_record(&tx, pkt, 100);
	assert_int_equal(first, 1);
	assert_int_equal(repair_tx_get(&tx, 1, &copy, &len), 0);
	assert_int_equal(len, 100);
	assert_memory_equal(copy, pkt, 100);
	assert_int_equal(repair_tx_get(&tx, 2, &copy, &len), -1); /* never sent */
	/* more than the arena holds: the first copy is gone, the last kept */
	for (size_t sent = 0; sent <= REPAIR_HISTORY_BYTES; sent += sizeof(pkt)) {
		pkt[0] = (__u8)sent;
		seq = repair_tx_record(&tx, pkt, sizeof(pkt));
	}
	assert_int_equal(repair_tx_get(&tx, first, &copy, &len), -1);
	assert_int_equal(repair_tx_get(&tx, seq, &copy, &len), 0);
	assert_memory_equal(copy, pkt, sizeof(pkt));
	repair_tx_free(&tx);
}

static void test_gaps_named_and_repaired(void **unused)
{
	static struct repair_rx rx;
	struct repair_range out[REPAIR_MAX_RANGES], done_r = {3, 4};
	struct repair_trailer done = {
	    .kind = REPAIR_DONE, .nranges = 1, .hostid = HOST, .session = SESS};
	struct repair_trailer parsed;
	struct repair_peer *p;
	__u8 pkt[256];
	int all;

	(void)unused;
	p = repair_rx_seen(&rx, HOST, SESS, 1, 1, T0_NS);
	assert_non_null(p);
	repair_rx_seen(&rx, HOST, SESS, 2, 1, T0_NS);
	repair_rx_seen(&rx, HOST, SESS, 6, 1, T0_NS); /* 3..5 lost */
	assert_int_equal(repair_rx_missing(&rx), 3);
	repair_rx_seen(&rx, HOST, SESS, 5, 1, T0_NS); /* late */
	assert_int_equal(repair_rx_missing(&rx), 2);
	/* a beacon names the last number: 7 was lost too */
	repair_rx_seen(&rx, HOST, SESS, 7, 0, T0_NS);
	assert_int_equal(repair_rx_missing(&rx), 3);
	assert_int_equal(repair_rx_nak_due(p, T0_NS, out, REPAIR_MAX_RANGES, &all), 2);
	assert_int_equal(all, 0);
	assert_int_equal(out[0].first, 3);
	assert_int_equal(out[0].last, 4);
	assert_int_equal(out[1].first, 7);
	/* not again before the retry time; again after it */
	assert_int_equal(repair_rx_nak_due(p, T0_NS + REPAIR_NAK_GAP_NS, out, 8, &all), 0);
	assert_int_equal(repair_rx_nak_due(p, T0_NS + REPAIR_RETRY_NS, out, 8, &all), 2);
	/* the DONE for 3..4 closes them; 7 is still asked for */
	assert_int_equal(repair_parse(pkt, packet_with(&done, &done_r, pkt), &parsed), 0);
	repair_rx_done(p, &parsed);
	assert_int_equal(repair_rx_missing(&rx), 1);
	assert_int_equal(p->repaired_seqs, 2);
	assert_true(repair_rx_deadline(p) == T0_NS + 2 * REPAIR_RETRY_NS);
}

static void test_split_overflow_and_restart(void **unused)
{
	static struct repair_rx rx;
	struct repair_range out[4];
	struct repair_peer *p;
	int all;

	(void)unused;
	p = repair_rx_seen(&rx, HOST, SESS, 1, 1, T0_NS);
	repair_rx_seen(&rx, HOST, SESS, 11, 1, T0_NS); /* 2..10 lost */
	repair_rx_seen(&rx, HOST, SESS, 6, 1, T0_NS);  /* the middle arrives late */
	assert_int_equal(p->nmissing, 2);
	assert_int_equal(repair_rx_missing(&rx), 8);
	/* gaps beyond what a list can name: one request for everything */
	for (__u32 s = 13; p->nmissing && s < 13 + 2 * REPAIR_MAX_MISSING + 8; s += 2)
		repair_rx_seen(&rx, HOST, SESS, s, 1, T0_NS);
	assert_true(p->want_all);
	assert_int_equal(repair_rx_nak_due(p, T0_NS, out, 4, &all), 0);
	assert_int_equal(all, 1);
	/* the sender restarted with gaps outstanding: everything, from the new run */
	p = repair_rx_seen(&rx, HOST, SESS + 1, 1, 1, T0_NS);
	assert_true(p->want_all);
	assert_int_equal(p->nmissing, 0);
	assert_int_equal(p->next, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_trailer_round_trip),
	    cmocka_unit_test(test_history_keeps_and_forgets),
	    cmocka_unit_test(test_gaps_named_and_repaired),
	    cmocka_unit_test(test_split_overflow_and_restart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
