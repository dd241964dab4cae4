/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Send queue: collapse rules and send triggers with a fake clock, packing
 * against a fake state table (what the packets carry is decoded back).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../agent/sendq.h"

#define NSEC	    1000000000ULL
#define FAKE_STATES 4096

struct fake_state {
	struct pfsync_key key;
	struct pfsync_state_value val;
	int present;
	unsigned int unqueued_at; /* event number of the last unqueue, 0 = never */
	unsigned int looked_up_at;
};

struct sent_msg {
	__u8 action;
	__u64 id;
	__u32 creatorid;
	__u32 src_seqlo; /* UPD_C / INS / UPD: peer[0].seqlo */
};

struct fake_world {
	struct fake_state states[FAKE_STATES];
	unsigned int events;
	unsigned int packets;
	size_t max_len;
	struct sent_msg msgs[FAKE_STATES];
	unsigned int nmsgs;
	unsigned int acts_reported[PFSYNC_ACT_MAX];
	int unqueue_before_lookup_violated;
};

static struct fake_world *W;

static struct pfsync_key key_for(__u32 n)
{
	struct pfsync_key k;

	memset(&k, 0, sizeof(k));
	k.addr[0][0] = htobe32(0x0a000000 | n);
	k.addr[1][0] = htobe32(0x0a100000 | n);
	k.port[0] = htobe16(1000 + (n & 0x7fff));
	k.port[1] = htobe16(80);
	k.proto = 6;
	k.af = PFSYNC_AF_INET;
	return k;
}

/* puts state n (id = n, creatorid = 77) into the fake table */
static struct fake_state *add_state(__u32 n)
{
	struct fake_state *s = &W->states[n];

	memset(s, 0, sizeof(*s));
	s->key = key_for(n);
	s->val.id = n;
	s->val.creatorid = 77;
	s->val.timeout = PFTM_TCP_ESTABLISHED;
	s->val.peer[0].state = TCPS_ESTABLISHED;
	s->val.peer[1].state = TCPS_ESTABLISHED;
	s->val.peer[0].seqlo = 1000;
	s->present = 1;
	return s;
}

static struct fake_state *find(const struct pfsync_key *k)
{
	for (unsigned int i = 0; i < FAKE_STATES; i++)
		if (W->states[i].present && !memcmp(&W->states[i].key, k, sizeof(*k)))
			return &W->states[i];
	return NULL;
}

static int fake_lookup(void *ctx, const struct pfsync_key *k, struct pfsync_state_value *v)
{
	struct fake_state *s = find(k);

	(void)ctx;
	if (!s)
		return -ENOENT;
	s->looked_up_at = ++W->events;
	if (s->unqueued_at == 0)
		W->unqueue_before_lookup_violated = 1;
	*v = s->val;
	return 0;
}

static unsigned int unqueue_calls;

static void fake_unqueue(void *ctx, const struct pfsync_key *keys, unsigned int n)
{
	(void)ctx;
	unqueue_calls++;
	assert_true(n >= 1 && n <= PFSYNC_UNQUEUE_BATCH);
	for (unsigned int i = 0; i < n; i++) {
		struct fake_state *s = find(&keys[i]);

		if (s)
			s->unqueued_at = ++W->events;
	}
}

static void on_state(void *ctx, const struct pfsync_state *m, __u8 action)
{
	struct sent_msg *out = &W->msgs[W->nmsgs++];

	(void)ctx;
	out->action = action;
	out->id = PFSYNC_MSG_ID(m);
	out->creatorid = PFSYNC_MSG_CREATOR(m);
	out->src_seqlo = pfsync_get_be32(&m->src.seqlo);
}

static void on_ins(void *ctx, const struct pfsync_state *m)
{
	on_state(ctx, m, PFSYNC_ACT_INS);
}

static void on_upd(void *ctx, const struct pfsync_state *m)
{
	on_state(ctx, m, PFSYNC_ACT_UPD);
}

static void on_upd_c(void *ctx, const struct pfsync_upd_c *m)
{
	struct sent_msg *out = &W->msgs[W->nmsgs++];

	(void)ctx;
	out->action = PFSYNC_ACT_UPD_C;
	out->id = PFSYNC_MSG_ID(m);
	out->creatorid = PFSYNC_MSG_CREATOR(m);
	out->src_seqlo = pfsync_get_be32(&m->src.seqlo);
}

static void on_id_msg(const void *m, __u8 action)
{
	struct sent_msg *out = &W->msgs[W->nmsgs++];

	out->action = action;
	out->id = pfsync_get_be64(m);
	out->creatorid = pfsync_get_be32((const __u8 *)m + 8);
}

static void on_del_c(void *ctx, const struct pfsync_del_c *m)
{
	(void)ctx;
	on_id_msg(m, PFSYNC_ACT_DEL_C);
}

static void on_ins_ack(void *ctx, const struct pfsync_ins_ack *m)
{
	(void)ctx;
	on_id_msg(m, PFSYNC_ACT_INS_ACK);
}

static const struct pfsync_decode_ops decode_ops = {
    .ins = on_ins,
    .upd = on_upd,
    .upd_c = on_upd_c,
    .del_c = on_del_c,
    .ins_ack = on_ins_ack,
};

static int fake_send(void *ctx, const __u8 *payload, size_t len, const unsigned int *acts)
{
	struct pfsync_stats st;

	(void)ctx;
	memset(&st, 0, sizeof(st));
	assert_int_equal(pfsync_decode(payload, len, &decode_ops, NULL, &st), 0);
	for (unsigned int a = 0; a < PFSYNC_ACT_MAX; a++) {
		/* what the caller is told it sent is what the packet holds */
		assert_int_equal(acts[a], st.iacts[a]);
		W->acts_reported[a] += acts[a];
	}
	W->packets++;
	if (len > W->max_len)
		W->max_len = len;
	return 0;
}

static const struct sendq_io io = {
    .lookup = fake_lookup,
    .unqueue = fake_unqueue,
    .send = fake_send,
};

static unsigned int fetch_calls;

/* unqueue + lookup in one call, as the agent's batch program does */
static int fake_fetch(void *ctx, const struct pfsync_key *keys, unsigned int n,
		      struct pfsync_state_value *vals, int *rc)
{
	(void)ctx;
	assert_true(n >= 1 && n <= PFSYNC_UNQUEUE_BATCH);
	fetch_calls++;
	for (unsigned int i = 0; i < n; i++) {
		struct fake_state *s = find(&keys[i]);

		rc[i] = s ? 0 : -ENOENT;
		if (!s)
			continue;
		s->unqueued_at = ++W->events;
		s->looked_up_at = ++W->events;
		vals[i] = s->val;
	}
	return 0;
}

static int no_lookup(void *ctx, const struct pfsync_key *k, struct pfsync_state_value *v)
{
	(void)ctx;
	(void)k;
	(void)v;
	fail_msg("looked up one by one although fetch worked");
	return -ENOENT;
}

static const struct sendq_io io_fetch = {
    .lookup = no_lookup,
    .unqueue = fake_unqueue,
    .fetch = fake_fetch,
    .send = fake_send,
};

static int setup(void **state)
{
	struct sendq *q = calloc(1, sizeof(*q));

	W = calloc(1, sizeof(*W));
	assert_non_null(q);
	assert_non_null(W);
	assert_int_equal(sendq_init(q, 1500), 0);
	*state = q;
	return 0;
}

static int teardown(void **state)
{
	sendq_free(*state);
	free(*state);
	free(W);
	return 0;
}

static unsigned int count_action(__u8 action)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < W->nmsgs; i++)
		n += W->msgs[i].action == action;
	return n;
}

/* an idle agent sends a lone insert at once, with the value current at pack time */
static void test_insert_goes_out_at_once(void **state)
{
	struct sendq *q = *state;
	struct fake_state *s = add_state(1);
	__u64 t0 = 5 * NSEC;

	assert_int_equal(sendq_insert(q, &s->key, 1, 77, t0), 0);
	s->val.peer[0].seqlo = 4242; /* changed after the record was queued */
	assert_int_equal(sendq_decide(q, t0), SENDQ_ALL);
	assert_int_equal(sendq_flush(q, t0, SENDQ_ALL, &io), 1);
	assert_int_equal(W->nmsgs, 1);
	assert_int_equal(W->msgs[0].action, PFSYNC_ACT_INS);
	assert_int_equal(W->msgs[0].id, 1);
	assert_int_equal(W->msgs[0].creatorid, 77);
	assert_int_equal(W->msgs[0].src_seqlo, 4242);
	assert_false(W->unqueue_before_lookup_violated);
	assert_int_equal(sendq_pending(q), 0);
	assert_int_equal(sendq_decide(q, t0), SENDQ_IDLE);
	assert_int_equal(sendq_deadline(q), 0);
}

/* updates collapse per state and wait for the 1 s timer */
static void test_updates_collapse_until_one_second(void **state)
{
	struct sendq *q = *state;
	struct fake_state *a = add_state(1), *b = add_state(2);
	__u64 t0 = 10 * NSEC;

	for (int i = 0; i < 5; i++) {
		assert_int_equal(sendq_update(q, &a->key, 1, 77, t0 + i * 1000, 0), 0);
		assert_int_equal(sendq_update(q, &b->key, 2, 77, t0 + i * 1000, 0), 0);
	}
	assert_int_equal(sendq_pending(q), 2);
	assert_int_equal(q->collapsed, 8);
	assert_int_equal(sendq_decide(q, t0), SENDQ_IDLE);
	assert_int_equal(sendq_decide(q, t0 + NSEC - 1), SENDQ_IDLE);
	assert_int_equal(sendq_deadline(q), t0 + NSEC);
	assert_int_equal(sendq_decide(q, t0 + NSEC), SENDQ_ALL);
	a->val.peer[0].seqlo = 9999;
	assert_int_equal(sendq_flush(q, t0 + NSEC, SENDQ_ALL, &io), 1);
	assert_int_equal(count_action(PFSYNC_ACT_UPD_C), 2);
	assert_int_equal(W->msgs[0].src_seqlo, 9999);
	/* the next change after packing starts a new window */
	assert_int_equal(sendq_update(q, &a->key, 1, 77, t0 + 3 * NSEC, 0), 0);
	assert_int_equal(sendq_deadline(q), t0 + 4 * NSEC);
}

/* maxupd (or any urgent message) sends the pending updates with it */
static void test_maxupd_sends_now(void **state)
{
	struct sendq *q = *state;
	struct fake_state *a = add_state(1), *b = add_state(2);

	assert_int_equal(sendq_update(q, &a->key, 1, 77, NSEC, 0), 0);
	assert_int_equal(sendq_decide(q, NSEC + 10), SENDQ_IDLE);
	assert_int_equal(sendq_update(q, &b->key, 2, 77, NSEC + 10, 1), 0);
	assert_int_equal(sendq_decide(q, NSEC + 10), SENDQ_ALL);
	assert_int_equal(sendq_flush(q, NSEC + 10, SENDQ_ALL, &io), 1);
	assert_int_equal(count_action(PFSYNC_ACT_UPD_C), 2);
}

/* a state deleted while its insert is pending never reaches the wire */
static void test_delete_cancels_pending_insert(void **state)
{
	struct sendq *q = *state;
	struct fake_state *a = add_state(1);

	assert_int_equal(sendq_insert(q, &a->key, 1, 77, NSEC), 0);
	assert_int_equal(sendq_update(q, &a->key, 1, 77, NSEC, 0), 0);
	assert_int_equal(sendq_delete(q, &a->key, 1, 77, NSEC), 1);
	assert_int_equal(sendq_pending(q), 0);
	assert_int_equal(sendq_decide(q, 3 * NSEC), SENDQ_IDLE);
	assert_int_equal(sendq_flush(q, 3 * NSEC, SENDQ_ALL, &io), 0);
	assert_int_equal(W->packets, 0);
}

/* a delete of a state with a pending update replaces the update by DEL_C */
static void test_delete_replaces_update(void **state)
{
	struct sendq *q = *state;
	struct fake_state *a = add_state(1);

	assert_int_equal(sendq_update(q, &a->key, 1, 77, NSEC, 0), 0);
	a->present = 0;
	assert_int_equal(sendq_delete(q, &a->key, 1, 77, NSEC), 0);
	assert_int_equal(sendq_decide(q, NSEC), SENDQ_ALL);
	assert_int_equal(sendq_flush(q, NSEC, SENDQ_ALL, &io), 1);
	assert_int_equal(W->nmsgs, 1);
	assert_int_equal(W->msgs[0].action, PFSYNC_ACT_DEL_C);
	assert_int_equal(W->msgs[0].id, 1);
	assert_int_equal(W->msgs[0].creatorid, 77);
}

/* more than a packet of updates: full packets go, the rest keeps collapsing */
static void test_full_packets_before_timer(void **state)
{
	struct sendq *q = *state;
	const unsigned int per_packet =
	    (1500 - 20 - PFSYNC_HDRLEN - 4) / sizeof(struct pfsync_upd_c);
	const unsigned int n = per_packet * 3 + 2;

	for (unsigned int i = 1; i <= n; i++) {
		struct fake_state *s = add_state(i);

		assert_int_equal(sendq_update(q, &s->key, i, 77, NSEC, 0), 0);
	}
	assert_int_equal(sendq_decide(q, NSEC), SENDQ_FULL);
	assert_int_equal(sendq_flush(q, NSEC, SENDQ_FULL, &io), 3);
	assert_int_equal(count_action(PFSYNC_ACT_UPD_C), per_packet * 3);
	assert_true(W->max_len <= 1500 - 20);
	assert_int_equal(sendq_pending(q), 2);
	assert_int_equal(sendq_decide(q, NSEC), SENDQ_IDLE);
	/* the oldest survivor still goes out one second after it was queued */
	assert_int_equal(sendq_decide(q, 2 * NSEC), SENDQ_ALL);
	assert_int_equal(sendq_flush(q, 2 * NSEC, SENDQ_ALL, &io), 1);
	assert_int_equal(count_action(PFSYNC_ACT_UPD_C), n);
	/* first in, first out: the ids come back in queue order */
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(W->msgs[i].id, i + 1);
	assert_false(W->unqueue_before_lookup_violated);
}

/* states gone or replaced by another identity at pack time are skipped */
static void test_vanished_states_skipped(void **state)
{
	struct sendq *q = *state;
	struct fake_state *a = add_state(1), *b = add_state(2), *c = add_state(3);

	assert_int_equal(sendq_insert(q, &a->key, 1, 77, NSEC), 0);
	assert_int_equal(sendq_update(q, &b->key, 2, 77, NSEC, 0), 0);
	assert_int_equal(sendq_update(q, &c->key, 3, 77, NSEC, 0), 0);
	a->present = 0;
	b->val.id = 200; /* the key now holds a newer connection */
	c->val.flags |= PFSYNC_SF_NOSYNC;
	assert_int_equal(sendq_flush(q, NSEC, SENDQ_ALL, &io), 0);
	assert_int_equal(W->nmsgs, 0);
	assert_int_equal(q->vanished, 3);
	assert_int_equal(sendq_pending(q), 0);
}

/* an UPD_REQ reply upgrades a pending UPD_C to a full UPD and is urgent */
static void test_full_update_replaces_upd_c(void **state)
{
	struct sendq *q = *state;
	struct fake_state *a = add_state(1);

	assert_int_equal(sendq_update(q, &a->key, 1, 77, NSEC, 0), 0);
	assert_int_equal(sendq_full_update(q, &a->key, 1, 77, NSEC), 0);
	assert_int_equal(sendq_pending(q), 1);
	assert_int_equal(sendq_decide(q, NSEC), SENDQ_ALL);
	assert_int_equal(sendq_flush(q, NSEC, SENDQ_ALL, &io), 1);
	assert_int_equal(W->nmsgs, 1);
	assert_int_equal(W->msgs[0].action, PFSYNC_ACT_UPD);
}

/* a mixed wake-up shares one packet; acks and deletes are urgent */
static void test_mixed_batch_one_packet(void **state)
{
	struct sendq *q = *state;
	struct fake_state *a = add_state(1), *b = add_state(2);
	struct pfsync_key gone = key_for(9);

	assert_int_equal(sendq_update(q, &b->key, 2, 77, NSEC, 0), 0);
	assert_int_equal(sendq_ins_ack(q, 500, 99, NSEC), 0);
	assert_int_equal(sendq_decide(q, NSEC), SENDQ_ALL);
	assert_int_equal(sendq_insert(q, &a->key, 1, 77, NSEC), 0);
	assert_int_equal(sendq_delete(q, &gone, 9, 77, NSEC), 0);
	assert_int_equal(sendq_flush(q, NSEC, SENDQ_ALL, &io), 1);
	assert_int_equal(W->packets, 1);
	assert_int_equal(W->acts_reported[PFSYNC_ACT_INS], 1);
	assert_int_equal(W->acts_reported[PFSYNC_ACT_UPD_C], 1);
	assert_int_equal(W->acts_reported[PFSYNC_ACT_INS_ACK], 1);
	assert_int_equal(W->acts_reported[PFSYNC_ACT_DEL_C], 1);
	/* OpenBSD's section order: INS_ACK, UPD_C, DEL_C, INS */
	assert_int_equal(W->msgs[0].action, PFSYNC_ACT_INS_ACK);
	assert_int_equal(W->msgs[1].action, PFSYNC_ACT_UPD_C);
	assert_int_equal(W->msgs[2].action, PFSYNC_ACT_DEL_C);
	assert_int_equal(W->msgs[3].action, PFSYNC_ACT_INS);
}

/* a peer's CLR or DEL drops what was pending about those states only */
static void test_forget(void **state)
{
	struct sendq *q = *state;
	struct fake_state *a = add_state(1), *b = add_state(2), *c = add_state(3);

	c->val.creatorid = 55;
	assert_int_equal(sendq_update(q, &a->key, 1, 77, NSEC, 0), 0);
	assert_int_equal(sendq_update(q, &b->key, 2, 77, NSEC, 0), 0);
	assert_int_equal(sendq_update(q, &c->key, 3, 55, NSEC, 0), 0);
	sendq_forget_key(q, &a->key);
	assert_int_equal(sendq_pending(q), 2);
	sendq_forget_creator(q, 77);
	assert_int_equal(sendq_pending(q), 1);
	assert_int_equal(sendq_flush(q, 2 * NSEC, SENDQ_ALL, &io), 1);
	assert_int_equal(W->nmsgs, 1);
	assert_int_equal(W->msgs[0].id, 3);
	sendq_insert(q, &a->key, 1, 77, 3 * NSEC);
	sendq_forget_all(q);
	assert_int_equal(sendq_pending(q), 0);
	assert_int_equal(sendq_decide(q, 9 * NSEC), SENDQ_IDLE);
}

/* the queue grows past its initial ring and keeps order */
static void test_many_pending(void **state)
{
	struct sendq *q = *state;
	const unsigned int n = 3000;

	for (unsigned int i = 1; i <= n; i++) {
		struct fake_state *s = add_state(i);

		assert_int_equal(sendq_insert(q, &s->key, i, 77, NSEC), 0);
	}
	assert_int_equal(sendq_pending(q), n);
	assert_true(sendq_flush(q, NSEC, SENDQ_ALL, &io) >= (int)(n / 5));
	assert_int_equal(count_action(PFSYNC_ACT_INS), n);
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(W->msgs[i].id, i + 1);
	assert_true(W->max_len <= 1480);
}

/* a ring that grew for a burst is given back once it empties, and works after */
static void test_ring_shrinks_when_empty(void **state)
{
	struct sendq *q = *state;
	struct pfsync_key k;
	const unsigned int n = 20000;

	memset(&k, 0, sizeof(k));
	for (unsigned int i = 1; i <= n; i++)
		assert_int_equal(sendq_delete(q, &k, i, 77, NSEC), 0); /* DEL_C: no state needed */
	assert_int_equal(sendq_pending(q), n);
	assert_true(q->cap >= n);
	sendq_forget_all(q);
	assert_int_equal(sendq_pending(q), 0);
	assert_true(q->cap <= 256);
	assert_int_equal(sendq_insert(q, &add_state(1)->key, 1, 77, NSEC), 0);
	assert_int_equal(sendq_flush(q, NSEC, SENDQ_ALL, &io), 1);
	assert_int_equal(count_action(PFSYNC_ACT_INS), 1);
}

/* a stream of inserts: after a packet, the next urgent one waits 1 ms to fill */
static void test_urgent_holdoff_batches(void **state)
{
	struct sendq *q = *state;
	const unsigned int per_packet =
	    (1500 - 20 - PFSYNC_HDRLEN - 4) / sizeof(struct pfsync_state);
	__u64 t = 7 * NSEC;

	assert_int_equal(sendq_insert(q, &add_state(1)->key, 1, 77, t), 0);
	assert_int_equal(sendq_decide(q, t), SENDQ_ALL);
	assert_int_equal(sendq_flush(q, t, SENDQ_ALL, &io), 1);
	/* the next insert 10 us later is held until 1 ms after that packet */
	assert_int_equal(sendq_insert(q, &add_state(2)->key, 2, 77, t + 10000), 0);
	assert_int_equal(sendq_decide(q, t + 10000), SENDQ_IDLE);
	assert_int_equal(sendq_deadline(q), t + SENDQ_HOLDOFF_NS);
	/* ... unless a packet's worth is pending: full packets go at once */
	for (unsigned int i = 3; i <= per_packet + 2; i++)
		assert_int_equal(sendq_insert(q, &add_state(i)->key, i, 77, t + 20000), 0);
	assert_int_equal(sendq_decide(q, t + 20000), SENDQ_FULL);
	assert_int_equal(sendq_flush(q, t + 20000, SENDQ_FULL, &io), 1);
	assert_int_equal(sendq_pending(q), 1);
	assert_int_equal(sendq_decide(q, t + 20000 + SENDQ_HOLDOFF_NS - 1), SENDQ_IDLE);
	assert_int_equal(sendq_decide(q, t + 20000 + SENDQ_HOLDOFF_NS), SENDQ_ALL);
	assert_int_equal(sendq_flush(q, t + 20000 + SENDQ_HOLDOFF_NS, SENDQ_ALL, &io), 1);
	assert_int_equal(count_action(PFSYNC_ACT_INS), per_packet + 2);
	assert_int_equal(W->packets, 3);
}

/*
 * The same queue packed through fetch (one call per batch) and through
 * unqueue + lookups gives the same messages: vanished and re-created
 * states skipped, NOSYNC skipped, values as they are at pack time.
 */
static void fill_mixed(struct sendq *q, __u64 t0)
{
	struct pfsync_key gone = key_for(400);

	for (__u32 n = 1; n <= 300; n++) {
		struct fake_state *s = add_state(n);

		if (n % 3 == 0)
			assert_int_equal(sendq_insert(q, &s->key, n, 77, t0), 0);
		else
			assert_int_equal(sendq_update(q, &s->key, n, 77, t0, 0), 0);
		s->val.peer[0].seqlo = 5000 + n;
	}
	assert_int_equal(sendq_delete(q, &gone, 400, 77, t0), 0);
	W->states[10].present = 0;   /* gone before packing */
	W->states[20].val.id = 9999; /* same key, another state now */
	W->states[30].val.flags |= PFSYNC_SF_NOSYNC;
}

static void test_fetch_packs_like_lookups(void **state)
{
	struct sendq *q = *state;
	struct sent_msg *ref = calloc(FAKE_STATES, sizeof(*ref));
	unsigned int nref;
	__u64 vanished;

	assert_non_null(ref);
	fill_mixed(q, 10 * NSEC);
	assert_true(sendq_flush(q, 10 * NSEC, SENDQ_ALL, &io) > 1);
	nref = W->nmsgs;
	memcpy(ref, W->msgs, nref * sizeof(*ref));
	vanished = q->vanished;
	assert_int_equal(vanished, 3);

	memset(W, 0, sizeof(*W));
	fetch_calls = 0;
	unqueue_calls = 0;
	fill_mixed(q, 20 * NSEC);
	assert_true(sendq_flush(q, 20 * NSEC, SENDQ_ALL, &io_fetch) > 1);
	assert_int_equal(W->nmsgs, nref);
	assert_memory_equal(W->msgs, ref, nref * sizeof(*ref));
	assert_int_equal(q->vanished, 2 * vanished);
	/* fetch clears the queued marks itself: no separate unqueue call */
	assert_int_equal(unqueue_calls, 0);
	/* one call per packet's batch, not one per state */
	assert_true(fetch_calls >= 1 && fetch_calls <= W->packets);
	free(ref);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_insert_goes_out_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_updates_collapse_until_one_second, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_maxupd_sends_now, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_cancels_pending_insert, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_replaces_update, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_packets_before_timer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vanished_states_skipped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_update_replaces_upd_c, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mixed_batch_one_packet, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_pending, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ring_shrinks_when_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_urgent_holdoff_batches, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fetch_packs_like_lookups, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
