/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Open-addressing hash table with fixed-size keys and values (linear
 * probing, backward-shift deletion, no tombstones), grown incrementally
 * (htab.c: grow) so that no single operation moves the whole table. The agent keeps two of
 * them: the (id, creatorid) -> key index and the send queue's key -> slot
 * map; both must stay small per entry and never allocate per insert.
 */
#ifndef AGENT_HTAB_H
#define AGENT_HTAB_H

#include <stddef.h>
#include <linux/types.h>

struct htab {
	__u8 *slots;	  /* cap * slot_size bytes */
	size_t key_size;  /* bytes compared with memcmp */
	size_t val_size;  /* bytes of value after the key */
	size_t slot_size; /* htab_init: 4-byte used mark + key + value, rounded up to 8;
			   * htab_init_packed: key + value, rounded up to 4 */
	size_t key_off;	  /* where a slot's key starts (its value follows it) */
	size_t mark_off;  /* the slot's used-mark byte */
	size_t cap;	  /* 64, 96, 128, 192, ... (htab.c: grown_cap), 0 until the first put */
	size_t count;	  /* entries, in both tables while growing */
	__u8 *old;	  /* growing: the previous table, being emptied (else NULL) */
	size_t old_cap;
	size_t migrated;     /* old slots [0, migrated) have been moved */
	size_t hint_cap;     /* htab_size_hint: the most a big table grows to at once (0: none) */
	size_t reserved_cap; /* htab_reserve: a table this big is kept when emptied */
};

void htab_init(struct htab *h, size_t key_size, size_t val_size);
/*
 * No mark of its own: byte mark_in_val of the value is the table's (zero
 * in a fresh value, never written by the user), so a slot is key + value
 * and a big table spends nothing on marks and alignment.
 */
void htab_init_packed(struct htab *h, size_t key_size, size_t val_size, size_t mark_in_val);
void htab_free(struct htab *h);
/*
 * The most entries the table is expected to hold (0: unknown): once it is
 * big, it grows in fewer, bigger steps, never past room for n (beyond n
 * it grows step by step again). Kept by htab_free and htab_clear.
 */
void htab_size_hint(struct htab *h, size_t n);
/*
 * An empty table made big enough for n entries at once, its pages faulted
 * in, and kept when emptied: no growth (a fresh table's page clearing, half
 * of a burst's CPU) up to n. 0, -EBUSY if it already holds a smaller
 * table, or -ENOMEM.
 */
int htab_reserve(struct htab *h, size_t n);
/* value of key or NULL; the pointer is valid until the next put/del */
void *htab_get(const struct htab *h, const void *key);
/* starts loading key's home slot into the cache (a get or put follows soon) */
void htab_prefetch(const struct htab *h, const void *key);
/* value slot of key, created zeroed if missing (*created = 1); NULL on ENOMEM */
void *htab_put(struct htab *h, const void *key, int *created);
/* 1 if key was removed, 0 if it was absent */
int htab_del(struct htab *h, const void *key);
void htab_clear(struct htab *h);
/*
 * Calls fn for every entry; entries for which fn returns non-zero are
 * removed (safely, the walk restarts the probe chain it disturbed).
 * Returns the number removed.
 */
size_t htab_remove_if(struct htab *h, int (*fn)(const void *key, void *val, void *arg), void *arg);
/* 1 if fn returns non-zero for an entry (the walk stops there), else 0 */
int htab_find_if(const struct htab *h, int (*fn)(const void *key, void *val, void *arg), void *arg);
/* bytes the table holds (for memory-per-state figures) */
size_t htab_bytes(const struct htab *h);

#endif /* AGENT_HTAB_H */
