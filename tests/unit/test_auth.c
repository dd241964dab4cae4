/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The pfsync authentication trailer (agent/auth.c): signing and checking,
 * forgery, replay windows, key rotation, key files, and that a receiver
 * without a key still decodes a signed packet as OpenBSD would.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../agent/auth.h"
#include "pfsync_wire.h"

#define NOW_S	  1800000000U
#define START_NS  (1800000000ULL * 1000000000ULL)
#define SENDER_ID 0xa1a1a1a1
#define PKT_CAP	  1600
#define N_ID_MSGS 5

static const unsigned char key1[16] = "0123456789abcdef";
static const unsigned char key2[32] = "another key, thirty-two bytes!!";

struct packet {
	__u8 bytes[PKT_CAP];
	size_t len; /* payload and trailer */
};

static void add_key(struct auth *au, const unsigned char *k, size_t len)
{
	char err[AUTH_ERR_MAX];

	assert_int_equal(auth_add_key(au, k, len, err, sizeof(err)), 0);
}

/* a pfsync payload with a few DEL_C messages, signed by au */
static void signed_packet(struct auth *au, __u32 sender, struct packet *p)
{
	struct pfsync_builder *b = pfsync_builder_new(1500);
	struct pfsync_del_c m;
	size_t len;

	assert_non_null(b);
	for (unsigned int i = 0; i < N_ID_MSGS; i++) {
		pfsync_id_msg_fill(&m, 100 + i, 0x12345678);
		assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_DEL_C, &m), 0);
	}
	len = pfsync_builder_finish(b, p->bytes, sizeof(p->bytes));
	pfsync_builder_free(b);
	assert_true(len > PFSYNC_HDRLEN);
	assert_int_equal(auth_sign(au, sender, NOW_S, p->bytes, len, p->bytes + len), 0);
	p->len = len + AUTH_TRAILER_LEN;
}

static enum auth_verdict verify(struct auth *au, const struct packet *p)
{
	__u32 sender = 0;
	enum auth_verdict v = auth_verify(au, NOW_S, p->bytes, p->len, &sender);

	if (v == AUTH_OK)
		assert_int_equal(sender, SENDER_ID);
	return v;
}

static void test_signed_packet_verifies_once(void **unused)
{
	struct auth tx = {0}, rx = {0};
	struct packet p;

	(void)unused;
	add_key(&tx, key1, sizeof(key1));
	add_key(&rx, key1, sizeof(key1));
	auth_start(&tx, START_NS);
	signed_packet(&tx, SENDER_ID, &p);
	assert_int_equal(verify(&rx, &p), AUTH_OK);
	/* the same bytes again: a replay */
	assert_int_equal(verify(&rx, &p), AUTH_REPLAY);
	/* the next packet from the same context (MAC context re-used) verifies */
	signed_packet(&tx, SENDER_ID, &p);
	assert_int_equal(verify(&rx, &p), AUTH_OK);
	assert_int_equal(rx.verified_packets, 2);
	assert_int_equal(rx.dropped[AUTH_REPLAY], 1);
	auth_free(&tx);
	auth_free(&rx);
}

static void test_forgery_is_detected(void **unused)
{
	struct auth tx = {0}, rx = {0}, other = {0};
	struct packet p, q;

	(void)unused;
	add_key(&tx, key1, sizeof(key1));
	add_key(&rx, key1, sizeof(key1));
	add_key(&other, key2, sizeof(key2));
	auth_start(&tx, START_NS);
	auth_start(&other, START_NS);

	signed_packet(&tx, SENDER_ID, &p);
	q = p;
	q.bytes[PFSYNC_HDRLEN + 8] ^= 1; /* a message byte */
	assert_int_equal(verify(&rx, &q), AUTH_BAD_MAC);
	q = p;
	q.bytes[q.len - AUTH_TRAILER_LEN + 16 + 7] ^= 1; /* the sequence */
	assert_int_equal(verify(&rx, &q), AUTH_BAD_MAC);
	q = p;
	q.bytes[q.len - AUTH_TRAILER_LEN + 8] ^= 1; /* the sender */
	assert_int_equal(verify(&rx, &q), AUTH_BAD_MAC);
	q = p;
	q.bytes[q.len - 1] ^= 0x80; /* the MAC itself */
	assert_int_equal(verify(&rx, &q), AUTH_BAD_MAC);

	/* without a trailer, or a truncated one */
	q = p;
	q.len -= AUTH_TRAILER_LEN;
	assert_int_equal(verify(&rx, &q), AUTH_MISSING);
	q = p;
	q.len -= 1;
	assert_int_equal(verify(&rx, &q), AUTH_MISSING);

	/* signed with a key the receiver does not have */
	signed_packet(&other, SENDER_ID, &q);
	assert_int_equal(verify(&rx, &q), AUTH_UNKNOWN_KEY);

	/* none of the failures above moved the window: the real one passes */
	assert_int_equal(verify(&rx, &p), AUTH_OK);
	auth_free(&tx);
	auth_free(&rx);
	auth_free(&other);
}

static void test_replay_window(void **unused)
{
	struct auth tx = {0}, rx = {0};
	static struct packet pkts[AUTH_WINDOW_BITS + 6];

	(void)unused;
	add_key(&tx, key1, sizeof(key1));
	add_key(&rx, key1, sizeof(key1));
	auth_start(&tx, START_NS);
	for (unsigned int i = 0; i < AUTH_WINDOW_BITS + 6; i++)
		signed_packet(&tx, SENDER_ID, &pkts[i]);
	/* reordered: 0, 2, 1 all accepted once */
	assert_int_equal(verify(&rx, &pkts[0]), AUTH_OK);
	assert_int_equal(verify(&rx, &pkts[2]), AUTH_OK);
	assert_int_equal(verify(&rx, &pkts[1]), AUTH_OK);
	assert_int_equal(verify(&rx, &pkts[1]), AUTH_REPLAY);
	assert_int_equal(verify(&rx, &pkts[2]), AUTH_REPLAY);
	/* a jump of 70 moves the seen bits across a word boundary: 2 stays seen */
	assert_int_equal(verify(&rx, &pkts[72]), AUTH_OK);
	assert_int_equal(verify(&rx, &pkts[2]), AUTH_REPLAY);
	assert_int_equal(verify(&rx, &pkts[0]), AUTH_REPLAY);
	assert_int_equal(verify(&rx, &pkts[4]), AUTH_OK);
	/* jump far ahead: 3..5 fall out of the window, unseen but too old */
	assert_int_equal(verify(&rx, &pkts[AUTH_WINDOW_BITS + 5]), AUTH_OK);
	assert_int_equal(verify(&rx, &pkts[3]), AUTH_REPLAY);
	assert_int_equal(verify(&rx, &pkts[5]), AUTH_REPLAY);
	/* the oldest still inside is accepted, once */
	assert_int_equal(verify(&rx, &pkts[6]), AUTH_OK);
	assert_int_equal(verify(&rx, &pkts[6]), AUTH_REPLAY);
	/* unseen, just below the top */
	assert_int_equal(verify(&rx, &pkts[AUTH_WINDOW_BITS + 4]), AUTH_OK);
	assert_int_equal(verify(&rx, &pkts[AUTH_WINDOW_BITS + 4]), AUTH_REPLAY);
	auth_free(&tx);
	auth_free(&rx);
}

/* a restarted sender (same hostid) starts above everything it sent before */
static void test_sender_restart_and_stale_first_packet(void **unused)
{
	struct auth tx = {0}, rx = {0};
	struct packet p;
	__u32 sender;

	(void)unused;
	add_key(&tx, key1, sizeof(key1));
	add_key(&rx, key1, sizeof(key1));
	auth_start(&tx, START_NS);
	signed_packet(&tx, SENDER_ID, &p);
	assert_int_equal(verify(&rx, &p), AUTH_OK);
	auth_start(&tx, START_NS + 1000); /* a microsecond later */
	signed_packet(&tx, SENDER_ID, &p);
	assert_int_equal(verify(&rx, &p), AUTH_OK);

	/* a receiver that never heard this sender judges by the clock */
	auth_free(&rx);
	memset(&rx, 0, sizeof(rx));
	add_key(&rx, key1, sizeof(key1));
	signed_packet(&tx, SENDER_ID, &p);
	assert_int_equal(auth_verify(&rx, NOW_S + AUTH_FRESH_S + 1, p.bytes, p.len, &sender),
			 AUTH_STALE);
	assert_int_equal(auth_verify(&rx, NOW_S + AUTH_FRESH_S, p.bytes, p.len, &sender), AUTH_OK);
	auth_free(&tx);
	auth_free(&rx);
}

/* rotation: add the new key second, then sign with it, then drop the old */
static void test_key_rotation(void **unused)
{
	struct auth old_only = {0}, both_old_first = {0}, both_new_first = {0}, new_only = {0};
	struct packet p;

	(void)unused;
	add_key(&old_only, key1, sizeof(key1));
	add_key(&both_old_first, key1, sizeof(key1));
	add_key(&both_old_first, key2, sizeof(key2));
	add_key(&both_new_first, key2, sizeof(key2));
	add_key(&both_new_first, key1, sizeof(key1));
	add_key(&new_only, key2, sizeof(key2));
	auth_start(&old_only, START_NS);
	auth_start(&both_old_first, START_NS);
	auth_start(&both_new_first, START_NS);
	auth_start(&new_only, START_NS);

	signed_packet(&old_only, 1, &p);
	assert_int_equal(auth_verify(&both_new_first, NOW_S, p.bytes, p.len, &(__u32){0}), AUTH_OK);
	signed_packet(&both_old_first, 2, &p); /* still signs with the old key */
	assert_int_equal(auth_verify(&old_only, NOW_S, p.bytes, p.len, &(__u32){0}), AUTH_OK);
	signed_packet(&both_new_first, 3, &p);
	assert_int_equal(auth_verify(&both_old_first, NOW_S, p.bytes, p.len, &(__u32){0}), AUTH_OK);
	assert_int_equal(auth_verify(&new_only, NOW_S, p.bytes, p.len, &(__u32){0}), AUTH_OK);
	assert_int_equal(auth_verify(&old_only, NOW_S, p.bytes, p.len, &(__u32){0}),
			 AUTH_UNKNOWN_KEY);
	auth_free(&old_only);
	auth_free(&both_old_first);
	auth_free(&both_new_first);
	auth_free(&new_only);
}

/* the receiver without a key: OpenBSD's decoder trims to the header's length */
static int del_c_seen;

static void on_del_c(void *ctx, const struct pfsync_del_c *m)
{
	(void)ctx;
	assert_int_equal(PFSYNC_MSG_ID(m), 100 + del_c_seen);
	del_c_seen++;
}

static void test_decoder_without_key_ignores_trailer(void **unused)
{
	static const struct pfsync_decode_ops ops = {.del_c = on_del_c};
	struct auth tx = {0};
	struct pfsync_stats st = {0};
	struct packet p;

	(void)unused;
	add_key(&tx, key1, sizeof(key1));
	auth_start(&tx, START_NS);
	signed_packet(&tx, SENDER_ID, &p);
	assert_int_equal(pfsync_decode(p.bytes, p.len, &ops, NULL, &st), 0);
	assert_int_equal(del_c_seen, N_ID_MSGS);
	assert_int_equal(st.iacts[PFSYNC_ACT_DEL_C], N_ID_MSGS);
	assert_int_equal(st.badlen + st.badact + st.badval + st.hdrops + st.badver, 0);
	auth_free(&tx);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_key_files(void **unused)
{
	char path[] = "/tmp/pfsync-auth-test.XXXXXX";
	char err[AUTH_ERR_MAX];
	struct auth au = {0};
	int fd = mkstemp(path);

	(void)unused;
	assert_true(fd >= 0);
	close(fd);
	write_file(path,
		   "# rotation: the first key signs\n"
		   "00112233445566778899aabbccddeeff\n"
		   "  FFEEDDCCBBAA99887766554433221100ffeeddccbbaa99887766554433221100  # new\n",
		   0600);
	assert_int_equal(auth_load_key_file(&au, path, err, sizeof(err)), 0);
	assert_int_equal(au.nkeys, 2);
	assert_int_equal(au.keys[0].len, 16);
	assert_int_equal(au.keys[1].len, 32);
	assert_true(au.keys[0].id != au.keys[1].id);
	/* a third key is one too many */
	assert_int_equal(auth_load_key_file(&au, path, err, sizeof(err)), -1);
	auth_free(&au);

	chmod(path, 0640);
	assert_int_equal(auth_load_key_file(&au, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "group or others"));
	chmod(path, 0604);
	assert_int_equal(auth_load_key_file(&au, path, err, sizeof(err)), -1);
	assert_int_equal(au.nkeys, 0);

	write_file(path, "0011223344556677\n", 0600); /* 64 bits: too short */
	assert_int_equal(auth_load_key_file(&au, path, err, sizeof(err)), -1);
	write_file(path, "00112233445566778899aabbccddeefg\n", 0600);
	assert_int_equal(auth_load_key_file(&au, path, err, sizeof(err)), -1);
	write_file(path, "00112233445566778899aabbccddeeff 00\n", 0600);
	assert_int_equal(auth_load_key_file(&au, path, err, sizeof(err)), -1);
	write_file(path, "# nothing\n\n", 0600);
	assert_int_equal(auth_load_key_file(&au, path, err, sizeof(err)), -1);
	assert_int_equal(au.nkeys, 0);
	unlink(path);
	assert_int_equal(auth_load_key_file(&au, path, err, sizeof(err)), -1);
	auth_free(&au);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signed_packet_verifies_once),
	    cmocka_unit_test(test_forgery_is_detected),
	    cmocka_unit_test(test_replay_window),
	    cmocka_unit_test(test_sender_restart_and_stale_first_packet),
	    cmocka_unit_test(test_key_rotation),
	    cmocka_unit_test(test_decoder_without_key_ignores_trailer),
	    cmocka_unit_test(test_key_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
