/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Datapath maps, pinned by name so that XDP, tc (loaded separately by
 * iproute2), the agent and pfsyncctl share them, the per-CPU scratch, and
 * the getters of the single-entry config and globals maps.
 * Included by pfsync_xdp.bpf.c only: one object, one copy of each map.
 */
#ifndef PFSYNC_BPF_MAPS_H
#define PFSYNC_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "pfsync_common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PFSYNC_STATES_MAX);
	__type(key, struct pfsync_key);
	__type(value, struct pfsync_state_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PFSYNC_RULES_MAX *PFSYNC_RULE_BANKS);
	__type(key, __u32);
	__type(value, struct pfsync_rule);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PFSYNC_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, PFSYNC_DEFER_MAX);
	__type(value, struct pfsync_deferred);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_defer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfsync_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfsync_globals);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_globals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfsync_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_counters SEC(".maps");

/*
 * The datapath's per-CPU scratch, all behind one lookup:
 * - CLOCK_BOOTTIME read once per jiffy: the helper costs about as much as
 *   the rest of an established packet's path, and last_seen only needs to
 *   be right to well under a second (timeouts are whole seconds).
 * - A block of PFX_ID_BLOCK state ids reserved from pfsync_globals.next_id
 *   with one atomic add, so that creating a state does not bounce that
 *   cache line between CPUs (nor wait for a locked add) every time. Ids
 *   stay unique (each block is handed out once); across CPUs they are not
 *   in creation order, which nothing relies on (pf's wire and the agent
 *   only need (id, creatorid) to be unique). The tc program, loaded on its
 *   own by iproute2, has its own copy of this map and its own blocks.
 * - The value of a state being created (too big for the stack as well).
 */
#define PFX_ID_BLOCK 64

#include "nat_maps.h"

struct pfx_percpu {
	__u64 jiffies;
	__u64 boot_ns;
	__u64 id_next; /* next id of this CPU's block */
	__u64 id_end;  /* first id past it */
	struct pfsync_state_value nv;
	struct nat_alloc na;   /* nat-to's port search (nat.h) */
	struct nat_rewrite rw; /* what NAT makes of this packet's headers (nat.h) */
	/*
	 * A key a NAT global function was handed, copied here before it names
	 * a map element: 6.1's verifier refuses a global function's memory
	 * argument as a map key (accepted from 6.2), and a stack copy would
	 * take XDP's frames past 512 bytes.
	 */
	struct pfsync_key key_arg;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pfx_percpu);
} pfsync_percpu SEC(".maps");

/*
 * Interfaces the XDP program ran on lately, slot ifindex % XDP_IF_SLOTS.
 * A forwarded packet meets the state twice, at XDP ingress and at tc
 * egress; pf counts a packet once per state, so tc egress leaves a state
 * alone when the packet came in on an interface whose XDP program already
 * tracked and counted it. Shared (not per-CPU) so that RPS or a test
 * moving between CPUs does not matter; written only when a slot changes
 * (at most once per jiffy). Pinned: iproute2 loads XDP and tc separately.
 */
#define XDP_IF_SLOTS	 256
#define XDP_IF_FRESH_JIF 1000 /* 1 to 10 s: longer than any packet's way through */

struct pfx_xdp_if {
	__u32 ifindex;
	__u32 jiffies; /* low 32 bits of jiffies64 when XDP last ran on it */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XDP_IF_SLOTS);
	__type(key, __u32);
	__type(value, struct pfx_xdp_if);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_xdp_ifs SEC(".maps");

static __always_inline struct pfsync_globals *globals_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pfsync_globals, &zero);
}

static __always_inline struct pfsync_config *config_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pfsync_config, &zero);
}

#endif /* PFSYNC_BPF_MAPS_H */
