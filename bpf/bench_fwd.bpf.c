/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Benchmark floor of the fast path: every frame is routed and redirected
 * the way bpf/fastpath.h does it for a pfsync state (the same set lookups,
 * bpf_fib_lookup, Ethernet and TTL rewrite, bpf_redirect), with no state
 * table at all. What is left of pfsync_xdp's fast-path cost above it is
 * the state tracking. Its pfsync_fastpath_ifs is pinned by name like
 * pfsync_xdp's, so both use one interface set when they share a pin dir.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "fastpath.h"

SEC("xdp")
int bench_fwd(struct xdp_md *ctx)
{
	return fp_route(ctx, NULL) == PFSYNC_FP_FORWARDED ? XDP_REDIRECT : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
