/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Received pfsync packets applied to the state table (pfsync-wire.md §3.3).
 * Everything written here is marked FROM_PEER and goes into the map from
 * userspace, for which the datapath emits no record: nothing received is
 * sent again, except our newer view of a state a peer sent stale (§3.4).
 * A message naming a state we do not have never touches any other state.
 */
#include <errno.h>
#include <netinet/ip.h>
#include <stddef.h>
#include <string.h>

#include "agent.h"

/* an index this small stays in the cache: no prefetch pass */
#define PREFETCH_MIN_INDEX 16384

/* the live entry for an identity; stale index entries are dropped */
static int find_state(struct agent *a, __u64 id, __u32 creatorid, struct pfsync_key *k,
		      struct pfsync_state_value *v)
{
	if (index_get(&a->index, id, creatorid, k) != 0)
		return -ENOENT;
	if (a->store.lookup(a->store.ctx, k, v) != 0 || v->id != id || v->creatorid != creatorid) {
		index_del(&a->index, id, creatorid);
		return -ENOENT;
	}
	return 0;
}

/*
 * The peer's halves merged into the state v names (looked up at k), on the
 * live state where the store can (store_merge): only the halves taken are
 * written, nothing the datapath changed meanwhile is put back.
 */
static void merge_into(struct agent *a, const struct pfsync_key *k, struct pfsync_state_value *v,
		       const struct pfsync_state_peer *src, const struct pfsync_state_peer *dst,
		       __u8 timeout)
{
	struct pfsync_import_entry e = {.key = *k};
	__u32 flags;
	int stale;

	e.val.id = v->id;
	e.val.creatorid = v->creatorid;
	pfsync_peer_import(src, &e.val.peer[0]);
	pfsync_peer_import(dst, &e.val.peer[1]);
	e.val.timeout = timeout;
	e.val.last_seen = a->now_ns;
	stale = store_merge(&a->store, &e);
	flags = stale >= 0 ? e.val.flags : v->flags;
	/*
	 * pf: any update of the state releases its held packet too. After the
	 * write: a release clears the state's defer marks, which a value read
	 * before must not put back.
	 */
	defer_ack(a, k, flags & PFSYNC_SF_DEFERRED);
	if (stale < 0) {
		a->stats.badstate++;
		return;
	}
	a->merged++;
	if (stale) {
		/* our copy is newer in some half: the peer learns it */
		a->stats.stale++;
		sendq_update(&a->sendq, k, v->id, v->creatorid, a->now_ns, 0);
	}
}

/*
 * Batched import: while a packet is applied, the full states that name
 * states we do not know (bulk UPD, INS) are collected and inserted
 * together at the end of the packet, or before any message that looks at
 * existing states, so everything is applied in the packet's order as if
 * one at a time. Entries whose key was taken are merged then.
 */
#define IMPORT_ACK 0x1 /* an INS with PFSTATE_ACK: answer INS_ACK once imported */

static struct {
	int active; /* inside apply_packet with a batch-capable store */
	unsigned int n;
	struct pfsync_import_entry e[PFSYNC_IMPORT_BATCH];
	const struct pfsync_state *msg[PFSYNC_IMPORT_BATCH]; /* in the packet being applied */
	__u8 flags[PFSYNC_IMPORT_BATCH];
} pending;

/* after the insert of (k, v) from message m returned rc: 0 = imported or merged */
static int import_done(struct agent *a, const struct pfsync_key *k,
		       const struct pfsync_state_value *v, const struct pfsync_state *m, int rc)
{
	struct pfsync_state_value cur;

	if (rc == -EEXIST && a->store.lookup(a->store.ctx, k, &cur) == 0) {
		/* same connection already known (both sides saw it): merge */
		merge_into(a, k, &cur, &m->src, &m->dst, m->timeout);
		if (cur.id == v->id && cur.creatorid == v->creatorid &&
		    intake_index_state(a, k, &cur) != 0)
			log_err("index: out of memory");
		return 0;
	}
	if (rc) {
		log_peer(LOG_LVL_DEBUG, "importing state %016llx/%08x: %s",
			 (unsigned long long)v->id, v->creatorid, strerror(-rc));
		return rc;
	}
	a->imported++;
	/* as the rebuild: no-sync states are never named, and expire without a record */
	if (intake_index_state(a, k, v) != 0)
		log_err("index: out of memory");
	return 0;
}

/* what on_ins / on_upd do with an import's outcome */
static void import_outcome(struct agent *a, const struct pfsync_state *m, int rc, __u8 flags)
{
	if (rc) {
		a->stats.badstate++;
		return;
	}
	if (flags & IMPORT_ACK)
		sendq_ins_ack(&a->sendq, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m), a->now_ns);
}

/* the queued imports into the map: at a full batch, and before any message
 * about existing states, which must see everything before it applied */
static void import_flush(struct agent *a)
{
	int rc[PFSYNC_IMPORT_BATCH];
	unsigned int n = pending.n;

	if (!n)
		return;
	pending.n = 0;
	if (a->store.insert_batch(a->store.ctx, pending.e, n, rc) != 0)
		for (unsigned int i = 0; i < n; i++)
			rc[i] = a->store.insert(a->store.ctx, &pending.e[i].key, &pending.e[i].val);
	for (unsigned int i = 0; i < n; i++) {
		const struct pfsync_state *m = pending.msg[i];

		rc[i] = import_done(a, &pending.e[i].key, &pending.e[i].val, m, rc[i]);
		import_outcome(a, m, rc[i], pending.flags[i]);
	}
}

/*
 * (id, creatorid) names one state: pf refuses to insert a second state with
 * an identity already in its table. Held by a live state under another key,
 * or by a state of this packet still waiting in the batch: taken.
 */
static int identity_taken(struct agent *a, __u64 id, __u32 creatorid, const struct pfsync_key *k)
{
	struct pfsync_state_value cur;
	struct pfsync_key held;

	if (find_state(a, id, creatorid, &held, &cur) == 0 && !index_key_same(&held, k))
		return 1;
	for (unsigned int i = 0; i < pending.n; i++)
		if (pending.e[i].val.id == id && pending.e[i].val.creatorid == creatorid &&
		    !index_key_same(&pending.e[i].key, k))
			return 1;
	return 0;
}

/*
 * imports a full state (now, or queued in the batch); -EINVAL if its values
 * are bad, -EEXIST (counted in dupident) if its identity is another state's
 */
static int import_state(struct agent *a, const struct pfsync_state *m, __u8 flags)
{
	struct pfsync_state_value v;
	struct pfsync_key k;
	unsigned int i;

	if (pfsync_state_import(m, a->now_ns, &a->cfg, &k, &v) != 0)
		return -EINVAL;
	if (identity_taken(a, v.id, v.creatorid, &k)) {
		a->stats.dupident++;
		log_peer(LOG_LVL_WARN,
			 "state %016llx/%08x refused: its identity is another state's",
			 (unsigned long long)v.id, v.creatorid);
		return -EEXIST;
	}
	v.state_flags &= ~PFSTATE_ACK;
	if (v.state_flags & PFSTATE_NOSYNC)
		v.flags |= PFSYNC_SF_NOSYNC;
	if (!pending.active) {
		import_outcome(
		    a, m, import_done(a, &k, &v, m, a->store.insert(a->store.ctx, &k, &v)), flags);
		return 0;
	}
	if (pending.n == PFSYNC_IMPORT_BATCH)
		import_flush(a);
	i = pending.n++;
	pending.e[i].key = k;
	pending.e[i].val = v;
	pending.msg[i] = m;
	pending.flags[i] = flags;
	return 0;
}

/*
 * A peer's states all enter the map through the agent, which indexes them:
 * when the index holds none of the creator's, neither does the map, and
 * the walk of the whole table (0.1 s at 1M states, in front of the bulk
 * request a flushed peer sends next) can be left out. Not so for our own
 * hostid (the datapath's states) nor once a peer's state went unindexed.
 */
static int clr_needs_walk(const struct agent *a, __u32 creatorid)
{
	return creatorid == a->hostid || a->peer_states_unindexed ||
	       index_has_creator(&a->index, creatorid);
}

static void on_clr(void *ctx, const struct pfsync_clr *m)
{
	struct agent *a = ctx;
	__u32 creatorid = PFSYNC_MSG_CREATOR(m);
	struct pfsync_sweep_args args = {
	    .sweep_flags = PFSYNC_SWEEP_FLUSH | PFSYNC_SWEEP_CREATOR | PFSYNC_SWEEP_QUIET,
	    .creatorid = creatorid,
	};

	import_flush(a);
	if (clr_needs_walk(a, creatorid) && a->store.sweep(a->store.ctx, &args) != 0) {
		a->stats.badstate++;
		return;
	}
	index_del_creator(&a->index, creatorid);
	sendq_forget_creator(&a->sendq, creatorid);
	a->cleared_by_peer += args.deleted;
	log_peer(LOG_LVL_INFO, "peer cleared creatorid 0x%08x: %u states removed", creatorid,
		 args.deleted);
}

static void on_ins(void *ctx, const struct pfsync_state *m)
{
	struct agent *a = ctx;
	__u8 flags = 0;

	if (pfsync_get_be16(&m->state_flags) & PFSTATE_ACK)
		flags |= IMPORT_ACK;
	if (import_state(a, m, flags) == -EINVAL)
		a->stats.badval++;
}

static void on_ins_ack(void *ctx, const struct pfsync_ins_ack *m)
{
	struct agent *a = ctx;
	struct pfsync_state_value v;
	struct pfsync_key k;

	/*
	 * The peer has the state: its held first packet may go. Whether one is
	 * held is defer.c's to know: the DEFERRED mark is only a hint (the
	 * datapath sets it after the insert, so a merge of the peer's copy
	 * written meanwhile may have dropped it).
	 */
	import_flush(a);
	if (find_state(a, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m), &k, &v) == 0)
		defer_ack(a, &k, v.flags & PFSYNC_SF_DEFERRED);
}

/* a full state message about the connection k (an UPD for a known identity) */
static int names_key(struct agent *a, const struct pfsync_state *m, const struct pfsync_key *k)
{
	struct pfsync_state_value v;
	struct pfsync_key mk;

	/* values the decoder let through import; if not, the identity decides */
	return pfsync_state_import(m, a->now_ns, &a->cfg, &mk, &v) != 0 || index_key_same(&mk, k);
}

static void on_upd(void *ctx, const struct pfsync_state *m)
{
	struct agent *a = ctx;
	struct pfsync_state_value v;
	struct pfsync_key k;
	__u64 id = PFSYNC_MSG_ID(m);
	__u32 creatorid = PFSYNC_MSG_CREATOR(m);
	int known, rc;

	bulk_req_activity(&a->bulk_req, a->now_ns); /* a bulk update is UPD messages */
	known = find_state(a, id, creatorid, &k, &v) == 0;
	if (known && pending.n) {
		/* merged in the packet's order: what the batch holds goes in first */
		import_flush(a);
		known = find_state(a, id, creatorid, &k, &v) == 0;
	}
	if (known && !names_key(a, m, &k)) {
		a->stats.dupident++;
		return;
	}
	if (known) {
		merge_into(a, &k, &v, &m->src, &m->dst, m->timeout);
		return;
	}
	rc = import_state(a, m, 0);
	if (rc != 0 && rc != -EEXIST)
		a->stats.badstate++;
}

static void on_upd_c(void *ctx, const struct pfsync_upd_c *m)
{
	struct agent *a = ctx;
	struct pfsync_state_value v;
	struct pfsync_key k;
	__u64 id = PFSYNC_MSG_ID(m);
	__u32 creatorid = PFSYNC_MSG_CREATOR(m);

	import_flush(a);
	if (find_state(a, id, creatorid, &k, &v) == 0) {
		merge_into(a, &k, &v, &m->src, &m->dst, m->timeout);
		return;
	}
	/* unknown: ask for the whole state, all of this packet's in one UPD_REQ packet */
	if (a->nupd_reqs < AGENT_UPD_REQ_MAX) {
		a->upd_reqs[a->nupd_reqs].id = id;
		a->upd_reqs[a->nupd_reqs].creatorid = creatorid;
		a->nupd_reqs++;
	}
}

static void on_upd_req(void *ctx, const struct pfsync_upd_req *m)
{
	struct agent *a = ctx;
	struct pfsync_state_value v;
	struct pfsync_key k;
	__u64 id = PFSYNC_MSG_ID(m);
	__u32 creatorid = PFSYNC_MSG_CREATOR(m);

	import_flush(a);
	if (id == 0 && creatorid == 0) {
		walker_start(a, 1);
		return;
	}
	if (find_state(a, id, creatorid, &k, &v) != 0 || (v.flags & PFSYNC_SF_NOSYNC) ||
	    v.timeout >= PFTM_MAX) {
		a->stats.badstate++;
		return;
	}
	sendq_full_update(&a->sendq, &k, id, creatorid, a->now_ns);
}

static void delete_named(struct agent *a, __u64 id, __u32 creatorid)
{
	struct pfsync_state_value v;
	struct pfsync_key k;

	import_flush(a);
	if (find_state(a, id, creatorid, &k, &v) != 0 || a->store.remove(a->store.ctx, &k) != 0) {
		a->stats.badstate++;
		return;
	}
	/* removed from userspace: the datapath emits no delete, nothing echoes */
	index_del(&a->index, id, creatorid);
	sendq_forget_key(&a->sendq, &k);
	a->deleted_by_peer++;
}

static void on_del(void *ctx, const struct pfsync_state *m)
{
	delete_named(ctx, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m));
}

static void on_del_c(void *ctx, const struct pfsync_del_c *m)
{
	delete_named(ctx, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m));
}

static void on_bus(void *ctx, const struct pfsync_bus *m)
{
	import_flush(ctx); /* END: the states before it count */
	bulk_on_bus(ctx, m->status);
}

const struct pfsync_decode_ops apply_ops = {
    .clr = on_clr,
    .ins = on_ins,
    .ins_ack = on_ins_ack,
    .upd = on_upd,
    .upd_c = on_upd_c,
    .upd_req = on_upd_req,
    .del = on_del,
    .del_c = on_del_c,
    .bus = on_bus,
};

/*
 * A first, read-only pass over a packet: the index slots its messages name
 * start loading together, instead of one cache miss after another while
 * the packet is applied (a bulk packet names up to ~30 unknown states; the
 * index of a big table misses the cache on nearly every lookup).
 */
static void prefetch_state(void *ctx, const struct pfsync_state *m)
{
	struct agent *a = ctx;

	index_prefetch(&a->index, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m));
}

static void prefetch_upd_c(void *ctx, const struct pfsync_upd_c *m)
{
	struct agent *a = ctx;

	index_prefetch(&a->index, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m));
}

static void prefetch_del_c(void *ctx, const struct pfsync_del_c *m)
{
	struct agent *a = ctx;

	index_prefetch(&a->index, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m));
}

static const struct pfsync_decode_ops prefetch_ops = {
    .ins = prefetch_state,
    .upd = prefetch_state,
    .upd_c = prefetch_upd_c,
    .del = prefetch_state,
    .del_c = prefetch_del_c,
};

/* packets this small gain nothing from a second pass */
#define PREFETCH_MIN_LEN 2048

static void prefetch_packet(struct agent *a, const __u8 *ip, size_t len)
{
	struct pfsync_stats scratch; /* the real pass counts */

	if (len < PREFETCH_MIN_LEN || index_count(&a->index) < PREFETCH_MIN_INDEX)
		return;
	memset(&scratch, 0, sizeof(scratch));
	pfsync_input_ipv4(ip, len, &prefetch_ops, a, &scratch);
}

static void send_upd_reqs(struct agent *a)
{
	struct pfsync_upd_req reqs[AGENT_UPD_REQ_MAX];

	for (unsigned int i = 0; i < a->nupd_reqs; i++)
		pfsync_id_msg_fill(&reqs[i], a->upd_reqs[i].id, a->upd_reqs[i].creatorid);
	agent_send_msgs(a, PFSYNC_ACT_UPD_REQ, reqs, a->nupd_reqs);
	a->nupd_reqs = 0;
}

/* the counters of a packet, or of a message in it, that failed a check */
static __u64 faults_counted(const struct pfsync_stats *st)
{
	return st->badif + st->badttl + st->hdrops + st->badver + st->badact + st->badlen +
	       st->badval;
}

int apply_packet(struct agent *a, const __u8 *ip, size_t len, int ifindex)
{
	__u64 faults_before = faults_counted(&a->stats);
	int rc;

	if (ifindex && ifindex != a->sock.ifindex) {
		/* OpenBSD counts the packet, then checks the interface */
		a->stats.ipackets++;
		a->stats.badif++;
		return -1;
	}
	a->nupd_reqs = 0;
	prefetch_packet(a, ip, len);
	pending.active = a->store.insert_batch != NULL;
	rc = pfsync_input_ipv4(ip, len, &apply_ops, a, &a->stats);
	import_flush(a); /* the messages point into this packet */
	pending.active = 0;
	if (rc == 0)
		tun_write_ip(&a->tun, ip, len);
	if (a->nupd_reqs)
		send_upd_reqs(a);
	return rc == 0 && faults_counted(&a->stats) == faults_before ? 0 : -1;
}
