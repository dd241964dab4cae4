/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

const char *bulk_req_state_name(enum bulk_req_state s)
{
	switch (s) {
	case BULK_REQ_NONE:
		return "none";
	case BULK_REQ_REQUESTED:
		return "requested";
	case BULK_REQ_IN_PROGRESS:
		return "in progress";
	case BULK_REQ_DONE:
		return "done";
	case BULK_REQ_FAILED:
		return "failed";
	}
	return "?";
}

int bulk_req_start(struct bulk_req *r, __u64 now_ns)
{
	r->state = BULK_REQ_REQUESTED;
	r->tries = 1;
	r->requested_ns = now_ns;
	r->finished_ns = 0;
	r->timer_ns = now_ns + BULK_REQ_RETRY_NS;
	return 1;
}

int bulk_req_tick(struct bulk_req *r, __u64 now_ns)
{
	if (!r->timer_ns || now_ns < r->timer_ns)
		return 0;
	if (r->state == BULK_REQ_REQUESTED && r->tries < BULK_REQ_MAX_TRIES) {
		r->tries++;
		r->timer_ns = now_ns + BULK_REQ_RETRY_NS;
		return 1;
	}
	/* out of tries, or a transfer went silent */
	r->state = BULK_REQ_FAILED;
	r->timer_ns = 0;
	r->finished_ns = now_ns;
	return 0;
}

int bulk_req_busy(const struct bulk_req *r)
{
	return r->state == BULK_REQ_REQUESTED || r->state == BULK_REQ_IN_PROGRESS;
}

void bulk_req_bus(struct bulk_req *r, __u8 status, __u64 now_ns)
{
	if (status == PFSYNC_BUS_START && bulk_req_busy(r)) {
		r->state = BULK_REQ_IN_PROGRESS;
		r->timer_ns = now_ns + BULK_IDLE_TIMEOUT_NS;
	} else if (status == PFSYNC_BUS_END && bulk_req_busy(r)) {
		/* an empty table is answered with BUS END alone */
		r->state = BULK_REQ_DONE;
		r->timer_ns = 0;
		r->finished_ns = now_ns;
	}
}

void bulk_req_activity(struct bulk_req *r, __u64 now_ns)
{
	if (r->state == BULK_REQ_IN_PROGRESS)
		r->timer_ns = now_ns + BULK_IDLE_TIMEOUT_NS;
}

__u64 bulk_req_deadline(const struct bulk_req *r)
{
	return r->timer_ns;
}

static void send_bulk_request(struct agent *a)
{
	struct pfsync_upd_req req;

	pfsync_id_msg_fill(&req, 0, 0);
	if (agent_send_msgs(a, PFSYNC_ACT_UPD_REQ, &req, 1) == 0)
		log_debug("bulk update requested (%s %u)", bulk_req_state_name(a->bulk_req.state),
			  a->bulk_req.tries);
}

void bulk_request(struct agent *a)
{
	if (bulk_req_start(&a->bulk_req, a->now_ns)) {
		log_info("requesting a bulk update");
		send_bulk_request(a);
	}
}

/* packets of a bulk update were dropped: ask again (a few times) */
static void rerequest_after_loss(struct agent *a)
{
	a->bulk_lossy = 0;
	if (a->bulk_rerequests >= BULK_MAX_REREQUESTS)
		return;
	a->bulk_rerequests++;
	log_info("packets were lost during the bulk update: asking again");
	bulk_request(a);
}

/* packets lost outside a bulk update: one, once the drops have stopped */
static void resync_tick(struct agent *a)
{
	if (!a->resync_due_ns || a->now_ns < a->resync_due_ns)
		return;
	a->resync_due_ns = 0;
	if (bulk_req_busy(&a->bulk_req))
		return; /* one is on the way already */
	log_info("pfsync packets were dropped: asking the peers for a bulk update to catch up");
	a->bulk_resyncs++;
	/*
	 * The bulk status stays: this firewall still holds what it had, and a
	 * status away from "done" demotes it (keepalived's check, ucarp-up.sh),
	 * which on the master would be a failover for a few dropped packets.
	 */
	send_bulk_request(a);
}

void bulk_tick(struct agent *a)
{
	enum bulk_req_state before = a->bulk_req.state;

	resync_tick(a);
	if (bulk_req_tick(&a->bulk_req, a->now_ns))
		send_bulk_request(a);
	if (before == a->bulk_req.state || a->bulk_req.state != BULK_REQ_FAILED)
		return;
	log_info("bulk update failed: %s",
		 before == BULK_REQ_REQUESTED ? "no peer answered" : "peer went silent");
	/* the dropped packets may have held BUS END */
	if (before == BULK_REQ_IN_PROGRESS && a->bulk_lossy)
		rerequest_after_loss(a);
}

void bulk_on_bus(struct agent *a, __u8 status)
{
	enum bulk_req_state before = a->bulk_req.state;

	bulk_req_bus(&a->bulk_req, status, a->now_ns);
	if (before == a->bulk_req.state)
		return;
	if (a->bulk_req.state == BULK_REQ_IN_PROGRESS)
		log_info("bulk update started by peer");
	else if (a->bulk_req.state == BULK_REQ_DONE)
		log_info("bulk update done in %llu ms, %zu states known",
			 (unsigned long long)(a->now_ns - a->bulk_req.requested_ns) / 1000000,
			 index_count(&a->index));
	if (a->bulk_req.state == BULK_REQ_DONE && a->bulk_lossy)
		rerequest_after_loss(a);
}

/* ---- walker -------------------------------------------------------------- */
void walker_free(struct walker *w)
{
	store_cursor_reset(&w->cur);
	free(w->keys);
	free(w->vals);
	pfsync_builder_free(w->builder);
	memset(w, 0, sizeof(*w));
}

static int walker_alloc(struct agent *a)
{
	struct walker *w = &a->walker;

	if (w->keys)
		return 0;
	w->keys = calloc(WALKER_BATCH, sizeof(*w->keys));
	w->vals = calloc(WALKER_BATCH, sizeof(*w->vals));
	w->builder = pfsync_builder_new(a->sock.mtu);
	w->pkt = a->pkt;
	if (!w->keys || !w->vals || !w->builder) {
		walker_free(w);
		return -ENOMEM;
	}
	return 0;
}

/*
 * A receiver that lost packets of our last answer asks again at one of two
 * moments: when BUS END reaches it (within its queue's drain time of our
 * END), or, when END itself was lost, once the transfer has been silent for
 * BULK_IDLE_TIMEOUT_NS. A request at either moment after a big answer
 * halves the pace (down to WALKER_MIN_RATE); any other request is a new
 * peer, a restart or a flush, and lets the pace climb back (doubling) to
 * the configured rate. (A request at other times used to halve it too,
 * which slowed every later bulk of a long-lived agent for nothing.)
 */
static int request_says_loss(const struct walker *w, __u64 now_ns)
{
	__u64 since;

	if (!w->last_bus_end_ns || w->last_bus_states < WALKER_LOSSY_STATES)
		return 0;
	since = now_ns - w->last_bus_end_ns;
	return since <= WALKER_LOSS_QUICK_NS ||
	       (since + WALKER_LOSS_SLACK_NS >= BULK_IDLE_TIMEOUT_NS &&
		since <= BULK_IDLE_TIMEOUT_NS + WALKER_LOSS_QUICK_NS);
}

/*
 * A full resend asked by a peer's loss repair while our last one still
 * runs, or soon after it ended, says the receiver lost its packets: they
 * carry sequence numbers too, and the packet history no longer holds them
 * after a big resend. Without slowing down, a receiver that applies
 * updates slower than the pace (a loaded one) got a full resend every
 * REPAIR_FULL_GAP_NS, each losing packets again, without end.
 */
static int resend_says_loss(const struct walker *w, __u64 now_ns)
{
	if (w->active && !w->with_bus)
		return w->states_sent >= WALKER_LOSSY_STATES;
	return w->last_resend_end_ns && w->last_resend_states >= WALKER_LOSSY_STATES &&
	       now_ns - w->last_resend_end_ns <= WALKER_LOSS_QUICK_NS;
}

/* halves the pace after a loss (down to WALKER_MIN_RATE), else climbs back */
static void adapt_pace(struct agent *a, int loss, const char *what)
{
	struct walker *w = &a->walker;
	__u64 rate;

	if (!w->rate_cfg)
		w->rate_cfg = a->bulk_rate; /* the first answer: the configured pace */
	if (!loss) {
		rate = a->bulk_rate * 2;
		a->bulk_rate = rate > w->rate_cfg ? w->rate_cfg : rate;
		return;
	}
	if (a->bulk_rate <= WALKER_MIN_RATE)
		return;
	rate = a->bulk_rate / 2;
	a->bulk_rate = rate < WALKER_MIN_RATE ? WALKER_MIN_RATE : rate;
	log_info("%s asked again soon after the last one: pacing at %llu states/s", what,
		 (unsigned long long)a->bulk_rate);
}

void walker_pace_resend(struct agent *a)
{
	adapt_pace(a, resend_says_loss(&a->walker, a->now_ns), "full resend");
}

int walker_start(struct agent *a, int with_bus)
{
	struct walker *w = &a->walker;

	if (w->active && w->with_bus && with_bus)
		return 0; /* OpenBSD: a request during a bulk send does not restart it */
	if (with_bus)
		adapt_pace(a, request_says_loss(w, a->now_ns), "bulk update");
	if (walker_alloc(a) != 0) {
		log_err("no memory for a %s", with_bus ? "bulk update" : "resend");
		return -ENOMEM;
	}
	/* a resend asked during a bulk answer keeps the BUS framing */
	w->with_bus = with_bus || (w->active && w->with_bus);
	w->active = 1;
	w->bus_started = 0;
	store_cursor_reset(&w->cur); /* a walk restarted: its old iterator goes */
	w->n = w->pos = 0;
	w->states_sent = 0;
	w->packets_sent = 0;
	memset(w->acts, 0, sizeof(w->acts));
	pfsync_builder_reset(w->builder);
	w->started_ns = agent_clock_ns();
	w->started_after_seq = a->repair_tx.seq;
	w->credit_at_ns = a->now_ns;
	w->credit = WALKER_BATCH;
	log_info("%s of the state table started", w->with_bus ? "bulk update" : "full resend");
	return 0;
}

/* next state worth sending, reading a new batch from the map when needed */
static int walker_next(struct agent *a, struct pfsync_key **k, struct pfsync_state_value **v)
{
	struct walker *w = &a->walker;

	for (;;) {
		while (w->pos < w->n) {
			unsigned int i = w->pos++;

			if (w->vals[i].flags & PFSYNC_SF_NOSYNC)
				continue;
			*k = &w->keys[i];
			*v = &w->vals[i];
			return 1;
		}
		if (w->cur.done)
			return 0;
		w->n = WALKER_BATCH;
		w->pos = 0;
		if (a->store.read_batch(a->store.ctx, &w->cur, w->keys, w->vals, &w->n) != 0) {
			log_err("reading the state table for a %s failed",
				w->with_bus ? "bulk update" : "resend");
			w->n = 0;
			return 0;
		}
	}
}

static void walk_send(struct agent *a)
{
	struct walker *w = &a->walker;
	size_t len;

	if (pfsync_builder_count(w->builder) == 0)
		return;
	len = pfsync_builder_finish(w->builder, w->pkt, a->sock.mtu);
	if (len)
		agent_send_payload(a, w->pkt, len, w->acts);
	memset(w->acts, 0, sizeof(w->acts));
	w->packets_sent++;
}

static void walk_add(struct agent *a, __u8 action, const void *msg)
{
	struct walker *w = &a->walker;

	if (pfsync_builder_add(w->builder, action, msg) == -ENOSPC) {
		walk_send(a);
		if (pfsync_builder_add(w->builder, action, msg) != 0)
			return;
	}
	w->acts[action]++;
}

static void bus_msg(struct agent *a, struct pfsync_bus *bus, __u8 status)
{
	memset(bus, 0, sizeof(*bus));
	pfsync_put_be32(&bus->creatorid, a->hostid);
	bus->status = status;
}

static void walker_finish(struct agent *a)
{
	struct walker *w = &a->walker;

	if (w->with_bus) {
		struct pfsync_bus bus;

		/* END never shares the START packet: its states must be applied first */
		if (w->packets_sent == 0 && w->states_sent > 0)
			walk_send(a);
		bus_msg(a, &bus, PFSYNC_BUS_END);
		walk_add(a, PFSYNC_ACT_BUS, &bus);
		w->last_bus_end_ns = a->now_ns;
		w->last_bus_states = w->states_sent;
	} else {
		w->last_resend_end_ns = a->now_ns;
		w->last_resend_states = w->states_sent;
	}
	walk_send(a);
	store_cursor_reset(&w->cur);
	w->active = 0;
	w->runs++;
	w->last_states = w->states_sent;
	w->last_duration_ns = agent_clock_ns() - w->started_ns;
	log_info("%s sent: %llu states in %llu packets, %llu ms",
		 w->with_bus ? "bulk update" : "full resend", (unsigned long long)w->states_sent,
		 (unsigned long long)w->packets_sent,
		 (unsigned long long)w->last_duration_ns / 1000000);
}

int walker_step(struct agent *a, unsigned int max_states)
{
	struct walker *w = &a->walker;
	__u64 stop_at = w->states_sent + max_states;
	struct pfsync_state st;

	if (!w->active)
		return 0;
	if (w->with_bus && !w->bus_started) {
		struct pfsync_bus bus;

		bus_msg(a, &bus, PFSYNC_BUS_START);
		walk_add(a, PFSYNC_ACT_BUS, &bus);
		w->bus_started = 1;
	}
	/* a partly filled packet waits in the builder for the next step */
	while (w->states_sent < stop_at) {
		struct pfsync_key *k;
		struct pfsync_state_value *v;

		if (!walker_next(a, &k, &v)) {
			walker_finish(a);
			return 0;
		}
		pfsync_state_export(k, v, a->now_ns, &a->cfg, a->states_count, &st);
		walk_add(a, PFSYNC_ACT_UPD, &st);
		w->states_sent++;
	}
	return 1;
}

/*
 * The pace in states/s: bulk_rate, but no more than WALKER_MAX_PACKET_RATE
 * packets a second (a receiver pays per packet too: at a 1500-byte MTU a
 * packet holds 5 states, at 9000 bytes 33).
 */
static __u64 states_per_packet(const struct agent *a)
{
	size_t room = a->sock.mtu > WALKER_PKT_OVERHEAD ? a->sock.mtu - WALKER_PKT_OVERHEAD : 0;
	__u64 n = room / sizeof(struct pfsync_state);

	return n ? n : 1;
}

static __u64 walker_pace(const struct agent *a)
{
	__u64 cap = states_per_packet(a) * WALKER_MAX_PACKET_RATE;

	return a->bulk_rate < cap ? a->bulk_rate : cap;
}

/* credit in states, earned at the pace; at most WALKER_BURST_NS worth is kept */
static void earn_credit(struct agent *a)
{
	struct walker *w = &a->walker;
	__u64 rate = walker_pace(a);
	double burst = (double)rate * (double)WALKER_BURST_NS / 1e9;

	if (burst < WALKER_BATCH)
		burst = WALKER_BATCH;
	if (a->now_ns > w->credit_at_ns) {
		w->credit += (double)(a->now_ns - w->credit_at_ns) * (double)rate / 1e9;
		w->credit_at_ns = a->now_ns;
	}
	if (w->credit > burst)
		w->credit = burst;
}

/*
 * One event-loop turn of the walk: what the credit allows, in steps of a
 * map batch, for at most WALKER_TURN_NS, so that records, received packets
 * and control requests are served between turns (a live change waits for
 * at most one turn).
 */
int walker_run(struct agent *a)
{
	struct walker *w = &a->walker;
	__u64 start = agent_clock_ns();
	int more = 1;

	if (!w->active)
		return 0;
	earn_credit(a);
	while (more && w->credit >= 1.0) {
		__u64 before = w->states_sent;
		__u64 allowed = (__u64)w->credit;

		more =
		    walker_step(a, allowed < WALKER_BATCH ? (unsigned int)allowed : WALKER_BATCH);
		w->credit -= (double)(w->states_sent - before);
		if (agent_clock_ns() - start >= WALKER_TURN_NS)
			break;
	}
	return more;
}

__u64 walker_deadline(const struct agent *a)
{
	const struct walker *w = &a->walker;
	__u64 per_packet = states_per_packet(a);
	double missing = (double)per_packet - w->credit;
	__u64 rate = walker_pace(a);

	if (!w->active)
		return 0;
	/* credit for a packet: go on at once; else when it is earned */
	if (missing <= 0 || !rate)
		return a->now_ns;
	return w->credit_at_ns + (__u64)(missing * 1e9 / (double)rate) + 1;
}
