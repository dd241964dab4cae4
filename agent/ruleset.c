/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
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
