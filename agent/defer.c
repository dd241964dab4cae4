/* SPDX-License-Identifier: BSD-2-Clause */
#include <bpf/bpf.h>
#include <errno.h>
#include <net/ethernet.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "cksum.h"

/* a pass over the queue takes at most this many (the datapath may keep pushing) */
#define DEFER_TAKE_MAX (4 * PFSYNC_DEFER_MAX)

static int pop_queue(struct defer_state *d, struct pfsync_deferred *out);
static int send_frame(struct defer_state *d, const struct pfsync_deferred *h);

void defer_init(struct defer_state *d, int queue_fd, unsigned int timeout_ms)
{
	memset(d, 0, sizeof(*d));
	d->queue_fd = queue_fd;
	release_io_init(&d->io);
	d->timeout_ns = (__u64)timeout_ms * 1000000ULL;
	d->pop = queue_fd >= 0 ? pop_queue : NULL;
	d->send = send_frame;
	htab_init(&d->keys, sizeof(struct pfsync_key), sizeof(__u32));
}

void defer_free(struct defer_state *d)
{
	htab_free(&d->keys);
	free(d->pool);
	d->pool = NULL;
	d->nspare = d->pending = 0;
	release_io_close(&d->io);
}

/* ---- held frames with a partial L4 checksum ---------------------------------- */

/* where a frame's TCP/UDP segment is, and its pseudo-header sum */
struct l4_seg {
	size_t off, len;
	__u8 proto;
	__u32 pseudo;
};

static int ipv4_seg(const __u8 *ip, size_t room, struct l4_seg *seg)
{
	size_t ihl = (size_t)(ip[0] & 0xf) * 4, total;

	if (room < 20 || ip[0] >> 4 != 4 || ihl < 20)
		return -1;
	total = (size_t)ip[2] << 8 | ip[3];
	if (total < ihl || total > room || (ip[6] & 0x3f) || ip[7])
		return -1; /* truncated, or a fragment: its checksum spans others */
	seg->off = ihl;
	seg->len = total - ihl;
	seg->proto = ip[9];
	seg->pseudo = cksum_add(ip + 12, 8, seg->proto + (__u32)seg->len);
	return 0;
}

static int ipv6_seg(const __u8 *ip6, size_t room, struct l4_seg *seg)
{
	if (room < 40 || ip6[0] >> 4 != 6)
		return -1;
	seg->off = 40; /* TCP/UDP right after the fixed header only */
	seg->len = (size_t)ip6[4] << 8 | ip6[5];
	seg->proto = ip6[6];
	if (seg->len > room - 40)
		return -1;
	seg->pseudo = cksum_add(ip6 + 8, 32, seg->proto + (__u32)seg->len);
	return 0;
}

static int frame_seg(const __u8 *frame, size_t len, struct l4_seg *seg)
{
	size_t l3 = ETH_HLEN;
	__u16 type;

	if (len < ETH_HLEN + 4)
		return -1;
	type = (__u16)(frame[12] << 8 | frame[13]);
	if (type == ETH_P_8021Q) {
		type = (__u16)(frame[16] << 8 | frame[17]);
		l3 += 4;
	}
	if (type == ETH_P_IP && ipv4_seg(frame + l3, len - l3, seg) == 0)
		seg->off += l3;
	else if (type == ETH_P_IPV6 && ipv6_seg(frame + l3, len - l3, seg) == 0)
		seg->off += l3;
	else
		return -1;
	return 0;
}

/*
 * A frame a local socket sent over a veth (or a tap, or through a stack
 * with checksum offload) carries a partial TCP/UDP checksum: only the
 * pseudo-header sum, with the skb marked for the device to finish it. The
 * copy held here has lost that mark, and re-injected or re-sent it reaches
 * a receiver that verifies the checksum and drops the packet (a released
 * SYN lost: the connection waits for its retransmission). Such a checksum
 * is completed; any other, valid or not, is left as it came.
 */
static void complete_partial_csum(__u8 *frame, size_t len)
{
	struct l4_seg seg;
	size_t field;
	__u16 check;

	if (frame_seg(frame, len, &seg) != 0)
		return;
	field = seg.proto == IPPROTO_TCP ? 16 : seg.proto == IPPROTO_UDP ? 6 : 0;
	if (!field || seg.len < field + 2)
		return;
	field += seg.off;
	if (cksum_fold(cksum_add(frame + seg.off, seg.len, seg.pseudo)) == 0xffff)
		return; /* complete and valid */
	if ((__u16)(frame[field] << 8 | frame[field + 1]) != cksum_fold(seg.pseudo))
		return; /* not a partial checksum: a damaged packet stays damaged */
	frame[field] = frame[field + 1] = 0;
	check = (__u16)~cksum_fold(cksum_add(frame + seg.off, seg.len, seg.pseudo));
	if (check == 0 && seg.proto == IPPROTO_UDP)
		check = 0xffff; /* 0 would mean "no checksum" */
	frame[field] = (__u8)(check >> 8);
	frame[field + 1] = (__u8)check;
}

/* ---- release ------------------------------------------------------------------- */

static int send_frame(struct defer_state *d, const struct pfsync_deferred *h)
{
	return release_send(&d->io, h);
}

static int pop_queue(struct defer_state *d, struct pfsync_deferred *out)
{
	return bpf_map_lookup_and_delete_elem(d->queue_fd, NULL, out) ? -errno : 0;
}

static void key_count(struct defer_state *d, const struct pfsync_key *key, int delta)
{
	int created;
	__u32 *n;

	if (delta > 0) {
		n = htab_put(&d->keys, key, &created);
		if (n)
			++*n;
		else
			log_err("defer: out of memory"); /* acks for it are missed: timeout */
		return;
	}
	n = htab_get(&d->keys, key);
	if (n && --*n == 0)
		htab_del(&d->keys, key);
}

/* releases held[i] and drops it from the list; counted exactly once */
static void release_at(struct agent *a, unsigned int i)
{
	struct defer_state *d = &a->defer;
	struct defer_held *e = d->held[i];
	struct pfsync_deferred *h = &e->pkt;
	int rc;

	memmove(&d->held[i], &d->held[i + 1], (d->pending - i - 1) * sizeof(d->held[0]));
	d->pending--;
	d->spare[d->nspare++] = e;
	key_count(d, &h->key, -1);
	/*
	 * the state is no longer waiting: the marks the datapath set go, on
	 * the live state where the store can (a copy written back whole would
	 * undo what the datapath did meanwhile, a retransmitted SYN's tracking)
	 */
	store_unmark(&a->store, &h->key);
	if (h->len == 0 || h->len > PFSYNC_DEFER_PKT_MAX) {
		rc = -EINVAL;
	} else {
		complete_partial_csum(h->data, h->len);
		rc = d->send(d, h);
	}
	if (rc) {
		d->release_failed++;
		/* rate-limited: a path that breaks fails for every packet */
		log_peer(LOG_LVL_WARN,
			 "defer: releasing a packet held at %s on ifindex %u (%s) failed: %s",
			 h->at_egress ? "egress" : "ingress", h->ifindex,
			 h->at_egress ? "packet socket" : release_path_name(d->io.ingress),
			 strerror(-rc));
	} else if (e->acked) {
		d->released_ack++;
	} else {
		d->released_timeout++;
	}
}

static int pool_ready(struct defer_state *d)
{
	if (d->pool)
		return 0;
	d->pool = calloc(PFSYNC_DEFER_MAX + 1, sizeof(*d->pool));
	if (!d->pool) {
		log_err("defer: out of memory");
		return -ENOMEM;
	}
	for (unsigned int i = 0; i <= PFSYNC_DEFER_MAX; i++)
		d->spare[i] = &d->pool[i];
	d->nspare = PFSYNC_DEFER_MAX + 1;
	return 0;
}

/*
 * Takes what the datapath queued into the list. The pool has one slot more
 * than the list, so a packet is always taken before, if the list is full,
 * the oldest is released to make room for it (pf's limit).
 */
static void take(struct agent *a)
{
	struct defer_state *d = &a->defer;

	if (!d->pop || pool_ready(d) != 0)
		return;
	for (unsigned int n = 0; n < DEFER_TAKE_MAX; n++) {
		struct defer_held *e = d->spare[d->nspare - 1];

		if (d->pop(d, &e->pkt) != 0)
			return;
		d->nspare--;
		d->taken++;
		if (d->pending == PFSYNC_DEFER_MAX)
			release_at(a, 0);
		e->acked = 0;
		d->held[d->pending++] = e;
		key_count(d, &e->pkt.key, 1);
	}
}

void defer_held(struct agent *a)
{
	take(a);
}

void defer_ack(struct agent *a, const struct pfsync_key *key, int flagged)
{
	struct defer_state *d = &a->defer;

	if (!d->pending && !flagged)
		return; /* the common case: nothing held, and an update of any state */
	if (!htab_get(&d->keys, key)) {
		if (!flagged)
			return;
		/* the datapath held it: still in its queue? (a lost insert record) */
		take(a);
		if (!htab_get(&d->keys, key))
			return; /* released already: a late ack */
	}
	for (unsigned int i = 0; i < d->pending; i++)
		if (memcmp(&d->held[i]->pkt.key, key, sizeof(*key)) == 0)
			d->held[i]->acked = 1;
}

__u64 defer_run(struct agent *a)
{
	struct defer_state *d = &a->defer;
	__u64 next = 0;
	unsigned int i = 0;

	take(a);
	/* each on its own: an acked packet never waits behind an older one */
	while (i < d->pending) {
		const struct defer_held *e = d->held[i];
		__u64 due = e->pkt.held_ns + d->timeout_ns;

		if (e->acked || a->now_ns >= due) {
			release_at(a, i);
			continue;
		}
		if (!next || due < next)
			next = due;
		i++;
	}
	return next;
}

void defer_flush(struct agent *a)
{
	struct defer_state *d = &a->defer;

	take(a);
	while (d->pending)
		release_at(a, 0);
}
