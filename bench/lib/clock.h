/* SPDX-License-Identifier: BSD-2-Clause */
/* Benches: CLOCK_MONOTONIC time, the clock their scripts and helpers share. */
#ifndef BENCH_LIB_CLOCK_H
#define BENCH_LIB_CLOCK_H

/* CLOCK_MONOTONIC now, in seconds. */
double now_s(void);

/* Sleeps until CLOCK_MONOTONIC reaches t seconds (signals do not cut it short). */
void sleep_until(double t);

#endif /* BENCH_LIB_CLOCK_H */
