/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The agent's batch programs (bpf/pfsync_bulk.bpf.c), each run with one
 * BPF_PROG_RUN for a batch of states instead of one bpf() call per state
 * (on a 2-core VM a BPF_MAP_UPDATE_ELEM or LOOKUP_ELEM costs ~0.8-0.9 us,
 * the same map operation from a program ~0.1-0.27 us). The agent writes
 * the batch into the one-element array pfsync_batch_buf through its mmap,
 * runs the program, and reads each entry's result back.
 *
 * pfsync_import: states received from a peer go into the map, each with
 *   BPF_NOEXIST like the agent's single inserts: an entry whose key is
 *   taken gets -EEXIST and the agent merges it into the state there.
 * pfsync_fetch: for the send queue, each key's state is unqueued (QUEUED
 *   and the maxupd count cleared, as pfsync_unqueue does) and then its
 *   value read back, -ENOENT when it is gone.
 * pfsync_merge: a peer's update merged into a state on its live value
 *   (pfsync_merge_halves), so that only the halves taken are written. The
 *   agent's copy-merge-write put its whole snapshot back, and what the
 *   datapath had counted and tracked on that state meanwhile (windows,
 *   levels, counters) went back with it. In: the key; val.id/creatorid
 *   name the state, val.peer[] are the peer's halves (host order),
 *   val.timeout its timeout class, val.last_seen the agent's now. Out: rc
 *   the stale halves (0..2), or -ENOENT when the key holds no state of
 *   that identity; val.flags the state's flags after the merge.
 * pfsync_unmark: a released deferred state's marks (PFSYNC_SF_DEFERRED,
 *   PFSTATE_ACK) cleared on the live value, for the same reason; rc 0 or
 *   -ENOENT.
 *
 * A separate object, loaded by the agent beside pfsync_xdp.o, with its
 * states map replaced by the pinned one; without it the agent goes one
 * state at a time.
 */
#ifndef PFSYNC_BULK_H
#define PFSYNC_BULK_H

#include <linux/types.h>

#include "pfsync_common.h"

#define PFSYNC_BULK_OBJ	     "pfsync_bulk.o"
#define PFSYNC_PROG_IMPORT   "pfsync_import"
#define PFSYNC_PROG_FETCH    "pfsync_fetch"
#define PFSYNC_PROG_MERGE    "pfsync_merge"
#define PFSYNC_PROG_UNMARK   "pfsync_unmark"
#define PFSYNC_MAP_BATCH_BUF "pfsync_batch_buf"
#define PFSYNC_IMPORT_BATCH  256 /* a 65535-byte packet holds 270 full states */

/*
 * pfsync_table_iter (its own object, PFSYNC_ITER_OBJ): a bpf_map_elem iterator
 * over the states map that writes every state as one struct
 * pfsync_import_entry (key, then value) into the iterator's seq_file; the
 * agent's full-table reads (bulk, resend, expiry pass, index rebuild) read
 * them with read() on an iterator fd instead of bpf_map_lookup_batch.
 */
#define PFSYNC_ITER_OBJ "pfsync_iter.o"
/* bytes between the key and the value in a struct pfsync_import_entry */
#define PFSYNC_ITER_KEY_PAD 4
#define PFSYNC_PROG_ITER    "pfsync_table_iter"

struct pfsync_import_entry {
	struct pfsync_key key;
	struct pfsync_state_value val; /* import: in; fetch: out */
};

_Static_assert(__builtin_offsetof(struct pfsync_import_entry, val) ==
		   sizeof(struct pfsync_key) + PFSYNC_ITER_KEY_PAD,
	       "the iterator writes key, pad, value");
_Static_assert(sizeof(struct pfsync_import_entry) == sizeof(struct pfsync_key) +
							 PFSYNC_ITER_KEY_PAD +
							 sizeof(struct pfsync_state_value),
	       "and nothing after the value");

struct pfsync_batch_buf {
	__u32 count;		       /* in: entries used */
	__u32 done;		       /* out: entries the program got to (all of them) */
	__s32 rc[PFSYNC_IMPORT_BATCH]; /* out: 0 or -errno (-EEXIST, -E2BIG, -ENOENT, ...) */
	struct pfsync_import_entry e[PFSYNC_IMPORT_BATCH];
};

#endif /* PFSYNC_BULK_H */
