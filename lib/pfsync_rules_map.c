// SPDX-License-Identifier: BSD-2-Clause
/* Parsed rules in and out of the pinned rules map (two banks, one live) */
#include "pfsync_rules.h"

#include <errno.h>
#include <bpf/bpf.h>

int pfsync_rules_load(const struct pfsync_maps *m, const struct pfsync_rule *rules,
		      unsigned int count)
{
	struct pfsync_config cfg;
	__u32 bank, i, key;
	int err;

	if (count > PFSYNC_RULES_MAX)
		return -E2BIG;
	err = pfsync_config_read(m, &cfg);
	if (err)
		return err;
	/* fill the bank the datapath is not reading, then switch with one write */
	bank = (cfg.rules_bank & 1) ^ 1;
	for (i = 0; i < count; i++) {
		key = bank * PFSYNC_RULES_MAX + i;
		if (bpf_map_update_elem(m->rules, &key, &rules[i], BPF_ANY))
			return -errno;
	}
	cfg.rules_bank = bank;
	cfg.nrules = count;
	return pfsync_config_write(m, &cfg);
}

int pfsync_rules_flush(const struct pfsync_maps *m)
{
	struct pfsync_config cfg;
	int err = pfsync_config_read(m, &cfg);

	if (err)
		return err;
	cfg.nrules = 0;
	return pfsync_config_write(m, &cfg);
}

int pfsync_rules_read(const struct pfsync_maps *m, struct pfsync_rule *rules, unsigned int max,
		      unsigned int *count)
{
	struct pfsync_config cfg;
	__u32 i, key, n;
	int err;

	*count = 0;
	err = pfsync_config_read(m, &cfg);
	if (err)
		return err;
	n = cfg.nrules < max ? cfg.nrules : max;
	if (n > PFSYNC_RULES_MAX)
		n = PFSYNC_RULES_MAX;
	for (i = 0; i < n; i++) {
		key = (cfg.rules_bank & 1) * PFSYNC_RULES_MAX + i;
		if (bpf_map_lookup_elem(m->rules, &key, &rules[i]))
			return -errno;
	}
	*count = n;
	return 0;
}
