/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "htab.h"
#include "pfsync_common.h"

#define HTAB_MIN_CAP 64
#define HTAB_MARK    4 /* bytes of the used mark at the start of a slot (htab_init) */
/* an emptied table this big is given back (a drained send queue keeps no burst's worth) */
#define HTAB_RELEASE_CAP  65536
#define HTAB_HUGE_PAGE	  ((size_t)2 << 20)
#define HTAB_MIGRATE_STEP 8 /* old slots moved per put or del while growing */
/* with a size hint, a table this big grows to room for HTAB_HINT_AHEAD times its entries */
#define HTAB_HINT_FROM	65536
#define HTAB_HINT_AHEAD 8

/* always inlined: with len a constant the loop unrolls and the memcpys become loads */
static inline __attribute__((always_inline)) __u64 hash_mix(const __u8 *p, size_t len)
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

/*
 * The agent's key sizes get a copy each with the size fixed: 4-5x faster
 * than the generic loop with its memcpy call (12 bytes: 21 -> 4.5 ns, 44
 * bytes: 23 -> 9 ns here), and a state in a burst is hashed several times
 * (index, send queue, their prefetches). The same hash for every size.
 */
static __u64 hash_bytes(const __u8 *p, size_t len)
{
	switch (len) {
	case 12: /* index.c's identity */
		return hash_mix(p, 12);
	case sizeof(struct pfsync_key): /* the send queue's and defer's keys */
		return hash_mix(p, sizeof(struct pfsync_key));
	default:
		return hash_mix(p, len);
	}
}

#define MARK_EMPTY 0
#define MARK_USED  1
#define MARK_MOVED 2 /* old table only: migrated, keeps its probe chain intact */

/* slots and cap of one table: the current one, or the one being emptied */
struct tab {
	__u8 *slots;
	size_t cap;
};

static struct tab cur_tab(const struct htab *h)
{
	return (struct tab){h->slots, h->cap};
}

static struct tab old_tab(const struct htab *h)
{
	return (struct tab){h->old, h->old_cap};
}

static __u8 *slot_in(const struct htab *h, struct tab t, size_t i)
{
	return t.slots + i * h->slot_size;
}

static __u8 *slot_at(const struct htab *h, size_t i)
{
	return slot_in(h, cur_tab(h), i);
}

static __u8 slot_mark(const struct htab *h, const __u8 *slot)
{
	return slot[h->mark_off];
}

static void set_mark(const struct htab *h, __u8 *slot, __u8 mark)
{
	slot[h->mark_off] = mark;
}

static int slot_used(const struct htab *h, const __u8 *slot)
{
	return slot_mark(h, slot) == MARK_USED;
}

static const __u8 *slot_key(const struct htab *h, const __u8 *slot)
{
	return slot + h->key_off;
}

static __u8 *slot_val(const struct htab *h, __u8 *slot)
{
	return slot + h->key_off + h->key_size;
}

static __u64 hash_of(const struct htab *h, const void *key)
{
	return hash_bytes(key, h->key_size);
}

/*
 * Capacities step by 1.5x and 4/3x (64, 96, 128, 192, ...), not only by
 * powers of two, so a table's load stays between 1/2 and 3/4 with less
 * room wasted (1M entries: 1.5M slots, not 2M). A hash's high half is
 * scaled to the capacity (multiply and shift) instead of masked.
 */
static size_t slot_home(__u64 hash, size_t cap)
{
	return (size_t)(((hash >> 32) * (__u64)cap) >> 32);
}

static size_t next_slot(size_t i, size_t cap)
{
	return i + 1 == cap ? 0 : i + 1;
}

/* steps from `from` forward to `to`, around the end of the table */
static size_t cyclic_dist(size_t from, size_t to, size_t cap)
{
	return to >= from ? to - from : to + cap - from;
}

static size_t grown_cap(size_t cap)
{
	if (!cap)
		return HTAB_MIN_CAP;
	return (cap & (cap - 1)) == 0 ? cap + cap / 2 : cap / 3 * 4;
}

/* the smallest capacity of the series that holds n entries at 3/4 load */
static size_t cap_for(size_t n)
{
	size_t cap = HTAB_MIN_CAP;

	while (n * 4 > cap * 3)
		cap = grown_cap(cap);
	return cap;
}

/*
 * The next capacity: one step of the series, or with a size hint, once
 * the table is big, room for HTAB_HINT_AHEAD times its entries (never more
 * than the hint's). Each growth allocates and touches a fresh table and
 * moves every entry; a burst that took the index from 100k to 400k
 * entries went through four of them, 200 ns a put on average, five times
 * a put into a table of the right size.
 */
static size_t next_cap(const struct htab *h)
{
	size_t step = grown_cap(h->cap), ahead;

	if (!h->hint_cap || h->cap < HTAB_HINT_FROM)
		return step;
	ahead = cap_for(h->count * HTAB_HINT_AHEAD);
	if (ahead > h->hint_cap)
		ahead = h->hint_cap;
	return ahead > step ? ahead : step;
}

void htab_size_hint(struct htab *h, size_t n)
{
	h->hint_cap = n ? cap_for(n) : 0;
}

static size_t home_in(const struct htab *h, struct tab t, const __u8 *key)
{
	return slot_home(hash_of(h, key), t.cap);
}

static size_t home_of(const struct htab *h, const __u8 *key)
{
	return home_in(h, cur_tab(h), key);
}

void htab_init(struct htab *h, size_t key_size, size_t val_size)
{
	memset(h, 0, sizeof(*h));
	h->key_size = key_size;
	h->val_size = val_size;
	h->key_off = HTAB_MARK;
	h->mark_off = 0;
	h->slot_size = (HTAB_MARK + key_size + val_size + 7) & ~(size_t)7;
}

void htab_init_packed(struct htab *h, size_t key_size, size_t val_size, size_t mark_in_val)
{
	memset(h, 0, sizeof(*h));
	h->key_size = key_size;
	h->val_size = val_size;
	h->key_off = 0;
	h->mark_off = key_size + mark_in_val;
	h->slot_size = (key_size + val_size + 3) & ~(size_t)3;
}

static void drop_old(struct htab *h)
{
	free(h->old);
	h->old = NULL;
	h->old_cap = 0;
	h->migrated = 0;
}

void htab_free(struct htab *h)
{
	drop_old(h);
	free(h->slots);
	h->slots = NULL;
	h->cap = 0;
	h->count = 0;
	h->reserved_cap = 0;
}

/*
 * Index of key's slot, or of the empty slot where it would go (current
 * table); hash is hash_of(key), computed once per operation.
 */
static size_t probe(const struct htab *h, const void *key, __u64 hash)
{
	size_t i = slot_home(hash, h->cap);

	for (;;) {
		const __u8 *s = slot_at(h, i);

		if (!slot_used(h, s) || memcmp(slot_key(h, s), key, h->key_size) == 0)
			return i;
		i = next_slot(i, h->cap);
	}
}

/* key's slot in the table being emptied (not migrated yet), or NULL */
static __u8 *probe_old(const struct htab *h, const void *key, __u64 hash)
{
	struct tab t = old_tab(h);
	size_t i;

	if (!t.slots)
		return NULL;
	for (i = slot_home(hash, t.cap);; i = next_slot(i, t.cap)) {
		__u8 *s = slot_in(h, t, i);

		if (slot_mark(h, s) == MARK_EMPTY)
			return NULL;
		if (slot_used(h, s) && memcmp(slot_key(h, s), key, h->key_size) == 0)
			return s;
	}
}

static void prefetch_slot(const struct htab *h, const __u8 *s)
{
	__builtin_prefetch(s);
	__builtin_prefetch(s + h->slot_size - 1);
}

void htab_prefetch(const struct htab *h, const void *key)
{
	__u64 hash;

	if (!h->cap)
		return;
	hash = hash_of(h, key);
	prefetch_slot(h, slot_at(h, slot_home(hash, h->cap)));
	/* growing: a key not in the current table is looked for in the old one */
	if (h->old)
		prefetch_slot(h, slot_in(h, old_tab(h), slot_home(hash, h->old_cap)));
}

void *htab_get(const struct htab *h, const void *key)
{
	__u64 hash;
	__u8 *s;

	if (!h->cap)
		return NULL;
	hash = hash_of(h, key);
	s = slot_at(h, probe(h, key, hash));
	if (slot_used(h, s))
		return slot_val(h, s);
	s = probe_old(h, key, hash);
	return s ? slot_val(h, s) : NULL;
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

/* an old entry into the current table (its key is never there already) */
static void move_slot(struct htab *h, __u8 *old_slot, __u64 hash)
{
	memcpy(slot_at(h, probe(h, slot_key(h, old_slot), hash)), old_slot, h->slot_size);
	set_mark(h, old_slot, MARK_MOVED);
}

/*
 * Moves up to n slots of the old table; frees it once it is empty. The
 * entries of a step land at random in the current table: their home slots
 * are prefetched together, so the step waits for memory about once.
 */
static void migrate(struct htab *h, size_t n)
{
	struct tab t = old_tab(h);
	__u8 *moving[HTAB_MIGRATE_STEP];
	__u64 hashes[HTAB_MIGRATE_STEP];

	if (!t.slots)
		return;
	while (n && h->migrated < t.cap) {
		size_t k = 0;

		for (; n && k < HTAB_MIGRATE_STEP && h->migrated < t.cap; n--, h->migrated++) {
			__u8 *s = slot_in(h, t, h->migrated);

			if (!slot_used(h, s))
				continue;
			hashes[k] = hash_of(h, slot_key(h, s));
			__builtin_prefetch(slot_at(h, slot_home(hashes[k], h->cap)), 1);
			moving[k++] = s;
		}
		for (size_t i = 0; i < k; i++)
			move_slot(h, moving[i], hashes[i]);
	}
	if (h->migrated == t.cap)
		drop_old(h);
}

/*
 * Growth is incremental: the full table becomes the old one, a table 1.5x
 * or 4/3x its size (or bigger: next_cap) the current one, and every put
 * or del moves HTAB_MIGRATE_STEP old slots over (a lookup tries both).
 * Moving a million entries at once stalled the agent's loop for 300 ms,
 * long enough to overflow the sync socket's receive buffer during a bulk
 * update. The old table is empty long before the new one fills: old_cap /
 * HTAB_MIGRATE_STEP puts, with at least old_cap / 4 of room.
 */
/* a zeroed table of cap slots (huge pages asked for when big), or NULL */
static __u8 *alloc_table(const struct htab *h, size_t cap)
{
	__u8 *slots = calloc(cap, h->slot_size);

	if (slots && cap * h->slot_size >= 4 * HTAB_HUGE_PAGE)
		advise_huge(slots, cap * h->slot_size);
	return slots;
}

static int grow(struct htab *h)
{
	size_t new_cap = next_cap(h);
	__u8 *slots;

	if (h->old)
		migrate(h, h->old_cap); /* not expected: the old table is long gone */
	slots = alloc_table(h, new_cap);
	if (!slots)
		return -ENOMEM;
	h->old = h->slots;
	h->old_cap = h->cap;
	h->migrated = 0;
	h->slots = slots;
	h->cap = new_cap;
	if (!h->old)
		h->old_cap = 0;
	return 0;
}

/* the table's pages, faulted in now rather than at the first puts */
static void populate(void *mem, size_t bytes)
{
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
	if (madvise(mem, bytes, MADV_POPULATE_WRITE) != 0)
		memset(mem, 0, bytes);
}

int htab_reserve(struct htab *h, size_t n)
{
	size_t cap = cap_for(n);
	__u8 *slots;

	if (h->cap >= cap)
		return 0;
	if (h->cap)
		return -EBUSY; /* holds entries: it grows as it goes */
	slots = alloc_table(h, cap);
	if (!slots)
		return -ENOMEM;
	populate(slots, cap * h->slot_size);
	h->slots = slots;
	h->cap = cap;
	h->reserved_cap = cap;
	return 0;
}

void *htab_put(struct htab *h, const void *key, int *created)
{
	__u64 hash = hash_of(h, key);
	__u8 *s, *old;

	*created = 0;
	/* the key's home slot loads while the migration step works */
	if (h->cap)
		__builtin_prefetch(slot_at(h, slot_home(hash, h->cap)));
	migrate(h, HTAB_MIGRATE_STEP);
	/* keep the load at or below 3/4 so probe chains stay short */
	if ((h->count + 1) * 4 > h->cap * 3 && grow(h) != 0)
		return NULL;
	s = slot_at(h, probe(h, key, hash));
	if (slot_used(h, s))
		return slot_val(h, s);
	old = probe_old(h, key, hash);
	if (old) {
		/* an entry still in the old table moves first: values live in one place */
		memcpy(s, old, h->slot_size);
		set_mark(h, old, MARK_MOVED);
		return slot_val(h, s);
	}
	memset(s, 0, h->slot_size);
	set_mark(h, s, MARK_USED);
	memcpy(s + h->key_off, key, h->key_size);
	h->count++;
	*created = 1;
	return slot_val(h, s);
}

/* empties slot i and shifts later members of its probe chain back */
static void remove_at(struct htab *h, size_t i)
{
	size_t j = i;

	for (;;) {
		__u8 *sj;
		size_t home;

		j = next_slot(j, h->cap);
		sj = slot_at(h, j);
		if (!slot_used(h, sj))
			break;
		home = home_of(h, slot_key(h, sj));
		/* sj may move to i only if its home is not in (i, j] (cyclically) */
		if (cyclic_dist(home, j, h->cap) >= cyclic_dist(i, j, h->cap)) {
			memcpy(slot_at(h, i), sj, h->slot_size);
			i = j;
		}
	}
	memset(slot_at(h, i), 0, h->slot_size);
	h->count--;
}

/*
 * A table that held a burst (the send queue's) keeps its pages while it
 * sits empty: give a big one back, the next puts grow a new one.
 */
static void release_if_empty(struct htab *h)
{
	if (h->count == 0 && h->cap + h->old_cap > HTAB_RELEASE_CAP &&
	    h->cap + h->old_cap > h->reserved_cap)
		htab_free(h);
}

int htab_del(struct htab *h, const void *key)
{
	__u64 hash;
	__u8 *old;
	size_t i;

	if (!h->cap)
		return 0;
	hash = hash_of(h, key);
	__builtin_prefetch(slot_at(h, slot_home(hash, h->cap)));
	migrate(h, HTAB_MIGRATE_STEP);
	i = probe(h, key, hash);
	if (slot_used(h, slot_at(h, i))) {
		remove_at(h, i);
		release_if_empty(h);
		return 1;
	}
	old = probe_old(h, key, hash);
	if (!old)
		return 0;
	set_mark(h, old, MARK_MOVED); /* gone: the migration skips it */
	h->count--;
	release_if_empty(h);
	return 1;
}

void htab_clear(struct htab *h)
{
	drop_old(h);
	if (h->slots)
		memset(h->slots, 0, h->cap * h->slot_size);
	h->count = 0;
}

size_t htab_remove_if(struct htab *h, int (*fn)(const void *key, void *val, void *arg), void *arg)
{
	size_t removed = 0;
	size_t i = 0;

	migrate(h, h->old_cap); /* one table to walk */
	while (i < h->cap) {
		__u8 *s = slot_at(h, i);

		/* after a removal slot i holds a shifted entry: look at it again */
		if (slot_used(h, s) && fn(slot_key(h, s), slot_val(h, s), arg)) {
			remove_at(h, i);
			removed++;
			continue;
		}
		i++;
	}
	release_if_empty(h);
	return removed;
}

static int tab_find_if(const struct htab *h, struct tab t,
		       int (*fn)(const void *key, void *val, void *arg), void *arg)
{
	for (size_t i = 0; i < t.cap; i++) {
		__u8 *s = slot_in(h, t, i);

		if (slot_used(h, s) && fn(slot_key(h, s), slot_val(h, s), arg))
			return 1;
	}
	return 0;
}

int htab_find_if(const struct htab *h, int (*fn)(const void *key, void *val, void *arg), void *arg)
{
	return tab_find_if(h, cur_tab(h), fn, arg) || tab_find_if(h, old_tab(h), fn, arg);
}

size_t htab_bytes(const struct htab *h)
{
	return (h->cap + h->old_cap) * h->slot_size;
}
