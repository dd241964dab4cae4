/* SPDX-License-Identifier: BSD-2-Clause */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "agent.h"
#include "pfsync_wire.h"
#include "sock.h"

#define SYNC_RCVBUF (32 << 20) /* a bulk update arrives faster than one wake-up drains */
#define SYNC_SNDBUF (8 << 20)

static int set_int(int fd, int level, int opt, int val, const char *what)
{
	if (setsockopt(fd, level, opt, &val, sizeof(val)) == 0)
		return 0;
	log_err("setsockopt %s: %s", what, strerror(errno));
	return -errno;
}

static int if_query(const char *ifname, unsigned long req, struct ifreq *ifr)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -errno;
	memset(ifr, 0, sizeof(*ifr));
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", ifname);
	rc = ioctl(fd, req, ifr) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

static int parse_peer(struct sync_sock *s, const char *peer)
{
	struct in_addr a;

	if (!peer || !*peer) {
		a.s_addr = htonl(PFSYNC_GROUP_ADDR);
	} else if (inet_pton(AF_INET, peer, &a) != 1) {
		log_err("--syncpeer %s: not an IPv4 address", peer);
		return -EINVAL;
	}
	if (a.s_addr == htonl(INADDR_ANY))
		a.s_addr = htonl(PFSYNC_GROUP_ADDR);
	if (a.s_addr == htonl(INADDR_BROADCAST)) {
		log_err("--syncpeer 255.255.255.255 is not allowed (as OpenBSD: EDESTADDRREQ)");
		return -EINVAL;
	}
	s->peer = a.s_addr;
	s->multicast = IN_MULTICAST(ntohl(a.s_addr));
	return 0;
}

static int read_link(struct sync_sock *s, const char *ifname)
{
	struct ifreq ifr;
	int rc;

	snprintf(s->ifname, sizeof(s->ifname), "%s", ifname);
	s->ifindex = if_nametoindex(ifname);
	if (!s->ifindex) {
		log_err("--syncdev %s: no such interface", ifname);
		return -ENODEV;
	}
	rc = if_query(ifname, SIOCGIFMTU, &ifr);
	if (rc) {
		log_err("SIOCGIFMTU %s: %s", ifname, strerror(-rc));
		return rc;
	}
	s->mtu = ifr.ifr_mtu;
	if (if_query(ifname, SIOCGIFADDR, &ifr) == 0)
		s->src = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr;
	return 0;
}

static int join_group(const struct sync_sock *s)
{
	struct ip_mreqn mreq = {.imr_ifindex = s->ifindex};

	mreq.imr_multiaddr.s_addr = htonl(PFSYNC_GROUP_ADDR);
	if (setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof(mreq)) != 0 ||
	    setsockopt(s->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) != 0) {
		log_err("joining 224.0.0.240 on %s: %s", s->ifname, strerror(errno));
		return -errno;
	}
	return 0;
}

static int configure(struct sync_sock *s)
{
	int rc = 0;

	if (setsockopt(s->fd, SOL_SOCKET, SO_BINDTODEVICE, s->ifname, strlen(s->ifname)) != 0) {
		log_err("SO_BINDTODEVICE %s: %s", s->ifname, strerror(errno));
		return -errno;
	}
	rc = rc ?: set_int(s->fd, IPPROTO_IP, IP_TTL, PFSYNC_DFLTTL, "IP_TTL");
	rc = rc ?: set_int(s->fd, IPPROTO_IP, IP_MULTICAST_TTL, PFSYNC_DFLTTL, "IP_MULTICAST_TTL");
	rc = rc ?: set_int(s->fd, IPPROTO_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP");
	rc = rc ?: set_int(s->fd, IPPROTO_IP, IP_TOS, PFSYNC_IPTOS, "IP_TOS");
	rc = rc ?: set_int(s->fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO, "IP_MTU_DISCOVER");
	rc = rc ?: set_int(s->fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
	rc = rc ?: set_int(s->fd, SOL_SOCKET, SO_RXQ_OVFL, 1, "SO_RXQ_OVFL");
	if (rc)
		return rc;
	/* sends block (briefly) on a full buffer rather than lose a packet */
	setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &(struct timeval){.tv_usec = 200000},
		   sizeof(struct timeval));
	/* larger buffers are a best effort: FORCE needs CAP_NET_ADMIN */
	if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){SYNC_RCVBUF}, sizeof(int)))
		setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &(int){SYNC_RCVBUF}, sizeof(int));
	if (setsockopt(s->fd, SOL_SOCKET, SO_SNDBUFFORCE, &(int){SYNC_SNDBUF}, sizeof(int)))
		setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &(int){SYNC_SNDBUF}, sizeof(int));
	/* the group is joined on the syncdev even for unicast, so a peer left on
	 * the default group is still heard (and counted if it is not wanted) */
	return join_group(s);
}

int sync_sock_open(struct sync_sock *s, const char *ifname, const char *peer)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	rc = parse_peer(s, peer);
	rc = rc ?: read_link(s, ifname);
	if (rc)
		return rc;
	s->fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_PFSYNC);
	if (s->fd < 0) {
		rc = -errno;
		log_err("raw socket for protocol %d: %s", IPPROTO_PFSYNC, strerror(errno));
		return rc;
	}
	rc = configure(s);
	if (rc) {
		sync_sock_close(s);
		return rc;
	}
	return 0;
}

void sync_sock_close(struct sync_sock *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

int sync_sock_send(const struct sync_sock *s, const void *payload, size_t len)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = s->peer};
	ssize_t n = sendto(s->fd, payload, len, 0, (struct sockaddr *)&to, sizeof(to));

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

ssize_t sync_sock_recv(struct sync_sock *s, void *buf, size_t cap, int *ifindex)
{
	char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(__u32))];
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	struct msghdr msg = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cbuf,
	    .msg_controllen = sizeof(cbuf),
	};
	ssize_t n = recvmsg(s->fd, &msg, MSG_DONTWAIT);

	if (n < 0)
		return -errno;
	*ifindex = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			*ifindex = pi.ipi_ifindex;
		} else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
			__u32 dropped;

			memcpy(&dropped, CMSG_DATA(c), sizeof(dropped));
			s->rx_dropped = dropped;
		}
	}
	/* a truncated datagram is reported at its real length: the decoder sees only cap */
	if (msg.msg_flags & MSG_TRUNC)
		n = (ssize_t)cap;
	return n;
}

const char *sync_sock_peer_str(const struct sync_sock *s, char *buf, size_t cap)
{
	struct in_addr a = {.s_addr = s->peer};

	return inet_ntop(AF_INET, &a, buf, cap) ? buf : "?";
}

/* ---- the agent's side ---------------------------------------------------- */
/* "INS 3 UPD_C 2" for debug lines */
static const char *acts_summary(const unsigned int *acts, char *buf, size_t cap)
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
int agent_send_payload(struct agent *a, const __u8 *payload, size_t len, const unsigned int *acts)
{
	int rc = a->xmit ? a->xmit(a, payload, len) : sync_sock_send(&a->sock, payload, len);

	if (rc) {
		if (rc == -ENOBUFS || rc == -ENOMEM)
			a->stats.onomem++;
		else
			a->stats.oerrors++;
		log_debug("send to the peer failed: %s", strerror(-rc));
		return rc;
	}
	a->stats.opackets++;
	for (unsigned int i = 0; i < PFSYNC_ACT_MAX; i++)
		a->stats.oacts[i] += acts[i];
	if (agent_log_level >= LOG_LVL_DEBUG) {
		char summary[256];

		log_debug("sent %zu bytes: %s", len, acts_summary(acts, summary, sizeof(summary)));
	}
	tun_write_payload(&a->tun, a->sock.src, a->sock.peer, payload, len);
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

/* the kernel dropped pfsync packets (receive buffer full): a bulk update in
 * flight is incomplete, so it is asked again once it ends */
static void note_rx_drops(struct agent *a)
{
	log_info("%u pfsync packets dropped by the kernel (receive buffer full)",
		 a->sock.rx_dropped - a->rx_dropped_seen);
	a->rx_dropped_seen = a->sock.rx_dropped;
	if (a->bulk_req.state == BULK_REQ_REQUESTED || a->bulk_req.state == BULK_REQ_IN_PROGRESS)
		a->bulk_lossy = 1;
}

int agent_receive(struct agent *a, unsigned int max)
{
	unsigned int got = 0;

	while (got < max) {
		int ifindex;
		ssize_t n = sync_sock_recv(&a->sock, a->rxbuf, AGENT_RXBUF, &ifindex);

		if (n < 0) {
			if (n != -EAGAIN && n != -EINTR)
				log_debug("receive: %s", strerror((int)-n));
			break;
		}
		got++;
		if (a->sock.rx_dropped != a->rx_dropped_seen)
			note_rx_drops(a);
		if (agent_log_level >= LOG_LVL_DEBUG) {
			unsigned int before[PFSYNC_ACT_MAX], acts[PFSYNC_ACT_MAX];
			char summary[256];

			for (unsigned int i = 0; i < PFSYNC_ACT_MAX; i++)
				before[i] = (unsigned int)a->stats.iacts[i];
			apply_packet(a, a->rxbuf, (size_t)n, ifindex);
			for (unsigned int i = 0; i < PFSYNC_ACT_MAX; i++)
				acts[i] = (unsigned int)a->stats.iacts[i] - before[i];
			log_debug("received %zd bytes: %s", n,
				  acts_summary(acts, summary, sizeof(summary)));
			continue;
		}
		apply_packet(a, a->rxbuf, (size_t)n, ifindex);
	}
	return got;
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
