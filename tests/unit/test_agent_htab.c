/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The agent's hash table while it grows: entries live in two tables until
 * the old one is emptied a few slots per put/del. Every operation is
 * checked against a plain array model, across many growths, with gets,
 * overwrites, deletes and remove_if landing while a migration is under way.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../agent/htab.h"

#define KEYS 20000

struct model {
	__u8 present[KEYS];
	__u64 val[KEYS];
	size_t count;
};

static __u32 rng_state = 12345;

static __u32 rnd(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 8;
}

static void key_of(__u32 n, __u8 key[12])
{
	memset(key, 0, 12);
	memcpy(key, &n, sizeof(n));
	key[8] = (__u8)(n * 7);
}

static __u64 val_at(const void *slot)
{
	__u64 v;

	memcpy(&v, slot, sizeof(v));
	return v;
}

static void put(struct htab *h, struct model *m, __u32 n, __u64 v)
{
	__u8 key[12];
	int created;
	void *slot;

	key_of(n, key);
	slot = htab_put(h, key, &created);
	assert_non_null(slot);
	assert_int_equal(created, !m->present[n]);
	if (!created) /* an existing entry keeps its value until written */
		assert_true(val_at(slot) == m->val[n]);
	memcpy(slot, &v, sizeof(v)); /* a packed table's values are not aligned */
	if (!m->present[n])
		m->count++;
	m->present[n] = 1;
	m->val[n] = v;
}

static void del(struct htab *h, struct model *m, __u32 n)
{
	__u8 key[12];

	key_of(n, key);
	assert_int_equal(htab_del(h, key), m->present[n]);
	if (m->present[n])
		m->count--;
	m->present[n] = 0;
}

static void check_all(const struct htab *h, const struct model *m)
{
	__u8 key[12];

	assert_int_equal(h->count, m->count);
	for (__u32 n = 0; n < KEYS; n++) {
		const void *v;

		key_of(n, key);
		v = htab_get(h, key);
		if (!m->present[n]) {
			assert_null(v);
			continue;
		}
		assert_non_null(v);
		assert_true(val_at(v) == m->val[n]);
	}
}

static void test_growth_is_incremental(void **unused)
{
	struct htab h;
	struct model *m = calloc(1, sizeof(*m));
	int migrations_seen = 0;

	(void)unused;
	assert_non_null(m);
	htab_init(&h, 12, sizeof(__u64));
	for (__u32 n = 0; n < KEYS; n++) {
		size_t cap = h.cap;

		put(&h, m, n, (__u64)n * 3 + 1);
		/* load between 1/2 and 3/4: capacities are not only powers of two */
		assert_true(h.count * 4 <= h.cap * 3);
		assert_true(h.cap < 1024 || h.count * 2 + 2 >= h.cap);
		if (h.cap != cap && cap >= 1024) {
			/* the old table is still there, entries in both answer */
			assert_non_null(h.old);
			assert_int_equal(h.old_cap, cap);
			migrations_seen++;
			check_all(&h, m);
		}
	}
	assert_true(migrations_seen >= 4);
	check_all(&h, m);
	htab_free(&h);
	free(m);
}

/* puts 0..n-1 (value n * 3 + 1); returns how many times a table of at least from_cap grew */
static unsigned int fill_counting_growths(struct htab *h, __u32 n, size_t from_cap)
{
	unsigned int growths = 0;

	for (__u32 i = 0; i < n; i++) {
		size_t cap = h->cap;
		__u8 key[12];
		int created;
		void *slot;

		key_of(i, key);
		slot = htab_put(h, key, &created);
		assert_non_null(slot);
		assert_true(created);
		memcpy(slot, &(__u64){(__u64)i * 3 + 1}, sizeof(__u64));
		if (h->cap != cap && cap >= from_cap)
			growths++;
	}
	return growths;
}

/*
 * With a size hint a big table grows in few, big steps, yet ends no
 * bigger than growing step by step would make it for the hinted count;
 * every entry answers, during the growth and after.
 */
static void test_size_hint_grows_in_few_steps(void **unused)
{
	const __u32 n = 400000;
	struct htab plain, hinted;
	unsigned int steps_plain, steps_hinted;

	(void)unused;
	htab_init(&plain, 12, sizeof(__u64));
	htab_init(&hinted, 12, sizeof(__u64));
	htab_size_hint(&hinted, n);
	steps_plain = fill_counting_growths(&plain, n, 65536);
	steps_hinted = fill_counting_growths(&hinted, n, 65536);
	assert_true(steps_plain >= 4);
	assert_true(steps_hinted <= 2);
	assert_int_equal(hinted.cap, plain.cap);
	for (__u32 i = 0; i < n; i++) {
		__u8 key[12];
		const void *v;

		key_of(i, key);
		v = htab_get(&hinted, key);
		assert_non_null(v);
		assert_true(val_at(v) == (__u64)i * 3 + 1);
	}
	htab_free(&plain);
	htab_free(&hinted);
}

/* random puts, overwrites and deletes: many of them hit old entries */
static void random_ops(struct htab *tab)
{
	struct htab h = *tab;
	struct model *m = calloc(1, sizeof(*m));
	unsigned int during = 0;

	assert_non_null(m);
	for (unsigned int i = 0; i < 200000; i++) {
		__u32 n = rnd() % KEYS;
		unsigned int op = rnd() % 10;

		if (h.old)
			during++;
		if (op < 6)
			put(&h, m, n, ((__u64)i << 20) | n);
		else
			del(&h, m, n);
		if (i % 20000 == 0 || (h.old && i % 97 == 0)) {
			__u8 key[12];
			const void *v;

			key_of(n, key);
			v = htab_get(&h, key);
			assert_int_equal(v != NULL, m->present[n]);
		}
	}
	assert_true(during > 1000);
	check_all(&h, m);
	htab_free(&h);
	free(m);
}

static void test_random_ops_during_growth(void **unused)
{
	struct htab h;

	(void)unused;
	htab_init(&h, 12, sizeof(__u64));
	random_ops(&h);
}

/*
 * The same with the mark inside the value (byte 8 of a 12-byte value,
 * which put() never writes): slots are exactly key + value, and an entry
 * whose other value bytes are all zero is still there.
 */
static void test_packed_random_ops(void **unused)
{
	struct htab h;
	struct model *m = calloc(1, sizeof(*m));

	(void)unused;
	assert_non_null(m);
	htab_init_packed(&h, 12, 12, 8);
	assert_int_equal(h.slot_size, 24);
	put(&h, m, 3, 0);
	check_all(&h, m);
	htab_free(&h);
	free(m);
	htab_init_packed(&h, 12, 12, 8);
	random_ops(&h);
}

/* a big table that empties gives its memory back, and is usable after */
static void test_emptied_table_is_released(void **unused)
{
	struct htab h;
	struct model *m = calloc(1, sizeof(*m));
	const __u32 n = 60000; /* needs 128k slots: above the 64k a release starts at */
	__u8 key[12];
	int created;

	(void)unused;
	assert_non_null(m);
	htab_init(&h, 12, sizeof(__u64));
	for (__u32 i = 0; i < n; i++) {
		key_of(i, key);
		assert_non_null(htab_put(&h, key, &created));
	}
	assert_true(h.cap > 65536);
	for (__u32 i = 0; i + 1 < n; i++) {
		key_of(i, key);
		assert_int_equal(htab_del(&h, key), 1);
	}
	assert_true(htab_bytes(&h) > 0); /* one left: kept */
	key_of(n - 1, key);
	assert_int_equal(htab_del(&h, key), 1);
	assert_int_equal(htab_bytes(&h), 0);
	assert_null(h.slots);
	assert_null(htab_get(&h, key));
	put(&h, m, 7, 70);
	check_all(&h, m);
	htab_free(&h);
	free(m);
}

/* a reserved table never grows up to its size, and is kept when emptied */
static void test_reserved_table(void **unused)
{
	struct htab h;
	const __u32 n = 100000;
	size_t cap;
	__u8 key[12];
	int created;

	(void)unused;
	htab_init(&h, 12, sizeof(__u64));
	assert_int_equal(htab_reserve(&h, n), 0);
	cap = h.cap;
	assert_true(cap * 3 >= (size_t)n * 4);
	for (__u32 i = 0; i < n; i++) {
		key_of(i, key);
		assert_non_null(htab_put(&h, key, &created));
		assert_true(created);
	}
	assert_int_equal(h.cap, cap);
	assert_null(h.old);
	for (__u32 i = 0; i < n; i++) {
		key_of(i, key);
		assert_int_equal(htab_del(&h, key), 1);
	}
	assert_int_equal(h.count, 0);
	assert_int_equal(h.cap, cap); /* emptied: kept, where an unreserved one goes */
	assert_int_equal(htab_reserve(&h, n), 0);
	htab_free(&h);
	/* a table already holding a smaller one is not swapped under its entries */
	htab_init(&h, 12, sizeof(__u64));
	key_of(1, key);
	assert_non_null(htab_put(&h, key, &created));
	assert_int_equal(htab_reserve(&h, n), -EBUSY);
	assert_non_null(htab_get(&h, key));
	htab_free(&h);
}

static int odd_key(const void *key, void *val, void *arg)
{
	__u32 n;

	(void)val;
	(void)arg;
	memcpy(&n, key, sizeof(n));
	return n & 1;
}

/* remove_if and clear in the middle of a migration */
static void test_remove_if_and_clear_while_growing(void **unused)
{
	struct htab h;
	struct model *m = calloc(1, sizeof(*m));
	size_t removed, odd = 0;
	__u32 n = 0;

	(void)unused;
	assert_non_null(m);
	htab_init(&h, 12, sizeof(__u64));
	/* until a growth of a table of some size has started */
	while (!(h.old && h.old_cap >= 4096))
		put(&h, m, n, n), n++;
	for (__u32 i = 0; i < n; i++)
		odd += i & 1;
	removed = htab_remove_if(&h, odd_key, NULL);
	assert_int_equal(removed, odd);
	assert_null(h.old);
	for (__u32 i = 0; i < n; i++)
		if (i & 1) {
			m->present[i] = 0;
			m->count--;
		}
	check_all(&h, m);
	while (!h.old)
		put(&h, m, n, n), n++;
	htab_clear(&h);
	memset(m, 0, sizeof(*m));
	check_all(&h, m);
	put(&h, m, 5, 55);
	check_all(&h, m);
	htab_free(&h);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_growth_is_incremental),
	    cmocka_unit_test(test_size_hint_grows_in_few_steps),
	    cmocka_unit_test(test_random_ops_during_growth),
	    cmocka_unit_test(test_packed_random_ops),
	    cmocka_unit_test(test_emptied_table_is_released),
	    cmocka_unit_test(test_reserved_table),
	    cmocka_unit_test(test_remove_if_and_clear_while_growing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
