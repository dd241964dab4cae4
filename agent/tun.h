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

struct tun_dev {
	int fd;
	char name[IF_NAMESIZE];
	__u64 written, dropped;
};

/* creates (or reuses) the device and brings it up; 0 or -errno after logging */
int tun_open(struct tun_dev *t, const char *name);
void tun_close(struct tun_dev *t);
/* a received packet, IPv4 header included */
void tun_write_ip(struct tun_dev *t, const void *ip, size_t len);
/* a sent payload: an IPv4 header like the kernel's is put in front */
void tun_write_payload(struct tun_dev *t, __u32 src, __u32 dst, const void *payload, size_t len);

#endif /* AGENT_TUN_H */
