/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Text and JSON printers for one pfsync v6 payload (see pfsync_print.h).
 *
 * pfsync_decode() only hands valid messages to callbacks; a printer also
 * needs the section headers, messages the receiver would reject and the
 * place where a malformed packet goes wrong. So this file has its own small
 * walker that follows OpenBSD tcpdump's bounds rules (every read is
 * checked against the bytes present, the header length only decides which
 * error word is printed); the receiver's verdict is still taken from
 * pfsync_decode() for the JSON output.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "pfsync_print.h"
#include "pfsync_wire.h"

/* ---- the walker ----------------------------------------------------------- */

enum walk_error {
	WALK_SHORT,	    /* fewer bytes than a pfsync header: "[|pfsync]" */
	WALK_TRAILING,	    /* header claims more than the sections hold: "..." */
	WALK_BAD_HDRLEN,    /* sections run past the claimed length */
	WALK_BAD_PKTLEN,    /* bytes left over after the claimed length */
	WALK_UNKNOWN_ACT,   /* action >= PFSYNC_ACT_MAX, printing stops */
	WALK_UNIMPLEMENTED, /* known action without a message layout, printing stops */
};

struct walk_ops {
	void (*header)(void *ctx, const __u8 *hdr, unsigned int version, unsigned int len);
	void (*section)(void *ctx, unsigned int action, unsigned int count, size_t stride);
	void (*message)(void *ctx, unsigned int action, const __u8 *msg);
	void (*error)(void *ctx, enum walk_error err, unsigned int arg);
};

/*
 * Messages are read at the announced stride when it is at least our size
 * (like the receiver); a shorter announced size is read at our size, as
 * OpenBSD's tcpdump does (it ignores the subheader length altogether).
 */
static size_t section_stride(unsigned int action, __u8 len_words)
{
	size_t ours = pfsync_action_msg_size(action);
	size_t announced = (size_t)len_words * 4;

	return announced > ours ? announced : ours;
}

/* 1 = keep walking, 0 = the section ended the packet (error already reported) */
static int walk_section(const __u8 *p, size_t *off, long *plen, long *left,
			const struct walk_ops *ops, void *ctx)
{
	struct pfsync_subheader sh;
	unsigned int count;
	size_t stride;

	memcpy(&sh, p + *off, sizeof(sh));
	*off += sizeof(sh);
	*left -= sizeof(sh);
	*plen -= sizeof(sh);
	if (sh.action >= PFSYNC_ACT_MAX) {
		ops->error(ctx, WALK_UNKNOWN_ACT, sh.action);
		return 0;
	}
	count = pfsync_get_be16(&sh.count);
	stride = section_stride(sh.action, sh.len);
	ops->section(ctx, sh.action, count, stride);
	if (pfsync_action_msg_size(sh.action) == 0) {
		/* EOF ends the packet quietly once it has a message, others are errors */
		if (sh.action != PFSYNC_ACT_EOF) {
			ops->error(ctx, WALK_UNIMPLEMENTED, sh.action);
			return 0;
		}
		return count == 0;
	}
	for (unsigned int i = 0; i < count; i++) {
		if (*left < (long)stride) {
			*left = 0; /* truncated: the rest of the packet is unusable */
			break;
		}
		ops->message(ctx, sh.action, p + *off);
		*off += stride;
		*left -= stride;
		*plen -= stride;
	}
	return 1;
}

static void walk(const __u8 *p, size_t len, const struct walk_ops *ops, void *ctx)
{
	unsigned int version;
	size_t off = PFSYNC_HDRLEN;
	long plen, left;

	if (!p || len < PFSYNC_HDRLEN) {
		ops->error(ctx, WALK_SHORT, 0);
		return;
	}
	version = p[0];
	plen = pfsync_get_be16(p + 2);
	ops->header(ctx, p, version, (unsigned int)plen);
	if (version != PFSYNC_VERSION)
		return;
	plen -= PFSYNC_HDRLEN;
	left = (long)(len - PFSYNC_HDRLEN);
	while (plen > 0 && left >= (long)sizeof(struct pfsync_subheader)) {
		if (!walk_section(p, &off, &plen, &left, ops, ctx))
			return;
	}
	if (plen > 0)
		ops->error(ctx, WALK_TRAILING, 0);
	else if (plen < 0)
		ops->error(ctx, WALK_BAD_HDRLEN, 0);
	else if (left > 0)
		ops->error(ctx, WALK_BAD_PKTLEN, 0);
}

/* ---- names ------------------------------------------------------------------ */

static const char *const tcp_state_names[] = {
    "CLOSED",	  "LISTEN",  "SYN_SENT", "SYN_RCVD",   "ESTABLISHED", "CLOSE_WAIT",
    "FIN_WAIT_1", "CLOSING", "LAST_ACK", "FIN_WAIT_2", "TIME_WAIT",
};
#define TCP_STATE_NAMES (sizeof(tcp_state_names) / sizeof(tcp_state_names[0]))

/* UDP (PFUDPS_*) and other protocols (PFOTHERS_*) share these level names */
static const char *const other_state_names[] = {"NO_TRAFFIC", "SINGLE", "MULTIPLE"};
#define OTHER_STATE_NAMES (sizeof(other_state_names) / sizeof(other_state_names[0]))

static const char *const timeout_names[PFTM_MAX] = {
    "tcp.first",  "tcp.opening",    "tcp.established", "tcp.closing",	 "tcp.finwait",
    "tcp.closed", "udp.first",	    "udp.single",      "udp.multiple",	 "icmp.first",
    "icmp.error", "other.first",    "other.single",    "other.multiple", "frag",
    "interval",	  "adaptive.start", "adaptive.end",    "src.track",	 "tcp.tsdiff",
};

const char *pfsync_timeout_name(unsigned int pftm)
{
	return pftm < PFTM_MAX ? timeout_names[pftm] : "unknown";
}

/* fixed table rather than /etc/protocols so the output does not depend on the host */
static const char *proto_name(unsigned int proto)
{
	switch (proto) {
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_GRE:
		return "gre";
	case IPPROTO_ESP:
		return "esp";
	case IPPROTO_AH:
		return "ah";
	case IPPROTO_ICMPV6:
		return "ipv6-icmp";
	case IPPROTO_SCTP:
		return "sctp";
	default:
		return NULL;
	}
}

static const char *const state_flag_names[] = {
    "allow-opts", "sloppy",    "pflow",	    "no-sync",	"ack",		"no-df",
    "set-tos",	  "random-id", "scrub-tcp", "set-prio", "inp-unlinked",
};
#define STATE_FLAG_NAMES (sizeof(state_flag_names) / sizeof(state_flag_names[0]))

/* ---- shared formatting helpers ---------------------------------------------- */

/* untrusted interface names: printable non-blank ASCII as is, the rest as \ooo */
static void print_name(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c > 0x20 && c < 0x7f && c != '\\')
			fputc(c, f);
		else
			fprintf(f, "\\%03o", c);
	}
}

void pfsync_json_string(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			fputc(c, f);
		else
			fprintf(f, "\\u%04x", c);
	}
	fputc('"', f);
}

/* BSD wire af -> host af; 0 when neither inet nor inet6 */
static int host_af(unsigned int wire_af)
{
	if (wire_af == PFSYNC_WIRE_AF_INET)
		return AF_INET;
	if (wire_af == PFSYNC_WIRE_AF_INET6)
		return AF_INET6;
	return 0;
}

/* address text for a wire af; unknown families print as 32 hex digits */
static void format_addr(char *buf, size_t cap, const __u8 addr[16], unsigned int wire_af)
{
	int af = host_af(wire_af);

	if (af && inet_ntop(af, addr, buf, (socklen_t)cap))
		return;
	for (size_t i = 0; i < 16 && 2 * i + 2 < cap; i++)
		snprintf(buf + 2 * i, cap - 2 * i, "%02x", addr[i]);
}

static __u64 get_counter(const void *words)
{
	return pfsync_get_be64(words);
}

static void split_hms(__u32 secs, unsigned int *h, unsigned int *m, unsigned int *s)
{
	*s = secs % 60;
	secs /= 60;
	*m = secs % 60;
	*h = secs / 60;
}

/* ---- text: states ----------------------------------------------------------- */

/* pfctl's host: address, then :port (IPv4) or [port] (IPv6) when the port is set */
static void text_host(FILE *f, const struct pfsync_state_key *k, int side, unsigned int af)
{
	char buf[INET6_ADDRSTRLEN + 8];
	__u16 port = pfsync_get_be16(&k->port[side]);

	format_addr(buf, sizeof(buf), k->addr[side], af);
	fputs(buf, f);
	if (port)
		fprintf(f, af == PFSYNC_WIRE_AF_INET6 ? "[%u]" : ":%u", port);
	if (pfsync_get_be16(&k->rdomain))
		fprintf(f, " rdomain %u", pfsync_get_be16(&k->rdomain));
}

static int key_side_differs(const struct pfsync_state_key *a, const struct pfsync_state_key *b,
			    int side)
{
	return a->af != b->af || memcmp(a->addr[side], b->addr[side], 16) != 0 ||
	       a->port[side] != b->port[side] || a->rdomain != b->rdomain;
}

static unsigned int key_af(const struct pfsync_state_key *k, const struct pfsync_state *s)
{
	return k->af ? k->af : s->af;
}

/*
 * pfctl's layout: the stack key (wire key for outbound states) is shown,
 * the other key in parentheses where it differs (NAT). Outbound reads
 * "initiator -> responder", inbound "responder <- initiator".
 */
static void text_state_keys(FILE *f, const struct pfsync_state *s)
{
	int out = s->direction == PF_OUT;
	const struct pfsync_state_key *shown = out ? &s->key[0] : &s->key[1];
	const struct pfsync_state_key *other = out ? &s->key[1] : &s->key[0];

	for (int side = 1; side >= 0; side--) {
		text_host(f, shown, side, key_af(shown, s));
		if (key_side_differs(shown, other, side)) {
			fputs(" (", f);
			text_host(f, other, side, key_af(other, s));
			fputc(')', f);
		}
		if (side == 1)
			fputs(out ? " -> " : " <- ", f);
	}
}

static void text_levels(FILE *f, unsigned int proto, unsigned int a, unsigned int b)
{
	int icmp = proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6;

	if (proto == IPPROTO_TCP) {
		if (a < TCP_STATE_NAMES && b < TCP_STATE_NAMES)
			fprintf(f, "%s:%s", tcp_state_names[a], tcp_state_names[b]);
		else if (a == PF_TCPS_PROXY_SRC || b == PF_TCPS_PROXY_SRC)
			fputs("PROXY:SRC", f);
		else if (a == PF_TCPS_PROXY_DST || b == PF_TCPS_PROXY_DST)
			fputs("PROXY:DST", f);
		else
			fprintf(f, "<BAD STATE LEVELS %u:%u>", a, b);
	} else if (!icmp && a < OTHER_STATE_NAMES && b < OTHER_STATE_NAMES) {
		fprintf(f, "%s:%s", other_state_names[a], other_state_names[b]);
	} else {
		fprintf(f, "%u:%u", a, b);
	}
}

static void text_seq(FILE *f, const struct pfsync_state_peer *p, int show_wscale)
{
	__u32 lo = pfsync_get_be32(&p->seqlo), hi = pfsync_get_be32(&p->seqhi);
	__u32 diff = pfsync_get_be32(&p->seqdiff);

	fprintf(f, "[%u + %u]", lo, hi - lo);
	if (diff)
		fprintf(f, "(+%u)", diff);
	if (show_wscale)
		fprintf(f, " wscale %u", p->wscale & PF_WSCALE_MASK);
}

static void text_state_flags(FILE *f, __u16 flags)
{
	const char *sep = " <";

	fprintf(f, ", state flags 0x%04x", flags);
	for (unsigned int i = 0; i < STATE_FLAG_NAMES; i++) {
		if (flags & (1u << i)) {
			fprintf(f, "%s%s", sep, state_flag_names[i]);
			sep = ",";
		}
	}
	if (sep[0] == ',')
		fputc('>', f);
}

/* pfctl -ss -vv's detail lines plus the timeout class and flags */
static void text_state_verbose(FILE *f, const struct pfsync_state *s,
			       const struct pfsync_state_peer *a, const struct pfsync_state_peer *b)
{
	unsigned int h, m, sec;
	__u32 rule = pfsync_get_be32(&s->rule), anchor = pfsync_get_be32(&s->anchor);

	if (s->proto == IPPROTO_TCP) {
		int wscale = a->wscale && b->wscale;

		fputs("\n\t   ", f);
		text_seq(f, a, wscale);
		fputs("  ", f);
		text_seq(f, b, wscale);
	}
	split_hms(pfsync_get_be32(&s->creation), &h, &m, &sec);
	fprintf(f, "\n\t   age %02u:%02u:%02u", h, m, sec);
	split_hms(pfsync_get_be32(&s->expire), &h, &m, &sec);
	fprintf(f, ", expires in %02u:%02u:%02u", h, m, sec);
	fprintf(f, ", %" PRIu64 ":%" PRIu64 " pkts, %" PRIu64 ":%" PRIu64 " bytes",
		(uint64_t)get_counter(&s->packets[0]), (uint64_t)get_counter(&s->packets[1]),
		(uint64_t)get_counter(&s->bytes[0]), (uint64_t)get_counter(&s->bytes[1]));
	if (anchor != 0xffffffffu)
		fprintf(f, ", anchor %u", anchor);
	if (rule != 0xffffffffu)
		fprintf(f, ", rule %u", rule);
	if (s->sync_flags & PFSYNC_FLAG_SRCNODE)
		fputs(", source-track", f);
	if (s->sync_flags & PFSYNC_FLAG_NATSRCNODE)
		fputs(", sticky-address", f);
	fprintf(f, "\n\t   id: %016" PRIx64 " creatorid: %08x", (uint64_t)PFSYNC_MSG_ID(s),
		PFSYNC_MSG_CREATOR(s));
	fprintf(f, "\n\t   timeout %s", pfsync_timeout_name(s->timeout));
	text_state_flags(f, pfsync_get_be16(&s->state_flags));
}

static void text_state(FILE *f, const __u8 *msg, int verbose)
{
	struct pfsync_state s;
	const struct pfsync_state_peer *a, *b;
	const char *pname;

	memcpy(&s, msg, sizeof(s));
	/* levels read "shown-left:shown-right", like the keys */
	a = s.direction == PF_OUT ? &s.src : &s.dst;
	b = s.direction == PF_OUT ? &s.dst : &s.src;
	fputs("\n\t", f);
	print_name(f, s.ifname, sizeof(s.ifname));
	pname = proto_name(s.proto);
	if (pname)
		fprintf(f, " %s ", pname);
	else
		fprintf(f, " %u ", s.proto);
	text_state_keys(f, &s);
	fputs("    ", f);
	text_levels(f, s.proto, a->state, b->state);
	if (verbose)
		text_state_verbose(f, &s, a, b);
}

/* ---- text: the other messages ------------------------------------------------ */

struct text_ctx {
	FILE *f;
	int verbose;
};

static void text_header(void *ctx, const __u8 *hdr, unsigned int version, unsigned int len)
{
	struct text_ctx *t = ctx;

	(void)hdr;
	fprintf(t->f, "PFSYNCv%u len %u", version, len);
}

static void text_section(void *ctx, unsigned int action, unsigned int count, size_t stride)
{
	struct text_ctx *t = ctx;

	(void)stride;
	fprintf(t->f, "\n    act %s count %u", pfsync_action_label(action), count);
}

static void text_clr(FILE *f, const struct pfsync_clr *m)
{
	fprintf(f, "\n\tcreatorid: %08x", PFSYNC_MSG_CREATOR(m));
	if (m->ifname[0]) {
		fputs(" interface: ", f);
		print_name(f, m->ifname, sizeof(m->ifname));
	}
}

static const char *bus_status_name(unsigned int status)
{
	if (status == PFSYNC_BUS_START)
		return "start";
	if (status == PFSYNC_BUS_END)
		return "end";
	return "UNKNOWN";
}

static void text_bus(FILE *f, const struct pfsync_bus *m)
{
	unsigned int h, min, sec;

	split_hms(pfsync_get_be32(&m->endtime), &h, &min, &sec);
	fprintf(f, "\n\tcreatorid: %08x age: %02u:%02u:%02u status: %s", PFSYNC_MSG_CREATOR(m), h,
		min, sec, bus_status_name(m->status));
}

static void text_tdb(FILE *f, const struct pfsync_tdb *m)
{
	fprintf(f, "\n\tspi: 0x%08x rpl: %" PRIu64 " cur_bytes: %" PRIu64, pfsync_get_be32(&m->spi),
		(uint64_t)pfsync_get_be64(&m->rpl), (uint64_t)pfsync_get_be64(&m->cur_bytes));
}

/* INS_ACK, UPD_C, UPD_REQ and DEL_C all start with id + a creatorid somewhere */
static void text_id(FILE *f, __u64 id, __u32 creatorid)
{
	fprintf(f, "\n\tid: %016" PRIx64 " creatorid: %08x", (uint64_t)id, creatorid);
}

static void text_message(void *ctx, unsigned int action, const __u8 *msg)
{
	struct text_ctx *t = ctx;

	switch (action) {
	case PFSYNC_ACT_CLR:
		text_clr(t->f, (const struct pfsync_clr *)msg);
		break;
	case PFSYNC_ACT_INS_ACK:
	case PFSYNC_ACT_UPD_REQ:
	case PFSYNC_ACT_DEL_C:
		/* the three share one layout (id, creatorid) */
		text_id(t->f, pfsync_get_be64(msg), pfsync_get_be32(msg + 8));
		break;
	case PFSYNC_ACT_UPD_C:
		text_id(t->f, PFSYNC_MSG_ID((const struct pfsync_upd_c *)msg),
			PFSYNC_MSG_CREATOR((const struct pfsync_upd_c *)msg));
		break;
	case PFSYNC_ACT_BUS:
		text_bus(t->f, (const struct pfsync_bus *)msg);
		break;
	case PFSYNC_ACT_TDB:
		text_tdb(t->f, (const struct pfsync_tdb *)msg);
		break;
	case PFSYNC_ACT_INS:
	case PFSYNC_ACT_UPD:
	case PFSYNC_ACT_DEL:
		text_state(t->f, msg, t->verbose);
		break;
	}
}

static const char *walk_error_word(enum walk_error err)
{
	switch (err) {
	case WALK_SHORT:
		return "[|pfsync]";
	case WALK_TRAILING:
		return "...";
	case WALK_BAD_HDRLEN:
		return "invalid header length";
	case WALK_BAD_PKTLEN:
		return "invalid packet length";
	case WALK_UNKNOWN_ACT:
		return "act UNKNOWN id";
	case WALK_UNIMPLEMENTED:
		return "unimplemented action";
	}
	return "?";
}

static void text_error(void *ctx, enum walk_error err, unsigned int arg)
{
	struct text_ctx *t = ctx;

	if (err == WALK_SHORT) /* tcpdump puts it right after the address */
		fputs(walk_error_word(err), t->f);
	else if (err == WALK_UNKNOWN_ACT)
		fprintf(t->f, "\n    %s %u", walk_error_word(err), arg);
	else
		fprintf(t->f, "\n    %s", walk_error_word(err));
}

void pfsync_print_text(FILE *f, const __u8 *payload, size_t len, int verbose)
{
	static const struct walk_ops ops = {
	    .header = text_header,
	    .section = text_section,
	    .message = text_message,
	    .error = text_error,
	};
	struct text_ctx t = {.f = f, .verbose = verbose};

	walk(payload, len, &ops, &t);
}

/* ---- JSON ----------------------------------------------------------------------- */

#define JSON_MAX_ERRORS 4

struct json_ctx {
	FILE *f;
	int sections_open; /* "sections":[ printed */
	unsigned int messages_in_section;
	unsigned int nerrors;
	enum walk_error errors[JSON_MAX_ERRORS];
	unsigned int error_args[JSON_MAX_ERRORS];
};

static void json_hex(FILE *f, const char *key, const __u8 *p, size_t n)
{
	fprintf(f, "\"%s\":\"", key);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
	fputc('"', f);
}

static void json_addr(FILE *f, const char *key, const __u8 addr[16], unsigned int wire_af)
{
	char buf[INET6_ADDRSTRLEN + 8];

	format_addr(buf, sizeof(buf), addr, wire_af);
	fprintf(f, "\"%s\":\"%s\"", key, buf);
}

static void json_id(FILE *f, __u64 id, __u32 creatorid)
{
	fprintf(f, "\"id\":\"%016" PRIx64 "\",\"creatorid\":\"%08x\"", (uint64_t)id, creatorid);
}

static void json_peer(FILE *f, const char *key, const struct pfsync_state_peer *p)
{
	fprintf(f,
		"\"%s\":{\"scrub\":{\"pfss_flags\":%u,\"pfss_ttl\":%u,\"scrub_flag\":%u,"
		"\"pfss_ts_mod\":%u},\"seqlo\":%u,\"seqhi\":%u,\"seqdiff\":%u,\"max_win\":%u,"
		"\"mss\":%u,\"state\":%u,\"wscale\":%u}",
		key, pfsync_get_be16(&p->scrub.pfss_flags), p->scrub.pfss_ttl, p->scrub.scrub_flag,
		pfsync_get_be32(&p->scrub.pfss_ts_mod), pfsync_get_be32(&p->seqlo),
		pfsync_get_be32(&p->seqhi), pfsync_get_be32(&p->seqdiff),
		pfsync_get_be16(&p->max_win), pfsync_get_be16(&p->mss), p->state, p->wscale);
}

static void json_key(FILE *f, const struct pfsync_state_key *k, unsigned int state_af)
{
	unsigned int af = k->af ? k->af : state_af;

	fputc('{', f);
	json_addr(f, "addr0", k->addr[0], af);
	fputc(',', f);
	json_addr(f, "addr1", k->addr[1], af);
	fprintf(f, ",\"port0\":%u,\"port1\":%u,\"rdomain\":%u,\"af\":%u}",
		pfsync_get_be16(&k->port[0]), pfsync_get_be16(&k->port[1]),
		pfsync_get_be16(&k->rdomain), k->af);
}

static void json_state_counters(FILE *f, const struct pfsync_state *s)
{
	fprintf(f,
		",\"rule\":%u,\"anchor\":%u,\"nat_rule\":%u,\"creation\":%u,\"expire\":%u,"
		"\"packets\":[%" PRIu64 ",%" PRIu64 "],\"bytes\":[%" PRIu64 ",%" PRIu64 "]",
		pfsync_get_be32(&s->rule), pfsync_get_be32(&s->anchor),
		pfsync_get_be32(&s->nat_rule), pfsync_get_be32(&s->creation),
		pfsync_get_be32(&s->expire), (uint64_t)get_counter(&s->packets[0]),
		(uint64_t)get_counter(&s->packets[1]), (uint64_t)get_counter(&s->bytes[0]),
		(uint64_t)get_counter(&s->bytes[1]));
}

static void json_state_tail(FILE *f, const struct pfsync_state *s)
{
	fprintf(f,
		",\"rtableid\":[%d,%d],\"max_mss\":%u,\"af\":%u,\"proto\":%u,\"direction\":%u,"
		"\"log\":%u,\"rt\":%u,\"timeout\":%u,\"timeout_name\":\"%s\",\"sync_flags\":%u,"
		"\"updates\":%u,\"min_ttl\":%u,\"set_tos\":%u,\"state_flags\":%u,"
		"\"set_prio\":[%u,%u]",
		(int)pfsync_get_be32(&s->rtableid[0]), (int)pfsync_get_be32(&s->rtableid[1]),
		pfsync_get_be16(&s->max_mss), s->af, s->proto, s->direction, s->log, s->rt,
		s->timeout, pfsync_timeout_name(s->timeout), s->sync_flags, s->updates, s->min_ttl,
		s->set_tos, pfsync_get_be16(&s->state_flags), s->set_prio[0], s->set_prio[1]);
}

static void json_state(FILE *f, const __u8 *msg)
{
	struct pfsync_state s;

	memcpy(&s, msg, sizeof(s));
	fputc('{', f);
	json_id(f, PFSYNC_MSG_ID(&s), PFSYNC_MSG_CREATOR(&s));
	fputs(",\"ifname\":", f);
	pfsync_json_string(f, s.ifname, sizeof(s.ifname));
	fputs(",\"key\":[", f);
	json_key(f, &s.key[0], s.af);
	fputc(',', f);
	json_key(f, &s.key[1], s.af);
	fputs("],", f);
	json_peer(f, "src", &s.src);
	fputc(',', f);
	json_peer(f, "dst", &s.dst);
	fputc(',', f);
	json_addr(f, "rt_addr", s.rt_addr, s.af);
	json_state_counters(f, &s);
	json_state_tail(f, &s);
	fputc('}', f);
}

static void json_upd_c(FILE *f, const struct pfsync_upd_c *m)
{
	fputc('{', f);
	json_id(f, PFSYNC_MSG_ID(m), PFSYNC_MSG_CREATOR(m));
	fputc(',', f);
	json_peer(f, "src", &m->src);
	fputc(',', f);
	json_peer(f, "dst", &m->dst);
	fprintf(f, ",\"expire\":%u,\"timeout\":%u,\"timeout_name\":\"%s\",\"state_flags\":%u}",
		pfsync_get_be32(&m->expire), m->timeout, pfsync_timeout_name(m->timeout),
		m->state_flags);
}

/* BSD sockaddr_union: sa_len, sa_family (2/24), port, then the address */
static void json_tdb_dst(FILE *f, const __u8 dst[28])
{
	fprintf(f, "\"dst\":{\"len\":%u,\"family\":%u", dst[0], dst[1]);
	if (dst[1] == PFSYNC_WIRE_AF_INET) {
		char buf[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, dst + 4, buf, sizeof(buf));
		fprintf(f, ",\"addr\":\"%s\"", buf);
	} else if (dst[1] == PFSYNC_WIRE_AF_INET6) {
		char buf[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6, dst + 8, buf, sizeof(buf));
		fprintf(f, ",\"addr\":\"%s\"", buf);
	}
	fputc(',', f);
	json_hex(f, "raw", dst, 28);
	fputc('}', f);
}

static void json_tdb(FILE *f, const struct pfsync_tdb *m)
{
	fprintf(f, "{\"spi\":\"%08x\",", pfsync_get_be32(&m->spi));
	json_tdb_dst(f, m->dst);
	fprintf(f,
		",\"rpl\":%" PRIu64 ",\"cur_bytes\":%" PRIu64
		",\"sproto\":%u,\"updates\":%u,\"rdomain\":%u}",
		(uint64_t)pfsync_get_be64(&m->rpl), (uint64_t)pfsync_get_be64(&m->cur_bytes),
		m->sproto, m->updates, pfsync_get_be16(&m->rdomain));
}

static void json_message(void *ctx, unsigned int action, const __u8 *msg)
{
	struct json_ctx *j = ctx;
	FILE *f = j->f;

	if (j->messages_in_section++)
		fputc(',', f);
	switch (action) {
	case PFSYNC_ACT_CLR: {
		const struct pfsync_clr *m = (const struct pfsync_clr *)msg;

		fputs("{\"ifname\":", f);
		pfsync_json_string(f, m->ifname, sizeof(m->ifname));
		fprintf(f, ",\"creatorid\":\"%08x\"}", PFSYNC_MSG_CREATOR(m));
		break;
	}
	case PFSYNC_ACT_INS_ACK:
	case PFSYNC_ACT_UPD_REQ:
	case PFSYNC_ACT_DEL_C:
		fputc('{', f);
		json_id(f, pfsync_get_be64(msg), pfsync_get_be32(msg + 8));
		fputc('}', f);
		break;
	case PFSYNC_ACT_UPD_C:
		json_upd_c(f, (const struct pfsync_upd_c *)msg);
		break;
	case PFSYNC_ACT_BUS: {
		const struct pfsync_bus *m = (const struct pfsync_bus *)msg;

		fprintf(
		    f,
		    "{\"creatorid\":\"%08x\",\"endtime\":%u,\"status\":%u,\"status_name\":\"%s\"}",
		    PFSYNC_MSG_CREATOR(m), pfsync_get_be32(&m->endtime), m->status,
		    bus_status_name(m->status));
		break;
	}
	case PFSYNC_ACT_TDB:
		json_tdb(f, (const struct pfsync_tdb *)msg);
		break;
	default: /* INS, UPD, DEL */
		json_state(f, msg);
		break;
	}
}

static void json_header(void *ctx, const __u8 *hdr, unsigned int version, unsigned int len)
{
	struct json_ctx *j = ctx;

	fprintf(j->f, ",\"version\":%u,\"len\":%u,", version, len);
	json_hex(j->f, "pfcksum", hdr + 4, 16);
}

static void json_section(void *ctx, unsigned int action, unsigned int count, size_t stride)
{
	struct json_ctx *j = ctx;

	fputs(j->sections_open ? "]}," : ",\"sections\":[", j->f);
	j->sections_open = 1;
	j->messages_in_section = 0;
	fprintf(j->f, "{\"action\":%u,\"label\":\"%s\",\"count\":%u,\"msglen\":%zu,\"messages\":[",
		action, pfsync_action_label(action), count, stride);
}

static void json_error(void *ctx, enum walk_error err, unsigned int arg)
{
	struct json_ctx *j = ctx;

	if (j->nerrors < JSON_MAX_ERRORS) {
		j->errors[j->nerrors] = err;
		j->error_args[j->nerrors++] = arg;
	}
}

static void json_errors(const struct json_ctx *j)
{
	fputs(",\"errors\":[", j->f);
	for (unsigned int i = 0; i < j->nerrors; i++) {
		fprintf(j->f, "%s\"%s", i ? "," : "", walk_error_word(j->errors[i]));
		if (j->errors[i] == WALK_UNKNOWN_ACT)
			fprintf(j->f, " %u", j->error_args[i]);
		fputc('"', j->f);
	}
	fputc(']', j->f);
}

/* what our receiver would do with the payload, from the real decoder */
static void json_receiver(FILE *f, const __u8 *payload, size_t len)
{
	struct pfsync_stats st = {0};
	int rc = pfsync_decode(payload, len, NULL, NULL, &st);

	fprintf(f,
		",\"receiver\":{\"accepted\":%s,\"hdrops\":%" PRIu64 ",\"badver\":%" PRIu64
		",\"badlen\":%" PRIu64 ",\"badact\":%" PRIu64 ",\"badval\":%" PRIu64 "}",
		rc == 0 ? "true" : "false", (uint64_t)st.hdrops, (uint64_t)st.badver,
		(uint64_t)st.badlen, (uint64_t)st.badact, (uint64_t)st.badval);
}

void pfsync_print_json(FILE *f, const __u8 *payload, size_t len)
{
	static const struct walk_ops ops = {
	    .header = json_header,
	    .section = json_section,
	    .message = json_message,
	    .error = json_error,
	};
	struct json_ctx j = {.f = f};

	fprintf(f, "{\"caplen\":%zu", payload ? len : 0);
	walk(payload, len, &ops, &j);
	if (j.sections_open)
		fputs("]}]", f);
	json_errors(&j);
	json_receiver(f, payload, payload ? len : 0);
	fputc('}', f);
}
