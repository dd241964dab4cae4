// SPDX-License-Identifier: BSD-2-Clause
/*
 * bench/datapath: what one packet costs in pfsync_xdp, against baselines
 * measured in the same run (these machines are noisy: read the ratios).
 * Cases are measured round-robin, one round of every case after another,
 * so that a slow phase of the machine hits baselines and ours alike.
 *
 * 1. BPF_PROG_RUN, repeat >= 1M, kernel-reported ns per run:
 *    bench_empty (XDP_PASS, the floor), bench_minimal (5-tuple hash lookup
 *    + per-CPU counter, the limit for any hash state table), pfsync_xdp on
 *    an established TCP packet and a UDP packet, IPv4 and IPv6.
 * 2. The new-state path needs a fresh tuple per packet, which repeat alone
 *    cannot give (the first run creates the state, the rest hit it). So
 *    BPF_PROG_RUN runs bench_driver, which rewrites the source port and
 *    address from a run counter and tail-calls the program under test, in
 *    batches of --fresh packets (each table flushed and each ringbuf
 *    drained before a batch, each batch checked to insert one state per
 *    packet, >= 1M packets per case). The driver's own cost (driver ->
 *    bench_empty, minus bench_empty) is subtracted. Baselines for it:
 *    bench_minimal's miss; bench_insert, which on the miss inserts a value
 *    of pfsync's size into a table of pfsync's size (what any state table
 *    pays to create an entry: mostly cache misses on a large table); and
 *    bench_insert_sync, which adds one ringbuf record of pfsync's size
 *    (what a synced insert pays at the least). Ours runs on a bare SYN and
 *    on a SYN with the options Linux sends (MSS, SACK, timestamps, WS).
 * 3. Forwarded packets per second through a firewall namespace, by running
 *    bench/datapath/forward.sh (see there), which uses this binary's
 *    `xdpgen` (or, where live frames are refused, `pktsend`), `gen` and
 *    `sink` subcommands as load.
 *
 * Parts, in bench/datapath/: pkt.c the packets, progs.c loading and running
 * the programs, cases.c the cases of 1 and 2 and their table, forward.c 3,
 * load.c the subcommands forward.sh runs, nat.c 4.
 *
 * Build directory: --build DIR, else $PFSYNC_BUILD, else ./build.
 * Usage: datapath [--repeat N] [--rounds N] [--fresh N] [--no-forward]
 *                 [--seconds S] [--fwd-rounds N] [--build DIR] [--nat-only]
 *        datapath gen udp|tcp ADDR PORT SECONDS [wait]   (load generator;
 *                 wait: once connected, print "connected" and start on SIGUSR1)
 *        datapath xdpgen IFNAME DST_MAC SRC_MAC SRC_IP DST_IP PORT SECONDS
 *                 (UDP frames out of IFNAME at XDP speed, live-frame mode)
 *        datapath pktsend IFNAME DST_MAC SRC_MAC SRC_IP DST_IP PORT SECONDS
 *                 (the same frames from a packet socket, without live frames)
 *        datapath sink udp|tcp PORT               (discarding receiver)
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "forward.h"
#include "load.h"
#include "nat.h"
#include "progs.h"

/* ---- main ------------------------------------------------------------------ */

/* --nat-only: the floor and ours loaded, the NAT rows measured. */
static int nat_main(const struct opts *o)
{
	struct baseline empty = {0};
	struct bench b = {.o = o};
	int rc = 1;
#if HAVE_LOADER
	struct ours ours;

	if (baseline_load(&empty, o->build, "bench_empty"))
		return 1;
	if (ours_load(&ours, o->build) == 0) {
		b.ours = &ours;
		rc = run_nat_cases(&b, empty.prog_fd) ? 1 : 0;
		ours_close(&ours);
	}
	bpf_object__close(empty.obj);
#else
	(void)b;
	(void)empty;
#endif
	if (rc)
		fprintf(stderr, "datapath: the NAT rows could not be measured\n");
	return rc;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: datapath [--repeat N] [--rounds N] [--fresh N] [--no-forward] "
		"[--seconds S] [--fwd-rounds N] [--build DIR] [--nat-only]\n"
		"       datapath gen udp|tcp ADDR PORT SECONDS [wait]\n"
		"       datapath xdpgen IFNAME DST_MAC SRC_MAC SRC_IP DST_IP PORT SECONDS\n"
		"       datapath pktsend IFNAME DST_MAC SRC_MAC SRC_IP DST_IP PORT SECONDS\n"
		"       datapath sink udp|tcp PORT\n");
	exit(2);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.repeat = 1000000,
			   .rounds = 5,
			   .fresh = 90000,
			   .forward = 1,
			   .seconds = 3,
			   .fwd_rounds = 3,
			   .build = getenv("PFSYNC_BUILD")};
	if (!o->build)
		o->build = "build";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--no-forward")) {
			o->forward = 0;
			continue;
		}
		if (!strcmp(a, "--nat-only")) {
			o->nat_only = 1;
			continue;
		}
		if (!v)
			usage();
		if (!strcmp(a, "--repeat"))
			o->repeat = (__u32)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--rounds"))
			o->rounds = atoi(v);
		else if (!strcmp(a, "--fresh"))
			o->fresh = atoi(v);
		else if (!strcmp(a, "--fwd-rounds"))
			o->fwd_rounds = atoi(v);
		else if (!strcmp(a, "--seconds"))
			o->seconds = atoi(v);
		else if (!strcmp(a, "--build"))
			o->build = v;
		else
			usage();
		i++;
	}
	if (o->repeat < 1 || o->rounds < 1 || o->rounds > MAX_ROUNDS || o->fresh < 1 ||
	    o->fresh > 100000 || o->seconds < 1 || o->fwd_rounds < 1 || o->fwd_rounds > MAX_ROUNDS)
		usage();
}

int main(int argc, char **argv)
{
	struct baseline empty = {0};
	struct minimal minimal = {0};
	struct driver drv = {0};
	struct bench b = {0};
	struct opts o;
#if HAVE_LOADER
	struct ours ours;
#endif

	if (argc >= 2 && !strcmp(argv[1], "gen")) {
		if (argc != 6 && (argc != 7 || strcmp(argv[6], "wait")))
			usage();
		return gen_main(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), argc == 7);
	}
	if (argc >= 2 && !strcmp(argv[1], "xdpgen")) {
		if (argc != 9)
			usage();
		return xdpgen_main(argv + 2);
	}
	if (argc >= 2 && !strcmp(argv[1], "pktsend")) {
		if (argc != 9)
			usage();
		return pktsend_main(argv + 2);
	}
	if (argc >= 2 && !strcmp(argv[1], "sink")) {
		if (argc != 4)
			usage();
		return sink_main(argv[2], atoi(argv[3]));
	}
	parse_opts(argc, argv, &o);
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
	if (baseline_load(&empty, o.build, "bench_empty") || minimal_load(&minimal, o.build))
		return 1;
	b.o = &o;
	b.m = &minimal;
	b.d = &drv;
	if (o.nat_only)
		return nat_main(&o);
	printf("datapath bench: repeat %u, median of %d rounds; new state: batches of %d fresh "
	       "tuples\n",
	       o.repeat, o.rounds, o.fresh);
#if HAVE_LOADER
	if (ours_load(&ours, o.build) == 0)
		b.ours = &ours;
	else
		fprintf(stderr, "datapath: pfsync_xdp.o not loaded, its rows are missing\n");
#else
	fprintf(stderr, "datapath: built without lib/pfsync_loader.h, only baselines\n");
#endif

	__u64 hits0 = minimal_count(&minimal, BENCH_HIT);
	__u64 misses0 = minimal_count(&minimal, BENCH_MISS);

	add_hit_cases(&b, empty.prog_fd);
	run_cases(&b, K_HIT, o.rounds);
	minimal_check_hits(&minimal, hits0, misses0);

	double driver_cost = -1;

	if (driver_load(&drv, o.build) == 0) {
		int batches = (1000000 + o.fresh - 1) / o.fresh;

		if (batches < o.rounds)
			batches = o.rounds;
		if (batches > MAX_ROUNDS)
			batches = MAX_ROUNDS;
		add_fresh_cases(&b, empty.prog_fd);
		run_cases(&b, K_FRESH, batches);
		double with_empty = case_ns(&b, "driver -> empty");

		/* noise can make it come out below the floor: then it is 0 */
		if (with_empty > 0 && case_ns(&b, "empty XDP_PASS") > 0)
			driver_cost = with_empty > case_ns(&b, "empty XDP_PASS")
					  ? with_empty - case_ns(&b, "empty XDP_PASS")
					  : 0;
		for (int i = 0; i < b.n; i++)
			if (b.c[i].kind == K_FRESH) {
				if (driver_cost < 0)
					b.c[i].failed = 1;
				else
					b.c[i].ns -= driver_cost;
			}
	} else {
		fprintf(stderr, "datapath: no driver, new-state rows are missing\n");
	}
	print_table(&b, driver_cost);
	fflush(stdout);
#if HAVE_LOADER
	ours_close(&ours);
#endif
	if (drv.base.obj)
		bpf_object__close(drv.base.obj);
	minimal_close(&minimal);
	bpf_object__close(empty.obj);
	if (o.forward && bench_forward(&o))
		return 1;
	return 0;
}
