/* SPDX-License-Identifier: BSD-2-Clause */
/* pfsyncctl: shared options and the command entry points (one file per group). */
#ifndef PFSYNCCTL_H
#define PFSYNCCTL_H

#include "pfsync_maps.h"

#define CTL_EXIT_OK    0
#define CTL_EXIT_ERR   1
#define CTL_EXIT_USAGE 2

#define CTL_DEFAULT_SOCKET "/run/pfsync/pfsync.sock"

struct ctl_opts {
	const char *pin_dir;  /* NULL = PFSYNC_DEFAULT_PIN_DIR */
	const char *ctl_path; /* agent control socket */
	const char *obj_path; /* NULL = pfsync_bpf_default_obj() */
	int json;
};

/* Each takes the words after the command name; returns an exit code. */
int cmd_states(const struct ctl_opts *o, int argc, char **argv);
int cmd_stats(const struct ctl_opts *o, int argc, char **argv);
int cmd_rules(const struct ctl_opts *o, int argc, char **argv);
int cmd_timeouts(const struct ctl_opts *o, int argc, char **argv);
int cmd_set(const struct ctl_opts *o, int argc, char **argv);
int cmd_status(const struct ctl_opts *o, int argc, char **argv);
int cmd_index(const struct ctl_opts *o, int argc, char **argv);
int cmd_flush(const struct ctl_opts *o, int argc, char **argv);
int cmd_expire(const struct ctl_opts *o, int argc, char **argv);

void ctl_usage(FILE *f);
/* Prints "pfsyncctl: usage: ..." for one command and returns CTL_EXIT_USAGE. */
int ctl_bad_usage(const char *what);
/* Opens the pinned maps; 0 or CTL_EXIT_ERR (the message is printed). */
int ctl_open_maps(const struct ctl_opts *o, struct pfsync_maps *m);

/*
 * One request to the agent: sends `line`, reads the reply until EOF into a
 * malloc'd string. Returns 0, or -errno when the agent cannot be reached or
 * the exchange fails (nothing printed).
 */
int ctl_agent_request(const char *path, const char *line, char **reply);
/* 1 when the reply says the command failed ("error: ...") */
int ctl_agent_failed(const char *reply);

#endif /* PFSYNCCTL_H */
