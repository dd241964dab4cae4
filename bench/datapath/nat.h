/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/datapath: NAT (issue 15), an established translated packet against a
 * plain one in BPF_PROG_RUN: the wire-key direction (an rdr-to request as it
 * arrives, rewritten) and the stack-key direction (alias lookup, then the
 * state). Run by `datapath --nat-only` (bench/nat.sh). */
#ifndef BENCH_DATAPATH_NAT_H
#define BENCH_DATAPATH_NAT_H

#include "cases.h"

#if HAVE_LOADER
/* Sets up the states on b->ours, measures, prints the table; 0 or -1. */
int run_nat_cases(const struct bench *b, int empty_fd);
#endif

#endif /* BENCH_DATAPATH_NAT_H */
