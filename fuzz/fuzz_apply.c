/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libFuzzer target: a received packet through the agent's real apply path
 * (agent/apply.c: apply_packet, with the decoder, the index, the send queue
 * and the batched import) onto an in-memory implementation of the store
 * interface (agent/store.h). The store only stores: every decision is
 * apply.c's. Preset states (the ids and creators the seeds name) are in the
 * store and the index before each input.
 *
 * First input byte: bit 0 set = the rest is an IPv4 packet, clear = a bare
 * pfsync payload put behind an IPv4 header with TTL 255 (the seeds of
 * fuzz_decode and fuzz/corpus use the same byte); bit 1 set = the store
 * offers insert_batch (the batched import path), clear = one at a time;
 * bit 2 = that batch call fails (the one-by-one fallback); bit 3 = the
 * store is nearly full (inserts fail with -E2BIG); bit 4 = the packet
 * arrives on another interface than the sync device.
 *
 * Invariants checked (abort = finding):
 *  - states only disappear when a DEL/DEL_C named them (remove) or a CLR
 *    named their creator (a quiet, creator-bound flush); the decoder's own
 *    list of what the packet names is taken by a separate decode pass;
 *  - an update never changes which state (id, creator) a key holds;
 *  - every state written is marked FROM_PEER, with a non-zero creator;
 *  - the store's count matches inserts - removals, and the agent's
 *    deleted_by_peer / cleared_by_peer counters match the removals;
 *  - everything the agent sends in answer decodes without an error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/ip.h>

#include "agent.h"
#include "fuzz_common.h"

#define STORE_SLOTS	  256
#define OUR_HOSTID	  0x11111111U
#define SYNCDEV		  5
#define MODE_IPV4	  0x1
#define MODE_BATCH	  0x2
#define MODE_BATCH_FAILS  0x4
#define MODE_SMALL	  0x8
#define MODE_OTHER_IF	  0x10
#define SMALL_STORE_SLOTS (PRESET_STATES + 4)

struct mem_entry {
	int used;
	struct pfsync_key key;
	struct pfsync_state_value val;
};

struct ident {
	__u64 id;
	__u32 creatorid;
};

/* the in-memory store, and what the fuzzer learns of the packet */
struct mem_store {
	struct mem_entry tab[STORE_SLOTS];
	size_t slots; /* in use of tab: STORE_SLOTS, or fewer for a full store */
	int batch_fails;
	size_t count, inserted;
	size_t removed_by_del, removed_by_clr;
	struct ident named[MAX_NAMED]; /* DEL / DEL_C in the packet */
	size_t nnamed;
	__u32 cleared[MAX_NAMED]; /* CLR creators in the packet */
	size_t ncleared;
};

static struct mem_store M;
static struct agent A;

/* ---- the store: a table searched by key ------------------------------------ */
static struct mem_entry *mem_find(const struct pfsync_key *k)
{
	for (size_t i = 0; i < STORE_SLOTS; i++)
		if (M.tab[i].used && memcmp(&M.tab[i].key, k, sizeof(*k)) == 0)
			return &M.tab[i];
	return NULL;
}

static void check_written(const struct pfsync_state_value *v)
{
	CHECK(v->flags & PFSYNC_SF_FROM_PEER);
	CHECK(v->creatorid != 0);
}

static int mem_lookup(void *ctx, const struct pfsync_key *k, struct pfsync_state_value *v)
{
	struct mem_entry *e = mem_find(k);

	(void)ctx;
	if (!e)
		return -ENOENT;
	*v = e->val;
	return 0;
}

static int mem_insert(void *ctx, const struct pfsync_key *k, const struct pfsync_state_value *v)
{
	(void)ctx;
	check_written(v);
	if (mem_find(k))
		return -EEXIST;
	for (size_t i = 0; i < M.slots; i++) {
		if (!M.tab[i].used) {
			M.tab[i] = (struct mem_entry){.used = 1, .key = *k, .val = *v};
			M.count++;
			M.inserted++;
			return 0;
		}
	}
	return -E2BIG;
}

static int mem_insert_batch(void *ctx, const struct pfsync_import_entry *e, unsigned int n, int *rc)
{
	CHECK(n <= PFSYNC_IMPORT_BATCH);
	if (M.batch_fails)
		return -EIO; /* as when the batch program cannot run */
	for (unsigned int i = 0; i < n; i++)
		rc[i] = mem_insert(ctx, &e[i].key, &e[i].val);
	return 0;
}

static int mem_update(void *ctx, const struct pfsync_key *k, const struct pfsync_state_value *v)
{
	struct mem_entry *e = mem_find(k);

	(void)ctx;
	if (!e)
		return -ENOENT;
	/* a merge changes a state's contents, never which state the key holds */
	CHECK(e->val.id == v->id && e->val.creatorid == v->creatorid);
	check_written(v);
	e->val = *v;
	return 0;
}

static int was_named(__u64 id, __u32 creatorid)
{
	for (size_t i = 0; i < M.nnamed; i++)
		if (M.named[i].id == id && M.named[i].creatorid == creatorid)
			return 1;
	return 0;
}

static int was_cleared(__u32 creatorid)
{
	for (size_t i = 0; i < M.ncleared; i++)
		if (M.cleared[i] == creatorid)
			return 1;
	return 0;
}

static int mem_remove(void *ctx, const struct pfsync_key *k)
{
	struct mem_entry *e = mem_find(k);

	(void)ctx;
	if (!e)
		return -ENOENT;
	CHECK(was_named(e->val.id, e->val.creatorid));
	e->used = 0;
	M.count--;
	M.removed_by_del++;
	return 0;
}

static int mem_read_batch(void *ctx, struct store_cursor *cur, struct pfsync_key *keys,
			  struct pfsync_state_value *vals, unsigned int *n)
{
	unsigned int got = 0;

	(void)ctx;
	for (size_t i = (size_t)cur->token; i < STORE_SLOTS && got < *n; i++) {
		cur->token = i + 1;
		if (!M.tab[i].used)
			continue;
		keys[got] = M.tab[i].key;
		vals[got] = M.tab[i].val;
		got++;
	}
	cur->done = cur->token >= STORE_SLOTS;
	*n = got;
	return 0;
}

/* the only sweep a received packet may cause: a CLR's quiet flush of one creator */
static int mem_sweep(void *ctx, struct pfsync_sweep_args *args)
{
	(void)ctx;
	CHECK(args->sweep_flags ==
	      (PFSYNC_SWEEP_FLUSH | PFSYNC_SWEEP_CREATOR | PFSYNC_SWEEP_QUIET));
	CHECK(was_cleared(args->creatorid));
	for (size_t i = 0; i < STORE_SLOTS; i++) {
		if (!M.tab[i].used)
			continue;
		args->seen++;
		if (M.tab[i].val.creatorid != args->creatorid)
			continue;
		M.tab[i].used = 0;
		M.count--;
		M.removed_by_clr++;
		args->deleted++;
	}
	return 0;
}

static int mem_unqueue(void *ctx, struct pfsync_unqueue_args *args)
{
	(void)ctx;
	args->done = 0;
	for (unsigned int i = 0; i < args->count && i < PFSYNC_UNQUEUE_BATCH; i++) {
		struct mem_entry *e = mem_find(&args->keys[i]);

		if (e) {
			e->val.flags &= ~PFSYNC_SF_QUEUED;
			args->done++;
		}
	}
	return 0;
}

/* ---- what the packet names: a separate decode pass -------------------------- */
static void name_state(void *ctx, const struct pfsync_state *m)
{
	(void)ctx;
	if (M.nnamed < MAX_NAMED)
		M.named[M.nnamed++] = (struct ident){PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m)};
}

static void name_del_c(void *ctx, const struct pfsync_del_c *m)
{
	(void)ctx;
	if (M.nnamed < MAX_NAMED)
		M.named[M.nnamed++] = (struct ident){PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m)};
}

static void name_clr(void *ctx, const struct pfsync_clr *m)
{
	(void)ctx;
	if (M.ncleared < MAX_NAMED)
		M.cleared[M.ncleared++] = PFSYNC_MSG_CREATOR(m);
}

static const struct pfsync_decode_ops naming_ops = {
    .del = name_state,
    .del_c = name_del_c,
    .clr = name_clr,
};

/* ---- the agent around apply.c ---------------------------------------------- */
/* what the agent sends in answer (INS_ACK, UPD_REQ, updates) must be valid pfsync */
static int check_xmit(struct agent *a, const __u8 *payload, size_t len)
{
	static const struct pfsync_decode_ops none;
	struct pfsync_stats st;

	(void)a;
	memset(&st, 0, sizeof(st));
	CHECK(pfsync_decode(payload, len, &none, NULL, &st) == 0);
	CHECK(st.badlen == 0 && st.badact == 0 && st.badval == 0);
	return 0;
}

static void preset_states(void)
{
	for (int i = 0; i < PRESET_STATES; i++) {
		struct pfsync_key k;
		struct pfsync_state_value v;

		fuzz_preset_state(i, &k, &v);
		v.flags = PFSYNC_SF_FROM_PEER;
		CHECK(mem_insert(NULL, &k, &v) == 0);
		CHECK(index_put(&A.index, v.id, v.creatorid, &k) == 0);
	}
	/* a stale index entry: its key holds another state (the index lags the map) */
	{
		struct pfsync_key k = M.tab[0].key;

		CHECK(index_put(&A.index, PRESET_ID + PRESET_STATES, PRESET_CREATOR, &k) == 0);
	}
	M.inserted = 0;
}

static void agent_setup(int batch)
{
	struct agent *a = &A;

	memset(a, 0, sizeof(*a));
	a->hostid = OUR_HOSTID;
	a->now_ns = FUZZ_NOW;
	a->sock.fd = a->tun.fd = a->ctl.fd = -1;
	a->sock.ifindex = SYNCDEV;
	a->sock.mtu = 1500;
	a->config_fd = a->globals_fd = -1;
	a->xmit = check_xmit;
	a->bulk_rate = WALKER_DEFAULT_RATE;
	a->cfg.timeouts[PFTM_TCP_ESTABLISHED] = 3600; /* a configured, non-default value */
	a->store = (struct state_store){
	    .lookup = mem_lookup,
	    .insert = mem_insert,
	    .update = mem_update,
	    .remove = mem_remove,
	    .insert_batch = batch ? mem_insert_batch : NULL,
	    .read_batch = mem_read_batch,
	    .sweep = mem_sweep,
	    .unqueue = mem_unqueue,
	};
	index_init(&a->index);
	defer_init(&a->defer, -1, 20);
	CHECK(sendq_init(&a->sendq, a->sock.mtu) == 0);
	agent_bind_sendq_io(a);
	a->builder = pfsync_builder_new(a->sock.mtu);
	a->pkt = malloc(AGENT_RXBUF);
	CHECK(a->builder && a->pkt);
}

static void agent_teardown(void)
{
	struct agent *a = &A;

	index_free(&a->index);
	defer_free(&a->defer);
	sendq_free(&a->sendq);
	walker_free(&a->walker);
	pfsync_builder_free(a->builder);
	free(a->pkt);
}

/* a bare payload behind the IPv4 header a peer on the segment would send */
static size_t wrap_ipv4(const uint8_t *p, size_t n, __u8 *out, size_t cap)
{
	struct iphdr *ip = (struct iphdr *)out;

	if (n + sizeof(*ip) > cap || n + sizeof(*ip) > 65535)
		return 0;
	memset(ip, 0, sizeof(*ip));
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = PFSYNC_IPTOS;
	ip->ttl = PFSYNC_DFLTTL;
	ip->protocol = IPPROTO_PFSYNC;
	ip->tot_len = htons((__u16)(n + sizeof(*ip)));
	memcpy(out + sizeof(*ip), p, n);
	return n + sizeof(*ip);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static __u8 pkt[65536];
	struct pfsync_stats scratch;
	const __u8 *ip = data + 1;
	size_t len = size - 1;

	if (size < 1)
		return 0;
	if (!(data[0] & MODE_IPV4)) {
		len = wrap_ipv4(data + 1, size - 1, pkt, sizeof(pkt));
		ip = pkt;
		if (!len)
			return 0;
	}
	agent_log_level = LOG_LVL_ERR;
	memset(&M, 0, sizeof(M));
	M.slots = data[0] & MODE_SMALL ? SMALL_STORE_SLOTS : STORE_SLOTS;
	M.batch_fails = !!(data[0] & MODE_BATCH_FAILS);
	agent_setup(data[0] & MODE_BATCH);
	preset_states();
	memset(&scratch, 0, sizeof(scratch));
	pfsync_input_ipv4(ip, len, &naming_ops, NULL, &scratch);

	apply_packet(&A, ip, len, data[0] & MODE_OTHER_IF ? SYNCDEV + 1 : SYNCDEV);
	A.now_ns += 2 * NS; /* the queued answers (INS_ACK, stale updates) go out */
	agent_flush_sendq(&A);

	CHECK(M.count == PRESET_STATES + M.inserted - M.removed_by_del - M.removed_by_clr);
	CHECK(A.deleted_by_peer == M.removed_by_del);
	CHECK(A.cleared_by_peer == M.removed_by_clr);
	CHECK(A.stats.ipackets == 1);
	agent_teardown();
	return 0;
}
