/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Packet authentication for the pfsync transport (an extension: no pfsync
 * implementation has any, pfsync-wire.md §4.2). The sender appends a
 * trailer after the length the pfsync header announces, so an OpenBSD
 * receiver, which trims to that length, still reads the packet:
 *
 *   off  size  field
 *     0     4  magic "PFA1"
 *     4     4  key id (big-endian): the first 4 bytes of SHA-256 over the key
 *     8     4  sender's hostid (big-endian): whose replay window this is
 *    12     4  sender's wall clock, seconds (big-endian): freshness
 *    16     8  sequence (big-endian): the sender's wall clock in ns at its
 *              start, plus one per packet, so it grows across restarts
 *    24    32  HMAC-SHA256(key, everything before this trailer (the pfsync
 *              payload, and the repair trailer, repair.h) || trailer bytes 0..23)
 *
 * Up to two keys are accepted (rotation); the first one signs. The crypto
 * is OpenSSL's libcrypto (EVP_MAC); nothing here is hand-written crypto.
 */
#ifndef AGENT_AUTH_H
#define AGENT_AUTH_H

#include <stddef.h>
#include <linux/types.h>

#define AUTH_TRAILER_LEN 56
#define AUTH_MAC_OFF	 24
#define AUTH_MAC_LEN	 32
#define AUTH_MAX_KEYS	 2
#define AUTH_KEY_MIN	 16 /* bytes: 128 bits at least */
#define AUTH_KEY_MAX	 64
#define AUTH_WINDOW_BITS 1024 /* packets a sender's stream may be reordered by */
#define AUTH_MAX_SENDERS 32
#define AUTH_FRESH_S	 120 /* first packet from a sender: clocks may differ this much */
#define AUTH_ERR_MAX	 256

struct evp_mac_ctx_st;

struct auth_key {
	__u32 id;
	size_t len;
	struct evp_mac_ctx_st *mac; /* keyed once, re-initialised per packet */
};

/* one sender's replay window, keyed by its (authenticated) hostid */
struct auth_sender {
	__u32 hostid;
	int used;
	__u64 top;			     /* highest sequence accepted */
	__u64 window[AUTH_WINDOW_BITS / 64]; /* bit i: top - i seen */
	__u64 last_used;		     /* for eviction: auth.clock at last accept */
};

enum auth_verdict {
	AUTH_OK = 0,
	AUTH_MISSING, /* no trailer (unauthenticated sender) */
	AUTH_UNKNOWN_KEY,
	AUTH_BAD_MAC, /* forged or altered */
	AUTH_REPLAY,  /* sequence already seen, or older than the window */
	AUTH_STALE,   /* first packet from a sender, clock too far off */
	AUTH_VERDICTS,
};

struct auth {
	unsigned int nkeys;
	struct auth_key keys[AUTH_MAX_KEYS]; /* keys[0] signs */
	__u64 seq;			     /* the next sequence we send */
	struct auth_sender senders[AUTH_MAX_SENDERS];
	__u64 clock; /* accept counter, for least-recently-used eviction */
	__u64 dropped[AUTH_VERDICTS];
	__u64 signed_packets, verified_packets;
};

/*
 * Reads one key file (one or more lines of hex, '#' comments) into au.
 * Refuses files that group or others may read or write. 0, or -1 with err set.
 */
int auth_load_key_file(struct auth *au, const char *path, char *err, size_t errlen);
/* adds one raw key (tests, and the file reader); 0 or -1 with err set */
int auth_add_key(struct auth *au, const unsigned char *key, size_t len, char *err, size_t errlen);
/* after the keys: seeds the sequence; start_ns = wall clock in ns */
void auth_start(struct auth *au, __u64 start_ns);
void auth_free(struct auth *au);

/*
 * Writes the trailer for payload[0..len) into trailer (AUTH_TRAILER_LEN
 * bytes), signed with keys[0]. 0 or -1 (crypto failure).
 */
int auth_sign(struct auth *au, __u32 hostid, __u32 now_s, const void *payload, size_t len,
	      __u8 *trailer);

/*
 * Checks a received pfsync payload of len bytes (trailer included) and, if
 * it is authentic and new, records its sequence. *sender = its hostid.
 */
enum auth_verdict auth_verify(struct auth *au, __u32 now_s, const __u8 *payload, size_t len,
			      __u32 *sender);
const char *auth_verdict_name(enum auth_verdict v);

#endif /* AGENT_AUTH_H */
