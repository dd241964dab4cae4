/* SPDX-License-Identifier: BSD-2-Clause */
/* Benches: command-line arguments of their subcommands. */
#ifndef BENCH_LIB_ARGS_H
#define BENCH_LIB_ARGS_H

/* Parses the unsigned number s (decimal, 0x hex or 0 octal) into *out; on
 * anything else says "PROGRAM: WHAT: 's' is not a number" and returns -1. */
int parse_num(const char *what, const char *s, unsigned long long *out);

#endif /* BENCH_LIB_ARGS_H */
