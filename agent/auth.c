/* SPDX-License-Identifier: BSD-2-Clause */
/* The pfsync authentication trailer (auth.h): keys, signing, checking. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "auth.h"
#include "pfsync_wire.h"

#define AUTH_FILE_MAX 4096
static const __u8 auth_magic[4] = {'P', 'F', 'A', '1'};

/* ---- keys ------------------------------------------------------------------ */
/* the key id is public: a fingerprint, so both ends need not agree on numbers */
static int key_fingerprint(const unsigned char *key, size_t len, __u32 *id)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL) || mdlen < 4)
		return -1;
	*id = pfsync_get_be32(md);
	return 0;
}

static struct evp_mac_ctx_st *keyed_hmac(const unsigned char *key, size_t len)
{
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};
	EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;

	EVP_MAC_free(alg); /* the context holds its own reference */
	if (ctx && !EVP_MAC_init(ctx, key, len, params)) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

int auth_add_key(struct auth *au, const unsigned char *key, size_t len, char *err, size_t errlen)
{
	struct auth_key *k;
	__u32 id;

	if (au->nkeys >= AUTH_MAX_KEYS) {
		snprintf(err, errlen, "at most %d keys (the one that signs and one more)",
			 AUTH_MAX_KEYS);
		return -1;
	}
	if (len < AUTH_KEY_MIN || len > AUTH_KEY_MAX) {
		snprintf(err, errlen, "a key must have %d to %d bytes (%d to %d hex digits)",
			 AUTH_KEY_MIN, AUTH_KEY_MAX, 2 * AUTH_KEY_MIN, 2 * AUTH_KEY_MAX);
		return -1;
	}
	if (key_fingerprint(key, len, &id)) {
		snprintf(err, errlen, "SHA-256 unavailable in libcrypto");
		return -1;
	}
	for (unsigned int i = 0; i < au->nkeys; i++) {
		if (au->keys[i].id == id) {
			snprintf(err, errlen, "key %08x given twice", id);
			return -1;
		}
	}
	k = &au->keys[au->nkeys];
	k->mac = keyed_hmac(key, len);
	if (!k->mac) {
		snprintf(err, errlen, "HMAC-SHA256 unavailable in libcrypto");
		return -1;
	}
	k->id = id;
	k->len = len;
	au->nkeys++;
	return 0;
}

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* one line of hex (blanks around it and '#' comments already gone) */
static int parse_key_line(struct auth *au, const char *hex, size_t n, char *err, size_t errlen)
{
	unsigned char key[AUTH_KEY_MAX];
	int rc;

	if (n % 2 || n / 2 > sizeof(key)) {
		snprintf(err, errlen, "a key is an even number of hex digits, %d to %d",
			 2 * AUTH_KEY_MIN, 2 * AUTH_KEY_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i += 2) {
		int hi = hex_digit((unsigned char)hex[i]),
		    lo = hex_digit((unsigned char)hex[i + 1]);

		if (hi < 0 || lo < 0) {
			snprintf(err, errlen, "not a hex digit in a key");
			OPENSSL_cleanse(key, sizeof(key));
			return -1;
		}
		key[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	rc = auth_add_key(au, key, n / 2, err, errlen);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

static int parse_keys(struct auth *au, char *text, char *err, size_t errlen)
{
	unsigned int before = au->nkeys, line_no = 0;
	char *save = NULL;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *end;

		line_no++;
		line[strcspn(line, "#")] = '\0';
		line += strspn(line, " \t\r");
		end = line + strcspn(line, " \t\r");
		if (end[strspn(end, " \t\r")] != '\0') {
			snprintf(err, errlen, "line %u: one key per line", line_no);
			return -1;
		}
		if (end == line)
			continue;
		if (parse_key_line(au, line, (size_t)(end - line), err, errlen)) {
			size_t used = strlen(err);

			snprintf(err + used, errlen - used, " (line %u)", line_no);
			return -1;
		}
	}
	if (au->nkeys == before) {
		snprintf(err, errlen, "no key in the file");
		return -1;
	}
	return 0;
}

/* the file's bytes, if nobody but its owner may read or change it */
static ssize_t read_private_file(const char *path, char *buf, size_t cap, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t n;

	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
			 "mode %04o lets group or others read or change the key; "
			 "refusing to start (chmod 600 %s)",
			 (unsigned int)(st.st_mode & 07777), path);
		close(fd);
		return -1;
	}
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n < 0 || (size_t)n == cap - 1) {
		snprintf(err, errlen, n < 0 ? "read failed" : "too large for a key file");
		return -1;
	}
	buf[n] = '\0';
	return n;
}

int auth_load_key_file(struct auth *au, const char *path, char *err, size_t errlen)
{
	char text[AUTH_FILE_MAX];
	char why[AUTH_ERR_MAX] = "";
	int rc = -1;

	if (read_private_file(path, text, sizeof(text), why, sizeof(why)) >= 0)
		rc = parse_keys(au, text, why, sizeof(why));
	OPENSSL_cleanse(text, sizeof(text));
	if (rc)
		snprintf(err, errlen, "--auth-key %s: %s", path, why);
	return rc;
}

void auth_start(struct auth *au, __u64 start_ns)
{
	au->seq = start_ns;
}

void auth_free(struct auth *au)
{
	for (unsigned int i = 0; i < au->nkeys; i++)
		EVP_MAC_CTX_free(au->keys[i].mac);
	OPENSSL_cleanse(au->keys, sizeof(au->keys));
	au->nkeys = 0;
}

/* ---- MAC ------------------------------------------------------------------- */
static int compute_mac(struct auth_key *k, const void *payload, size_t len, const __u8 *head,
		       __u8 *out)
{
	size_t outlen = 0;

	/* no key: the one set when the key was added is reused */
	if (!EVP_MAC_init(k->mac, NULL, 0, NULL) || !EVP_MAC_update(k->mac, payload, len) ||
	    !EVP_MAC_update(k->mac, head, AUTH_MAC_OFF) ||
	    !EVP_MAC_final(k->mac, out, &outlen, AUTH_MAC_LEN) || outlen != AUTH_MAC_LEN)
		return -1;
	return 0;
}

int auth_sign(struct auth *au, __u32 hostid, __u32 now_s, const void *payload, size_t len,
	      __u8 *trailer)
{
	struct auth_key *k = &au->keys[0];

	if (!au->nkeys)
		return -1;
	memcpy(trailer, auth_magic, sizeof(auth_magic));
	pfsync_put_be32(trailer + 4, k->id);
	pfsync_put_be32(trailer + 8, hostid);
	pfsync_put_be32(trailer + 12, now_s);
	pfsync_put_be64(trailer + 16, au->seq++);
	if (compute_mac(k, payload, len, trailer, trailer + AUTH_MAC_OFF))
		return -1;
	au->signed_packets++;
	return 0;
}

/* ---- replay windows ----------------------------------------------------------- */
/* moves every seen bit n places further from the top */
static void window_shift(__u64 *w, __u64 n)
{
	const unsigned int nwords = AUTH_WINDOW_BITS / 64;
	unsigned int words, bits;

	if (n >= AUTH_WINDOW_BITS) {
		memset(w, 0, nwords * sizeof(*w));
		return;
	}
	words = (unsigned int)(n / 64);
	bits = (unsigned int)(n % 64);
	for (int i = (int)nwords - 1; i >= 0; i--) {
		__u64 v = 0;

		if (i >= (int)words) {
			v = w[i - words] << bits;
			if (bits && i > (int)words)
				v |= w[i - words - 1] >> (64 - bits);
		}
		w[i] = v;
	}
}

/* 0 = new (now recorded), -1 = seen or too old */
static int window_accept(struct auth_sender *s, __u64 seq)
{
	__u64 diff;

	if (seq > s->top) {
		window_shift(s->window, seq - s->top);
		s->window[0] |= 1;
		s->top = seq;
		return 0;
	}
	diff = s->top - seq;
	if (diff >= AUTH_WINDOW_BITS || (s->window[diff / 64] & (1ULL << (diff % 64))))
		return -1;
	s->window[diff / 64] |= 1ULL << (diff % 64);
	return 0;
}

static struct auth_sender *find_sender(struct auth *au, __u32 hostid)
{
	for (unsigned int i = 0; i < AUTH_MAX_SENDERS; i++)
		if (au->senders[i].used && au->senders[i].hostid == hostid)
			return &au->senders[i];
	return NULL;
}

/* a free slot, else the one heard from longest ago */
static struct auth_sender *new_sender(struct auth *au, __u32 hostid, __u64 seq)
{
	struct auth_sender *s = &au->senders[0];

	for (unsigned int i = 0; i < AUTH_MAX_SENDERS; i++) {
		if (!au->senders[i].used) {
			s = &au->senders[i];
			break;
		}
		if (au->senders[i].last_used < s->last_used)
			s = &au->senders[i];
	}
	memset(s, 0, sizeof(*s));
	s->used = 1;
	s->hostid = hostid;
	s->top = seq;
	s->window[0] = 1;
	return s;
}

static enum auth_verdict check_fresh(struct auth *au, const __u8 *t, __u32 now_s)
{
	__u32 hostid = pfsync_get_be32(t + 8), sent_s = pfsync_get_be32(t + 12);
	__u64 seq = pfsync_get_be64(t + 16);
	struct auth_sender *s = find_sender(au, hostid);
	__s32 skew = (__s32)(now_s - sent_s);

	if (!s) {
		/* nothing heard from it yet: only its clock tells an old capture */
		if (skew > AUTH_FRESH_S || skew < -AUTH_FRESH_S)
			return AUTH_STALE;
		s = new_sender(au, hostid, seq);
	} else if (window_accept(s, seq) != 0) {
		return AUTH_REPLAY;
	}
	s->last_used = ++au->clock;
	return AUTH_OK;
}

enum auth_verdict auth_verify(struct auth *au, __u32 now_s, const __u8 *payload, size_t len,
			      __u32 *sender)
{
	__u8 mac[AUTH_MAC_LEN];
	const __u8 *t;
	struct auth_key *k = NULL;
	size_t claimed, signed_len;
	enum auth_verdict v;

	if (len < PFSYNC_HDRLEN + AUTH_TRAILER_LEN)
		return au->dropped[AUTH_MISSING]++, AUTH_MISSING;
	/* the trailer is last; between the pfsync length and it may be others (repair.h) */
	signed_len = len - AUTH_TRAILER_LEN;
	claimed = pfsync_get_be16(payload + 2);
	t = payload + signed_len;
	if (claimed < PFSYNC_HDRLEN || claimed > signed_len ||
	    memcmp(t, auth_magic, sizeof(auth_magic)) != 0)
		return au->dropped[AUTH_MISSING]++, AUTH_MISSING;
	for (unsigned int i = 0; i < au->nkeys && !k; i++)
		if (au->keys[i].id == pfsync_get_be32(t + 4))
			k = &au->keys[i];
	if (!k)
		return au->dropped[AUTH_UNKNOWN_KEY]++, AUTH_UNKNOWN_KEY;
	if (compute_mac(k, payload, signed_len, t, mac) != 0 ||
	    CRYPTO_memcmp(mac, t + AUTH_MAC_OFF, AUTH_MAC_LEN) != 0)
		return au->dropped[AUTH_BAD_MAC]++, AUTH_BAD_MAC;
	/* authentic: now its sequence may move the window */
	v = check_fresh(au, t, now_s);
	if (v != AUTH_OK)
		return au->dropped[v]++, v;
	*sender = pfsync_get_be32(t + 8);
	au->verified_packets++;
	return AUTH_OK;
}

const char *auth_verdict_name(enum auth_verdict v)
{
	static const char *const names[AUTH_VERDICTS] = {
	    "ok", "unauthenticated", "unknown key", "forged", "replayed", "stale",
	};

	return v < AUTH_VERDICTS ? names[v] : "?";
}
