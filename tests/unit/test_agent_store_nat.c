/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * agent/store.c on real kernel maps. Translated states (issue 15): a state
 * with a stack key goes in under its wire key and gets the stack key ->
 * wire key alias in pfsync_nat_keys, one at a time and through the batch
 * import program; removing the state removes its alias. And a peer's update
 * merged on the live state (the merge program). Root: skipped with the
 * reason when the kernel refuses the maps or the programs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <cmocka.h>

#include "../../agent/store.h"

struct fixture {
	struct bpf_store b;
	struct state_store s;
	char why[160];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	fx->b.states_fd = bpf_map_create(BPF_MAP_TYPE_HASH, NULL, sizeof(struct pfsync_key),
					 sizeof(struct pfsync_state_value), 64, NULL);
	fx->b.nat_keys_fd = bpf_map_create(BPF_MAP_TYPE_HASH, NULL, sizeof(struct pfsync_key),
					   sizeof(struct pfsync_key), 64, NULL);
	if (fx->b.states_fd < 0 || fx->b.nat_keys_fd < 0)
		snprintf(fx->why, sizeof(fx->why), "kernel refuses BPF maps: %s", strerror(errno));
	bpf_store_bind(&fx->s, &fx->b);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	bpf_store_close_import(&fx->s, &fx->b);
	if (fx->b.states_fd >= 0)
		close(fx->b.states_fd);
	if (fx->b.nat_keys_fd >= 0)
		close(fx->b.nat_keys_fd);
	free(fx);
	return 0;
}

static struct fixture *ready(void **state, const char *test)
{
	struct fixture *fx = *state;

	if (fx->why[0]) {
		print_message("SKIP: %s: %s\n", test, fx->why);
		skip();
	}
	return fx;
}

static void endpoint(struct pfsync_key *k, int side, const char *addr, __u16 port)
{
	assert_int_equal(inet_pton(AF_INET, addr, k->addr[side]), 1);
	k->port[side] = htons(port);
}

/* nat-to: 10.0.0.5:1234 -> 203.0.113.9:443 leaves as 198.51.100.1:port */
static void nat_state(__u16 port, struct pfsync_key *wire, struct pfsync_state_value *v)
{
	memset(wire, 0, sizeof(*wire));
	memset(v, 0, sizeof(*v));
	wire->af = PFSYNC_AF_INET;
	wire->proto = 6;
	endpoint(wire, 0, "198.51.100.1", port);
	endpoint(wire, 1, "203.0.113.9", 443);
	v->id = port;
	v->creatorid = 0x1234;
	v->nat.type = PFSYNC_NAT_NAT;
	v->nat.stack_key = *wire;
	endpoint(&v->nat.stack_key, 0, "10.0.0.5", 1234);
}

static void assert_alias(const struct fixture *fx, const struct pfsync_key *stack,
			 const struct pfsync_key *wire)
{
	struct pfsync_key got;

	assert_int_equal(bpf_map_lookup_elem(fx->b.nat_keys_fd, stack, &got), 0);
	assert_memory_equal(&got, wire, sizeof(got));
}

static void assert_no_alias(const struct fixture *fx, const struct pfsync_key *stack)
{
	struct pfsync_key got;

	assert_int_not_equal(bpf_map_lookup_elem(fx->b.nat_keys_fd, stack, &got), 0);
}

static void test_insert_and_remove_keep_the_alias(void **state)
{
	struct fixture *fx = ready(state, __func__);
	struct pfsync_state_value v, got;
	struct pfsync_key wire;

	nat_state(50123, &wire, &v);
	assert_int_equal(fx->s.insert(fx->s.ctx, &wire, &v), 0);
	assert_alias(fx, &v.nat.stack_key, &wire);
	assert_int_equal(fx->s.lookup(fx->s.ctx, &wire, &got), 0);
	assert_memory_equal(&got.nat, &v.nat, sizeof(v.nat));
	assert_int_equal(fx->s.remove(fx->s.ctx, &wire), 0);
	assert_no_alias(fx, &v.nat.stack_key);
	/* an untranslated state has no alias */
	v.nat.type = PFSYNC_NAT_NONE;
	assert_int_equal(fx->s.insert(fx->s.ctx, &wire, &v), 0);
	assert_no_alias(fx, &v.nat.stack_key);
}

/* an alias that names another state by now stays when the old state goes */
static void test_remove_spares_a_reused_alias(void **state)
{
	struct fixture *fx = ready(state, __func__);
	struct pfsync_state_value v1, v2;
	struct pfsync_key w1, w2;

	nat_state(50001, &w1, &v1);
	nat_state(50002, &w2, &v2); /* same inside tuple, a later connection */
	assert_int_equal(fx->s.insert(fx->s.ctx, &w1, &v1), 0);
	assert_int_equal(fx->s.insert(fx->s.ctx, &w2, &v2), 0);
	assert_alias(fx, &v2.nat.stack_key, &w2);
	assert_int_equal(fx->s.remove(fx->s.ctx, &w1), 0);
	assert_alias(fx, &v2.nat.stack_key, &w2);
}

/* no alias map: the translated state is refused whole, not left half-installed */
static void test_no_alias_map_refuses(void **state)
{
	struct fixture *fx = ready(state, __func__);
	struct pfsync_state_value v, got;
	struct pfsync_key wire;
	int nat_fd = fx->b.nat_keys_fd;

	nat_state(50123, &wire, &v);
	fx->b.nat_keys_fd = -1;
	assert_int_equal(fx->s.insert(fx->s.ctx, &wire, &v), -EOPNOTSUPP);
	assert_int_equal(fx->s.lookup(fx->s.ctx, &wire, &got), -ENOENT);
	fx->b.nat_keys_fd = nat_fd;
}

/* the batch programs (pfsync_bulk.o beside the build's pfsync_xdp.o), or a skip */
static void open_batch_programs(struct fixture *fx, const char *test)
{
	const char *build = getenv("PFSYNC_BUILD");
	char obj[512];
	int err;

	snprintf(obj, sizeof(obj), "%s/pfsync_xdp.o", build ? build : "build");
	err = bpf_store_open_import(&fx->s, &fx->b, obj);
	if (err) {
		print_message("SKIP: %s: batch programs not loaded: %s\n", test, strerror(-err));
		skip();
	}
}

static void test_batch_import_installs_the_alias(void **state)
{
	struct fixture *fx = ready(state, __func__);
	struct pfsync_import_entry e[2];
	int rc[2];

	open_batch_programs(fx, __func__);
	nat_state(50123, &e[0].key, &e[0].val);
	nat_state(50124, &e[1].key, &e[1].val);
	e[1].val.nat.type = PFSYNC_NAT_NONE;
	assert_int_equal(fx->s.insert_batch(fx->s.ctx, e, 2, rc), 0);
	assert_int_equal(rc[0], 0);
	assert_int_equal(rc[1], 0);
	assert_alias(fx, &e[0].val.nat.stack_key, &e[0].key);
	/* the second's stack key is the first's: still the first's alias */
	assert_alias(fx, &e[1].val.nat.stack_key, &e[0].key);
}

/* the merge program opened, and an untranslated TCP state established both ways (not inserted) */
static void merge_fixture(struct fixture *fx, const char *test, __u16 port, struct pfsync_key *k,
			  struct pfsync_state_value *v)
{
	open_batch_programs(fx, test);
	nat_state(port, k, v);
	v->nat.type = PFSYNC_NAT_NONE;
	v->peer[0].state = v->peer[1].state = TCPS_ESTABLISHED;
}

/*
 * A peer's update merged on the live state: what the datapath changed after
 * the agent looked the state up stays (a counter, its own newer half), the
 * peer's newer half is taken, and another state under the key is left
 * alone. The agent's old copy-merge-write put the looked-up copy back whole:
 * the counter went back to 5 and the src half to the peer's older 2000.
 */
static void test_merge_keeps_what_the_datapath_changed(void **state)
{
	struct fixture *fx = ready(state, __func__);
	struct pfsync_state_value v, got;
	struct pfsync_import_entry e;
	struct pfsync_key k;

	merge_fixture(fx, __func__, 50200, &k, &v);
	v.peer[0].seqlo = 1000;
	v.peer[1].seqlo = 5000;
	v.packets[0] = 5;
	assert_int_equal(fx->s.insert(fx->s.ctx, &k, &v), 0);
	/* the peer's update, made from what the agent looked up: src older, dst newer */
	memset(&e, 0, sizeof(e));
	e.key = k;
	e.val.id = v.id;
	e.val.creatorid = v.creatorid;
	e.val.peer[0] = v.peer[0];
	e.val.peer[0].seqlo = 2000;
	e.val.peer[1] = v.peer[1];
	e.val.peer[1].seqlo = 7000;
	e.val.timeout = PFTM_TCP_ESTABLISHED;
	e.val.last_seen = 42;
	/* meanwhile the datapath counted a packet and moved its src half on */
	v.peer[0].seqlo = 3000;
	v.packets[0] = 9;
	assert_int_equal(bpf_map_update_elem(fx->b.states_fd, &k, &v, BPF_EXIST), 0);
	assert_int_equal(fx->s.merge(fx->s.ctx, &e), 1); /* the src half: ours is newer */
	assert_int_equal(fx->s.lookup(fx->s.ctx, &k, &got), 0);
	assert_int_equal(got.packets[0], 9);
	assert_int_equal(got.peer[0].seqlo, 3000);
	assert_int_equal(got.peer[1].seqlo, 7000);
	assert_int_equal(got.last_seen, 42);
	/* another state under the key by now: not this update's */
	e.val.id++;
	assert_int_equal(fx->s.merge(fx->s.ctx, &e), -ENOENT);
}

/*
 * The merge program on a half with our level and seqlo: its seqhi and
 * max_win raise ours, never lower them (an update packed before the live
 * state's latest ACK put seqhi back and stalled the connection).
 */
static void test_merge_same_seqlo_raises_edges_only(void **state)
{
	struct fixture *fx = ready(state, __func__);
	struct pfsync_state_value v, got;
	struct pfsync_import_entry e;
	struct pfsync_key k;

	merge_fixture(fx, __func__, 50250, &k, &v);
	for (int i = 0; i < 2; i++) {
		v.peer[i].seqlo = 1000;
		v.peer[i].seqhi = 9000;
		v.peer[i].max_win = 100;
	}
	assert_int_equal(fx->s.insert(fx->s.ctx, &k, &v), 0);
	memset(&e, 0, sizeof(e));
	e.key = k;
	e.val = v;
	e.val.timeout = PFTM_TCP_ESTABLISHED;
	e.val.peer[0].seqhi = 5000; /* older */
	e.val.peer[0].max_win = 50;
	e.val.peer[1].seqhi = 12000; /* newer */
	e.val.peer[1].max_win = 120;
	assert_int_equal(fx->s.merge(fx->s.ctx, &e), 0);
	assert_int_equal(fx->s.lookup(fx->s.ctx, &k, &got), 0);
	assert_int_equal(got.peer[0].seqhi, 9000);
	assert_int_equal(got.peer[0].max_win, 100);
	assert_int_equal(got.peer[1].seqhi, 12000);
	assert_int_equal(got.peer[1].max_win, 120);
}

/*
 * A released deferred state's marks cleared on the live state, and only
 * they: the other flags and the counters stay; a state gone is -ENOENT.
 */
static void test_unmark_keeps_the_rest(void **state)
{
	struct fixture *fx = ready(state, __func__);
	struct pfsync_state_value v, got;
	struct pfsync_key k;

	open_batch_programs(fx, __func__);
	nat_state(50300, &k, &v);
	v.nat.type = PFSYNC_NAT_NONE;
	v.flags = PFSYNC_SF_DEFERRED | PFSYNC_SF_QUEUED;
	v.state_flags = PFSTATE_ACK | PFSTATE_SLOPPY;
	v.packets[0] = 9;
	assert_int_equal(fx->s.insert(fx->s.ctx, &k, &v), 0);
	assert_int_equal(fx->s.unmark(fx->s.ctx, &k), 0);
	assert_int_equal(fx->s.lookup(fx->s.ctx, &k, &got), 0);
	assert_int_equal(got.flags, PFSYNC_SF_QUEUED);
	assert_int_equal(got.state_flags, PFSTATE_SLOPPY);
	assert_int_equal(got.packets[0], 9);
	assert_int_equal(fx->s.remove(fx->s.ctx, &k), 0);
	assert_int_equal(fx->s.unmark(fx->s.ctx, &k), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_insert_and_remove_keep_the_alias, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remove_spares_a_reused_alias, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_alias_map_refuses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_import_installs_the_alias, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_merge_keeps_what_the_datapath_changed, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_merge_same_seqlo_raises_edges_only, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_unmark_keeps_the_rest, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
