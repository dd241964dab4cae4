/* SPDX-License-Identifier: BSD-2-Clause */
/* Benches: medians, percentiles and ratio columns of their measurements. */
#ifndef BENCH_LIB_STATS_H
#define BENCH_LIB_STATS_H

/* qsort comparator for doubles, ascending. */
int cmp_double(const void *a, const void *b);

/* Median of v[0..n) (v is left as it was); -1 if n <= 0 or out of memory. */
double median(const double *v, int n);

/* The p-quantile (0..1) of sorted[0..n), nearest rank; -1 if n == 0. */
double percentile(const double *sorted, unsigned long n, double p);

/* One table column: " 1.23x" for ns / base, " -" when either is unknown. */
void print_ratio(double ns, double base);

#endif /* BENCH_LIB_STATS_H */
