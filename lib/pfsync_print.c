/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The text printer for one pfsync v6 payload (see pfsync_print.h); the JSON
 * one is pfsync_print_json.c, the walker both use pfsync_walk.c.
 */
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "pfsync_print.h"
#include "pfsync_walk.h"
#include "pfsync_wire.h"

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

	pfsync_format_addr(buf, sizeof(buf), k->addr[side], af);
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
		(uint64_t)pfsync_get_be64(&s->packets[0]),
		(uint64_t)pfsync_get_be64(&s->packets[1]), (uint64_t)pfsync_get_be64(&s->bytes[0]),
		(uint64_t)pfsync_get_be64(&s->bytes[1]));
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

static void text_bus(FILE *f, const struct pfsync_bus *m)
{
	unsigned int h, min, sec;

	split_hms(pfsync_get_be32(&m->endtime), &h, &min, &sec);
	fprintf(f, "\n\tcreatorid: %08x age: %02u:%02u:%02u status: %s", PFSYNC_MSG_CREATOR(m), h,
		min, sec, pfsync_bus_status_name(m->status));
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

static void text_error(void *ctx, enum walk_error err, unsigned int arg)
{
	struct text_ctx *t = ctx;

	if (err == WALK_SHORT) /* tcpdump puts it right after the address */
		fputs(pfsync_walk_error_word(err), t->f);
	else if (err == WALK_UNKNOWN_ACT)
		fprintf(t->f, "\n    %s %u", pfsync_walk_error_word(err), arg);
	else
		fprintf(t->f, "\n    %s", pfsync_walk_error_word(err));
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

	pfsync_walk(payload, len, &ops, &t);
}
