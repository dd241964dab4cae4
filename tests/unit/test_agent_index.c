/* SPDX-License-Identifier: BSD-2-Clause */
/* The (id, creatorid) -> key index and the hash table under it. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../agent/index.h"

static struct pfsync_key key_for(__u32 n)
{
	struct pfsync_key k;

	memset(&k, 0, sizeof(k));
	k.addr[0][0] = n;
	k.addr[1][0] = ~n;
	k.port[0] = (__u16)n;
	k.proto = 6;
	k.af = PFSYNC_AF_INET;
	return k;
}

static void test_put_get_del(void **unused)
{
	struct state_index ix;
	struct pfsync_key k = key_for(7), out;

	(void)unused;
	index_init(&ix);
	assert_int_equal(index_get(&ix, 1, 2, &out), -ENOENT);
	assert_int_equal(index_put(&ix, 1, 2, &k), 0);
	assert_int_equal(index_get(&ix, 1, 2, &out), 0);
	assert_memory_equal(&out, &k, sizeof(k));
	/* identity is the pair: same id of another creator is another state */
	assert_int_equal(index_get(&ix, 1, 3, &out), -ENOENT);
	assert_int_equal(index_del(&ix, 1, 3), 0);
	assert_int_equal(index_del(&ix, 1, 2), 1);
	assert_int_equal(index_get(&ix, 1, 2, &out), -ENOENT);
	assert_int_equal(index_count(&ix), 0);
	index_free(&ix);
}

static void test_put_replaces(void **unused)
{
	struct state_index ix;
	struct pfsync_key a = key_for(1), b = key_for(2), out;

	(void)unused;
	index_init(&ix);
	assert_int_equal(index_put(&ix, 5, 9, &a), 0);
	assert_int_equal(index_put(&ix, 5, 9, &b), 0);
	assert_int_equal(index_count(&ix), 1);
	assert_int_equal(index_get(&ix, 5, 9, &out), 0);
	assert_memory_equal(&out, &b, sizeof(b));
	index_free(&ix);
}

/* many entries, deletions in between: every survivor must still be found
 * (exercises resizing and the backward shift of probe chains) */
static void test_many_with_deletes(void **unused)
{
	struct state_index ix;
	const __u32 n = 20000;

	(void)unused;
	index_init(&ix);
	for (__u32 i = 1; i <= n; i++) {
		struct pfsync_key k = key_for(i);

		assert_int_equal(index_put(&ix, ((__u64)i << 32) | i, 1000 + (i % 3), &k), 0);
	}
	for (__u32 i = 1; i <= n; i += 2)
		assert_int_equal(index_del(&ix, ((__u64)i << 32) | i, 1000 + (i % 3)), 1);
	assert_int_equal(index_count(&ix), n / 2);
	for (__u32 i = 1; i <= n; i++) {
		struct pfsync_key k = key_for(i), out;
		int rc = index_get(&ix, ((__u64)i << 32) | i, 1000 + (i % 3), &out);

		if (i % 2) {
			assert_int_equal(rc, -ENOENT);
		} else {
			assert_int_equal(rc, 0);
			assert_memory_equal(&out, &k, sizeof(k));
		}
	}
	index_free(&ix);
}

static void test_del_creator(void **unused)
{
	struct state_index ix;
	size_t expect_left = 0;

	(void)unused;
	index_init(&ix);
	for (__u32 i = 1; i <= 5000; i++) {
		struct pfsync_key k = key_for(i);
		__u32 creator = i % 4 == 0 ? 42 : 43;

		expect_left += creator == 43;
		assert_int_equal(index_put(&ix, i, creator, &k), 0);
	}
	assert_true(index_has_creator(&ix, 42));
	assert_false(index_has_creator(&ix, 44));
	assert_int_equal(index_del_creator(&ix, 42), 5000 - expect_left);
	assert_int_equal(index_count(&ix), expect_left);
	assert_false(index_has_creator(&ix, 42));
	assert_true(index_has_creator(&ix, 43));
	for (__u32 i = 1; i <= 5000; i++) {
		struct pfsync_key out;

		assert_int_equal(index_get(&ix, i, 42, &out), -ENOENT);
		if (i % 4)
			assert_int_equal(index_get(&ix, i, 43, &out), 0);
	}
	index_clear(&ix);
	assert_int_equal(index_count(&ix), 0);
	assert_int_equal(index_get(&ix, 1, 43, &(struct pfsync_key){0}), -ENOENT);
	index_free(&ix);
}

static struct pfsync_key key6_for(__u32 n)
{
	struct pfsync_key k = key_for(n);

	k.af = PFSYNC_AF_INET6;
	k.addr[0][0] = 0x20010db8;
	k.addr[0][3] = n;
	k.addr[1][2] = ~n;
	return k;
}

/*
 * IPv4 keys are held compactly, anything else whole: both come back byte
 * for byte, and an identity re-pointed from one form to the other is
 * found once, with its latest key.
 */
static void test_key_forms(void **unused)
{
	struct state_index ix;
	struct pfsync_key v4 = key_for(11), v6 = key6_for(12), odd = key_for(13), out;

	(void)unused;
	odd.addr[1][1] = 5; /* af INET but a word a compact entry cannot hold */
	index_init(&ix);
	assert_int_equal(index_put(&ix, 1, 9, &v4), 0);
	assert_int_equal(index_put(&ix, 2, 9, &v6), 0);
	assert_int_equal(index_put(&ix, 3, 9, &odd), 0);
	assert_int_equal(ix.v4.count, 1);
	assert_int_equal(ix.other.count, 2);
	assert_int_equal(index_get(&ix, 1, 9, &out), 0);
	assert_memory_equal(&out, &v4, sizeof(out));
	assert_int_equal(index_get(&ix, 2, 9, &out), 0);
	assert_memory_equal(&out, &v6, sizeof(out));
	assert_int_equal(index_get(&ix, 3, 9, &out), 0);
	assert_memory_equal(&out, &odd, sizeof(out));
	/* re-pointed across forms, both ways */
	assert_int_equal(index_put(&ix, 1, 9, &v6), 0);
	assert_int_equal(index_put(&ix, 2, 9, &v4), 0);
	assert_int_equal(index_count(&ix), 3);
	assert_int_equal(index_get(&ix, 1, 9, &out), 0);
	assert_memory_equal(&out, &v6, sizeof(out));
	assert_int_equal(index_get(&ix, 2, 9, &out), 0);
	assert_memory_equal(&out, &v4, sizeof(out));
	assert_int_equal(index_del_creator(&ix, 9), 3);
	assert_int_equal(index_count(&ix), 0);
	assert_int_equal(index_put(&ix, 4, 9, &v6), 0);
	assert_int_equal(index_del(&ix, 4, 9), 1);
	assert_int_equal(index_get(&ix, 4, 9, &out), -ENOENT);
	index_free(&ix);
}

/* an IPv4 entry is identity + 16 bytes of key: 28 bytes a slot, nothing else */
static void test_v4_entry_size(void **unused)
{
	struct state_index ix;

	(void)unused;
	index_init(&ix);
	/* 10000 or more, until a growth is over: one table */
	for (__u32 i = 1; i <= 10000 || ix.v4.old; i++) {
		struct pfsync_key k = key_for(i);

		assert_int_equal(index_put(&ix, i, 1, &k), 0);
	}
	assert_int_equal(index_bytes(&ix), ix.v4.cap * 28);
	index_free(&ix);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get_del),	      cmocka_unit_test(test_put_replaces),
	    cmocka_unit_test(test_many_with_deletes), cmocka_unit_test(test_del_creator),
	    cmocka_unit_test(test_key_forms),	      cmocka_unit_test(test_v4_entry_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
