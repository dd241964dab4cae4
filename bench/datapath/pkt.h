/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/datapath: test packets (Ethernet, IPv4/IPv6, TCP/UDP) built from a flow. */
#ifndef BENCH_DATAPATH_PKT_H
#define BENCH_DATAPATH_PKT_H

#include <stddef.h>
#include <linux/types.h>

#define PKT_MAX 256

struct pkt {
	__u8 data[PKT_MAX];
	__u32 len;
};

struct flow {
	int af; /* AF_INET / AF_INET6 */
	__u8 proto;
	__u8 saddr[16], daddr[16];
	__u16 sport, dport; /* host order */
};

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_PSH 0x08
#define TH_ACK 0x10

/* What a Linux SYN carries: MSS 1460, SACK permitted, timestamps, NOP, WS 7. */
extern const __u8 linux_syn_opts[20];

void build_tcp_opts(struct pkt *p, const struct flow *f, int reverse, __u8 flags, __u32 seq,
		    __u32 ack, const __u8 *opts, size_t optlen, size_t payload);
void build_tcp(struct pkt *p, const struct flow *f, int reverse, __u8 flags, __u32 seq, __u32 ack,
	       size_t payload);
void build_udp(struct pkt *p, const struct flow *f, size_t payload);
struct flow make_flow(int af, __u8 proto, __u16 sport);

#endif /* BENCH_DATAPATH_PKT_H */
