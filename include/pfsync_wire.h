/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * OpenBSD pfsync protocol version 6 on the wire (see pfsync-wire.md §1-§2).
 *
 * Every structure is byte-packed: a 264-byte state after the 24-byte packet
 * prefix puts 64-bit fields on 4-byte boundaries, so nothing may be read
 * through these types with a plain load on strict-alignment machines.
 * Userspace copies fields out with memcpy (lib/pfsync_wire.c does). Only
 * <linux/types.h> is used so the header also compiles for BPF programs.
 *
 * Byte order: __be* fields are big-endian; addresses, ports and ids are
 * "raw" (already network order in pf). AF values are BSD's (2 / 24).
 */
#ifndef PFSYNC_WIRE_H
#define PFSYNC_WIRE_H

#include <linux/types.h>

#define PFSYNC_VERSION 6
#ifndef IPPROTO_PFSYNC
#define IPPROTO_PFSYNC 240
#endif
#define PFSYNC_GROUP_ADDR  0xe00000f0 /* 224.0.0.240, host order */
#define PFSYNC_DFLTTL	   255	      /* sent and required TTL */
#define PFSYNC_IPTOS	   0x10	      /* IPTOS_LOWDELAY */
#define PFSYNC_IP_HDRLEN   20	      /* mtu counts the IPv4 header, no options */
#define PFSYNC_DEFAULT_MTU 1500

/* address families as BSD puts them on the wire */
#define PFSYNC_WIRE_AF_INET  2
#define PFSYNC_WIRE_AF_INET6 24

/* ---- actions (subheader.action) ------------------------------------------ */
#define PFSYNC_ACT_CLR	   0  /* clear all states of a creator */
#define PFSYNC_ACT_OINS	   1  /* deprecated, skipped */
#define PFSYNC_ACT_INS_ACK 2  /* ack of an insert carrying PFSTATE_ACK */
#define PFSYNC_ACT_OUPD	   3  /* deprecated, skipped */
#define PFSYNC_ACT_UPD_C   4  /* compressed state update */
#define PFSYNC_ACT_UPD_REQ 5  /* request a full update (0,0 = bulk) */
#define PFSYNC_ACT_DEL	   6  /* delete, full state (accepted, never sent) */
#define PFSYNC_ACT_DEL_C   7  /* compressed delete */
#define PFSYNC_ACT_INS_F   8  /* fragment insert, never implemented */
#define PFSYNC_ACT_DEL_F   9  /* fragment delete, never implemented */
#define PFSYNC_ACT_BUS	   10 /* bulk update status */
#define PFSYNC_ACT_OTDB	   11 /* old TDB, skipped */
#define PFSYNC_ACT_EOF	   12 /* deprecated end of frame, skipped */
#define PFSYNC_ACT_INS	   13 /* insert state */
#define PFSYNC_ACT_UPD	   14 /* full state update */
#define PFSYNC_ACT_TDB	   15 /* IPsec SA replay counters */
#define PFSYNC_ACT_MAX	   16

/* BUS status */
#define PFSYNC_BUS_START 1
#define PFSYNC_BUS_END	 2

/* pfsync_state.sync_flags */
#define PFSYNC_FLAG_SRCNODE    0x04
#define PFSYNC_FLAG_NATSRCNODE 0x08

/* pfsync_state_scrub.scrub_flag */
#define PFSYNC_SCRUB_FLAG_VALID 0x01

/* pf route types (pfsync_state.rt) */
#define PFSYNC_RT_NONE 0

/* ---- structures ----------------------------------------------------------- */
struct pfsync_header {
	__u8 version; /* PFSYNC_VERSION */
	__u8 _pad;
	__be16 len;	  /* bytes from this header to the end of the last section */
	__u8 pfcksum[16]; /* ruleset digest: sent as zeros, ignored */
} __attribute__((packed));

struct pfsync_subheader {
	__u8 action; /* PFSYNC_ACT_* */
	__u8 len;    /* size of one message in 4-byte words */
	__be16 count;
} __attribute__((packed));

struct pfsync_state_scrub {
	__be16 pfss_flags;
	__u8 pfss_ttl;
	__u8 scrub_flag;
	__be32 pfss_ts_mod;
} __attribute__((packed));

struct pfsync_state_peer {
	struct pfsync_state_scrub scrub;
	__be32 seqlo;
	__be32 seqhi;
	__be32 seqdiff;
	__be16 max_win;
	__be16 mss;
	__u8 state; /* BSD TCPS_* or PFUDPS_* level */
	__u8 wscale;
	__u8 pad[6];
} __attribute__((packed));

struct pfsync_state_key {
	__u8 addr[2][16]; /* raw, IPv4 in the first 4 bytes */
	__be16 port[2];	  /* raw */
	__be16 rdomain;
	__u8 af; /* 2 / 24, 0 = same as the state */
	__u8 pad;
} __attribute__((packed));

struct pfsync_state {
	__be64 id; /* raw */
	char ifname[16];
	struct pfsync_state_key key[2]; /* [0] wire, [1] stack */
	struct pfsync_state_peer src;	/* initiator */
	struct pfsync_state_peer dst;	/* responder */
	__u8 rt_addr[16];
	__be32 rule;
	__be32 anchor;
	__be32 nat_rule;
	__be32 creation;      /* age in seconds */
	__be32 expire;	      /* seconds remaining */
	__be32 packets[2][2]; /* BE u64 as high word, low word */
	__be32 bytes[2][2];
	__be32 creatorid; /* raw */
	__be32 rtableid[2];
	__be16 max_mss;
	__u8 af;
	__u8 proto;
	__u8 direction;
	__u8 log;
	__u8 rt;
	__u8 timeout;
	__u8 sync_flags;
	__u8 updates;
	__u8 min_ttl;
	__u8 set_tos;
	__be16 state_flags;
	__u8 set_prio[2];
} __attribute__((packed));

struct pfsync_clr {
	char ifname[16]; /* empty = every interface */
	__be32 creatorid;
} __attribute__((packed));

struct pfsync_ins_ack {
	__be64 id;
	__be32 creatorid;
} __attribute__((packed));

struct pfsync_upd_c {
	__be64 id;
	struct pfsync_state_peer src;
	struct pfsync_state_peer dst;
	__be32 creatorid;
	__be32 expire; /* OpenBSD sends 0 and ignores it */
	__u8 timeout;
	__u8 state_flags;
	__u8 _pad[2];
} __attribute__((packed));

struct pfsync_upd_req {
	__be64 id; /* id 0 + creatorid 0 = bulk request */
	__be32 creatorid;
} __attribute__((packed));

struct pfsync_del_c {
	__be64 id;
	__be32 creatorid;
} __attribute__((packed));

struct pfsync_bus {
	__be32 creatorid;
	__be32 endtime;
	__u8 status; /* PFSYNC_BUS_START / END */
	__u8 _pad[3];
} __attribute__((packed));

struct pfsync_tdb {
	__be32 spi;
	__u8 dst[28]; /* BSD sockaddr_union */
	__be64 rpl;
	__be64 cur_bytes;
	__u8 sproto;
	__u8 updates;
	__be16 rdomain;
} __attribute__((packed));

#define PFSYNC_HDRLEN sizeof(struct pfsync_header)

/* ---- layout checks: pfsync-wire.md §1.3-§2.9 ------------------------------ */
#define PFSYNC_WIRE_AT(type, field, off)                                                           \
	_Static_assert(__builtin_offsetof(struct type, field) == (off), #type "." #field " "       \
									      "@" #off)
#define PFSYNC_WIRE_SIZE(type, size)                                                               \
	_Static_assert(sizeof(struct type) == (size), "sizeof " #type " == " #size)

PFSYNC_WIRE_SIZE(pfsync_header, 20);
PFSYNC_WIRE_AT(pfsync_header, version, 0);
PFSYNC_WIRE_AT(pfsync_header, len, 2);
PFSYNC_WIRE_AT(pfsync_header, pfcksum, 4);

PFSYNC_WIRE_SIZE(pfsync_subheader, 4);
PFSYNC_WIRE_AT(pfsync_subheader, action, 0);
PFSYNC_WIRE_AT(pfsync_subheader, len, 1);
PFSYNC_WIRE_AT(pfsync_subheader, count, 2);

PFSYNC_WIRE_SIZE(pfsync_state_scrub, 8);
PFSYNC_WIRE_AT(pfsync_state_scrub, pfss_ttl, 2);
PFSYNC_WIRE_AT(pfsync_state_scrub, scrub_flag, 3);
PFSYNC_WIRE_AT(pfsync_state_scrub, pfss_ts_mod, 4);

PFSYNC_WIRE_SIZE(pfsync_state_peer, 32);
PFSYNC_WIRE_AT(pfsync_state_peer, seqlo, 8);
PFSYNC_WIRE_AT(pfsync_state_peer, seqhi, 12);
PFSYNC_WIRE_AT(pfsync_state_peer, seqdiff, 16);
PFSYNC_WIRE_AT(pfsync_state_peer, max_win, 20);
PFSYNC_WIRE_AT(pfsync_state_peer, mss, 22);
PFSYNC_WIRE_AT(pfsync_state_peer, state, 24);
PFSYNC_WIRE_AT(pfsync_state_peer, wscale, 25);
PFSYNC_WIRE_AT(pfsync_state_peer, pad, 26);

PFSYNC_WIRE_SIZE(pfsync_state_key, 40);
PFSYNC_WIRE_AT(pfsync_state_key, addr[1], 16);
PFSYNC_WIRE_AT(pfsync_state_key, port[0], 32);
PFSYNC_WIRE_AT(pfsync_state_key, port[1], 34);
PFSYNC_WIRE_AT(pfsync_state_key, rdomain, 36);
PFSYNC_WIRE_AT(pfsync_state_key, af, 38);
PFSYNC_WIRE_AT(pfsync_state_key, pad, 39);

PFSYNC_WIRE_SIZE(pfsync_state, 264);
PFSYNC_WIRE_AT(pfsync_state, id, 0);
PFSYNC_WIRE_AT(pfsync_state, ifname, 8);
PFSYNC_WIRE_AT(pfsync_state, key[0], 24);
PFSYNC_WIRE_AT(pfsync_state, key[1], 64);
PFSYNC_WIRE_AT(pfsync_state, src, 104);
PFSYNC_WIRE_AT(pfsync_state, dst, 136);
PFSYNC_WIRE_AT(pfsync_state, rt_addr, 168);
PFSYNC_WIRE_AT(pfsync_state, rule, 184);
PFSYNC_WIRE_AT(pfsync_state, anchor, 188);
PFSYNC_WIRE_AT(pfsync_state, nat_rule, 192);
PFSYNC_WIRE_AT(pfsync_state, creation, 196);
PFSYNC_WIRE_AT(pfsync_state, expire, 200);
PFSYNC_WIRE_AT(pfsync_state, packets[0], 204);
PFSYNC_WIRE_AT(pfsync_state, packets[1], 212);
PFSYNC_WIRE_AT(pfsync_state, bytes[0], 220);
PFSYNC_WIRE_AT(pfsync_state, bytes[1], 228);
PFSYNC_WIRE_AT(pfsync_state, creatorid, 236);
PFSYNC_WIRE_AT(pfsync_state, rtableid[0], 240);
PFSYNC_WIRE_AT(pfsync_state, rtableid[1], 244);
PFSYNC_WIRE_AT(pfsync_state, max_mss, 248);
PFSYNC_WIRE_AT(pfsync_state, af, 250);
PFSYNC_WIRE_AT(pfsync_state, proto, 251);
PFSYNC_WIRE_AT(pfsync_state, direction, 252);
PFSYNC_WIRE_AT(pfsync_state, log, 253);
PFSYNC_WIRE_AT(pfsync_state, rt, 254);
PFSYNC_WIRE_AT(pfsync_state, timeout, 255);
PFSYNC_WIRE_AT(pfsync_state, sync_flags, 256);
PFSYNC_WIRE_AT(pfsync_state, updates, 257);
PFSYNC_WIRE_AT(pfsync_state, min_ttl, 258);
PFSYNC_WIRE_AT(pfsync_state, set_tos, 259);
PFSYNC_WIRE_AT(pfsync_state, state_flags, 260);
PFSYNC_WIRE_AT(pfsync_state, set_prio, 262);

PFSYNC_WIRE_SIZE(pfsync_clr, 20);
PFSYNC_WIRE_AT(pfsync_clr, creatorid, 16);

PFSYNC_WIRE_SIZE(pfsync_ins_ack, 12);
PFSYNC_WIRE_AT(pfsync_ins_ack, creatorid, 8);

PFSYNC_WIRE_SIZE(pfsync_upd_c, 84);
PFSYNC_WIRE_AT(pfsync_upd_c, src, 8);
PFSYNC_WIRE_AT(pfsync_upd_c, dst, 40);
PFSYNC_WIRE_AT(pfsync_upd_c, creatorid, 72);
PFSYNC_WIRE_AT(pfsync_upd_c, expire, 76);
PFSYNC_WIRE_AT(pfsync_upd_c, timeout, 80);
PFSYNC_WIRE_AT(pfsync_upd_c, state_flags, 81);
PFSYNC_WIRE_AT(pfsync_upd_c, _pad, 82);

PFSYNC_WIRE_SIZE(pfsync_upd_req, 12);
PFSYNC_WIRE_AT(pfsync_upd_req, creatorid, 8);

PFSYNC_WIRE_SIZE(pfsync_del_c, 12);
PFSYNC_WIRE_AT(pfsync_del_c, creatorid, 8);

PFSYNC_WIRE_SIZE(pfsync_bus, 12);
PFSYNC_WIRE_AT(pfsync_bus, endtime, 4);
PFSYNC_WIRE_AT(pfsync_bus, status, 8);

PFSYNC_WIRE_SIZE(pfsync_tdb, 52);
PFSYNC_WIRE_AT(pfsync_tdb, dst, 4);
PFSYNC_WIRE_AT(pfsync_tdb, rpl, 32);
PFSYNC_WIRE_AT(pfsync_tdb, cur_bytes, 40);
PFSYNC_WIRE_AT(pfsync_tdb, sproto, 48);
PFSYNC_WIRE_AT(pfsync_tdb, updates, 49);
PFSYNC_WIRE_AT(pfsync_tdb, rdomain, 50);

/*
 * Userspace gets the codec API (lib/pfsync_wire.h) with the structures, so
 * that including either pfsync_wire.h works whatever the -I order is.
 */
#if !defined(__bpf__) && !defined(PFSYNC_WIRE_STRUCTS_ONLY)
#include "../lib/pfsync_wire.h"
#endif

#endif /* PFSYNC_WIRE_H */
