/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libFuzzer target: the loss-repair trailer (agent/repair.h) from a hostile
 * sender. The input is cut into packets (first byte: length of the next
 * one); each is parsed and, when it parses, fed to one receiver's gap lists
 * as a data packet, a beacon or a DONE, at a clock advancing 50 ms a packet.
 *
 * Invariants checked (abort = finding):
 *  - a parsed trailer's ranges are well-formed (first <= last, not 0) and
 *    lie inside the packet;
 *  - a sender's missing ranges stay sorted, disjoint, below the next
 *    number expected and within REPAIR_MAX_MISSING;
 *  - a NAK never names more than it was given room for, and only ranges
 *    that were missing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../agent/repair.h"
#include "pfsync_wire.h"

#define STEP_NS 50000000ULL

static void check_peer(const struct repair_peer *p)
{
	if (p->nmissing > REPAIR_MAX_MISSING)
		abort();
	for (unsigned int i = 0; i < p->nmissing; i++) {
		const struct repair_range *r = &p->missing[i].r;

		if (r->first == 0 || r->first > r->last || r->last >= p->next)
			abort();
		if (i && r->first <= p->missing[i - 1].r.last)
			abort();
	}
}

static int was_missing(const struct repair_missing *before, unsigned int n,
		       const struct repair_range *r)
{
	for (unsigned int i = 0; i < n; i++)
		if (before[i].r.first == r->first && before[i].r.last == r->last)
			return 1;
	return 0;
}

static void feed(struct repair_rx *rx, const uint8_t *pkt, size_t len, __u64 now)
{
	static struct repair_missing before[REPAIR_MAX_MISSING];
	struct repair_range out[4];
	struct repair_trailer t;
	struct repair_peer *p;
	unsigned int n, nbefore;
	int all;

	if (repair_parse(pkt, len, &t) != 0)
		return;
	for (unsigned int i = 0; i < t.nranges; i++) {
		struct repair_range r = repair_range_at(&t, i);

		if (r.first == 0 || r.first > r.last || t.ranges + 8 * (i + 1) > pkt + len)
			abort();
	}
	p = repair_rx_seen(rx, t.hostid, t.session, t.seq, t.kind == REPAIR_DATA, now);
	if (!p)
		return;
	if (t.kind == REPAIR_DONE)
		repair_rx_done(p, &t);
	check_peer(p);
	nbefore = p->nmissing;
	memcpy(before, p->missing, nbefore * sizeof(before[0]));
	n = repair_rx_nak_due(p, now, out, 4, &all);
	if (n > 4)
		abort();
	for (unsigned int i = 0; i < n; i++)
		if (!was_missing(before, nbefore, &out[i]))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct repair_rx rx;
	__u64 now = STEP_NS;

	memset(&rx, 0, sizeof(rx));
	while (size > 1) {
		size_t len = (size_t)data[0] * 4;

		data++;
		size--;
		if (len > size)
			len = size;
		feed(&rx, data, len, now);
		data += len;
		size -= len;
		now += STEP_NS;
	}
	return 0;
}
