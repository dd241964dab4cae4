/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Received packets applied to a state table stand-in: imports are marked
 * FROM_PEER and never echoed, unknown states are requested with one UPD_REQ
 * packet, deletes touch only what they name, bad packets are counted.
 */
#include <errno.h>
#include <netinet/ip.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../agent/agent.h"
#include "pfsync_logic.h"

#define NSEC	 1000000000ULL
#define FAKE_MAX 64
#define SYNCDEV	 5
#define PEER_ID	 0x22222222u
#define OUR_ID	 0x11111111u

struct fake_entry {
	int used;
	struct pfsync_key key;
	struct pfsync_state_value val;
};

struct world {
	struct agent a;
	struct fake_entry tab[FAKE_MAX];
	unsigned int sent;
	unsigned int sent_acts[PFSYNC_ACT_MAX];
	__u64 last_upd_req_ids[16];
	unsigned int nlast_upd_req;
	struct pfsync_sweep_args last_sweep;
	unsigned int read_cap; /* fake_read_batch: states a read gives at most (0: no cap) */
};

static struct world *W;

static struct fake_entry *fake_find(const struct pfsync_key *k)
{
	for (unsigned int i = 0; i < FAKE_MAX; i++)
		if (W->tab[i].used && !memcmp(&W->tab[i].key, k, sizeof(*k)))
			return &W->tab[i];
	return NULL;
}

static int fake_lookup(void *ctx, const struct pfsync_key *k, struct pfsync_state_value *v)
{
	struct fake_entry *e = fake_find(k);

	(void)ctx;
	if (!e)
		return -ENOENT;
	*v = e->val;
	return 0;
}

static int fake_insert(void *ctx, const struct pfsync_key *k, const struct pfsync_state_value *v)
{
	(void)ctx;
	if (fake_find(k))
		return -EEXIST;
	for (unsigned int i = 0; i < FAKE_MAX; i++) {
		if (!W->tab[i].used) {
			W->tab[i].used = 1;
			W->tab[i].key = *k;
			W->tab[i].val = *v;
			return 0;
		}
	}
	return -E2BIG;
}

static int fake_update(void *ctx, const struct pfsync_key *k, const struct pfsync_state_value *v)
{
	struct fake_entry *e = fake_find(k);

	(void)ctx;
	if (!e)
		return -ENOENT;
	e->val = *v;
	return 0;
}

static int fake_remove(void *ctx, const struct pfsync_key *k)
{
	struct fake_entry *e = fake_find(k);

	(void)ctx;
	if (!e)
		return -ENOENT;
	e->used = 0;
	return 0;
}

static int fake_read_batch(void *ctx, struct store_cursor *cur, struct pfsync_key *keys,
			   struct pfsync_state_value *vals, unsigned int *n)
{
	unsigned int got = 0;

	(void)ctx;
	if (W->read_cap && *n > W->read_cap)
		*n = W->read_cap;
	for (unsigned int i = (unsigned int)cur->token; i < FAKE_MAX && got < *n; i++) {
		cur->token = i + 1;
		if (!W->tab[i].used)
			continue;
		keys[got] = W->tab[i].key;
		vals[got] = W->tab[i].val;
		got++;
	}
	cur->done = cur->token >= FAKE_MAX;
	*n = got;
	return 0;
}

/* the program's KEYS mode: each key judged on its live value (config defaults) */
static unsigned int sweep_calls, sweep_pass_ends, sweep_pass_seen, sweep_max_keys;

static void fake_sweep_keys(struct pfsync_sweep_args *args)
{
	sweep_calls++;
	if (args->count > sweep_max_keys)
		sweep_max_keys = args->count;
	for (unsigned int i = 0; i < args->count; i++) {
		struct fake_entry *e = fake_find(&args->keys[i]);

		if (!e)
			continue;
		args->seen++;
		if (pfsync_state_expires_ns(&e->val, NULL, 0) <= args->now_ns) {
			e->used = 0;
			args->deleted++;
		}
	}
	if (args->sweep_flags & PFSYNC_SWEEP_PASS_END) {
		sweep_pass_ends++;
		sweep_pass_seen = args->pass_seen;
	}
}

static int fake_sweep(void *ctx, struct pfsync_sweep_args *args)
{
	(void)ctx;
	W->last_sweep = *args;
	if (args->sweep_flags & PFSYNC_SWEEP_KEYS) {
		fake_sweep_keys(args);
		return 0;
	}
	for (unsigned int i = 0; i < FAKE_MAX; i++) {
		if (!W->tab[i].used)
			continue;
		args->seen++;
		if ((args->sweep_flags & PFSYNC_SWEEP_CREATOR) &&
		    W->tab[i].val.creatorid != args->creatorid)
			continue;
		if (args->sweep_flags & PFSYNC_SWEEP_FLUSH) {
			W->tab[i].used = 0;
			args->deleted++;
		}
	}
	return 0;
}

static unsigned int unqueued_total;

static int fake_unqueue(void *ctx, struct pfsync_unqueue_args *args)
{
	(void)ctx;
	for (unsigned int i = 0; i < args->count; i++) {
		struct fake_entry *e = fake_find(&args->keys[i]);

		if (e)
			e->val.flags &= ~PFSYNC_SF_QUEUED;
	}
	unqueued_total += args->count;
	args->done = args->count;
	return 0;
}

static void on_sent_upd_req(void *ctx, const struct pfsync_upd_req *m)
{
	(void)ctx;
	if (W->nlast_upd_req < 16)
		W->last_upd_req_ids[W->nlast_upd_req++] = PFSYNC_MSG_ID(m);
}

static int capture_xmit(struct agent *a, const __u8 *payload, size_t len)
{
	static const struct pfsync_decode_ops ops = {.upd_req = on_sent_upd_req};
	struct pfsync_stats st;

	(void)a;
	memset(&st, 0, sizeof(st));
	W->nlast_upd_req = 0;
	assert_int_equal(pfsync_decode(payload, len, &ops, NULL, &st), 0);
	for (unsigned int i = 0; i < PFSYNC_ACT_MAX; i++)
		W->sent_acts[i] += st.iacts[i];
	W->sent++;
	return 0;
}

static int setup(void **state)
{
	struct agent *a;

	agent_log_level = LOG_LVL_ERR;
	W = calloc(1, sizeof(*W));
	assert_non_null(W);
	a = &W->a;
	a->hostid = OUR_ID;
	a->now_ns = 1000 * NSEC;
	a->sock.fd = a->tun.fd = a->ctl.fd = -1;
	a->sock.ifindex = SYNCDEV;
	a->sock.mtu = 1500;
	a->config_fd = a->globals_fd = -1;
	a->xmit = capture_xmit;
	a->bulk_rate = WALKER_DEFAULT_RATE;
	a->store.lookup = fake_lookup;
	a->store.insert = fake_insert;
	a->store.update = fake_update;
	a->store.remove = fake_remove;
	a->store.read_batch = fake_read_batch;
	a->store.sweep = fake_sweep;
	a->store.unqueue = fake_unqueue;
	index_init(&a->index);
	defer_init(&a->defer, -1, 20);
	assert_int_equal(sendq_init(&a->sendq, 1500), 0);
	agent_bind_sendq_io(a);
	a->builder = pfsync_builder_new(1500);
	a->pkt = malloc(AGENT_RXBUF);
	assert_non_null(a->builder);
	assert_non_null(a->pkt);
	*state = W;
	return 0;
}

static int teardown(void **state)
{
	struct agent *a = &W->a;

	(void)state;
	index_free(&a->index);
	defer_free(&a->defer);
	sendq_free(&a->sendq);
	walker_free(&a->walker);
	pfsync_builder_free(a->builder);
	free(a->pkt);
	free(W);
	return 0;
}

static struct pfsync_key key_for(__u32 n)
{
	struct pfsync_key k;

	memset(&k, 0, sizeof(k));
	k.addr[0][0] = htobe32(0x0a000001);
	k.addr[1][0] = htobe32(0x0a000100 + n);
	k.port[0] = htobe16(40000);
	k.port[1] = htobe16(80);
	k.proto = IPPROTO_TCP;
	k.af = PFSYNC_AF_INET;
	return k;
}

static struct pfsync_state_value value_for(__u64 id, __u32 creator, __u32 seqlo)
{
	struct pfsync_state_value v;

	memset(&v, 0, sizeof(v));
	v.id = id;
	v.creatorid = creator;
	v.rule = 0xffffffffu;
	v.creation = 990 * NSEC;
	v.last_seen = 999 * NSEC;
	v.timeout = PFTM_TCP_ESTABLISHED;
	v.direction = PF_IN;
	v.peer[0].state = TCPS_ESTABLISHED;
	v.peer[1].state = TCPS_ESTABLISHED;
	v.peer[0].seqlo = seqlo;
	v.peer[1].seqlo = seqlo;
	return v;
}

/* a state as a peer would send it */
static void wire_state(__u32 n, __u64 id, __u32 creator, __u32 seqlo, struct pfsync_state *out)
{
	struct pfsync_key k = key_for(n);
	struct pfsync_state_value v = value_for(id, creator, seqlo);

	pfsync_state_export(&k, &v, 1000 * NSEC, NULL, 0, out);
}

/*
 * wraps one pfsync payload in an IPv4 header and hands it to the receive
 * path; apply_packet's verdict (0: passed every check)
 */
static int deliver_rc(struct pfsync_builder *b, __u8 ttl, int ifindex)
{
	__u8 pkt[1500];
	struct iphdr *ip = (struct iphdr *)pkt;
	size_t len = pfsync_builder_finish(b, pkt + sizeof(*ip), sizeof(pkt) - sizeof(*ip));

	assert_true(len > 0);
	memset(ip, 0, sizeof(*ip));
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = ttl;
	ip->protocol = IPPROTO_PFSYNC;
	ip->tot_len = htons((__u16)(len + sizeof(*ip)));
	return apply_packet(&W->a, pkt, len + sizeof(*ip), ifindex);
}

static void deliver(struct pfsync_builder *b, __u8 ttl, int ifindex)
{
	deliver_rc(b, ttl, ifindex);
}

static void deliver_one(__u8 action, const void *msg)
{
	struct pfsync_builder *b = pfsync_builder_new(1500);

	assert_non_null(b);
	assert_int_equal(pfsync_builder_add(b, action, msg), 0);
	deliver(b, 255, SYNCDEV);
	pfsync_builder_free(b);
}

static unsigned int table_count(void)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < FAKE_MAX; i++)
		n += W->tab[i].used;
	return n;
}

static void put_local(__u32 n, __u64 id, __u32 creator, __u32 seqlo)
{
	struct pfsync_key k = key_for(n);
	struct pfsync_state_value v = value_for(id, creator, seqlo);

	assert_int_equal(fake_insert(NULL, &k, &v), 0);
	assert_int_equal(index_put(&W->a.index, id, creator, &k), 0);
}

static void test_insert_imported_not_echoed(void **state)
{
	struct pfsync_state st;
	struct pfsync_state_value v;
	struct pfsync_key k = key_for(1);

	(void)state;
	wire_state(1, 0x1234, PEER_ID, 5000, &st);
	deliver_one(PFSYNC_ACT_INS, &st);
	assert_int_equal(W->a.stats.ipackets, 1);
	assert_int_equal(W->a.stats.iacts[PFSYNC_ACT_INS], 1);
	assert_int_equal(fake_lookup(NULL, &k, &v), 0);
	assert_int_equal(v.id, 0x1234);
	assert_int_equal(v.creatorid, PEER_ID);
	assert_true(v.flags & PFSYNC_SF_FROM_PEER);
	assert_int_equal(v.peer[0].seqlo, 5000);
	assert_int_equal(index_count(&W->a.index), 1);
	/* nothing to say back: no message queued, nothing sent */
	assert_int_equal(sendq_pending(&W->a.sendq), 0);
	assert_int_equal(W->sent, 0);
	/* the same INS again is a duplicate: merged, still one state */
	deliver_one(PFSYNC_ACT_INS, &st);
	assert_int_equal(table_count(), 1);
	assert_int_equal(sendq_pending(&W->a.sendq), 0);
}

/* issue 15: a translated peer state goes in under its wire key, its stack key kept */
static void test_insert_translated_keeps_both_keys(void **state)
{
	struct pfsync_key k = key_for(2), stack = key_for(2);
	struct pfsync_state_value v = value_for(0x77, PEER_ID, 100), got;
	struct pfsync_state st;

	(void)state;
	/* the responder (10.0.1.2:80) is reached as 192.168.7.7:8080 inside: rdr-to */
	stack.addr[1][0] = htobe32(0xc0a80707);
	stack.port[1] = htobe16(8080);
	v.nat.type = PFSYNC_NAT_RDR;
	v.nat.stack_key = stack;
	v.nat.stack_init_side = 0;
	pfsync_state_export(&k, &v, 1000 * NSEC, NULL, 0, &st);
	assert_memory_not_equal(&st.key[0], &st.key[1], sizeof(st.key[0]));
	deliver_one(PFSYNC_ACT_INS, &st);
	assert_int_equal(fake_lookup(NULL, &k, &got), 0);
	assert_int_equal(got.nat.type, PFSYNC_NAT_RDR);
	assert_memory_equal(&got.nat.stack_key, &stack, sizeof(stack));
	assert_int_equal(table_count(), 1);
}

static void test_insert_with_ack_is_acked(void **state)
{
	struct pfsync_state st;

	(void)state;
	wire_state(2, 0x99, PEER_ID, 1, &st);
	pfsync_put_be16(&st.state_flags, PFSTATE_ACK);
	deliver_one(PFSYNC_ACT_INS, &st);
	assert_int_equal(sendq_decide(&W->a.sendq, W->a.now_ns), SENDQ_ALL);
	agent_flush_sendq(&W->a);
	assert_int_equal(W->sent, 1);
	assert_int_equal(W->sent_acts[PFSYNC_ACT_INS_ACK], 1);
	assert_int_equal(W->a.stats.oacts[PFSYNC_ACT_INS_ACK], 1);
	assert_int_equal(W->a.stats.opackets, 1);
}

static void test_unknown_upd_c_one_request(void **state)
{
	struct pfsync_builder *b = pfsync_builder_new(1500);
	struct pfsync_upd_c u;
	struct pfsync_state_value v = value_for(0, PEER_ID, 10);

	(void)state;
	for (__u64 id = 1; id <= 3; id++) {
		v.id = id;
		pfsync_upd_c_export(&v, &u);
		assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_UPD_C, &u), 0);
	}
	deliver(b, 255, SYNCDEV);
	pfsync_builder_free(b);
	assert_int_equal(W->sent, 1);
	assert_int_equal(W->sent_acts[PFSYNC_ACT_UPD_REQ], 3);
	assert_int_equal(W->nlast_upd_req, 3);
	assert_int_equal(W->last_upd_req_ids[0], 1);
	assert_int_equal(W->last_upd_req_ids[2], 3);
	assert_int_equal(table_count(), 0);
}

static void test_upd_c_merges_and_stale_answers(void **state)
{
	struct pfsync_upd_c u;
	struct pfsync_state_value v = value_for(7, PEER_ID, 2000), got;
	struct pfsync_key k = key_for(7);

	(void)state;
	put_local(7, 7, PEER_ID, 1000);
	pfsync_upd_c_export(&v, &u);
	deliver_one(PFSYNC_ACT_UPD_C, &u);
	assert_int_equal(fake_lookup(NULL, &k, &got), 0);
	assert_int_equal(got.peer[0].seqlo, 2000);
	assert_int_equal(W->a.stats.stale, 0);
	assert_int_equal(sendq_pending(&W->a.sendq), 0);
	/* an older view is stale: counted, and our newer copy is queued for the peer */
	v.peer[0].seqlo = 1500;
	v.peer[1].seqlo = 1500;
	pfsync_upd_c_export(&v, &u);
	deliver_one(PFSYNC_ACT_UPD_C, &u);
	assert_int_equal(fake_lookup(NULL, &k, &got), 0);
	assert_int_equal(got.peer[0].seqlo, 2000);
	assert_int_equal(W->a.stats.stale, 1);
	assert_int_equal(sendq_pending(&W->a.sendq), 1);
}

/* delivers an UPD_C of state 8 whose halves both hold seqlo, seqhi, max_win */
static void deliver_upd_edges(__u32 seqlo, __u32 seqhi, __u16 max_win)
{
	struct pfsync_state_value v = value_for(8, PEER_ID, seqlo);
	struct pfsync_upd_c u;

	for (int i = 0; i < 2; i++) {
		v.peer[i].seqhi = seqhi;
		v.peer[i].max_win = max_win;
	}
	pfsync_upd_c_export(&v, &u);
	deliver_one(PFSYNC_ACT_UPD_C, &u);
}

/* both halves of state 8 hold seqlo, seqhi and max_win */
static void assert_edges(__u32 seqlo, __u32 seqhi, __u16 max_win)
{
	struct pfsync_key k = key_for(8);
	struct pfsync_state_value got;

	assert_int_equal(fake_lookup(NULL, &k, &got), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(got.peer[i].seqlo, seqlo);
		assert_int_equal(got.peer[i].seqhi, seqhi);
		assert_int_equal(got.peer[i].max_win, max_win);
	}
}

/*
 * An update with our seqlo moves no window edge back: packed before our
 * latest ACK raised them (our own, looped back on lo, did that), it stalled
 * the connection for good. A later edge is still taken.
 */
static void test_upd_c_same_seqlo_keeps_edges(void **state)
{
	(void)state;
	put_local(8, 8, PEER_ID, 3000);
	deliver_upd_edges(3000, 9000, 100);
	assert_edges(3000, 9000, 100);
	deliver_upd_edges(3000, 5000, 50);
	assert_edges(3000, 9000, 100);
	assert_int_equal(W->a.stats.stale, 0); /* pf's rule: not stale, only its edges are old */
	deliver_upd_edges(3000, 12000, 120);
	assert_edges(3000, 12000, 120);
	/* a later seqlo is taken whole, as pf does */
	deliver_upd_edges(4000, 7000, 60);
	assert_edges(4000, 7000, 60);
}

static void test_delete_only_what_is_named(void **state)
{
	struct pfsync_del_c d;

	(void)state;
	put_local(1, 100, PEER_ID, 1);
	put_local(2, 101, PEER_ID, 1);
	pfsync_id_msg_fill(&d, 100, PEER_ID);
	deliver_one(PFSYNC_ACT_DEL_C, &d);
	assert_int_equal(table_count(), 1);
	assert_int_equal(index_count(&W->a.index), 1);
	/* unknown identity (same id, other creator): badstate, nothing removed */
	pfsync_id_msg_fill(&d, 101, OUR_ID);
	deliver_one(PFSYNC_ACT_DEL_C, &d);
	assert_int_equal(W->a.stats.badstate, 1);
	assert_int_equal(table_count(), 1);
	/* a delete from a peer is never echoed */
	assert_int_equal(sendq_pending(&W->a.sendq), 0);
	assert_int_equal(W->sent, 0);
}

static void test_clr_removes_that_creator(void **state)
{
	struct pfsync_clr c;

	(void)state;
	put_local(1, 1, PEER_ID, 1);
	put_local(2, 2, PEER_ID, 1);
	put_local(3, 3, OUR_ID, 1);
	memset(&c, 0, sizeof(c));
	pfsync_put_be32(&c.creatorid, PEER_ID);
	deliver_one(PFSYNC_ACT_CLR, &c);
	assert_int_equal(table_count(), 1);
	assert_true(W->last_sweep.sweep_flags & PFSYNC_SWEEP_CREATOR);
	assert_true(W->last_sweep.sweep_flags & PFSYNC_SWEEP_QUIET);
	assert_int_equal(W->last_sweep.creatorid, PEER_ID);
	assert_int_equal(index_count(&W->a.index), 1);
}

static void deliver_clr(__u32 creatorid)
{
	struct pfsync_clr c;

	memset(&c, 0, sizeof(c));
	pfsync_put_be32(&c.creatorid, creatorid);
	memset(&W->last_sweep, 0, sizeof(W->last_sweep));
	deliver_one(PFSYNC_ACT_CLR, &c);
}

/* the table is walked only when it may hold a state of that creator */
static void test_clr_walks_only_when_needed(void **state)
{
	struct pfsync_state st;

	(void)state;
	put_local(1, 1, OUR_ID, 1);
	/* the index holds none of the peer's: no walk, nothing removed */
	deliver_clr(PEER_ID);
	assert_int_equal(W->last_sweep.sweep_flags, 0);
	assert_int_equal(table_count(), 1);
	/* a no-sync state of the peer's is never indexed: from then on, walks */
	wire_state(2, 0x22, PEER_ID, 5000, &st);
	pfsync_put_be16(&st.state_flags, PFSTATE_NOSYNC);
	deliver_one(PFSYNC_ACT_INS, &st);
	assert_int_equal(table_count(), 2);
	assert_int_equal(index_count(&W->a.index), 1);
	deliver_clr(PEER_ID);
	assert_true(W->last_sweep.sweep_flags & PFSYNC_SWEEP_CREATOR);
	assert_int_equal(table_count(), 1);
	/* our own hostid names the datapath's states: always walked */
	index_clear(&W->a.index);
	W->a.peer_states_unindexed = 0;
	deliver_clr(OUR_ID);
	assert_int_equal(W->last_sweep.creatorid, OUR_ID);
	assert_int_equal(table_count(), 0);
}

static void test_bad_ttl_and_interface(void **state)
{
	struct pfsync_builder *b = pfsync_builder_new(1500);
	struct pfsync_state st;

	(void)state;
	wire_state(1, 5, PEER_ID, 1, &st);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS, &st), 0);
	assert_int_equal(deliver_rc(b, 64, SYNCDEV), -1);
	assert_int_equal(W->a.stats.badttl, 1);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS, &st), 0);
	assert_int_equal(deliver_rc(b, 255, SYNCDEV + 1), -1);
	assert_int_equal(W->a.stats.badif, 1);
	assert_int_equal(W->a.stats.ipackets, 2);
	assert_int_equal(table_count(), 0);
	/* a sound header with one bad message does not vouch for its sender either */
	st.timeout = 0xff;
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS, &st), 0);
	assert_int_equal(deliver_rc(b, 255, SYNCDEV), -1);
	assert_int_equal(W->a.stats.badval, 1);
	/* the same state sound: every check passed */
	wire_state(1, 5, PEER_ID, 1, &st);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS, &st), 0);
	assert_int_equal(deliver_rc(b, 255, SYNCDEV), 0);
	assert_int_equal(table_count(), 1);
	pfsync_builder_free(b);
}

static void test_bulk_request_answered(void **state)
{
	struct pfsync_upd_req r;

	(void)state;
	for (__u32 i = 1; i <= 12; i++)
		put_local(i, i, OUR_ID, 1);
	pfsync_id_msg_fill(&r, 0, 0);
	deliver_one(PFSYNC_ACT_UPD_REQ, &r);
	assert_true(W->a.walker.active);
	while (walker_step(&W->a, 1000))
		;
	assert_int_equal(W->sent_acts[PFSYNC_ACT_UPD], 12);
	assert_int_equal(W->sent_acts[PFSYNC_ACT_BUS], 2);
	assert_true(W->sent >= 3); /* 5 states per 1500-byte packet */
}

static void test_upd_req_single_state(void **state)
{
	struct pfsync_upd_req r;

	(void)state;
	put_local(4, 44, OUR_ID, 1);
	pfsync_id_msg_fill(&r, 44, OUR_ID);
	deliver_one(PFSYNC_ACT_UPD_REQ, &r);
	pfsync_id_msg_fill(&r, 45, OUR_ID);
	deliver_one(PFSYNC_ACT_UPD_REQ, &r);
	assert_int_equal(W->a.stats.badstate, 1);
	agent_flush_sendq(&W->a);
	assert_int_equal(W->sent_acts[PFSYNC_ACT_UPD], 1);
}

/* xorshift: deterministic, so a failure can be replayed */
static __u64 rnd(__u64 *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/*
 * Mutated and truncated packets (every action) never crash the receive
 * path and never remove or change a state they do not name.
 */
static void test_garbage_never_touches_others(void **state)
{
	struct pfsync_builder *b = pfsync_builder_new(1500);
	__u8 base[1500], pkt[1500];
	struct pfsync_state st;
	struct pfsync_upd_c u;
	struct pfsync_del_c d;
	struct pfsync_clr c;
	struct pfsync_bus bus = {.status = PFSYNC_BUS_END};
	struct pfsync_state_value v = value_for(0x7777, 0x33333333, 10);
	size_t base_len;
	__u64 x = 0x9e3779b97f4a7c15ULL;

	(void)state;
	for (__u32 i = 1; i <= 8; i++)
		put_local(40 + i, 0xabcdef0000000000ULL + i, PEER_ID, 1000 + i);
	wire_state(60, 0x7777, 0x33333333, 10, &st);
	pfsync_upd_c_export(&v, &u);
	pfsync_id_msg_fill(&d, 0x7778, 0x33333333);
	memset(&c, 0, sizeof(c));
	pfsync_put_be32(&c.creatorid, 0x33333333);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_CLR, &c), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_UPD_C, &u), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_DEL_C, &d), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS, &st), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_UPD, &st), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_BUS, &bus), 0);
	base_len = pfsync_builder_finish(b, base + 20, sizeof(base) - 20) + 20;
	memset(base, 0, 20);
	base[0] = 0x45;
	base[8] = 255;
	base[9] = IPPROTO_PFSYNC;
	base[2] = (__u8)(base_len >> 8);
	base[3] = (__u8)base_len;
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = base_len;
		unsigned int flips = 1 + rnd(&x) % 8;

		memcpy(pkt, base, base_len);
		for (unsigned int f = 0; f < flips; f++)
			pkt[20 + rnd(&x) % (base_len - 20)] = (__u8)rnd(&x);
		if (rnd(&x) % 4 == 0)
			len = rnd(&x) % (base_len + 1);
		apply_packet(&W->a, pkt, len, SYNCDEV);
		if (W->a.walker.active)
			walker_step(&W->a, 100);
		agent_flush_sendq(&W->a);
	}
	for (__u32 i = 1; i <= 8; i++) {
		struct pfsync_key k = key_for(40 + i);
		struct pfsync_state_value got;

		assert_int_equal(fake_lookup(NULL, &k, &got), 0);
		assert_int_equal(got.id, 0xabcdef0000000000ULL + i);
		assert_int_equal(got.peer[0].seqlo, 1000 + i);
	}
	assert_true(W->a.stats.ipackets == 20000);
	assert_true(W->a.stats.badlen + W->a.stats.hdrops + W->a.stats.badact + W->a.stats.badval +
			W->a.stats.badver >
		    0);
	pfsync_builder_free(b);
}

static struct pfsync_event record(__u8 type, __u32 n, __u64 id, __u32 flags)
{
	struct pfsync_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	ev.id = id;
	ev.creatorid = OUR_ID;
	ev.key = key_for(n);
	ev.state_flags_local = flags;
	return ev;
}

/* ringbuf records: insert indexed and sent at once, NOSYNC never, delete named */
static void test_intake_records(void **state)
{
	struct pfsync_event ev;

	(void)state;
	put_local(1, 501, OUR_ID, 1);
	put_local(2, 502, OUR_ID, 1);
	ev = record(PFSYNC_EV_INSERT, 1, 501, 0);
	intake_record(&W->a, &ev, sizeof(ev));
	ev = record(PFSYNC_EV_INSERT, 2, 502, PFSYNC_SF_NOSYNC);
	intake_record(&W->a, &ev, sizeof(ev));
	/* a short record is counted, not read */
	intake_record(&W->a, &ev, sizeof(ev) - 1);
	assert_int_equal(W->a.records_bad, 1);
	/* acted on once the drain is over, in order */
	assert_int_equal(sendq_pending(&W->a.sendq), 0);
	intake_settle(&W->a);
	assert_int_equal(sendq_pending(&W->a.sendq), 1);
	assert_int_equal(sendq_decide(&W->a.sendq, W->a.now_ns), SENDQ_ALL);
	agent_flush_sendq(&W->a);
	assert_int_equal(W->sent_acts[PFSYNC_ACT_INS], 1);
	ev = record(PFSYNC_EV_UPDATE, 1, 501, PFSYNC_SF_QUEUED);
	intake_record(&W->a, &ev, sizeof(ev));
	intake_settle(&W->a);
	assert_int_equal(sendq_decide(&W->a.sendq, W->a.now_ns), SENDQ_IDLE);
	ev.evflags = PFSYNC_EVF_MAXUPD;
	intake_record(&W->a, &ev, sizeof(ev));
	intake_settle(&W->a);
	/* urgent, but a packet just left: held off for 1 ms to batch */
	assert_int_equal(sendq_decide(&W->a.sendq, W->a.now_ns), SENDQ_IDLE);
	W->a.now_ns += SENDQ_HOLDOFF_NS;
	assert_int_equal(sendq_decide(&W->a.sendq, W->a.now_ns), SENDQ_ALL);
	agent_flush_sendq(&W->a);
	assert_int_equal(W->sent_acts[PFSYNC_ACT_UPD_C], 1);
	ev = record(PFSYNC_EV_DELETE, 1, 501, 0);
	intake_record(&W->a, &ev, sizeof(ev));
	intake_settle(&W->a);
	W->a.now_ns += SENDQ_HOLDOFF_NS;
	agent_flush_sendq(&W->a);
	assert_int_equal(W->sent_acts[PFSYNC_ACT_DEL_C], 1);
	assert_int_equal(W->a.records, 5);
}

/*
 * Records are acted on in groups (their slots prefetched first) but in
 * the order they came: a delete in a later group cancels an insert held in
 * an earlier one, whatever the group boundaries, and all are acted on by
 * the end of the drain.
 */
static void test_intake_order_across_groups(void **state)
{
	const __u32 n = 2 * AGENT_INTAKE_AHEAD + 3;
	struct pfsync_event ev;
	struct pfsync_key k;

	(void)state;
	for (__u32 i = 1; i <= n; i++) {
		ev = record(PFSYNC_EV_INSERT, i, 700 + i, 0);
		intake_record(&W->a, &ev, sizeof(ev));
	}
	ev = record(PFSYNC_EV_DELETE, 1, 701, 0);
	intake_record(&W->a, &ev, sizeof(ev));
	ev = record(PFSYNC_EV_INSERT, 1, 799, 0); /* its key again, a new state */
	intake_record(&W->a, &ev, sizeof(ev));
	intake_settle(&W->a);
	assert_int_equal(W->a.records, n + 2);
	assert_int_equal(W->a.intake_nheld, 0);
	assert_int_equal(index_count(&W->a.index), n);
	assert_int_equal(index_get(&W->a.index, 701, OUR_ID, &k), -ENOENT);
	assert_int_equal(index_get(&W->a.index, 799, OUR_ID, &k), 0);
	assert_int_equal(W->a.sendq.ins_dropped, 1);
	assert_int_equal(sendq_pending(&W->a.sendq), n);
}

/* a loss report: index rebuilt, stale QUEUED marks cleared, full resend */
static void test_intake_lost(void **state)
{
	struct pfsync_event ev;
	struct pfsync_key k = key_for(3);
	struct pfsync_state_value v;

	(void)state;
	for (__u32 i = 1; i <= 7; i++)
		put_local(i, 600 + i, OUR_ID, 1);
	W->tab[2].val.flags |= PFSYNC_SF_QUEUED; /* state 3: its record was lost */
	index_clear(&W->a.index);
	unqueued_total = 0;
	ev = record(PFSYNC_EV_LOST, 0, 0, 0);
	ev.lost = 12;
	intake_record(&W->a, &ev, sizeof(ev));
	assert_false(W->a.walker.active); /* once the turn's records are in */
	intake_settle(&W->a);
	assert_int_equal(W->a.records_lost, 12);
	assert_int_equal(index_count(&W->a.index), 7);
	assert_int_equal(unqueued_total, 1);
	assert_int_equal(fake_lookup(NULL, &k, &v), 0);
	assert_false(v.flags & PFSYNC_SF_QUEUED);
	assert_true(W->a.walker.active);
	while (walker_step(&W->a, 100))
		;
	assert_int_equal(W->sent_acts[PFSYNC_ACT_UPD], 7);
	assert_int_equal(W->sent_acts[PFSYNC_ACT_BUS], 0); /* a resend, not a bulk answer */
}

static void deliver_lost(__u32 lost, __u64 reported_ns)
{
	struct pfsync_event ev = record(PFSYNC_EV_LOST, 0, 0, 0);

	ev.lost = lost;
	ev.id = reported_ns;
	intake_record(&W->a, &ev, sizeof(ev));
}

/* the reports a burst leaves in the ring: one rebuild covers those before it */
static void test_intake_lost_reports_coalesce(void **state)
{
	__u64 before = agent_clock_ns() - 1;

	(void)state;
	for (__u32 i = 1; i <= 7; i++)
		put_local(i, 600 + i, OUR_ID, 1);
	/* two reports in one turn (an old datapath's carry no time): one rebuild */
	deliver_lost(5, 0);
	deliver_lost(4, 0);
	intake_settle(&W->a);
	assert_int_equal(W->a.lost_covered, 1);
	assert_true(W->a.walker.active);
	walker_step(&W->a, 3);
	assert_int_equal(W->a.walker.states_sent, 3);
	/* reported before that rebuild began: counted, the resend goes on */
	deliver_lost(2, before);
	intake_settle(&W->a);
	assert_int_equal(W->a.lost_covered, 2);
	assert_int_equal(W->a.lost_events, 3);
	assert_int_equal(W->a.records_lost, 11);
	assert_int_equal(W->a.walker.states_sent, 3);
	/* a loss reported after it: a new rebuild and a resend from the start */
	deliver_lost(1, agent_clock_ns());
	intake_settle(&W->a);
	assert_int_equal(W->a.lost_covered, 2);
	assert_int_equal(W->a.walker.states_sent, 0);
	while (walker_step(&W->a, 100))
		;
	assert_int_equal(W->a.walker.last_states, 7);
}

static void answer_bulk_request(void)
{
	struct pfsync_upd_req r;

	pfsync_id_msg_fill(&r, 0, 0);
	deliver_one(PFSYNC_ACT_UPD_REQ, &r);
	assert_true(W->a.walker.active);
	while (walker_step(&W->a, 1000))
		;
}

static void test_bulk_pace_halves_on_quick_rerequest(void **state)
{
	struct agent *a = &W->a;

	(void)state;
	for (__u32 i = 1; i <= 3; i++)
		put_local(i, i, OUR_ID, 1);
	a->bulk_rate = 400000;
	answer_bulk_request();
	assert_int_equal(a->bulk_rate, 400000); /* a first request says nothing */
	/* 3 states fit any receive buffer: asked again, nothing was lost */
	a->now_ns += NSEC;
	answer_bulk_request();
	assert_int_equal(a->bulk_rate, 400000);
	/* pretend the answer was big (the fake table holds 64 states at most) */
	a->walker.last_bus_states = WALKER_LOSSY_STATES;
	/* asked again soon after BUS END: the receiver lost packets */
	a->now_ns += 2 * NSEC;
	answer_bulk_request();
	assert_int_equal(a->bulk_rate, 200000);
	/* a request between the loss moments is a new peer, a restart or a
	 * flush: the pace climbs back to the configured one */
	a->walker.last_bus_states = WALKER_LOSSY_STATES;
	a->now_ns += WALKER_LOSS_QUICK_NS + NSEC;
	answer_bulk_request();
	assert_int_equal(a->bulk_rate, 400000);
	/* BUS END lost: the receiver asks once the transfer was idle long enough */
	a->walker.last_bus_states = WALKER_LOSSY_STATES;
	a->now_ns += BULK_IDLE_TIMEOUT_NS;
	answer_bulk_request();
	assert_int_equal(a->bulk_rate, 200000);
	a->walker.last_bus_states = WALKER_LOSSY_STATES;
	a->now_ns += 30 * NSEC;
	answer_bulk_request();
	assert_int_equal(a->bulk_rate, 400000);
	/* never below the floor */
	a->bulk_rate = WALKER_MIN_RATE + 1;
	a->walker.last_bus_states = WALKER_LOSSY_STATES;
	a->now_ns += NSEC;
	answer_bulk_request();
	assert_int_equal(a->bulk_rate, WALKER_MIN_RATE);
	a->walker.last_bus_states = WALKER_LOSSY_STATES;
	a->now_ns += NSEC;
	answer_bulk_request();
	assert_int_equal(a->bulk_rate, WALKER_MIN_RATE);
}

/* a full resend asked again while ours runs or just ended: its packets were lost */
static void test_resend_pace_halves_on_repeated_loss(void **state)
{
	struct agent *a = &W->a;
	struct walker *w = &a->walker;

	(void)state;
	for (__u32 i = 1; i <= 3; i++)
		put_local(i, i, OUR_ID, 1);
	a->bulk_rate = 400000;
	walker_pace_resend(a);
	assert_int_equal(a->bulk_rate, 400000); /* a first request says nothing */
	assert_int_equal(walker_start(a, 0), 0);
	while (walker_step(a, 1000))
		;
	/* 3 states fit any receive buffer: asked again, nothing was lost */
	a->now_ns += NSEC;
	walker_pace_resend(a);
	assert_int_equal(a->bulk_rate, 400000);
	/* pretend the resend was big (the fake table holds 64 states at most) */
	w->last_resend_states = WALKER_LOSSY_STATES;
	walker_pace_resend(a);
	assert_int_equal(a->bulk_rate, 200000);
	/* asked while a big one runs: restarted, slower */
	assert_int_equal(walker_start(a, 0), 0);
	w->states_sent = WALKER_LOSSY_STATES;
	walker_pace_resend(a);
	assert_int_equal(a->bulk_rate, 100000);
	/* while a small part of it went out: not a loss of it */
	w->states_sent = 10;
	walker_pace_resend(a);
	assert_int_equal(a->bulk_rate, 200000);
	while (walker_step(a, 1000))
		;
	/* long after the last one ended: the pace climbs back */
	w->last_resend_states = WALKER_LOSSY_STATES;
	a->now_ns += WALKER_LOSS_QUICK_NS + NSEC;
	walker_pace_resend(a);
	assert_int_equal(a->bulk_rate, 400000);
	/* a bulk answer's END does not count as a resend's */
	a->walker.last_bus_states = WALKER_LOSSY_STATES;
	a->walker.last_bus_end_ns = a->now_ns;
	walker_pace_resend(a);
	assert_int_equal(a->bulk_rate, 400000);
}

/* a NAK from the peer (hostid PEER_ID) for first..last of our numbers */
static void deliver_nak(__u32 first, __u32 last)
{
	struct agent *a = &W->a;
	struct repair_trailer nak = {
	    .kind = REPAIR_NAK,
	    .nranges = 1,
	    .hostid = PEER_ID,
	    .session = 7,
	    .seq = 1,
	    .target_hostid = a->hostid,
	    .target_session = a->repair_tx.session,
	};
	struct repair_range rg = {.first = first, .last = last};
	__u8 pkt[PFSYNC_HDRLEN + REPAIR_TRAILER_MAX] = {0};

	pfsync_put_be16(pkt + 2, PFSYNC_HDRLEN);
	agent_repair_on_packet(a, pkt,
			       PFSYNC_HDRLEN + repair_encode(&nak, &rg, pkt + PFSYNC_HDRLEN));
}

/*
 * Numbers the history no longer holds: a full resend, unless a walk that
 * began after they were sent is under way or done (it carries what they
 * did); the receiver asks for them until it hears DONE.
 */
static void test_nak_covered_by_walk_restarts_nothing(void **state)
{
	struct agent *a = &W->a;

	(void)state;
	for (__u32 i = 1; i <= 3; i++)
		put_local(i, i, OUR_ID, 1);
	assert_int_equal(agent_repair_init(a), 0);
	a->repair_tx.seq = 100; /* sent, and gone from the (empty) history */
	deliver_nak(10, 20);
	assert_true(a->walker.active);
	assert_int_equal(a->repair_tx.full_resends, 1);
	assert_int_equal(a->repair_tx.naks_answered, 1);
	/* asked again while it runs, and after it ended: covered, answered */
	a->now_ns += 2 * NSEC;
	deliver_nak(10, 20);
	assert_int_equal(a->repair_tx.full_resends, 1);
	while (walker_step(a, 1000))
		;
	a->now_ns += 2 * NSEC;
	deliver_nak(10, 20);
	assert_false(a->walker.active);
	assert_int_equal(a->repair_tx.full_resends, 1);
	assert_int_equal(a->repair_tx.naks_answered, 3);
	/* numbers sent after that walk began, gone too: a new full resend */
	a->repair_tx.seq = 200;
	deliver_nak(100, 150);
	assert_true(a->walker.active);
	assert_int_equal(a->repair_tx.full_resends, 2);
	agent_repair_free(a);
}

static unsigned int batch_calls;

/* the batch import, by single inserts: each entry's result as insert gives it */
static int fake_insert_batch(void *ctx, const struct pfsync_import_entry *e, unsigned int n,
			     int *rc)
{
	assert_true(n >= 1 && n <= PFSYNC_IMPORT_BATCH);
	batch_calls++;
	for (unsigned int i = 0; i < n; i++)
		rc[i] = fake_insert(ctx, &e[i].key, &e[i].val);
	return 0;
}

/*
 * One packet: INS 12 (ACK wanted), UPD 11, UPD 11 again (newer), UPD 13
 * whose key we already hold under our own identity, then DEL of 12 (the
 * builder orders sections as OpenBSD: INS, UPD, DEL). Applied in the
 * packet's order whether or not imports are batched.
 */
static void deliver_mixed_import_packet(void)
{
	struct pfsync_builder *b = pfsync_builder_new(1500);
	struct pfsync_state st;

	assert_non_null(b);
	put_local(13, 0x777, OUR_ID, 1000);
	wire_state(12, 0x501, PEER_ID, 10, &st);
	pfsync_put_be16(&st.state_flags, PFSTATE_ACK);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS, &st), 0);
	wire_state(11, 0x500, PEER_ID, 100, &st);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_UPD, &st), 0);
	wire_state(11, 0x500, PEER_ID, 300, &st);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_UPD, &st), 0);
	wire_state(13, 0x502, PEER_ID, 2000, &st);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_UPD, &st), 0);
	wire_state(12, 0x501, PEER_ID, 10, &st);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_DEL, &st), 0);
	deliver(b, 255, SYNCDEV);
	pfsync_builder_free(b);
}

static void check_mixed_import_outcome(void)
{
	struct pfsync_state_value got;
	struct pfsync_key k11 = key_for(11), k12 = key_for(12), k13 = key_for(13);
	struct pfsync_key k;

	assert_int_equal(fake_lookup(NULL, &k11, &got), 0);
	assert_int_equal(got.id, 0x500);
	assert_int_equal(got.peer[0].seqlo, 300); /* the second UPD merged into the first */
	assert_int_equal(fake_lookup(NULL, &k12, &got), -ENOENT); /* deleted after its INS */
	assert_int_equal(fake_lookup(NULL, &k13, &got), 0);
	assert_int_equal(got.id, 0x777); /* merged into the state we had */
	assert_int_equal(got.peer[0].seqlo, 2000);
	assert_int_equal(index_get(&W->a.index, 0x502, PEER_ID, &k), -ENOENT);
	assert_int_equal(index_get(&W->a.index, 0x500, PEER_ID, &k), 0);
	assert_int_equal(W->a.imported, 2);
	assert_int_equal(W->a.deleted_by_peer, 1);
	assert_int_equal(W->a.stats.badstate, 0);
	assert_int_equal(W->a.sendq.count[SQ_INS_ACK], 1);
}

static void test_import_one_by_one(void **state)
{
	(void)state;
	batch_calls = 0;
	deliver_mixed_import_packet();
	check_mixed_import_outcome();
	assert_int_equal(batch_calls, 0);
}

static void test_import_batched_keeps_packet_order(void **state)
{
	(void)state;
	batch_calls = 0;
	W->a.store.insert_batch = fake_insert_batch;
	deliver_mixed_import_packet();
	check_mixed_import_outcome();
	/* the four imports went together, before the delete that needed them */
	assert_int_equal(batch_calls, 1);
}

/* every state peers can name indexed under its key, nothing more */
static void assert_index_covers_table(void)
{
	struct index_check c;

	assert_int_equal(intake_index_check(&W->a, &c), 0);
	assert_int_equal(c.missing, 0);
	assert_int_equal(c.stale, 0);
	assert_int_equal(c.states + c.nosync, table_count());
}

/*
 * One identity, two connections: an INS, a bulk UPD and a second INS of the
 * same packet naming (0x900, PEER_ID) under other keys are refused and
 * counted in dupident, as pf refuses a second state with one identity; the
 * first state keeps its values. The same INS again (same key) merges.
 */
static void deliver_identity_clash(void)
{
	struct pfsync_builder *b = pfsync_builder_new(1500);
	struct pfsync_state st;

	assert_non_null(b);
	wire_state(31, 0x900, PEER_ID, 10, &st);
	deliver_one(PFSYNC_ACT_INS, &st);
	wire_state(32, 0x900, PEER_ID, 20, &st); /* other key, same identity */
	deliver_one(PFSYNC_ACT_INS, &st);
	wire_state(33, 0x900, PEER_ID, 30, &st);
	deliver_one(PFSYNC_ACT_UPD, &st); /* as a bulk update sends it */
	/* within one packet: the first of two fresh ones wins */
	wire_state(34, 0x901, PEER_ID, 40, &st);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS, &st), 0);
	wire_state(35, 0x901, PEER_ID, 50, &st);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS, &st), 0);
	deliver(b, 255, SYNCDEV);
	pfsync_builder_free(b);
	wire_state(31, 0x900, PEER_ID, 60, &st); /* a resend: same state */
	deliver_one(PFSYNC_ACT_INS, &st);
}

static void check_identity_clash(void)
{
	struct pfsync_state_value got;
	struct pfsync_key k31 = key_for(31), k32 = key_for(32), k33 = key_for(33);
	struct pfsync_key k34 = key_for(34), k35 = key_for(35);

	assert_int_equal(W->a.stats.dupident, 3);
	assert_int_equal(W->a.stats.badstate, 0);
	assert_int_equal(W->a.stats.badval, 0);
	assert_int_equal(table_count(), 2);
	assert_int_equal(fake_lookup(NULL, &k31, &got), 0);
	assert_int_equal(got.peer[0].seqlo, 60); /* only its own resend merged */
	assert_int_equal(fake_lookup(NULL, &k32, &got), -ENOENT);
	assert_int_equal(fake_lookup(NULL, &k33, &got), -ENOENT);
	assert_int_equal(fake_lookup(NULL, &k34, &got), 0);
	assert_int_equal(fake_lookup(NULL, &k35, &got), -ENOENT);
	assert_index_covers_table();
}

static void test_identity_clash_refused(void **state)
{
	(void)state;
	deliver_identity_clash();
	check_identity_clash();
}

static void test_identity_clash_refused_batched(void **state)
{
	(void)state;
	W->a.store.insert_batch = fake_insert_batch;
	deliver_identity_clash();
	check_identity_clash();
}

/* the check itself: a state missing from the index, an index entry left over */
static void test_index_check_sees_gaps(void **state)
{
	struct pfsync_key k = key_for(41);
	struct pfsync_state_value v = value_for(0x41, PEER_ID, 1);
	struct index_check c;

	(void)state;
	put_local(40, 0x40, OUR_ID, 1);
	assert_int_equal(fake_insert(NULL, &k, &v), 0);			/* not indexed */
	assert_int_equal(index_put(&W->a.index, 0x42, PEER_ID, &k), 0); /* names no state */
	v = value_for(0x43, OUR_ID, 1);
	v.flags = PFSYNC_SF_NOSYNC;
	k = key_for(43);
	assert_int_equal(fake_insert(NULL, &k, &v), 0); /* never indexed */
	assert_int_equal(intake_index_check(&W->a, &c), 0);
	assert_int_equal(c.states, 2);
	assert_int_equal(c.nosync, 1);
	assert_int_equal(c.indexed, 2);
	assert_int_equal(c.matched, 1);
	assert_int_equal(c.missing, 1);
	assert_int_equal(c.stale, 1);
	assert_int_equal(intake_rebuild_index(&W->a), 0);
	assert_index_covers_table();
}

/* BUS END was among the dropped packets: silence ends the bulk, ask again */
static void test_lossy_bulk_gone_silent_asks_again(void **state)
{
	struct agent *a = &W->a;
	unsigned int sent;

	(void)state;
	bulk_request(a);
	bulk_on_bus(a, PFSYNC_BUS_START);
	assert_int_equal(a->bulk_req.state, BULK_REQ_IN_PROGRESS);
	a->bulk_lossy = 1;
	sent = W->sent;
	a->now_ns += BULK_IDLE_TIMEOUT_NS + NSEC;
	bulk_tick(a);
	assert_int_equal(W->sent, sent + 1);
	assert_int_equal(W->nlast_upd_req, 1);
	assert_int_equal(W->last_upd_req_ids[0], 0);
	assert_int_equal(a->bulk_req.state, BULK_REQ_REQUESTED);
	assert_int_equal(a->bulk_rerequests, 1);
	assert_false(a->bulk_lossy);
	/* without drops a silent peer just means failure */
	bulk_on_bus(a, PFSYNC_BUS_START);
	a->now_ns += BULK_IDLE_TIMEOUT_NS + NSEC;
	sent = W->sent;
	bulk_tick(a);
	assert_int_equal(W->sent, sent);
	assert_int_equal(a->bulk_req.state, BULK_REQ_FAILED);
}

/* drops outside a bulk: one bulk request, once they have stopped for a while */
static void test_rx_drops_ask_a_bulk_once_quiet(void **state)
{
	struct agent *a = &W->a;
	unsigned int sent = W->sent;

	(void)state;
	a->bulk_req.state = BULK_REQ_DONE;
	a->sock.rx_dropped = 3;
	agent_note_rx_drops(a);
	a->now_ns += BULK_RESYNC_QUIET_NS / 2;
	a->sock.rx_dropped = 5; /* more drops push the request out */
	agent_note_rx_drops(a);
	a->now_ns += BULK_RESYNC_QUIET_NS / 2 + 1;
	bulk_tick(a);
	assert_int_equal(W->sent, sent);
	assert_int_equal(a->bulk_req.state, BULK_REQ_DONE);
	a->now_ns += BULK_RESYNC_QUIET_NS / 2;
	bulk_tick(a);
	assert_int_equal(W->sent, sent + 1);
	assert_int_equal(W->nlast_upd_req, 1);
	assert_int_equal(W->last_upd_req_ids[0], 0);
	/* still "done": a master catching up must not demote itself */
	assert_int_equal(a->bulk_req.state, BULK_REQ_DONE);
	assert_int_equal(a->bulk_resyncs, 1);
	assert_int_equal(a->rx_dropped_seen, 5);
	/* once: later ticks ask nothing more */
	a->now_ns += BULK_RESYNC_QUIET_NS;
	bulk_tick(a);
	assert_int_equal(W->sent, sent + 1);
	/* drops during a requested bulk make it lossy (asked again at its end) */
	bulk_request(a);
	a->sock.rx_dropped = 6;
	agent_note_rx_drops(a);
	assert_true(a->bulk_lossy);
	assert_int_equal(a->resync_due_ns, 0);
}

/* n states of ours: every third one idle for longer than its timeout */
static void put_aging_states(unsigned int n, __u64 now_ns)
{
	for (unsigned int i = 0; i < n; i++) {
		struct pfsync_key k = key_for(200 + i);
		struct pfsync_state_value v = value_for(0x9000 + i, OUR_ID, 1);

		v.timeout = PFTM_UDP_SINGLE;
		v.last_seen = i % 3 == 0 ? now_ns - 500 * NSEC : now_ns;
		assert_int_equal(fake_insert(NULL, &k, &v), 0);
	}
}

static void test_sweep_in_bounded_steps(void **state)
{
	struct agent *a = &W->a;
	struct store_sweep sw = {0};
	unsigned int steps = 0;
	int rc;

	(void)state;
	sweep_calls = sweep_pass_ends = sweep_pass_seen = sweep_max_keys = 0;
	put_aging_states(40, a->now_ns);
	assert_int_equal(store_sweep_begin(&sw, 8, a->now_ns), 0);
	do {
		unsigned int before = table_count();

		rc = store_sweep_step(&a->store, &sw, a->now_ns, NULL, 0);
		assert_true(rc >= 0);
		/* a step removes at most what it read */
		assert_true(before - table_count() <= 8);
		steps++;
	} while (rc == 1);
	/* 40 states in reads of 8: 5 steps, and one more if the end shows late */
	assert_in_range(steps, 5, 6);
	assert_int_equal(sw.seen, 40);
	assert_int_equal(sw.deleted, 14);
	assert_int_equal(table_count(), 26);
	assert_int_equal(sweep_pass_ends, 1);
	assert_int_equal(sweep_pass_seen, 40);
	assert_true(sweep_max_keys <= PFSYNC_SWEEP_BATCH);
	assert_false(sw.active);
	/* a finished pass does nothing more */
	assert_int_equal(store_sweep_step(&a->store, &sw, a->now_ns, NULL, 0), 0);
	assert_int_equal(sweep_pass_ends, 1);
	store_sweep_free(&sw);
}

static void test_sweep_rechecks_live_value(void **state)
{
	struct agent *a = &W->a;
	struct store_sweep sw = {0};
	struct pfsync_key k = key_for(200);

	(void)state;
	put_aging_states(3, a->now_ns);
	assert_int_equal(store_sweep_begin(&sw, 1, a->now_ns), 0);
	/* read as due, then refreshed by a packet before its key is handed over */
	W->tab[0].val.last_seen = a->now_ns;
	assert_int_equal(store_sweep_step(&a->store, &sw, a->now_ns, NULL, 0), 1);
	assert_non_null(fake_find(&k));
	store_sweep_free(&sw);
}

static void test_intake_sweep_passes(void **state)
{
	struct agent *a = &W->a;
	(void)state;
	sweep_pass_ends = 0;
	a->opts.interval_s = 10;
	a->next_sweep_ns = a->now_ns + 5 * NSEC;
	put_aging_states(60, a->now_ns);
	/* not due yet: no pass */
	assert_int_equal(intake_sweep(a), 0);
	assert_int_equal(table_count(), 60);
	a->now_ns += 5 * NSEC;
	while (intake_sweep(a) == 1)
		a->now_ns += NSEC / 1000; /* the next step is a millisecond later */
	assert_int_equal(table_count(), 40);
	assert_int_equal(sweep_pass_ends, 1);
	/* the next pass is an interval after this one began */
	assert_int_equal(a->next_sweep_ns, a->now_ns + 10 * NSEC);
	assert_int_equal(intake_sweep(a), 0);
	assert_int_equal(sweep_pass_ends, 1);
	store_sweep_free(&a->sweep);
}

/* however often the loop turns, a pass reads one step's states a millisecond */
static void test_intake_sweep_one_step_a_ms(void **state)
{
	struct agent *a = &W->a;

	(void)state;
	a->opts.interval_s = 10;
	a->next_sweep_ns = a->now_ns;
	W->read_cap = 8;
	put_aging_states(60, a->now_ns);
	assert_int_equal(intake_sweep(a), 1);
	assert_int_equal(a->sweep.seen, 8);
	for (int turn = 0; turn < 5; turn++)
		assert_int_equal(intake_sweep(a), 1);
	assert_int_equal(a->sweep.seen, 8);
	a->now_ns += NSEC / 1000 - 1;
	assert_int_equal(intake_sweep(a), 1);
	assert_int_equal(a->sweep.seen, 8);
	a->now_ns += 1;
	assert_int_equal(intake_sweep(a), 1);
	assert_int_equal(a->sweep.seen, 16);
	store_sweep_free(&a->sweep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_insert_imported_not_echoed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_insert_translated_keeps_both_keys, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_insert_with_ack_is_acked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_upd_c_one_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upd_c_merges_and_stale_answers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upd_c_same_seqlo_keeps_edges, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_only_what_is_named, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clr_removes_that_creator, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_clr_walks_only_when_needed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_ttl_and_interface, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_request_answered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_upd_req_single_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_never_touches_others, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intake_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intake_order_across_groups, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intake_lost, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intake_lost_reports_coalesce, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rx_drops_ask_a_bulk_once_quiet, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_pace_halves_on_quick_rerequest, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_import_one_by_one, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_identity_clash_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_identity_clash_refused_batched, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_check_sees_gaps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_batched_keeps_packet_order, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_lossy_bulk_gone_silent_asks_again, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_sweep_in_bounded_steps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sweep_rechecks_live_value, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_intake_sweep_passes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resend_pace_halves_on_repeated_loss, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_nak_covered_by_walk_restarts_nothing, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_intake_sweep_one_step_a_ms, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
