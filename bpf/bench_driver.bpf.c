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

/*
 * Slot 0: runs so far (BPF_PROG_RUN runs on one CPU, so a plain array
 * suffices). Slots 1 to 3: stamp run FIRST and every Nth after it (N = 0:
 * only FIRST), and run LAST in the last stamp slot, for bench/sync_driver, which
 * makes a whole burst in one BPF_PROG_RUN and needs the time each sampled
 * state was made.
 */
enum { SEQ_RUNS = 0, SEQ_STAMP_EVERY = 1, SEQ_STAMP_FIRST = 2, SEQ_STAMP_LAST = 3 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} bench_seq SEC(".maps");

#define BENCH_STAMPS_MAX 4096

/* CLOCK_MONOTONIC ns of stamped run k (ktime_get_ns is that clock) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_STAMPS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} bench_stamps SEC(".maps");

static __always_inline void stamp(__u32 seq)
{
	__u32 every_key = SEQ_STAMP_EVERY, first_key = SEQ_STAMP_FIRST, last_key = SEQ_STAMP_LAST;
	__u32 *every, *first, *last, k;
	__u64 *t;

	every = bpf_map_lookup_elem(&bench_seq, &every_key);
	first = bpf_map_lookup_elem(&bench_seq, &first_key);
	last = bpf_map_lookup_elem(&bench_seq, &last_key);
	if (!every || !first || !last || seq < *first)
		return;
	if (seq == *last)
		k = BENCH_STAMPS_MAX - 1;
	else if (seq == *first)
		k = 0;
	else if (*every && (seq - *first) % *every == 0)
		k = (seq - *first) / *every;
	else
		return;
	t = bpf_map_lookup_elem(&bench_stamps, &k);
	if (t)
		*t = bpf_ktime_get_ns();
}

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
	__u32 runs = SEQ_RUNS, *seq;

	seq = bpf_map_lookup_elem(&bench_seq, &runs);
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
	stamp(*seq);
	*seq += 1;
	bpf_tail_call(ctx, &bench_target, 0);
	return XDP_ABORTED; /* no target */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
