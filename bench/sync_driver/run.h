/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/sync_driver: run and fill, states created on A and looked for on B. */
#ifndef BENCH_SYNC_DRIVER_RUN_H
#define BENCH_SYNC_DRIVER_RUN_H

/* with_b: `run` (A_PIN B_PIN COUNT RATE BASE SAMPLES TIMEOUT_S), else `fill`
 * (A_PIN COUNT BASE RATE). */
int cmd_run(char **argv, int with_b);

#endif /* BENCH_SYNC_DRIVER_RUN_H */
