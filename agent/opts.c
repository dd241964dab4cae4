/* SPDX-License-Identifier: BSD-2-Clause */
/* pfsync-agent's command line (after config.c merged the config file in) */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "config.h"
#include "opts.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: pfsync-agent --syncdev IF [--syncpeer ADDR] [--maxupd N] "
		   "[--defer] [--fastpath]\n"
		   "         [--defer-timeout MS] [--defer-release auto|live|redirect]\n"
		   "         [--probe-defer-release] [--hostid N] [--pin-dir DIR] [--attach "
		   "IF]...\n"
		   "         [--ctl PATH] [--obj FILE] [--interval S] [--pfsync-if NAME]\n"
		   "         [--states-max N] [--bulk-rate STATES_PER_S] [-v|-q]\n"
		   "         [--auth-key FILE]... [--min-ttl N] (--syncpeer may repeat: "
		   "IPv4, IPv6, ff12::f0)\n"
		   "         [--no-repair] [--bulk-read auto|iter|batch]\n"
		   "Synchronises pf-style connection states with peers (OpenBSD pfsync "
		   "v6).\n");
	fprintf(f,
		"Also: [-f FILE] options from FILE (default %s),\n"
		"[--rules FILE] pf rules loaded at start and on SIGHUP.\n"
		"See pfsync-agent(8) and pfsync.conf(5).\n",
		AGENT_DEFAULT_CONFIG);
}

static int parse_uint(const char *opt, const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v > max || *s == '-') {
		fprintf(stderr, "pfsync-agent: %s %s: expected a number up to %lu\n", opt, s, max);
		return -1;
	}
	*out = v;
	return 0;
}

enum {
	OPT_SYNCDEV = 256,
	OPT_SYNCPEER,
	OPT_MAXUPD,
	OPT_DEFER,
	OPT_FASTPATH,
	OPT_DEFER_TIMEOUT,
	OPT_DEFER_RELEASE,
	OPT_PROBE_RELEASE,
	OPT_HOSTID,
	OPT_PIN_DIR,
	OPT_ATTACH,
	OPT_CTL,
	OPT_OBJ,
	OPT_INTERVAL,
	OPT_PFSYNC_IF,
	OPT_STATES_MAX,
	OPT_BULK_RATE,
	OPT_RULES,
	OPT_AUTH_KEY,
	OPT_MIN_TTL,
	OPT_NO_REPAIR,
	OPT_BULK_READ,
	OPT_HELP,
};

static int parse_number_opt(struct agent *a, int opt, const char *arg)
{
	unsigned long v;

	switch (opt) {
	case OPT_MAXUPD:
		if (parse_uint("--maxupd", arg, 255, &v))
			return -1;
		a->opts.maxupd = v;
		return 0;
	case OPT_DEFER_TIMEOUT:
		if (parse_uint("--defer-timeout", arg, 10000, &v))
			return -1;
		a->opts.defer_timeout_ms = v;
		return 0;
	case OPT_HOSTID:
		if (parse_uint("--hostid", arg, 0xffffffffUL, &v))
			return -1;
		if (v == 0) {
			fprintf(stderr, "pfsync-agent: --hostid must not be 0\n");
			return -1;
		}
		a->opts.hostid = v;
		return 0;
	case OPT_INTERVAL:
		if (parse_uint("--interval", arg, 3600, &v) || v == 0)
			return -1;
		a->opts.interval_s = v;
		return 0;
	case OPT_STATES_MAX:
		if (parse_uint("--states-max", arg, 0xffffffffUL, &v))
			return -1;
		a->opts.states_max = v;
		return 0;
	case OPT_BULK_RATE:
		if (parse_uint("--bulk-rate", arg, 100000000UL, &v) || v < 100)
			return -1;
		a->bulk_rate = v;
		return 0;
	case OPT_MIN_TTL:
		if (parse_uint("--min-ttl", arg, 255, &v) || v == 0)
			return -1;
		a->opts.min_ttl = v;
		return 0;
	}
	return -1;
}

int agent_parse_opts(struct agent *a, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"syncdev", required_argument, NULL, OPT_SYNCDEV},
	    {"syncpeer", required_argument, NULL, OPT_SYNCPEER},
	    {"maxupd", required_argument, NULL, OPT_MAXUPD},
	    {"defer", no_argument, NULL, OPT_DEFER},
	    {"fastpath", no_argument, NULL, OPT_FASTPATH},
	    {"defer-timeout", required_argument, NULL, OPT_DEFER_TIMEOUT},
	    {"defer-release", required_argument, NULL, OPT_DEFER_RELEASE},
	    {"probe-defer-release", no_argument, NULL, OPT_PROBE_RELEASE},
	    {"hostid", required_argument, NULL, OPT_HOSTID},
	    {"pin-dir", required_argument, NULL, OPT_PIN_DIR},
	    {"attach", required_argument, NULL, OPT_ATTACH},
	    {"ctl", required_argument, NULL, OPT_CTL},
	    {"obj", required_argument, NULL, OPT_OBJ},
	    {"interval", required_argument, NULL, OPT_INTERVAL},
	    {"pfsync-if", required_argument, NULL, OPT_PFSYNC_IF},
	    {"states-max", required_argument, NULL, OPT_STATES_MAX},
	    {"bulk-rate", required_argument, NULL, OPT_BULK_RATE},
	    {"rules", required_argument, NULL, OPT_RULES},
	    {"auth-key", required_argument, NULL, OPT_AUTH_KEY},
	    {"min-ttl", required_argument, NULL, OPT_MIN_TTL},
	    {"no-repair", no_argument, NULL, OPT_NO_REPAIR},
	    {"bulk-read", required_argument, NULL, OPT_BULK_READ},
	    {"help", no_argument, NULL, OPT_HELP},
	    {"verbose", no_argument, NULL, 'v'},
	    {"quiet", no_argument, NULL, 'q'},
	    {0},
	};
	int opt;

	a->opts.maxupd = AGENT_DEFAULT_MAXUPD;
	a->opts.defer_timeout_ms = 20;
	a->opts.ctl_path = AGENT_DEFAULT_CTL;
	a->opts.interval_s = AGENT_DEFAULT_INTERVAL_S;
	a->opts.pfsync_if = "pfsync0";
	a->bulk_rate = WALKER_DEFAULT_RATE;
	while ((opt = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_SYNCDEV:
			a->opts.syncdev = optarg;
			break;
		case OPT_SYNCPEER:
			if (a->opts.nsyncpeers == SYNC_MAX_PEERS) {
				fprintf(stderr, "pfsync-agent: at most %d --syncpeer\n",
					SYNC_MAX_PEERS);
				return -1;
			}
			a->opts.syncpeers[a->opts.nsyncpeers++] = optarg;
			break;
		case OPT_AUTH_KEY:
			if (a->opts.nauth_keys == AGENT_MAX_AUTH_KEYS) {
				fprintf(stderr, "pfsync-agent: at most %d --auth-key\n",
					AGENT_MAX_AUTH_KEYS);
				return -1;
			}
			a->opts.auth_keys[a->opts.nauth_keys++] = optarg;
			break;
		case OPT_NO_REPAIR:
			a->opts.no_repair = 1;
			break;
		case OPT_BULK_READ:
			if (store_read_path_parse(optarg, &a->opts.bulk_read)) {
				fprintf(
				    stderr,
				    "pfsync-agent: --bulk-read %s: expected auto, iter or batch\n",
				    optarg);
				return -1;
			}
			break;
		case OPT_DEFER:
			a->opts.defer = 1;
			break;
		case OPT_DEFER_RELEASE:
			if (release_mode_parse(optarg, &a->opts.defer_release)) {
				fprintf(stderr,
					"pfsync-agent: --defer-release %s: expected auto, live or "
					"redirect\n",
					optarg);
				return -1;
			}
			break;
		case OPT_PROBE_RELEASE:
			a->opts.probe_release = 1;
			break;
		case OPT_FASTPATH:
			a->opts.fastpath = 1;
			break;
		case OPT_PIN_DIR:
			a->opts.pin_dir = optarg;
			break;
		case OPT_ATTACH:
			if (a->opts.nattach == AGENT_MAX_ATTACH) {
				fprintf(stderr, "pfsync-agent: at most %d --attach\n",
					AGENT_MAX_ATTACH);
				return -1;
			}
			a->opts.attach[a->opts.nattach++] = optarg;
			break;
		case OPT_CTL:
			a->opts.ctl_path = optarg;
			break;
		case OPT_OBJ:
			a->opts.obj_path = optarg;
			break;
		case OPT_RULES:
			a->opts.rules_path = optarg;
			break;
		case OPT_PFSYNC_IF:
			a->opts.pfsync_if = optarg;
			break;
		case 'v':
			agent_log_level = LOG_LVL_DEBUG;
			break;
		case 'q':
			agent_log_level = LOG_LVL_WARN;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			exit(0);
		case '?':
			usage(stderr);
			return -1;
		default:
			if (parse_number_opt(a, opt, optarg))
				return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pfsync-agent: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!a->opts.syncdev && !a->opts.probe_release) {
		fprintf(stderr, "pfsync-agent: --syncdev IF is required\n");
		usage(stderr);
		return -1;
	}
	return 0;
}
