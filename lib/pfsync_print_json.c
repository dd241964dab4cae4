/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The JSON printer for one pfsync v6 payload (see pfsync_print.h): what the
 * walker (pfsync_walk.c) finds, and the receiver's verdict from
 * pfsync_decode().
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "pfsync_print.h"
#include "pfsync_walk.h"
#include "pfsync_wire.h"

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

	pfsync_format_addr(buf, sizeof(buf), addr, wire_af);
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
		pfsync_get_be32(&s->expire), (uint64_t)pfsync_get_be64(&s->packets[0]),
		(uint64_t)pfsync_get_be64(&s->packets[1]), (uint64_t)pfsync_get_be64(&s->bytes[0]),
		(uint64_t)pfsync_get_be64(&s->bytes[1]));
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
		    pfsync_bus_status_name(m->status));
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
		fprintf(j->f, "%s\"%s", i ? "," : "", pfsync_walk_error_word(j->errors[i]));
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
	pfsync_walk(payload, len, &ops, &j);
	if (j.sections_open)
		fputs("]}]", f);
	json_errors(&j);
	json_receiver(f, payload, payload ? len : 0);
	fputc('}', f);
}
