// SPDX-License-Identifier: BSD-2-Clause
/* Rules back to pf.conf(5) text, and to JSON (pfsyncctl show rules) */
#include "pfsync_rules.h"
#include "pfsync_print.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>

struct out {
	char *buf;
	size_t len, used; /* used may exceed len: the snprintf convention */
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->used < o->len ? o->buf + o->used : NULL,
		      o->used < o->len ? o->len - o->used : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

static void put_host(struct out *o, __u8 af, const __u32 *addr, __u8 plen, __u32 has_port,
		     __u16 port)
{
	char text[INET6_ADDRSTRLEN];
	int family = af == PFSYNC_AF_INET6 ? AF_INET6 : AF_INET;

	if (!plen) {
		put(o, "any");
	} else {
		inet_ntop(family, addr, text, sizeof(text));
		put(o, "%s", text);
		if (plen != (af == PFSYNC_AF_INET6 ? 128 : 32))
			put(o, "/%u", plen);
	}
	if (has_port)
		put(o, " port %u", ntohs(port));
}

static const char *nat_keyword(__u8 type)
{
	switch (type) {
	case PFSYNC_NAT_NAT:
		return "nat-to";
	case PFSYNC_NAT_RDR:
		return "rdr-to";
	case PFSYNC_NAT_BINAT:
		return "binat-to";
	}
	return NULL;
}

static const char *action_keyword(__u8 action)
{
	if (action == PFSYNC_RULE_BLOCK)
		return "block";
	return action == PFSYNC_RULE_MATCH ? "match" : "pass";
}

/* " nat-to 198.51.100.1 port 1024:65535 static-port", " nat-to (wan0)", ... */
static void put_nat(struct out *o, const struct pfsync_rule *r)
{
	const struct pfsync_rule_nat *n = &r->nat;
	char text[INET6_ADDRSTRLEN];

	if (!nat_keyword(n->type))
		return;
	put(o, " %s ", nat_keyword(n->type));
	if (n->nflags & PFSYNC_NATF_IFADDR) {
		put(o, "(%.*s)", PFSYNC_IFNAMSIZ, r->nat_ifname);
	} else {
		inet_ntop(n->af == PFSYNC_AF_INET6 ? AF_INET6 : AF_INET, n->addr, text,
			  sizeof(text));
		put(o, "%s", text);
	}
	if ((n->nflags & PFSYNC_NATF_PORT) && n->port_low == n->port_high)
		put(o, " port %u", n->port_low);
	else if (n->nflags & PFSYNC_NATF_PORT)
		put(o, " port %u:%u", n->port_low, n->port_high);
	if (n->nflags & PFSYNC_NATF_STATIC_PORT)
		put(o, " static-port");
}

int pfsync_rule_print(const struct pfsync_rule *r, char *buf, size_t len)
{
	__u32 opts = r->rflags & (PFSYNC_RF_NOSYNC | PFSYNC_RF_SLOPPY);
	struct out o = {.buf = buf, .len = len};
	const char *pname;

	if (len)
		buf[0] = '\0';
	put(&o, "%s", action_keyword(r->action));
	if (r->dir == PF_IN || r->dir == PF_OUT)
		put(&o, " %s", r->dir == PF_IN ? "in" : "out");
	if (r->rflags & PFSYNC_RF_QUICK)
		put(&o, " quick");
	if (r->ifindex)
		put(&o, " on %.*s", PFSYNC_IFNAMSIZ, r->ifname);
	if (r->af)
		put(&o, " %s", r->af == PFSYNC_AF_INET6 ? "inet6" : "inet");
	if (r->rflags & PFSYNC_RF_PROTO) {
		pname = pfsync_rule_proto_name(r->proto);
		if (pname)
			put(&o, " proto %s", pname);
		else
			put(&o, " proto %u", r->proto);
	}
	if (!r->src_plen && !r->dst_plen &&
	    !(r->rflags & (PFSYNC_RF_SRC_PORT | PFSYNC_RF_DST_PORT))) {
		put(&o, " all");
	} else {
		put(&o, " from ");
		put_host(&o, r->af, r->src_addr, r->src_plen, r->rflags & PFSYNC_RF_SRC_PORT,
			 r->src_port);
		put(&o, " to ");
		put_host(&o, r->af, r->dst_addr, r->dst_plen, r->rflags & PFSYNC_RF_DST_PORT,
			 r->dst_port);
	}
	put_nat(&o, r);
	/* like pfctl: "keep state" is the default, printed only with options */
	if (r->action == PFSYNC_RULE_PASS && !(r->rflags & PFSYNC_RF_KEEP_STATE))
		put(&o, " no state");
	else if (opts)
		put(&o, " keep state (%s%s%s)", (opts & PFSYNC_RF_NOSYNC) ? "no-sync" : "",
		    opts == (PFSYNC_RF_NOSYNC | PFSYNC_RF_SLOPPY) ? ", " : "",
		    (opts & PFSYNC_RF_SLOPPY) ? "sloppy" : "");
	return (int)o.used;
}

static void json_host(FILE *f, const char *name, __u8 af, const __u32 *addr, __u8 plen,
		      int has_port, __u16 port)
{
	char text[INET6_ADDRSTRLEN] = "";

	if (plen)
		inet_ntop(af == PFSYNC_AF_INET6 ? AF_INET6 : AF_INET, addr, text, sizeof(text));
	fprintf(f, "\"%s\":{\"any\":%s,\"addr\":", name, plen ? "false" : "true");
	if (plen)
		fprintf(f, "\"%s\"", text);
	else
		fprintf(f, "null");
	fprintf(f, ",\"prefixlen\":%u,\"port\":", plen);
	if (has_port)
		fprintf(f, "%u}", ntohs(port));
	else
		fprintf(f, "null}");
}

/* "nat":null or {"type":"nat-to","addr":..,"interface":..,"port_low":..,...} */
static void json_nat(FILE *f, const struct pfsync_rule *r)
{
	const struct pfsync_rule_nat *n = &r->nat;
	char text[INET6_ADDRSTRLEN];

	if (!nat_keyword(n->type)) {
		fprintf(f, "\"nat\":null");
		return;
	}
	inet_ntop(n->af == PFSYNC_AF_INET6 ? AF_INET6 : AF_INET, n->addr, text, sizeof(text));
	fprintf(f, "\"nat\":{\"type\":\"%s\",\"addr\":", nat_keyword(n->type));
	/* (IF) without an address yet: null, not 0.0.0.0 */
	if (n->nflags & PFSYNC_NATF_NOADDR)
		fprintf(f, "null,\"interface\":");
	else
		fprintf(f, "\"%s\",\"interface\":", text);
	if (n->nflags & PFSYNC_NATF_IFADDR)
		pfsync_json_string(f, r->nat_ifname, PFSYNC_IFNAMSIZ);
	else
		fprintf(f, "null");
	if (n->nflags & PFSYNC_NATF_PORT)
		fprintf(f, ",\"port_low\":%u,\"port_high\":%u", n->port_low, n->port_high);
	else
		fprintf(f, ",\"port_low\":null,\"port_high\":null");
	fprintf(f, ",\"static_port\":%s}",
		(n->nflags & PFSYNC_NATF_STATIC_PORT) ? "true" : "false");
}

void pfsync_rule_print_json(FILE *f, const struct pfsync_rule *r)
{
	static const char *const dirs[] = {"any", "in", "out"};
	char text[512];

	pfsync_rule_print(r, text, sizeof(text));
	fprintf(f, "{\"action\":\"%s\",\"direction\":\"%s\",\"quick\":%s,\"interface\":",
		action_keyword(r->action), r->dir <= 2 ? dirs[r->dir] : "?",
		(r->rflags & PFSYNC_RF_QUICK) ? "true" : "false");
	if (r->ifindex)
		pfsync_json_string(f, r->ifname, PFSYNC_IFNAMSIZ);
	else
		fprintf(f, "null");
	fprintf(f, ",\"ifindex\":%u,\"af\":%s,\"proto\":", r->ifindex,
		r->af == PFSYNC_AF_INET6  ? "\"inet6\""
		: r->af == PFSYNC_AF_INET ? "\"inet\""
					  : "null");
	if (r->rflags & PFSYNC_RF_PROTO)
		fprintf(f, "%u,", r->proto);
	else
		fprintf(f, "null,");
	json_host(f, "from", r->af, r->src_addr, r->src_plen, !!(r->rflags & PFSYNC_RF_SRC_PORT),
		  r->src_port);
	fputc(',', f);
	json_host(f, "to", r->af, r->dst_addr, r->dst_plen, !!(r->rflags & PFSYNC_RF_DST_PORT),
		  r->dst_port);
	fprintf(f, ",\"keep_state\":%s,\"no_sync\":%s,\"sloppy\":%s,\"text\":",
		(r->rflags & PFSYNC_RF_KEEP_STATE) ? "true" : "false",
		(r->rflags & PFSYNC_RF_NOSYNC) ? "true" : "false",
		(r->rflags & PFSYNC_RF_SLOPPY) ? "true" : "false");
	pfsync_json_string(f, text, sizeof(text));
	fputc(',', f);
	json_nat(f, r);
	fputc('}', f);
}
