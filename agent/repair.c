/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Repair of sync-link loss: trailer codec, the sender's history and the
 * receiver's gap lists (see repair.h; the agent's side is repair_io.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pfsync_wire.h"
#include "repair.h"

static const __u8 repair_magic[4] = {'P', 'F', 'R', '1'};

/* ---- trailer ------------------------------------------------------------- */
static size_t trailer_len(__u8 kind, unsigned int nranges)
{
	return REPAIR_HDR_LEN + (kind == REPAIR_NAK ? REPAIR_NAK_EXTRA : 0) + 8 * (size_t)nranges;
}

struct repair_range repair_range_at(const struct repair_trailer *t, unsigned int i)
{
	struct repair_range r = {
	    .first = pfsync_get_be32(t->ranges + 8 * i),
	    .last = pfsync_get_be32(t->ranges + 8 * i + 4),
	};

	return r;
}

int repair_parse(const __u8 *payload, size_t len, struct repair_trailer *t)
{
	const __u8 *p;
	size_t claimed, rest;

	if (len < PFSYNC_HDRLEN)
		return -1;
	claimed = pfsync_get_be16(payload + 2);
	if (claimed < PFSYNC_HDRLEN || claimed > len || len - claimed < REPAIR_HDR_LEN)
		return -1;
	p = payload + claimed;
	rest = len - claimed;
	if (memcmp(p, repair_magic, sizeof(repair_magic)) != 0)
		return -1;
	t->kind = p[4];
	t->flags = p[5];
	t->nranges = pfsync_get_be16(p + 6);
	t->hostid = pfsync_get_be32(p + 8);
	t->session = pfsync_get_be32(p + 12);
	t->seq = pfsync_get_be32(p + 16);
	if (t->kind < REPAIR_DATA || t->kind > REPAIR_DONE || t->nranges > REPAIR_MAX_RANGES ||
	    trailer_len(t->kind, t->nranges) > rest || t->hostid == 0 ||
	    t->seq == REPAIR_SEQ_NONE || (t->kind == REPAIR_DATA && t->seq == 0))
		return -2;
	t->target_hostid = t->target_session = 0;
	if (t->kind == REPAIR_NAK) {
		t->target_hostid = pfsync_get_be32(p + REPAIR_HDR_LEN);
		t->target_session = pfsync_get_be32(p + REPAIR_HDR_LEN + 4);
	}
	t->ranges = p + trailer_len(t->kind, 0);
	for (unsigned int i = 0; i < t->nranges; i++) {
		struct repair_range r = repair_range_at(t, i);

		if (r.first == 0 || r.first > r.last || r.last == REPAIR_SEQ_NONE)
			return -2;
	}
	return 0;
}

size_t repair_encode(const struct repair_trailer *t, const struct repair_range *r, __u8 *out)
{
	__u8 *ranges = out + trailer_len(t->kind, 0);

	memcpy(out, repair_magic, sizeof(repair_magic));
	out[4] = t->kind;
	out[5] = t->flags;
	pfsync_put_be16(out + 6, t->nranges);
	pfsync_put_be32(out + 8, t->hostid);
	pfsync_put_be32(out + 12, t->session);
	pfsync_put_be32(out + 16, t->seq);
	if (t->kind == REPAIR_NAK) {
		pfsync_put_be32(out + REPAIR_HDR_LEN, t->target_hostid);
		pfsync_put_be32(out + REPAIR_HDR_LEN + 4, t->target_session);
	}
	for (unsigned int i = 0; i < t->nranges; i++) {
		pfsync_put_be32(ranges + 8 * i, r[i].first);
		pfsync_put_be32(ranges + 8 * i + 4, r[i].last);
	}
	return trailer_len(t->kind, t->nranges);
}

/* ---- sender -------------------------------------------------------------- */
int repair_tx_init(struct repair_tx *tx, __u32 session)
{
	memset(tx, 0, sizeof(*tx));
	tx->session = session;
	tx->arena = malloc(REPAIR_HISTORY_BYTES);
	tx->slots = calloc(REPAIR_HISTORY_SLOTS, sizeof(*tx->slots));
	if (!tx->arena || !tx->slots) {
		repair_tx_free(tx);
		return -ENOMEM;
	}
	return 0;
}

void repair_tx_free(struct repair_tx *tx)
{
	free(tx->arena);
	free(tx->slots);
	tx->arena = NULL;
	tx->slots = NULL;
}

__u32 repair_tx_record(struct repair_tx *tx, const __u8 *payload, size_t len)
{
	struct repair_slot *slot;
	__u64 phys;

	if (tx->seq == REPAIR_SEQ_NONE - 1) {
		/* numbers never wrap within a session: receivers start afresh */
		tx->session++;
		tx->seq = 0;
	}
	tx->seq++;
	tx->data_packets++;
	slot = &tx->slots[tx->seq & (REPAIR_HISTORY_SLOTS - 1)];
	slot->seq = 0;
	if (!tx->arena || len > REPAIR_HISTORY_BYTES)
		return tx->seq;
	phys = tx->head % REPAIR_HISTORY_BYTES;
	if (phys + len > REPAIR_HISTORY_BYTES)
		tx->head += REPAIR_HISTORY_BYTES - phys; /* copies never wrap around the end */
	memcpy(tx->arena + tx->head % REPAIR_HISTORY_BYTES, payload, len);
	slot->seq = tx->seq;
	slot->len = (__u32)len;
	slot->vpos = tx->head;
	tx->head += len;
	return tx->seq;
}

int repair_tx_get(const struct repair_tx *tx, __u32 seq, const __u8 **payload, size_t *len)
{
	const struct repair_slot *slot;

	if (!tx->slots || seq == 0)
		return -1;
	slot = &tx->slots[seq & (REPAIR_HISTORY_SLOTS - 1)];
	/* the copy is intact until the arena's writer has gone a lap past it */
	if (slot->seq != seq || tx->head > slot->vpos + REPAIR_HISTORY_BYTES)
		return -1;
	*payload = tx->arena + slot->vpos % REPAIR_HISTORY_BYTES;
	*len = slot->len;
	return 0;
}

__u64 repair_tx_beacon_due(const struct repair_tx *tx)
{
	int busy = tx->last_data_ns && tx->last_send_ns < tx->last_data_ns + REPAIR_BUSY_NS;

	return tx->last_send_ns + (busy ? REPAIR_BEACON_NS : REPAIR_IDLE_BEACON_NS);
}

/* ---- receiver ------------------------------------------------------------ */
static struct repair_peer *find_peer(struct repair_rx *rx, __u32 hostid, __u64 now_ns)
{
	struct repair_peer *oldest = &rx->peers[0];

	for (unsigned int i = 0; i < REPAIR_MAX_SENDERS; i++)
		if (rx->peers[i].used && rx->peers[i].hostid == hostid)
			return &rx->peers[i];
	for (unsigned int i = 0; i < REPAIR_MAX_SENDERS; i++) {
		struct repair_peer *p = &rx->peers[i];

		if (!p->used)
			return p;
		if (p->last_heard_ns < oldest->last_heard_ns)
			oldest = p;
	}
	/* a sender heard recently keeps its gaps: a flood of new ones gets none */
	return now_ns - oldest->last_heard_ns >= REPAIR_SENDER_IDLE_NS ? oldest : NULL;
}

/* too much is missing to name: ask for everything instead */
static void want_everything(struct repair_peer *p)
{
	p->nmissing = 0;
	if (!p->want_all) {
		p->want_all = 1;
		p->all_nak_ns = 0;
	}
}

static void add_missing(struct repair_peer *p, __u32 first, __u32 last)
{
	p->gaps++;
	p->lost_seqs += (__u64)last - first + 1;
	if (p->want_all)
		return;
	if (p->nmissing == REPAIR_MAX_MISSING || (__u64)last - first + 1 > REPAIR_HISTORY_SLOTS) {
		want_everything(p);
		return;
	}
	p->missing[p->nmissing].r.first = first;
	p->missing[p->nmissing].r.last = last;
	p->missing[p->nmissing].nak_ns = 0;
	p->nmissing++;
}

/* takes [first, last] out of the missing ranges; returns the numbers taken */
static __u64 remove_missing(struct repair_peer *p, __u32 first, __u32 last)
{
	__u64 taken = 0;

	for (unsigned int i = 0; i < p->nmissing; i++) {
		struct repair_missing *m = &p->missing[i];
		__u32 lo = m->r.first > first ? m->r.first : first;
		__u32 hi = m->r.last < last ? m->r.last : last;

		if (lo > hi)
			continue;
		taken += (__u64)hi - lo + 1;
		if (lo == m->r.first && hi == m->r.last) {
			memmove(m, m + 1, (p->nmissing - i - 1) * sizeof(*m));
			p->nmissing--;
			i--;
		} else if (lo == m->r.first) {
			m->r.first = hi + 1;
		} else if (hi == m->r.last) {
			m->r.last = lo - 1;
		} else if (p->nmissing == REPAIR_MAX_MISSING) {
			want_everything(p);
			return taken;
		} else {
			/* the middle went: the rest splits in two, same NAK time */
			memmove(m + 2, m + 1, (p->nmissing - i - 1) * sizeof(*m));
			m[1] = *m;
			m->r.last = lo - 1;
			m[1].r.first = hi + 1;
			p->nmissing++;
			i++;
		}
	}
	return taken;
}

static void start_session(struct repair_peer *p, __u32 hostid, __u32 session, __u32 seq)
{
	int same = p->used && p->hostid == hostid;
	__u64 sessions = same ? p->sessions : 0;
	/* gaps of its last run are lost with its history: everything, then */
	int owed = same && (p->nmissing || p->want_all);

	memset(p, 0, sizeof(*p));
	p->want_all = owed;
	p->used = 1;
	p->hostid = hostid;
	p->session = session;
	p->next = seq + 1; /* what came before is the bulk update's business */
	p->sessions = sessions + 1;
}

struct repair_peer *repair_rx_seen(struct repair_rx *rx, __u32 hostid, __u32 session, __u32 seq,
				   int data, __u64 now_ns)
{
	struct repair_peer *p = find_peer(rx, hostid, now_ns);

	if (!p)
		return NULL;
	if (!p->used || p->hostid != hostid || p->session != session) {
		start_session(p, hostid, session, seq);
	} else if (seq >= p->next) {
		/* data: the numbers before it were skipped; a beacon's is missing too */
		__u32 last = data ? seq - 1 : seq;

		if (last >= p->next)
			add_missing(p, p->next, last);
		p->next = seq + 1;
	} else if (data) {
		remove_missing(p, seq, seq); /* late, or a duplicate */
	}
	p->last_heard_ns = now_ns;
	return p;
}

void repair_rx_done(struct repair_peer *p, const struct repair_trailer *t)
{
	if (t->flags & REPAIR_F_ALL)
		p->want_all = 0;
	for (unsigned int i = 0; i < t->nranges; i++) {
		struct repair_range r = repair_range_at(t, i);

		p->repaired_seqs += remove_missing(p, r.first, r.last);
	}
}

unsigned int repair_rx_nak_due(struct repair_peer *p, __u64 now_ns, struct repair_range *out,
			       unsigned int max, int *all)
{
	unsigned int n = 0;

	*all = 0;
	if (p->last_nak_ns && now_ns < p->last_nak_ns + REPAIR_NAK_GAP_NS)
		return 0;
	if (p->want_all && (!p->all_nak_ns || now_ns >= p->all_nak_ns + REPAIR_RETRY_NS)) {
		*all = 1;
		p->all_nak_ns = now_ns;
	}
	for (unsigned int i = 0; i < p->nmissing && n < max; i++) {
		struct repair_missing *m = &p->missing[i];

		if (m->nak_ns && now_ns < m->nak_ns + REPAIR_RETRY_NS)
			continue;
		m->nak_ns = now_ns;
		out[n++] = m->r;
	}
	if (n || *all) {
		p->last_nak_ns = now_ns;
		p->naks_sent++;
	}
	return n;
}

__u64 repair_rx_deadline(const struct repair_peer *p)
{
	__u64 t = 0;

	if (p->want_all)
		t = p->all_nak_ns ? p->all_nak_ns + REPAIR_RETRY_NS : 1;
	for (unsigned int i = 0; i < p->nmissing; i++) {
		__u64 due = p->missing[i].nak_ns ? p->missing[i].nak_ns + REPAIR_RETRY_NS : 1;

		if (!t || due < t)
			t = due;
	}
	if (t && p->last_nak_ns && t < p->last_nak_ns + REPAIR_NAK_GAP_NS)
		t = p->last_nak_ns + REPAIR_NAK_GAP_NS;
	return t;
}

__u64 repair_rx_missing(const struct repair_rx *rx)
{
	__u64 n = 0;

	for (unsigned int i = 0; i < REPAIR_MAX_SENDERS; i++) {
		const struct repair_peer *p = &rx->peers[i];

		for (unsigned int j = 0; p->used && j < p->nmissing; j++)
			n += (__u64)p->missing[j].r.last - p->missing[j].r.first + 1;
	}
	return n;
}
