/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libFuzzer target: pfsync input (IPv4 or bare payload) -> decoder -> the
 * wire import/export and merge functions of lib/, called by a model of the
 * apply path onto a small table keyed by (id, creatorid) like OpenBSD's
 * lookup. The model checks the decoder and lib/; the agent's real apply
 * path (agent/apply.c over the store interface) is fuzz_apply.c's target.
 *
 * First input byte: bit 0 set = the rest is an IPv4 packet
 * (pfsync_input_ipv4), clear = a pfsync payload (pfsync_decode).
 *
 * Invariants checked (abort = finding):
 *  - a return of -1 means exactly one packet-level drop counter moved,
 *    0 means none did;
 *  - every message of a processed section is either handed to a callback
 *    or counted badval (sum of iacts == callbacks + badval);
 *  - import fails only for creatorid 0 once the decoder passed the message,
 *    and import(export(import(m))) == import(m);
 *  - merge returns 0..2;
 *  - the model's table entries only disappear when a DEL/DEL_C named
 *    them or a CLR named their creator (the decoder hands each message to
 *    the right callback); the entry count matches inserts - removals.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>

#include "pfsync_wire.h"
#include "fuzz_common.h"

#define TABLE_SLOTS 512 /* power of two */

struct entry {
	int used;
	struct pfsync_key key;
	struct pfsync_state_value val;
};

struct named {
	__u64 id;
	__u32 creatorid;
};

struct fuzz_ctx {
	struct entry table[TABLE_SLOTS];
	size_t count;
	size_t inserted, removed;
	size_t callbacks;
	struct named deleted[MAX_NAMED];
	size_t ndeleted;
	__u32 cleared[MAX_NAMED];
	size_t ncleared;
	struct pfsync_stats *st;
	struct pfsync_config cfg;
};

static struct fuzz_ctx fctx;

/* ---- the map stand-in: open addressing with backward-shift deletion ------- */
static size_t slot_of(__u64 id, __u32 creatorid)
{
	__u64 h = (id ^ ((__u64)creatorid << 17)) * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 40) & (TABLE_SLOTS - 1);
}

static struct entry *table_find(struct fuzz_ctx *c, __u64 id, __u32 creatorid)
{
	size_t i = slot_of(id, creatorid);

	for (size_t n = 0; n < TABLE_SLOTS; n++, i = (i + 1) & (TABLE_SLOTS - 1)) {
		struct entry *e = &c->table[i];

		if (!e->used)
			return NULL;
		if (e->val.id == id && e->val.creatorid == creatorid)
			return e;
	}
	return NULL;
}

/* 0, or -1 when present already / the table is at its limit (pf: EEXIST / ENOMEM) */
static int table_insert(struct fuzz_ctx *c, const struct pfsync_key *k,
			const struct pfsync_state_value *v)
{
	size_t i = slot_of(v->id, v->creatorid);

	if (c->count >= TABLE_SLOTS - 1 || table_find(c, v->id, v->creatorid))
		return -1;
	while (c->table[i].used)
		i = (i + 1) & (TABLE_SLOTS - 1);
	c->table[i].used = 1;
	c->table[i].key = *k;
	c->table[i].val = *v;
	c->count++;
	c->inserted++;
	return 0;
}

static void table_remove(struct fuzz_ctx *c, struct entry *e)
{
	size_t hole = (size_t)(e - c->table);
	size_t i = hole;

	e->used = 0;
	c->count--;
	c->removed++;
	/* shift back later members of the probe chain so lookups still find them */
	for (;;) {
		size_t home;

		i = (i + 1) & (TABLE_SLOTS - 1);
		if (!c->table[i].used)
			break;
		home = slot_of(c->table[i].val.id, c->table[i].val.creatorid);
		if (((i - home) & (TABLE_SLOTS - 1)) >= ((i - hole) & (TABLE_SLOTS - 1))) {
			c->table[hole] = c->table[i];
			c->table[i].used = 0;
			hole = i;
		}
	}
}

static void table_preset(struct fuzz_ctx *c)
{
	for (int i = 0; i < PRESET_STATES; i++) {
		struct pfsync_key k;
		struct pfsync_state_value v;

		fuzz_preset_state(i, &k, &v);
		CHECK(table_insert(c, &k, &v) == 0);
	}
	c->inserted = 0;
}

/* ---- apply path ------------------------------------------------------------ */
static void note_deleted(struct fuzz_ctx *c, __u64 id, __u32 creatorid)
{
	if (c->ndeleted < MAX_NAMED)
		c->deleted[c->ndeleted++] = (struct named){id, creatorid};
}

static void check_imported(const struct pfsync_key *k, const struct pfsync_state_value *v)
{
	CHECK((v->flags & ~PFSYNC_SF_NOSYNC) == PFSYNC_SF_FROM_PEER);
	CHECK(!(v->flags & PFSYNC_SF_NOSYNC) == !(v->state_flags & PFSTATE_NOSYNC));
	CHECK(v->init_side <= 1);
	CHECK(k->af == PFSYNC_AF_INET || k->af == PFSYNC_AF_INET6);
	CHECK(v->direction == PF_IN || v->direction == PF_OUT);
	CHECK(v->timeout < PFTM_MAX);
	CHECK(v->creatorid != 0);
	CHECK(v->last_seen <= FUZZ_NOW && v->creation <= FUZZ_NOW);
}

/* import(export(import(m))) must give the same entry back */
static void check_reexport(const struct pfsync_key *k, const struct pfsync_state_value *v)
{
	struct pfsync_state wire;
	struct pfsync_key k2;
	struct pfsync_state_value v2;

	pfsync_state_export(k, v, FUZZ_NOW, &fctx.cfg, (__u32)fctx.count, &wire);
	CHECK(pfsync_state_import(&wire, FUZZ_NOW, &fctx.cfg, &k2, &v2) == 0);
	CHECK(memcmp(&k2, k, sizeof(k2)) == 0);
	CHECK(memcmp(v2.peer, v->peer, sizeof(v2.peer)) == 0);
	CHECK(v2.id == v->id && v2.creatorid == v->creatorid);
	CHECK(v2.init_side == v->init_side && v2.direction == v->direction);
	CHECK(v2.timeout == v->timeout && v2.state_flags == v->state_flags);
	CHECK(v2.creation + NS > v->creation && v2.creation <= v->creation + NS);
}

/* returns 0 or -1 like pf_state_import, after the invariant checks */
static int import_checked(const struct pfsync_state *m, struct pfsync_key *k,
			  struct pfsync_state_value *v)
{
	int rc = pfsync_state_import(m, FUZZ_NOW, &fctx.cfg, k, v);

	if (rc) {
		/* the decoder already applied every other check */
		CHECK(pfsync_get_be32(&m->creatorid) == 0 || m->direction > PF_OUT ||
		      pfsync_state_check(m, PFSYNC_ACT_INS) != 0);
		return -1;
	}
	check_imported(k, v);
	check_reexport(k, v);
	return 0;
}

static void merge_into(struct entry *e, const struct pfsync_state_peer *src,
		       const struct pfsync_state_peer *dst, __u8 timeout)
{
	int stale = pfsync_merge_peers(&e->val, src, dst, timeout, e->key.proto, FUZZ_NOW);

	CHECK(stale >= 0 && stale <= 2);
	if (stale)
		fctx.st->stale++;
}

static void on_clr(void *ctx, const struct pfsync_clr *m)
{
	struct fuzz_ctx *c = ctx;
	__u32 creator = pfsync_get_be32(&m->creatorid);

	c->callbacks++;
	if (c->ncleared < MAX_NAMED)
		c->cleared[c->ncleared++] = creator;
	for (size_t i = 0; i < TABLE_SLOTS;) {
		/* removal shifts entries back into i: look at i again */
		if (c->table[i].used && c->table[i].val.creatorid == creator)
			table_remove(c, &c->table[i]);
		else
			i++;
	}
}

static void on_ins(void *ctx, const struct pfsync_state *m)
{
	struct fuzz_ctx *c = ctx;
	struct pfsync_key k;
	struct pfsync_state_value v;

	c->callbacks++;
	CHECK(pfsync_state_check(m, PFSYNC_ACT_INS) == 0);
	if (import_checked(m, &k, &v) || table_insert(c, &k, &v))
		c->st->badstate++;
}

static void on_upd(void *ctx, const struct pfsync_state *m)
{
	struct fuzz_ctx *c = ctx;
	struct entry *e = table_find(c, pfsync_get_be64(&m->id), pfsync_get_be32(&m->creatorid));
	struct pfsync_key k;
	struct pfsync_state_value v;

	c->callbacks++;
	CHECK(m->timeout < PFTM_MAX);
	if (e) {
		merge_into(e, &m->src, &m->dst, m->timeout);
		return;
	}
	if (import_checked(m, &k, &v) || table_insert(c, &k, &v))
		c->st->badstate++;
}

static void on_upd_c(void *ctx, const struct pfsync_upd_c *m)
{
	struct fuzz_ctx *c = ctx;
	struct entry *e = table_find(c, pfsync_get_be64(&m->id), pfsync_get_be32(&m->creatorid));

	c->callbacks++;
	CHECK(m->timeout < PFTM_MAX);
	if (e)
		merge_into(e, &m->src, &m->dst, m->timeout);
	/* unknown: the agent would queue an UPD_REQ; nothing changes here */
}

static void delete_named(struct fuzz_ctx *c, __u64 id, __u32 creatorid)
{
	struct entry *e = table_find(c, id, creatorid);

	c->callbacks++;
	note_deleted(c, id, creatorid);
	if (e)
		table_remove(c, e);
	else
		c->st->badstate++;
}

static void on_del(void *ctx, const struct pfsync_state *m)
{
	delete_named(ctx, pfsync_get_be64(&m->id), pfsync_get_be32(&m->creatorid));
}

static void on_del_c(void *ctx, const struct pfsync_del_c *m)
{
	delete_named(ctx, pfsync_get_be64(&m->id), pfsync_get_be32(&m->creatorid));
}

static void on_other(void *ctx)
{
	((struct fuzz_ctx *)ctx)->callbacks++;
}

static void on_ins_ack(void *ctx, const struct pfsync_ins_ack *m)
{
	(void)PFSYNC_MSG_ID(m);
	on_other(ctx);
}

static void on_upd_req(void *ctx, const struct pfsync_upd_req *m)
{
	(void)PFSYNC_MSG_CREATOR(m);
	on_other(ctx);
}

static void on_bus(void *ctx, const struct pfsync_bus *m)
{
	(void)m->status;
	on_other(ctx);
}

static void on_tdb(void *ctx, const struct pfsync_tdb *m)
{
	(void)pfsync_get_be64(&m->rpl);
	on_other(ctx);
}

static const struct pfsync_decode_ops apply_ops = {
    .clr = on_clr,
    .ins = on_ins,
    .ins_ack = on_ins_ack,
    .upd = on_upd,
    .upd_c = on_upd_c,
    .upd_req = on_upd_req,
    .del = on_del,
    .del_c = on_del_c,
    .bus = on_bus,
    .tdb = on_tdb,
};

/* ---- invariants after a packet --------------------------------------------- */
static int was_addressed(const struct fuzz_ctx *c, __u64 id, __u32 creatorid)
{
	for (size_t i = 0; i < c->ncleared; i++)
		if (c->cleared[i] == creatorid)
			return 1;
	for (size_t i = 0; i < c->ndeleted; i++)
		if (c->deleted[i].id == id && c->deleted[i].creatorid == creatorid)
			return 1;
	return 0;
}

static void check_presets_kept(const struct fuzz_ctx *c)
{
	for (int i = 0; i < PRESET_STATES; i++) {
		__u64 id = PRESET_ID + (__u64)(i / 2);
		__u32 creator = i % 2 ? PRESET_CREATOR2 : PRESET_CREATOR;

		if (!table_find((struct fuzz_ctx *)c, id, creator))
			CHECK(was_addressed(c, id, creator));
	}
}

static void check_counters(const struct pfsync_stats *st, int rc, __u64 drops_before)
{
	__u64 drops = st->hdrops + st->badver + st->badlen + st->badact + st->badttl;
	__u64 acts = 0;

	for (int a = 0; a < PFSYNC_ACT_MAX; a++)
		acts += st->iacts[a];
	CHECK(acts == fctx.callbacks + st->badval);
	CHECK(rc == 0 || rc == -1);
	CHECK(drops - drops_before == (rc == -1 ? 1U : 0U));
	CHECK(st->ipackets <= 1);
}

static void check_table(const struct fuzz_ctx *c)
{
	size_t used = 0;

	for (size_t i = 0; i < TABLE_SLOTS; i++) {
		if (!c->table[i].used)
			continue;
		used++;
		CHECK(c->table[i].val.creatorid != 0);
		CHECK(table_find((struct fuzz_ctx *)c, c->table[i].val.id,
				 c->table[i].val.creatorid) == &c->table[i]);
	}
	CHECK(used == c->count);
	CHECK(used == PRESET_STATES + c->inserted - c->removed);
}

/* ---- re-encoding: every accepted message, rebuilt, decodes the same ----- */
struct rebuild {
	struct pfsync_builder *b;
	size_t added[PFSYNC_ACT_MAX];
	int overflow;
};

static void rebuild_add(void *ctx, __u8 action, const void *msg)
{
	struct rebuild *rb = ctx;

	if (pfsync_builder_add(rb->b, action, msg) == 0)
		rb->added[action]++;
	else
		rb->overflow = 1;
}

#define REBUILD_FN(name, type, action)                                                             \
	static void rebuild_##name(void *ctx, const type *m)                                       \
	{                                                                                          \
		rebuild_add(ctx, action, m);                                                       \
	}
REBUILD_FN(clr, struct pfsync_clr, PFSYNC_ACT_CLR)
REBUILD_FN(ins, struct pfsync_state, PFSYNC_ACT_INS)
REBUILD_FN(ins_ack, struct pfsync_ins_ack, PFSYNC_ACT_INS_ACK)
REBUILD_FN(upd, struct pfsync_state, PFSYNC_ACT_UPD)
REBUILD_FN(upd_c, struct pfsync_upd_c, PFSYNC_ACT_UPD_C)
REBUILD_FN(upd_req, struct pfsync_upd_req, PFSYNC_ACT_UPD_REQ)
REBUILD_FN(del, struct pfsync_state, PFSYNC_ACT_DEL)
REBUILD_FN(del_c, struct pfsync_del_c, PFSYNC_ACT_DEL_C)
REBUILD_FN(bus, struct pfsync_bus, PFSYNC_ACT_BUS)
REBUILD_FN(tdb, struct pfsync_tdb, PFSYNC_ACT_TDB)

static const struct pfsync_decode_ops rebuild_ops = {
    .clr = rebuild_clr,
    .ins = rebuild_ins,
    .ins_ack = rebuild_ins_ack,
    .upd = rebuild_upd,
    .upd_c = rebuild_upd_c,
    .upd_req = rebuild_upd_req,
    .del = rebuild_del,
    .del_c = rebuild_del_c,
    .bus = rebuild_bus,
    .tdb = rebuild_tdb,
};

static void check_rebuild(const uint8_t *data, size_t size)
{
	static struct pfsync_builder *b;
	static __u8 pkt[65535];
	struct rebuild rb = {0}, again = {0};
	struct pfsync_stats st1 = {0}, st2 = {0};
	size_t n, total = 0;

	if (!b)
		b = pfsync_builder_new(65535);
	CHECK(b != NULL);
	pfsync_builder_reset(b);
	rb.b = b;
	if (data[0] & 1)
		pfsync_input_ipv4(data + 1, size - 1, &rebuild_ops, &rb, &st1);
	else
		pfsync_decode(data + 1, size - 1, &rebuild_ops, &rb, &st1);
	if (rb.overflow)
		return;
	for (int a = 0; a < PFSYNC_ACT_MAX; a++)
		total += rb.added[a];
	CHECK(total == fctx.callbacks);
	CHECK(pfsync_builder_count(b) == total);
	n = pfsync_builder_finish(b, pkt, sizeof(pkt));
	CHECK(total == 0 ? n == 0 : n > PFSYNC_HDRLEN && n + PFSYNC_IP_HDRLEN <= 65535);
	if (n == 0)
		return;
	/* the rebuilt packet is clean: same messages, no error counter */
	again.b = b;
	CHECK(pfsync_decode(pkt, n, &rebuild_ops, &again, &st2) == 0);
	CHECK(st2.badval + st2.badlen + st2.badact + st2.hdrops + st2.badver == 0);
	CHECK(memcmp(again.added, rb.added, sizeof(rb.added)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pfsync_stats st;
	int rc;

	if (size < 1)
		return 0;
	memset(&fctx, 0, sizeof(fctx));
	memset(&st, 0, sizeof(st));
	fctx.st = &st;
	fctx.cfg.timeouts[PFTM_TCP_ESTABLISHED] = 3600; /* a configured, non-default value */
	table_preset(&fctx);
	if (data[0] & 1) {
		rc = pfsync_input_ipv4(data + 1, size - 1, &apply_ops, &fctx, &st);
		CHECK(st.ipackets == 1);
	} else {
		rc = pfsync_decode(data + 1, size - 1, &apply_ops, &fctx, &st);
	}
	check_counters(&st, rc, 0);
	check_presets_kept(&fctx);
	check_table(&fctx);
	check_rebuild(data, size);
	return 0;
}

/* ---- seed corpus: PFSYNC_FUZZ_WRITE_SEEDS=DIR writes seeds and exits ------- */
static void write_seed(const char *dir, const char *name, __u8 mode, const __u8 *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputc(mode, f);
	fwrite(p, 1, n, f);
	fclose(f);
}

/* mode 1 seeds: the same payload behind an IPv4 header with TTL 255 */
static void write_seed_ipv4(const char *dir, const char *name, const __u8 *p, size_t n)
{
	__u8 pkt[20 + 65535];

	memset(pkt, 0, 20);
	pkt[0] = 0x45;
	pkt[1] = PFSYNC_IPTOS;
	pfsync_put_be16(pkt + 2, (__u16)(20 + n));
	pkt[8] = PFSYNC_DFLTTL;
	pkt[9] = IPPROTO_PFSYNC;
	memcpy(pkt + 20, p, n);
	write_seed(dir, name, 1, pkt, 20 + n);
}

static void seed_states(struct pfsync_builder *b, __u8 action)
{
	for (int i = 0; i < 3; i++) {
		struct entry *e = NULL;
		struct pfsync_state s;

		for (size_t j = 0; j < TABLE_SLOTS && !e; j++)
			if (fctx.table[j].used && fctx.table[j].key.proto == (i == 0 ? 6 : 17))
				e = &fctx.table[j];
		if (!e)
			return;
		pfsync_state_export(&e->key, &e->val, FUZZ_NOW, NULL, 0, &s);
		if (i == 2)
			s.id ^= htobe64(0x100); /* one unknown state */
		pfsync_builder_add(b, action, &s);
	}
}

static void write_seeds(const char *dir)
{
	struct pfsync_builder *b = pfsync_builder_new(1500);
	struct pfsync_upd_c uc;
	struct pfsync_bus bus = {0};
	struct pfsync_clr clr = {0};
	__u8 id12[12], pkt[1500];
	size_t n;

	if (!b)
		exit(1);
	memset(&fctx, 0, sizeof(fctx));
	table_preset(&fctx);

	pfsync_id_msg_fill(id12, 0, 0);
	pfsync_builder_add(b, PFSYNC_ACT_UPD_REQ, id12);
	n = pfsync_builder_finish(b, pkt, sizeof(pkt));
	write_seed(dir, "gen-bulk-req", 0, pkt, n);
	write_seed_ipv4(dir, "gen-bulk-req-ip", pkt, n);

	pfsync_id_msg_fill(id12, PRESET_ID, PRESET_CREATOR);
	pfsync_builder_add(b, PFSYNC_ACT_INS_ACK, id12);
	pfsync_builder_add(b, PFSYNC_ACT_DEL_C, id12);
	pfsync_id_msg_fill(id12, PRESET_ID + 1, PRESET_CREATOR2);
	pfsync_builder_add(b, PFSYNC_ACT_DEL_C, id12);
	pfsync_upd_c_export(&table_find(&fctx, PRESET_ID, PRESET_CREATOR)->val, &uc);
	pfsync_builder_add(b, PFSYNC_ACT_UPD_C, &uc);
	n = pfsync_builder_finish(b, pkt, sizeof(pkt));
	write_seed(dir, "gen-ack-del-updc", 0, pkt, n);

	seed_states(b, PFSYNC_ACT_INS);
	n = pfsync_builder_finish(b, pkt, sizeof(pkt));
	write_seed(dir, "gen-ins", 0, pkt, n);
	write_seed_ipv4(dir, "gen-ins-ip", pkt, n);

	bus.status = PFSYNC_BUS_START;
	pfsync_put_be32(&bus.creatorid, PRESET_CREATOR2);
	pfsync_builder_add(b, PFSYNC_ACT_BUS, &bus);
	seed_states(b, PFSYNC_ACT_UPD);
	n = pfsync_builder_finish(b, pkt, sizeof(pkt));
	write_seed(dir, "gen-bulk-upd", 0, pkt, n);

	seed_states(b, PFSYNC_ACT_DEL);
	pfsync_put_be32(&clr.creatorid, PRESET_CREATOR);
	pfsync_builder_add(b, PFSYNC_ACT_CLR, &clr);
	n = pfsync_builder_finish(b, pkt, sizeof(pkt));
	write_seed(dir, "gen-del-clr", 0, pkt, n);
	pfsync_builder_free(b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("PFSYNC_FUZZ_WRITE_SEEDS");

	(void)argc;
	(void)argv;
	if (dir && *dir) {
		write_seeds(dir);
		exit(0);
	}
	return 0;
}
