// SPDX-License-Identifier: BSD-2-Clause
/* bench/sync_driver: flows, frames, keys and loading (see flows.h). */

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>

#include "pfsync_logic.h"

#include "flows.h"

static __u16 ip_checksum(const void *hdr, size_t len)
{
	const __u16 *w = hdr;
	__u32 sum = 0;

	for (; len > 1; len -= 2)
		sum += *w++;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/*
 * Flow i, split as bpf/bench_driver.bpf.c rewrites a frame: the low 15 bits
 * pick the source port (32768..65535), the next 16 the last two bytes of the
 * source address in 10.128/16.
 */
static __u32 flow_src(__u64 i)
{
	return htonl(SRC_NET | (__u32)((i >> BENCH_FLOW_PORT_BITS) & 0xffff));
}

static __u16 flow_sport(__u64 i)
{
	return htons((__u16)(0x8000 | (i & ((1u << BENCH_FLOW_PORT_BITS) - 1))));
}

/* Ethernet + IPv4 + UDP, flow i: flow_src(i):flow_sport(i) -> 10.255.0.1:53 */
void make_frame(struct frame *f, __u64 i)
{
	struct ethhdr *eth = (struct ethhdr *)f->data;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	struct udphdr *udp = (struct udphdr *)(ip + 1);
	static const unsigned char mac_a[ETH_ALEN] = {0x02, 0, 0, 0, 0, 1};
	static const unsigned char mac_b[ETH_ALEN] = {0x02, 0, 0, 0, 0, 2};

	memset(f, 0, sizeof(*f));
	memcpy(eth->h_dest, mac_a, ETH_ALEN);
	memcpy(eth->h_source, mac_b, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons(sizeof(*ip) + sizeof(*udp) + 16);
	ip->saddr = flow_src(i);
	ip->daddr = htonl(DST_ADDR);
	ip->check = ip_checksum(ip, sizeof(*ip));
	udp->source = flow_sport(i);
	udp->dest = htons(FLOW_DPORT);
	udp->len = htons(sizeof(*udp) + 16);
	f->len = sizeof(f->data);
}

/* The key the datapath stores for flow i (normalised like pf_state_key). */
void make_key(struct pfsync_key *k, __u64 i)
{
	memset(k, 0, sizeof(*k));
	k->addr[0][0] = flow_src(i);
	k->addr[1][0] = htonl(DST_ADDR);
	k->port[0] = flow_sport(i);
	k->port[1] = htons(FLOW_DPORT);
	k->proto = IPPROTO_UDP;
	k->af = PFSYNC_AF_INET;
	pfsync_key_normalize(k);
}

int prog_run(int prog_fd, const struct frame *f, __u32 *verdict)
{
	unsigned char out[sizeof(f->data) + 256];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->data, .data_size_in = f->len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);

	if (bpf_prog_test_run_opts(prog_fd, &o))
		return -errno;
	*verdict = o.retval;
	return 0;
}

static int batcher_set_target(struct bpf_object *obj, int target_fd)
{
	int slots = bpf_object__find_map_fd_by_name(obj, "bench_target");
	__u32 zero = 0;

	if (slots < 0 || bpf_map_update_elem(slots, &zero, &target_fd, BPF_ANY)) {
		fprintf(stderr, "sync_driver: bench_target: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

int batcher_load(struct batcher *bt, int target_fd)
{
	char path[PATH_MAX];
	const char *obj_path = pfsync_bpf_default_obj(), *slash = strrchr(obj_path, '/');
	struct bpf_program *prog;

	snprintf(path, sizeof(path), "%.*s/bench_driver.o", slash ? (int)(slash - obj_path) : 1,
		 slash ? obj_path : ".");
	bt->obj = bpf_object__open_file(path, NULL);
	if (!bt->obj || bpf_object__load(bt->obj)) {
		fprintf(stderr, "sync_driver: cannot load %s: %s\n", path, strerror(errno));
		bpf_object__close(bt->obj);
		bt->obj = NULL;
		return -1;
	}
	prog = bpf_object__find_program_by_name(bt->obj, "bench_driver");
	bt->prog_fd = prog ? bpf_program__fd(prog) : -1;
	bt->seq_fd = bpf_object__find_map_fd_by_name(bt->obj, "bench_seq");
	bt->stamps_fd = bpf_object__find_map_fd_by_name(bt->obj, "bench_stamps");
	if (bt->prog_fd < 0 || bt->seq_fd < 0 || bt->stamps_fd < 0 ||
	    batcher_set_target(bt->obj, target_fd)) {
		fprintf(stderr, "sync_driver: %s lacks bench_driver or its maps\n", path);
		bpf_object__close(bt->obj);
		bt->obj = NULL;
		return -1;
	}
	return 0;
}

/*
 * Flows first .. first+n-1 in one BPF_PROG_RUN, stamping every `every`th
 * from the first on (stamp k) and the last (stamp BENCH_STAMPS_MAX - 1);
 * verdict of the last one.
 */
int batch_run(const struct batcher *bt, __u64 first, __u32 n, __u32 every, __u32 *verdict)
{
	struct bench_seq seq = {.runs = (__u32)first,
				.stamp_every = every,
				.stamp_first = (__u32)first,
				.stamp_last = (__u32)(first + n - 1)};
	struct frame f;
	__u32 zero = 0;
	LIBBPF_OPTS(bpf_test_run_opts, o, .repeat = n);

	make_frame(&f, first);
	o.data_in = f.data;
	o.data_size_in = f.len;
	if (bpf_map_update_elem(bt->seq_fd, &zero, &seq, BPF_ANY) ||
	    bpf_prog_test_run_opts(bt->prog_fd, &o))
		return -errno;
	*verdict = o.retval;
	return 0;
}

/* stamp k of the last batch_run, CLOCK_MONOTONIC seconds (0: not stamped) */
double stamp_s(const struct batcher *bt, __u32 k)
{
	__u64 ns = 0;

	if (bpf_map_lookup_elem(bt->stamps_fd, &k, &ns))
		return 0;
	return (double)ns / 1e9;
}

/* ---- loading ------------------------------------------------------------- */
/*
 * Only pfsync_xdp, against the maps pinned in pin_dir (the loader keeps a
 * pinned states map's size, set by the agent's --states-max). The object is
 * $PFSYNC_BPF_OBJ (bench/sync.sh sets it), as pfsync_bpf_default_obj() says.
 */
int xdp_load(struct pfsync_bpf *b, const char *pin_dir)
{
	if (pfsync_bpf_load(b, NULL, pin_dir, 0, PFSYNC_LOAD_XDP))
		return -1;
	if (b->xdp_fd < 0) {
		fprintf(stderr, "sync_driver: pfsync_xdp not loaded\n");
		pfsync_bpf_close(b);
		return -1;
	}
	return 0;
}

int open_xdp(struct pfsync_bpf *b, struct pfsync_maps *maps, const char *pin)
{
	if (xdp_load(b, pin))
		return -1;
	if (pfsync_maps_open(maps, pin)) {
		pfsync_bpf_close(b);
		return -1;
	}
	return 0;
}
