/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * `pfsyncctl stats --prometheus`: the same numbers as `stats`, in the
 * Prometheus text exposition format (version 0.0.4): every family has a
 * HELP and a TYPE line before its samples, counters end in _total, labels
 * say the pfsync action and direction. Families of the agent are left out
 * when it cannot be reached; pfsync_agent_up says which.
 */
#ifndef PFSYNCCTL_PROM_H
#define PFSYNCCTL_PROM_H

#include <stdio.h>
#include <linux/types.h>

#include "pfsync_common.h"

struct prom_counter {
	const char *key;  /* metric name part: pfsync_datapath_<key>_total */
	const char *help; /* one line */
	__u64 value;
};

void prom_datapath(FILE *f, const struct prom_counter *c, unsigned int n, __u32 states);
/* pfsync_datapath_fastpath_packets_total{reason=...,direction=...} */
void prom_fastpath(FILE *f, const __u64 counts[PFSYNC_FP_REASONS][PFSYNC_FP_DIRS],
		   const char *const dir_names[PFSYNC_FP_DIRS]);

struct prom_outcome_name {
	const char *key;  /* the `outcome` label */
	const char *text; /* for `pfsyncctl stats` */
};

/*
 * Accounting per program: pfsync_datapath_program_packets_total{program},
 * pfsync_datapath_outcome_packets_total{program,outcome} and the gauge
 * pfsync_datapath_unaccounted_packets{program}, which must be 0.
 */
void prom_outcomes(FILE *f, const struct pfsync_prog_outcomes *progs, unsigned int nprogs,
		   const char *const *prog_names, const struct prom_outcome_name *outcomes,
		   unsigned int noutcomes);
/* the agent's `stats --json` and `status --json` replies; NULL = not reachable */
void prom_agent(FILE *f, const char *stats_json, const char *status_json);

#endif /* PFSYNCCTL_PROM_H */
