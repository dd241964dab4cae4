/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The peer table of a sync_sock (transport.h): --syncpeer addresses parsed
 * once at start, then senders heard on a group learned as their packets
 * pass every check (rx.c).
 */
#ifndef AGENT_PEERS_H
#define AGENT_PEERS_H

#include <netinet/in.h>
#include <stddef.h>
#include <linux/types.h>

#define SYNC_MAX_PEERS	16 /* configured, plus senders heard on a group */
#define SYNC_GROUP6	"ff12::f0"
#define SYNC_ADDRSTRLEN INET6_ADDRSTRLEN

union sync_addr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

struct sync_peer {
	union sync_addr addr;
	int configured; /* from --syncpeer; else a sender heard on a group */
	int group;	/* a multicast group: sent to, never a source */
	__u64 ipackets, opackets, oerrors, badauth;
	__u64 last_heard_ns; /* CLOCK_BOOTTIME of its last accepted packet, 0 = never */
};

struct sync_sock;

/*
 * Fills s's peer table from peers (none = 224.0.0.240; 0.0.0.0 =
 * 224.0.0.240, :: = ff12::f0): groups or unicast peers, not both. Needs
 * s->ifindex (an IPv6 group is scoped to it). 0 or -errno after logging.
 */
int sync_peers_parse(struct sync_sock *s, const char *const *peers, unsigned int n);
/* a peer's address in text, without port */
const char *sync_addr_str(const union sync_addr *a, char *buf, size_t cap);
/* the configured peer or heard sender this address is, or NULL */
struct sync_peer *sync_sock_find_peer(struct sync_sock *s, const union sync_addr *from);
/* records a sender heard on a group (when there is room); NULL if not */
struct sync_peer *sync_sock_learn_peer(struct sync_sock *s, const union sync_addr *from);

#endif /* AGENT_PEERS_H */
