/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The sync sockets (transport.h), and the agent's side of opening them:
 * the --auth-key files loaded first, the room their trailers take.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "auth.h"
#include "peers.h"
#include "transport.h"

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

const char *sync_sock_transport(const struct sync_sock *s, char *buf, size_t cap)
{
	int v4 = 0, v6 = 0;

	for (unsigned int i = 0; i < s->nconfigured; i++) {
		v4 |= s->peers[i].addr.sa.sa_family == AF_INET;
		v6 |= s->peers[i].addr.sa.sa_family == AF_INET6;
	}
	snprintf(buf, cap, "%s %s",
		 v4 && v6 ? "IPv4+IPv6"
		 : v6	  ? "IPv6"
			  : "IPv4",
		 s->multicast ? "multicast" : "unicast");
	return buf;
}

/* ---- sockets --------------------------------------------------------------- */
/*
 * The source address the kernel picks for our packets to the group on the
 * syncdev: what a UDP socket connected there is given, by the same route
 * lookup our raw socket's sends take. It is not always the syncdev's own
 * address: lo's 127.0.0.1 has host scope, so a packet for the group leaves
 * lo with another interface's address (0.0.0.0 if there is none), and
 * comes back to us with it.
 */
static void learn_group_source(struct sync_sock *s)
{
	/* any port: connecting a UDP socket sends nothing */
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	struct ip_mreqn mreq = {.imr_ifindex = s->ifindex};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	to.sin_addr.s_addr = htonl(PFSYNC_GROUP_ADDR);
	if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof(mreq)) == 0 &&
	    connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&me, &len) == 0) {
		s->group_src = me.sin_addr.s_addr;
		s->group_src_known = 1;
	}
	close(fd);
}

int sync_sock_is_own_src(const struct sync_sock *s, __u32 saddr)
{
	return (saddr && saddr == s->src) || (s->group_src_known && saddr == s->group_src);
}

static int read_link(struct sync_sock *s, const char *ifname)
{
	struct ifreq ifr;
	int rc;

	snprintf(s->ifname, sizeof(s->ifname), "%s", ifname);
	s->ifindex = (int)if_nametoindex(ifname);
	if (!s->ifindex) {
		log_err("--syncdev %s: no such interface", ifname);
		return -ENODEV;
	}
	rc = if_query(ifname, SIOCGIFMTU, &ifr);
	if (rc) {
		log_err("SIOCGIFMTU %s: %s", ifname, strerror(-rc));
		return rc;
	}
	s->link_mtu = s->mtu = (unsigned int)ifr.ifr_mtu;
	if (if_query(ifname, SIOCGIFADDR, &ifr) == 0)
		s->src = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr;
	learn_group_source(s);
	return 0;
}

static int join_group4(const struct sync_sock *s, struct in_addr group)
{
	struct ip_mreqn mreq = {.imr_ifindex = s->ifindex, .imr_multiaddr = group};
	char text[SYNC_ADDRSTRLEN];

	if (setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof(mreq)) != 0 ||
	    setsockopt(s->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) != 0) {
		log_err("joining %s on %s: %s", inet_ntop(AF_INET, &group, text, sizeof(text)),
			s->ifname, strerror(errno));
		return -errno;
	}
	return 0;
}

static int join_group6(const struct sync_sock *s, const struct in6_addr *group)
{
	struct ipv6_mreq mreq = {.ipv6mr_multiaddr = *group, .ipv6mr_interface = s->ifindex};
	char text[SYNC_ADDRSTRLEN];

	if (setsockopt(s->fd6, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mreq, sizeof(mreq)) != 0) {
		log_err("joining %s on %s: %s", inet_ntop(AF_INET6, group, text, sizeof(text)),
			s->ifname, strerror(errno));
		return -errno;
	}
	return 0;
}

static void set_buffers(int fd)
{
	/* sends block (briefly) on a full buffer rather than lose a packet */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &(struct timeval){.tv_usec = 200000},
		   sizeof(struct timeval));
	/* larger buffers are a best effort: FORCE needs CAP_NET_ADMIN */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){SYNC_RCVBUF}, sizeof(int)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){SYNC_RCVBUF}, sizeof(int));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &(int){SYNC_SNDBUF}, sizeof(int)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){SYNC_SNDBUF}, sizeof(int));
}

static int open_raw(struct sync_sock *s, int family, int *fd)
{
	*fd = socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_PFSYNC);
	if (*fd < 0) {
		log_err("raw %s socket for protocol %d: %s", family == AF_INET ? "IPv4" : "IPv6",
			IPPROTO_PFSYNC, strerror(errno));
		return -errno;
	}
	if (setsockopt(*fd, SOL_SOCKET, SO_BINDTODEVICE, s->ifname, strlen(s->ifname)) != 0) {
		log_err("SO_BINDTODEVICE %s: %s", s->ifname, strerror(errno));
		return -errno;
	}
	set_buffers(*fd);
	return set_int(*fd, SOL_SOCKET, SO_RXQ_OVFL, 1, "SO_RXQ_OVFL");
}

static int configure4(struct sync_sock *s)
{
	int rc = open_raw(s, AF_INET, &s->fd);

	rc = rc ?: set_int(s->fd, IPPROTO_IP, IP_TTL, PFSYNC_DFLTTL, "IP_TTL");
	rc = rc ?: set_int(s->fd, IPPROTO_IP, IP_MULTICAST_TTL, PFSYNC_DFLTTL, "IP_MULTICAST_TTL");
	rc = rc ?: set_int(s->fd, IPPROTO_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP");
	rc = rc ?: set_int(s->fd, IPPROTO_IP, IP_TOS, PFSYNC_IPTOS, "IP_TOS");
	rc = rc ?: set_int(s->fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO, "IP_MTU_DISCOVER");
	rc = rc ?: set_int(s->fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
	/* the group is joined on the syncdev even for unicast, so a peer left on
	 * the default group is still heard (and counted if it is not wanted) */
	rc = rc ?: join_group4(s, (struct in_addr){.s_addr = htonl(PFSYNC_GROUP_ADDR)});
	for (unsigned int i = 0; i < s->npeers && rc == 0; i++) {
		const struct sync_peer *p = &s->peers[i];

		if (p->group && p->addr.sa.sa_family == AF_INET &&
		    p->addr.sin.sin_addr.s_addr != htonl(PFSYNC_GROUP_ADDR))
			rc = join_group4(s, p->addr.sin.sin_addr);
	}
	return rc;
}

static int configure6(struct sync_sock *s)
{
	int rc = open_raw(s, AF_INET6, &s->fd6);

	rc = rc
		 ?: set_int(s->fd6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, PFSYNC_DFLTTL,
			    "IPV6_UNICAST_HOPS");
	rc = rc
		 ?: set_int(s->fd6, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, PFSYNC_DFLTTL,
			    "IPV6_MULTICAST_HOPS");
	rc = rc ?: set_int(s->fd6, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP");
	rc =
	    rc ?: set_int(s->fd6, IPPROTO_IPV6, IPV6_MULTICAST_IF, s->ifindex, "IPV6_MULTICAST_IF");
	rc = rc ?: set_int(s->fd6, IPPROTO_IPV6, IPV6_TCLASS, PFSYNC_IPTOS, "IPV6_TCLASS");
	rc = rc ?: set_int(s->fd6, IPPROTO_IPV6, IPV6_DONTFRAG, 1, "IPV6_DONTFRAG");
	rc = rc ?: set_int(s->fd6, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
	rc = rc ?: set_int(s->fd6, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT");
	for (unsigned int i = 0; i < s->npeers && rc == 0; i++)
		if (s->peers[i].group && s->peers[i].addr.sa.sa_family == AF_INET6)
			rc = join_group6(s, &s->peers[i].addr.sin6.sin6_addr);
	return rc;
}

int sync_sock_open(struct sync_sock *s, const char *ifname, const char *const *peers,
		   unsigned int n)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->fd = s->fd6 = -1;
	s->min_ttl = PFSYNC_DFLTTL;
	rc = read_link(s, ifname);
	rc = rc ?: sync_peers_parse(s, peers, n);
	if (rc)
		return rc;
	if (s->has6)
		s->mtu -= SYNC_IP6_EXTRA;
	rc = configure4(s);
	if (rc == 0 && s->has6)
		rc = configure6(s);
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
	if (s->has6 && s->fd6 >= 0)
		close(s->fd6);
	s->fd = s->fd6 = -1;
	s->has6 = 0;
}

static int send_one(struct sync_sock *s, struct sync_peer *p, struct iovec *iov, int niov,
		    size_t total)
{
	int v6 = p->addr.sa.sa_family == AF_INET6;
	struct msghdr msg = {
	    .msg_name = &p->addr,
	    .msg_namelen = v6 ? sizeof(p->addr.sin6) : sizeof(p->addr.sin),
	    .msg_iov = iov,
	    .msg_iovlen = (size_t)niov,
	};
	ssize_t n;

	if (v6 && !s->has6)
		return -EAFNOSUPPORT;
	n = sendmsg(v6 ? s->fd6 : s->fd, &msg, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == total ? 0 : -EMSGSIZE;
}

int sync_sock_send(struct sync_sock *s, const void *payload, size_t len, const void *trailer,
		   size_t tlen, struct sync_tx *tx)
{
	struct iovec iov[2] = {
	    {.iov_base = (void *)payload, .iov_len = len},
	    {.iov_base = (void *)trailer, .iov_len = tlen},
	};

	memset(tx, 0, sizeof(*tx));
	tx->err = -EDESTADDRREQ;
	for (unsigned int i = 0; i < s->nconfigured; i++) {
		struct sync_peer *p = &s->peers[i];
		int rc = send_one(s, p, iov, tlen ? 2 : 1, len + tlen);

		if (rc == 0) {
			p->opackets++;
			if (p->addr.sa.sa_family == AF_INET6)
				tx->sent6++;
			else
				tx->sent4++;
			continue;
		}
		p->oerrors++;
		tx->err = rc;
		if (rc == -ENOBUFS || rc == -ENOMEM)
			tx->nomem++;
		else
			tx->errors++;
	}
	return tx->sent4 + tx->sent6 ? 0 : tx->err;
}

static void read_cmsgs(struct sync_sock *s, struct msghdr *msg, struct sync_rx *rx, int v6)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			rx->ifindex = pi.ipi_ifindex;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			rx->ifindex = (int)pi.ipi6_ifindex;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) {
			memcpy(&rx->hops, CMSG_DATA(c), sizeof(rx->hops));
		} else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
			__u32 dropped;

			memcpy(&dropped, CMSG_DATA(c), sizeof(dropped));
			if (v6)
				s->rx_dropped6 = dropped;
			else
				s->rx_dropped4 = dropped;
			s->rx_dropped = s->rx_dropped4 + s->rx_dropped6;
		}
	}
}

ssize_t sync_sock_recv(struct sync_sock *s, int v6, void *buf, size_t cap, struct sync_rx *rx)
{
	char cbuf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(int)) +
		  CMSG_SPACE(sizeof(__u32))];
	struct iovec iov = {.iov_base = buf, .iov_len = cap};
	struct msghdr msg = {
	    .msg_name = &rx->from,
	    .msg_namelen = sizeof(rx->from),
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cbuf,
	    .msg_controllen = sizeof(cbuf),
	};
	ssize_t n;

	if (v6 && !s->has6)
		return -EAGAIN;
	memset(&rx->from, 0, sizeof(rx->from));
	n = recvmsg(v6 ? s->fd6 : s->fd, &msg, MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	rx->family = v6 ? AF_INET6 : AF_INET;
	rx->ifindex = 0;
	rx->hops = -1;
	read_cmsgs(s, &msg, rx, v6);
	/* a truncated datagram is reported at its real length: the decoder sees only cap */
	if (msg.msg_flags & MSG_TRUNC)
		n = (ssize_t)cap;
	return n;
}

/* ---- the agent's side ---------------------------------------------------- */
int agent_auth_load(struct agent *a)
{
	char err[AUTH_ERR_MAX];
	struct timespec ts;

	if (a->opts.min_ttl && !a->opts.nauth_keys) {
		log_err("--min-ttl needs --auth-key: without authentication only TTL 255 "
			"shows that a packet comes from the link itself");
		return -1;
	}
	if (!a->opts.nauth_keys)
		return 0;
	a->sock.auth = calloc(1, sizeof(*a->sock.auth));
	if (!a->sock.auth)
		return -1;
	for (unsigned int i = 0; i < a->opts.nauth_keys; i++) {
		if (auth_load_key_file(a->sock.auth, a->opts.auth_keys[i], err, sizeof(err))) {
			log_err("%s", err);
			agent_auth_free(a);
			return -1;
		}
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	auth_start(a->sock.auth, (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec);
	return 0;
}

void agent_auth_free(struct agent *a)
{
	if (!a->sock.auth)
		return;
	auth_free(a->sock.auth);
	free(a->sock.auth);
	a->sock.auth = NULL;
}

int agent_sock_open(struct agent *a)
{
	struct auth *au = a->sock.auth; /* loaded before, kept across the reset */
	int rc = sync_sock_open(&a->sock, a->opts.syncdev, a->opts.syncpeers, a->opts.nsyncpeers);

	a->sock.auth = au;
	if (rc)
		return rc;
	if (!a->opts.no_repair)
		a->sock.mtu -= REPAIR_HDR_LEN; /* every packet numbered */
	if (au) {
		a->sock.mtu -= AUTH_TRAILER_LEN;
		if (a->opts.min_ttl)
			a->sock.min_ttl = a->opts.min_ttl;
	}
	return 0;
}

void agent_sock_close(struct agent *a)
{
	sync_sock_close(&a->sock);
	agent_auth_free(a);
}
