/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Packet builders for the BPF_PROG_RUN tests: one Ethernet frame from a
 * description (addresses, L4 fields, VLAN tag, IPv4 options, IPv6
 * extension headers, fragments). Tests corrupt the result byte-wise for
 * the malformed cases.
 */
#ifndef LIBPKT_H
#define LIBPKT_H

#include <stddef.h>
#include <linux/types.h>

#include "pfsync_common.h"
#include "pfsync_loader.h"

#define PKT_MAX		2048
#define PKT_PAYLOAD_MAX 1600 /* room for frames above PFSYNC_DEFER_PKT_MAX */
#define PKT_EXT_MAX	10

#define PKT_ETH_LEN  14
#define PKT_VLAN_LEN 4

struct pkt_spec {
	int af;		   /* AF_INET / AF_INET6 */
	const char *saddr; /* text form */
	const char *daddr;
	__u8 proto;
	__u16 sport, dport; /* host order (TCP/UDP) */
	__u8 tcp_flags;
	__u32 seq, ack;
	__u16 win;
	__u16 mss;	       /* 0: no MSS option (SYN only) */
	int wscale;	       /* < 0: no window scale option */
	__u8 icmp_type;	       /* ICMP / ICMPv6 */
	__u16 icmp_id;	       /* host order, echo */
	__u16 vlan;	       /* 0: untagged; otherwise the VLAN id */
	__u8 ip_opt_len;       /* IPv4 option bytes (NOPs), multiple of 4 */
	__u8 n_ext;	       /* IPv6 extension headers before L4 */
	__u8 ext[PKT_EXT_MAX]; /* 0, 43, 60 (8 bytes each) or 44 (fragment) */
	__u16 frag_off;	       /* fragment offset in 8-byte units */
	__u8 more_frags;       /* MF flag */
	__u8 no_l4;	       /* no L4 header (non-first fragment) */
	const __u8 *payload;   /* appended after the L4 header */
	size_t payload_len;
};

/* A UDP spec (no window scale option, as every non-SYN). */
struct pkt_spec pkt_udp(int af, const char *src, const char *dst, __u16 sport, __u16 dport);

/* The same spec in the other direction: addresses and ports swapped. */
struct pkt_spec pkt_reverse(const struct pkt_spec *s);

/* Builds the frame into buf; returns its length, 0 if it does not fit. */
size_t pkt_build(const struct pkt_spec *s, __u8 *buf, size_t cap);

/* Offset of the IP header in a frame built from s (after eth and VLAN). */
size_t pkt_l3_off(const struct pkt_spec *s);

/* Offset of the L4 header in a frame built from s. */
size_t pkt_l4_off(const struct pkt_spec *s);

/*
 * IPv4 frames (untagged): pkt_build leaves the checksums 0; this fills in
 * the IP header's and the TCP/UDP/ICMP one, for tests that check how a
 * program updates them. pkt_checksums_ok_v4 recomputes both from scratch:
 * 1 when they verify.
 */
void pkt_fill_checksums_v4(__u8 *frame, size_t len);
int pkt_checksums_ok_v4(const __u8 *frame, size_t len);

/* Parses text addresses into network-order words (IPv4 in w[0]). */
void pkt_addr(int af, const char *text, __u32 w[4]);

/*
 * The BPF object under test: $PFSYNC_BPF_OBJ, else the build's
 * pfsync_xdp.o two directories above the test binary
 * (build/tests/prog/test_x -> build/pfsync_xdp.o), found by the library's
 * lookup (pfsync_bpf_find_obj).
 */
const char *pkt_object_path(void);

/*
 * A private bpffs for one fixture: a fresh /tmp/pfsync-TAG-PID-XXXXXX with
 * bpffs mounted on it, so pinned maps never meet another test's. 0, or -1
 * with a message (dir left empty). pkt_bpffs_remove undoes it (empty dir:
 * nothing to do).
 */
int pkt_bpffs_make(char *dir, size_t len, const char *tag);
void pkt_bpffs_remove(char *dir);

/* The shared fixture: the object under test loaded into a private bpffs. */
struct pkt_obj {
	char pin_dir[64];
	struct pfsync_bpf b;
	int loaded;
};

/*
 * A private bpffs (TAG names it), and the object loaded with the programs
 * in which (PFSYNC_LOAD_*) and states_max (0: as compiled). 0, or -1 with
 * nothing left behind. pkt_obj_close undoes it (also after a failed open).
 */
int pkt_obj_open(struct pkt_obj *o, const char *tag, __u32 states_max, unsigned int which);
void pkt_obj_close(struct pkt_obj *o);
/* the fd of one of the object's maps (PFSYNC_MAP_*), < 0 if it has none */
int pkt_obj_map_fd(const struct pkt_obj *o, const char *name);

/* ringbuf records collected by pkt_events_record (ring_buffer__new's sample_cb) */
#define PKT_EV_MAX 64
struct pkt_events {
	unsigned int n;
	struct pfsync_event ev[PKT_EV_MAX];
};
int pkt_events_record(void *ctx, void *data, size_t size);

#endif /* LIBPKT_H */
