/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Benchmark floor: the cheapest XDP program there is. bench/datapath runs it
 * with BPF_PROG_RUN to measure the fixed cost of one test run per packet.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int bench_empty(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
