/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bpf/bench_driver.bpf.c and its users (bench/datapath/, bench/sync_driver/):
 * the run counter and stamping settings in the one-element bench_seq map, and
 * how a run number becomes a fresh tuple.
 */
#ifndef BENCH_DRIVER_H
#define BENCH_DRIVER_H

#include <linux/types.h>

#define BENCH_STAMPS_MAX 4096 /* bench_stamps' slots; the last one is stamp_last's */

/*
 * Run n's tuple: its low BENCH_FLOW_PORT_BITS bits make the source port
 * (0x8000 | bits), the next 16 the last two bytes of the source address.
 */
#define BENCH_FLOW_PORT_BITS 15

struct bench_seq {
	__u32 runs;	   /* runs so far: the next run's number (BPF_PROG_RUN uses one CPU) */
	__u32 stamp_every; /* stamp run stamp_first and every Nth after it (0: only it) */
	__u32 stamp_first;
	__u32 stamp_last; /* stamped in slot BENCH_STAMPS_MAX - 1 */
};

#endif /* BENCH_DRIVER_H */
