/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The pfsync transport: raw sockets for protocol 240 bound to the syncdev,
 * used both ways. One IPv4 socket always (the kernel writes the IP header:
 * TTL 255, TOS 0x10, DF); one IPv6 socket when a peer is IPv6 (hop limit
 * 255, traffic class 0x10). The payload handed in starts at the pfsync
 * header.
 *
 * Peers (--syncpeer, repeatable; peers.c): either groups (224.0.0.240, ff12::f0),
 * where anyone on the link is heard, or unicast addresses of either family,
 * where packets from any other source are dropped (badsrc). Every packet
 * goes to every peer. Extensions beyond OpenBSD (pfsync-wire.md §4.2): an
 * OpenBSD receiver still reads each copy it gets.
 */
#ifndef AGENT_TRANSPORT_H
#define AGENT_TRANSPORT_H

#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

#include "peers.h"

#define SYNC_IP6_EXTRA 20 /* an IPv6 header is 20 bytes longer than the IPv4 one */

struct auth;

struct sync_sock {
	int fd;	 /* IPv4 */
	int fd6; /* IPv6, valid when has6 */
	int has6;
	int ifindex;		  /* syncdev */
	char ifname[IF_NAMESIZE]; /* syncdev */
	__u32 src;		  /* syncdev's IPv4 address (0 if none), network order */
	/* the source the kernel gives our packets to the group (when known):
	 * on lo not 127.0.0.1 but another interface's address, or 0.0.0.0 */
	__u32 group_src;
	int group_src_known;
	int multicast; /* only groups: any sender on the link is heard */
	/* what a packet may fill, counting a 20-byte IPv4 header as the builders
	 * do: the link MTU less the longer IPv6 header and the auth trailer */
	unsigned int mtu;
	unsigned int link_mtu;
	__u32 rx_dropped; /* packets the kernel dropped for a full buffer (both sockets) */
	__u32 rx_dropped4, rx_dropped6;
	unsigned int min_ttl; /* lowest TTL / hop limit accepted (255 unless --min-ttl) */
	struct auth *auth;    /* NULL = off */
	struct sync_peer peers[SYNC_MAX_PEERS];
	unsigned int npeers;	  /* configured first, then heard */
	unsigned int nconfigured; /* from --syncpeer (the default group counts as one) */
	__u64 badsrc;		  /* packets from a source that is not a peer */
};

/* 1 if an IPv4 source (network order) is one our own packets leave with */
int sync_sock_is_own_src(const struct sync_sock *s, __u32 saddr);

/* what one sync_sock_recv() learned besides the bytes */
struct sync_rx {
	int family;
	union sync_addr from;
	int ifindex;
	int hops; /* TTL or hop limit; -1 if unknown */
};

/* the outcome of one payload sent to every peer */
struct sync_tx {
	unsigned int sent4, sent6, nomem, errors;
	int err; /* the last error, -errno */
};

/*
 * peers: n addresses (none = 224.0.0.240; 0.0.0.0 = 224.0.0.240, :: =
 * ff12::f0). Returns 0 or -errno after logging.
 */
int sync_sock_open(struct sync_sock *s, const char *ifname, const char *const *peers,
		   unsigned int n);
void sync_sock_close(struct sync_sock *s);
/* payload then trailer (tlen may be 0) to every peer; 0 if any copy left */
int sync_sock_send(struct sync_sock *s, const void *payload, size_t len, const void *trailer,
		   size_t tlen, struct sync_tx *tx);
/*
 * Reads one packet without blocking from the IPv4 socket (buf gets the IP
 * header first) or the IPv6 one (buf gets the pfsync payload). Returns
 * bytes, or -EAGAIN when empty, -errno.
 */
ssize_t sync_sock_recv(struct sync_sock *s, int v6, void *buf, size_t cap, struct sync_rx *rx);
/* "IPv4 multicast", "IPv6 unicast", "IPv4+IPv6 unicast" */
const char *sync_sock_transport(const struct sync_sock *s, char *buf, size_t cap);

#endif /* AGENT_TRANSPORT_H */
