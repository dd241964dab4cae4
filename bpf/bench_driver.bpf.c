/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * New-state benchmark driver. BPF_PROG_RUN repeats one packet, so after the
 * first run every packet would hit the state it created. This program gives
 * each run a fresh tuple: it rewrites the source port and the low source
 * address bytes from a run counter, then tail-calls the program under test
 * (slot 0 of bench_target). bench/datapath measures the driver alone
 * (tail-calling bench_empty) and subtracts it.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_target SEC(".maps");

/* runs so far; BPF_PROG_RUN runs on one CPU, so a plain array suffices */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_seq SEC(".maps");

/* 15 bits of the counter go to the port (32768..65535), the rest to the
 * last two bytes of the source address. */
static __always_inline void fresh_tuple(void *saddr_low2, __u16 *sport, __u32 seq)
{
	__u16 hi = bpf_htons((__u16)(seq >> 15));

	__builtin_memcpy(saddr_low2, &hi, 2);
	*sport = bpf_htons((__u16)(0x8000 | (seq & 0x7fff)));
}

SEC("xdp")
int bench_driver(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 zero = 0, *seq;

	seq = bpf_map_lookup_elem(&bench_seq, &zero);
	if (!seq || (void *)(eth + 1) > end)
		return XDP_ABORTED;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u16 *ports = (void *)(ip + 1); /* bench packets have no options */

		if ((void *)(ports + 2) > end)
			return XDP_ABORTED;
		fresh_tuple((__u8 *)&ip->saddr + 2, &ports[0], *seq);
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		__u16 *ports = (void *)(ip6 + 1);

		if ((void *)(ports + 2) > end)
			return XDP_ABORTED;
		fresh_tuple((__u8 *)&ip6->saddr + 14, &ports[0], *seq);
	}
	*seq += 1;
	bpf_tail_call(ctx, &bench_target, 0);
	return XDP_ABORTED; /* no target */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
