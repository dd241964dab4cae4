/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pfsync0: a TUN device every pfsync packet sent or accepted is written to
 * (as a whole IPv4 packet), so `tcpdump -i pfsync0` shows the state changes
 * as on OpenBSD. The copies must not go anywhere: forwarding is switched
 * off on the device and they carry our own address, which the stack drops
 * as martian on input.
 */
#ifndef AGENT_TUN_H
#define AGENT_TUN_H

#include <net/if.h>
#include <stddef.h>
#include <linux/types.h>

/*
 * Copies are made only while a packet socket could see them, as OpenBSD's
 * pfsync copies only to an attached bpf listener: each copy is a write of
 * up to an MTU through the TUN and an skb, a tenth of the agent's CPU in a
 * bulk. The packet sockets are looked at (/proc/net/packet) at most every
 * TUN_LISTEN_CHECK_NS, so a capture misses at most that much of its start.
 */
#define TUN_LISTEN_CHECK_NS 50000000ULL

struct tun_dev {
	int fd;
	int ifindex;
	char name[IF_NAMESIZE];
	__u64 written, dropped;
	__u64 checked_ns; /* CLOCK_MONOTONIC of the last look at the sockets */
	int watched;	  /* a packet socket could see pfsync0 at that look */
};

/* creates (or reuses) the device and brings it up; 0 or -errno after logging */
int tun_open(struct tun_dev *t, const char *name);
void tun_close(struct tun_dev *t);
/*
 * Whether /proc/net/packet's text lists a running socket that receives
 * IPv4 copies on ifindex: bound to it or to every device (tcpdump -i any),
 * for every protocol or IPv4.
 */
int tun_packet_sockets_see(const char *proc_net_packet, int ifindex);
/* a received packet, IPv4 header included */
void tun_write_ip(struct tun_dev *t, const void *ip, size_t len);
/* a sent payload: an IPv4 header like the kernel's is put in front */
void tun_write_payload(struct tun_dev *t, __u32 src, __u32 dst, const void *payload, size_t len);

#endif /* AGENT_TUN_H */
