/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Benchmark baselines: the least any hash-based state table must do per
 * packet. Each parses Ethernet + IPv4/IPv6 + TCP/UDP ports into a 5-tuple
 * key and looks it up once in a hash map.
 * - bench_minimal: the lookup and a per-CPU counter. bench/datapath
 *   compares pfsync_xdp's established path against it.
 * - bench_insert: on a miss, also inserts a value the size of a pfsync
 *   state (struct pfsync_state_value) into bench_insert_states, which
 *   userspace sizes like pfsync's table: what creating a state costs at
 *   the least, mostly cache misses on a large table.
 * - bench_insert_sync: bench_insert plus one change record of pfsync's
 *   size on a ringbuf of pfsync's size: the least a synced insert costs.
 * - bench_insert_flush (BPF_PROG_RUN): empties bench_insert_states the way
 *   pfsync_sweep flushes pfsync_states, so both tables start each
 *   new-state batch alike.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "pfsync_common.h"

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

/* Slots of bench_counters. */
enum {
	BENCH_HIT = 0,
	BENCH_MISS = 1,
	BENCH_INSERTED = 2,
	BENCH_INSERT_FAILED = 3,
	BENCH_RECORD_LOST = 4,
	BENCH_SLOTS = 8,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BENCH_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} bench_counters SEC(".maps");

/* A value as big as pfsync's; max_entries is set by userspace before load. */
struct bench_state {
	__u64 created;
	__u8 rest[sizeof(struct pfsync_state_value) - sizeof(__u64)];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct bench_key);
	__type(value, struct bench_state);
} bench_insert_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_state);
} bench_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PFSYNC_EVENTS_BYTES);
} bench_events SEC(".maps");

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

static __always_inline void bench_count(__u32 slot)
{
	__u64 *count = bpf_map_lookup_elem(&bench_counters, &slot);

	if (count)
		*count += 1;
}

SEC("xdp")
int bench_minimal(struct xdp_md *ctx)
{
	struct bench_key k = {};

	if (!bench_parse(ctx, &k))
		return XDP_PASS;
	bench_count(bpf_map_lookup_elem(&bench_states, &k) ? BENCH_HIT : BENCH_MISS);
	return XDP_PASS;
}

/* One record of pfsync's size and layout, the key copied in. */
static __always_inline __u32 bench_record(const struct bench_key *k)
{
	struct pfsync_event *rec = bpf_ringbuf_reserve(&bench_events, sizeof(*rec), 0);

	if (!rec)
		return BENCH_RECORD_LOST;
	__builtin_memset(rec, 0, sizeof(*rec));
	rec->type = PFSYNC_EV_INSERT;
	__builtin_memcpy(&rec->key, k, sizeof(*k));
	bpf_ringbuf_submit(rec, 0);
	return BENCH_INSERTED;
}

static __always_inline int bench_insert_common(struct xdp_md *ctx, int sync)
{
	struct bench_key k = {};
	struct bench_state *v;
	__u32 zero = 0, slot;

	if (!bench_parse(ctx, &k))
		return XDP_PASS;
	if (bpf_map_lookup_elem(&bench_insert_states, &k)) {
		bench_count(BENCH_HIT);
		return XDP_PASS;
	}
	v = bpf_map_lookup_elem(&bench_scratch, &zero);
	if (!v)
		return XDP_PASS;
	__builtin_memset(v, 0, sizeof(*v));
	v->created = 1;
	slot = bpf_map_update_elem(&bench_insert_states, &k, v, BPF_NOEXIST) ? BENCH_INSERT_FAILED
									     : BENCH_INSERTED;
	if (sync && slot == BENCH_INSERTED)
		slot = bench_record(&k);
	bench_count(slot);
	return XDP_PASS;
}

SEC("xdp")
int bench_insert(struct xdp_md *ctx)
{
	return bench_insert_common(ctx, 0);
}

SEC("xdp")
int bench_insert_sync(struct xdp_md *ctx)
{
	return bench_insert_common(ctx, 1);
}

struct bpf_map;

static long bench_delete_one(struct bpf_map *map, struct bench_key *k, struct bench_state *v,
			     void *ctx)
{
	struct bench_key key;

	(void)map;
	(void)v;
	(void)ctx;
	__builtin_memcpy(&key, k, sizeof(key));
	bpf_map_delete_elem(&bench_insert_states, &key);
	return 0;
}

SEC("syscall")
int bench_insert_flush(void *ctx)
{
	(void)ctx;
	bpf_for_each_map_elem(&bench_insert_states, bench_delete_one, NULL, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
