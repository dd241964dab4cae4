/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pfsync counters printed like `netstat -s -p pfsync` (pfsync-wire.md §3.9),
 * followed by per-action in/out counts labelled as tcpdump does (§2.1).
 */
#include "pfsync_wire.h"

struct stat_line {
	size_t offset;	    /* of the counter in struct pfsync_stats */
	const char *indent; /* totals one tab, their details two */
	const char *one;    /* text after the number, singular */
	const char *many;   /* plural */
	const char *json;   /* key in the JSON object (OpenBSD's field name) */
};

#define STAT(field, indent, one, many)                                                             \
	{                                                                                          \
		offsetof(struct pfsync_stats, field), indent, one, many, #field                    \
	}

static const struct stat_line stat_lines[] = {
    STAT(ipackets, "\t", "packet received (IPv4)", "packets received (IPv4)"),
    STAT(ipackets6, "\t", "packet received (IPv6)", "packets received (IPv6)"),
    STAT(badif, "\t\t", "packet discarded for bad interface",
	 "packets discarded for bad interface"),
    STAT(badttl, "\t\t", "packet discarded for bad ttl", "packets discarded for bad ttl"),
    STAT(hdrops, "\t\t", "packet shorter than header", "packets shorter than header"),
    STAT(badver, "\t\t", "packet discarded for bad version", "packets discarded for bad version"),
    STAT(badauth, "\t\t", "packet discarded for bad HMAC", "packets discarded for bad HMAC"),
    STAT(badact, "\t\t", "packet discarded for bad action", "packets discarded for bad action"),
    STAT(badlen, "\t\t", "packet discarded for short packet", "packets discarded for short packet"),
    STAT(badval, "\t\t", "state discarded for bad values", "states discarded for bad values"),
    STAT(stale, "\t\t", "stale state", "stale states"),
    STAT(badstate, "\t\t", "failed state lookup/insert", "failed state lookup/inserts"),
    STAT(dupident, "\t\t", "state refused: identity held by another state",
	 "states refused: identity held by another state"),
    STAT(looped, "\t", "packet of our own looped back, ignored",
	 "packets of our own looped back, ignored"),
    STAT(opackets, "\t", "packet sent (IPv4)", "packets sent (IPv4)"),
    STAT(opackets6, "\t", "packet sent (IPv6)", "packets sent (IPv6)"),
    /* netstat prints these two without a plural form */
    STAT(onomem, "\t\t", "send failed due to mbuf memory error",
	 "send failed due to mbuf memory error"),
    STAT(oerrors, "\t\t", "send error", "send error"),
};

#define NLINES (sizeof(stat_lines) / sizeof(stat_lines[0]))

static unsigned long long stat_value(const struct pfsync_stats *st, const struct stat_line *l)
{
	__u64 v;

	memcpy(&v, (const char *)st + l->offset, sizeof(v));
	return (unsigned long long)v;
}

void pfsync_stats_print(FILE *f, const struct pfsync_stats *st)
{
	fprintf(f, "pfsync:\n");
	for (size_t i = 0; i < NLINES; i++) {
		const struct stat_line *l = &stat_lines[i];
		unsigned long long v = stat_value(st, l);

		fprintf(f, "%s%llu %s\n", l->indent, v, v == 1 ? l->one : l->many);
	}
	fprintf(f, "\tper action:\n\t\t%-14s %12s %12s\n", "action", "in", "out");
	for (unsigned int a = 0; a < PFSYNC_ACT_MAX; a++)
		fprintf(f, "\t\t%-14s %12llu %12llu\n", pfsync_action_label(a),
			(unsigned long long)st->iacts[a], (unsigned long long)st->oacts[a]);
}

void pfsync_stats_print_json(FILE *f, const struct pfsync_stats *st)
{
	fprintf(f, "{");
	for (size_t i = 0; i < NLINES; i++)
		fprintf(f, "%s\"%s\":%llu", i ? "," : "", stat_lines[i].json,
			stat_value(st, &stat_lines[i]));
	fprintf(f, ",\"actions\":[");
	for (unsigned int a = 0; a < PFSYNC_ACT_MAX; a++)
		fprintf(f, "%s{\"action\":%u,\"label\":\"%s\",\"in\":%llu,\"out\":%llu}",
			a ? "," : "", a, pfsync_action_label(a), (unsigned long long)st->iacts[a],
			(unsigned long long)st->oacts[a]);
	fprintf(f, "]}\n");
}
