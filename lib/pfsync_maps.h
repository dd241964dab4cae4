/* SPDX-License-Identifier: BSD-2-Clause */
/* Userspace access to the maps the datapath pins by name under a pin dir. */
#ifndef PFSYNC_MAPS_H
#define PFSYNC_MAPS_H

#include "pfsync_common.h"

struct pfsync_maps {
	int states, rules, events, defer, config, globals, counters;
	int fastpath_ifs; /* -1 when the loaded object has no fast path */
	int nat_keys;	  /* pfsync_nat_keys, -1 when the object has no NAT */
	char pin_dir[256];
};

/* pin_dir NULL = PFSYNC_DEFAULT_PIN_DIR. Returns 0 or -errno after a message on stderr. */
int pfsync_maps_open(struct pfsync_maps *m, const char *pin_dir);
void pfsync_maps_close(struct pfsync_maps *m);
__u64 pfsync_now_ns(void); /* CLOCK_BOOTTIME ns */
int pfsync_config_read(const struct pfsync_maps *m, struct pfsync_config *cfg);
int pfsync_config_write(const struct pfsync_maps *m, const struct pfsync_config *cfg);
int pfsync_globals_read(const struct pfsync_maps *m, struct pfsync_globals *g);
int pfsync_globals_write(const struct pfsync_maps *m, const struct pfsync_globals *g);
int pfsync_counters_sum(const struct pfsync_maps *m, struct pfsync_counters *out);
/* Every CPU's counters back to 0 (tests and benchmarks start from there). */
int pfsync_counters_zero(const struct pfsync_maps *m);

/*
 * Packets a program saw that ended in no outcome (issue 12's invariant: 0).
 * Read while traffic flows it may be off by the packets in flight, either way.
 */
long long pfsync_prog_unaccounted(const struct pfsync_prog_outcomes *p);
/* Calls fn for every state; stops early (returning fn's value) if fn returns non-zero. */
int pfsync_states_foreach(const struct pfsync_maps *m,
			  int (*fn)(const struct pfsync_key *, const struct pfsync_state_value *,
				    void *),
			  void *arg);
/* max_entries of the states map, 0 if unknown */
__u32 pfsync_states_capacity(const struct pfsync_maps *m);

/*
 * The fast path's interface set (pfsync_fastpath_ifs). add records the
 * interface's MAC as this process's network namespace sees it. add/del: 0
 * or -errno (-EOPNOTSUPP without the map, -EPFNOSUPPORT for a non-Ethernet
 * interface; del of an absent one is -ENOENT). list fills up to max
 * ifindexes, returns how many or -errno.
 */
int pfsync_fastpath_if_add(const struct pfsync_maps *m, __u32 ifindex);
int pfsync_fastpath_if_del(const struct pfsync_maps *m, __u32 ifindex);
int pfsync_fastpath_if_list(const struct pfsync_maps *m, __u32 *ifindexes, int max);
/* Short names of enum pfsync_fp_reason (stats keys), NULL past the end. */
const char *pfsync_fastpath_reason_name(unsigned int reason);
/* One line describing it, for `pfsyncctl stats`. */
const char *pfsync_fastpath_reason_text(unsigned int reason);

#endif /* PFSYNC_MAPS_H */
