// SPDX-License-Identifier: BSD-2-Clause
/*
 * pfsync_sweep's PFSYNC_SWEEP_KEYS mode (the agent's incremental expiry
 * pass) run by BPF_PROG_RUN against build/pfsync_xdp.o (needs root): only
 * the keys handed over are visited, each is judged on its live value, a
 * removed state is announced by a DELETE record unless NOSYNC, and only the
 * pass's last chunk (PFSYNC_SWEEP_PASS_END) sets the adaptive state count.
 * Adaptive timeouts scale with the table's size (a 200000-state table at
 * 130000 keeps its states; a 1000-state one scales from 600 on) unless
 * both bounds are set to 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pfsync_common.h"
#include "pfsync_loader.h"
#include "pfsync_logic.h"
#include "libpkt.h"

#define NSEC   1000000000ULL
#define NOW_NS (5000 * NSEC)

struct fixture {
	struct pkt_obj o; /* libpkt's shared fixture */
	int states, globals;
	struct ring_buffer *rb;
	struct pkt_events log;
};

static void fixture_free(struct fixture *f)
{
	if (f->rb)
		ring_buffer__free(f->rb);
	pkt_obj_close(&f->o);
	free(f);
}

/* states_max 0: the table as compiled */
static int setup_sized(void **state, __u32 states_max)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	if (pkt_obj_open(&f->o, "sweep", states_max, PFSYNC_LOAD_CTL))
		goto fail;
	f->states = pkt_obj_map_fd(&f->o, PFSYNC_MAP_STATES);
	f->globals = pkt_obj_map_fd(&f->o, PFSYNC_MAP_GLOBALS);
	f->rb = ring_buffer__new(pkt_obj_map_fd(&f->o, PFSYNC_MAP_EVENTS), pkt_events_record,
				 &f->log, NULL);
	if (f->states < 0 || f->globals < 0 || !f->rb)
		goto fail;
	*state = f;
	return 0;
fail:
	fixture_free(f);
	return -1;
}

static int setup(void **state)
{
	return setup_sized(state, 0);
}

#define BIG_TABLE   200000
#define SMALL_TABLE 1000

static int setup_big(void **state)
{
	return setup_sized(state, BIG_TABLE);
}

static int setup_small(void **state)
{
	return setup_sized(state, SMALL_TABLE);
}

static int teardown(void **state)
{
	if (*state)
		fixture_free(*state);
	return 0;
}

static struct pfsync_key key_for(__u32 n)
{
	struct pfsync_key k;

	memset(&k, 0, sizeof(k));
	k.addr[0][0] = htobe32(0x0a000001);
	k.addr[1][0] = htobe32(0x0a000100 + n);
	k.port[0] = htobe16(40000 + n);
	k.port[1] = htobe16(53);
	k.proto = 17;
	k.af = PFSYNC_AF_INET;
	return k;
}

/* a UDP state last seen `idle_s` seconds before NOW_NS */
static void put_state(struct fixture *f, __u32 n, __u64 idle_s, __u32 flags)
{
	struct pfsync_key k = key_for(n);
	struct pfsync_state_value v;

	memset(&v, 0, sizeof(v));
	v.id = 0x7000 + n;
	v.creatorid = 0x11111111;
	v.timeout = PFTM_UDP_SINGLE;
	v.creation = v.last_seen = NOW_NS - idle_s * NSEC;
	v.flags = flags;
	assert_int_equal(bpf_map_update_elem(f->states, &k, &v, BPF_NOEXIST), 0);
}

static int present(struct fixture *f, __u32 n)
{
	struct pfsync_key k = key_for(n);
	struct pfsync_state_value v;

	return bpf_map_lookup_elem(f->states, &k, &v) == 0;
}

static struct pfsync_globals globals(struct fixture *f)
{
	struct pfsync_globals g;
	__u32 zero = 0;

	assert_int_equal(bpf_map_lookup_elem(f->globals, &zero, &g), 0);
	return g;
}

static void test_keys_judged_on_live_values(void **state)
{
	struct fixture *f = *state;
	struct pfsync_sweep_args args = {.now_ns = NOW_NS, .sweep_flags = PFSYNC_SWEEP_KEYS};
	__u32 count_before = globals(f).states_count;

	put_state(f, 1, 3600, 0);		 /* due */
	put_state(f, 2, 1, 0);			 /* fresh */
	put_state(f, 3, 3600, PFSYNC_SF_NOSYNC); /* due, never named to peers */
	put_state(f, 4, 3600, 0);		 /* due, but not handed over */
	args.keys[0] = key_for(1);
	args.keys[1] = key_for(2);
	args.keys[2] = key_for(3);
	args.keys[3] = key_for(9); /* gone meanwhile */
	args.count = 4;
	assert_int_equal(pfsync_bpf_sweep(&f->o.b, &args), 0);
	assert_int_equal(args.seen, 3);
	assert_int_equal(args.deleted, 2);
	assert_false(present(f, 1));
	assert_true(present(f, 2));
	assert_false(present(f, 3));
	assert_true(present(f, 4)); /* a chunk touches nothing else */
	assert_true(ring_buffer__consume(f->rb) >= 0);
	assert_int_equal(f->log.n, 1);
	assert_int_equal(f->log.ev[0].type, PFSYNC_EV_DELETE);
	assert_int_equal(f->log.ev[0].id, 0x7001);
	/* not the pass's end: the adaptive count is left alone */
	assert_int_equal(globals(f).states_count, count_before);
}

static void test_pass_end_sets_count(void **state)
{
	struct fixture *f = *state;
	struct pfsync_sweep_args args = {
	    .now_ns = NOW_NS,
	    .sweep_flags = PFSYNC_SWEEP_KEYS | PFSYNC_SWEEP_PASS_END,
	    .pass_seen = 4242,
	};
	struct pfsync_globals g;

	put_state(f, 5, 3600, 0);
	args.keys[0] = key_for(5);
	args.count = 1;
	assert_int_equal(pfsync_bpf_sweep(&f->o.b, &args), 0);
	assert_int_equal(args.deleted, 1);
	g = globals(f);
	assert_int_equal(g.states_count, 4242);
	assert_int_equal(g.last_sweep_ns, NOW_NS);
	/* count beyond the batch is clamped to it: every key of the batch is
	 * judged (all due), nothing is read past keys[] */
	memset(&args, 0, sizeof(args));
	args.now_ns = NOW_NS;
	args.sweep_flags = PFSYNC_SWEEP_KEYS;
	for (__u32 i = 0; i < PFSYNC_SWEEP_BATCH; i++) {
		put_state(f, 100 + i, 3600, 0);
		args.keys[i] = key_for(100 + i);
	}
	args.count = PFSYNC_SWEEP_BATCH + 100;
	assert_int_equal(pfsync_bpf_sweep(&f->o.b, &args), 0);
	assert_int_equal(args.seen, PFSYNC_SWEEP_BATCH);
	assert_int_equal(args.deleted, PFSYNC_SWEEP_BATCH);
}

#define FILL_CHUNK 4096

/* states first..first+n-1, UDP_SINGLE (30 s), last seen at NOW_NS */
static void fill_states(struct fixture *f, __u32 first, __u32 n)
{
	static struct pfsync_key keys[FILL_CHUNK];
	static struct pfsync_state_value vals[FILL_CHUNK];
	__u32 done = 0;

	while (done < n) {
		__u32 count = n - done < FILL_CHUNK ? n - done : FILL_CHUNK;

		memset(vals, 0, sizeof(vals));
		for (__u32 i = 0; i < count; i++) {
			keys[i] = key_for(first + done + i);
			vals[i].id = 0x100000 + first + done + i;
			vals[i].creatorid = 0x22222222;
			vals[i].timeout = PFTM_UDP_SINGLE;
			vals[i].creation = vals[i].last_seen = NOW_NS;
		}
		assert_int_equal(bpf_map_update_batch(f->states, keys, vals, &count, NULL), 0);
		done += count;
	}
}

/* a whole-map sweep as of NOW_NS + after_s; returns the states it removed */
static __u32 sweep_at(struct fixture *f, __u64 after_s)
{
	struct pfsync_sweep_args args = {.now_ns = NOW_NS + after_s * NSEC,
					 .sweep_flags = PFSYNC_SWEEP_QUIET};

	assert_int_equal(pfsync_bpf_sweep(&f->o.b, &args), 0);
	return args.deleted;
}

static struct pfsync_config config_read(struct fixture *f)
{
	int fd = pkt_obj_map_fd(&f->o, PFSYNC_MAP_CONFIG);
	struct pfsync_config cfg;
	__u32 zero = 0;

	assert_true(fd >= 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &zero, &cfg), 0);
	return cfg;
}

static void config_write(struct fixture *f, const struct pfsync_config *cfg)
{
	int fd = pkt_obj_map_fd(&f->o, PFSYNC_MAP_CONFIG);
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(fd, &zero, cfg, BPF_ANY), 0);
}

/*
 * --states-max 200000 filled to 130000: pf's fixed 60000/120000 made every
 * timeout 0 here (the sweep wiped the table); 120000/240000 scale UDP's 30 s
 * to 30 * 110000 / 120000 = 27 s.
 */
static void test_big_table_keeps_its_states(void **state)
{
	struct fixture *f = *state;
	const __u32 n = 130000;

	assert_int_equal(config_read(f).table_size, BIG_TABLE);
	fill_states(f, 0, n);
	assert_int_equal(sweep_at(f, 0), 0); /* counts the table for the next */
	assert_int_equal(globals(f).states_count, n);
	assert_int_equal(sweep_at(f, 1), 0);
	assert_int_equal(sweep_at(f, 26), 0);
	assert_int_equal(globals(f).states_count, n);
	/* scaled, not switched off: due after 27 s instead of 30 */
	assert_int_equal(sweep_at(f, 27), n);
}

/*
 * A 1000-state table: scaling starts past 600 states (60 %), whatever pf's
 * 60000 default would say, and stops with both bounds set to 0.
 */
static void test_small_table_scales_from_60_percent(void **state)
{
	struct fixture *f = *state;
	struct pfsync_config cfg;

	assert_int_equal(config_read(f).table_size, SMALL_TABLE);
	fill_states(f, 0, 600);
	assert_int_equal(sweep_at(f, 0), 0);
	/* 600 states: at adaptive.start, unscaled (30 s) */
	assert_int_equal(sweep_at(f, 29), 0);
	/* 601: 30 * 599 / 600 = 29 s */
	fill_states(f, 600, 1);
	assert_int_equal(sweep_at(f, 0), 0);
	assert_int_equal(globals(f).states_count, 601);
	assert_int_equal(sweep_at(f, 29), 601);

	/* 900 states (half way to 1200): 15 s; both bounds 0: 30 s */
	fill_states(f, 0, 900);
	assert_int_equal(sweep_at(f, 0), 0);
	assert_int_equal(sweep_at(f, 14), 0);
	cfg = config_read(f);
	cfg.timeouts[PFTM_ADAPTIVE_START] = cfg.timeouts[PFTM_ADAPTIVE_END] = 0;
	cfg.cfg_flags |= PFSYNC_CFG_ADAPTIVE_START | PFSYNC_CFG_ADAPTIVE_END;
	config_write(f, &cfg);
	assert_int_equal(sweep_at(f, 15), 0);
	assert_int_equal(sweep_at(f, 29), 0);
	cfg.cfg_flags &= ~(__u32)(PFSYNC_CFG_ADAPTIVE_START | PFSYNC_CFG_ADAPTIVE_END);
	config_write(f, &cfg);
	assert_int_equal(sweep_at(f, 15), 900);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_keys_judged_on_live_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pass_end_sets_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_big_table_keeps_its_states, setup_big, teardown),
	    cmocka_unit_test_setup_teardown(test_small_table_scales_from_60_percent, setup_small,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
