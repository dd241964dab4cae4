// SPDX-License-Identifier: BSD-2-Clause
/* pfsyncctl timeouts / set ...: the runtime configuration in pfsync_config. */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "ctl.h"
#include "pfsync_fmt.h"
#include "pfsync_logic.h"

#define MAXUPD_DEFAULT 128

static int is_adaptive(__u32 pftm)
{
	return pftm == PFTM_ADAPTIVE_START || pftm == PFTM_ADAPTIVE_END;
}

/* What the datapath uses: the configured value, pf's default, or the adaptive derivation. */
static __u32 effective_timeout(const struct pfsync_config *cfg, __u32 pftm)
{
	__u32 start, end;

	if (!is_adaptive(pftm))
		return pfsync_timeout_get(cfg, pftm);
	pfsync_adaptive_bounds(cfg, &start, &end);
	return pftm == PFTM_ADAPTIVE_START ? start : end;
}

static int read_config(const struct ctl_opts *o, struct pfsync_maps *m, struct pfsync_config *cfg)
{
	int err;

	if (ctl_open_maps(o, m))
		return CTL_EXIT_ERR;
	err = pfsync_config_read(m, cfg);
	if (err) {
		fprintf(stderr, "pfsyncctl: reading %s/%s failed: %s\n", m->pin_dir,
			PFSYNC_MAP_CONFIG, strerror(-err));
		pfsync_maps_close(m);
		return CTL_EXIT_ERR;
	}
	return 0;
}

int cmd_timeouts(const struct ctl_opts *o, int argc, char **argv)
{
	struct pfsync_config cfg;
	struct pfsync_maps m;
	const char *name;
	__u32 i;
	int first = 1;

	(void)argv;
	if (argc)
		return ctl_bad_usage("timeouts [--json]");
	if (read_config(o, &m, &cfg))
		return CTL_EXIT_ERR;
	pfsync_maps_close(&m);
	if (o->json)
		putchar('{');
	for (i = 0; i < PFTM_MAX; i++) {
		name = pfsync_fmt_timeout_name(i);
		if (!name)
			continue;
		if (o->json) {
			printf("%s\"%s\":%u", first ? "" : ",", name, effective_timeout(&cfg, i));
			first = 0;
		} else {
			/* pfctl -st layout */
			printf("%-20s %10u%s\n", name, effective_timeout(&cfg, i),
			       is_adaptive(i) ? " states" : "s");
		}
	}
	/* the limit in force: `set limit states`, else the table size */
	if (o->json)
		printf(",\"maxupd\":%u,\"limit_states\":%u,\"table_size\":%u,\"fastpath\":%s}\n",
		       cfg.maxupd ? cfg.maxupd : MAXUPD_DEFAULT, pfsync_state_limit(&cfg),
		       cfg.table_size, cfg.cfg_flags & PFSYNC_CFG_FASTPATH ? "true" : "false");
	else
		printf("%-20s %10u states\n", "limit states", pfsync_state_limit(&cfg));
	return CTL_EXIT_OK;
}

static int parse_u32(const char *s, unsigned long max, __u32 *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = (__u32)v;
	return 0;
}

static int timeout_index(const char *name)
{
	__u32 i;

	for (i = 0; i < PFTM_MAX; i++)
		if (pfsync_fmt_timeout_name(i) && !strcmp(pfsync_fmt_timeout_name(i), name))
			return (int)i;
	return -1;
}

enum set_kind { SET_TIMEOUT, SET_MAXUPD, SET_LIMIT_STATES, SET_FASTPATH };

struct set_req {
	enum set_kind kind;
	int timeout_idx;
	__u32 value; /* SET_FASTPATH: 1 = on, 0 = off */
	int nifs;    /* SET_FASTPATH: interfaces named after on/off */
	char **ifs;
};

static const char set_usage[] = "set timeout NAME SECONDS | set maxupd N | set limit states N | "
				"set fastpath on|off [IF...]";

/* Checks the words before any map is touched, so bad input is a usage error (2). */
static int parse_set(int argc, char **argv, struct set_req *req)
{
	if (argc == 3 && !strcmp(argv[0], "timeout")) {
		req->kind = SET_TIMEOUT;
		req->timeout_idx = timeout_index(argv[1]);
		if (req->timeout_idx < 0) {
			fprintf(stderr,
				"pfsyncctl: unknown timeout \"%s\" (see pfsyncctl timeouts)\n",
				argv[1]);
			return CTL_EXIT_USAGE;
		}
		if (parse_u32(argv[2], 0xffffffffUL, &req->value)) {
			fprintf(stderr, "pfsyncctl: invalid value \"%s\"\n", argv[2]);
			return CTL_EXIT_USAGE;
		}
		return 0;
	}
	if (argc == 2 && !strcmp(argv[0], "maxupd")) {
		req->kind = SET_MAXUPD;
		/* pfsync's maxupd is 8 bits in OpenBSD's interface */
		if (parse_u32(argv[1], 255, &req->value)) {
			fprintf(stderr, "pfsyncctl: invalid maxupd \"%s\" (0..255)\n", argv[1]);
			return CTL_EXIT_USAGE;
		}
		return 0;
	}
	if (argc == 3 && !strcmp(argv[0], "limit") && !strcmp(argv[1], "states")) {
		req->kind = SET_LIMIT_STATES;
		if (parse_u32(argv[2], 0xffffffffUL, &req->value)) {
			fprintf(stderr, "pfsyncctl: invalid state limit \"%s\"\n", argv[2]);
			return CTL_EXIT_USAGE;
		}
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[0], "fastpath") &&
	    (!strcmp(argv[1], "on") || !strcmp(argv[1], "off"))) {
		req->kind = SET_FASTPATH;
		req->value = !strcmp(argv[1], "on");
		req->nifs = argc - 2;
		req->ifs = argv + 2;
		return 0;
	}
	return ctl_bad_usage(set_usage);
}

/*
 * The fast path redirects only to interfaces whose XDP program is ours:
 * an interface without one is refused here, and the datapath refuses (and
 * counts) a redirect to any interface not in the set.
 */
static int fastpath_if_check(const char *name, __u32 *ifindex)
{
	__u32 prog_id = 0;

	*ifindex = if_nametoindex(name);
	if (!*ifindex) {
		fprintf(stderr, "pfsyncctl: fastpath: no interface \"%s\"\n", name);
		return -1;
	}
	if (bpf_xdp_query_id((int)*ifindex, 0, &prog_id) || !prog_id) {
		fprintf(stderr,
			"pfsyncctl: fastpath: %s runs no XDP program: the fast path redirects "
			"only to interfaces that run pfsync-xdp\n",
			name);
		return -1;
	}
	return 0;
}

/* on IF...: adds them (each checked first); off IF...: removes them. */
static int fastpath_ifs_apply(const struct pfsync_maps *m, const struct set_req *req)
{
	__u32 ifindex[PFSYNC_FASTPATH_IFS_MAX];
	int i, err = 0;

	if (req->nifs > PFSYNC_FASTPATH_IFS_MAX) {
		fprintf(stderr, "pfsyncctl: fastpath: at most %d interfaces\n",
			PFSYNC_FASTPATH_IFS_MAX);
		return CTL_EXIT_ERR;
	}
	for (i = 0; i < req->nifs; i++) {
		if (!req->value) {
			ifindex[i] = if_nametoindex(req->ifs[i]);
			continue;
		}
		if (fastpath_if_check(req->ifs[i], &ifindex[i]))
			return CTL_EXIT_ERR;
	}
	for (i = 0; i < req->nifs && !err; i++) {
		if (req->value)
			err = pfsync_fastpath_if_add(m, ifindex[i]);
		else if (ifindex[i])
			err = pfsync_fastpath_if_del(m, ifindex[i]);
		if (err == -ENOENT)
			err = 0; /* not in the set: nothing to remove */
	}
	if (err) {
		fprintf(stderr, "pfsyncctl: fastpath: updating %s/%s failed: %s\n", m->pin_dir,
			PFSYNC_MAP_FASTPATH_IFS,
			err == -EOPNOTSUPP ? "the loaded object has no fast path" : strerror(-err));
		return CTL_EXIT_ERR;
	}
	return 0;
}

/* Turning it on with an empty set would only count egress_not_set. */
static int set_fastpath(const struct pfsync_maps *m, struct pfsync_config *cfg,
			const struct set_req *req)
{
	__u32 one;
	int rc = fastpath_ifs_apply(m, req);

	if (rc)
		return rc;
	if (req->value && pfsync_fastpath_if_list(m, &one, 1) <= 0) {
		fprintf(stderr, "pfsyncctl: fastpath: no interfaces in the set: name them "
				"(set fastpath on IF...)\n");
		return CTL_EXIT_ERR;
	}
	if (req->value)
		cfg->cfg_flags |= PFSYNC_CFG_FASTPATH;
	else if (!req->nifs)
		cfg->cfg_flags &= ~PFSYNC_CFG_FASTPATH;
	return 0;
}

static int apply_set(const struct pfsync_maps *m, struct pfsync_config *cfg,
		     const struct set_req *req)
{
	__u32 cap;

	switch (req->kind) {
	case SET_TIMEOUT:
		cfg->timeouts[req->timeout_idx] = req->value;
		/* an explicit adaptive bound, 0 included, is no longer derived */
		if (req->timeout_idx == PFTM_ADAPTIVE_START)
			cfg->cfg_flags |= PFSYNC_CFG_ADAPTIVE_START;
		if (req->timeout_idx == PFTM_ADAPTIVE_END)
			cfg->cfg_flags |= PFSYNC_CFG_ADAPTIVE_END;
		return 0;
	case SET_MAXUPD:
		cfg->maxupd = req->value;
		return 0;
	case SET_LIMIT_STATES:
		/* the limit scales timeouts; beyond the table size it could never be reached */
		cap = pfsync_states_capacity(m);
		if (cap && req->value > cap) {
			fprintf(stderr, "pfsyncctl: state limit %u is above the table size %u\n",
				req->value, cap);
			return CTL_EXIT_ERR;
		}
		cfg->state_limit = req->value;
		return 0;
	case SET_FASTPATH:
		return set_fastpath(m, cfg, req);
	}
	return CTL_EXIT_ERR;
}

int cmd_set(const struct ctl_opts *o, int argc, char **argv)
{
	struct pfsync_config cfg;
	struct set_req req;
	struct pfsync_maps m;
	int rc, err;

	rc = parse_set(argc, argv, &req);
	if (rc)
		return rc;
	if (read_config(o, &m, &cfg))
		return CTL_EXIT_ERR;
	rc = apply_set(&m, &cfg, &req);
	if (!rc) {
		err = pfsync_config_write(&m, &cfg);
		if (err) {
			fprintf(stderr, "pfsyncctl: writing the config failed: %s\n",
				strerror(-err));
			rc = CTL_EXIT_ERR;
		}
	}
	pfsync_maps_close(&m);
	return rc;
}
