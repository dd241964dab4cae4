/* SPDX-License-Identifier: BSD-2-Clause */
/* bench/sync_driver: the flows it creates states of, as frames and keys,
 * and the programs that run them on A. */
#ifndef BENCH_SYNC_DRIVER_FLOWS_H
#define BENCH_SYNC_DRIVER_FLOWS_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>

#include <bpf/libbpf.h>

#include "bench_driver.h"
#include "pfsync_common.h"
#include "pfsync_loader.h"
#include "pfsync_maps.h"

#define SRC_NET	   0x0a800000 /* 10.128.0.0/16: sources of the flows */
#define DST_ADDR   0x0aff0001 /* 10.255.0.1 */
#define FLOW_DPORT 53

struct frame {
	unsigned char data[ETH_HLEN + sizeof(struct iphdr) + sizeof(struct udphdr) + 16];
	unsigned int len;
};

/*
 * Unpaced runs: bench_driver.o (beside the pfsync_xdp.o in use) rewrites the
 * tuple of one frame per repeat and tail-calls A's pfsync_xdp, so a single
 * BPF_PROG_RUN makes a whole burst. One syscall per state would make the
 * load generator the limit of a burst; and a repeated XDP run costs a few
 * ms of set-up (the kernel swaps its XDP dispatcher), so runs are not cut
 * into small batches either: the driver stamps the sampled runs itself.
 */
struct batcher {
	struct bpf_object *obj;
	int prog_fd, seq_fd, stamps_fd;
};

void make_frame(struct frame *f, __u64 i);
void make_key(struct pfsync_key *k, __u64 i);
int prog_run(int prog_fd, const struct frame *f, __u32 *verdict);
int batcher_load(struct batcher *bt, int target_fd);
int batch_run(const struct batcher *bt, __u64 first, __u32 n, __u32 every, __u32 *verdict);
double stamp_s(const struct batcher *bt, __u32 k);
/* A's pfsync_xdp and pinned maps in pin; -1 (nothing left open) on failure. */
int open_xdp(struct pfsync_bpf *b, struct pfsync_maps *maps, const char *pin);
int xdp_load(struct pfsync_bpf *b, const char *pin_dir);

#endif /* BENCH_SYNC_DRIVER_FLOWS_H */
