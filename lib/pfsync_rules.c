// SPDX-License-Identifier: BSD-2-Clause
/*
 * pf rule syntax subset. The grammar follows pf.conf(5) in pf's order:
 *   pass|block|match [in|out] [quick] [on IF] [inet|inet6] [proto P]
 *   (all | [from HOST [port N]] [to HOST [port N]])
 *   [NAT] [keep state [(OPTS)] | no state] [(OPTS)]      OPTS: no-sync, sloppy
 *   NAT: nat-to ADDR|(IF) [port LOW[:HIGH]] [static-port]   (out rules)
 *      | rdr-to ADDR [port N]                               (in rules)
 *      | binat-to ADDR                                      (from one host)
 * A rule ends at a newline; `\` at the end of a line continues it; `#`
 * starts a comment.
 */
#include "pfsync_rules.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_MAX		64 /* longest token kept (an IPv6 prefix is 49) */
#define RULE_TOKENS_MAX 64 /* tokens in one rule */

#define IPPROTO_NUM_ICMP  1
#define IPPROTO_NUM_TCP	  6
#define IPPROTO_NUM_UDP	  17
#define IPPROTO_NUM_ICMP6 58

struct tok {
	char text[TOK_MAX];
	unsigned int line;
};

struct scanner {
	const char *p;
	unsigned int line;
};

struct parser {
	const char *name;
	struct tok toks[RULE_TOKENS_MAX];
	unsigned int ntok, pos;
	unsigned int rule_line; /* line of the first token */
	char *err;
	size_t errlen;
};

/* ---- tokenizer ---------------------------------------------------------- */

static int is_punct(char c)
{
	return c == '(' || c == ')' || c == ',' || c == '=';
}

static int ends_word(char c)
{
	return c == '\0' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '#' ||
	       c == '\\' || is_punct(c);
}

/* A backslash right before the end of the line joins the next line. */
static int at_continuation(const char *p)
{
	if (p[0] != '\\')
		return 0;
	if (p[1] == '\n')
		return 2;
	if (p[1] == '\r' && p[2] == '\n')
		return 3;
	return 0;
}

static void add_tok(struct parser *ps, const char *start, size_t len, unsigned int line)
{
	struct tok *t;

	if (ps->ntok >= RULE_TOKENS_MAX) {
		ps->ntok++; /* counted so the caller can report an overlong rule */
		return;
	}
	t = &ps->toks[ps->ntok++];
	if (len >= TOK_MAX)
		len = TOK_MAX - 1;
	memcpy(t->text, start, len);
	t->text[len] = '\0';
	t->line = line;
}

/* Collects the tokens of the next non-empty rule; 0 at the end of the text. */
static int scan_rule(struct scanner *sc, struct parser *ps)
{
	const char *p = sc->p;
	int cont;

	ps->ntok = 0;
	ps->pos = 0;
	while (*p) {
		if (*p == '\n') {
			p++;
			sc->line++;
			if (ps->ntok)
				break;
		} else if ((cont = at_continuation(p))) {
			p += cont;
			sc->line++;
		} else if (*p == '#') {
			while (*p && *p != '\n')
				p++;
		} else if (*p == ' ' || *p == '\t' || *p == '\r') {
			p++;
		} else if (is_punct(*p)) {
			add_tok(ps, p, 1, sc->line);
			p++;
		} else {
			const char *start = p;

			/* a lone backslash not ending the line is a token of its own */
			p++;
			while (!ends_word(*p))
				p++;
			add_tok(ps, start, (size_t)(p - start), sc->line);
		}
	}
	sc->p = p;
	if (ps->ntok)
		ps->rule_line = ps->toks[0].line;
	return ps->ntok > 0;
}

/* ---- parser helpers ----------------------------------------------------- */

static int fail(struct parser *ps, const struct tok *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats "NAME:LINE: <message>"; fmt should name the token. */
static int fail(struct parser *ps, const struct tok *t, const char *fmt, ...)
{
	unsigned int line = t ? t->line : ps->rule_line;
	size_t used;
	va_list ap;

	snprintf(ps->err, ps->errlen, "%s:%u: ", ps->name, line);
	used = strlen(ps->err);
	va_start(ap, fmt);
	vsnprintf(ps->err + used, ps->errlen - used, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const struct tok *peek(struct parser *ps)
{
	return ps->pos < ps->ntok ? &ps->toks[ps->pos] : NULL;
}

static const struct tok *prev_tok(struct parser *ps)
{
	return ps->pos ? &ps->toks[ps->pos - 1] : NULL;
}

static int take(struct parser *ps, const char *word)
{
	const struct tok *t = peek(ps);

	if (t && !strcmp(t->text, word)) {
		ps->pos++;
		return 1;
	}
	return 0;
}

static int unexpected(struct parser *ps)
{
	const struct tok *t = peek(ps);

	if (!t)
		return fail(ps, prev_tok(ps), "unexpected end of line after \"%s\"",
			    prev_tok(ps)->text);
	return fail(ps, t, "unexpected token \"%s\"", t->text);
}

/* The value after a keyword, or an "end of line" error naming the keyword. */
static const struct tok *value_after(struct parser *ps, int *err)
{
	const struct tok *t = peek(ps);

	if (!t) {
		*err = unexpected(ps);
		return NULL;
	}
	ps->pos++;
	return t;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno || *end || *out > max)
		return -1;
	return 0;
}

/* ---- rule parts ---------------------------------------------------------- */

static int parse_action(struct parser *ps, struct pfsync_rule *r)
{
	if (take(ps, "pass")) {
		r->action = PFSYNC_RULE_PASS;
		r->rflags |= PFSYNC_RF_KEEP_STATE; /* pf: pass keeps state by default */
	} else if (take(ps, "block")) {
		r->action = PFSYNC_RULE_BLOCK;
	} else if (take(ps, "match")) {
		r->action = PFSYNC_RULE_MATCH; /* decides nothing, keeps no state */
	} else {
		return unexpected(ps);
	}
	return 0;
}

/*
 * The next token as an interface that exists: *t the token, *idx its
 * index; 0, or the error already reported. Its name fits PFSYNC_IFNAMSIZ
 * with its NUL.
 */
static int take_interface(struct parser *ps, const struct tok **t, unsigned int *idx)
{
	int err = 0;

	*t = value_after(ps, &err);
	if (!*t)
		return err;
	if (strlen((*t)->text) >= PFSYNC_IFNAMSIZ || is_punct((*t)->text[0]))
		return fail(ps, *t, "invalid interface name \"%s\"", (*t)->text);
	*idx = if_nametoindex((*t)->text);
	if (!*idx)
		return fail(ps, *t, "unknown interface \"%s\"", (*t)->text);
	return 0;
}

static int parse_interface(struct parser *ps, struct pfsync_rule *r)
{
	const struct tok *t;
	unsigned int idx;
	int err;

	if (!take(ps, "on"))
		return 0;
	err = take_interface(ps, &t, &idx);
	if (err)
		return err;
	r->ifindex = idx;
	/* length checked above: it fits with its NUL */
	memcpy(r->ifname, t->text, strlen(t->text) + 1);
	return 0;
}

static const struct {
	const char *name;
	__u8 num;
} proto_names[] = {
    {"icmp", IPPROTO_NUM_ICMP},
    {"tcp", IPPROTO_NUM_TCP},
    {"udp", IPPROTO_NUM_UDP},
    {"icmp6", IPPROTO_NUM_ICMP6},
};

/* the rule keyword of a protocol number, NULL if it has none */
const char *pfsync_rule_proto_name(__u8 proto)
{
	unsigned int i;

	for (i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++)
		if (proto_names[i].num == proto)
			return proto_names[i].name;
	return NULL;
}

static int parse_proto(struct parser *ps, struct pfsync_rule *r)
{
	const struct tok *t;
	unsigned long num;
	unsigned int i;
	int err = 0;

	if (!take(ps, "proto"))
		return 0;
	t = value_after(ps, &err);
	if (!t)
		return err;
	for (i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++) {
		if (!strcmp(t->text, proto_names[i].name)) {
			r->proto = proto_names[i].num;
			r->rflags |= PFSYNC_RF_PROTO;
			return 0;
		}
	}
	if (parse_uint(t->text, 255, &num))
		return fail(ps, t, "invalid protocol \"%s\"", t->text);
	r->proto = (__u8)num;
	r->rflags |= PFSYNC_RF_PROTO;
	return 0;
}

static void prefix_mask(__u32 *mask, unsigned int plen)
{
	unsigned int i;

	for (i = 0; i < 4; i++) {
		unsigned int bits = plen > 32 ? 32 : plen;

		mask[i] = bits ? htonl(0xffffffffU << (32 - bits)) : 0;
		plen -= bits;
	}
}

/* ADDR[/LEN]: fills addr/mask (masked) and returns the family, or 0 on error. */
static int parse_prefix(const char *text, __u32 *addr, __u32 *mask, __u8 *plen_out)
{
	char buf[TOK_MAX];
	char *slash;
	unsigned long plen;
	unsigned int maxlen, i;
	int af;

	snprintf(buf, sizeof(buf), "%s", text);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, buf, addr) == 1) {
		af = PFSYNC_AF_INET;
		maxlen = 32;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		af = PFSYNC_AF_INET6;
		maxlen = 128;
	} else {
		return 0;
	}
	plen = maxlen;
	if (slash && parse_uint(slash + 1, maxlen, &plen))
		return -1;
	prefix_mask(mask, (unsigned int)plen);
	for (i = 0; i < 4; i++)
		addr[i] &= mask[i];
	*plen_out = (__u8)plen;
	return af;
}

static int set_family(struct parser *ps, struct pfsync_rule *r, __u8 af, const struct tok *t)
{
	if (r->af && r->af != af)
		return fail(ps, t, "address family mismatch \"%s\"", t->text);
	r->af = af;
	return 0;
}

static int parse_host(struct parser *ps, struct pfsync_rule *r, __u32 *addr, __u32 *mask,
		      __u8 *plen)
{
	const struct tok *t;
	int err = 0, af;

	t = value_after(ps, &err);
	if (!t)
		return err;
	if (!strcmp(t->text, "any"))
		return 0;
	af = parse_prefix(t->text, addr, mask, plen);
	if (af < 0)
		return fail(ps, t, "invalid prefix length \"%s\"", t->text);
	if (af == 0)
		return fail(ps, t, "invalid address \"%s\"", t->text);
	return set_family(ps, r, (__u8)af, t);
}

static int port_allowed(const struct pfsync_rule *r)
{
	return (r->rflags & PFSYNC_RF_PROTO) &&
	       (r->proto == IPPROTO_NUM_TCP || r->proto == IPPROTO_NUM_UDP);
}

static int parse_port(struct parser *ps, const struct pfsync_rule *r, __u16 *port, __u32 *rflags,
		      __u32 flag)
{
	const struct tok *kw, *t;
	unsigned long num;
	int err = 0;

	kw = peek(ps);
	if (!take(ps, "port"))
		return 0;
	if (!port_allowed(r))
		return fail(ps, kw, "port needs proto tcp or udp \"%s\"", kw->text);
	take(ps, "="); /* pf's `port = N` */
	t = value_after(ps, &err);
	if (!t)
		return err;
	if (parse_uint(t->text, 65535, &num) || num == 0)
		return fail(ps, t, "invalid port \"%s\"", t->text);
	*port = htons((__u16)num);
	*rflags |= flag;
	return 0;
}

static int parse_hosts(struct parser *ps, struct pfsync_rule *r)
{
	int err;

	if (take(ps, "all"))
		return 0;
	if (take(ps, "from")) {
		err = parse_host(ps, r, r->src_addr, r->src_mask, &r->src_plen);
		if (!err)
			err = parse_port(ps, r, &r->src_port, &r->rflags, PFSYNC_RF_SRC_PORT);
		if (err)
			return err;
	}
	if (take(ps, "to")) {
		err = parse_host(ps, r, r->dst_addr, r->dst_mask, &r->dst_plen);
		if (!err)
			err = parse_port(ps, r, &r->dst_port, &r->rflags, PFSYNC_RF_DST_PORT);
		if (err)
			return err;
	}
	return 0;
}

/* ---- translation (issue 15) ---------------------------------------------- */

/* LOW or LOW:HIGH, 1..65535, LOW <= HIGH. */
static int parse_port_range(const char *text, __u16 *low, __u16 *high)
{
	char buf[TOK_MAX];
	char *colon;
	unsigned long lo, hi;

	snprintf(buf, sizeof(buf), "%s", text);
	colon = strchr(buf, ':');
	if (colon)
		*colon = '\0';
	if (parse_uint(buf, 65535, &lo) || lo == 0)
		return -1;
	hi = lo;
	if (colon && (parse_uint(colon + 1, 65535, &hi) || hi < lo))
		return -1;
	*low = (__u16)lo;
	*high = (__u16)hi;
	return 0;
}

/*
 * An IPv6 link-local address: never a translation address, since it means
 * nothing past the link (an interface with only one has no address for
 * nat-to, as one whose global address is gone).
 */
static int is_link_local6(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 &&
	       IN6_IS_ADDR_LINKLOCAL(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

int pfsync_iface_first_addr(const char *name, __u8 af, __u32 *addr, __u8 *af_out)
{
	const int families[2] = {AF_INET, AF_INET6};
	struct ifaddrs *ifa, *it;
	int f, found = 0;

	if (getifaddrs(&ifa))
		return -errno;
	for (f = 0; f < 2 && !found; f++) {
		int fam = families[f];

		if (af && af != (fam == AF_INET ? PFSYNC_AF_INET : PFSYNC_AF_INET6))
			continue;
		for (it = ifa; it && !found; it = it->ifa_next) {
			if (!it->ifa_addr || it->ifa_addr->sa_family != fam ||
			    strcmp(it->ifa_name, name) || is_link_local6(it->ifa_addr))
				continue;
			memset(addr, 0, 16);
			if (fam == AF_INET)
				memcpy(addr, &((struct sockaddr_in *)it->ifa_addr)->sin_addr, 4);
			else
				memcpy(addr, &((struct sockaddr_in6 *)it->ifa_addr)->sin6_addr, 16);
			*af_out = fam == AF_INET ? PFSYNC_AF_INET : PFSYNC_AF_INET6;
			found = 1;
		}
	}
	freeifaddrs(ifa);
	return found ? 0 : -ENOENT;
}

/*
 * "(" IF ")": the interface's first address now; the agent follows changes
 * (ruleset.c). An interface without one yet (PPP or DHCP still to come)
 * is accepted when the rule says its family: the rule then translates
 * nothing until an address comes (PFSYNC_NATF_NOADDR).
 */
static int parse_nat_iface(struct parser *ps, struct pfsync_rule *r)
{
	const struct tok *t;
	unsigned int idx;
	int err;

	err = take_interface(ps, &t, &idx);
	if (err)
		return err;
	if (pfsync_iface_first_addr(t->text, r->af, r->nat.addr, &r->nat.af)) {
		if (!r->af)
			return fail(ps, t,
				    "interface has no address \"%s\" (say inet or inet6 to load "
				    "the rule before it has one)",
				    t->text);
		memset(r->nat.addr, 0, sizeof(r->nat.addr));
		r->nat.af = r->af;
		r->nat.nflags |= PFSYNC_NATF_NOADDR;
	}
	r->nat.ifindex = idx;
	r->nat.nflags |= PFSYNC_NATF_IFADDR;
	memcpy(r->nat_ifname, t->text, strlen(t->text) + 1);
	if (!take(ps, ")"))
		return unexpected(ps);
	return set_family(ps, r, r->nat.af, t);
}

/* The translation address: one host, or (IF) for nat-to. */
static int parse_nat_addr(struct parser *ps, struct pfsync_rule *r)
{
	const struct tok *t = peek(ps);
	__u32 mask[4];
	__u8 plen;
	int err = 0, af;

	if (r->nat.type == PFSYNC_NAT_NAT && take(ps, "("))
		return parse_nat_iface(ps, r);
	t = value_after(ps, &err);
	if (!t)
		return err;
	af = parse_prefix(t->text, r->nat.addr, mask, &plen);
	if (af <= 0 || plen != (af == PFSYNC_AF_INET6 ? 128 : 32))
		return fail(ps, t, "invalid translation address \"%s\"", t->text);
	r->nat.af = (__u8)af;
	return set_family(ps, r, (__u8)af, t);
}

/* port LOW[:HIGH] after nat-to, port N after rdr-to */
static int parse_nat_port(struct parser *ps, struct pfsync_rule *r)
{
	const struct tok *kw = peek(ps), *t;
	int err = 0;

	if (!take(ps, "port"))
		return 0;
	if (r->nat.type == PFSYNC_NAT_BINAT)
		return fail(ps, kw, "binat-to takes no port \"%s\"", kw->text);
	if (!port_allowed(r))
		return fail(ps, kw, "port needs proto tcp or udp \"%s\"", kw->text);
	t = value_after(ps, &err);
	if (!t)
		return err;
	if (parse_port_range(t->text, &r->nat.port_low, &r->nat.port_high) ||
	    (r->nat.type == PFSYNC_NAT_RDR && r->nat.port_low != r->nat.port_high))
		return fail(ps, t, "invalid translation port \"%s\"", t->text);
	r->nat.nflags |= PFSYNC_NATF_PORT;
	return 0;
}

/* pf's placement rules: nat-to on outbound rules, rdr-to on inbound ones. */
static int check_nat_rule(struct parser *ps, struct pfsync_rule *r, const struct tok *kw)
{
	static const __u32 host_ones[4] = {0xffffffffU, 0xffffffffU, 0xffffffffU, 0xffffffffU};
	int v6 = r->af == PFSYNC_AF_INET6;

	if (r->action == PFSYNC_RULE_BLOCK)
		return fail(ps, kw, "translation on a block rule \"%s\"", kw->text);
	if (r->nat.type == PFSYNC_NAT_NAT && r->dir != PF_OUT)
		return fail(ps, kw, "nat-to needs an outbound rule (pass out) \"%s\"", kw->text);
	if (r->nat.type == PFSYNC_NAT_RDR && r->dir != PF_IN)
		return fail(ps, kw, "rdr-to needs an inbound rule (pass in) \"%s\"", kw->text);
	if (r->nat.type == PFSYNC_NAT_BINAT &&
	    (r->src_plen != (v6 ? 128 : 32) || memcmp(r->src_mask, host_ones, v6 ? 16 : 4)))
		return fail(ps, kw, "binat-to needs one source host (from ADDR) \"%s\"", kw->text);
	return 0;
}

static int parse_nat(struct parser *ps, struct pfsync_rule *r)
{
	const struct tok *kw = peek(ps);
	int err;

	if (take(ps, "nat-to"))
		r->nat.type = PFSYNC_NAT_NAT;
	else if (take(ps, "rdr-to"))
		r->nat.type = PFSYNC_NAT_RDR;
	else if (take(ps, "binat-to"))
		r->nat.type = PFSYNC_NAT_BINAT;
	else
		return 0;
	err = check_nat_rule(ps, r, kw);
	if (!err)
		err = parse_nat_addr(ps, r);
	if (!err)
		err = parse_nat_port(ps, r);
	if (err)
		return err;
	if (take(ps, "static-port")) {
		if (r->nat.type != PFSYNC_NAT_NAT)
			return fail(ps, prev_tok(ps), "static-port needs nat-to \"%s\"",
				    prev_tok(ps)->text);
		r->nat.nflags |= PFSYNC_NATF_STATIC_PORT;
	}
	kw = peek(ps);
	if (kw && (!strcmp(kw->text, "nat-to") || !strcmp(kw->text, "rdr-to") ||
		   !strcmp(kw->text, "binat-to")))
		return fail(ps, kw, "one translation per rule \"%s\"", kw->text);
	return 0;
}

/* "(" opt ["," opt]... ")" with opt = no-sync | sloppy */
static int parse_state_opts(struct parser *ps, struct pfsync_rule *r)
{
	const struct tok *open = peek(ps);

	if (!take(ps, "("))
		return 0;
	if (!(r->rflags & PFSYNC_RF_KEEP_STATE))
		return fail(ps, open, "state options need keep state \"%s\"", open->text);
	do {
		if (take(ps, "no-sync"))
			r->rflags |= PFSYNC_RF_NOSYNC;
		else if (take(ps, "sloppy"))
			r->rflags |= PFSYNC_RF_SLOPPY;
		else
			return unexpected(ps);
	} while (take(ps, ","));
	if (!take(ps, ")"))
		return unexpected(ps);
	return 0;
}

static int parse_state(struct parser *ps, struct pfsync_rule *r)
{
	const struct tok *kw = peek(ps);
	int err;

	if (take(ps, "keep")) {
		if (!take(ps, "state"))
			return unexpected(ps);
		if (r->action != PFSYNC_RULE_PASS)
			return fail(ps, kw, "keep state on a %s rule \"%s\"",
				    r->action == PFSYNC_RULE_MATCH ? "match" : "block", kw->text);
		r->rflags |= PFSYNC_RF_KEEP_STATE;
	} else if (take(ps, "no")) {
		if (!take(ps, "state"))
			return unexpected(ps);
		r->rflags &= ~(__u32)PFSYNC_RF_KEEP_STATE;
		return 0;
	}
	/* the options may follow keep state or stand alone; several groups are fine */
	while ((kw = peek(ps)) && !strcmp(kw->text, "(")) {
		err = parse_state_opts(ps, r);
		if (err)
			return err;
	}
	return 0;
}

static int parse_rule(struct parser *ps, struct pfsync_rule *r)
{
	int err;

	memset(r, 0, sizeof(*r));
	err = parse_action(ps, r);
	if (err)
		return err;
	if (take(ps, "in"))
		r->dir = PF_IN;
	else if (take(ps, "out"))
		r->dir = PF_OUT;
	if (take(ps, "quick"))
		r->rflags |= PFSYNC_RF_QUICK;
	err = parse_interface(ps, r);
	if (err)
		return err;
	if (take(ps, "inet"))
		r->af = PFSYNC_AF_INET;
	else if (take(ps, "inet6"))
		r->af = PFSYNC_AF_INET6;
	err = parse_proto(ps, r);
	if (!err)
		err = parse_hosts(ps, r);
	if (!err)
		err = parse_nat(ps, r);
	if (!err)
		err = parse_state(ps, r);
	if (!err && r->action == PFSYNC_RULE_MATCH)
		r->rflags &= ~(__u32)PFSYNC_RF_KEEP_STATE; /* pf: match rules create nothing */
	if (!err && peek(ps))
		err = unexpected(ps);
	return err;
}

/*
 * binat-to ADDR becomes what pf makes of it: nat-to ADDR static-port on the
 * way out, and rdr-to HOST on the way in for what is sent to ADDR, ports
 * kept (as pfctl -sr shows it, the datapath sees only the two). A rule
 * for one direction keeps only that half. *n counts the rules made.
 */
static int expand_binat(struct parser *ps, struct pfsync_rule *rules, unsigned int max,
			unsigned int *n)
{
	struct pfsync_rule *r = &rules[*n], in;
	int both = r->dir == PF_INOUT;

	in = *r;
	if (both && *n + 1 >= max)
		return fail(ps, &ps->toks[0], "too many rules (max %u) \"%s\"", max,
			    ps->toks[0].text);
	/* inbound: from whatever the rule sends to, to ADDR, rdr-to the host */
	memcpy(in.src_addr, r->dst_addr, sizeof(in.src_addr));
	memcpy(in.src_mask, r->dst_mask, sizeof(in.src_mask));
	in.src_plen = r->dst_plen;
	in.src_port = r->dst_port;
	memcpy(in.dst_addr, r->nat.addr, sizeof(in.dst_addr));
	prefix_mask(in.dst_mask, r->src_plen);
	in.dst_plen = r->src_plen;
	in.dst_port = r->src_port;
	in.rflags = (r->rflags & ~(__u32)(PFSYNC_RF_SRC_PORT | PFSYNC_RF_DST_PORT)) |
		    ((r->rflags & PFSYNC_RF_SRC_PORT) ? PFSYNC_RF_DST_PORT : 0) |
		    ((r->rflags & PFSYNC_RF_DST_PORT) ? PFSYNC_RF_SRC_PORT : 0);
	in.dir = PF_IN;
	in.nat.type = PFSYNC_NAT_RDR;
	memcpy(in.nat.addr, r->src_addr, sizeof(in.nat.addr));
	/* outbound: the rule itself, as nat-to ADDR static-port */
	r->nat.type = PFSYNC_NAT_NAT;
	r->nat.nflags |= PFSYNC_NATF_STATIC_PORT;
	if (r->dir == PF_IN)
		*r = in;
	else
		r->dir = PF_OUT;
	(*n)++;
	if (both)
		rules[(*n)++] = in;
	return 0;
}

int pfsync_rules_parse(const char *name, const char *text, struct pfsync_rule *rules,
		       unsigned int max, unsigned int *count, char *err, size_t errlen)
{
	struct scanner sc = {.p = text, .line = 1};
	struct parser *ps;
	unsigned int n = 0;
	int ret = 0;

	*count = 0;
	if (errlen)
		err[0] = '\0';
	ps = calloc(1, sizeof(*ps));
	if (!ps) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	ps->name = name;
	ps->err = err;
	ps->errlen = errlen;
	while (!ret && scan_rule(&sc, ps)) {
		if (ps->ntok > RULE_TOKENS_MAX)
			ret = fail(ps, &ps->toks[0], "rule too long (more than %d tokens) \"%s\"",
				   RULE_TOKENS_MAX, ps->toks[0].text);
		else if (n >= max)
			ret = fail(ps, &ps->toks[0], "too many rules (max %u) \"%s\"", max,
				   ps->toks[0].text);
		else
			ret = parse_rule(ps, &rules[n]);
		if (!ret && rules[n].nat.type == PFSYNC_NAT_BINAT)
			ret = expand_binat(ps, rules, max, &n);
		else if (!ret)
			n++;
	}
	free(ps);
	if (!ret)
		*count = n;
	return ret;
}

int pfsync_rules_parse_file(const char *path, struct pfsync_rule *rules, unsigned int max,
			    unsigned int *count, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0, used;
	int ret;

	*count = 0;
	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	/* read it whole: a ruleset is small and the parser wants one string */
	text = malloc(1);
	for (ret = 0; text;) {
		char *grown;

		grown = realloc(text, len + 4096 + 1);
		if (!grown)
			break;
		text = grown;
		used = fread(text + len, 1, 4096, f);
		len += used;
		if (used < 4096)
			break;
	}
	if (!text || ferror(f)) {
		ret = text ? -EIO : -ENOMEM;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
	} else if (memchr(text, '\0', len)) {
		ret = -EINVAL;
		snprintf(err, errlen, "%s: contains a NUL byte, not a rules file", path);
	} else {
		text[len] = '\0';
		ret = pfsync_rules_parse(path, text, rules, max, count, err, errlen);
	}
	free(text);
	fclose(f);
	return ret;
}
