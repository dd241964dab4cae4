// SPDX-License-Identifier: BSD-2-Clause
/* bench/datapath: the forwarding rows (see forward.h). */

#include <stdio.h>
#include <string.h>

#include "forward.h"
#include "stats.h"

/* Median pkts/s of one (mode, load) over the rounds forward.sh ran. */
struct fwd_row {
	char mode[32];
	char load[8];
	double pps[MAX_ROUNDS];
	int n;
	char na[96]; /* why the mode cannot run here ("NA" line), else empty */
};

static const char *const fwd_loads[] = {"udp", "tcp"};
#define FWD_LOADS (sizeof(fwd_loads) / sizeof(fwd_loads[0]))

static struct fwd_row *fwd_row_get(struct fwd_row *rows, int *nrows, const char *mode,
				   const char *load)
{
	for (int i = 0; i < *nrows; i++)
		if (!strcmp(rows[i].mode, mode) && !strcmp(rows[i].load, load))
			return &rows[i];
	if (*nrows == MAX_CASES)
		return NULL;
	struct fwd_row *r = &rows[(*nrows)++];

	snprintf(r->mode, sizeof(r->mode), "%s", mode);
	snprintf(r->load, sizeof(r->load), "%s", load);
	r->n = 0;
	r->na[0] = 0;
	return r;
}

/* "NA mode reason": a mode this machine cannot run, a row of each load. */
static void fwd_mark_na(struct fwd_row *rows, int *nrows, const char *line)
{
	char mode[32], reason[96];

	if (sscanf(line, "NA %31s %95[^\n]", mode, reason) != 2)
		return;
	for (size_t i = 0; i < FWD_LOADS; i++) {
		struct fwd_row *r = fwd_row_get(rows, nrows, mode, fwd_loads[i]);

		if (r)
			snprintf(r->na, sizeof(r->na), "%s", reason);
	}
}

/* Why (mode, load) has no number, or NULL. */
static const char *fwd_na(const struct fwd_row *rows, int nrows, const char *mode, const char *load)
{
	for (int i = 0; i < nrows; i++)
		if (!strcmp(rows[i].mode, mode) && !strcmp(rows[i].load, load) && rows[i].na[0])
			return rows[i].na;
	return NULL;
}

static double row_max(const struct fwd_row *r)
{
	double m = -1;

	for (int i = 0; i < r->n; i++)
		if (r->pps[i] > m)
			m = r->pps[i];
	return m;
}

/* Median (best = 0) or best (best = 1) pkts/s of (mode, load); -1 if none. */
static double fwd_stat(struct fwd_row *rows, int nrows, const char *mode, const char *load,
		       int best)
{
	for (int i = 0; i < nrows; i++)
		if (!strcmp(rows[i].mode, mode) && !strcmp(rows[i].load, load) && rows[i].n)
			return best ? row_max(&rows[i]) : median(rows[i].pps, rows[i].n);
	return -1;
}

/* The fast path's targets (issue 16), medians of each load: >= 2x nftables
 * conntrack, >= 1.3x the flowtable, and how near the floor (xdp-fwd) it is. */
static void print_fastpath_targets(struct fwd_row *rows, int nrows)
{
	for (size_t i = 0; i < FWD_LOADS; i++) {
		const char *ld = fwd_loads[i], *ft_na = fwd_na(rows, nrows, "nft-flowtable", ld);
		double fp = fwd_stat(rows, nrows, "pfsync-xdp+fp", ld, 0);

		if (fp < 0)
			continue;
		printf("fast path, %s: x nftables", ld);
		print_ratio(fp, fwd_stat(rows, nrows, "nftables", ld, 0));
		printf(" (target 2.00x), x nft-flowtable");
		if (ft_na)
			printf(" n/a (%s)", ft_na);
		else
			print_ratio(fp, fwd_stat(rows, nrows, "nft-flowtable", ld, 0));
		printf(" (target 1.30x), x xdp-fwd floor");
		print_ratio(fp, fwd_stat(rows, nrows, "xdp-fwd", ld, 0));
		printf(", x pfsync-xdp");
		print_ratio(fp, fwd_stat(rows, nrows, "pfsync-xdp", ld, 0));
		printf("\n");
	}
}

/* Runs forward.sh, which prints "RESULT mode load pps" lines (several
 * rounds, modes interleaved); prints medians with ratios against the
 * no-filter and nftables rows of the same load. */
int bench_forward(const struct opts *o)
{
	static struct fwd_row rows[MAX_CASES];
	char cmd[PATH_MAX + 64], line[256], mode[32], load[8], udp_gen[32] = "?";
	int nrows = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "bench/datapath/forward.sh %d '%s' %d", o->seconds, o->build,
		 o->fwd_rounds);
	fflush(stdout);
	f = popen(cmd, "r");
	if (!f) {
		fprintf(stderr, "datapath: cannot run %s\n", cmd);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		struct fwd_row *r;
		double v;

		if (sscanf(line, "GENERATOR udp %31s", udp_gen) == 1)
			continue;
		if (!strncmp(line, "NA ", 3)) {
			fwd_mark_na(rows, &nrows, line);
			continue;
		}
		if (sscanf(line, "RESULT %31s %7s %lf", mode, load, &v) != 3) {
			fputs(line, stderr);
			continue;
		}
		r = fwd_row_get(rows, &nrows, mode, load);
		if (r && r->n < MAX_ROUNDS)
			r->pps[r->n++] = v;
	}
	if (pclose(f) != 0)
		fprintf(stderr, "datapath: forward.sh failed\n");

	printf("\nforwarded packets/s through a firewall namespace "
	       "(%d rounds of %d s, modes interleaved)\n",
	       o->fwd_rounds, o->seconds);
	printf("Other work on the machine only ever slows a round down: the best round is the\n"
	       "least disturbed one, the median the typical one. Ratios of each against each.\n");
	printf("%-14s %-4s %10s %10s | %7s %7s %8s | %7s %7s %8s\n", "mode", "load", "median",
	       "best", "x none", "x nft", "x nft+xdp", "x none", "x nft", "x nft+xdp");
	for (int i = 0; i < nrows; i++) {
		const char *ld = rows[i].load;

		if (!rows[i].n) {
			printf("%-14s %-4s n/a (%s)\n", rows[i].mode, ld,
			       rows[i].na[0] ? rows[i].na : "no result");
			continue;
		}
		printf("%-14s %-4s %10.0f %10.0f |", rows[i].mode, ld,
		       median(rows[i].pps, rows[i].n), row_max(&rows[i]));
		for (int best = 0; best < 2; best++) {
			double pps = best ? row_max(&rows[i]) : median(rows[i].pps, rows[i].n);

			print_ratio(pps, fwd_stat(rows, nrows, "none", ld, best));
			print_ratio(pps, fwd_stat(rows, nrows, "nftables", ld, best));
			print_ratio(pps, fwd_stat(rows, nrows, "nftables+xdp", ld, best));
			printf(best ? "\n" : " |");
		}
	}
	printf("udp load generated by %s (xdpgen: live-frame XDP_TX; pktsend: packet socket, "
	       "PACKET_QDISC_BYPASS + sendmmsg, where live frames are refused)\n",
	       udp_gen);
	printf("target: pfsync-xdp >= 1.00x nftables\n"
	       "x nft+xdp: against nftables paying the same veth XDP cost (see forward.sh)\n");
	print_fastpath_targets(rows, nrows);
	return nrows ? 0 : -1;
}
