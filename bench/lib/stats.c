// SPDX-License-Identifier: BSD-2-Clause
/* Benches: statistics of their measurements (see stats.h). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double median(const double *v, int n)
{
	double *s, m;

	if (n <= 0)
		return -1;
	s = malloc((size_t)n * sizeof(*s));
	if (!s)
		return -1;
	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

double percentile(const double *sorted, unsigned long n, double p)
{
	unsigned long idx;

	if (n == 0)
		return -1;
	idx = (unsigned long)(p * (double)(n - 1) + 0.5);
	return sorted[idx < n ? idx : n - 1];
}

void print_ratio(double ns, double base)
{
	if (ns > 0 && base > 0)
		printf(" %7.2fx", ns / base);
	else
		printf(" %8s", "-");
}
