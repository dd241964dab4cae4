/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/sync_driver: the load for conntrackd: UDP flows and ctnetlink inserts. */
#ifndef BENCH_SYNC_DRIVER_LOAD_H
#define BENCH_SYNC_DRIVER_LOAD_H

int cmd_udpgen(int argc, char **argv);
int cmd_ctinsert(int argc, char **argv);

#endif /* BENCH_SYNC_DRIVER_LOAD_H */
