// SPDX-License-Identifier: BSD-2-Clause
/* pfsyncctl: look at and steer the pfsync-xdp datapath and agent. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "decode.h"

void ctl_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: pfsyncctl [--pin-dir DIR] [--ctl PATH] [--obj FILE] COMMAND [--json]\n"
	    "commands:\n"
	    "  states [--json]            list states (pfctl -ss -vv)\n"
	    "  stats [--json]             datapath counters (+ the agent's pfsync statistics)\n"
	    "  stats --prometheus         the same in Prometheus text format\n"
	    "  rules [--json]             show the active ruleset\n"
	    "  rules load FILE            parse FILE (pf syntax) and switch to it atomically\n"
	    "  rules flush                remove all rules (everything passes)\n"
	    "  flush                      remove all states (through the agent if it runs)\n"
	    "  expire                     run the expiry sweep once\n"
	    "  timeouts [--json]          show the timeouts (pfctl -st)\n"
	    "  set timeout NAME SECONDS   e.g. set timeout tcp.established 3600 (0 = default)\n"
	    "  set maxupd N               updates before a TCP state is sent again (0..255)\n"
	    "  set limit states N         adaptive timeout base (<= table size)\n"
	    "  set fastpath on [IF...]    forward established flows in XDP to the IFs\n"
	    "  set fastpath off [IF...]   turn it off, or take the IFs out of the set\n"
	    "  status [--json]            the agent's pfsync status\n"
	    "  index [--json]             the agent's identity index checked against the table\n"
	    "  decode [-v] FILE.pcap      print pfsync packets (also: decode -i IF [-c N])\n"
	    "defaults: --pin-dir %s --ctl %s\n",
	    PFSYNC_DEFAULT_PIN_DIR, CTL_DEFAULT_SOCKET);
}

int ctl_bad_usage(const char *what)
{
	fprintf(stderr, "pfsyncctl: usage: pfsyncctl %s\n", what);
	return CTL_EXIT_USAGE;
}

int ctl_open_maps(const struct ctl_opts *o, struct pfsync_maps *m)
{
	return pfsync_maps_open(m, o->pin_dir) ? CTL_EXIT_ERR : 0;
}

static const struct {
	const char *name;
	int (*fn)(const struct ctl_opts *, int, char **);
} commands[] = {
    {"states", cmd_states},	{"stats", cmd_stats}, {"rules", cmd_rules},
    {"timeouts", cmd_timeouts}, {"set", cmd_set},     {"status", cmd_status},
    {"index", cmd_index},	{"flush", cmd_flush}, {"expire", cmd_expire},
    {"decode", cmd_decode_ctl},
};

/* Global options come before the command; returns the command's index or -1. */
static int parse_globals(int argc, char **argv, struct ctl_opts *o)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--json")) {
			o->json = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			ctl_usage(stdout);
			return -2;
		} else if (!strcmp(a, "--pin-dir") || !strcmp(a, "--ctl") || !strcmp(a, "--obj")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "pfsyncctl: %s needs a value\n", a);
				return -1;
			}
			if (!strcmp(a, "--pin-dir"))
				o->pin_dir = argv[++i];
			else if (!strcmp(a, "--ctl"))
				o->ctl_path = argv[++i];
			else
				o->obj_path = argv[++i];
		} else if (a[0] == '-') {
			fprintf(stderr, "pfsyncctl: unknown option %s\n", a);
			return -1;
		} else {
			return i;
		}
	}
	fprintf(stderr, "pfsyncctl: missing command\n");
	return -1;
}

/* --json may also follow the command; it is taken out of the command's words. */
static int strip_json(int argc, char **argv, struct ctl_opts *o)
{
	int i, n = 0;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			o->json = 1;
		else
			argv[n++] = argv[i];
	}
	return n;
}

int main(int argc, char **argv)
{
	struct ctl_opts o = {.ctl_path = CTL_DEFAULT_SOCKET};
	unsigned int c;
	int idx, n;

	idx = parse_globals(argc, argv, &o);
	if (idx == -2)
		return CTL_EXIT_OK;
	if (idx < 0) {
		ctl_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	n = strip_json(argc - idx - 1, argv + idx + 1, &o);
	for (c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
		if (!strcmp(argv[idx], commands[c].name))
			return commands[c].fn(&o, n, argv + idx + 1);
	fprintf(stderr, "pfsyncctl: unknown command \"%s\"\n", argv[idx]);
	ctl_usage(stderr);
	return CTL_EXIT_USAGE;
}
