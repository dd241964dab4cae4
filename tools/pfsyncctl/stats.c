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
    COUNTER(nat_exhausted, "nat-to: no free translated tuple (or no (IF) address), dropped"),
};

#define NCOUNTERS (sizeof(counter_fields) / sizeof(counter_fields[0]))

/* enum pfsync_outcome: JSON/Prometheus key and text, by number */
static const struct prom_outcome_name outcome_names[PFSYNC_OUT_COUNT] = {
    [PFSYNC_OUT_PASSED] = {"passed", "passed"},
    [PFSYNC_OUT_NOT_IP] = {"not_ip", "not IP, passed untouched"},
    [PFSYNC_OUT_STATELESS] = {"stateless", "pfsync/CARP, passed without state"},
    [PFSYNC_OUT_DEFERRED] = {"deferred", "held by defer"},
    [PFSYNC_OUT_RELEASED] = {"released", "released from defer, passed"},
    [PFSYNC_OUT_BAD] = {"bad_packet", "dropped: bad packet"},
    [PFSYNC_OUT_BLOCKED] = {"blocked_rule", "dropped: blocked by rule"},
    [PFSYNC_OUT_NO_STATE] = {"no_state", "dropped: no state, no rule creates one"},
    [PFSYNC_OUT_WINDOW] = {"out_of_window", "dropped: TCP out of window"},
    [PFSYNC_OUT_TABLE_FULL] = {"table_full", "dropped: state table full"},
    [PFSYNC_OUT_RACE] = {"insert_race", "dropped: state insert lost to other CPUs"},
    [PFSYNC_OUT_INTERNAL] = {"internal", "dropped: internal map lookup failed"},
    [PFSYNC_OUT_FASTPATH] = {"fastpath", "forwarded by the XDP fast path"},
    [PFSYNC_OUT_NAT_EXHAUSTED] = {"nat_exhausted", "dropped: no free NAT tuple"},
};

static const char *const prog_names[PFSYNC_PROG_COUNT] = {"xdp", "tc"};

static void print_outcomes_text(const struct pfsync_counters *c)
{
	printf("outcomes (each packet a program saw ends in exactly one):\n");
	for (unsigned int p = 0; p < PFSYNC_PROG_COUNT; p++) {
		printf("\t%s: %" PRIu64 " seen, %lld unaccounted\n", prog_names[p],
		       (uint64_t)c->prog[p].seen, pfsync_prog_unaccounted(&c->prog[p]));
		for (unsigned int i = 0; i < PFSYNC_OUT_COUNT; i++)
			printf("\t\t%" PRIu64 " %s\n", (uint64_t)c->prog[p].outcome[i],
			       outcome_names[i].text);
	}
}

static void print_outcomes_json(const struct pfsync_counters *c)
{
	printf(",\"outcomes\":{");
	for (unsigned int p = 0; p < PFSYNC_PROG_COUNT; p++) {
		printf("%s\"%s\":{\"seen\":%" PRIu64, p ? "," : "", prog_names[p],
		       (uint64_t)c->prog[p].seen);
		for (unsigned int i = 0; i < PFSYNC_OUT_COUNT; i++)
			printf(",\"%s\":%" PRIu64, outcome_names[i].key,
			       (uint64_t)c->prog[p].outcome[i]);
		printf(",\"unaccounted\":%lld}", pfsync_prog_unaccounted(&c->prog[p]));
	}
	printf("}");
}

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
	print_outcomes_text(c);
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
	print_outcomes_json(c);
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
	prom_outcomes(stdout, c->prog, PFSYNC_PROG_COUNT, prog_names, outcome_names,
		      PFSYNC_OUT_COUNT);
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
