/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "index.h"

/* 12 bytes, no padding, so memcmp over it is well defined */
struct index_ident {
	__u32 id_lo;
	__u32 id_hi;
	__u32 creatorid;
};

/*
 * An IPv4 key in the v4 table: every byte of the map key that can differ
 * between IPv4 states (the other address words, af and pad are zero or
 * fixed). `mark` is the table's used mark (htab_init_packed), never ours.
 */
struct index_v4 {
	__u32 addr[2];
	__u16 port[2];
	__u8 proto;
	__u8 mark;
	__u16 rdomain;
};

_Static_assert(sizeof(struct index_v4) == 16, "index_v4 is 16 bytes");

static struct index_ident ident_of(__u64 id, __u32 creatorid)
{
	struct index_ident ident = {
	    .id_lo = (__u32)id,
	    .id_hi = (__u32)(id >> 32),
	    .creatorid = creatorid,
	};

	return ident;
}

/* a key the v4 table can hold and give back byte for byte */
static int key_is_compact(const struct pfsync_key *k)
{
	for (int side = 0; side < 2; side++)
		if (k->addr[side][1] || k->addr[side][2] || k->addr[side][3])
			return 0;
	return k->af == PFSYNC_AF_INET && k->pad == 0;
}

static void v4_store(struct index_v4 *c, const struct pfsync_key *k)
{
	c->addr[0] = k->addr[0][0];
	c->addr[1] = k->addr[1][0];
	c->port[0] = k->port[0];
	c->port[1] = k->port[1];
	c->proto = k->proto;
	c->rdomain = k->rdomain;
}

static void v4_load(const struct index_v4 *c, struct pfsync_key *k)
{
	memset(k, 0, sizeof(*k));
	k->addr[0][0] = c->addr[0];
	k->addr[1][0] = c->addr[1];
	k->port[0] = c->port[0];
	k->port[1] = c->port[1];
	k->proto = c->proto;
	k->af = PFSYNC_AF_INET;
	k->rdomain = c->rdomain;
}

void index_init(struct state_index *ix)
{
	htab_init_packed(&ix->v4, sizeof(struct index_ident), sizeof(struct index_v4),
			 offsetof(struct index_v4, mark));
	htab_init(&ix->other, sizeof(struct index_ident), sizeof(struct pfsync_key));
}

void index_size_hint(struct state_index *ix, size_t states_max)
{
	htab_size_hint(&ix->v4, states_max);
	htab_size_hint(&ix->other, states_max);
}

int index_reserve(struct state_index *ix, size_t states)
{
	return htab_reserve(&ix->v4, states);
}

void index_free(struct state_index *ix)
{
	htab_free(&ix->v4);
	htab_free(&ix->other);
}

/* in the table of the key's form; an earlier entry in the other one goes */
int index_put(struct state_index *ix, __u64 id, __u32 creatorid, const struct pfsync_key *key)
{
	struct index_ident ident = ident_of(id, creatorid);
	int compact = key_is_compact(key);
	struct htab *home = compact ? &ix->v4 : &ix->other;
	struct htab *away = compact ? &ix->other : &ix->v4;
	int created;
	void *val;

	if (away->count)
		htab_del(away, &ident);
	val = htab_put(home, &ident, &created);
	if (!val)
		return -ENOMEM;
	if (compact)
		v4_store(val, key); /* field by field: the mark byte stays the table's */
	else
		memcpy(val, key, sizeof(*key));
	return 0;
}

int index_get(const struct state_index *ix, __u64 id, __u32 creatorid, struct pfsync_key *key)
{
	struct index_ident ident = ident_of(id, creatorid);
	const void *val = htab_get(&ix->v4, &ident);

	if (val) {
		v4_load(val, key);
		return 0;
	}
	val = ix->other.count ? htab_get(&ix->other, &ident) : NULL;
	if (!val)
		return -ENOENT;
	memcpy(key, val, sizeof(*key));
	return 0;
}

void index_prefetch(const struct state_index *ix, __u64 id, __u32 creatorid)
{
	struct index_ident ident = ident_of(id, creatorid);

	htab_prefetch(&ix->v4, &ident);
	if (ix->other.count)
		htab_prefetch(&ix->other, &ident);
}

int index_del(struct state_index *ix, __u64 id, __u32 creatorid)
{
	struct index_ident ident = ident_of(id, creatorid);

	if (htab_del(&ix->v4, &ident))
		return 1;
	return ix->other.count ? htab_del(&ix->other, &ident) : 0;
}

static int creator_matches(const void *key, void *val, void *arg)
{
	struct index_ident ident;

	(void)val;
	memcpy(&ident, key, sizeof(ident));
	return ident.creatorid == *(const __u32 *)arg;
}

size_t index_del_creator(struct state_index *ix, __u32 creatorid)
{
	return htab_remove_if(&ix->v4, creator_matches, &creatorid) +
	       htab_remove_if(&ix->other, creator_matches, &creatorid);
}

int index_has_creator(const struct state_index *ix, __u32 creatorid)
{
	return htab_find_if(&ix->v4, creator_matches, &creatorid) ||
	       htab_find_if(&ix->other, creator_matches, &creatorid);
}

void index_clear(struct state_index *ix)
{
	htab_clear(&ix->v4);
	htab_clear(&ix->other);
}

size_t index_count(const struct state_index *ix)
{
	return ix->v4.count + ix->other.count;
}

size_t index_bytes(const struct state_index *ix)
{
	return htab_bytes(&ix->v4) + htab_bytes(&ix->other);
}
