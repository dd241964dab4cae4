/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pfsync v6 decoder with OpenBSD's receive checks, in OpenBSD's order
 * (pfsync-wire.md §1.2, §1.4, §3.3). No length in the packet is trusted:
 * every message is bounds-checked against the bytes present before a
 * callback sees it, and fields are only read with memcpy.
 */
#include <netinet/in.h>

#include "pfsync_wire.h"

#define IPV4_MIN_HDRLEN 20

/* per-message value checks; 0 = pass the message on */
static int message_ok(unsigned int action, const __u8 *msg)
{
	struct pfsync_state s;
	struct pfsync_upd_c u;

	switch (action) {
	case PFSYNC_ACT_INS:
	case PFSYNC_ACT_UPD:
		memcpy(&s, msg, sizeof(s));
		return pfsync_state_check(&s, action) == 0;
	case PFSYNC_ACT_UPD_C:
		memcpy(&u, msg, sizeof(u));
		return u.timeout < PFTM_MAX && u.src.state <= PF_TCPS_PROXY_DST &&
		       u.dst.state <= PF_TCPS_PROXY_DST;
	default:
		return 1;
	}
}

/* hands one message to its callback; the casts only name bytes already bounds-checked */
static void dispatch(unsigned int action, const __u8 *msg, const struct pfsync_decode_ops *ops,
		     void *ctx)
{
	switch (action) {
	case PFSYNC_ACT_CLR:
		if (ops->clr)
			ops->clr(ctx, (const struct pfsync_clr *)msg);
		break;
	case PFSYNC_ACT_INS_ACK:
		if (ops->ins_ack)
			ops->ins_ack(ctx, (const struct pfsync_ins_ack *)msg);
		break;
	case PFSYNC_ACT_UPD_C:
		if (ops->upd_c)
			ops->upd_c(ctx, (const struct pfsync_upd_c *)msg);
		break;
	case PFSYNC_ACT_UPD_REQ:
		if (ops->upd_req)
			ops->upd_req(ctx, (const struct pfsync_upd_req *)msg);
		break;
	case PFSYNC_ACT_DEL:
		if (ops->del)
			ops->del(ctx, (const struct pfsync_state *)msg);
		break;
	case PFSYNC_ACT_DEL_C:
		if (ops->del_c)
			ops->del_c(ctx, (const struct pfsync_del_c *)msg);
		break;
	case PFSYNC_ACT_BUS:
		if (ops->bus)
			ops->bus(ctx, (const struct pfsync_bus *)msg);
		break;
	case PFSYNC_ACT_INS:
		if (ops->ins)
			ops->ins(ctx, (const struct pfsync_state *)msg);
		break;
	case PFSYNC_ACT_UPD:
		if (ops->upd)
			ops->upd(ctx, (const struct pfsync_state *)msg);
		break;
	case PFSYNC_ACT_TDB:
		if (ops->tdb)
			ops->tdb(ctx, (const struct pfsync_tdb *)msg);
		break;
	}
}

static void process_section(unsigned int action, const __u8 *msgs, size_t stride, size_t count,
			    const struct pfsync_decode_ops *ops, void *ctx, struct pfsync_stats *st)
{
	for (size_t i = 0; i < count; i++) {
		const __u8 *msg = msgs + i * stride;

		if (!message_ok(action, msg)) {
			st->badval++;
			continue;
		}
		if (ops)
			dispatch(action, msg, ops, ctx);
	}
	st->iacts[action] += count;
}

static int decode_sections(const __u8 *p, size_t len, const struct pfsync_decode_ops *ops,
			   void *ctx, struct pfsync_stats *st)
{
	size_t off = PFSYNC_HDRLEN;

	while (off + sizeof(struct pfsync_subheader) <= len) {
		struct pfsync_subheader sh;
		size_t mlen, count, ours, total;

		memcpy(&sh, p + off, sizeof(sh));
		off += sizeof(sh);
		mlen = (size_t)sh.len * 4;
		count = pfsync_get_be16(&sh.count);
		ours = pfsync_action_msg_size(sh.action);
		total = mlen * count;
		/* unknown, handler-less or shorter than ours: skip if we can tell how far */
		if (ours == 0 || mlen < ours) {
			if (count == 0 || mlen == 0) {
				st->badact++;
				return -1;
			}
			off += total;
			continue;
		}
		if (total > len - off) {
			st->badlen++;
			return -1;
		}
		process_section(sh.action, p + off, mlen, count, ops, ctx, st);
		off += total;
	}
	return 0;
}

int pfsync_decode(const __u8 *payload, size_t len, const struct pfsync_decode_ops *ops, void *ctx,
		  struct pfsync_stats *st)
{
	struct pfsync_header hdr;
	size_t claimed;

	if (!payload || len < PFSYNC_HDRLEN) {
		st->hdrops++;
		return -1;
	}
	memcpy(&hdr, payload, sizeof(hdr));
	if (hdr.version != PFSYNC_VERSION) {
		st->badver++;
		return -1;
	}
	claimed = pfsync_get_be16(&hdr.len);
	if (claimed > len) {
		st->badlen++;
		return -1;
	}
	/* trailing bytes beyond the announced length are ignored (trimmed) */
	return decode_sections(payload, claimed, ops, ctx, st);
}

int pfsync_input_ipv4(const __u8 *ip, size_t len, const struct pfsync_decode_ops *ops, void *ctx,
		      struct pfsync_stats *st)
{
	size_t ihl, total;

	st->ipackets++;
	if (!ip || len < IPV4_MIN_HDRLEN || (ip[0] >> 4) != 4) {
		st->hdrops++;
		return -1;
	}
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	total = pfsync_get_be16(ip + 2);
	if (ihl < IPV4_MIN_HDRLEN || ihl > len || total < ihl || ip[9] != IPPROTO_PFSYNC) {
		st->hdrops++;
		return -1;
	}
	if (ip[8] != PFSYNC_DFLTTL) {
		st->badttl++;
		return -1;
	}
	/* the stack trims to the IP total length; bytes missing show up as badlen below */
	if (total < len)
		len = total;
	return pfsync_decode(ip + ihl, len - ihl, ops, ctx, st);
}
