/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/datapath: forwarded packets/s, by bench/datapath/forward.sh. */
#ifndef BENCH_DATAPATH_FORWARD_H
#define BENCH_DATAPATH_FORWARD_H

#include "cases.h"

/* Runs forward.sh and prints its table; -1 if it gave no result. */
int bench_forward(const struct opts *o);

#endif /* BENCH_DATAPATH_FORWARD_H */
