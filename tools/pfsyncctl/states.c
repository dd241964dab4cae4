// SPDX-License-Identifier: BSD-2-Clause
/* pfsyncctl states: the state table as pfctl -ss -vv shows it. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "pfsync_fmt.h"

struct states_walk {
	struct pfsync_fmt_ctx fmt;
	int json;
	unsigned long count;
};

static int print_one(const struct pfsync_key *k, const struct pfsync_state_value *v, void *arg)
{
	struct states_walk *w = arg;

	if (w->json) {
		fputs(w->count ? ",\n" : "\n", stdout);
		pfsync_fmt_state_json(stdout, k, v, &w->fmt);
	} else {
		pfsync_fmt_state(stdout, k, v, &w->fmt);
	}
	w->count++;
	return 0;
}

int cmd_states(const struct ctl_opts *o, int argc, char **argv)
{
	struct states_walk w = {.json = o->json};
	struct pfsync_config cfg;
	struct pfsync_globals g;
	struct pfsync_maps m;
	int err;

	(void)argv;
	if (argc)
		return ctl_bad_usage("states [--json]");
	if (ctl_open_maps(o, &m))
		return CTL_EXIT_ERR;
	memset(&g, 0, sizeof(g));
	/* without a readable config the expiry shown would be wrong: fail */
	err = pfsync_config_read(&m, &cfg);
	if (!err)
		err = pfsync_globals_read(&m, &g);
	if (err) {
		fprintf(stderr, "pfsyncctl: cannot read config/globals in %s: %s\n", m.pin_dir,
			strerror(-err));
		pfsync_maps_close(&m);
		return CTL_EXIT_ERR;
	}
	w.fmt.cfg = &cfg;
	w.fmt.states_count = g.states_count;
	w.fmt.now_ns = pfsync_now_ns();
	if (o->json)
		fputs("[", stdout);
	err = pfsync_states_foreach(&m, print_one, &w);
	if (o->json)
		fputs(w.count ? "\n]\n" : "]\n", stdout);
	pfsync_maps_close(&m);
	if (err) {
		fprintf(stderr, "pfsyncctl: reading states failed: %s\n", strerror(-err));
		return CTL_EXIT_ERR;
	}
	return CTL_EXIT_OK;
}
