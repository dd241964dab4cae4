// SPDX-License-Identifier: BSD-2-Clause
/* pfsyncctl rules [load FILE | flush]: the ruleset in the pinned map. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "pfsync_rules.h"

static int rules_show(const struct ctl_opts *o)
{
	struct pfsync_rule *rules = calloc(PFSYNC_RULES_MAX, sizeof(*rules));
	char text[512];
	unsigned int n = 0, i;
	struct pfsync_maps m;
	int err, rc = CTL_EXIT_ERR;

	if (!rules)
		return CTL_EXIT_ERR;
	if (ctl_open_maps(o, &m))
		goto out;
	err = pfsync_rules_read(&m, rules, PFSYNC_RULES_MAX, &n);
	pfsync_maps_close(&m);
	if (err) {
		fprintf(stderr, "pfsyncctl: reading rules failed: %s\n", strerror(-err));
		goto out;
	}
	if (o->json)
		fputs("[", stdout);
	for (i = 0; i < n; i++) {
		if (o->json) {
			fputs(i ? ",\n" : "\n", stdout);
			pfsync_rule_print_json(stdout, &rules[i]);
		} else {
			pfsync_rule_print(&rules[i], text, sizeof(text));
			printf("%s\n", text);
		}
	}
	if (o->json)
		fputs(n ? "\n]\n" : "]\n", stdout);
	rc = CTL_EXIT_OK;
out:
	free(rules);
	return rc;
}

static int rules_load(const struct ctl_opts *o, const char *path)
{
	struct pfsync_rule *rules = calloc(PFSYNC_RULES_MAX, sizeof(*rules));
	char msg[PFSYNC_RULES_ERR_MAX];
	unsigned int n = 0;
	struct pfsync_maps m;
	int err, rc = CTL_EXIT_ERR;

	if (!rules)
		return CTL_EXIT_ERR;
	/* parse everything first: a bad file must leave the loaded ruleset alone */
	err = pfsync_rules_parse_file(path, rules, PFSYNC_RULES_MAX, &n, msg, sizeof(msg));
	if (err) {
		fprintf(stderr, "pfsyncctl: %s\n", msg);
		goto out;
	}
	if (ctl_open_maps(o, &m))
		goto out;
	err = pfsync_rules_load(&m, rules, n);
	pfsync_maps_close(&m);
	if (err) {
		fprintf(stderr, "pfsyncctl: loading rules failed: %s\n", strerror(-err));
		goto out;
	}
	printf("%u rules loaded from %s\n", n, path);
	rc = CTL_EXIT_OK;
out:
	free(rules);
	return rc;
}

static int rules_flush(const struct ctl_opts *o)
{
	struct pfsync_maps m;
	int err;

	if (ctl_open_maps(o, &m))
		return CTL_EXIT_ERR;
	err = pfsync_rules_flush(&m);
	pfsync_maps_close(&m);
	if (err) {
		fprintf(stderr, "pfsyncctl: flushing rules failed: %s\n", strerror(-err));
		return CTL_EXIT_ERR;
	}
	printf("rules cleared\n");
	return CTL_EXIT_OK;
}

int cmd_rules(const struct ctl_opts *o, int argc, char **argv)
{
	static const char usage[] = "rules [--json] | rules load FILE | rules flush";

	if (argc == 0)
		return rules_show(o);
	if (argc == 2 && !strcmp(argv[0], "load"))
		return rules_load(o, argv[1]);
	if (argc == 1 && !strcmp(argv[0], "flush"))
		return rules_flush(o);
	return ctl_bad_usage(usage);
}
