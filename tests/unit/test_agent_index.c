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
	assert_int_equal(index_del_creator(&ix, 42), 5000 - expect_left);
	assert_int_equal(index_count(&ix), expect_left);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get_del),
	    cmocka_unit_test(test_put_replaces),
	    cmocka_unit_test(test_many_with_deletes),
	    cmocka_unit_test(test_del_creator),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
