/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/datapath: the load generators and the sink forward.sh runs. */
#ifndef BENCH_DATAPATH_LOAD_H
#define BENCH_DATAPATH_LOAD_H

/* wait_start: once connected, print "connected" and send only after SIGUSR1
 * (a caller starts several senders at once, none flooding the path while
 * the others still connect) */
int gen_main(const char *proto, const char *addr, int port, int seconds, int wait_start);
int xdpgen_main(char **argv);
int pktsend_main(char **argv);
int sink_main(const char *proto, int port);

#endif /* BENCH_DATAPATH_LOAD_H */
