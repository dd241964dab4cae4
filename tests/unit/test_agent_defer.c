/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Defer bookkeeping (agent/defer.c) against a stand-in queue and sender:
 * each held packet goes once, on its own ack or its own timeout, whatever
 * the others do; an ack that comes before the packet was taken from the
 * queue still counts, one for a packet already gone does not carry over to
 * the next packet of the same key; the counters always add up.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../agent/agent.h"

#define MS	   1000000ULL
#define TIMEOUT_MS 20
#define QMAX	   (2 * PFSYNC_DEFER_MAX + 8)
#define PEER_ID	   0x22222222u

struct world {
	struct agent a;
	/* the datapath's queue */
	struct pfsync_deferred q[QMAX];
	unsigned int qhead, qtail;
	/* what was sent: frame tags (data[0..1]), in order */
	unsigned int sent[QMAX];
	unsigned int nsent;
	int fail_tag; /* send of this tag fails (-1: none) */
	/* one state in the table */
	int have_state;
	struct pfsync_key skey;
	struct pfsync_state_value sval;
};

static struct world *W;

static int fake_pop(struct defer_state *d, struct pfsync_deferred *out)
{
	(void)d;
	if (W->qhead == W->qtail)
		return -ENOENT;
	*out = W->q[W->qhead++];
	return 0;
}

static unsigned int tag_of(const struct pfsync_deferred *h)
{
	return (unsigned int)h->data[0] << 8 | h->data[1];
}

static int fake_send(struct defer_state *d, const struct pfsync_deferred *h)
{
	(void)d;
	assert_true(W->nsent < QMAX);
	W->sent[W->nsent++] = tag_of(h);
	return (int)tag_of(h) == W->fail_tag ? -ENETDOWN : 0;
}

static int fake_lookup(void *ctx, const struct pfsync_key *k, struct pfsync_state_value *v)
{
	(void)ctx;
	if (!W->have_state || memcmp(k, &W->skey, sizeof(*k)) != 0)
		return -ENOENT;
	*v = W->sval;
	return 0;
}

static int fake_update(void *ctx, const struct pfsync_key *k, const struct pfsync_state_value *v)
{
	(void)ctx;
	if (!W->have_state || memcmp(k, &W->skey, sizeof(*k)) != 0)
		return -ENOENT;
	W->sval = *v;
	return 0;
}

static struct pfsync_key key_for(unsigned int n)
{
	struct pfsync_key k;

	memset(&k, 0, sizeof(k));
	k.af = PFSYNC_AF_INET;
	k.proto = 6;
	k.addr[0][0] = 0x0a000001;
	k.addr[1][0] = 0x0a000002;
	k.port[0] = (__u16)(1000 + n);
	k.port[1] = 80;
	return k;
}

/* the datapath holds a frame tagged tag for the state at key n, at t_ms */
static void push(unsigned int tag, unsigned int n, __u64 t_ms)
{
	struct pfsync_deferred *h = &W->q[W->qtail++];

	assert_true(W->qtail <= QMAX);
	memset(h, 0, sizeof(*h));
	h->key = key_for(n);
	h->held_ns = t_ms * MS;
	h->ifindex = 7;
	h->len = 60;
	h->data[0] = (__u8)(tag >> 8);
	h->data[1] = (__u8)tag;
}

static void at(__u64 t_ms)
{
	W->a.now_ns = t_ms * MS;
}

static void ack(unsigned int n, int flagged)
{
	struct pfsync_key k = key_for(n);

	defer_ack(&W->a, &k, flagged);
}

static void assert_sent(const unsigned int *tags, unsigned int n)
{
	assert_int_equal(W->nsent, n);
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(W->sent[i], tags[i]);
}

/* taken = released on ack + by timeout + failed + still held, always */
static void assert_balanced(void)
{
	const struct defer_state *d = &W->a.defer;

	assert_int_equal(d->taken,
			 d->released_ack + d->released_timeout + d->release_failed + d->pending);
	assert_int_equal(W->nsent, d->released_ack + d->released_timeout + d->release_failed);
}

static int setup(void **state)
{
	struct agent *a;

	agent_log_level = LOG_LVL_ERR;
	W = calloc(1, sizeof(*W));
	assert_non_null(W);
	W->fail_tag = -1;
	a = &W->a;
	a->hostid = 0x11111111u;
	a->store.lookup = fake_lookup;
	a->store.update = fake_update;
	index_init(&a->index);
	defer_init(&a->defer, -1, TIMEOUT_MS);
	a->defer.pop = fake_pop;
	a->defer.send = fake_send;
	*state = W;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	defer_free(&W->a.defer);
	index_free(&W->a.index);
	free(W);
	return 0;
}

/*
 * The real sender with no ingress path set up (release.c): an ingress-held
 * packet cannot go, is counted failed, once, and never as released.
 */
static void test_no_ingress_path_fails_counted(void **state)
{
	struct agent *a = &W->a;
	struct defer_state *d = &a->defer;

	(void)state;
	defer_free(d);
	defer_init(d, -1, TIMEOUT_MS);
	d->pop = fake_pop;
	assert_int_equal(d->io.ingress, RELEASE_PATH_NONE);
	push(1, 1, 100);
	push(2, 2, 100);
	at(101);
	defer_held(a);
	ack(1, 1);
	defer_run(a);
	at(100 + TIMEOUT_MS);
	assert_int_equal(defer_run(a), 0);
	assert_int_equal(d->release_failed, 2);
	assert_int_equal(d->released_ack + d->released_timeout, 0);
	assert_int_equal(d->taken, d->release_failed);
	assert_int_equal(d->pending, 0);
}

/* an acked packet goes at once, not after an older one still waiting */
static void test_ack_releases_its_packet_only(void **state)
{
	struct agent *a = &W->a;

	(void)state;
	push(1, 1, 100);
	push(2, 2, 100);
	at(101);
	defer_held(a);
	ack(2, 1);
	assert_int_equal(defer_run(a), (100 + TIMEOUT_MS) * MS);
	assert_sent((unsigned int[]){2}, 1);
	assert_int_equal(a->defer.released_ack, 1);
	assert_int_equal(a->defer.pending, 1);
	/* the older one on its own timeout */
	at(100 + TIMEOUT_MS - 1);
	assert_int_equal(defer_run(a), (100 + TIMEOUT_MS) * MS);
	assert_int_equal(W->nsent, 1);
	at(100 + TIMEOUT_MS);
	assert_int_equal(defer_run(a), 0);
	assert_sent((unsigned int[]){2, 1}, 2);
	assert_int_equal(a->defer.released_timeout, 1);
	assert_balanced();
}

/* the insert record was lost or not read yet: the ack still finds the packet */
static void test_ack_before_taken(void **state)
{
	struct agent *a = &W->a;

	(void)state;
	push(7, 3, 50);
	at(51);
	ack(3, 1); /* state marked DEFERRED, nothing taken yet */
	defer_run(a);
	assert_sent((unsigned int[]){7}, 1);
	assert_int_equal(a->defer.released_ack, 1);
	assert_int_equal(a->defer.released_timeout, 0);
	assert_balanced();
}

/* an ack for a packet already gone is forgotten, not applied to a later one */
static void test_late_ack_not_kept(void **state)
{
	struct agent *a = &W->a;

	(void)state;
	push(1, 1, 0);
	at(1);
	defer_held(a);
	ack(5, 1); /* nothing held for key 5 */
	ack(5, 0);
	push(2, 5, 2); /* a new state with key 5, after the ack */
	defer_held(a);
	assert_int_equal(defer_run(a), TIMEOUT_MS * MS);
	assert_int_equal(W->nsent, 0);
	at(TIMEOUT_MS);
	assert_int_equal(defer_run(a), (2 + TIMEOUT_MS) * MS);
	assert_sent((unsigned int[]){1}, 1);
	at(2 + TIMEOUT_MS);
	defer_run(a);
	assert_sent((unsigned int[]){1, 2}, 2);
	assert_int_equal(a->defer.released_timeout, 2);
	assert_int_equal(a->defer.released_ack, 0);
	assert_balanced();
}

/* many packets, acks in any order, a failing send: each goes exactly once */
static void test_each_once_counters_add_up(void **state)
{
	struct agent *a = &W->a;
	unsigned int seen[64] = {0};

	(void)state;
	W->fail_tag = 13;
	for (unsigned int i = 0; i < 40; i++)
		push(i, i, i);
	at(40);
	defer_held(a);
	for (unsigned int i = 0; i < 40; i += 3)
		ack(39 - i, 0);
	ack(39, 1); /* twice: still once */
	defer_run(a);
	assert_balanced();
	at(40 + TIMEOUT_MS);
	defer_run(a);
	at(1000);
	assert_int_equal(defer_run(a), 0);
	assert_int_equal(a->defer.pending, 0);
	assert_int_equal(W->nsent, 40);
	for (unsigned int i = 0; i < W->nsent; i++)
		seen[W->sent[i]]++;
	for (unsigned int i = 0; i < 40; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(a->defer.taken, 40);
	assert_int_equal(a->defer.released_ack, 14);  /* keys 39, 36, ..., 0 */
	assert_int_equal(a->defer.release_failed, 1); /* 13, unacked */
	assert_int_equal(a->defer.released_timeout, 25);
	assert_balanced();
}

/* pf's limit: beyond PFSYNC_DEFER_MAX held, the oldest goes at once */
static void test_limit_releases_oldest(void **state)
{
	struct agent *a = &W->a;

	(void)state;
	for (unsigned int i = 0; i < PFSYNC_DEFER_MAX + 2; i++)
		push(i, i, 10);
	at(11);
	defer_held(a);
	assert_int_equal(a->defer.pending, PFSYNC_DEFER_MAX);
	assert_sent((unsigned int[]){0, 1}, 2);
	assert_balanced();
}

/* the agent stops: whatever it holds is released, nothing is dropped */
static void test_flush_releases_all(void **state)
{
	struct agent *a = &W->a;

	(void)state;
	push(1, 1, 10);
	push(2, 2, 10);
	at(11);
	defer_held(a);
	ack(2, 0);
	push(3, 3, 11); /* still in the queue */
	defer_flush(a);
	assert_int_equal(a->defer.pending, 0);
	assert_int_equal(W->nsent, 3);
	assert_int_equal(a->defer.released_ack, 1);
	assert_int_equal(a->defer.released_timeout, 2);
	assert_balanced();
}

/* released: the state's DEFERRED and PFSTATE_ACK marks are cleared */
static void test_release_unmarks_state(void **state)
{
	struct agent *a = &W->a;

	(void)state;
	W->have_state = 1;
	W->skey = key_for(4);
	W->sval.flags = PFSYNC_SF_DEFERRED | PFSYNC_SF_QUEUED;
	W->sval.state_flags = PFSTATE_ACK | PFSTATE_SLOPPY;
	push(1, 4, 0);
	at(TIMEOUT_MS);
	defer_run(a);
	assert_int_equal(W->nsent, 1);
	assert_int_equal(W->sval.flags, PFSYNC_SF_QUEUED);
	assert_int_equal(W->sval.state_flags, PFSTATE_SLOPPY);
}

/*
 * INS_ACK for a state whose DEFERRED mark was lost (a userspace write of
 * the value raced the datapath setting it): the held packet goes on the ack.
 */
static void test_ins_ack_without_mark(void **state)
{
	struct agent *a = &W->a;
	struct pfsync_ins_ack m;
	__u64 id = 0x1234;

	(void)state;
	W->have_state = 1;
	W->skey = key_for(6);
	W->sval.id = id;
	W->sval.creatorid = a->hostid;
	W->sval.flags = 0;
	assert_int_equal(index_put(&a->index, id, a->hostid, &W->skey), 0);
	push(9, 6, 0);
	at(1);
	defer_held(a);
	pfsync_id_msg_fill(&m, id, a->hostid);
	apply_ops.ins_ack(a, &m);
	defer_run(a);
	assert_sent((unsigned int[]){9}, 1);
	assert_int_equal(a->defer.released_ack, 1);
	assert_balanced();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ack_releases_its_packet_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ack_before_taken, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_late_ack_not_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_each_once_counters_add_up, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limit_releases_oldest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush_releases_all, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release_unmarks_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ins_ack_without_mark, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_ingress_path_fails_counted, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
