/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * (id, creatorid) -> state key. Peers name states by pf's identity only,
 * while the kernel map is keyed by the connection, so the agent keeps this
 * one index (and nothing else per state: the map stays the truth). An
 * entry can outlive its state (states deleted without a record, e.g.
 * NOSYNC expiry): users verify the identity of what they find in the map.
 */
#ifndef AGENT_INDEX_H
#define AGENT_INDEX_H

#include <string.h>

#include "htab.h"
#include "pfsync_common.h"

/*
 * Two tables: an IPv4 key (the usual case) is held in 16 bytes, so its
 * entry is 28 bytes with the identity and no mark; any other key (IPv6, or
 * a key that does not fit that form) whole, in a table of its own. An
 * identity is in at most one of them.
 */
struct state_index {
	struct htab v4;	   /* identity -> struct index_v4 (index.c) */
	struct htab other; /* identity -> struct pfsync_key */
};

void index_init(struct state_index *ix);
/* states_max: the most states the map holds (0: unknown), see htab_size_hint */
void index_size_hint(struct state_index *ix, size_t states_max);
/*
 * The IPv4 table made room for that many states at once (see
 * htab_reserve): 0, or -errno (then it grows as it goes, as before)
 */
int index_reserve(struct state_index *ix, size_t states);
void index_free(struct state_index *ix);
/* adds or re-points an identity; -ENOMEM on allocation failure */
int index_put(struct state_index *ix, __u64 id, __u32 creatorid, const struct pfsync_key *key);
/* 0 and *key filled if known, -ENOENT otherwise */
int index_get(const struct state_index *ix, __u64 id, __u32 creatorid, struct pfsync_key *key);
/* the identity's slot into the cache ahead of a get/put (a big index misses it) */
void index_prefetch(const struct state_index *ix, __u64 id, __u32 creatorid);
int index_del(struct state_index *ix, __u64 id, __u32 creatorid); /* 1 removed, 0 absent */
size_t index_del_creator(struct state_index *ix, __u32 creatorid);
int index_has_creator(const struct state_index *ix, __u32 creatorid); /* 1 if any */
void index_clear(struct state_index *ix);
size_t index_count(const struct state_index *ix);
size_t index_bytes(const struct state_index *ix);

/* keys are map keys: fully initialised, padding included, so bytes compare */
static inline int index_key_same(const struct pfsync_key *x, const struct pfsync_key *y)
{
	return memcmp(x, y, sizeof(*x)) == 0;
}

#endif /* AGENT_INDEX_H */
