/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <string.h>

#include "index.h"

/* 12 bytes, no padding, so memcmp over it is well defined */
struct index_ident {
	__u32 id_lo;
	__u32 id_hi;
	__u32 creatorid;
};

static struct index_ident ident_of(__u64 id, __u32 creatorid)
{
	struct index_ident ident = {
	    .id_lo = (__u32)id,
	    .id_hi = (__u32)(id >> 32),
	    .creatorid = creatorid,
	};

	return ident;
}

void index_init(struct state_index *ix)
{
	htab_init(&ix->tab, sizeof(struct index_ident), sizeof(struct pfsync_key));
}

void index_free(struct state_index *ix)
{
	htab_free(&ix->tab);
}

int index_put(struct state_index *ix, __u64 id, __u32 creatorid, const struct pfsync_key *key)
{
	struct index_ident ident = ident_of(id, creatorid);
	int created;
	void *val = htab_put(&ix->tab, &ident, &created);

	if (!val)
		return -ENOMEM;
	memcpy(val, key, sizeof(*key));
	return 0;
}

int index_get(const struct state_index *ix, __u64 id, __u32 creatorid, struct pfsync_key *key)
{
	struct index_ident ident = ident_of(id, creatorid);
	const void *val = htab_get(&ix->tab, &ident);

	if (!val)
		return -ENOENT;
	memcpy(key, val, sizeof(*key));
	return 0;
}

void index_prefetch(const struct state_index *ix, __u64 id, __u32 creatorid)
{
	struct index_ident ident = ident_of(id, creatorid);

	htab_prefetch(&ix->tab, &ident);
}

int index_del(struct state_index *ix, __u64 id, __u32 creatorid)
{
	struct index_ident ident = ident_of(id, creatorid);

	return htab_del(&ix->tab, &ident);
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
	return htab_remove_if(&ix->tab, creator_matches, &creatorid);
}

void index_clear(struct state_index *ix)
{
	htab_clear(&ix->tab);
}

size_t index_count(const struct state_index *ix)
{
	return ix->tab.count;
}

size_t index_bytes(const struct state_index *ix)
{
	return htab_bytes(&ix->tab);
}
