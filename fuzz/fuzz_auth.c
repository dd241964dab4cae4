/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libFuzzer target: the authentication check every received packet passes
 * before the decoder sees it (agent/auth.c, --auth-key), then the decoder.
 *
 * First input byte selects the mode:
 *  - bit 0 clear: the rest is a packet off the wire, unsigned by us. It
 *    must never verify (nobody can forge HMAC-SHA256 by mutation), and
 *    exactly one drop counter must move.
 *  - bit 0 set: the rest is a pfsync payload that we sign as a sender
 *    would (header length set to it, trailer appended). It must verify
 *    once with the sender's hostid, be refused as a replay the second time,
 *    and be refused as forged once any single byte of it is altered (the
 *    byte chosen by the second input byte). What verified is then decoded,
 *    as the agent does, which must not crash whatever the payload holds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "pfsync_wire.h"

#define FUZZ_HOSTID 0x1234abcdU
#define FUZZ_NOW_S  2000000000U
#define PACKET_MAX  65535

static struct auth signer, receiver;

static void die(const char *what)
{
	fprintf(stderr, "fuzz_auth: invariant broken: %s\n", what);
	abort();
}

static void setup_once(void)
{
	static const unsigned char key[32] = "fuzz-auth-key-0123456789abcdef";
	static int ready;
	char err[AUTH_ERR_MAX];

	if (ready)
		return;
	if (auth_add_key(&signer, key, sizeof(key), err, sizeof(err)) != 0 ||
	    auth_add_key(&receiver, key, sizeof(key), err, sizeof(err)) != 0)
		die(err);
	auth_start(&signer, (__u64)FUZZ_NOW_S * 1000000000ULL);
	auth_start(&receiver, (__u64)FUZZ_NOW_S * 1000000000ULL);
	ready = 1;
}

static __u64 drops(const struct auth *au)
{
	__u64 sum = 0;

	for (int v = 0; v < AUTH_VERDICTS; v++)
		sum += au->dropped[v];
	return sum;
}

static void decode_verified(const __u8 *payload, size_t len)
{
	static const struct pfsync_decode_ops no_ops;
	struct pfsync_stats stats;

	memset(&stats, 0, sizeof(stats));
	(void)pfsync_decode(payload, len, &no_ops, NULL, &stats);
}

static void check_unsigned(const __u8 *data, size_t size)
{
	__u64 before = drops(&receiver);
	__u32 sender = 0;

	if (auth_verify(&receiver, FUZZ_NOW_S, data, size, &sender) == AUTH_OK)
		die("a packet we never signed verified");
	if (drops(&receiver) != before + 1)
		die("a refused packet did not move exactly one drop counter");
}

static void check_signed(const __u8 *data, size_t size)
{
	static __u8 pkt[PACKET_MAX];
	size_t flip_at, len;
	__u32 sender = 0;

	if (size < 1 + PFSYNC_HDRLEN || size - 1 > PACKET_MAX - AUTH_TRAILER_LEN)
		return;
	flip_at = data[0];
	len = size - 1;
	memcpy(pkt, data + 1, len);
	pkt[2] = (__u8)(len >> 8); /* the header announces the payload */
	pkt[3] = (__u8)len;
	if (auth_sign(&signer, FUZZ_HOSTID, FUZZ_NOW_S, pkt, len, pkt + len) != 0)
		die("signing failed");
	if (auth_verify(&receiver, FUZZ_NOW_S, pkt, len + AUTH_TRAILER_LEN, &sender) != AUTH_OK)
		die("our own signed packet did not verify");
	if (sender != FUZZ_HOSTID)
		die("verified packet names the wrong sender");
	decode_verified(pkt, len);
	if (auth_verify(&receiver, FUZZ_NOW_S, pkt, len + AUTH_TRAILER_LEN, &sender) != AUTH_REPLAY)
		die("the same packet verified twice");
	flip_at %= len + AUTH_TRAILER_LEN;
	pkt[flip_at] ^= 0x01;
	if (auth_verify(&receiver, FUZZ_NOW_S, pkt, len + AUTH_TRAILER_LEN, &sender) == AUTH_OK)
		die("an altered packet verified");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	if (size < 1)
		return 0;
	if (data[0] & 1)
		check_signed(data + 1, size - 1);
	else
		check_unsigned(data + 1, size - 1);
	return 0;
}
