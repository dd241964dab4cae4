/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pfsync packet builder: messages are kept per action and laid out at
 * finish, one section per action, so the packet never exceeds the MTU
 * (pfsync-wire.md §1.4 sender rules, §1.1 MTU).
 */
#include <errno.h>
#include <stdlib.h>

#include "pfsync_wire.h"

#define BUILDER_MAX_MTU 65535

struct pfsync_builder {
	size_t limit; /* payload bytes allowed: mtu - IP header */
	size_t used;  /* pfsync header + subheaders + messages queued */
	size_t count; /* messages queued */
	size_t nmsgs[PFSYNC_ACT_MAX];
	__u8 bus_first_status;		/* status of the first BUS message queued */
	__u8 *sections[PFSYNC_ACT_MAX]; /* messages of each action, back to back */
};

static const __u8 order_before_bus_end[] = {
    PFSYNC_ACT_CLR, PFSYNC_ACT_INS_ACK, PFSYNC_ACT_UPD_C,   PFSYNC_ACT_DEL_C, PFSYNC_ACT_INS,
    PFSYNC_ACT_UPD, PFSYNC_ACT_DEL,	PFSYNC_ACT_UPD_REQ, PFSYNC_ACT_TDB,
};

/* actions we put on the wire: the ones with a handler */
static int sendable(unsigned int action)
{
	return pfsync_action_msg_size(action) != 0;
}

struct pfsync_builder *pfsync_builder_new(unsigned int mtu)
{
	struct pfsync_builder *b;
	size_t limit;

	if (mtu == 0)
		mtu = PFSYNC_DEFAULT_MTU;
	if (mtu > BUILDER_MAX_MTU)
		mtu = BUILDER_MAX_MTU;
	limit = mtu - PFSYNC_IP_HDRLEN;
	if (mtu < PFSYNC_IP_HDRLEN ||
	    limit < PFSYNC_HDRLEN + sizeof(struct pfsync_subheader) + sizeof(struct pfsync_state)) {
		errno = EINVAL;
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->limit = limit;
	for (unsigned int a = 0; a < PFSYNC_ACT_MAX; a++) {
		if (!sendable(a))
			continue;
		/* a section can never be larger than the packet */
		b->sections[a] = malloc(limit);
		if (!b->sections[a]) {
			pfsync_builder_free(b);
			errno = ENOMEM;
			return NULL;
		}
	}
	pfsync_builder_reset(b);
	return b;
}

void pfsync_builder_free(struct pfsync_builder *b)
{
	if (!b)
		return;
	for (unsigned int a = 0; a < PFSYNC_ACT_MAX; a++)
		free(b->sections[a]);
	free(b);
}

void pfsync_builder_reset(struct pfsync_builder *b)
{
	b->used = PFSYNC_HDRLEN;
	b->count = 0;
	b->bus_first_status = 0;
	memset(b->nmsgs, 0, sizeof(b->nmsgs));
}

int pfsync_builder_add(struct pfsync_builder *b, __u8 action, const void *msg)
{
	size_t size, need;

	if (!sendable(action))
		return -EINVAL;
	size = pfsync_action_msg_size(action);
	need = size + (b->nmsgs[action] ? 0 : sizeof(struct pfsync_subheader));
	/* the count field is 16 bits wide */
	if (b->used + need > b->limit || b->nmsgs[action] >= 0xffff)
		return -ENOSPC;
	if (action == PFSYNC_ACT_BUS && b->nmsgs[action] == 0)
		b->bus_first_status = ((const struct pfsync_bus *)msg)->status;
	memcpy(b->sections[action] + b->nmsgs[action] * size, msg, size);
	b->nmsgs[action]++;
	b->count++;
	b->used += need;
	return 0;
}

size_t pfsync_builder_count(const struct pfsync_builder *b)
{
	return b->count;
}

size_t pfsync_builder_bytes(const struct pfsync_builder *b)
{
	return b->count ? b->used : 0;
}

static size_t write_section(const struct pfsync_builder *b, unsigned int action, __u8 *out)
{
	size_t size = pfsync_action_msg_size(action);
	size_t n = b->nmsgs[action];
	struct pfsync_subheader sh;

	if (n == 0)
		return 0;
	sh.action = (__u8)action;
	sh.len = (__u8)(size / 4);
	pfsync_put_be16(&sh.count, (__u16)n);
	memcpy(out, &sh, sizeof(sh));
	memcpy(out + sizeof(sh), b->sections[action], n * size);
	return sizeof(sh) + n * size;
}

size_t pfsync_builder_finish(struct pfsync_builder *b, __u8 *out, size_t cap)
{
	int bus_first = b->bus_first_status == PFSYNC_BUS_START;
	struct pfsync_header hdr;
	size_t off = PFSYNC_HDRLEN;

	if (b->count == 0 || cap < b->used)
		return 0;
	memset(&hdr, 0, sizeof(hdr));
	hdr.version = PFSYNC_VERSION;
	pfsync_put_be16(&hdr.len, (__u16)b->used);
	memcpy(out, &hdr, sizeof(hdr));
	if (bus_first)
		off += write_section(b, PFSYNC_ACT_BUS, out + off);
	for (size_t i = 0; i < sizeof(order_before_bus_end); i++)
		off += write_section(b, order_before_bus_end[i], out + off);
	if (!bus_first)
		off += write_section(b, PFSYNC_ACT_BUS, out + off);
	pfsync_builder_reset(b);
	return off;
}
