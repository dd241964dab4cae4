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

/*
 * nat-to (IF): the rules in the datapath take the interface's first address
 * again when it changed (DHCP, a moved VRRP address). Checked once a second
 * from the main loop; a change reloads the ruleset (bank switch, so packets
 * never see half a rule). 1 when rules were rewritten, 0 none, -errno.
 */
int agent_rules_follow_ifaddr(const struct pfsync_maps *m);

#endif /* AGENT_RULESET_H */
