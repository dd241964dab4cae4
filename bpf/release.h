/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The release program's state (its program is in pfsync_xdp.bpf.c).
 */
#ifndef PFSYNC_BPF_RELEASE_H
#define PFSYNC_BPF_RELEASE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "pfsync_common.h"
#include "maps.h"

/*
 * Release by redirect (pfsync_common.h): attached by the agent at tc egress
 * of its namespace's loopback device. A frame marked by the agent goes into
 * the ingress of the interface it was held on, as if received there; the
 * stack takes it from there. Native XDP does not run on a redirected skb, so
 * the datapath does not track it twice (generic XDP would: see
 * pfsync-agent(8)). Every other frame on lo passes untouched.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfsync_release_counters);
} pfsync_release_ctr SEC(".maps");

/* an interface the XDP program ran on (its slot names it, whatever its age) */
static __always_inline int xdp_if_known(__u32 ifindex)
{
	__u32 slot = ifindex % XDP_IF_SLOTS;
	struct pfx_xdp_if *e = bpf_map_lookup_elem(&pfsync_xdp_ifs, &slot);

	return ifindex && e && e->ifindex == ifindex;
}

#endif /* PFSYNC_BPF_RELEASE_H */
