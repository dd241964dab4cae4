/* SPDX-License-Identifier: BSD-2-Clause */
/* --syncpeer parsing and the peer table: configured peers, senders heard on a group */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "pfsync_wire.h"
#include "peers.h"
#include "transport.h"

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
int sync_peers_parse(struct sync_sock *s, const char *const *peers, unsigned int n)
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
