/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The pfsync transport: one raw IPv4 socket for protocol 240, bound to the
 * syncdev, used both ways. The kernel writes the IP header (TTL 255, TOS
 * 0x10, DF); the payload handed in starts at the pfsync header.
 */
#ifndef AGENT_SOCK_H
#define AGENT_SOCK_H

#include <net/if.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

struct sync_sock {
	int fd;
	int ifindex;		  /* syncdev */
	char ifname[IF_NAMESIZE]; /* syncdev */
	__u32 peer;		  /* destination, network order */
	__u32 src;		  /* syncdev's IPv4 address (0 if none), network order */
	int multicast;		  /* peer is the pfsync group */
	unsigned int mtu;	  /* syncdev MTU, includes the IP header */
	__u32 rx_dropped;	  /* packets the kernel dropped for a full buffer (cumulative) */
};

/* peer NULL (or 0.0.0.0) = 224.0.0.240. Returns 0 or -errno after logging. */
int sync_sock_open(struct sync_sock *s, const char *ifname, const char *peer);
void sync_sock_close(struct sync_sock *s);
/* 0 or -errno */
int sync_sock_send(const struct sync_sock *s, const void *payload, size_t len);
/*
 * Reads one packet (IPv4 header first) without blocking; *ifindex = the
 * interface it arrived on. Returns bytes, or -EAGAIN when empty, -errno.
 */
ssize_t sync_sock_recv(struct sync_sock *s, void *buf, size_t cap, int *ifindex);
/* the address in dotted form for status lines */
const char *sync_sock_peer_str(const struct sync_sock *s, char *buf, size_t cap);

#endif /* AGENT_SOCK_H */
