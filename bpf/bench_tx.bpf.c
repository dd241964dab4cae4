/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Load generator for bench/datapath's forwarding runs: run with
 * BPF_PROG_RUN in live-frame mode (BPF_F_TEST_XDP_LIVE_FRAMES) on the
 * client's veth, XDP_TX sends each test frame out of that veth, so the
 * firewall namespace receives packets much faster than a socket could
 * send them and its forwarding becomes the bottleneck.
 *
 * Live-frame mode recycles its pages without re-copying the input, and the
 * receiving stack rewrites them in place (TTL, checksum, Ethernet header
 * when forwarding), so every run first restores the frame's headers from
 * the template that userspace stores in bench_tx_frame.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define BENCH_TX_HDR 64 /* bytes restored: Ethernet + IPv4 + UDP + payload */

struct bench_tx_tmpl {
	__u8 bytes[BENCH_TX_HDR];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_tx_tmpl);
} bench_tx_frame SEC(".maps");

SEC("xdp")
int bench_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct bench_tx_tmpl *t;
	__u32 zero = 0;

	if (data + BENCH_TX_HDR > end)
		return XDP_ABORTED;
	t = bpf_map_lookup_elem(&bench_tx_frame, &zero);
	if (!t)
		return XDP_ABORTED;
	__builtin_memcpy(data, t->bytes, BENCH_TX_HDR);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
