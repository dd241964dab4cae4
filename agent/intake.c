/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The datapath's change records (pfsync_events ringbuf) become queued
 * messages, and the map-wide operations that produce or replace records
 * (expiry sweep, flush, loss recovery) live here too.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <string.h>

#include "agent.h"

#define SWEEP_STEP_MIN	    256
#define INTAKE_LOST_POLL_NS 100000000ULL /* unreported losses: looked for this often */
#define SWEEP_STEP_MAX	    65536
#define SWEEP_STEP_NS	    1000000ULL /* a pass's steps are this far apart */

static void on_insert(struct agent *a, const struct pfsync_event *ev)
{
	if (ev->evflags & PFSYNC_EVF_ACK)
		defer_held(a);
	if (ev->state_flags_local & PFSYNC_SF_NOSYNC)
		return; /* no-sync states are never named to peers */
	if (index_put(&a->index, ev->id, ev->creatorid, &ev->key) != 0)
		log_err("index: out of memory");
	if (sendq_insert(&a->sendq, &ev->key, ev->id, ev->creatorid, a->now_ns) != 0)
		a->stats.onomem++;
}

static void on_update(struct agent *a, const struct pfsync_event *ev)
{
	if (ev->state_flags_local & PFSYNC_SF_NOSYNC)
		return;
	/* cheap, and heals the index if a record of this state was lost */
	if (index_put(&a->index, ev->id, ev->creatorid, &ev->key) != 0)
		log_err("index: out of memory");
	if (sendq_update(&a->sendq, &ev->key, ev->id, ev->creatorid, a->now_ns,
			 ev->evflags & PFSYNC_EVF_MAXUPD) != 0)
		a->stats.onomem++;
}

static void on_delete(struct agent *a, const struct pfsync_event *ev)
{
	index_del(&a->index, ev->id, ev->creatorid);
	if (ev->state_flags_local & PFSYNC_SF_NOSYNC)
		return;
	if (sendq_delete(&a->sendq, &ev->key, ev->id, ev->creatorid, a->now_ns) < 0)
		a->stats.onomem++;
}

/*
 * A burst that overflows the ring leaves several loss reports in it, each
 * written when space came back. One rebuild, run once the turn's records
 * are in (intake_settle), reads the map after they were all written, so it
 * covers every loss reported before it began: those reports are counted,
 * not acted on again. (A rebuild per report kept a million-state agent
 * rebuilding and resending for minutes, deaf to signals.)
 */
static void on_lost(struct agent *a, const struct pfsync_event *ev)
{
	a->records_lost += ev->lost;
	a->lost_events++;
	if (a->lost_rebuild_due || (ev->id && ev->id < a->lost_rebuild_ns)) {
		a->lost_covered++;
		log_debug("datapath lost %u change records: covered by a rebuild", ev->lost);
		return;
	}
	a->lost_rebuild_due = 1;
	log_info("datapath lost %u change records: rebuilding the index and resending every state",
		 ev->lost);
}

/*
 * Records lost in a burst are reported with the next record the datapath
 * writes; after a burst into a quiet table that could be much later. A
 * pending loss in the globals makes the agent run the sweep program on no
 * keys, which writes the report (into the ring, like any other).
 */
void intake_poll_lost(struct agent *a)
{
	struct pfsync_sweep_args args = {.sweep_flags = PFSYNC_SWEEP_KEYS, .count = 0};
	struct pfsync_globals g;
	__u32 zero = 0;

	if (a->globals_fd < 0 || a->now_ns < a->lost_poll_ns)
		return;
	a->lost_poll_ns = a->now_ns + INTAKE_LOST_POLL_NS;
	if (bpf_map_lookup_elem(a->globals_fd, &zero, &g) != 0 || !g.lost_pending)
		return;
	if (a->store.sweep(a->store.ctx, &args) != 0)
		log_debug("loss report: the sweep program did not run");
}

static void act_on(struct agent *a, const struct pfsync_event *ev)
{
	switch (ev->type) {
	case PFSYNC_EV_INSERT:
		on_insert(a, ev);
		break;
	case PFSYNC_EV_UPDATE:
		on_update(a, ev);
		break;
	case PFSYNC_EV_DELETE:
		on_delete(a, ev);
		break;
	case PFSYNC_EV_LOST:
		on_lost(a, ev);
		break;
	default:
		a->records_bad++;
		break;
	}
}

/* the held records, in the order they came */
static void intake_drain_held(struct agent *a)
{
	for (unsigned int i = 0; i < a->intake_nheld; i++)
		act_on(a, &a->intake_held[i]);
	a->intake_nheld = 0;
}

/* the slots this record's handler will touch start loading now */
static void prefetch_for(struct agent *a, const struct pfsync_event *ev)
{
	if (ev->type < PFSYNC_EV_INSERT || ev->type > PFSYNC_EV_DELETE)
		return;
	index_prefetch(&a->index, ev->id, ev->creatorid);
	if (!(ev->state_flags_local & PFSYNC_SF_NOSYNC))
		htab_prefetch(&a->sendq.bykey, &ev->key);
}

int intake_record(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;
	struct pfsync_event *ev;

	if (size < sizeof(*ev)) {
		a->records_bad++;
		return 0;
	}
	a->records++;
	ev = &a->intake_held[a->intake_nheld++];
	memcpy(ev, data, sizeof(*ev)); /* the ring's copy is gone after this call */
	prefetch_for(a, ev);
	if (a->intake_nheld == AGENT_INTAKE_AHEAD)
		intake_drain_held(a);
	return 0;
}

void intake_settle(struct agent *a)
{
	intake_drain_held(a);
	if (!a->lost_rebuild_due)
		return;
	a->lost_rebuild_due = 0;
	a->lost_rebuild_ns = agent_clock_ns();
	if (intake_rebuild_index(a) != 0)
		log_err("index rebuild failed");
	walker_start(a, 0);
}

/* a walk over the map with the agent: the rebuild's, or the index check's */
struct rebuild {
	struct agent *a;
	struct pfsync_unqueue_args unq;
	struct index_check *check;
};

static void unqueue_flush(struct rebuild *r)
{
	if (r->unq.count && r->a->store.unqueue(r->a->store.ctx, &r->unq) != 0)
		log_debug("unqueue of %u states failed", r->unq.count);
	r->unq.count = 0;
}

int intake_index_state(struct agent *a, const struct pfsync_key *k,
		       const struct pfsync_state_value *v)
{
	int rc = 0;

	if (!(v->flags & PFSYNC_SF_NOSYNC))
		rc = index_put(&a->index, v->id, v->creatorid, k);
	if ((rc || (v->flags & PFSYNC_SF_NOSYNC)) && v->creatorid != a->hostid)
		a->peer_states_unindexed = 1;
	return rc;
}

static int index_one(const struct pfsync_key *k, const struct pfsync_state_value *v, void *arg)
{
	struct rebuild *r = arg;

	if (intake_index_state(r->a, k, v) != 0)
		return -1;
	/* a QUEUED mark without a record we hold would silence the state forever */
	if (v->flags & PFSYNC_SF_QUEUED) {
		r->unq.keys[r->unq.count++] = *k;
		if (r->unq.count == PFSYNC_UNQUEUE_BATCH)
			unqueue_flush(r);
	}
	return 0;
}

/*
 * Rebuilds the index from the map and clears stale QUEUED marks: used at
 * start (a previous agent may have stopped with changes queued) and after
 * a ringbuf loss (the lost records' marks would never be cleared).
 */
int intake_rebuild_index(struct agent *a)
{
	struct rebuild r = {.a = a};
	int rc;

	index_clear(&a->index);
	rc = store_foreach(&a->store, index_one, &r);
	unqueue_flush(&r);
	return rc;
}

static int check_one(const struct pfsync_key *k, const struct pfsync_state_value *v, void *arg)
{
	struct rebuild *r = arg;
	struct index_check *c = r->check;
	struct pfsync_key held;

	if (v->flags & PFSYNC_SF_NOSYNC) {
		c->nosync++;
		return 0;
	}
	c->states++;
	if (index_get(&r->a->index, v->id, v->creatorid, &held) == 0 && index_key_same(&held, k))
		c->matched++;
	return 0;
}

int intake_index_check(struct agent *a, struct index_check *c)
{
	struct rebuild r = {.a = a, .check = c};
	int rc;

	memset(c, 0, sizeof(*c));
	rc = store_foreach(&a->store, check_one, &r);
	c->indexed = index_count(&a->index);
	/* an identity maps to one key: each match is a distinct index entry */
	c->missing = c->states - c->matched;
	c->stale = c->indexed - c->matched;
	return rc;
}

/* config (timeouts) and the adaptive state count, read fresh for exports */
static void refresh_datapath_view(struct agent *a)
{
	struct pfsync_globals g;
	__u32 zero = 0;

	if (a->config_fd >= 0)
		bpf_map_lookup_elem(a->config_fd, &zero, &a->cfg);
	if (a->globals_fd >= 0 && bpf_map_lookup_elem(a->globals_fd, &zero, &g) == 0)
		a->states_count = g.states_count;
}

/*
 * States read per step of the expiry pass. A pass takes one step per
 * SWEEP_STEP_NS (intake_sweep), so a pass over the whole table
 * ends within half the interval; a step never reads fewer than
 * SWEEP_STEP_MIN (about 0.1 ms of work) nor more than SWEEP_STEP_MAX.
 */
static unsigned int sweep_step_size(const struct agent *a)
{
	__u64 steps = (__u64)a->opts.interval_s * 1000 / 2;
	__u64 n = steps ? a->states_count / steps + 1 : SWEEP_STEP_MIN;

	if (n < SWEEP_STEP_MIN)
		return SWEEP_STEP_MIN;
	return n > SWEEP_STEP_MAX ? SWEEP_STEP_MAX : (unsigned int)n;
}

static void sweep_begin(struct agent *a)
{
	int rc;

	/* the preselection uses the timeouts and count the datapath uses */
	refresh_datapath_view(a);
	rc = store_sweep_begin(&a->sweep, sweep_step_size(a), a->now_ns);
	if (rc)
		log_err("expiry sweep: %s", strerror(-rc));
}

int intake_sweep(struct agent *a)
{
	int rc;

	if (!a->sweep.active && a->now_ns >= a->next_sweep_ns) {
		a->next_sweep_ns = a->now_ns + (__u64)a->opts.interval_s * 1000000000ULL;
		sweep_begin(a);
	}
	if (!a->sweep.active)
		return 0;
	/*
	 * One step a millisecond however often the loop turns: in a burst it
	 * turns far more often, and a step each turn read the table several
	 * times over (16-18 % of the sender's CPU in the bursts).
	 */
	if (a->now_ns < a->next_sweep_step_ns)
		return 1;
	a->next_sweep_step_ns = a->now_ns + SWEEP_STEP_NS;
	rc = store_sweep_step(&a->store, &a->sweep, a->now_ns, &a->cfg, a->states_count);
	if (rc < 0) {
		log_err("expiry sweep failed: %s", strerror(-rc));
		return rc;
	}
	if (rc == 0) {
		refresh_datapath_view(a);
		if (a->sweep.deleted)
			log_debug("expiry: %u of %u states removed in %llu ms", a->sweep.deleted,
				  a->sweep.seen,
				  (unsigned long long)(a->now_ns - a->sweep.started_ns) / 1000000);
	}
	return rc;
}

int intake_flush_all(struct agent *a)
{
	struct pfsync_sweep_args args = {.sweep_flags = PFSYNC_SWEEP_FLUSH | PFSYNC_SWEEP_QUIET};
	struct pfsync_clr clr;
	int rc = a->store.sweep(a->store.ctx, &args);

	if (rc) {
		log_err("flush failed: %s", strerror(-rc));
		return rc;
	}
	index_clear(&a->index);
	sendq_forget_all(&a->sendq);
	memset(&clr, 0, sizeof(clr));
	pfsync_put_be32(&clr.creatorid, a->hostid);
	rc = agent_send_msgs(a, PFSYNC_ACT_CLR, &clr, 1);
	log_info("flushed %u states, CLR sent for creatorid 0x%08x", args.deleted, a->hostid);
	return rc;
}
