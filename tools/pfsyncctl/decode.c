/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * `pfsyncctl decode`: finds pfsync payloads in a pcap file or a live
 * capture (libpcap does all the reading) and prints them the way OpenBSD's
 * tcpdump does, or as JSON (lib/pfsync_print.h).
 *
 * Link types: Ethernet (with one 802.1Q/802.1ad tag), raw IP (DLT_RAW,
 * DLT_IPV4, DLT_IPV6), Linux cooked SLL and SLL2, and DLT_PFSYNC under its
 * three numbers (18, 121, 246), which starts at the pfsync header. IPv4 and
 * IPv6 (extension headers are skipped up to protocol 240). Everything else
 * in a capture is skipped without a word, like a tcpdump filter would.
 *
 * Text lines: "SRC: PFSYNCv6 len N..." and with -v "SRC > DST: ..." as in
 * OpenBSD; DLT_PFSYNC captures have no addresses and start at "PFSYNCv6".
 * No timestamps (like tcpdump -t); the JSON object carries "ts".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "decode.h"
#include "pfsync_print.h"
#include "pfsync_wire.h"

#define DECODE_FILTER	 "ip proto 240 or ip6 proto 240"
#define DECODE_SNAPLEN	 65535
#define DECODE_TIMEOUT	 100 /* ms: live packets show up promptly */
#define ETHERTYPE_IPV4	 0x0800
#define ETHERTYPE_IPV6	 0x86dd
#define ETHERTYPE_VLAN	 0x8100
#define ETHERTYPE_QINQ	 0x88a8
#define ETH_HLEN_PLAIN	 14
#define VLAN_TAG_LEN	 4
#define SLL_HLEN	 16
#define SLL2_HLEN	 20
#define IPV4_MIN_HLEN	 20
#define IPV6_HLEN	 40
#define IPV6_MAX_EXTHDRS 8 /* more than any sane packet carries */

/* pcap_datalink() numbers that mean DLT_PFSYNC somewhere (pfsync-wire.md §5.1)
 */
#define DLT_PFSYNC_OPENBSD 18
#define DLT_PFSYNC_FREEBSD 121
#define LINKTYPE_PFSYNC	   246
#define LINKTYPE_RAW_ALT                                                                           \
	101 /* LINKTYPE_RAW, in case libpcap does not map it                                       \
	     */
#define DLT_RAW_OPENBSD 14

struct decode_opts {
	int verbose;
	int json;
	long count; /* stop after this many pfsync packets, 0 = never */
	const char *iface;
	const char *file;
};

struct decode_run {
	const struct decode_opts *opts;
	pcap_t *pcap;
	int dlt;
	long printed;
	int live;
};

/* where the pfsync payload is and what carried it */
struct pfsync_pkt {
	const __u8 *payload;
	size_t len;
	int af; /* AF_INET, AF_INET6, or 0 for DLT_PFSYNC */
	char src[INET6_ADDRSTRLEN];
	char dst[INET6_ADDRSTRLEN];
	unsigned int ttl;
};

static pcap_t *live_pcap; /* for the signal handler */

static void stop_capture(int sig)
{
	(void)sig;
	if (live_pcap)
		pcap_breakloop(live_pcap);
}

static __u16 get16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

static int is_pfsync_dlt(int dlt)
{
	return dlt == DLT_PFSYNC_OPENBSD || dlt == DLT_PFSYNC_FREEBSD || dlt == LINKTYPE_PFSYNC ||
	       dlt == DLT_PFSYNC;
}

static int is_raw_ip_dlt(int dlt)
{
	return dlt == DLT_RAW || dlt == DLT_RAW_OPENBSD || dlt == LINKTYPE_RAW_ALT ||
	       dlt == DLT_IPV4 || dlt == DLT_IPV6;
}

static int dlt_supported(int dlt)
{
	return is_pfsync_dlt(dlt) || is_raw_ip_dlt(dlt) || dlt == DLT_EN10MB ||
	       dlt == DLT_LINUX_SLL || dlt == DLT_LINUX_SLL2;
}

/* offset of the network header and its ethertype; -1 if the frame is too short
 */
static long link_header(int dlt, const __u8 *p, size_t caplen, __u16 *ethertype)
{
	if (dlt == DLT_EN10MB) {
		size_t off = ETH_HLEN_PLAIN;

		if (caplen < off)
			return -1;
		*ethertype = get16(p + 12);
		if (*ethertype == ETHERTYPE_VLAN || *ethertype == ETHERTYPE_QINQ) {
			off += VLAN_TAG_LEN;
			if (caplen < off)
				return -1;
			*ethertype = get16(p + off - 2);
		}
		return (long)off;
	}
	if (dlt == DLT_LINUX_SLL) {
		if (caplen < SLL_HLEN)
			return -1;
		*ethertype = get16(p + 14);
		return SLL_HLEN;
	}
	if (dlt == DLT_LINUX_SLL2) {
		if (caplen < SLL2_HLEN)
			return -1;
		*ethertype = get16(p);
		return SLL2_HLEN;
	}
	/* raw IP: the version nibble tells */
	if (caplen < 1)
		return -1;
	*ethertype = (p[0] >> 4) == 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
	return 0;
}

/*
 * Fills pkt from an IP header at ip: family, TTL / hop limit at ip[ttl_at],
 * the addresses at ip[addr_at] (source, then destination), and the pfsync
 * payload from hlen up to avail. Returns 1 (found) for the parsers' tail.
 */
static int pkt_from_ip(struct pfsync_pkt *pkt, int af, const __u8 *ip, size_t ttl_at,
		       size_t addr_at, size_t hlen, size_t avail)
{
	size_t alen = af == AF_INET ? 4 : 16;

	pkt->af = af;
	pkt->ttl = ip[ttl_at];
	inet_ntop(af, ip + addr_at, pkt->src, sizeof(pkt->src));
	inet_ntop(af, ip + addr_at + alen, pkt->dst, sizeof(pkt->dst));
	pkt->payload = ip + hlen;
	pkt->len = avail - hlen;
	return 1;
}

/* 1 if ip[0..avail) is a first (or only) IPv4 fragment of protocol 240 */
static int parse_ipv4(const __u8 *ip, size_t avail, struct pfsync_pkt *pkt)
{
	size_t ihl, total;

	if (avail < IPV4_MIN_HLEN || (ip[0] >> 4) != 4)
		return 0;
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	if (ihl < IPV4_MIN_HLEN || ihl > avail || ip[9] != IPPROTO_PFSYNC)
		return 0;
	if (get16(ip + 6) & 0x1fff) /* later fragments carry no pfsync header */
		return 0;
	total = get16(ip + 4);
	/* what is captured, but never past the IP total length (Ethernet padding) */
	if (total >= ihl && total < avail)
		avail = total;
	return pkt_from_ip(pkt, AF_INET, ip, 8, 12, ihl, avail);
}

/* length of the IPv6 extension header at p, 0 if nh is not one we can skip */
static size_t ipv6_ext_len(unsigned int nh, const __u8 *p)
{
	switch (nh) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
		return ((size_t)p[1] + 1) * 8;
	case IPPROTO_FRAGMENT:
		/* a non-first fragment has no pfsync header to show */
		return (get16(p + 2) & 0xfff8) ? 0 : 8;
	case IPPROTO_AH:
		return ((size_t)p[1] + 2) * 4;
	default:
		return 0;
	}
}

static int parse_ipv6(const __u8 *ip, size_t avail, struct pfsync_pkt *pkt)
{
	unsigned int nh;
	size_t off = IPV6_HLEN, plen;

	if (avail < IPV6_HLEN || (ip[0] >> 4) != 6)
		return 0;
	plen = get16(ip + 4);
	if (plen && IPV6_HLEN + plen < avail) /* 0 = jumbogram: take what is there */
		avail = IPV6_HLEN + plen;
	nh = ip[6];
	for (int i = 0; i < IPV6_MAX_EXTHDRS && nh != IPPROTO_PFSYNC; i++) {
		size_t ext;

		if (off + 8 > avail)
			return 0;
		ext = ipv6_ext_len(nh, ip + off);
		if (ext == 0 || off + ext > avail)
			return 0;
		nh = ip[off];
		off += ext;
	}
	if (nh != IPPROTO_PFSYNC)
		return 0;
	return pkt_from_ip(pkt, AF_INET6, ip, 7, 8, off, avail);
}

/* 1 if the frame carries pfsync; fills pkt */
static int find_pfsync(int dlt, const __u8 *p, size_t caplen, struct pfsync_pkt *pkt)
{
	__u16 ethertype = 0;
	long off;

	memset(pkt, 0, sizeof(*pkt));
	if (is_pfsync_dlt(dlt)) {
		pkt->payload = p;
		pkt->len = caplen;
		return 1;
	}
	off = link_header(dlt, p, caplen, &ethertype);
	if (off < 0)
		return 0;
	if (ethertype == ETHERTYPE_IPV4)
		return parse_ipv4(p + off, caplen - (size_t)off, pkt);
	if (ethertype == ETHERTYPE_IPV6)
		return parse_ipv6(p + off, caplen - (size_t)off, pkt);
	return 0;
}

static void print_text(const struct decode_opts *o, const struct pfsync_pkt *pkt)
{
	if (pkt->af && o->verbose)
		printf("%s > %s: ", pkt->src, pkt->dst);
	else if (pkt->af)
		printf("%s: ", pkt->src);
	pfsync_print_text(stdout, pkt->payload, pkt->len, o->verbose);
	putchar('\n');
}

static void print_json(const struct decode_run *run, const struct pcap_pkthdr *h,
		       const struct pfsync_pkt *pkt)
{
	printf("{\"ts\":%lld.%06ld,\"linktype\":%d", (long long)h->ts.tv_sec, (long)h->ts.tv_usec,
	       run->dlt);
	if (pkt->af)
		printf(",\"ip\":{\"version\":%d,\"src\":\"%s\",\"dst\":\"%s\",\"ttl\":%u}",
		       pkt->af == AF_INET ? 4 : 6, pkt->src, pkt->dst, pkt->ttl);
	fputs(",\"pfsync\":", stdout);
	pfsync_print_json(stdout, pkt->payload, pkt->len);
	fputs("}\n", stdout);
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	struct decode_run *run = (struct decode_run *)user;
	struct pfsync_pkt pkt;

	if (!find_pfsync(run->dlt, bytes, h->caplen, &pkt))
		return;
	if (run->opts->json)
		print_json(run, h, &pkt);
	else
		print_text(run->opts, &pkt);
	if (run->live)
		fflush(stdout);
	run->printed++;
	if (run->opts->count && run->printed >= run->opts->count)
		pcap_breakloop(run->pcap);
}

static int set_live_filter(pcap_t *pc, const char *iface)
{
	struct bpf_program prog;
	int rc;

	if (pcap_compile(pc, &prog, DECODE_FILTER, 1, PCAP_NETMASK_UNKNOWN) < 0) {
		fprintf(stderr, "pfsyncctl decode: %s: filter: %s\n", iface, pcap_geterr(pc));
		return -1;
	}
	rc = pcap_setfilter(pc, &prog);
	pcap_freecode(&prog);
	if (rc < 0) {
		fprintf(stderr, "pfsyncctl decode: %s: filter: %s\n", iface, pcap_geterr(pc));
		return -1;
	}
	return 0;
}

static pcap_t *open_source(const struct decode_opts *o)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *pc;

	if (o->iface)
		pc = pcap_open_live(o->iface, DECODE_SNAPLEN, 0, DECODE_TIMEOUT, errbuf);
	else
		pc = pcap_open_offline(o->file, errbuf);
	if (!pc)
		fprintf(stderr, "pfsyncctl decode: %s: %s\n", o->iface ? o->iface : o->file,
			errbuf);
	return pc;
}

static int run_capture(const struct decode_opts *o)
{
	struct decode_run run = {.opts = o, .live = o->iface != NULL};
	const char *name = o->iface ? o->iface : o->file;
	int rc = 0;

	run.pcap = open_source(o);
	if (!run.pcap)
		return 1;
	run.dlt = pcap_datalink(run.pcap);
	if (!dlt_supported(run.dlt)) {
		const char *dlt_name = pcap_datalink_val_to_name(run.dlt);

		fprintf(stderr, "pfsyncctl decode: %s: unsupported link type %s (%d)\n", name,
			dlt_name ? dlt_name : "?", run.dlt);
		pcap_close(run.pcap);
		return 1;
	}
	if (run.live && !is_pfsync_dlt(run.dlt) && set_live_filter(run.pcap, name) < 0) {
		pcap_close(run.pcap);
		return 1;
	}
	if (run.live) {
		live_pcap = run.pcap;
		signal(SIGINT, stop_capture);
		signal(SIGTERM, stop_capture);
	}
	if (pcap_loop(run.pcap, -1, on_packet, (u_char *)&run) == PCAP_ERROR) {
		fprintf(stderr, "pfsyncctl decode: %s: %s\n", name, pcap_geterr(run.pcap));
		rc = 1;
	}
	fflush(stdout);
	if (run.live) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		live_pcap = NULL;
	}
	pcap_close(run.pcap);
	return rc;
}

static void decode_usage(FILE *f)
{
	fputs("usage: pfsyncctl decode [-v] [--json] FILE.pcap\n"
	      "       pfsyncctl decode [-v] [--json] -i IF [-c COUNT]\n",
	      f);
}

static int parse_count(const char *s, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v <= 0)
		return -1;
	*out = v;
	return 0;
}

/* 0 = run, 1 = exit 0 (help), -1 = usage error */
static int parse_args(int argc, char **argv, struct decode_opts *o)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"interface", required_argument, NULL, 'i'},
	    {"count", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	optind = 0; /* glibc: full re-initialisation, the caller may have used getopt */
	opterr = 0; /* our own messages name the command */
	while ((c = getopt_long(argc, argv, "vji:c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'v':
			o->verbose++;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'i':
			o->iface = optarg;
			break;
		case 'c':
			if (parse_count(optarg, &o->count) < 0) {
				fprintf(stderr, "pfsyncctl decode: bad count '%s'\n", optarg);
				return -1;
			}
			break;
		case 'h':
			decode_usage(stdout);
			return 1;
		default:
			fprintf(stderr, "pfsyncctl decode: bad option %s\n", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc)
		o->file = argv[optind++];
	if (optind != argc || (!o->file) == (!o->iface))
		return -1;
	return 0;
}

int cmd_decode(int argc, char **argv)
{
	struct decode_opts o = {0};
	int rc = parse_args(argc, argv, &o);

	if (rc > 0)
		return 0;
	if (rc < 0) {
		decode_usage(stderr);
		return 2;
	}
	return run_capture(&o);
}

int cmd_decode_ctl(const struct ctl_opts *o, int argc, char **argv)
{
	char **args = calloc((size_t)argc + 3, sizeof(*args));
	int n = 0, rc;

	if (!args) {
		fprintf(stderr, "pfsyncctl decode: out of memory\n");
		return 1;
	}
	args[n++] = "decode";
	if (o && o->json)
		args[n++] = "--json";
	for (int i = 0; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	rc = cmd_decode(n, args);
	free(args);
	return rc;
}
