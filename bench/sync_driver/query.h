/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/sync_driver: subcommands that read or set up pinned maps and the agent. */
#ifndef BENCH_SYNC_DRIVER_QUERY_H
#define BENCH_SYNC_DRIVER_QUERY_H

int cmd_config(const char *pin_dir);
int cmd_count(const char *pin_dir);
int cmd_missing(char **argv);
int cmd_mapmem(const char *pin_dir);
int cmd_ctl(const char *sock_path, const char *cmd);
int cmd_waitidx(char **argv);

#endif /* BENCH_SYNC_DRIVER_QUERY_H */
