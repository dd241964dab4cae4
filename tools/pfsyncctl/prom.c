// SPDX-License-Identifier: BSD-2-Clause
/* Prometheus text format of the datapath and agent statistics (prom.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pfsync_maps.h"
#include "pfsync_wire.h"
#include "prom.h"

/* lower-case action names for the `action` label, by PFSYNC_ACT_* number */
static const char *const action_names[PFSYNC_ACT_MAX] = {
    "clr",   "oins",  "ins_ack", "oupd", "upd_c", "upd_req", "del", "del_c",
    "ins_f", "del_f", "bus",	 "otdb", "eof",	  "ins",     "upd", "tdb",
};

/* the agent's counters (OpenBSD's struct pfsyncstats field names, §3.9) */
static const struct {
	const char *key, *help;
} agent_counters[] = {
    {"ipackets", "pfsync packets received over IPv4."},
    {"ipackets6", "pfsync packets received over IPv6."},
    {"badif", "Received packets discarded: wrong interface."},
    {"badttl", "Received packets discarded: TTL not 255."},
    {"hdrops", "Received packets shorter than the pfsync header."},
    {"badver", "Received packets discarded: unknown pfsync version."},
    {"badauth", "Received packets discarded: bad HMAC."},
    {"badact", "Received packets discarded: unknown action."},
    {"badlen", "Received packets discarded: bad length."},
    {"badval", "Received states discarded for bad values."},
    {"stale", "Received updates older than the local state."},
    {"badstate", "Failed state lookups or inserts."},
    {"dupident", "Received states refused: their (id, creatorid) is another state's."},
    {"looped", "Our own pfsync packets that came back to us (on lo), ignored."},
    {"opackets", "pfsync packets sent over IPv4."},
    {"opackets6", "pfsync packets sent over IPv6."},
    {"onomem", "Sends that failed for lack of memory."},
    {"oerrors", "Sends that failed."},
};

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(FILE *f, const char *name, const char *type, const char *help, __u64 v)
{
	family(f, name, type, help);
	fprintf(f, "%s %" PRIu64 "\n", name, (uint64_t)v);
}

void prom_datapath(FILE *f, const struct prom_counter *c, unsigned int n, __u32 states)
{
	char name[128];

	sample(f, "pfsync_datapath_states", "gauge", "States in the datapath's table.", states);
	for (unsigned int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "pfsync_datapath_%s_total", c[i].key);
		sample(f, name, "counter", c[i].help, c[i].value);
	}
}

void prom_fastpath(FILE *f, const __u64 counts[PFSYNC_FP_REASONS][PFSYNC_FP_DIRS],
		   const char *const dir_names[PFSYNC_FP_DIRS])
{
	const char *name = "pfsync_datapath_fastpath_packets_total";

	family(f, name, "counter",
	       "Packets of known states at XDP ingress with the fast path on: reason=\"forwarded\" "
	       "were redirected in XDP, the others went to the stack for that reason.");
	for (unsigned int r = 0; r < PFSYNC_FP_REASONS; r++)
		for (unsigned int d = 0; d < PFSYNC_FP_DIRS; d++)
			fprintf(f, "%s{reason=\"%s\",direction=\"%s\"} %" PRIu64 "\n", name,
				pfsync_fastpath_reason_name(r), dir_names[d],
				(uint64_t)counts[r][d]);
}

void prom_outcomes(FILE *f, const struct pfsync_prog_outcomes *progs, unsigned int nprogs,
		   const char *const *prog_names, const struct prom_outcome_name *outcomes,
		   unsigned int noutcomes)
{
	unsigned int p, i;

	family(f, "pfsync_datapath_program_packets_total", "counter",
	       "Packets each datapath program saw.");
	for (p = 0; p < nprogs; p++)
		fprintf(f, "pfsync_datapath_program_packets_total{program=\"%s\"} %" PRIu64 "\n",
			prog_names[p], (uint64_t)progs[p].seen);
	family(f, "pfsync_datapath_outcome_packets_total", "counter",
	       "Packets by the outcome they ended in, per program.");
	for (p = 0; p < nprogs; p++)
		for (i = 0; i < noutcomes; i++)
			fprintf(
			    f,
			    "pfsync_datapath_outcome_packets_total{program=\"%s\",outcome=\"%s\"}"
			    " %" PRIu64 "\n",
			    prog_names[p], outcomes[i].key, (uint64_t)progs[p].outcome[i]);
	family(f, "pfsync_datapath_unaccounted_packets", "gauge",
	       "Packets seen minus packets in an outcome, per program: must be 0.");
	for (p = 0; p < nprogs; p++)
		fprintf(f, "pfsync_datapath_unaccounted_packets{program=\"%s\"} %lld\n",
			prog_names[p], pfsync_prog_unaccounted(&progs[p]));
}

/* ---- a reader for the agent's flat JSON objects (known shape) ------------- */
/* the text after "key": inside [start, end), or NULL */
static const char *json_value(const char *start, const char *end, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = start; p && p < end; p++) {
		p = memchr(p, '"', (size_t)(end - p));
		if (!p || p + klen + 3 > end)
			return NULL;
		if (!strncmp(p + 1, key, klen) && p[klen + 1] == '"' && p[klen + 2] == ':')
			return p + klen + 3;
	}
	return NULL;
}

static int json_u64(const char *start, const char *end, const char *key, __u64 *out)
{
	const char *v = json_value(start, end, key);
	char *stop;

	if (!v || *v < '0' || *v > '9')
		return -1;
	*out = strtoull(v, &stop, 10);
	return stop > v ? 0 : -1;
}

/* a string value without escapes (what the agent writes), into buf */
static int json_str(const char *start, const char *end, const char *key, char *buf, size_t len)
{
	const char *v = json_value(start, end, key), *close;

	if (!v || *v != '"')
		return -1;
	close = memchr(v + 1, '"', (size_t)(end - v - 1));
	if (!close || (size_t)(close - v - 1) >= len)
		return -1;
	memcpy(buf, v + 1, (size_t)(close - v - 1));
	buf[close - v - 1] = '\0';
	return 0;
}

/* ---- agent families ------------------------------------------------------- */
static void agent_stats(FILE *f, const char *js)
{
	const char *end = js + strlen(js), *p;
	char name[64];
	__u64 v;

	for (size_t i = 0; i < sizeof(agent_counters) / sizeof(agent_counters[0]); i++) {
		if (json_u64(js, end, agent_counters[i].key, &v))
			continue;
		snprintf(name, sizeof(name), "pfsync_%s_total", agent_counters[i].key);
		sample(f, name, "counter", agent_counters[i].help, v);
	}
	p = json_value(js, end, "actions");
	if (!p)
		return;
	family(f, "pfsync_actions_total", "counter",
	       "pfsync messages received (direction=\"in\") and sent (\"out\") by action.");
	/* one {"action":N,...,"in":N,"out":N} object per action */
	while ((p = strchr(p, '{')) != NULL) {
		const char *close = strchr(p, '}');
		__u64 act, in, out;

		if (!close)
			break;
		if (!json_u64(p, close, "action", &act) && act < PFSYNC_ACT_MAX &&
		    !json_u64(p, close, "in", &in) && !json_u64(p, close, "out", &out)) {
			fprintf(
			    f, "pfsync_actions_total{action=\"%s\",direction=\"in\"} %" PRIu64 "\n",
			    action_names[act], (uint64_t)in);
			fprintf(f,
				"pfsync_actions_total{action=\"%s\",direction=\"out\"} %" PRIu64
				"\n",
				action_names[act], (uint64_t)out);
		}
		p = close + 1;
	}
}

/* the agent's per-peer objects ({"peer":"ADDR",...} in "peers"), as labelled counters */
static void agent_peers(FILE *f, const char *js)
{
	const char *end = js + strlen(js), *p = json_value(js, end, "peers");
	__u64 v;

	if (!json_u64(js, end, "badsrc", &v))
		sample(f, "pfsync_badsrc_total", "counter",
		       "Received packets discarded: the source is not a --syncpeer.", v);
	if (!p)
		return;
	family(f, "pfsync_peer_packets_total", "counter",
	       "pfsync packets received from (direction=\"in\") and sent to (\"out\") each peer.");
	while ((p = strchr(p, '{')) != NULL) {
		const char *close = strchr(p, '}');
		char peer[64];
		__u64 in, out;

		if (!close)
			break;
		/* addresses hold only hex digits, dots and colons: no escaping needed */
		if (!json_str(p, close, "peer", peer, sizeof(peer)) &&
		    !json_u64(p, close, "packets_in", &in) &&
		    !json_u64(p, close, "packets_out", &out)) {
			fprintf(f,
				"pfsync_peer_packets_total{peer=\"%s\",direction=\"in\"} %" PRIu64
				"\n",
				peer, (uint64_t)in);
			fprintf(f,
				"pfsync_peer_packets_total{peer=\"%s\",direction=\"out\"} %" PRIu64
				"\n",
				peer, (uint64_t)out);
		}
		p = close + 1;
	}
}

static void agent_status(FILE *f, const char *js)
{
	const char *end = js + strlen(js);
	char bulk[32], syncdev[32], release[32];
	__u64 v;

	if (!json_str(js, end, "bulk", bulk, sizeof(bulk)))
		sample(f, "pfsync_bulk_done", "gauge",
		       "1 once the bulk update from a peer has completed (\"bulk: done\").",
		       !strcmp(bulk, "done"));
	if (!json_u64(js, end, "hostid", &v) &&
	    !json_str(js, end, "syncdev", syncdev, sizeof(syncdev))) {
		family(f, "pfsync_agent_info", "gauge", "The agent's identity, as labels.");
		/* interface names never hold quotes or backslashes */
		fprintf(f, "pfsync_agent_info{hostid=\"%08" PRIx64 "\",syncdev=\"%s\"} 1\n",
			(uint64_t)v, syncdev);
	}
	if (!json_str(js, end, "defer_release", release, sizeof(release))) {
		family(f, "pfsync_defer_release_info", "gauge",
		       "How held packets are released at ingress (none: defer off).");
		fprintf(f, "pfsync_defer_release_info{path=\"%s\"} 1\n", release);
	}
	if (!json_u64(js, end, "defer_redirected", &v))
		sample(f, "pfsync_defer_redirected_total", "counter",
		       "Held packets redirected into their interface's ingress (redirect path).",
		       v);
	if (!json_u64(js, end, "defer_redirect_refused", &v))
		sample(f, "pfsync_defer_redirect_refused_total", "counter",
		       "Marked frames on lo whose target was no datapath interface: dropped.", v);
	if (!json_u64(js, end, "states_indexed", &v))
		sample(f, "pfsync_agent_states", "gauge", "States the agent knows about.", v);
	if (!json_u64(js, end, "pending", &v))
		sample(f, "pfsync_agent_pending_messages", "gauge",
		       "Messages queued to be sent to the peers.", v);
	if (!json_u64(js, end, "bulks_served", &v))
		sample(f, "pfsync_bulks_served_total", "counter",
		       "Bulk updates sent to peers that asked.", v);
	if (!json_u64(js, end, "records", &v))
		sample(f, "pfsync_agent_records_total", "counter",
		       "Change records read from the datapath.", v);
	if (!json_u64(js, end, "records_lost", &v))
		sample(f, "pfsync_agent_records_lost_total", "counter",
		       "Change records the datapath lost (ringbuf full).", v);
	if (!json_u64(js, end, "loss_reports", &v))
		sample(f, "pfsync_agent_loss_reports_total", "counter",
		       "Loss reports read from the datapath.", v);
	if (!json_u64(js, end, "loss_reports_covered", &v))
		sample(f, "pfsync_agent_loss_reports_covered_total", "counter",
		       "Loss reports an earlier index rebuild had covered.", v);
	if (!json_u64(js, end, "uptime_s", &v))
		sample(f, "pfsync_agent_uptime_seconds", "gauge",
		       "Seconds since the agent started.", v);
}

void prom_agent(FILE *f, const char *stats_json, const char *status_json)
{
	sample(f, "pfsync_agent_up", "gauge", "1 when pfsync-agent answered on its control socket.",
	       stats_json != NULL);
	if (stats_json) {
		agent_stats(f, stats_json);
		agent_peers(f, stats_json);
	}
	if (status_json)
		agent_status(f, status_json);
}
