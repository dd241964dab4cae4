// SPDX-License-Identifier: BSD-2-Clause
/* pfsyncctl stats: datapath counters, then the agent's pfsync statistics. */
#include <inttypes.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "prom.h"

#define COUNTER(field, text)                                                                       \
	{                                                                                          \
#field, text, offsetof(struct pfsync_counters, field)                              \
	}

static const struct {
	const char *key, *text;
	size_t offset;
} counter_fields[] = {
    COUNTER(packets_seen, "packets seen"),
    COUNTER(packets_passed, "packets passed"),
    COUNTER(blocked_rule, "packets blocked by rule"),
    COUNTER(no_state, "packets without state and no rule to create one"),
    COUNTER(bad_packet, "bad packets (truncated or malformed)"),
    COUNTER(out_of_window, "TCP packets out of window"),
    COUNTER(table_full, "states refused: table full"),
    COUNTER(ringbuf_lost, "change records lost (ringbuf full)"),
    COUNTER(states_inserted, "states inserted"),
    COUNTER(states_removed, "states removed"),
    COUNTER(fragments, "non-first fragments"),
    COUNTER(defer_held, "packets deferred"),
    COUNTER(defer_too_big, "packets too big to defer"),
    COUNTER(defer_full, "defer queue full"),
};

#define NCOUNTERS (sizeof(counter_fields) / sizeof(counter_fields[0]))

static __u64 counter_value(const struct pfsync_counters *c, unsigned int i)
{
	__u64 v;

	memcpy(&v, (const char *)c + counter_fields[i].offset, sizeof(v));
	return v;
}

static const char *const fp_dir_names[PFSYNC_FP_DIRS] = {"initiator", "responder"};

static void print_fastpath_text(const struct pfsync_counters *c)
{
	printf("fast path (packets from the initiator / from the responder):\n");
	for (unsigned int r = 0; r < PFSYNC_FP_REASONS; r++)
		printf("\t%" PRIu64 " / %" PRIu64 " %s\n", (uint64_t)c->fastpath[r][0],
		       (uint64_t)c->fastpath[r][1], pfsync_fastpath_reason_text(r));
}

/* ,"fastpath":{"forwarded":{"initiator":N,"responder":N},...} */
static void print_fastpath_json(const struct pfsync_counters *c)
{
	printf(",\"fastpath\":{");
	for (unsigned int r = 0; r < PFSYNC_FP_REASONS; r++) {
		printf("%s\"%s\":{", r ? "," : "", pfsync_fastpath_reason_name(r));
		for (unsigned int d = 0; d < PFSYNC_FP_DIRS; d++)
			printf("%s\"%s\":%" PRIu64, d ? "," : "", fp_dir_names[d],
			       (uint64_t)c->fastpath[r][d]);
		putchar('}');
	}
	putchar('}');
}

static void print_text(const struct pfsync_counters *c, __u32 states, const char *agent,
		       const char *ctl_path)
{
	unsigned int i;

	printf("datapath:\n");
	printf("\t%" PRIu64 " states in the table\n", (uint64_t)states);
	for (i = 0; i < NCOUNTERS; i++)
		printf("\t%" PRIu64 " %s\n", (uint64_t)counter_value(c, i), counter_fields[i].text);
	print_fastpath_text(c);
	if (agent) {
		fputs(agent, stdout);
		if (*agent && agent[strlen(agent) - 1] != '\n')
			putchar('\n');
	} else {
		printf("pfsync: no statistics (pfsync-agent not reachable on %s)\n", ctl_path);
	}
}

/* The agent's JSON goes in as it came, only its trailing whitespace removed. */
static void print_json(const struct pfsync_counters *c, __u32 states, char *agent)
{
	unsigned int i;
	size_t len;

	printf("{\"datapath\":{\"states\":%u", states);
	for (i = 0; i < NCOUNTERS; i++)
		printf(",\"%s\":%" PRIu64, counter_fields[i].key, (uint64_t)counter_value(c, i));
	print_fastpath_json(c);
	printf("},\"pfsync\":");
	if (agent) {
		len = strlen(agent);
		while (len && (agent[len - 1] == '\n' || agent[len - 1] == ' '))
			agent[--len] = '\0';
	}
	printf("%s}\n", agent && *agent ? agent : "null");
}

static void print_prometheus(const struct pfsync_counters *c, __u32 states, const char *agent,
			     const char *ctl_path)
{
	struct prom_counter pc[NCOUNTERS];
	char *status = NULL;

	for (unsigned int i = 0; i < NCOUNTERS; i++) {
		pc[i].key = counter_fields[i].key;
		pc[i].help = counter_fields[i].text;
		pc[i].value = counter_value(c, i);
	}
	prom_datapath(stdout, pc, NCOUNTERS, states);
	prom_fastpath(stdout, c->fastpath, fp_dir_names);
	if (agent && (ctl_agent_request(ctl_path, "status --json", &status) != 0 ||
		      ctl_agent_failed(status))) {
		free(status);
		status = NULL;
	}
	prom_agent(stdout, agent, status);
	free(status);
}

static int count_one(const struct pfsync_key *k, const struct pfsync_state_value *v, void *arg)
{
	(void)k;
	(void)v;
	(*(__u32 *)arg)++;
	return 0;
}

int cmd_stats(const struct ctl_opts *o, int argc, char **argv)
{
	struct pfsync_counters c;
	struct pfsync_maps m;
	char *agent = NULL;
	__u32 states = 0;
	int err;

	int prometheus = argc == 1 && !strcmp(argv[0], "--prometheus");

	if (argc && !prometheus)
		return ctl_bad_usage("stats [--json | --prometheus]");
	if (ctl_open_maps(o, &m))
		return CTL_EXIT_ERR;
	err = pfsync_counters_sum(&m, &c);
	if (!err)
		err = pfsync_states_foreach(&m, count_one, &states);
	pfsync_maps_close(&m);
	if (err) {
		fprintf(stderr, "pfsyncctl: reading counters failed: %s\n", strerror(-err));
		return CTL_EXIT_ERR;
	}
	/* the agent part is optional: without an agent there are only datapath counters */
	if (ctl_agent_request(o->ctl_path, o->json || prometheus ? "stats --json" : "stats",
			      &agent) == 0 &&
	    ctl_agent_failed(agent)) {
		fprintf(stderr, "pfsyncctl: agent: %s", agent + 7);
		free(agent);
		agent = NULL;
	}
	if (prometheus)
		print_prometheus(&c, states, agent, o->ctl_path);
	else if (o->json)
		print_json(&c, states, agent);
	else
		print_text(&c, states, agent, o->ctl_path);
	free(agent);
	return CTL_EXIT_OK;
}
