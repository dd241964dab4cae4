// SPDX-License-Identifier: BSD-2-Clause
#include "libpkt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define ETHERTYPE_VLAN 0x8100

const char *pkt_object_path(void)
{
	/* build/tests/prog/test_x -> build/pfsync_xdp.o */
	static const char *const dirs[] = {"../../"};

	return pfsync_bpf_find_obj(dirs, 1, "build/pfsync_xdp.o");
}

int pkt_bpffs_make(char *dir, size_t len, const char *tag)
{
	snprintf(dir, len, "/tmp/pfsync-%s-%d-XXXXXX", tag, getpid());
	if (!mkdtemp(dir)) {
		fprintf(stderr, "mkdtemp %s: %s\n", dir, strerror(errno));
		dir[0] = '\0';
		return -1;
	}
	if (mount("bpf", dir, "bpf", 0, NULL)) {
		fprintf(stderr, "mount bpffs on %s: %s (needs root)\n", dir, strerror(errno));
		rmdir(dir);
		dir[0] = '\0';
		return -1;
	}
	return 0;
}

void pkt_bpffs_remove(char *dir)
{
	if (!dir[0])
		return;
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	dir[0] = '\0';
}

int pkt_obj_open(struct pkt_obj *o, const char *tag, __u32 states_max, unsigned int which)
{
	memset(o, 0, sizeof(*o));
	if (pkt_bpffs_make(o->pin_dir, sizeof(o->pin_dir), tag))
		return -1;
	if (pfsync_bpf_load(&o->b, pkt_object_path(), o->pin_dir, states_max, which)) {
		pkt_bpffs_remove(o->pin_dir);
		return -1;
	}
	o->loaded = 1;
	return 0;
}

void pkt_obj_close(struct pkt_obj *o)
{
	if (o->loaded)
		pfsync_bpf_close(&o->b);
	o->loaded = 0;
	pkt_bpffs_remove(o->pin_dir);
}

int pkt_obj_map_fd(const struct pkt_obj *o, const char *name)
{
	return bpf_object__find_map_fd_by_name(o->b.obj, name);
}

int pkt_events_record(void *ctx, void *data, size_t size)
{
	struct pkt_events *log = ctx;

	if (size < sizeof(struct pfsync_event) || log->n >= PKT_EV_MAX)
		return 0;
	memcpy(&log->ev[log->n++], data, sizeof(struct pfsync_event));
	return 0;
}

void pkt_addr(int af, const char *text, __u32 w[4])
{
	memset(w, 0, 16);
	inet_pton(af, text, w);
}

static void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(__u8 *p, __u32 v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static size_t ipv6_ext_len(const struct pkt_spec *s)
{
	return (size_t)s->n_ext * 8;
}

size_t pkt_l3_off(const struct pkt_spec *s)
{
	return PKT_ETH_LEN + (s->vlan ? PKT_VLAN_LEN : 0);
}

size_t pkt_l4_off(const struct pkt_spec *s)
{
	if (s->af == AF_INET)
		return pkt_l3_off(s) + 20 + s->ip_opt_len;
	return pkt_l3_off(s) + 40 + ipv6_ext_len(s);
}

static size_t tcp_options(const struct pkt_spec *s, __u8 *p)
{
	size_t n = 0;

	if (!(s->tcp_flags & 0x02))
		return 0;
	if (s->mss) {
		p[n++] = 2;
		p[n++] = 4;
		put16(p + n, s->mss);
		n += 2;
	}
	if (s->wscale >= 0) {
		p[n++] = 1; /* NOP keeps the next option aligned */
		p[n++] = 3;
		p[n++] = 3;
		p[n++] = (__u8)s->wscale;
	}
	return n;
}

static size_t build_l4(const struct pkt_spec *s, __u8 *p)
{
	size_t n;

	if (s->no_l4)
		return 0;
	switch (s->proto) {
	case IPPROTO_TCP:
		put16(p, s->sport);
		put16(p + 2, s->dport);
		put32(p + 4, s->seq);
		put32(p + 8, s->ack);
		n = 20 + tcp_options(s, p + 20);
		p[12] = (__u8)((n / 4) << 4);
		p[13] = s->tcp_flags;
		put16(p + 14, s->win);
		return n;
	case IPPROTO_UDP:
		put16(p, s->sport);
		put16(p + 2, s->dport);
		put16(p + 4, (__u16)(8 + s->payload_len));
		return 8;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		p[0] = s->icmp_type;
		put16(p + 4, s->icmp_id);
		put16(p + 6, 1);
		return 8;
	default:
		return 0;
	}
}

static size_t build_ipv6_ext(const struct pkt_spec *s, __u8 *p, __u8 *first_nh)
{
	size_t i;

	*first_nh = s->n_ext ? s->ext[0] : s->proto;
	for (i = 0; i < s->n_ext && i < PKT_EXT_MAX; i++) {
		__u8 *h = p + i * 8;

		h[0] = i + 1 < s->n_ext ? s->ext[i + 1] : s->proto;
		if (s->ext[i] == 44) {
			put16(h + 2, (__u16)((s->frag_off << 3) | (s->more_frags ? 1 : 0)));
			put32(h + 4, 0x1234);
		} else {
			h[1] = 0; /* 8 bytes: PadN fills the rest */
			h[2] = 1;
			h[3] = 4;
		}
	}
	return ipv6_ext_len(s);
}

size_t pkt_build(const struct pkt_spec *s, __u8 *buf, size_t cap)
{
	size_t l3 = pkt_l3_off(s), l4 = pkt_l4_off(s), l4_len, total;
	__u8 *ip = buf + l3;

	if (cap < PKT_MAX || s->payload_len > PKT_PAYLOAD_MAX || s->n_ext > PKT_EXT_MAX)
		return 0;
	memset(buf, 0, PKT_MAX);
	memcpy(buf, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	if (s->vlan) {
		put16(buf + 12, ETHERTYPE_VLAN);
		put16(buf + 14, s->vlan);
	}
	put16(buf + l3 - 2, s->af == AF_INET ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6);
	l4_len = build_l4(s, buf + l4);
	if (s->payload_len)
		memcpy(buf + l4 + l4_len, s->payload, s->payload_len);
	l4_len += s->payload_len;
	total = l4 + l4_len;
	if (s->af == AF_INET) {
		ip[0] = 0x40 | (__u8)((20 + s->ip_opt_len) / 4);
		put16(ip + 2, (__u16)(total - l3));
		put16(ip + 6, (__u16)(s->frag_off | (s->more_frags ? 0x2000 : 0)));
		ip[8] = 64;
		ip[9] = s->proto;
		memset(ip + 20, 1, s->ip_opt_len); /* NOP options */
		inet_pton(AF_INET, s->saddr, ip + 12);
		inet_pton(AF_INET, s->daddr, ip + 16);
	} else {
		ip[0] = 0x60;
		put16(ip + 4, (__u16)(total - l3 - 40));
		build_ipv6_ext(s, ip + 40, &ip[6]);
		ip[7] = 64;
		inet_pton(AF_INET6, s->saddr, ip + 8);
		inet_pton(AF_INET6, s->daddr, ip + 24);
	}
	return total;
}

struct pkt_spec pkt_udp(int af, const char *src, const char *dst, __u16 sport, __u16 dport)
{
	struct pkt_spec s = {.af = af,
			     .saddr = src,
			     .daddr = dst,
			     .proto = IPPROTO_UDP,
			     .sport = sport,
			     .dport = dport,
			     .wscale = -1};
	return s;
}

struct pkt_spec pkt_reverse(const struct pkt_spec *s)
{
	struct pkt_spec r = *s;

	r.saddr = s->daddr;
	r.daddr = s->saddr;
	r.sport = s->dport;
	r.dport = s->sport;
	return r;
}

/* ---- IPv4 checksums -------------------------------------------------------- */

/* one's complement sum of n bytes, 16-bit words in network order */
static __u32 sum16(const __u8 *p, size_t n, __u32 acc)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		acc += (__u32)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		acc += (__u32)p[n - 1] << 8;
	return acc;
}

static __u16 fold(__u32 acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (__u16)acc;
}

/* where the L4 checksum is, 0 if none we know; *acc gets the pseudo header */
static size_t l4_csum_at(const __u8 *ip, size_t ihl, size_t l4len, __u32 *acc)
{
	*acc = 0;
	if (ip[9] == IPPROTO_ICMP)
		return ihl + 2;
	*acc = sum16(ip + 12, 8, 0) + ip[9] + (__u32)l4len;
	if (ip[9] == IPPROTO_TCP)
		return ihl + 16;
	return ip[9] == IPPROTO_UDP ? ihl + 6 : 0;
}

void pkt_fill_checksums_v4(__u8 *frame, size_t len)
{
	__u8 *ip = frame + PKT_ETH_LEN;
	size_t ihl = (size_t)(ip[0] & 0xf) * 4, tot = (size_t)(ip[2] << 8 | ip[3]), at;
	__u16 c;
	__u32 acc;

	if (len < PKT_ETH_LEN + tot || tot < ihl)
		return;
	ip[10] = ip[11] = 0;
	c = (__u16)~fold(sum16(ip, ihl, 0));
	ip[10] = (__u8)(c >> 8);
	ip[11] = (__u8)c;
	at = l4_csum_at(ip, ihl, tot - ihl, &acc);
	if (!at || at + 2 > tot)
		return;
	ip[at] = ip[at + 1] = 0;
	c = (__u16)~fold(sum16(ip + ihl, tot - ihl, acc));
	if (ip[9] == IPPROTO_UDP && c == 0)
		c = 0xffff;
	ip[at] = (__u8)(c >> 8);
	ip[at + 1] = (__u8)c;
}

int pkt_checksums_ok_v4(const __u8 *frame, size_t len)
{
	const __u8 *ip = frame + PKT_ETH_LEN;
	size_t ihl = (size_t)(ip[0] & 0xf) * 4, tot = (size_t)(ip[2] << 8 | ip[3]), at;
	__u32 acc;

	if (len < PKT_ETH_LEN + tot || tot < ihl || fold(sum16(ip, ihl, 0)) != 0xffff)
		return 0;
	at = l4_csum_at(ip, ihl, tot - ihl, &acc);
	return !at || fold(sum16(ip + ihl, tot - ihl, acc)) == 0xffff;
}
