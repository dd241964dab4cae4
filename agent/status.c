/* SPDX-License-Identifier: BSD-2-Clause */
/* Transport status and statistics for the control socket (ctl.c) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "agent.h"
#include "auth.h"

/* "10.0.0.2,10.0.0.3"; empty for the default group alone (OpenBSD's status line) */
const char *agent_peer_list(const struct agent *a, char *buf, size_t cap)
{
	const struct sync_sock *s = &a->sock;
	size_t used = 0;

	buf[0] = '\0';
	if (s->nconfigured == 1 && s->peers[0].addr.sa.sa_family == AF_INET &&
	    s->peers[0].addr.sin.sin_addr.s_addr == htonl(PFSYNC_GROUP_ADDR))
		return buf;
	for (unsigned int i = 0; i < s->nconfigured && used < cap; i++) {
		char one[SYNC_ADDRSTRLEN];
		int n = snprintf(buf + used, cap - used, "%s%s", i ? "," : "",
				 sync_addr_str(&s->peers[i].addr, one, sizeof(one)));

		if (n < 0)
			break;
		used += (size_t)n;
	}
	return buf;
}

static void auth_text(const struct agent *a, FILE *out)
{
	const struct auth *au = a->sock.auth;

	if (!au) {
		fprintf(out, "auth: off (TTL 255 required)\n");
		return;
	}
	fprintf(out, "auth: on (HMAC-SHA256, signing key %08x", au->keys[0].id);
	for (unsigned int i = 1; i < au->nkeys; i++)
		fprintf(out, ", also accepting %08x", au->keys[i].id);
	fprintf(out, "), min-ttl %u\n", a->sock.min_ttl);
}

void agent_transport_status(const struct agent *a, FILE *out, int json)
{
	const struct auth *au = a->sock.auth;
	char transport[32], peer[SYNC_ADDRSTRLEN];

	sync_sock_transport(&a->sock, transport, sizeof(transport));
	if (!json) {
		fprintf(out, "transport: %s, %u peer%s:", transport, a->sock.nconfigured,
			a->sock.nconfigured == 1 ? "" : "s");
		for (unsigned int i = 0; i < a->sock.nconfigured; i++)
			fprintf(out, " %s",
				sync_addr_str(&a->sock.peers[i].addr, peer, sizeof(peer)));
		fprintf(out, "\n");
		auth_text(a, out);
		return;
	}
	fprintf(out, "\"transport\":\"%s\",\"syncpeers\":[", transport);
	for (unsigned int i = 0; i < a->sock.nconfigured; i++)
		fprintf(out, "%s\"%s\"", i ? "," : "",
			sync_addr_str(&a->sock.peers[i].addr, peer, sizeof(peer)));
	fprintf(out, "],\"auth\":%s,\"auth_keys\":[", au ? "true" : "false");
	for (unsigned int i = 0; au && i < au->nkeys; i++)
		fprintf(out, "%s\"%08x\"", i ? "," : "", au->keys[i].id);
	fprintf(out, "],\"min_ttl\":%u,", a->sock.min_ttl);
}

static void peers_text(const struct agent *a, FILE *out)
{
	const struct sync_sock *s = &a->sock;
	char addr[SYNC_ADDRSTRLEN];

	fprintf(out, "\t%llu packets discarded from a source that is not a peer\n",
		(unsigned long long)s->badsrc);
	if (s->auth) {
		const struct auth *au = s->auth;

		fprintf(out, "\tauth: %llu signed, %llu verified; dropped:",
			(unsigned long long)au->signed_packets,
			(unsigned long long)au->verified_packets);
		for (int v = AUTH_MISSING; v < AUTH_VERDICTS; v++)
			fprintf(out, "%s %llu %s", v == AUTH_MISSING ? "" : ",",
				(unsigned long long)au->dropped[v], auth_verdict_name(v));
		fprintf(out, "\n");
	}
	fprintf(out, "\tper peer:\n\t\t%-40s %10s %10s %8s %8s %s\n", "peer", "in", "out", "errors",
		"badauth", "last heard");
	for (unsigned int i = 0; i < s->npeers; i++) {
		const struct sync_peer *p = &s->peers[i];

		fprintf(out, "\t\t%-40s %10llu %10llu %8llu %8llu ",
			sync_addr_str(&p->addr, addr, sizeof(addr)),
			(unsigned long long)p->ipackets, (unsigned long long)p->opackets,
			(unsigned long long)p->oerrors, (unsigned long long)p->badauth);
		if (p->group)
			fprintf(out, "(group)\n");
		else if (!p->last_heard_ns)
			fprintf(out, "never\n");
		else
			fprintf(out, "%.1f s ago\n", (double)(a->now_ns - p->last_heard_ns) / 1e9);
	}
}

static void peers_json(const struct agent *a, FILE *out)
{
	const struct sync_sock *s = &a->sock;
	char addr[SYNC_ADDRSTRLEN];

	fprintf(out, "\"badsrc\":%llu,", (unsigned long long)s->badsrc);
	if (s->auth) {
		fprintf(out, "\"auth_dropped\":{");
		for (int v = AUTH_MISSING; v < AUTH_VERDICTS; v++)
			fprintf(out, "%s\"%s\":%llu", v == AUTH_MISSING ? "" : ",",
				auth_verdict_name(v), (unsigned long long)s->auth->dropped[v]);
		fprintf(out, "},");
	}
	fprintf(out, "\"peers\":[");
	for (unsigned int i = 0; i < s->npeers; i++) {
		const struct sync_peer *p = &s->peers[i];

		fprintf(out,
			"%s{\"peer\":\"%s\",\"configured\":%s,\"group\":%s,\"packets_in\":%llu,"
			"\"packets_out\":%llu,\"send_errors\":%llu,\"badauth\":%llu,",
			i ? "," : "", sync_addr_str(&p->addr, addr, sizeof(addr)),
			p->configured ? "true" : "false", p->group ? "true" : "false",
			(unsigned long long)p->ipackets, (unsigned long long)p->opackets,
			(unsigned long long)p->oerrors, (unsigned long long)p->badauth);
		if (p->last_heard_ns)
			fprintf(out, "\"last_heard_ms_ago\":%llu}",
				(unsigned long long)(a->now_ns - p->last_heard_ns) / 1000000ULL);
		else
			fprintf(out, "\"last_heard_ms_ago\":null}");
	}
	fprintf(out, "]");
}

void agent_transport_stats(struct agent *a, FILE *out, int json)
{
	char *obj = NULL;
	size_t len = 0;
	FILE *mem;

	a->now_ns = agent_clock_ns();
	if (!json) {
		pfsync_stats_print(out, &a->stats);
		peers_text(a, out);
		return;
	}
	/* the OpenBSD counters' object, with the transport's fields added inside */
	mem = open_memstream(&obj, &len);
	if (!mem)
		return;
	pfsync_stats_print_json(mem, &a->stats);
	fclose(mem);
	while (len && (obj[len - 1] == '\n' || obj[len - 1] == '}'))
		obj[--len] = '\0';
	fprintf(out, "%s,", obj);
	peers_json(a, out);
	fprintf(out, "}\n");
	free(obj);
}
