/* SPDX-License-Identifier: BSD-2-Clause */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pfsync_rules.h"
#include "ruleset.h"

int agent_rules_load(const struct pfsync_maps *m, const char *path)
{
	struct pfsync_rule *rules = calloc(PFSYNC_RULES_MAX, sizeof(*rules));
	char msg[PFSYNC_RULES_ERR_MAX];
	unsigned int n = 0;
	int rc;

	if (!rules)
		return -ENOMEM;
	rc = pfsync_rules_parse_file(path, rules, PFSYNC_RULES_MAX, &n, msg, sizeof(msg));
	if (rc) {
		log_err("rules not loaded, the previous ruleset stays: %s", msg);
		goto out;
	}
	rc = pfsync_rules_load(m, rules, n);
	if (rc)
		log_err("loading %s into the datapath: %s", path, strerror(-rc));
	else
		log_info("%u rules loaded from %s", n, path);
out:
	free(rules);
	return rc;
}

/*
 * Rule r's (IF) has lost its address: as pf, new connections through it
 * are dropped (counted as nat_exhausted) rather than translated to an
 * address that is no longer this host's; states made before keep theirs.
 * 1 when that is news (r updated).
 */
static int rule_ifaddr_lost(struct pfsync_rule *r, const char *name)
{
	if (r->nat.nflags & PFSYNC_NATF_NOADDR)
		return 0;
	memset(r->nat.addr, 0, sizeof(r->nat.addr));
	r->nat.nflags |= PFSYNC_NATF_NOADDR;
	log_info("nat-to (%s): the interface has no %s address now: new connections through the "
		 "rule are dropped (nat_exhausted) until it has one",
		 name, r->nat.af == PFSYNC_AF_INET6 ? "IPv6" : "IPv4");
	return 1;
}

/* rule r's (IF) address now: 1 when it changed (r updated), else 0 */
static int rule_ifaddr_refresh(struct pfsync_rule *r)
{
	char name[IF_NAMESIZE], text[INET6_ADDRSTRLEN];
	__u32 addr[4];
	__u8 af;

	/* by index first: the name in the rule is what it was called at load */
	if (!if_indextoname(r->nat.ifindex, name)) {
		/* the interface is gone: its name as the rule gave it */
		snprintf(name, sizeof(name), "%.*s", PFSYNC_IFNAMSIZ - 1, r->nat_ifname);
		return rule_ifaddr_lost(r, name);
	}
	if (pfsync_iface_first_addr(name, r->nat.af, addr, &af))
		return rule_ifaddr_lost(r, name);
	if (!(r->nat.nflags & PFSYNC_NATF_NOADDR) && !memcmp(addr, r->nat.addr, sizeof(addr)))
		return 0;
	memcpy(r->nat.addr, addr, sizeof(addr));
	r->nat.nflags &= (__u8)~PFSYNC_NATF_NOADDR;
	inet_ntop(af == PFSYNC_AF_INET6 ? AF_INET6 : AF_INET, addr, text, sizeof(text));
	log_info("nat-to (%s): the interface's address is now %s", name, text);
	return 1;
}

int agent_rules_follow_ifaddr(const struct pfsync_maps *m)
{
	struct pfsync_rule *rules = calloc(PFSYNC_RULES_MAX, sizeof(*rules));
	unsigned int n = 0, i;
	int rc, changed = 0;

	if (!rules)
		return -ENOMEM;
	rc = pfsync_rules_read(m, rules, PFSYNC_RULES_MAX, &n);
	for (i = 0; rc == 0 && i < n; i++)
		if (rules[i].nat.type != PFSYNC_NAT_NONE &&
		    (rules[i].nat.nflags & PFSYNC_NATF_IFADDR))
			changed |= rule_ifaddr_refresh(&rules[i]);
	if (rc == 0 && changed) {
		rc = pfsync_rules_load(m, rules, n);
		if (rc)
			log_err("reloading the rules for a new (IF) address: %s", strerror(-rc));
	}
	free(rules);
	return rc ? rc : changed;
}
