/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "htab.h"

#define HTAB_MIN_CAP   64
#define HTAB_MARK      4 /* bytes of the used mark at the start of a slot */
#define HTAB_HUGE_PAGE ((size_t)2 << 20)

static __u64 hash_bytes(const __u8 *p, size_t len)
{
	__u64 h = 0x9e3779b97f4a7c15ULL ^ len;
	__u64 chunk;

	while (len >= 8) {
		memcpy(&chunk, p, 8);
		h = (h ^ chunk) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
		p += 8;
		len -= 8;
	}
	chunk = 0;
	memcpy(&chunk, p, len);
	h = (h ^ chunk) * 0x94d049bb133111ebULL;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	return h ^ (h >> 32);
}

static __u8 *slot_at(const struct htab *h, size_t i)
{
	return h->slots + i * h->slot_size;
}

static int slot_used(const __u8 *slot)
{
	return slot[0] != 0;
}

static const __u8 *slot_key(const __u8 *slot)
{
	return slot + HTAB_MARK;
}

static size_t home_of(const struct htab *h, const __u8 *key)
{
	return hash_bytes(key, h->key_size) & (h->cap - 1);
}

void htab_init(struct htab *h, size_t key_size, size_t val_size)
{
	memset(h, 0, sizeof(*h));
	h->key_size = key_size;
	h->val_size = val_size;
	h->slot_size = (HTAB_MARK + key_size + val_size + 7) & ~(size_t)7;
}

void htab_free(struct htab *h)
{
	free(h->slots);
	h->slots = NULL;
	h->cap = 0;
	h->count = 0;
}

/* index of key's slot, or of the empty slot where it would go */
static size_t probe(const struct htab *h, const void *key)
{
	size_t i = home_of(h, key);

	for (;;) {
		const __u8 *s = slot_at(h, i);

		if (!slot_used(s) || memcmp(slot_key(s), key, h->key_size) == 0)
			return i;
		i = (i + 1) & (h->cap - 1);
	}
}

void htab_prefetch(const struct htab *h, const void *key)
{
	const __u8 *s;

	if (!h->cap)
		return;
	s = slot_at(h, home_of(h, key));
	__builtin_prefetch(s);
	__builtin_prefetch(s + h->slot_size - 1);
}

void *htab_get(const struct htab *h, const void *key)
{
	__u8 *s;

	if (!h->cap)
		return NULL;
	s = slot_at(h, probe(h, key));
	return slot_used(s) ? s + HTAB_MARK + h->key_size : NULL;
}

/*
 * A big table is touched at random: huge pages spare a TLB miss per lookup
 * (best effort; calloc of this size is an mmap, already zeroed).
 */
static void advise_huge(void *mem, size_t bytes)
{
	uintptr_t start = ((uintptr_t)mem + HTAB_HUGE_PAGE - 1) & ~(uintptr_t)(HTAB_HUGE_PAGE - 1);
	uintptr_t end = ((uintptr_t)mem + bytes) & ~(uintptr_t)(HTAB_HUGE_PAGE - 1);

	if (end > start)
		madvise((void *)start, end - start, MADV_HUGEPAGE);
}

static int resize(struct htab *h, size_t new_cap)
{
	struct htab bigger = *h;

	bigger.slots = calloc(new_cap, h->slot_size);
	if (!bigger.slots)
		return -ENOMEM;
	if (new_cap * h->slot_size >= 4 * HTAB_HUGE_PAGE)
		advise_huge(bigger.slots, new_cap * h->slot_size);
	bigger.cap = new_cap;
	for (size_t i = 0; i < h->cap; i++) {
		const __u8 *s = slot_at(h, i);

		if (slot_used(s))
			memcpy(slot_at(&bigger, probe(&bigger, slot_key(s))), s, h->slot_size);
	}
	free(h->slots);
	*h = bigger;
	return 0;
}

void *htab_put(struct htab *h, const void *key, int *created)
{
	__u8 *s;

	*created = 0;
	/* keep the load at or below 3/4 so probe chains stay short */
	if ((h->count + 1) * 4 > h->cap * 3 && resize(h, h->cap ? h->cap * 2 : HTAB_MIN_CAP) != 0)
		return NULL;
	s = slot_at(h, probe(h, key));
	if (!slot_used(s)) {
		memset(s, 0, h->slot_size);
		s[0] = 1;
		memcpy(s + HTAB_MARK, key, h->key_size);
		h->count++;
		*created = 1;
	}
	return s + HTAB_MARK + h->key_size;
}

/* empties slot i and shifts later members of its probe chain back */
static void remove_at(struct htab *h, size_t i)
{
	size_t mask = h->cap - 1;
	size_t j = i;

	for (;;) {
		__u8 *sj;
		size_t home;

		j = (j + 1) & mask;
		sj = slot_at(h, j);
		if (!slot_used(sj))
			break;
		home = home_of(h, slot_key(sj));
		/* sj may move to i only if its home is not in (i, j] (cyclically) */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			memcpy(slot_at(h, i), sj, h->slot_size);
			i = j;
		}
	}
	memset(slot_at(h, i), 0, h->slot_size);
	h->count--;
}

int htab_del(struct htab *h, const void *key)
{
	size_t i;

	if (!h->cap)
		return 0;
	i = probe(h, key);
	if (!slot_used(slot_at(h, i)))
		return 0;
	remove_at(h, i);
	return 1;
}

void htab_clear(struct htab *h)
{
	if (h->slots)
		memset(h->slots, 0, h->cap * h->slot_size);
	h->count = 0;
}

size_t htab_remove_if(struct htab *h, int (*fn)(const void *key, void *val, void *arg), void *arg)
{
	size_t removed = 0;
	size_t i = 0;

	while (i < h->cap) {
		__u8 *s = slot_at(h, i);

		/* after a removal slot i holds a shifted entry: look at it again */
		if (slot_used(s) && fn(s + HTAB_MARK, s + HTAB_MARK + h->key_size, arg)) {
			remove_at(h, i);
			removed++;
			continue;
		}
		i++;
	}
	return removed;
}

size_t htab_bytes(const struct htab *h)
{
	return h->cap * h->slot_size;
}
