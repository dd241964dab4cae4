/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sendq.h"

#define SENDQ_MIN_CAP	 256
#define SENDQ_SHRINK_CAP 16384 /* an empty ring bigger than this shrinks */

static const __u8 kind_action[SQ_KINDS] = {
    [SQ_INS] = PFSYNC_ACT_INS,	   [SQ_UPD_C] = PFSYNC_ACT_UPD_C,     [SQ_UPD] = PFSYNC_ACT_UPD,
    [SQ_DEL_C] = PFSYNC_ACT_DEL_C, [SQ_INS_ACK] = PFSYNC_ACT_INS_ACK,
};

static int kind_has_key(unsigned int kind)
{
	return kind == SQ_INS || kind == SQ_UPD_C || kind == SQ_UPD;
}

static size_t kind_size(unsigned int kind)
{
	return pfsync_action_msg_size(kind_action[kind]);
}

static size_t payload_limit(const struct sendq *q)
{
	return q->mtu - PFSYNC_IP_HDRLEN;
}

static struct sendq_msg *msg_at(const struct sendq *q, __u64 seq)
{
	return &q->ring[seq & (q->cap - 1)];
}

int sendq_init(struct sendq *q, unsigned int mtu)
{
	memset(q, 0, sizeof(*q));
	q->mtu = mtu ? mtu : PFSYNC_DEFAULT_MTU;
	htab_init(&q->bykey, sizeof(struct pfsync_key), sizeof(__u64));
	q->builder = pfsync_builder_new(q->mtu);
	q->cap = SENDQ_MIN_CAP;
	q->ring = calloc(q->cap, sizeof(*q->ring));
	q->pkt = malloc(q->mtu);
	/* the smallest message is 12 bytes: no packet holds more than this */
	q->plan_cap = payload_limit(q) / sizeof(struct pfsync_del_c) + 1;
	q->plan = calloc(q->plan_cap, sizeof(*q->plan));
	if (!q->builder || !q->ring || !q->pkt || !q->plan) {
		sendq_free(q);
		return -ENOMEM;
	}
	return 0;
}

void sendq_free(struct sendq *q)
{
	pfsync_builder_free(q->builder);
	htab_free(&q->bykey);
	free(q->ring);
	free(q->pkt);
	free(q->plan);
	memset(q, 0, sizeof(*q));
}

static int grow(struct sendq *q)
{
	size_t new_cap = q->cap * 2;
	struct sendq_msg *ring = calloc(new_cap, sizeof(*ring));

	if (!ring)
		return -ENOMEM;
	for (__u64 seq = q->head; seq < q->tail; seq++)
		ring[seq & (new_cap - 1)] = *msg_at(q, seq);
	free(q->ring);
	q->ring = ring;
	q->cap = new_cap;
	return 0;
}

static void note_queued(struct sendq *q, __u64 now_ns)
{
	if (q->live == 0)
		q->first_ns = now_ns;
	q->live++;
}

static int append(struct sendq *q, unsigned int kind, const struct pfsync_key *key, __u64 id,
		  __u32 creatorid, __u64 now_ns)
{
	struct sendq_msg *m;

	if (q->tail - q->head == q->cap && grow(q) != 0)
		return -ENOMEM;
	if (kind_has_key(kind)) {
		int created;
		__u64 *seq = htab_put(&q->bykey, key, &created);

		if (!seq)
			return -ENOMEM;
		memcpy(seq, &q->tail, sizeof(q->tail));
	}
	m = msg_at(q, q->tail++);
	memset(m, 0, sizeof(*m));
	if (key)
		m->key = *key;
	m->id = id;
	m->creatorid = creatorid;
	m->kind = kind;
	m->live = 1;
	q->count[kind]++;
	note_queued(q, now_ns);
	return 0;
}

/* marks a message dead; the ring slot is reclaimed when the head passes it */
static void msg_kill(struct sendq *q, struct sendq_msg *m)
{
	if (!m->live)
		return;
	if (kind_has_key(m->kind))
		htab_del(&q->bykey, &m->key);
	m->live = 0;
	q->count[m->kind]--;
	q->live--;
	if (q->live == 0) {
		q->first_ns = 0;
		q->urgent = 0;
	}
}

/*
 * An emptied ring that grew for a burst (64 bytes a message) goes back to
 * its first size, as the key table does (htab.c): the memory a burst took
 * is not kept per state. Best effort: without memory the big ring stays.
 */
static void shrink_if_empty(struct sendq *q)
{
	struct sendq_msg *ring;

	if (q->cap <= SENDQ_SHRINK_CAP)
		return;
	ring = calloc(SENDQ_MIN_CAP, sizeof(*ring));
	if (!ring)
		return;
	free(q->ring);
	q->ring = ring;
	q->cap = SENDQ_MIN_CAP;
}

static void advance_head(struct sendq *q)
{
	while (q->head < q->tail && !msg_at(q, q->head)->live)
		q->head++;
	if (q->head == q->tail) {
		q->head = q->tail = 0;
		shrink_if_empty(q);
	}
}

static struct sendq_msg *pending_for(const struct sendq *q, const struct pfsync_key *key)
{
	const void *val = htab_get(&q->bykey, key);
	__u64 seq;

	if (!val)
		return NULL;
	memcpy(&seq, val, sizeof(seq));
	return msg_at(q, seq);
}

static void retarget(struct sendq_msg *m, __u64 id, __u32 creatorid)
{
	/* same key, newer identity: the old state is gone, name the one that exists */
	m->id = id;
	m->creatorid = creatorid;
}

int sendq_insert(struct sendq *q, const struct pfsync_key *key, __u64 id, __u32 creatorid,
		 __u64 now_ns)
{
	struct sendq_msg *m = pending_for(q, key);
	int err = 0;

	if (m) {
		/* an insert supersedes whatever was pending for the key */
		q->count[m->kind]--;
		m->kind = SQ_INS;
		q->count[SQ_INS]++;
		retarget(m, id, creatorid);
	} else {
		err = append(q, SQ_INS, key, id, creatorid, now_ns);
	}
	if (!err)
		q->urgent = 1;
	return err;
}

int sendq_update(struct sendq *q, const struct pfsync_key *key, __u64 id, __u32 creatorid,
		 __u64 now_ns, int send_now)
{
	struct sendq_msg *m = pending_for(q, key);
	int err = 0;

	if (m) {
		q->collapsed++;
		if (m->id != id || m->creatorid != creatorid)
			retarget(m, id, creatorid);
	} else {
		err = append(q, SQ_UPD_C, key, id, creatorid, now_ns);
	}
	if (!err && send_now)
		q->urgent = 1;
	return err;
}

int sendq_full_update(struct sendq *q, const struct pfsync_key *key, __u64 id, __u32 creatorid,
		      __u64 now_ns)
{
	struct sendq_msg *m = pending_for(q, key);
	int err = 0;

	if (m) {
		if (m->kind == SQ_UPD_C) {
			q->count[SQ_UPD_C]--;
			m->kind = SQ_UPD;
			q->count[SQ_UPD]++;
		}
		retarget(m, id, creatorid);
	} else {
		err = append(q, SQ_UPD, key, id, creatorid, now_ns);
	}
	if (!err)
		q->urgent = 1;
	return err;
}

int sendq_delete(struct sendq *q, const struct pfsync_key *key, __u64 id, __u32 creatorid,
		 __u64 now_ns)
{
	struct sendq_msg *m = pending_for(q, key);
	int err;

	if (m && m->id == id && m->creatorid == creatorid) {
		int was_insert = m->kind == SQ_INS;

		msg_kill(q, m);
		advance_head(q);
		if (was_insert) {
			/* pf: "pretend this never happened" */
			q->ins_dropped++;
			return 1;
		}
	}
	err = append(q, SQ_DEL_C, NULL, id, creatorid, now_ns);
	if (err)
		return err;
	q->urgent = 1;
	return 0;
}

int sendq_ins_ack(struct sendq *q, __u64 id, __u32 creatorid, __u64 now_ns)
{
	int err = append(q, SQ_INS_ACK, NULL, id, creatorid, now_ns);

	if (!err)
		q->urgent = 1;
	return err;
}

void sendq_forget_key(struct sendq *q, const struct pfsync_key *key)
{
	struct sendq_msg *m = pending_for(q, key);

	if (m) {
		msg_kill(q, m);
		advance_head(q);
	}
}

void sendq_forget_creator(struct sendq *q, __u32 creatorid)
{
	for (__u64 seq = q->head; seq < q->tail; seq++) {
		struct sendq_msg *m = msg_at(q, seq);

		if (m->live && kind_has_key(m->kind) && m->creatorid == creatorid)
			msg_kill(q, m);
	}
	advance_head(q);
}

void sendq_forget_all(struct sendq *q)
{
	for (__u64 seq = q->head; seq < q->tail; seq++)
		msg_kill(q, msg_at(q, seq));
	advance_head(q);
}

size_t sendq_pending(const struct sendq *q)
{
	return q->live;
}

size_t sendq_pending_bytes(const struct sendq *q)
{
	size_t bytes = PFSYNC_HDRLEN;

	for (unsigned int k = 0; k < SQ_KINDS; k++)
		if (q->count[k])
			bytes += sizeof(struct pfsync_subheader) + q->count[k] * kind_size(k);
	return bytes;
}

static int held_off(const struct sendq *q, __u64 now_ns)
{
	return q->last_send_ns && now_ns < q->last_send_ns + SENDQ_HOLDOFF_NS;
}

enum sendq_mode sendq_decide(const struct sendq *q, __u64 now_ns)
{
	if (q->live == 0)
		return SENDQ_IDLE;
	if (now_ns >= q->first_ns + SENDQ_MAX_DELAY_NS || (q->urgent && !held_off(q, now_ns)))
		return SENDQ_ALL;
	if (sendq_pending_bytes(q) > payload_limit(q))
		return SENDQ_FULL;
	return SENDQ_IDLE;
}

__u64 sendq_deadline(const struct sendq *q)
{
	__u64 deadline;

	if (q->live == 0)
		return 0;
	deadline = q->first_ns + SENDQ_MAX_DELAY_NS;
	if (q->urgent && q->last_send_ns + SENDQ_HOLDOFF_NS < deadline)
		deadline = q->last_send_ns + SENDQ_HOLDOFF_NS;
	return deadline;
}

/* chooses, from the head, the messages that fit in one packet; returns how many */
static size_t plan_packet(struct sendq *q)
{
	unsigned int acts[SQ_KINDS] = {0};
	size_t used = PFSYNC_HDRLEN;
	size_t n = 0;

	for (__u64 seq = q->head; seq < q->tail && n < q->plan_cap; seq++) {
		const struct sendq_msg *m = msg_at(q, seq);
		size_t need;

		if (!m->live)
			continue;
		need = kind_size(m->kind) + (acts[m->kind] ? 0 : sizeof(struct pfsync_subheader));
		if (used + need > payload_limit(q))
			break;
		used += need;
		acts[m->kind]++;
		q->plan[n++] = seq;
	}
	return n;
}

struct packet_ctx {
	struct sendq *q;
	const struct sendq_io *io;
	__u64 now_ns;
	unsigned int acts[PFSYNC_ACT_MAX];
	int sent;
};

static void packet_send(struct packet_ctx *pc)
{
	size_t len;

	if (pfsync_builder_count(pc->q->builder) == 0)
		return;
	len = pfsync_builder_finish(pc->q->builder, pc->q->pkt, pc->q->mtu);
	if (len && pc->io->send(pc->io->ctx, pc->q->pkt, len, pc->acts) == 0)
		pc->sent++;
	memset(pc->acts, 0, sizeof(pc->acts));
}

static void packet_add(struct packet_ctx *pc, __u8 action, const void *msg)
{
	if (pfsync_builder_add(pc->q->builder, action, msg) == -ENOSPC) {
		packet_send(pc);
		if (pfsync_builder_add(pc->q->builder, action, msg) != 0)
			return;
	}
	pc->acts[action]++;
}

/*
 * The message for a pending entry, from the state's current value: val
 * when the caller fetched it (NULL: gone), else looked up now.
 */
static void pack_msg(struct packet_ctx *pc, const struct sendq_msg *m,
		     const struct pfsync_state_value *fetched, int was_fetched)
{
	union {
		struct pfsync_state st;
		struct pfsync_upd_c upd_c;
		struct pfsync_del_c id_msg;
	} out;
	struct pfsync_state_value val;

	if (!kind_has_key(m->kind)) {
		pfsync_id_msg_fill(&out.id_msg, m->id, m->creatorid);
		packet_add(pc, kind_action[m->kind], &out.id_msg);
		return;
	}
	if (was_fetched) {
		if (!fetched) {
			pc->q->vanished++;
			return;
		}
		val = *fetched;
	} else if (pc->io->lookup(pc->io->ctx, &m->key, &val) != 0) {
		pc->q->vanished++;
		return;
	}
	if (val.id != m->id || val.creatorid != m->creatorid || (val.flags & PFSYNC_SF_NOSYNC)) {
		pc->q->vanished++;
		return;
	}
	if (m->kind == SQ_UPD_C) {
		pfsync_upd_c_export(&val, &out.upd_c);
		packet_add(pc, PFSYNC_ACT_UPD_C, &out.upd_c);
		return;
	}
	pfsync_state_export(&m->key, &val, pc->now_ns, pc->io->cfg, pc->io->states_count, &out.st);
	packet_add(pc, kind_action[m->kind], &out.st);
}

/*
 * Packs the planned messages: QUEUED is cleared (in batches) before values
 * are read, in one call per batch when the io can fetch.
 */
static void pack_planned(struct packet_ctx *pc, size_t n)
{
	struct pfsync_key keys[PFSYNC_UNQUEUE_BATCH];
	struct sendq_msg msgs[PFSYNC_UNQUEUE_BATCH];
	struct pfsync_state_value vals[PFSYNC_UNQUEUE_BATCH];
	int rc[PFSYNC_UNQUEUE_BATCH];

	for (size_t start = 0; start < n; start += PFSYNC_UNQUEUE_BATCH) {
		size_t end = start + PFSYNC_UNQUEUE_BATCH < n ? start + PFSYNC_UNQUEUE_BATCH : n;
		unsigned int nkeys = 0, k = 0;
		int fetched = 0;

		for (size_t i = start; i < end; i++) {
			struct sendq_msg *m = msg_at(pc->q, pc->q->plan[i]);

			msgs[i - start] = *m;
			if (kind_has_key(m->kind))
				keys[nkeys++] = m->key;
			msg_kill(pc->q, m);
		}
		if (nkeys && pc->io->fetch)
			fetched = pc->io->fetch(pc->io->ctx, keys, nkeys, vals, rc) == 0;
		if (nkeys && !fetched && pc->io->unqueue)
			pc->io->unqueue(pc->io->ctx, keys, nkeys);
		for (size_t i = start; i < end; i++) {
			const struct sendq_msg *m = &msgs[i - start];
			const struct pfsync_state_value *v = NULL;

			if (fetched && kind_has_key(m->kind)) {
				v = rc[k] == 0 ? &vals[k] : NULL;
				k++;
			}
			pack_msg(pc, m, v, fetched);
		}
	}
}

int sendq_flush(struct sendq *q, __u64 now_ns, enum sendq_mode mode, const struct sendq_io *io)
{
	struct packet_ctx pc = {.q = q, .io = io, .now_ns = now_ns};

	if (mode == SENDQ_IDLE)
		return 0;
	pfsync_builder_reset(q->builder);
	while (q->live > 0) {
		size_t n;

		if (mode == SENDQ_FULL && sendq_pending_bytes(q) <= payload_limit(q))
			break;
		n = plan_packet(q);
		if (n == 0)
			break;
		pack_planned(&pc, n);
		packet_send(&pc);
		advance_head(q);
	}
	if (pc.sent)
		q->last_send_ns = now_ns;
	return pc.sent;
}
