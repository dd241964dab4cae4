// SPDX-License-Identifier: BSD-2-Clause
/* Benches: argument parsing (see args.h). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "args.h"

int parse_num(const char *what, const char *s, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-') {
		fprintf(stderr, "%s: %s: '%s' is not a number\n", program_invocation_short_name,
			what, s);
		return -1;
	}
	return 0;
}
