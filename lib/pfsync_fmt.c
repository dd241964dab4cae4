// SPDX-License-Identifier: BSD-2-Clause
/* State printing in pfctl's shapes (see pfsync_fmt.h for the layout). */
#include "pfsync_fmt.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <string.h>
#include <sys/socket.h>

#include "pfsync_logic.h"

static const char *const tcp_state_names[] = {
    "CLOSED",	  "LISTEN",  "SYN_SENT", "SYN_RCVD",   "ESTABLISHED", "CLOSE_WAIT",
    "FIN_WAIT_1", "CLOSING", "LAST_ACK", "FIN_WAIT_2", "TIME_WAIT",
};

/* PFUDPS_NAMES and PFOTHERS_NAMES are the same words in pf */
static const char *const level_names[] = {"NO_TRAFFIC", "SINGLE", "MULTIPLE"};

static const char *const timeout_names[PFTM_MAX] = {
    [PFTM_TCP_FIRST_PACKET] = "tcp.first",
    [PFTM_TCP_OPENING] = "tcp.opening",
    [PFTM_TCP_ESTABLISHED] = "tcp.established",
    [PFTM_TCP_CLOSING] = "tcp.closing",
    [PFTM_TCP_FIN_WAIT] = "tcp.finwait",
    [PFTM_TCP_CLOSED] = "tcp.closed",
    [PFTM_UDP_FIRST_PACKET] = "udp.first",
    [PFTM_UDP_SINGLE] = "udp.single",
    [PFTM_UDP_MULTIPLE] = "udp.multiple",
    [PFTM_ICMP_FIRST_PACKET] = "icmp.first",
    [PFTM_ICMP_ERROR_REPLY] = "icmp.error",
    [PFTM_OTHER_FIRST_PACKET] = "other.first",
    [PFTM_OTHER_SINGLE] = "other.single",
    [PFTM_OTHER_MULTIPLE] = "other.multiple",
    [PFTM_FRAG] = "frag",
    [PFTM_INTERVAL] = "interval",
    [PFTM_ADAPTIVE_START] = "adaptive.start",
    [PFTM_ADAPTIVE_END] = "adaptive.end",
    [PFTM_SRC_NODE] = "src.track",
};

const char *pfsync_fmt_timeout_name(__u32 pftm)
{
	return pftm < PFTM_MAX ? timeout_names[pftm] : NULL;
}

const char *pfsync_fmt_peer_state(__u8 proto, __u8 state)
{
	if (proto == PFSYNC_IPPROTO_TCP)
		return state <= TCPS_TIME_WAIT ? tcp_state_names[state] : NULL;
	if (proto == PFSYNC_IPPROTO_ICMP || proto == PFSYNC_IPPROTO_ICMPV6)
		return NULL; /* pf: ICMP has no state levels, printed as numbers */
	return state <= PFUDPS_MULTIPLE ? level_names[state] : NULL;
}

const char *pfsync_fmt_proto(__u8 proto)
{
	switch (proto) {
	case 1:
		return "icmp";
	case 2:
		return "igmp";
	case 6:
		return "tcp";
	case 17:
		return "udp";
	case 47:
		return "gre";
	case 50:
		return "esp";
	case 51:
		return "ah";
	case 58:
		return "ipv6-icmp";
	case 132:
		return "sctp";
	default:
		return NULL;
	}
}

void pfsync_fmt_hms(char *buf, size_t len, __u64 secs)
{
	snprintf(buf, len, "%.2" PRIu64 ":%.2u:%.2u", (uint64_t)(secs / 3600),
		 (unsigned int)(secs / 60 % 60), (unsigned int)(secs % 60));
}

/* Which key sides and peers go left and right, pf's print_state order. */
struct state_view {
	int left_side, right_side; /* key sides */
	const struct pfsync_peer *src, *dst;
	const char *arrow;
};

static void state_view(const struct pfsync_state_value *v, struct state_view *sv)
{
	int init = v->init_side & 1;

	if (v->direction == PF_OUT) {
		sv->left_side = init;
		sv->right_side = init ^ 1;
		sv->src = &v->peer[0];
		sv->dst = &v->peer[1];
		sv->arrow = "->";
	} else {
		sv->left_side = init ^ 1;
		sv->right_side = init;
		sv->src = &v->peer[1];
		sv->dst = &v->peer[0];
		sv->arrow = "<-";
	}
}

static void addr_text(const struct pfsync_key *k, int side, char *buf, size_t len)
{
	int family = k->af == PFSYNC_AF_INET6 ? AF_INET6 : AF_INET;

	if (!inet_ntop(family, k->addr[side], buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

static void print_host(FILE *f, const struct pfsync_key *k, int side)
{
	char text[INET6_ADDRSTRLEN];
	__u16 port = ntohs(k->port[side]);

	addr_text(k, side, text, sizeof(text));
	fputs(text, f);
	if (port)
		fprintf(f, k->af == PFSYNC_AF_INET6 ? "[%u]" : ":%u", port);
}

/*
 * The initiator's (role 0) or responder's (role 1) endpoint in the stack
 * key (stack 1) or the wire key (stack 0): the key and its side.
 */
static const struct pfsync_key *endpoint_of(const struct pfsync_key *k,
					    const struct pfsync_state_value *v, int role, int stack,
					    int *side)
{
	if (stack && v->nat.type != PFSYNC_NAT_NONE) {
		*side = (v->nat.stack_init_side & 1) ^ role;
		return &v->nat.stack_key;
	}
	*side = (v->init_side & 1) ^ role;
	return k;
}

/* pfctl: the stack's endpoint, the wire's in parentheses when it differs */
static void print_endpoint(FILE *f, const struct pfsync_key *k, const struct pfsync_state_value *v,
			   int role)
{
	int ss, ws;
	const struct pfsync_key *sk = endpoint_of(k, v, role, 1, &ss);
	const struct pfsync_key *wk = endpoint_of(k, v, role, 0, &ws);

	print_host(f, sk, ss);
	if (sk == wk)
		return;
	if (memcmp(sk->addr[ss], wk->addr[ws], sizeof(sk->addr[0])) ||
	    sk->port[ss] != wk->port[ws] || sk->af != wk->af) {
		fprintf(f, " (");
		print_host(f, wk, ws);
		fprintf(f, ")");
	}
}

static void print_levels(FILE *f, __u8 proto, const struct pfsync_peer *src,
			 const struct pfsync_peer *dst)
{
	const char *s = pfsync_fmt_peer_state(proto, src->state);
	const char *d = pfsync_fmt_peer_state(proto, dst->state);

	if (s && d)
		fprintf(f, "   %s:%s\n", s, d);
	else if (proto == PFSYNC_IPPROTO_TCP &&
		 (src->state == PF_TCPS_PROXY_SRC || dst->state == PF_TCPS_PROXY_SRC))
		fprintf(f, "   PROXY:SRC\n");
	else if (proto == PFSYNC_IPPROTO_TCP &&
		 (src->state == PF_TCPS_PROXY_DST || dst->state == PF_TCPS_PROXY_DST))
		fprintf(f, "   PROXY:DST\n");
	else if (proto == PFSYNC_IPPROTO_TCP)
		fprintf(f, "   <BAD STATE LEVELS %u:%u>\n", src->state, dst->state);
	else
		fprintf(f, "   %u:%u\n", src->state, dst->state);
}

static void print_seq(FILE *f, const struct pfsync_peer *p)
{
	fprintf(f, "[%u + %u]", p->seqlo, p->seqhi - p->seqlo);
	if (p->seqdiff)
		fprintf(f, "(+%u)", p->seqdiff);
}

static void print_tcp_windows(FILE *f, const struct pfsync_peer *src, const struct pfsync_peer *dst)
{
	int scaled = src->wscale && dst->wscale;

	fprintf(f, "   ");
	print_seq(f, src);
	if (scaled)
		fprintf(f, " wscale %u", src->wscale & PF_WSCALE_MASK);
	fprintf(f, "  ");
	print_seq(f, dst);
	if (scaled)
		fprintf(f, " wscale %u", dst->wscale & PF_WSCALE_MASK);
	fprintf(f, "\n");
}

static __u64 age_secs(const struct pfsync_state_value *v, const struct pfsync_fmt_ctx *ctx)
{
	return ctx->now_ns > v->creation ? (ctx->now_ns - v->creation) / PFSYNC_NSEC_PER_SEC : 0;
}

static __u64 expires_secs(const struct pfsync_state_value *v, const struct pfsync_fmt_ctx *ctx)
{
	__u64 due = pfsync_state_expires_ns(v, ctx->cfg, ctx->states_count);

	return due > ctx->now_ns ? (due - ctx->now_ns) / PFSYNC_NSEC_PER_SEC : 0;
}

void pfsync_fmt_state(FILE *f, const struct pfsync_key *k, const struct pfsync_state_value *v,
		      const struct pfsync_fmt_ctx *ctx)
{
	const char *pname = pfsync_fmt_proto(k->proto);
	char age[32], expires[32];
	struct state_view sv;

	state_view(v, &sv);
	/* one table for every interface: pf calls such floating states "all" */
	fprintf(f, "all ");
	if (pname)
		fprintf(f, "%s ", pname);
	else
		fprintf(f, "%u ", k->proto);
	/* left is the initiator for direction out, the responder for in */
	print_endpoint(f, k, v, sv.left_side != (v->init_side & 1));
	fprintf(f, " %s ", sv.arrow);
	print_endpoint(f, k, v, sv.right_side != (v->init_side & 1));
	fprintf(f, "    ");
	print_levels(f, k->proto, sv.src, sv.dst);
	if (k->proto == PFSYNC_IPPROTO_TCP)
		print_tcp_windows(f, sv.src, sv.dst);
	pfsync_fmt_hms(age, sizeof(age), age_secs(v, ctx));
	pfsync_fmt_hms(expires, sizeof(expires), expires_secs(v, ctx));
	fprintf(f,
		"   age %s, expires in %s, %" PRIu64 ":%" PRIu64 " pkts, %" PRIu64 ":%" PRIu64
		" bytes",
		age, expires, (uint64_t)v->packets[0], (uint64_t)v->packets[1],
		(uint64_t)v->bytes[0], (uint64_t)v->bytes[1]);
	if (v->rule != 0xffffffffU)
		fprintf(f, ", rule %u", v->rule);
	fprintf(f, "\n   id: %016" PRIx64 " creatorid: %08x\n", (uint64_t)v->id, v->creatorid);
}

static void json_endpoint(FILE *f, const struct pfsync_key *k, int side)
{
	char text[INET6_ADDRSTRLEN];

	addr_text(k, side, text, sizeof(text));
	fprintf(f, "{\"addr\":\"%s\",\"port\":%u}", text, ntohs(k->port[side]));
}

static const char *nat_type_name(__u8 type)
{
	static const char *const names[] = {"none", "nat", "rdr", "binat"};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}

/* ,"wire_key":{"initiator":..,"responder":..},"stack_key":{..},"nat":"nat" */
static void json_both_keys(FILE *f, const struct pfsync_key *k, const struct pfsync_state_value *v)
{
	const char *const names[2] = {"wire_key", "stack_key"};

	for (int stack = 0; stack < 2; stack++) {
		int side;
		const struct pfsync_key *ek = endpoint_of(k, v, 0, stack, &side);

		fprintf(f, ",\"%s\":{\"initiator\":", names[stack]);
		json_endpoint(f, ek, side);
		fprintf(f, ",\"responder\":");
		json_endpoint(f, ek, side ^ 1);
		fputc('}', f);
	}
	fprintf(f, ",\"nat\":\"%s\"", nat_type_name(v->nat.type));
}

static void json_peer(FILE *f, __u8 proto, const struct pfsync_peer *p)
{
	const char *name = pfsync_fmt_peer_state(proto, p->state);

	fprintf(f,
		"{\"state\":%u,\"state_name\":\"%s\",\"seqlo\":%u,\"seqhi\":%u,\"seqdiff\":%u,"
		"\"max_win\":%u,\"mss\":%u,\"wscale\":%u}",
		p->state, name ? name : "", p->seqlo, p->seqhi, p->seqdiff, p->max_win, p->mss,
		p->wscale);
}

void pfsync_fmt_state_json(FILE *f, const struct pfsync_key *k, const struct pfsync_state_value *v,
			   const struct pfsync_fmt_ctx *ctx)
{
	const char *pname = pfsync_fmt_proto(k->proto);
	const char *tname = pfsync_fmt_timeout_name(v->timeout);
	int init = v->init_side & 1;

	fprintf(f, "{\"id\":\"%016" PRIx64 "\",\"creatorid\":\"%08x\",", (uint64_t)v->id,
		v->creatorid);
	fprintf(f, "\"af\":\"%s\",\"proto\":%u,\"proto_name\":\"%s\",",
		k->af == PFSYNC_AF_INET6 ? "inet6" : "inet", k->proto, pname ? pname : "");
	fprintf(f, "\"direction\":\"%s\",\"ifindex\":%u,\"init_side\":%u,",
		v->direction == PF_OUT	? "out"
		: v->direction == PF_IN ? "in"
					: "any",
		v->ifindex, init);
	fprintf(f, "\"initiator\":");
	json_endpoint(f, k, init);
	fprintf(f, ",\"responder\":");
	json_endpoint(f, k, init ^ 1);
	fprintf(f, ",\"key\":[");
	json_endpoint(f, k, 0);
	fputc(',', f);
	json_endpoint(f, k, 1);
	fputc(']', f);
	json_both_keys(f, k, v);
	fprintf(f, ",\"rdomain\":%u,\"peers\":[", k->rdomain);
	json_peer(f, k->proto, &v->peer[0]);
	fputc(',', f);
	json_peer(f, k->proto, &v->peer[1]);
	fprintf(f, "],\"packets\":[%" PRIu64 ",%" PRIu64 "],\"bytes\":[%" PRIu64 ",%" PRIu64 "],",
		(uint64_t)v->packets[0], (uint64_t)v->packets[1], (uint64_t)v->bytes[0],
		(uint64_t)v->bytes[1]);
	fprintf(f, "\"age\":%" PRIu64 ",\"expires_in\":%" PRIu64 ",", (uint64_t)age_secs(v, ctx),
		(uint64_t)expires_secs(v, ctx));
	fprintf(f, "\"creation_ns\":%" PRIu64 ",\"last_seen_ns\":%" PRIu64 ",",
		(uint64_t)v->creation, (uint64_t)v->last_seen);
	if (v->rule == 0xffffffffU)
		fprintf(f, "\"rule\":null,");
	else
		fprintf(f, "\"rule\":%u,", v->rule);
	fprintf(f, "\"timeout\":%u,\"timeout_name\":\"%s\",", v->timeout, tname ? tname : "");
	fprintf(f,
		"\"state_flags\":%u,\"sloppy\":%s,\"no_sync\":%s,\"flags\":%u,\"from_peer\":%s,"
		"\"queued\":%s,\"deferred\":%s,\"updates\":%u}",
		v->state_flags, (v->state_flags & PFSTATE_SLOPPY) ? "true" : "false",
		((v->flags & PFSYNC_SF_NOSYNC) || (v->state_flags & PFSTATE_NOSYNC)) ? "true"
										     : "false",
		v->flags, (v->flags & PFSYNC_SF_FROM_PEER) ? "true" : "false",
		(v->flags & PFSYNC_SF_QUEUED) ? "true" : "false",
		(v->flags & PFSYNC_SF_DEFERRED) ? "true" : "false", v->updates);
}
