/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * --rules FILE: loaded into the datapath at start and again on SIGHUP
 * (systemctl reload). The file is parsed whole before anything is written,
 * so a file with an error leaves the loaded ruleset in place.
 */
#ifndef AGENT_RULESET_H
#define AGENT_RULESET_H

#include "pfsync_maps.h"

/* 0, or -errno after logging why (file and line for a syntax error) */
int agent_rules_load(const struct pfsync_maps *m, const char *path);

#endif /* AGENT_RULESET_H */
