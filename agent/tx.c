/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Transmit: one pfsync payload numbered (repair), signed (auth) and sent to
 * every peer, copied to pfsync0; and the send queue's callbacks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "agent.h"
#include "auth.h"

/* "INS 3 UPD_C 2" for debug lines */
const char *agent_acts_summary(const unsigned int *acts, char *buf, size_t cap)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < PFSYNC_ACT_MAX && used < cap; i++) {
		int n;

		if (!acts[i])
			continue;
		n = snprintf(buf + used, cap - used, "%s%s %u", used ? ", " : "",
			     pfsync_action_label(i), acts[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return buf;
}

/* the IPv4 destination of pfsync0's copy: the first IPv4 peer, else the group */
static __u32 capture_dst(const struct sync_sock *s)
{
	for (unsigned int i = 0; i < s->nconfigured; i++)
		if (s->peers[i].addr.sa.sa_family == AF_INET)
			return s->peers[i].addr.sin.sin_addr.s_addr;
	return htonl(PFSYNC_GROUP_ADDR);
}

/*
 * Appends the repair trailer (rlen may be 0), signs (when a key is set) and
 * sends to every peer; counts per family.
 */
static int transmit(struct agent *a, const __u8 *payload, size_t len, const __u8 *rtrailer,
		    size_t rlen)
{
	__u8 trailer[AUTH_TRAILER_LEN];
	size_t tlen = 0;
	struct sync_tx tx;
	int rc;

	if (rlen) {
		/* the MAC covers both: one buffer */
		memcpy(a->txbuf, payload, len);
		memcpy(a->txbuf + len, rtrailer, rlen);
		payload = a->txbuf;
		len += rlen;
	}
	if (a->sock.auth) {
		if (auth_sign(a->sock.auth, a->hostid, agent_wall_seconds(), payload, len,
			      trailer)) {
			a->stats.oerrors++;
			return -EIO;
		}
		tlen = sizeof(trailer);
	}
	rc = sync_sock_send(&a->sock, payload, len, trailer, tlen, &tx);
	a->stats.opackets += tx.sent4;
	a->stats.opackets6 += tx.sent6;
	a->stats.onomem += tx.nomem;
	a->stats.oerrors += tx.errors;
	if (tx.nomem + tx.errors)
		log_debug("send to %u of the peers failed: %s", tx.nomem + tx.errors,
			  strerror(-tx.err));
	return rc;
}

int agent_send_control(struct agent *a, const __u8 *trailer, size_t tlen)
{
	__u8 hdr[PFSYNC_HDRLEN] = {PFSYNC_VERSION};

	pfsync_put_be16(hdr + 2, PFSYNC_HDRLEN);
	if (a->xmit)
		return a->xmit(a, hdr, sizeof(hdr));
	return transmit(a, hdr, sizeof(hdr), trailer, tlen);
}

int agent_send_payload(struct agent *a, const __u8 *payload, size_t len, const unsigned int *acts)
{
	__u8 rtrailer[REPAIR_HDR_LEN];
	int rc;

	if (a->xmit) {
		rc = a->xmit(a, payload, len);
		if (rc == 0)
			a->stats.opackets++;
		else if (rc == -ENOBUFS || rc == -ENOMEM)
			a->stats.onomem++;
		else
			a->stats.oerrors++;
	} else {
		rc = transmit(a, payload, len, rtrailer,
			      agent_repair_data_trailer(a, payload, len, rtrailer));
	}
	if (rc) {
		log_debug("send to the peers failed: %s", strerror(-rc));
		return rc;
	}
	for (unsigned int i = 0; i < PFSYNC_ACT_MAX; i++)
		a->stats.oacts[i] += acts[i];
	if (agent_log_level >= LOG_LVL_DEBUG) {
		char summary[256];

		log_debug("sent %zu bytes: %s", len,
			  agent_acts_summary(acts, summary, sizeof(summary)));
	}
	tun_write_payload(&a->tun, a->sock.src, capture_dst(&a->sock), payload, len);
	return 0;
}

int agent_send_msgs(struct agent *a, __u8 action, const void *msgs, unsigned int n)
{
	size_t size = pfsync_action_msg_size(action);
	unsigned int acts[PFSYNC_ACT_MAX] = {0};
	int rc = 0;

	pfsync_builder_reset(a->builder);
	for (unsigned int i = 0; i < n; i++) {
		const __u8 *msg = (const __u8 *)msgs + i * size;

		if (pfsync_builder_add(a->builder, action, msg) == -ENOSPC) {
			size_t len = pfsync_builder_finish(a->builder, a->pkt, a->sock.mtu);

			rc = rc ?: agent_send_payload(a, a->pkt, len, acts);
			acts[action] = 0;
			if (pfsync_builder_add(a->builder, action, msg) != 0)
				continue;
		}
		acts[action]++;
	}
	if (pfsync_builder_count(a->builder)) {
		size_t len = pfsync_builder_finish(a->builder, a->pkt, a->sock.mtu);

		rc = rc ?: agent_send_payload(a, a->pkt, len, acts);
	}
	return rc;
}

static int io_lookup(void *ctx, const struct pfsync_key *k, struct pfsync_state_value *v)
{
	struct agent *a = ctx;

	return a->store.lookup(a->store.ctx, k, v);
}

static void io_unqueue(void *ctx, const struct pfsync_key *keys, unsigned int n)
{
	struct agent *a = ctx;
	struct pfsync_unqueue_args args = {.count = n};

	memcpy(args.keys, keys, n * sizeof(*keys));
	if (a->store.unqueue(a->store.ctx, &args) != 0)
		log_debug("unqueue of %u states failed", n);
}

static int io_fetch(void *ctx, const struct pfsync_key *keys, unsigned int n,
		    struct pfsync_state_value *vals, int *rc)
{
	struct agent *a = ctx;

	if (!a->store.fetch)
		return -EOPNOTSUPP;
	return a->store.fetch(a->store.ctx, keys, n, vals, rc);
}

static int io_send(void *ctx, const __u8 *payload, size_t len, const unsigned int *acts)
{
	return agent_send_payload(ctx, payload, len, acts);
}

void agent_bind_sendq_io(struct agent *a)
{
	memset(&a->sendq_io, 0, sizeof(a->sendq_io));
	a->sendq_io.ctx = a;
	a->sendq_io.lookup = io_lookup;
	a->sendq_io.unqueue = io_unqueue;
	a->sendq_io.fetch = io_fetch;
	a->sendq_io.send = io_send;
}

void agent_flush_sendq(struct agent *a)
{
	enum sendq_mode mode = sendq_decide(&a->sendq, a->now_ns);

	if (mode == SENDQ_IDLE)
		return;
	a->sendq_io.cfg = &a->cfg;
	a->sendq_io.states_count = a->states_count;
	sendq_flush(&a->sendq, a->now_ns, mode, &a->sendq_io);
}
