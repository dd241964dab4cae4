/* SPDX-License-Identifier: BSD-2-Clause */
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
#include "cksum.h"
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

/* ---- peers ----------------------------------------------------------------- */
const char *sync_addr_str(const union sync_addr *a, char *buf, size_t cap)
{
	const void *raw = a->sa.sa_family == AF_INET6 ? (const void *)&a->sin6.sin6_addr
						      : (const void *)&a->sin.sin_addr;

	return inet_ntop(a->sa.sa_family, raw, buf, (socklen_t)cap) ? buf : "?";
}

static int parse_peer4(const char *text, struct sync_peer *p)
{
	struct in_addr a;

	if (inet_pton(AF_INET, text, &a) != 1)
		return -EAFNOSUPPORT;
	if (a.s_addr == htonl(INADDR_ANY))
		a.s_addr = htonl(PFSYNC_GROUP_ADDR);
	if (a.s_addr == htonl(INADDR_BROADCAST)) {
		log_err("--syncpeer 255.255.255.255 is not allowed (as OpenBSD: EDESTADDRREQ)");
		return -EINVAL;
	}
	p->addr.sin.sin_family = AF_INET;
	p->addr.sin.sin_addr = a;
	p->group = IN_MULTICAST(ntohl(a.s_addr));
	return 0;
}

/* "fe80::1%sync0": the scope is always the syncdev, so a suffix is dropped */
static int parse_peer6(const char *text, struct sync_peer *p, int ifindex)
{
	char buf[SYNC_ADDRSTRLEN + IF_NAMESIZE];
	struct in6_addr a;

	snprintf(buf, sizeof(buf), "%s", text);
	buf[strcspn(buf, "%")] = '\0';
	if (inet_pton(AF_INET6, buf, &a) != 1)
		return -EAFNOSUPPORT;
	if (IN6_IS_ADDR_UNSPECIFIED(&a))
		inet_pton(AF_INET6, SYNC_GROUP6, &a);
	p->addr.sin6.sin6_family = AF_INET6;
	p->addr.sin6.sin6_addr = a;
	p->group = IN6_IS_ADDR_MULTICAST(&a);
	if (p->group || IN6_IS_ADDR_LINKLOCAL(&a))
		p->addr.sin6.sin6_scope_id = (__u32)ifindex;
	return 0;
}

static int same_addr(const union sync_addr *x, const union sync_addr *y)
{
	if (x->sa.sa_family != y->sa.sa_family)
		return 0;
	if (x->sa.sa_family == AF_INET)
		return x->sin.sin_addr.s_addr == y->sin.sin_addr.s_addr;
	return IN6_ARE_ADDR_EQUAL(&x->sin6.sin6_addr, &y->sin6.sin6_addr);
}

struct sync_peer *sync_sock_find_peer(struct sync_sock *s, const union sync_addr *from)
{
	for (unsigned int i = 0; i < s->npeers; i++)
		if (!s->peers[i].group && same_addr(&s->peers[i].addr, from))
			return &s->peers[i];
	return NULL;
}

struct sync_peer *sync_sock_learn_peer(struct sync_sock *s, const union sync_addr *from)
{
	struct sync_peer *p;

	if (!s->multicast || s->npeers == SYNC_MAX_PEERS)
		return NULL;
	p = &s->peers[s->npeers++];
	memset(p, 0, sizeof(*p));
	p->addr = *from;
	if (p->addr.sa.sa_family == AF_INET)
		p->addr.sin.sin_port = 0;
	else
		p->addr.sin6.sin6_port = 0;
	return p;
}

static int add_peer(struct sync_sock *s, const char *text)
{
	struct sync_peer *p = &s->peers[s->npeers];
	int rc;

	if (s->npeers == SYNC_MAX_PEERS) {
		log_err("--syncpeer: at most %d peers", SYNC_MAX_PEERS);
		return -E2BIG;
	}
	memset(p, 0, sizeof(*p));
	rc = parse_peer4(text, p);
	if (rc == -EAFNOSUPPORT)
		rc = parse_peer6(text, p, s->ifindex);
	if (rc == -EAFNOSUPPORT)
		log_err("--syncpeer %s: not an IPv4 or IPv6 address", text);
	if (rc)
		return rc;
	p->configured = 1;
	for (unsigned int i = 0; i < s->npeers; i++) {
		if (same_addr(&s->peers[i].addr, &p->addr)) {
			log_err("--syncpeer %s given twice", text);
			return -EINVAL;
		}
	}
	s->npeers++;
	return 0;
}

/* groups or unicast peers, not both: a group hears anyone, unicast only peers */
static int parse_peers(struct sync_sock *s, const char *const *peers, unsigned int n)
{
	unsigned int groups = 0;
	int rc = 0;

	if (n == 0)
		rc = add_peer(s, "0.0.0.0");
	for (unsigned int i = 0; i < n && rc == 0; i++)
		rc = add_peer(s, peers[i]);
	if (rc)
		return rc;
	for (unsigned int i = 0; i < s->npeers; i++) {
		groups += s->peers[i].group;
		s->has6 |= s->peers[i].addr.sa.sa_family == AF_INET6;
	}
	if (groups && groups != s->npeers) {
		log_err("--syncpeer: multicast groups and unicast peers cannot be mixed");
		return -EINVAL;
	}
	s->multicast = groups != 0;
	s->nconfigured = s->npeers;
	return 0;
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
	rc = rc ?: parse_peers(s, peers, n);
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
/* wall-clock seconds for the auth trailer's freshness field */
static __u32 wall_seconds(void)
{
	return (__u32)time(NULL);
}

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
		if (auth_sign(a->sock.auth, a->hostid, wall_seconds(), payload, len, trailer)) {
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

		log_debug("sent %zu bytes: %s", len, acts_summary(acts, summary, sizeof(summary)));
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
		v = auth_verify(s->auth, wall_seconds(), payload, len, &sender);
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

static void receive4(struct agent *a, size_t n, struct sync_rx *rx)
{
	__u8 *ip = a->rxbuf;
	size_t ihl, total;

	if (n < sizeof(struct iphdr) || (ip[0] >> 4) != 4)
		goto decoder; /* the decoder counts what is wrong */
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	total = pfsync_get_be16(ip + 2);
	if (ihl < sizeof(struct iphdr) || ihl > n || total < ihl)
		goto decoder;
	if ((rx->ifindex && rx->ifindex != a->sock.ifindex) ||
	    (a->sock.src && rx->from.sin.sin_addr.s_addr == a->sock.src))
		goto decoder; /* badif, or our own multicast looped back */
	rx->hops = ip[8];
	if (!transport_accept(a, rx, ip + ihl, (total < n ? total : n) - ihl, &a->stats.ipackets))
		return;
	if (ip[8] != PFSYNC_DFLTTL)
		normalise_ttl(ip, ihl);
	if (apply_packet(a, ip, n, rx->ifindex) == 0)
		sender_heard(a, &rx->from);
	agent_repair_on_packet(a, ip + ihl, (total < n ? total : n) - ihl);
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
		  acts_summary(acts, summary, sizeof(summary)));
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

/* ---- status and statistics (control socket) --------------------------------- */
/* "10.0.0.2,10.0.0.3"; empty for the default group alone (OpenBSD's status line) */
const char *agent_peer_list(const struct agent *a, char *buf, size_t cap)
{
	const struct sync_sock *s = &a->sock;
	size_t used = 0;

	buf[0] = '\0';
	if (s->nconfigured == 1 && s->peers[0].addr.sa.sa_family == AF_INET &&
	    s->peers[0].addr.sin.sin_addr.s_addr == htonl(PFSYNC_GROUP_ADDR))
		return buf;
	for (unsigned int i = 0; i < s->nconfigured && used < cap; i++) {
		char one[SYNC_ADDRSTRLEN];
		int n = snprintf(buf + used, cap - used, "%s%s", i ? "," : "",
				 sync_addr_str(&s->peers[i].addr, one, sizeof(one)));

		if (n < 0)
			break;
		used += (size_t)n;
	}
	return buf;
}

static void auth_text(const struct agent *a, FILE *out)
{
	const struct auth *au = a->sock.auth;

	if (!au) {
		fprintf(out, "auth: off (TTL 255 required)\n");
		return;
	}
	fprintf(out, "auth: on (HMAC-SHA256, signing key %08x", au->keys[0].id);
	for (unsigned int i = 1; i < au->nkeys; i++)
		fprintf(out, ", also accepting %08x", au->keys[i].id);
	fprintf(out, "), min-ttl %u\n", a->sock.min_ttl);
}

void agent_transport_status(const struct agent *a, FILE *out, int json)
{
	const struct auth *au = a->sock.auth;
	char transport[32], peer[SYNC_ADDRSTRLEN];

	sync_sock_transport(&a->sock, transport, sizeof(transport));
	if (!json) {
		fprintf(out, "transport: %s, %u peer%s:", transport, a->sock.nconfigured,
			a->sock.nconfigured == 1 ? "" : "s");
		for (unsigned int i = 0; i < a->sock.nconfigured; i++)
			fprintf(out, " %s",
				sync_addr_str(&a->sock.peers[i].addr, peer, sizeof(peer)));
		fprintf(out, "\n");
		auth_text(a, out);
		return;
	}
	fprintf(out, "\"transport\":\"%s\",\"syncpeers\":[", transport);
	for (unsigned int i = 0; i < a->sock.nconfigured; i++)
		fprintf(out, "%s\"%s\"", i ? "," : "",
			sync_addr_str(&a->sock.peers[i].addr, peer, sizeof(peer)));
	fprintf(out, "],\"auth\":%s,\"auth_keys\":[", au ? "true" : "false");
	for (unsigned int i = 0; au && i < au->nkeys; i++)
		fprintf(out, "%s\"%08x\"", i ? "," : "", au->keys[i].id);
	fprintf(out, "],\"min_ttl\":%u,", a->sock.min_ttl);
}

static void peers_text(const struct agent *a, FILE *out)
{
	const struct sync_sock *s = &a->sock;
	char addr[SYNC_ADDRSTRLEN];

	fprintf(out, "\t%llu packets discarded from a source that is not a peer\n",
		(unsigned long long)s->badsrc);
	if (s->auth) {
		const struct auth *au = s->auth;

		fprintf(out, "\tauth: %llu signed, %llu verified; dropped:",
			(unsigned long long)au->signed_packets,
			(unsigned long long)au->verified_packets);
		for (int v = AUTH_MISSING; v < AUTH_VERDICTS; v++)
			fprintf(out, "%s %llu %s", v == AUTH_MISSING ? "" : ",",
				(unsigned long long)au->dropped[v], auth_verdict_name(v));
		fprintf(out, "\n");
	}
	fprintf(out, "\tper peer:\n\t\t%-40s %10s %10s %8s %8s %s\n", "peer", "in", "out", "errors",
		"badauth", "last heard");
	for (unsigned int i = 0; i < s->npeers; i++) {
		const struct sync_peer *p = &s->peers[i];

		fprintf(out, "\t\t%-40s %10llu %10llu %8llu %8llu ",
			sync_addr_str(&p->addr, addr, sizeof(addr)),
			(unsigned long long)p->ipackets, (unsigned long long)p->opackets,
			(unsigned long long)p->oerrors, (unsigned long long)p->badauth);
		if (p->group)
			fprintf(out, "(group)\n");
		else if (!p->last_heard_ns)
			fprintf(out, "never\n");
		else
			fprintf(out, "%.1f s ago\n", (double)(a->now_ns - p->last_heard_ns) / 1e9);
	}
}

static void peers_json(const struct agent *a, FILE *out)
{
	const struct sync_sock *s = &a->sock;
	char addr[SYNC_ADDRSTRLEN];

	fprintf(out, "\"badsrc\":%llu,", (unsigned long long)s->badsrc);
	if (s->auth) {
		fprintf(out, "\"auth_dropped\":{");
		for (int v = AUTH_MISSING; v < AUTH_VERDICTS; v++)
			fprintf(out, "%s\"%s\":%llu", v == AUTH_MISSING ? "" : ",",
				auth_verdict_name(v), (unsigned long long)s->auth->dropped[v]);
		fprintf(out, "},");
	}
	fprintf(out, "\"peers\":[");
	for (unsigned int i = 0; i < s->npeers; i++) {
		const struct sync_peer *p = &s->peers[i];

		fprintf(out,
			"%s{\"peer\":\"%s\",\"configured\":%s,\"group\":%s,\"packets_in\":%llu,"
			"\"packets_out\":%llu,\"send_errors\":%llu,\"badauth\":%llu,",
			i ? "," : "", sync_addr_str(&p->addr, addr, sizeof(addr)),
			p->configured ? "true" : "false", p->group ? "true" : "false",
			(unsigned long long)p->ipackets, (unsigned long long)p->opackets,
			(unsigned long long)p->oerrors, (unsigned long long)p->badauth);
		if (p->last_heard_ns)
			fprintf(out, "\"last_heard_ms_ago\":%llu}",
				(unsigned long long)(a->now_ns - p->last_heard_ns) / 1000000ULL);
		else
			fprintf(out, "\"last_heard_ms_ago\":null}");
	}
	fprintf(out, "]");
}

void agent_transport_stats(struct agent *a, FILE *out, int json)
{
	char *obj = NULL;
	size_t len = 0;
	FILE *mem;

	a->now_ns = agent_clock_ns();
	if (!json) {
		pfsync_stats_print(out, &a->stats);
		peers_text(a, out);
		return;
	}
	/* the OpenBSD counters' object, with the transport's fields added inside */
	mem = open_memstream(&obj, &len);
	if (!mem)
		return;
	pfsync_stats_print_json(mem, &a->stats);
	fclose(mem);
	while (len && (obj[len - 1] == '\n' || obj[len - 1] == '}'))
		obj[--len] = '\0';
	fprintf(out, "%s,", obj);
	peers_json(a, out);
	fprintf(out, "}\n");
	free(obj);
}
