/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Structures and constants shared by the BPF datapath, the agent, pfsyncctl
 * and the host unit tests. Everything here must compile both with
 * `clang -target bpf` and with the host compiler, so only fixed-width types
 * from <linux/types.h> are used and there are no pointers.
 *
 * Byte order: addresses and ports are kept in network order (as on the wire
 * and in pf); every other integer is in host order. The agent converts to
 * pfsync's big-endian encoding at the wire boundary.
 *
 * Times are nanoseconds of CLOCK_BOOTTIME (bpf_ktime_get_boot_ns()), so that
 * the kernel and userspace agree and suspend does not make states immortal.
 */
#ifndef PFSYNC_COMMON_H
#define PFSYNC_COMMON_H

#include <linux/types.h>

/* ---- map names (pinned by name, LIBBPF_PIN_BY_NAME) ---------------------- */
#define PFSYNC_MAP_STATES	"pfsync_states"
#define PFSYNC_MAP_RULES	"pfsync_rules"
#define PFSYNC_MAP_EVENTS	"pfsync_events"
#define PFSYNC_MAP_DEFER	"pfsync_defer"
#define PFSYNC_MAP_CONFIG	"pfsync_config"
#define PFSYNC_MAP_GLOBALS	"pfsync_globals"
#define PFSYNC_MAP_COUNTERS	"pfsync_counters"
#define PFSYNC_MAP_FASTPATH_IFS "pfsync_fastpath_ifs"
#define PFSYNC_DEFAULT_PIN_DIR	"/sys/fs/bpf/tc/globals"

/* ---- sizes --------------------------------------------------------------- */
#ifndef PFSYNC_STATES_MAX
#define PFSYNC_STATES_MAX 100000 /* pf's PFSTATE_HIWAT */
#endif
#define PFSYNC_RULES_MAX	256	  /* rules per bank */
#define PFSYNC_RULE_BANKS	2	  /* double buffer: load one, flip */
#define PFSYNC_EVENTS_BYTES	(8 << 20) /* ringbuf size */
#define PFSYNC_DEFER_MAX	128	  /* pf's per-slice deferral limit */
#define PFSYNC_DEFER_PKT_MAX	1536	  /* largest frame that can be held */
#define PFSYNC_IFNAMSIZ		16
#define PFSYNC_FASTPATH_IFS_MAX 64 /* egress interfaces of the fast path */

/* ---- address families (Linux values inside; BSD values only on the wire) - */
#define PFSYNC_AF_INET	2
#define PFSYNC_AF_INET6 10

/* ---- pf direction ------------------------------------------------------- */
#define PF_INOUT 0
#define PF_IN	 1
#define PF_OUT	 2

/* ---- pf timeout classes (OpenBSD PFTM_* indices, sent on the wire) ------ */
enum pftm {
	PFTM_TCP_FIRST_PACKET = 0,
	PFTM_TCP_OPENING = 1,
	PFTM_TCP_ESTABLISHED = 2,
	PFTM_TCP_CLOSING = 3,
	PFTM_TCP_FIN_WAIT = 4,
	PFTM_TCP_CLOSED = 5,
	PFTM_UDP_FIRST_PACKET = 6,
	PFTM_UDP_SINGLE = 7,
	PFTM_UDP_MULTIPLE = 8,
	PFTM_ICMP_FIRST_PACKET = 9,
	PFTM_ICMP_ERROR_REPLY = 10,
	PFTM_OTHER_FIRST_PACKET = 11,
	PFTM_OTHER_SINGLE = 12,
	PFTM_OTHER_MULTIPLE = 13,
	PFTM_FRAG = 14,
	PFTM_INTERVAL = 15,
	PFTM_ADAPTIVE_START = 16,
	PFTM_ADAPTIVE_END = 17,
	PFTM_SRC_NODE = 18,
	PFTM_TS_DIFF = 19,
	PFTM_MAX = 20,
	PFTM_PURGE = 21,
	PFTM_UNLINKED = 22,
};

/* ---- BSD TCP states (tcp_fsm.h), used for pf peer states ----------------- */
enum bsd_tcps {
	TCPS_CLOSED = 0,
	TCPS_LISTEN = 1,
	TCPS_SYN_SENT = 2,
	TCPS_SYN_RECEIVED = 3,
	TCPS_ESTABLISHED = 4,
	TCPS_CLOSE_WAIT = 5,
	TCPS_FIN_WAIT_1 = 6,
	TCPS_CLOSING = 7,
	TCPS_LAST_ACK = 8,
	TCPS_FIN_WAIT_2 = 9,
	TCPS_TIME_WAIT = 10,
	PF_TCPS_PROXY_SRC = 11,
	PF_TCPS_PROXY_DST = 12,
};

/* UDP and "other" protocol peer states (pf's PFUDPS_* / PFOTHERS_*). */
#define PFUDPS_NO_TRAFFIC 0
#define PFUDPS_SINGLE	  1
#define PFUDPS_MULTIPLE	  2

/* pf's window scale encoding in a peer */
#define PF_WSCALE_FLAG 0x80
#define PF_WSCALE_MASK 0x0f

/* ---- pf state_flags (PFSTATE_*), as on the wire --------------------------- */
#define PFSTATE_ALLOWOPTS 0x0001
#define PFSTATE_SLOPPY	  0x0002
#define PFSTATE_PFLOW	  0x0004
#define PFSTATE_NOSYNC	  0x0008
#define PFSTATE_ACK	  0x0010

/* ---- local state flags (pfsync_state_value.flags) ----------------------- */
#define PFSYNC_SF_NOSYNC    0x0001 /* never sent to peers (rule no-sync)   */
#define PFSYNC_SF_FROM_PEER 0x0002 /* imported from a peer                 */
#define PFSYNC_SF_QUEUED    0x0004 /* a change record is waiting for send */
#define PFSYNC_SF_DEFERRED  0x0008 /* first packet held in pfsync_defer    */

/*
 * Connection key, normalised so that both directions of a connection find
 * the same entry: side 0 is the numerically smaller (addr, port) pair,
 * compared as bytes in network order. pfsync_state_value.init_side says
 * which side sent the first packet.
 *
 * ICMP echo follows pf: the initiator's port slot holds the echo id, the
 * responder's holds the echo-request type (8 or 128), both network order.
 */
struct pfsync_key {
	__u32 addr[2][4]; /* network order; IPv4 uses addr[i][0], rest zero */
	__u16 port[2];	  /* network order */
	__u8 proto;	  /* IP protocol */
	__u8 af;	  /* PFSYNC_AF_INET or PFSYNC_AF_INET6 */
	__u16 rdomain;	  /* always 0 for now: Linux VRFs are not mapped */
	__u16 pad;
};

/* One pf peer half (pf's struct pf_state_peer without scrub memory). */
struct pfsync_peer {
	__u32 seqlo;   /* highest sequence number sent */
	__u32 seqhi;   /* highest acked + window */
	__u32 seqdiff; /* sequence modulator, always 0 (no modulate state) */
	__u16 max_win; /* largest window seen, unscaled */
	__u16 mss;
	__u8 state;  /* TCPS_* for TCP, PFUDPS_* otherwise */
	__u8 wscale; /* PF_WSCALE_FLAG | shift, 0 if not negotiated */
	__u8 pad[2];
};

/* ---- NAT (issue 15) ----------------------------------------------------- */
/*
 * A translated state has two keys, as in pf (pfsync-wire.md §2.5-2.6): the
 * wire key (addresses as on the wire outside: after nat-to, before rdr-to)
 * and the stack key (as the hosts behind the firewall see them).
 *
 * pfsync_states is keyed by the WIRE key, as for every state (a state
 * without translation has one key, both are equal). A translated state
 * keeps its stack key in its value (nat.stack_key) and has a second entry
 * in pfsync_nat_keys: stack key -> wire key. So:
 *  - an established packet of an untranslated state still costs one lookup
 *    (the alias map is only read after pfsync_states missed);
 *  - a packet with the stack key costs two (alias, then state); its state
 *    value is never duplicated, so counters and TCP windows stay one;
 *  - a peer's state (imported under key[0], aliased under key[1]) occupies
 *    its public tuple in pfsync_states, which is exactly where the port
 *    allocator looks: an allocation never hands out a tuple a peer's state
 *    holds.
 * Which packets are rewritten (pf: nat-to after routing, rdr-to before):
 * XDP ingress turns wire-key packets into stack-key ones when they travel
 * towards the stack side (a nat-to state's replies, an rdr-to state's
 * requests); tc egress turns stack-key packets into wire-key ones in the
 * other direction (nat-to requests, rdr-to replies).
 */
#define PFSYNC_MAP_NAT_KEYS "pfsync_nat_keys"

enum pfsync_nat_type {
	PFSYNC_NAT_NONE = 0,
	PFSYNC_NAT_NAT = 1,   /* nat-to: the initiator's source is rewritten */
	PFSYNC_NAT_RDR = 2,   /* rdr-to: the initiator's destination is rewritten */
	PFSYNC_NAT_BINAT = 3, /* binat-to: nat-to outbound, rdr-to inbound */
};

#define PFSYNC_NATF_STATIC_PORT 0x01 /* nat-to static-port: the source port is kept */
#define PFSYNC_NATF_IFADDR	0x02 /* (IF): the address follows nat.ifindex's first one */
#define PFSYNC_NATF_PORT	0x04 /* a port (rdr-to) or port range (nat-to) was given */
/*
 * (IF) with no address of the rule's family now (an interface not up yet,
 * DHCP or PPP still to come, or its address removed): new connections
 * through the rule are dropped and counted as nat_exhausted, as pf drops
 * what it cannot map, until the agent sees an address (agent/ruleset.c).
 */
#define PFSYNC_NATF_NOADDR 0x08

/* pf's nat-to source port range when none is given */
#define PFSYNC_NAT_PORT_LOW  50001
#define PFSYNC_NAT_PORT_HIGH 65535

/* The translation a rule asks for (struct pfsync_rule.nat). */
struct pfsync_rule_nat {
	__u32 addr[4];	/* network order: nat-to/rdr-to/binat-to ADDR */
	__u32 ifindex;	/* (IF): the interface whose first address is used */
	__u16 port_low; /* host order: nat-to range, or rdr-to's port (low == high) */
	__u16 port_high;
	__u8 type;   /* enum pfsync_nat_type */
	__u8 af;     /* family of addr */
	__u8 nflags; /* PFSYNC_NATF_* */
	__u8 pad;
};

/* The other key of a translated state (struct pfsync_state_value.nat). */
struct pfsync_state_nat {
	struct pfsync_key stack_key; /* normalised; valid when type != 0 */
	__u8 type;		     /* enum pfsync_nat_type, 0 = untranslated */
	__u8 stack_init_side;	     /* side of stack_key that sent the first packet */
	__u8 pad[2];
};

/*
 * One connection. peer[0] is pf's "src" (the initiator), peer[1] its "dst".
 * packets[0]/bytes[0] count initiator -> responder.
 */
struct pfsync_state_value {
	__u64 id;	  /* host order; wire sends htobe64(id) */
	__u32 creatorid;  /* hostid of the creator, host order */
	__u32 rule;	  /* rule number, 0xffffffff if none (default pass) */
	__u64 creation;	  /* CLOCK_BOOTTIME ns */
	__u64 last_seen;  /* CLOCK_BOOTTIME ns of last activity (expiry base) */
	__u64 packets[2]; /* [0] initiator->responder, [1] reverse */
	__u64 bytes[2];
	struct pfsync_peer peer[2];
	__u32 ifindex;	   /* interface the state was created on */
	__u32 flags;	   /* PFSYNC_SF_*, changed with atomic ops */
	__u32 updates;	   /* updates taken while queued (maxupd) */
	__u16 state_flags; /* PFSTATE_* (SLOPPY, NOSYNC, ACK) */
	__u8 direction;	   /* PF_IN or PF_OUT (where the first packet was seen) */
	__u8 init_side;	   /* key side (0/1) that sent the first packet */
	__u8 timeout;	   /* enum pftm */
	__u8 pad[7];
	struct pfsync_state_nat nat; /* translation (issue 15); nat.type 0 = none */
};

/* ---- change records on the pfsync_events ringbuf ------------------------ */
enum pfsync_event_type {
	PFSYNC_EV_INSERT = 1, /* new local state                           */
	PFSYNC_EV_UPDATE = 2, /* state changed, was not queued             */
	PFSYNC_EV_DELETE = 3, /* state removed (expiry or local flush)     */
	PFSYNC_EV_LOST = 4,   /* `lost` records could not be reserved      */
};

#define PFSYNC_EVF_MAXUPD 0x01 /* TCP state reached maxupd: send now */
#define PFSYNC_EVF_ACK	  0x02 /* insert of a deferred packet: send now */

struct pfsync_event {
	__u8 type;    /* enum pfsync_event_type */
	__u8 evflags; /* PFSYNC_EVF_* */
	__u16 pad;
	__u32 lost;		 /* PFSYNC_EV_LOST: records lost since the last report */
	__u64 id;		 /* state identity, so a delete can be named after;
				  * PFSYNC_EV_LOST: CLOCK_BOOTTIME ns of the report */
	__u32 creatorid;	 /* the entry is gone                            */
	__u32 state_flags_local; /* value.flags at the time of the event */
	struct pfsync_key key;
	__u32 pad2;
};

/* ---- ruleset ------------------------------------------------------------ */
#define PFSYNC_RULE_PASS  0
#define PFSYNC_RULE_BLOCK 1
#define PFSYNC_RULE_MATCH 2 /* pf's match: applies its nat, decides nothing */

#define PFSYNC_RF_QUICK	     0x0001
#define PFSYNC_RF_KEEP_STATE 0x0002 /* pass rules keep state by default, as pf */
#define PFSYNC_RF_NOSYNC     0x0004
#define PFSYNC_RF_SLOPPY     0x0008
#define PFSYNC_RF_PROTO	     0x0010 /* proto is set */
#define PFSYNC_RF_SRC_PORT   0x0020 /* src_port is set */
#define PFSYNC_RF_DST_PORT   0x0040 /* dst_port is set */

struct pfsync_rule {
	__u32 src_addr[4]; /* network order, masked */
	__u32 src_mask[4];
	__u32 dst_addr[4];
	__u32 dst_mask[4];
	__u32 ifindex;	/* 0 = any interface */
	__u32 rflags;	/* PFSYNC_RF_* */
	__u16 src_port; /* network order */
	__u16 dst_port; /* network order */
	__u8 action;	/* PFSYNC_RULE_PASS / BLOCK */
	__u8 dir;	/* PF_INOUT (any), PF_IN, PF_OUT */
	__u8 af;	/* 0 = any, PFSYNC_AF_INET, PFSYNC_AF_INET6 */
	__u8 proto;	/* valid when PFSYNC_RF_PROTO */
	__u8 src_plen;	/* 0..128, for display; 0 with af 0 = any */
	__u8 dst_plen;
	__u8 pad[2];
	char ifname[PFSYNC_IFNAMSIZ];	  /* for display */
	struct pfsync_rule_nat nat;	  /* nat-to / rdr-to / binat-to (issue 15) */
	char nat_ifname[PFSYNC_IFNAMSIZ]; /* (IF) of nat-to, for display */
};

/* ---- runtime configuration (pfsync_config, ARRAY of 1) ------------------ */
#define PFSYNC_CFG_DEFER 0x0001 /* hold the first packet of new states */
/*
 * adaptive.start / adaptive.end were set explicitly (`set timeout`), 0
 * included: 0 in timeouts[] alone means "derive it from the state limit".
 */
#define PFSYNC_CFG_ADAPTIVE_START 0x0002
#define PFSYNC_CFG_ADAPTIVE_END	  0x0004
#define PFSYNC_CFG_FASTPATH	  0x0008 /* established flows routed in XDP (bpf/fastpath.h) */

struct pfsync_config {
	__u32 timeouts[PFTM_MAX]; /* seconds (adaptive: state counts) */
	__u32 maxupd;		  /* 0 means the default 128 */
	__u32 cfg_flags;	  /* PFSYNC_CFG_* */
	__u32 rules_bank;	  /* active bank of pfsync_rules: 0 or 1 */
	__u32 nrules;		  /* rules in the active bank; 0 = pass all */
	__u32 state_limit;	  /* `set limit states`; 0 = the table size */
	__u32 table_size;	  /* pfsync_states max_entries, written at load */
};

/*
 * Identity and cross-CPU accumulators (pfsync_globals, ARRAY of 1). Kept
 * apart from pfsync_config because the datapath changes it with atomics
 * while userspace rewrites the configuration as a whole.
 */
struct pfsync_globals {
	__u64 next_id;	     /* next state id; high 32 bits = start seconds */
	__u32 hostid;	     /* creatorid of local states, never 0 */
	__u32 states_count;  /* entries seen by the last sweep (adaptive) */
	__u64 lost_pending;  /* ringbuf records lost, not yet reported */
	__u64 last_sweep_ns; /* when the last sweep ran */
};

/*
 * Fast path (bpf/fastpath.h): what became of a packet of a known state at
 * XDP ingress while the fast path is on. FORWARDED packets were redirected
 * (an outcome of their own, not in packets_passed); the others went to the
 * stack (also counted in packets_passed) for the reason named.
 */
enum pfsync_fp_reason {
	PFSYNC_FP_FORWARDED = 0,
	PFSYNC_FP_NOT_READY,	  /* state has not seen both directions (or closing) */
	PFSYNC_FP_NOT_OURS,	  /* ingress not in the set, or frame not sent to its MAC */
	PFSYNC_FP_VLAN,		  /* tagged frame */
	PFSYNC_FP_IP_OPTIONS,	  /* IPv4 options, IPv6 extension headers */
	PFSYNC_FP_FRAGMENT,	  /* first fragment (later ones have no state) */
	PFSYNC_FP_TTL,		  /* TTL / hop limit <= 1 */
	PFSYNC_FP_NO_ROUTE,	  /* unreachable, blackhole, prohibit, forwarding off */
	PFSYNC_FP_NO_NEIGH,	  /* next hop not resolved yet */
	PFSYNC_FP_NOT_FWDED,	  /* local destination, broadcast, or no route at all */
	PFSYNC_FP_MTU,		  /* larger than the egress MTU */
	PFSYNC_FP_EGRESS_NOT_SET, /* egress interface not in pfsync_fastpath_ifs */
	PFSYNC_FP_REASONS,
};

#define PFSYNC_FP_DIRS 2 /* [0] from the state's initiator, [1] from its responder */

/*
 * pfsync_fastpath_ifs values (HASH, key ifindex): the interfaces running
 * pfsync-xdp that the fast path forwards between, with their MAC address:
 * only a frame sent to the MAC of its ingress interface is forwarded (in
 * promiscuous mode, under a bridge or tcpdump, others arrive too, which
 * the stack would drop).
 */
struct pfsync_fastpath_if {
	__u8 mac[6];
	__u16 pad;
};

/* ---- datapath counters (pfsync_counters, PERCPU_ARRAY of 1) ------------- */
/*
 * Accounting (issue 12): every packet a program sees ends in exactly one
 * outcome, counted per program in pfsync_counters.prog[]. `unaccounted`
 * (seen minus the sum of the outcomes) must be 0 once traffic is quiet: a
 * packet that is dropped or passed without an outcome is a bug. The reason
 * counters further down (blocked_rule, no_state, ...) add up both programs
 * and keep their names; the outcomes split them per program.
 * Slots up to PFSYNC_OUT_SLOTS are reserved, so that outcomes can be added
 * (e.g. a fast path) without changing the layout.
 */
enum pfsync_outcome {
	PFSYNC_OUT_PASSED = 0,	       /* tracked (or ruled) and passed */
	PFSYNC_OUT_NOT_IP = 1,	       /* ARP and other non-IP: passed untouched */
	PFSYNC_OUT_STATELESS = 2,      /* pfsync / CARP: passed, never a state */
	PFSYNC_OUT_DEFERRED = 3,       /* held in pfsync_defer, released later */
	PFSYNC_OUT_RELEASED = 4,       /* a held frame the agent released: passed */
	PFSYNC_OUT_BAD = 5,	       /* drop: truncated or malformed */
	PFSYNC_OUT_BLOCKED = 6,	       /* drop: block rule */
	PFSYNC_OUT_NO_STATE = 7,       /* drop: no state, no rule creates one */
	PFSYNC_OUT_WINDOW = 8,	       /* drop: TCP outside the tracked window */
	PFSYNC_OUT_TABLE_FULL = 9,     /* drop: state refused, table full */
	PFSYNC_OUT_RACE = 10,	       /* drop: insert lost to another CPU twice */
	PFSYNC_OUT_INTERNAL = 11,      /* drop: a map lookup that cannot fail failed */
	PFSYNC_OUT_FASTPATH = 12,      /* forwarded by the XDP fast path (redirect) */
	PFSYNC_OUT_NAT_EXHAUSTED = 13, /* drop: nat-to found no free translated tuple */
	PFSYNC_OUT_COUNT = 14,	       /* outcomes defined */
};
#define PFSYNC_OUT_SLOTS 16 /* power of two: the datapath masks the index */

enum pfsync_prog_idx {
	PFSYNC_PROG_XDP = 0,
	PFSYNC_PROG_TC = 1,
	PFSYNC_PROG_COUNT = 2,
};

struct pfsync_prog_outcomes {
	__u64 seen;
	__u64 outcome[PFSYNC_OUT_SLOTS]; /* enum pfsync_outcome */
};

struct pfsync_counters {
	__u64 packets_seen;
	__u64 packets_passed;
	__u64 blocked_rule;
	__u64 no_state;	     /* no state and no rule would create one */
	__u64 bad_packet;    /* truncated / malformed headers */
	__u64 out_of_window; /* TCP packet outside the tracked window */
	__u64 table_full;    /* state refused: table at its limit */
	__u64 ringbuf_lost;  /* change records not reserved */
	__u64 states_inserted;
	__u64 states_removed;
	__u64 fragments; /* non-first fragments (matched without ports) */
	__u64 defer_held;
	__u64 defer_too_big;
	__u64 defer_full;
	/* ---- fast path (issue 16): a block of its own ---- */
	__u64 fastpath[PFSYNC_FP_REASONS][PFSYNC_FP_DIRS];
	/* accounting (issue 12): outcomes per program, see enum pfsync_outcome */
	struct pfsync_prog_outcomes prog[PFSYNC_PROG_COUNT];
	__u64 nat_exhausted; /* nat-to: every candidate tuple in use, or (IF) without address */
};

/* ---- control programs run with BPF_PROG_RUN (SEC("syscall")) ----------- */
/*
 * pfsync_sweep: walks pfsync_states with bpf_for_each_map_elem, deletes due
 * states (or all of them with PFSYNC_SWEEP_FLUSH) and emits a DELETE record
 * for each removed state that is not NOSYNC (none with PFSYNC_SWEEP_QUIET).
 *
 * With PFSYNC_SWEEP_KEYS it visits only keys[0..count): the agent's expiry
 * pass reads the map in batches and hands over the states it found due, a
 * chunk at a time, so no single call holds the CPU for a whole-map walk.
 * Each key is checked again against its live value (a state refreshed since
 * it was read stays). PFSYNC_SWEEP_PASS_END marks the pass's last chunk:
 * pass_seen becomes pfsync_globals.states_count, as a full sweep's count.
 */
#define PFSYNC_PROG_SWEEP     "pfsync_sweep"
#define PFSYNC_SWEEP_FLUSH    0x1  /* delete every state */
#define PFSYNC_SWEEP_QUIET    0x2  /* emit no delete records (flush sent as CLR) */
#define PFSYNC_SWEEP_CREATOR  0x4  /* only states of `creatorid` (CLR from peer) */
#define PFSYNC_SWEEP_KEYS     0x8  /* only keys[0..count), not the whole map */
#define PFSYNC_SWEEP_PASS_END 0x10 /* with KEYS: the pass is over (pass_seen) */
#define PFSYNC_SWEEP_BATCH    64   /* keys per PFSYNC_SWEEP_KEYS call */

struct pfsync_sweep_args {
	__u64 now_ns;	   /* in: 0 = kernel's CLOCK_BOOTTIME */
	__u32 sweep_flags; /* in: PFSYNC_SWEEP_* */
	__u32 creatorid;   /* in: with PFSYNC_SWEEP_CREATOR */
	__u32 seen;	   /* out: states visited */
	__u32 deleted;	   /* out: states removed */
	__u32 count;	   /* in: with PFSYNC_SWEEP_KEYS, keys used */
	__u32 pass_seen;   /* in: with PFSYNC_SWEEP_PASS_END, states the pass read */
	struct pfsync_key keys[PFSYNC_SWEEP_BATCH]; /* in: with PFSYNC_SWEEP_KEYS */
};

/*
 * pfsync_unqueue: the agent hands back up to PFSYNC_UNQUEUE_BATCH keys whose
 * change it has packed; the program clears PFSYNC_SF_QUEUED and `updates`
 * with atomics, so that no concurrent datapath write is lost.
 */
#define PFSYNC_PROG_UNQUEUE  "pfsync_unqueue"
#define PFSYNC_UNQUEUE_BATCH 64

struct pfsync_unqueue_args {
	__u32 count; /* in: keys used */
	__u32 done;  /* out: keys found and cleared */
	struct pfsync_key keys[PFSYNC_UNQUEUE_BATCH];
};

/*
 * XDP metadata (4 bytes) in front of a held frame the agent releases with
 * BPF_PROG_RUN: the XDP program passes such a frame untracked, as pf lets
 * its released deferred packets through. Only BPF can set metadata.
 */
#define PFSYNC_DEFER_META     0x66446670u /* "pfDf" */
#define PFSYNC_DEFER_META_LEN 4

/*
 * Release by redirect (no live-frame test run needed): the agent sends a
 * held ingress frame from a packet socket on the loopback device with
 * SO_MARK = PFSYNC_RELEASE_MARK and SO_PRIORITY = the frame's ingress
 * ifindex; pfsync_release (tc egress on lo) clears both and redirects the
 * frame into that interface's ingress, or drops it (counted) when the
 * target is no interface the XDP program runs on. Priority 0 is the agent's
 * start-up probe: counted and dropped.
 */
#define PFSYNC_PROG_RELEASE	 "pfsync_release"
#define PFSYNC_MAP_RELEASE_CTR	 "pfsync_release_ctr"
#define PFSYNC_RELEASE_MARK	 0x70665278u /* "pfRx" */
#define PFSYNC_RELEASE_PROBE_IFX 0

/* pfsync_release_ctr (PERCPU_ARRAY of 1, the agent's own, not pinned) */
struct pfsync_release_counters {
	__u64 redirected; /* sent into a datapath interface's ingress */
	__u64 refused;	  /* marked, but the target is not a datapath interface: dropped */
	__u64 probes;	  /* the agent's start-up probe frames: dropped */
};

/* A packet held by defer (pfsync_defer QUEUE values). */
struct pfsync_deferred {
	struct pfsync_key key;
	__u64 held_ns;
	__u32 ifindex;	/* where it arrived (XDP) or was leaving (tc) */
	__u16 len;	/* bytes used in data */
	__u8 at_egress; /* 0 = XDP ingress, 1 = tc egress */
	__u8 pad;
	__u8 data[PFSYNC_DEFER_PKT_MAX];
};

#endif /* PFSYNC_COMMON_H */
