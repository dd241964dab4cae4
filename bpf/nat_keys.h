/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * pfsync_nat_keys (issue 15): stack key -> wire key of every translated
 * state, so that a packet carrying the stack key finds its state (see
 * struct pfsync_state_nat in pfsync_common.h for why the state map is keyed
 * by the wire key). Not preallocated: only translated states take entries.
 */
#ifndef PFSYNC_BPF_NAT_KEYS_H
#define PFSYNC_BPF_NAT_KEYS_H

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PFSYNC_STATES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pfsync_key);
	__type(value, struct pfsync_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_nat_keys SEC(".maps");

#endif /* PFSYNC_BPF_NAT_KEYS_H */
