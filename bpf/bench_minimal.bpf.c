/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Benchmark baseline: the least any hash-based state table must do per
 * packet. Parse Ethernet + IPv4/IPv6 + TCP/UDP ports into a 5-tuple key,
 * look it up once in a hash map, count the result in a per-CPU array.
 * bench/datapath compares pfsync_xdp's established path against this.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct bench_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct bench_value {
	__u64 created;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 100000);
	__type(key, struct bench_key);
	__type(value, struct bench_value);
} bench_states SEC(".maps");

/* [0] hits, [1] misses */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} bench_counters SEC(".maps");

/* Reads the 4 port bytes at l4 into the key; 0 if the header is cut. */
static __always_inline int bench_ports(struct bench_key *k, void *l4, void *end)
{
	__u16 *ports = l4;

	if ((void *)(ports + 2) > end)
		return 0;
	k->sport = ports[0];
	k->dport = ports[1];
	return 1;
}

static __always_inline int bench_parse(struct xdp_md *ctx, struct bench_key *k)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return 0;
		k->saddr[0] = ip->saddr;
		k->daddr[0] = ip->daddr;
		k->proto = ip->protocol;
		return bench_ports(k, (void *)ip + ip->ihl * 4, end);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return 0;
		__builtin_memcpy(k->saddr, &ip6->saddr, 16);
		__builtin_memcpy(k->daddr, &ip6->daddr, 16);
		k->proto = ip6->nexthdr;
		return bench_ports(k, ip6 + 1, end);
	}
	return 0;
}

SEC("xdp")
int bench_minimal(struct xdp_md *ctx)
{
	struct bench_key k = {};
	__u32 slot;
	__u64 *count;

	if (!bench_parse(ctx, &k))
		return XDP_PASS;
	slot = bpf_map_lookup_elem(&bench_states, &k) ? 0 : 1;
	count = bpf_map_lookup_elem(&bench_counters, &slot);
	if (count)
		*count += 1;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
