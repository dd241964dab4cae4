// SPDX-License-Identifier: BSD-2-Clause
/*
 * bench/sync_driver: the measuring helper of bench/sync.sh (not a benchmark
 * on its own: run without a subcommand it says so and exits 0, because
 * scripts/run-bench.sh runs every build/bench/ binary).
 *
 *   config PIN_DIR
 *       set long UDP timeouts with adaptive scaling out of reach in the pinned
 *       pfsync_config, so no state expires while the bench runs (conntrackd's
 *       side gets nf_conntrack_udp_timeout the same way).
 *   run A_PIN B_PIN COUNT RATE BASE SAMPLES TIMEOUT_S
 *       create COUNT states on A by BPF_PROG_RUN of A's pfsync_xdp, one fresh
 *       UDP tuple per packet, paced to RATE/s (0 = as fast as possible);
 *       every (COUNT/SAMPLES)th key and the last one are looked up in B's
 *       states map by a second thread until they appear. Prints key=value
 *       lines: offered rate, applied rate (states on B, estimated from the
 *       samples found, / first insert on A -> last sample on B), lag
 *       p50/p99/max of the samples.
 *   fill A_PIN COUNT BASE RATE     the same without B (RATE 0: unpaced)
 *   count PIN_DIR                  entries in the states map
 *   missing A_PIN B_PIN MIN_AGE_S  A's states at least MIN_AGE_S old that B
 *                                  lacks: total=, old=, missing=
 *   mapmem PIN_DIR                 memlock (fdinfo), max_entries, key/value size
 *   now                            CLOCK_MONOTONIC seconds
 *   ctl CTL_SOCK COMMAND           one agent control command, reply printed
 *   waitidx CTL_SOCK N TIMEOUT_S START
 *       poll the agent's `status --json` until states_indexed >= N; prints
 *       elapsed=seconds since START (a `now` value) and the last figure.
 *   udpgen DST_BASE COUNT RATE BASE [TIMES_FILE]
 *       COUNT single-datagram UDP flows (fresh destination address/port per
 *       flow) paced to RATE/s; TIMES_FILE gets each send's CLOCK_MONOTONIC
 *       time as a double, for conntrackd's lag (bench/sync_ctdpoll.py).
 *   ctinsert SRC DST_BASE COUNT RATE BASE [TIMES_FILE]
 *       the same flows' conntrack entries created in this netns over
 *       ctnetlink (IPCTNL_MSG_CT_NEW, 600 s timeout, many per sendmsg),
 *       paced to RATE/s (0 = as fast as the kernel takes them): conntrackd
 *       sees the same NEW events as from forwarded packets, at a rate the
 *       packet path of this 2-core machine cannot offer (pfsync's load
 *       likewise creates states without packet I/O, by BPF_PROG_RUN).
 *       TIMES_FILE as udpgen's (each flow: when its message went out).
 *
 * Parts, in bench/sync_driver/: flows.c the flows as frames and keys and
 * the programs that create them, run.c run and fill, query.c config, count,
 * missing, mapmem, ctl and waitidx, load.c udpgen and ctinsert.
 *
 * Times are CLOCK_MONOTONIC throughout, so the shell, this helper and the
 * Python poller agree.
 */

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "load.h"
#include "query.h"
#include "run.h"

static int usage(void)
{
	fprintf(stderr, "usage: sync_driver config PIN_DIR\n"
			"       sync_driver run A_PIN B_PIN COUNT RATE BASE SAMPLES TIMEOUT_S\n"
			"       sync_driver fill A_PIN COUNT BASE RATE\n"
			"       sync_driver count|mapmem PIN_DIR\n"
			"       sync_driver missing A_PIN B_PIN MIN_AGE_S\n"
			"       sync_driver now\n"
			"       sync_driver ctl CTL_SOCK COMMAND\n"
			"       sync_driver waitidx CTL_SOCK N TIMEOUT_S START\n"
			"       sync_driver udpgen DST_BASE COUNT RATE BASE [TIMES_FILE]\n"
			"       sync_driver ctinsert SRC DST_BASE COUNT RATE BASE [TIMES_FILE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	int nargs = argc - 2;

	if (argc < 2 || cmd[0] == '-') {
		printf("sync_driver: helper of bench/sync.sh (run that); nothing to do\n");
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "config") && nargs == 1)
		return cmd_config(argv[2]);
	if (!strcmp(cmd, "run") && nargs == 7)
		return cmd_run(argv + 2, 1);
	if (!strcmp(cmd, "fill") && nargs == 4)
		return cmd_run(argv + 2, 0);
	if (!strcmp(cmd, "count") && nargs == 1)
		return cmd_count(argv[2]);
	if (!strcmp(cmd, "missing") && nargs == 3)
		return cmd_missing(argv + 2);
	if (!strcmp(cmd, "mapmem") && nargs == 1)
		return cmd_mapmem(argv[2]);
	if (!strcmp(cmd, "now") && nargs == 0)
		return printf("%.6f\n", now_s()) < 0;
	if (!strcmp(cmd, "ctl") && nargs == 2)
		return cmd_ctl(argv[2], argv[3]);
	if (!strcmp(cmd, "waitidx") && nargs == 4)
		return cmd_waitidx(argv + 2);
	if (!strcmp(cmd, "udpgen") && (nargs == 4 || nargs == 5))
		return cmd_udpgen(nargs, argv + 2);
	if (!strcmp(cmd, "ctinsert") && (nargs == 5 || nargs == 6))
		return cmd_ctinsert(nargs, argv + 2);
	return usage();
}
