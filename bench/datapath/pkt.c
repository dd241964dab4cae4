// SPDX-License-Identifier: BSD-2-Clause
/* bench/datapath: the packets its cases run (see pkt.h). */

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <string.h>

#include "pkt.h"

const __u8 linux_syn_opts[20] = {2,    4,    0x05, 0xb4, 4, 2, 8, 10, 0, 0x12,
				 0x34, 0x56, 0,	   0,	 0, 0, 1, 3,  3, 7};

static __u16 csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __u16 ip_header_csum(const void *hdr, size_t len)
{
	const __u8 *p = hdr;
	__u32 sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (__u32)(p[i] << 8 | p[i + 1]);
	return htons(csum_fold(sum));
}

/* Writes Ethernet + IP header for f carrying l4len bytes; returns the L4 offset. */
static size_t put_l3(struct pkt *p, const struct flow *f, size_t l4len)
{
	struct ethhdr *eth = (struct ethhdr *)p->data;

	memset(p->data, 0, sizeof(p->data));
	memcpy(eth->h_dest, "\x02\x00\x00\x00\x00\x02", ETH_ALEN);
	memcpy(eth->h_source, "\x02\x00\x00\x00\x00\x01", ETH_ALEN);
	if (f->af == AF_INET) {
		struct iphdr *ip = (struct iphdr *)(eth + 1);

		eth->h_proto = htons(ETH_P_IP);
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = f->proto;
		ip->tot_len = htons((__u16)(sizeof(*ip) + l4len));
		memcpy(&ip->saddr, f->saddr, 4);
		memcpy(&ip->daddr, f->daddr, 4);
		ip->check = ip_header_csum(ip, sizeof(*ip));
		return sizeof(*eth) + sizeof(*ip);
	}
	struct ipv6hdr *ip6 = (struct ipv6hdr *)(eth + 1);

	eth->h_proto = htons(ETH_P_IPV6);
	ip6->version = 6;
	ip6->hop_limit = 64;
	ip6->nexthdr = f->proto;
	ip6->payload_len = htons((__u16)l4len);
	memcpy(&ip6->saddr, f->saddr, 16);
	memcpy(&ip6->daddr, f->daddr, 16);
	return sizeof(*eth) + sizeof(*ip6);
}

/* A TCP segment of f (or of its reverse) with flags, seq, ack, TCP options
 * (a multiple of 4 bytes) and payload bytes. */
void build_tcp_opts(struct pkt *p, const struct flow *f, int reverse, __u8 flags, __u32 seq,
		    __u32 ack, const __u8 *opts, size_t optlen, size_t payload)
{
	struct flow r = *f;
	struct tcphdr th;
	size_t off;

	if (reverse) {
		memcpy(r.saddr, f->daddr, 16);
		memcpy(r.daddr, f->saddr, 16);
		r.sport = f->dport;
		r.dport = f->sport;
	}
	off = put_l3(p, &r, sizeof(th) + optlen + payload);
	memset(&th, 0, sizeof(th));
	th.source = htons(r.sport);
	th.dest = htons(r.dport);
	th.seq = htonl(seq);
	th.ack_seq = htonl(ack);
	th.doff = (__u16)((sizeof(th) + optlen) / 4);
	th.fin = !!(flags & TH_FIN);
	th.syn = !!(flags & TH_SYN);
	th.psh = !!(flags & TH_PSH);
	th.ack = !!(flags & TH_ACK);
	th.window = htons(65535);
	memcpy(p->data + off, &th, sizeof(th));
	if (optlen)
		memcpy(p->data + off + sizeof(th), opts, optlen);
	memset(p->data + off + sizeof(th) + optlen, 'x', payload);
	p->len = (__u32)(off + sizeof(th) + optlen + payload);
}

void build_tcp(struct pkt *p, const struct flow *f, int reverse, __u8 flags, __u32 seq, __u32 ack,
	       size_t payload)
{
	build_tcp_opts(p, f, reverse, flags, seq, ack, NULL, 0, payload);
}

void build_udp(struct pkt *p, const struct flow *f, size_t payload)
{
	struct udphdr uh;
	size_t off = put_l3(p, f, sizeof(uh) + payload);

	uh.source = htons(f->sport);
	uh.dest = htons(f->dport);
	uh.len = htons((__u16)(sizeof(uh) + payload));
	uh.check = 0;
	memcpy(p->data + off, &uh, sizeof(uh));
	memset(p->data + off + sizeof(uh), 'u', payload);
	p->len = (__u32)(off + sizeof(uh) + payload);
}

struct flow make_flow(int af, __u8 proto, __u16 sport)
{
	struct flow f = {.af = af, .proto = proto, .sport = sport, .dport = 80};

	if (af == AF_INET) {
		inet_pton(AF_INET, "10.0.0.1", f.saddr);
		inet_pton(AF_INET, "10.0.0.2", f.daddr);
	} else {
		inet_pton(AF_INET6, "fd00::1", f.saddr);
		inet_pton(AF_INET6, "fd00::2", f.daddr);
	}
	return f;
}
