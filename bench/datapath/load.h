/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/datapath: the load generators and the sink forward.sh runs. */
#ifndef BENCH_DATAPATH_LOAD_H
#define BENCH_DATAPATH_LOAD_H

int gen_main(const char *proto, const char *addr, int port, int seconds);
int xdpgen_main(char **argv);
int pktsend_main(char **argv);
int sink_main(const char *proto, int port);

#endif /* BENCH_DATAPATH_LOAD_H */
