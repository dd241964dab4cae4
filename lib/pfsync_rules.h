/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pf's rule syntax (a subset) <-> struct pfsync_rule, and loading a ruleset
 * into the pinned pfsync_rules map (double-buffered: bank b holds its rules at
 * keys b * PFSYNC_RULES_MAX + i; pfsync_config.rules_bank/nrules select them).
 */
#ifndef PFSYNC_RULES_H
#define PFSYNC_RULES_H

#include <stddef.h>
#include <stdio.h>
#include "pfsync_common.h"
#include "pfsync_maps.h"

#define PFSYNC_RULES_ERR_MAX 256

/*
 * Parses `text` (the whole file); `name` is used in error messages as
 * "NAME:LINE: message "TOKEN"". On error nothing is returned in *count
 * (it is set to 0), err holds the message and -EINVAL (or -ENOMEM) is
 * returned. Interface names are resolved with if_nametoindex.
 */
int pfsync_rules_parse(const char *name, const char *text, struct pfsync_rule *rules,
		       unsigned int max, unsigned int *count, char *err, size_t errlen);
/* Reads and parses a file; an unreadable file is reported in err too. */
int pfsync_rules_parse_file(const char *path, struct pfsync_rule *rules, unsigned int max,
			    unsigned int *count, char *err, size_t errlen);
/*
 * The first address of family af (0: IPv4 first, else IPv6) on interface
 * name, IPv6 link-local ones left out, what nat-to (IF) translates to: 0,
 * or -ENOENT / -errno.
 */
int pfsync_iface_first_addr(const char *name, __u8 af, __u32 *addr, __u8 *af_out);
/* Canonical pf text of a rule (no newline); returns what snprintf returns. */
int pfsync_rule_print(const struct pfsync_rule *r, char *buf, size_t len);
/* "tcp" for 6 (the keywords the parser knows); NULL for a number without one */
const char *pfsync_rule_proto_name(__u8 proto);
/* One JSON object with every field. */
void pfsync_rule_print_json(FILE *f, const struct pfsync_rule *r);

/* Writes the inactive bank then flips the config in one write. 0 or -errno. */
int pfsync_rules_load(const struct pfsync_maps *m, const struct pfsync_rule *rules,
		      unsigned int count);
/* Active ruleset: nrules = 0. */
int pfsync_rules_flush(const struct pfsync_maps *m);
/* Reads the active bank. */
int pfsync_rules_read(const struct pfsync_maps *m, struct pfsync_rule *rules, unsigned int max,
		      unsigned int *count);

#endif /* PFSYNC_RULES_H */
