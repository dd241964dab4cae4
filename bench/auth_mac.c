// SPDX-License-Identifier: BSD-2-Clause
/*
 * bench/auth_mac: what the --auth-key trailer costs per packet, in-process
 * (no network, no scheduling noise; bench/auth.sh measures the agents).
 * Full packets as the agent builds them with a key (MTU 1500 less the
 * trailer), INS-only and UPD_C-only, are signed with auth_sign() and checked
 * with auth_verify() (a fresh sequence each time, as on the wire). Baseline
 * in the same run: decoding the same packet (pfsync_decode, no callbacks),
 * which every received packet costs anyway. Printed: ns per packet and per
 * state, and the ratio to the decode baseline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* one translation unit: the agent's auth code is not in libpfsync */
#include "../agent/auth.c"

#define ROUNDS	 20000
#define LINK_MTU 1500
#define NOW_S	 1800000000U
#define SENDER	 0xa1a1a1a1

struct pkt {
	__u8 bytes[LINK_MTU];
	size_t len; /* pfsync payload, without the trailer */
	unsigned int states;
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* fills a packet with as many messages of one action as fit */
static int build(__u8 action, struct pkt *p)
{
	struct pfsync_builder *b = pfsync_builder_new(LINK_MTU - AUTH_TRAILER_LEN);
	__u8 msg[sizeof(struct pfsync_state)];

	if (!b)
		return -1;
	memset(msg, 0, sizeof(msg));
	p->states = 0;
	while (pfsync_builder_add(b, action, msg) == 0)
		p->states++;
	p->len = pfsync_builder_finish(b, p->bytes, sizeof(p->bytes));
	pfsync_builder_free(b);
	return p->len ? 0 : -1;
}

static void run(const char *name, struct pkt *p, struct auth *tx, struct auth *rx)
{
	struct pfsync_stats st;
	volatile unsigned int sink = 0;
	double t0, decode_ns, sign_ns, verify_ns;
	__u32 sender;

	t0 = now_ns();
	for (int i = 0; i < ROUNDS; i++) {
		memset(&st, 0, sizeof(st));
		sink += (unsigned int)pfsync_decode(p->bytes, p->len, NULL, NULL, &st);
	}
	decode_ns = (now_ns() - t0) / ROUNDS;
	/* signed once per round and kept, so that each verify sees a new sequence */
	static __u8 trailers[ROUNDS][AUTH_TRAILER_LEN];
	t0 = now_ns();
	for (int i = 0; i < ROUNDS; i++)
		sink += (unsigned int)auth_sign(tx, SENDER, NOW_S, p->bytes, p->len, trailers[i]);
	sign_ns = (now_ns() - t0) / ROUNDS;
	t0 = now_ns();
	for (int i = 0; i < ROUNDS; i++) {
		memcpy(p->bytes + p->len, trailers[i], AUTH_TRAILER_LEN);
		if (auth_verify(rx, NOW_S, p->bytes, p->len + AUTH_TRAILER_LEN, &sender) != AUTH_OK)
			sink++;
	}
	verify_ns = (now_ns() - t0) / ROUNDS;
	printf("%-7s %6zu %7u %11.0f %9.0f %10.0f %14.1f %9.2f\n", name, p->len + AUTH_TRAILER_LEN,
	       p->states, decode_ns, sign_ns, verify_ns, (sign_ns + verify_ns) / p->states,
	       (sign_ns + verify_ns) / decode_ns);
	if (sink)
		printf("  (%u failures)\n", sink);
}

int main(void)
{
	static const unsigned char key[32] = "bench/auth_mac key, 32 bytes...";
	struct auth tx = {0}, rx = {0};
	char err[AUTH_ERR_MAX];
	static struct pkt ins, updc;

	if (auth_add_key(&tx, key, sizeof(key), err, sizeof(err)) ||
	    auth_add_key(&rx, key, sizeof(key), err, sizeof(err)) || build(PFSYNC_ACT_INS, &ins) ||
	    build(PFSYNC_ACT_UPD_C, &updc)) {
		fprintf(stderr, "auth_mac: set-up failed: %s\n", err);
		return 1;
	}
	auth_start(&tx, 1);
	printf("bench/auth_mac: HMAC-SHA256 trailer, %d packets each, %s\n", ROUNDS,
	       OpenSSL_version(OPENSSL_VERSION));
	printf("%-7s %6s %7s %11s %9s %10s %14s %9s\n", "packet", "bytes", "states", "decode ns",
	       "sign ns", "verify ns", "sign+verify/st", "x decode");
	run("INS", &ins, &tx, &rx);
	run("UPD_C", &updc, &tx, &rx);
	auth_free(&tx);
	auth_free(&rx);
	return 0;
}
