/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * NAT (issue 15): the map and the types the datapath's structures embed.
 * The translation itself is in nat.h.
 *
 * pfsync_nat_keys: stack key -> wire key of every translated state, so that
 * a packet carrying the stack key finds its state (see struct
 * pfsync_state_nat in pfsync_common.h for why the state map is keyed by
 * the wire key). Not preallocated: only translated states take entries.
 */
#ifndef PFSYNC_BPF_NAT_MAPS_H
#define PFSYNC_BPF_NAT_MAPS_H

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PFSYNC_STATES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pfsync_key);
	__type(value, struct pfsync_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pfsync_nat_keys SEC(".maps");

enum nat_op {
	NAT_OP_NONE = 0,
	NAT_OP_SRC = 1, /* tc egress: the source becomes the wire key's */
	NAT_OP_DST = 2, /* XDP ingress: the destination becomes the stack key's */
	/*
	 * ICMP errors quoting a translated packet (nat.h): at XDP the quoted
	 * source becomes the stack key's and the outer destination with it;
	 * at tc the quoted destination becomes the wire key's, and the outer
	 * source with it.
	 */
	NAT_OP_ICMP_SRC = 3,
	NAT_OP_ICMP_DST = 4,
};

/*
 * What a packet's headers become (pfsync_percpu.rw), planned while it is
 * judged; the headers' places are copied in only when there is a rewrite.
 */
struct nat_rewrite {
	__u32 addr[4]; /* network order */
	__u16 port;    /* network order: TCP/UDP port or ICMP echo id */
	__u8 op;       /* enum nat_op */
	__u8 af;
	__u16 l3_off, l4_off;
	__u8 proto;
	__u8 later_frag;
	__u8 echo;	 /* ICMP echo request or reply: the id is the port */
	__u8 via_stack;	 /* NAT_VIA_STACK: the packet carried the stack key */
	__u16 in_l3_off; /* ICMP errors: the quoted IP header */
	__u16 in_l4_off; /* and its TCP/UDP/ICMP header */
	__u8 in_proto;
	__u8 in_echo;	 /* the quoted packet is an echo request: its id is the port */
	__s32 decider;	 /* the rule walk: deciding rule, -1 none */
	__s32 nat_match; /* last match rule with a translation, -1 none */
};

/* nat-to's port search (per-CPU scratch: bpf_loop's callback reads it there). */
struct nat_alloc {
	struct pfsync_key base;	     /* wire key, initiator at side 0, port to fill */
	struct pfsync_key cand;	     /* the candidate, normalised */
	struct pfsync_rule_nat rule; /* the translation (a copy of the rule's) */
	struct pfsync_nat_ports range;
	__u32 start;
	__u16 port; /* network order: the port that was free */
	__u8 init_side;
	__u8 pad;
	__s32 err; /* 0 found, -EEXIST all taken, else the insert's error */
};

#endif /* PFSYNC_BPF_NAT_MAPS_H */
