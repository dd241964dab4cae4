/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The printers' own walker over one pfsync payload (pfsync_walk.h), and
 * the words both printers use.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>

#include "pfsync_walk.h"
#include "pfsync_wire.h"

/*
 * Messages are read at the announced stride when it is at least our size
 * (like the receiver); a shorter announced size is read at our size, as
 * OpenBSD's tcpdump does (it ignores the subheader length altogether).
 */
static size_t section_stride(unsigned int action, __u8 len_words)
{
	size_t ours = pfsync_action_msg_size(action);
	size_t announced = (size_t)len_words * 4;

	return announced > ours ? announced : ours;
}

/* 1 = keep walking, 0 = the section ended the packet (error already reported) */
static int walk_section(const __u8 *p, size_t *off, long *plen, long *left,
			const struct walk_ops *ops, void *ctx)
{
	struct pfsync_subheader sh;
	unsigned int count;
	size_t stride;

	memcpy(&sh, p + *off, sizeof(sh));
	*off += sizeof(sh);
	*left -= sizeof(sh);
	*plen -= sizeof(sh);
	if (sh.action >= PFSYNC_ACT_MAX) {
		ops->error(ctx, WALK_UNKNOWN_ACT, sh.action);
		return 0;
	}
	count = pfsync_get_be16(&sh.count);
	stride = section_stride(sh.action, sh.len);
	ops->section(ctx, sh.action, count, stride);
	if (pfsync_action_msg_size(sh.action) == 0) {
		/* EOF ends the packet quietly once it has a message, others are errors */
		if (sh.action != PFSYNC_ACT_EOF) {
			ops->error(ctx, WALK_UNIMPLEMENTED, sh.action);
			return 0;
		}
		return count == 0;
	}
	for (unsigned int i = 0; i < count; i++) {
		if (*left < (long)stride) {
			*left = 0; /* truncated: the rest of the packet is unusable */
			break;
		}
		ops->message(ctx, sh.action, p + *off);
		*off += stride;
		*left -= stride;
		*plen -= stride;
	}
	return 1;
}

void pfsync_walk(const __u8 *p, size_t len, const struct walk_ops *ops, void *ctx)
{
	unsigned int version;
	size_t off = PFSYNC_HDRLEN;
	long plen, left;

	if (!p || len < PFSYNC_HDRLEN) {
		ops->error(ctx, WALK_SHORT, 0);
		return;
	}
	version = p[0];
	plen = pfsync_get_be16(p + 2);
	ops->header(ctx, p, version, (unsigned int)plen);
	if (version != PFSYNC_VERSION)
		return;
	plen -= PFSYNC_HDRLEN;
	left = (long)(len - PFSYNC_HDRLEN);
	while (plen > 0 && left >= (long)sizeof(struct pfsync_subheader)) {
		if (!walk_section(p, &off, &plen, &left, ops, ctx))
			return;
	}
	if (plen > 0)
		ops->error(ctx, WALK_TRAILING, 0);
	else if (plen < 0)
		ops->error(ctx, WALK_BAD_HDRLEN, 0);
	else if (left > 0)
		ops->error(ctx, WALK_BAD_PKTLEN, 0);
}

/* BSD wire af -> host af; 0 when neither inet nor inet6 */
static int host_af(unsigned int wire_af)
{
	if (wire_af == PFSYNC_WIRE_AF_INET)
		return AF_INET;
	if (wire_af == PFSYNC_WIRE_AF_INET6)
		return AF_INET6;
	return 0;
}

/* address text for a wire af; unknown families print as 32 hex digits */
void pfsync_format_addr(char *buf, size_t cap, const __u8 addr[16], unsigned int wire_af)
{
	int af = host_af(wire_af);

	if (af && inet_ntop(af, addr, buf, (socklen_t)cap))
		return;
	for (size_t i = 0; i < 16 && 2 * i + 2 < cap; i++)
		snprintf(buf + 2 * i, cap - 2 * i, "%02x", addr[i]);
}

const char *pfsync_bus_status_name(unsigned int status)
{
	if (status == PFSYNC_BUS_START)
		return "start";
	if (status == PFSYNC_BUS_END)
		return "end";
	return "UNKNOWN";
}

const char *pfsync_walk_error_word(enum walk_error err)
{
	switch (err) {
	case WALK_SHORT:
		return "[|pfsync]";
	case WALK_TRAILING:
		return "...";
	case WALK_BAD_HDRLEN:
		return "invalid header length";
	case WALK_BAD_PKTLEN:
		return "invalid packet length";
	case WALK_UNKNOWN_ACT:
		return "act UNKNOWN id";
	case WALK_UNIMPLEMENTED:
		return "unimplemented action";
	}
	return "?";
}
