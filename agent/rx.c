/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Receive: packets read from the sync sockets pass the transport's checks
 * here, then go on in a fixed order: apply.c (decode and apply), the sender
 * marked heard, repair_io.c (the repair trailer).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <string.h>

#include "agent.h"
#include "auth.h"
#include "cksum.h"

/*
 * The kernel dropped pfsync packets (receive buffer full). A bulk update in
 * flight is incomplete, so it is asked again once it ends. Outside one, the
 * lost inserts and updates would stay missing (pfsync has no sequence
 * numbers, and a quiet state is never sent again): a bulk update is asked
 * once no drop was seen for BULK_RESYNC_QUIET_NS (bulk_tick), so that a
 * storm of drops costs one bulk update after it, not one each.
 */
void agent_note_rx_drops(struct agent *a)
{
	log_peer(LOG_LVL_WARN, "%u pfsync packets dropped by the kernel (receive buffer full)",
		 a->sock.rx_dropped - a->rx_dropped_seen);
	a->rx_dropped_seen = a->sock.rx_dropped;
	if (bulk_req_busy(&a->bulk_req))
		a->bulk_lossy = 1;
	else
		a->resync_due_ns = a->now_ns + BULK_RESYNC_QUIET_NS;
}

/*
 * The transport's own checks, before the decoder's (which are OpenBSD's):
 * the source must be a peer when peers are unicast; the TTL / hop limit
 * 255, or at least --min-ttl for an authenticated packet; and with a key,
 * the trailer must be authentic and new. A packet failing any is counted
 * (in ipackets or ipackets6, and why) and nothing in it is applied.
 */
static int transport_accept(struct agent *a, const struct sync_rx *rx, const __u8 *payload,
			    size_t len, __u64 *received)
{
	struct sync_sock *s = &a->sock;
	struct sync_peer *p = sync_sock_find_peer(s, &rx->from);
	char from[SYNC_ADDRSTRLEN];
	enum auth_verdict v;
	__u32 sender;

	if (!p && !s->multicast) {
		(*received)++;
		s->badsrc++;
		log_peer(LOG_LVL_WARN, "pfsync packet from %s dropped: not a --syncpeer",
			 sync_addr_str(&rx->from, from, sizeof(from)));
		return 0;
	}
	if (rx->hops != PFSYNC_DFLTTL && (!s->auth || rx->hops < (int)s->min_ttl)) {
		(*received)++;
		a->stats.badttl++;
		return 0;
	}
	if (s->auth) {
		v = auth_verify(s->auth, agent_wall_seconds(), payload, len, &sender);
		if (v != AUTH_OK) {
			(*received)++;
			a->stats.badauth++;
			if (p)
				p->badauth++;
			log_peer(LOG_LVL_WARN, "pfsync packet from %s dropped: %s",
				 sync_addr_str(&rx->from, from, sizeof(from)),
				 auth_verdict_name(v));
			return 0;
		}
	}
	return 1;
}

/*
 * A packet that passed the transport's checks and the decoder's: only now
 * is its sender heard, and learned on a group. Learning any source that
 * reached the socket let forged junk fill the peer table.
 */
static void sender_heard(struct agent *a, const union sync_addr *from)
{
	struct sync_peer *p = sync_sock_find_peer(&a->sock, from);

	if (!p)
		p = sync_sock_learn_peer(&a->sock, from);
	if (!p)
		return;
	p->ipackets++;
	p->last_heard_ns = a->now_ns;
}

/* a TTL accepted under --min-ttl is shown to the decoder as 255 */
static void normalise_ttl(__u8 *ip, size_t ihl)
{
	__u16 check;

	ip[8] = PFSYNC_DFLTTL;
	ip[10] = ip[11] = 0;
	check = cksum_header(ip, ihl);
	ip[10] = (__u8)(check >> 8);
	ip[11] = (__u8)check;
}

/*
 * One of our own packets, come back: on lo a multicast returns to us
 * whatever IP_MULTICAST_LOOP says. It is counted and never applied: an
 * update of ours, older than the live state by the time it returns, would
 * be merged over it, and pf's rule takes a half whose seqlo equals ours,
 * so it moved a window edge back and stalled the connection for good.
 * Known exactly by the repair trailer (our hostid and session): another
 * agent's trailer is never ours, even from our address (two agents on one
 * host's lo). Without one (--no-repair) by the IPv4 source ours leave
 * with; over IPv6 (saddr4 NULL) only the trailer tells.
 */
static int own_packet(struct agent *a, const __u32 *saddr4, const __u8 *payload, size_t len)
{
	int ours = agent_repair_sender_is_us(a, payload, len);

	if (ours < 0)
		ours = saddr4 && sync_sock_is_own_src(&a->sock, *saddr4);
	if (!ours)
		return 0;
	a->stats.looped++;
	return 1;
}

static void receive4(struct agent *a, size_t n, struct sync_rx *rx)
{
	__u8 *ip = a->rxbuf;
	size_t ihl, total, payload_len;

	if (n < sizeof(struct iphdr) || (ip[0] >> 4) != 4)
		goto decoder; /* the decoder counts what is wrong */
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	total = pfsync_get_be16(ip + 2);
	if (ihl < sizeof(struct iphdr) || ihl > n || total < ihl)
		goto decoder;
	if (rx->ifindex && rx->ifindex != a->sock.ifindex)
		goto decoder; /* it counts the bad interface */
	payload_len = (total < n ? total : n) - ihl;
	if (own_packet(a, &rx->from.sin.sin_addr.s_addr, ip + ihl, payload_len))
		return;
	rx->hops = ip[8];
	if (!transport_accept(a, rx, ip + ihl, payload_len, &a->stats.ipackets))
		return;
	if (ip[8] != PFSYNC_DFLTTL)
		normalise_ttl(ip, ihl);
	if (apply_packet(a, ip, n, rx->ifindex) == 0)
		sender_heard(a, &rx->from);
	agent_repair_on_packet(a, ip + ihl, payload_len);
	return;
decoder:
	apply_packet(a, ip, n, rx->ifindex);
}

/*
 * The decoder reads IPv4 packets: an IPv6 one is handed over behind an
 * IPv4 header of its own (TTL 255, addresses 0), then counted as IPv6.
 */
static void receive6(struct agent *a, size_t n, struct sync_rx *rx)
{
	__u8 *payload = a->rxbuf + sizeof(struct iphdr);
	struct iphdr ip = {
	    .version = 4,
	    .ihl = 5,
	    .tot_len = htons((__u16)(n + sizeof(ip))),
	    .ttl = PFSYNC_DFLTTL,
	    .protocol = IPPROTO_PFSYNC,
	};
	int valid;

	if (rx->ifindex && rx->ifindex != a->sock.ifindex) {
		a->stats.ipackets6++;
		a->stats.badif++;
		return;
	}
	if (own_packet(a, NULL, payload, n))
		return;
	if (!transport_accept(a, rx, payload, n, &a->stats.ipackets6))
		return;
	memcpy(a->rxbuf, &ip, sizeof(ip));
	valid = apply_packet(a, a->rxbuf, n + sizeof(ip), rx->ifindex) == 0;
	a->stats.ipackets--;
	a->stats.ipackets6++;
	if (valid)
		sender_heard(a, &rx->from);
	agent_repair_on_packet(a, payload, n);
}

static void receive_one(struct agent *a, int v6, size_t n, struct sync_rx *rx)
{
	unsigned int before[PFSYNC_ACT_MAX], acts[PFSYNC_ACT_MAX];
	char summary[256];

	if (agent_log_level < LOG_LVL_DEBUG) {
		if (v6)
			receive6(a, n, rx);
		else
			receive4(a, n, rx);
		return;
	}
	for (unsigned int i = 0; i < PFSYNC_ACT_MAX; i++)
		before[i] = (unsigned int)a->stats.iacts[i];
	if (v6)
		receive6(a, n, rx);
	else
		receive4(a, n, rx);
	for (unsigned int i = 0; i < PFSYNC_ACT_MAX; i++)
		acts[i] = (unsigned int)a->stats.iacts[i] - before[i];
	log_debug("received %zu bytes%s: %s", n, v6 ? " (IPv6)" : "",
		  agent_acts_summary(acts, summary, sizeof(summary)));
}

static unsigned int receive_from(struct agent *a, int v6, unsigned int max)
{
	/* IPv6 payloads land after room for the IPv4 header the decoder wants */
	size_t room = v6 ? sizeof(struct iphdr) : 0;
	unsigned int got = 0;
	struct sync_rx rx;

	while (got < max) {
		ssize_t n = sync_sock_recv(&a->sock, v6, a->rxbuf + room, AGENT_RXBUF - room, &rx);

		if (n < 0) {
			if (n != -EAGAIN && n != -EINTR)
				log_debug("receive: %s", strerror((int)-n));
			break;
		}
		got++;
		if (a->sock.rx_dropped != a->rx_dropped_seen)
			agent_note_rx_drops(a);
		receive_one(a, v6, (size_t)n, &rx);
	}
	return got;
}

int agent_receive(struct agent *a, unsigned int max)
{
	unsigned int got = receive_from(a, 0, max);

	if (a->sock.has6)
		got += receive_from(a, 1, max);
	return (int)got;
}
