/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pfsync-agent's options: getopt over the merged argument list (config.c),
 * numbers range-checked, into a->opts. --help prints usage and fails too.
 */
#ifndef AGENT_OPTS_H
#define AGENT_OPTS_H

struct agent;

/* 0, or -1 after a message on stderr */
int agent_parse_opts(struct agent *a, int argc, char **argv);

#endif /* AGENT_OPTS_H */
