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

#include "bench_driver.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bench_target SEC(".maps");

/* one struct bench_seq: the run counter, and for bench/sync_driver, which
 * makes a whole burst in one BPF_PROG_RUN, which runs to stamp */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_seq);
} bench_seq SEC(".maps");

/* CLOCK_MONOTONIC ns of stamped run k (ktime_get_ns is that clock) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_STAMPS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} bench_stamps SEC(".maps");

static __always_inline void stamp(const struct bench_seq *s)
{
	__u32 seq = s->runs, k;
	__u64 *t;

	if (seq < s->stamp_first)
		return;
	if (seq == s->stamp_last)
		k = BENCH_STAMPS_MAX - 1;
	else if (seq == s->stamp_first)
		k = 0;
	else if (s->stamp_every && (seq - s->stamp_first) % s->stamp_every == 0)
		k = (seq - s->stamp_first) / s->stamp_every;
	else
		return;
	t = bpf_map_lookup_elem(&bench_stamps, &k);
	if (t)
		*t = bpf_ktime_get_ns();
}

static __always_inline void fresh_tuple(void *saddr_low2, __u16 *sport, __u32 seq)
{
	__u16 hi = bpf_htons((__u16)(seq >> BENCH_FLOW_PORT_BITS));

	__builtin_memcpy(saddr_low2, &hi, 2);
	*sport = bpf_htons((__u16)(0x8000 | (seq & ((1u << BENCH_FLOW_PORT_BITS) - 1))));
}

SEC("xdp")
int bench_driver(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct bench_seq *seq;
	__u32 zero = 0;

	seq = bpf_map_lookup_elem(&bench_seq, &zero);
	if (!seq || (void *)(eth + 1) > end)
		return XDP_ABORTED;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u16 *ports = (void *)(ip + 1); /* bench packets have no options */

		if ((void *)(ports + 2) > end)
			return XDP_ABORTED;
		fresh_tuple((__u8 *)&ip->saddr + 2, &ports[0], seq->runs);
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		__u16 *ports = (void *)(ip6 + 1);

		if ((void *)(ports + 2) > end)
			return XDP_ABORTED;
		fresh_tuple((__u8 *)&ip6->saddr + 14, &ports[0], seq->runs);
	}
	stamp(seq);
	seq->runs += 1;
	bpf_tail_call(ctx, &bench_target, 0);
	return XDP_ABORTED; /* no target */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
