/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The agent's side of loss repair (repair.h): numbering what it sends,
 * beacons, NAKs for what it missed, and answers to the NAKs it gets.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "agent.h"
#include "repair.h"

#define RESEND_IDS_MAX	   128		 /* DEL_C / UPD_REQ resent per packet */
#define REPAIR_ANSWER_MAX  2048		 /* numbers answered from one NAK; more = everything */
#define REPAIR_FULL_GAP_NS 1000000000ULL /* full resends asked by NAKs at most this often */
/* numbers answered a second, over all NAKs: a flood of (forged) NAKs costs this much at most */
#define REPAIR_ANSWER_RATE 16384
#define SECOND_NS	   1000000000ULL

enum resend_outcome {
	RESEND_DONE = 0,
	RESEND_UNAVAILABLE, /* numbers no longer kept: a full resend instead */
	RESEND_LATER,	    /* over this second's budget: the NAK will come again */
};

/* ---- sending ------------------------------------------------------------- */
int agent_repair_init(struct agent *a)
{
	__u32 session = 0;

	if (a->opts.no_repair)
		return 0;
	if (getrandom(&session, sizeof(session), 0) != sizeof(session))
		session = (__u32)agent_clock_ns();
	if (repair_tx_init(&a->repair_tx, session ? session : 1) != 0)
		return -ENOMEM;
	a->txbuf = malloc(a->sock.mtu + REPAIR_TRAILER_MAX);
	if (!a->txbuf) {
		repair_tx_free(&a->repair_tx);
		return -ENOMEM;
	}
	a->repair_on = 1;
	return 0;
}

void agent_repair_free(struct agent *a)
{
	repair_tx_free(&a->repair_tx);
	free(a->txbuf);
	a->txbuf = NULL;
	a->repair_on = 0;
}

static struct repair_trailer own_trailer(const struct agent *a, __u8 kind)
{
	struct repair_trailer t = {
	    .kind = kind,
	    .hostid = a->hostid,
	    .session = a->repair_tx.session,
	    .seq = a->repair_tx.seq,
	};

	return t;
}

size_t agent_repair_data_trailer(struct agent *a, const __u8 *payload, size_t len, __u8 *out)
{
	struct repair_trailer t;

	if (!a->repair_on)
		return 0;
	repair_tx_record(&a->repair_tx, payload, len);
	a->repair_tx.last_send_ns = a->repair_tx.last_data_ns = a->now_ns;
	t = own_trailer(a, REPAIR_DATA);
	return repair_encode(&t, NULL, out);
}

/* a BEACON, NAK or DONE: a bare pfsync header with the trailer */
static void send_control(struct agent *a, const struct repair_trailer *t,
			 const struct repair_range *ranges)
{
	__u8 trailer[REPAIR_TRAILER_MAX];
	size_t tlen = repair_encode(t, ranges, trailer);

	if (agent_send_control(a, trailer, tlen) == 0)
		a->repair_tx.last_send_ns = a->now_ns;
}

/* ---- answering a NAK -------------------------------------------------------- */
struct resend {
	struct agent *a;
	__u8 ids[RESEND_IDS_MAX][sizeof(struct pfsync_del_c)];
	unsigned int nids;
	__u8 action; /* of the ids collected */
};

static void resend_flush_ids(struct resend *r)
{
	if (r->nids)
		agent_send_msgs(r->a, r->action, r->ids, r->nids);
	r->nids = 0;
}

static void resend_id(struct resend *r, __u8 action, __u64 id, __u32 creatorid)
{
	if (r->nids && (r->action != action || r->nids == RESEND_IDS_MAX))
		resend_flush_ids(r);
	r->action = action;
	pfsync_id_msg_fill(r->ids[r->nids++], id, creatorid);
}

/* the state's current value, in full, if we still have it */
static void resend_state(struct resend *r, __u64 id, __u32 creatorid)
{
	struct agent *a = r->a;
	struct pfsync_key key;

	if (index_get(&a->index, id, creatorid, &key) != 0)
		return; /* gone since: its DEL_C went in a later packet */
	if (sendq_full_update(&a->sendq, &key, id, creatorid, a->now_ns) == 0)
		a->repair_tx.states_resent++;
}

static void on_state(void *ctx, const struct pfsync_state *m)
{
	resend_state(ctx, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m));
}

static void on_upd_c(void *ctx, const struct pfsync_upd_c *m)
{
	resend_state(ctx, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m));
}

static void on_del_c(void *ctx, const struct pfsync_del_c *m)
{
	struct resend *r = ctx;
	struct pfsync_key key;

	/* a state with this identity again would be news to the peer: not deleted */
	if (index_get(&r->a->index, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m), &key) == 0)
		return;
	resend_id(r, PFSYNC_ACT_DEL_C, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m));
	r->a->repair_tx.dels_resent++;
}

static void on_ins_ack(void *ctx, const struct pfsync_ins_ack *m)
{
	struct resend *r = ctx;

	sendq_ins_ack(&r->a->sendq, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m), r->a->now_ns);
}

static void on_upd_req(void *ctx, const struct pfsync_upd_req *m)
{
	/* a bulk request (0, 0) is retried by its own timer: not twice */
	if (PFSYNC_MSG_ID(m) || PFSYNC_MSG_CREATOR(m))
		resend_id(ctx, PFSYNC_ACT_UPD_REQ, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m));
}

/*
 * What a lost packet carried, as it is now. CLR and BUS are not resent: a
 * late CLR would clear states made after it, and a lost BUS END is the
 * bulk requester's timeout's business.
 */
static const struct pfsync_decode_ops resend_ops = {
    .ins = on_state,
    .upd = on_state,
    .upd_c = on_upd_c,
    .del_c = on_del_c,
    .ins_ack = on_ins_ack,
    .upd_req = on_upd_req,
};

/* a resend of every state, at most once a REPAIR_FULL_GAP_NS; 0 if under way */
static int full_resend(struct agent *a)
{
	if (a->repair_full_ns && a->now_ns < a->repair_full_ns + REPAIR_FULL_GAP_NS)
		return -EAGAIN;
	walker_pace_resend(a);
	if (walker_start(a, 0) != 0)
		return -ENOMEM;
	a->repair_full_ns = a->now_ns;
	a->repair_tx.full_resends++;
	return 0;
}

/* this second's budget of numbers to answer */
static unsigned int answer_budget(struct agent *a)
{
	struct repair_tx *tx = &a->repair_tx;

	if (a->now_ns >= tx->answer_window_ns + SECOND_NS) {
		tx->answer_window_ns = a->now_ns;
		tx->answered_in_window = 0;
	}
	if (tx->answered_in_window >= REPAIR_ANSWER_RATE)
		return 0;
	return REPAIR_ANSWER_RATE - tx->answered_in_window;
}

/* resends the numbers of the NAK's ranges */
static enum resend_outcome resend_ranges(struct agent *a, const struct repair_trailer *t)
{
	struct resend r = {.a = a};
	struct pfsync_stats scratch; /* our own packets: nothing to count */
	unsigned int budget = answer_budget(a), per_nak = REPAIR_ANSWER_MAX;
	enum resend_outcome outcome = RESEND_DONE;

	for (unsigned int i = 0; i < t->nranges && outcome == RESEND_DONE; i++) {
		struct repair_range rg = repair_range_at(t, i);

		for (__u64 seq = rg.first; seq <= rg.last && seq <= a->repair_tx.seq; seq++) {
			const __u8 *copy;
			size_t len;

			if (budget == 0) {
				outcome = RESEND_LATER;
				break;
			}
			if (per_nak == 0 || repair_tx_get(&a->repair_tx, (__u32)seq, &copy, &len)) {
				a->repair_tx.seqs_unavailable++;
				outcome = RESEND_UNAVAILABLE;
				break;
			}
			budget--;
			per_nak--;
			a->repair_tx.answered_in_window++;
			memset(&scratch, 0, sizeof(scratch));
			pfsync_decode(copy, len, &resend_ops, &r, &scratch);
			a->repair_tx.seqs_resent++;
		}
	}
	resend_flush_ids(&r);
	return outcome;
}

/*
 * The NAKed numbers were all sent before the walk under way (or the last
 * one) began: it carries, or carried, the value every state had after
 * them, as a new full resend would. The receiver asks again for numbers it
 * still misses until it hears DONE; restarting the resend at each such NAK
 * (one a REPAIR_FULL_GAP_NS) kept a slow receiver's resend from ever
 * ending.
 */
static int walk_covers(const struct agent *a, const struct repair_trailer *t)
{
	const struct walker *w = &a->walker;

	if (!w->active && !w->runs)
		return 0;
	for (unsigned int i = 0; i < t->nranges; i++)
		if ((__s32)(repair_range_at(t, i).last - w->started_after_seq) > 0)
			return 0;
	return t->nranges > 0;
}

static void answer_nak(struct agent *a, const struct repair_trailer *t)
{
	struct repair_range ranges[REPAIR_MAX_RANGES];
	struct repair_trailer done = own_trailer(a, REPAIR_DONE);

	a->repair_tx.naks_heard++;
	/* numbers of an earlier run of ours are gone: the peer asks again, for all */
	if (t->target_session != a->repair_tx.session)
		return;
	switch (resend_ranges(a, t)) {
	case RESEND_LATER:
		return;
	case RESEND_UNAVAILABLE:
		if (!walk_covers(a, t) && full_resend(a) != 0)
			return; /* asked again later, when a full resend may start */
		break;
	case RESEND_DONE:
		if ((t->flags & REPAIR_F_ALL) && full_resend(a) != 0)
			return;
		break;
	}
	if (t->flags & REPAIR_F_ALL)
		done.flags = REPAIR_F_ALL;
	agent_flush_sendq(a);
	for (unsigned int i = 0; i < t->nranges; i++)
		ranges[i] = repair_range_at(t, i);
	done.nranges = t->nranges;
	done.seq = a->repair_tx.seq;
	send_control(a, &done, ranges);
	a->repair_tx.naks_answered++;
}

int agent_repair_sender_is_us(const struct agent *a, const __u8 *payload, size_t len)
{
	struct repair_trailer t;

	if (repair_parse(payload, len, &t) != 0)
		return -1;
	return a->repair_on && t.hostid == a->hostid && t.session == a->repair_tx.session;
}

void agent_repair_on_packet(struct agent *a, const __u8 *payload, size_t len)
{
	struct repair_trailer t;
	struct repair_peer *p;
	int rc;

	if (!a->repair_on)
		return;
	rc = repair_parse(payload, len, &t);
	if (rc == -2)
		a->repair_bad++;
	if (rc || t.hostid == a->hostid)
		return;
	p = repair_rx_seen(&a->repair_rx, t.hostid, t.session, t.seq, t.kind == REPAIR_DATA,
			   a->now_ns);
	if (t.kind == REPAIR_NAK && t.target_hostid == a->hostid)
		answer_nak(a, &t);
	else if (t.kind == REPAIR_DONE && p)
		repair_rx_done(p, &t);
}

/* ---- the timers ------------------------------------------------------------- */
static void send_naks(struct agent *a)
{
	struct repair_range ranges[REPAIR_MAX_RANGES];

	for (unsigned int i = 0; i < REPAIR_MAX_SENDERS; i++) {
		struct repair_peer *p = &a->repair_rx.peers[i];
		struct repair_trailer nak = own_trailer(a, REPAIR_NAK);
		int all;

		if (!p->used || (!p->nmissing && !p->want_all))
			continue;
		nak.nranges =
		    (__u16)repair_rx_nak_due(p, a->now_ns, ranges, REPAIR_MAX_RANGES, &all);
		if (!nak.nranges && !all)
			continue;
		nak.flags = all ? REPAIR_F_ALL : 0;
		nak.target_hostid = p->hostid;
		nak.target_session = p->session;
		send_control(a, &nak, ranges);
	}
}

void agent_repair_tick(struct agent *a)
{
	if (!a->repair_on)
		return;
	send_naks(a);
	if (a->repair_tx.seq && a->now_ns >= repair_tx_beacon_due(&a->repair_tx)) {
		struct repair_trailer beacon = own_trailer(a, REPAIR_BEACON);

		send_control(a, &beacon, NULL);
		a->repair_tx.beacons++;
	}
}

__u64 agent_repair_deadline(const struct agent *a)
{
	__u64 t = 0;

	if (!a->repair_on)
		return 0;
	if (a->repair_tx.seq)
		t = repair_tx_beacon_due(&a->repair_tx);
	for (unsigned int i = 0; i < REPAIR_MAX_SENDERS; i++) {
		__u64 due =
		    a->repair_rx.peers[i].used ? repair_rx_deadline(&a->repair_rx.peers[i]) : 0;

		if (due && (!t || due < t))
			t = due;
	}
	return t;
}

/* ---- control socket ------------------------------------------------------------ */
static __u64 peers_sum(const struct agent *a, size_t field)
{
	__u64 n = 0;

	for (unsigned int i = 0; i < REPAIR_MAX_SENDERS; i++)
		if (a->repair_rx.peers[i].used)
			n += *(const __u64 *)((const char *)&a->repair_rx.peers[i] + field);
	return n;
}

void agent_repair_status(const struct agent *a, FILE *out, int json)
{
	const struct repair_tx *tx = &a->repair_tx;
	__u64 missing = repair_rx_missing(&a->repair_rx);
	__u64 lost = peers_sum(a, offsetof(struct repair_peer, lost_seqs));
	__u64 repaired = peers_sum(a, offsetof(struct repair_peer, repaired_seqs));
	__u64 naks = peers_sum(a, offsetof(struct repair_peer, naks_sent));

	if (json) {
		fprintf(out,
			"\"repair\":%s,\"repair_seq\":%u,\"repair_missing\":%llu,"
			"\"repair_lost\":%llu,\"repair_repaired\":%llu,\"repair_naks_sent\":%llu,"
			"\"repair_naks_answered\":%llu,\"repair_states_resent\":%llu,"
			"\"repair_dels_resent\":%llu,\"repair_full_resends\":%llu,"
			"\"repair_unavailable\":%llu,\"repair_beacons\":%llu,\"repair_bad\":%llu,",
			a->repair_on ? "true" : "false", tx->seq, (unsigned long long)missing,
			(unsigned long long)lost, (unsigned long long)repaired,
			(unsigned long long)naks, (unsigned long long)tx->naks_answered,
			(unsigned long long)tx->states_resent, (unsigned long long)tx->dels_resent,
			(unsigned long long)tx->full_resends,
			(unsigned long long)tx->seqs_unavailable, (unsigned long long)tx->beacons,
			(unsigned long long)a->repair_bad);
		return;
	}
	if (!a->repair_on) {
		fprintf(out, "repair: off\n");
		return;
	}
	fprintf(out,
		"repair: on (sent %u numbered packets, %llu beacons; missing %llu of %llu lost, "
		"%llu repaired, %llu NAKs sent; %llu NAKs answered: %llu states and %llu deletes "
		"resent, %llu full resends; %llu bad trailers)\n",
		tx->seq, (unsigned long long)tx->beacons, (unsigned long long)missing,
		(unsigned long long)lost, (unsigned long long)repaired, (unsigned long long)naks,
		(unsigned long long)tx->naks_answered, (unsigned long long)tx->states_resent,
		(unsigned long long)tx->dels_resent, (unsigned long long)tx->full_resends,
		(unsigned long long)a->repair_bad);
}
