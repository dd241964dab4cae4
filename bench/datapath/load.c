// SPDX-License-Identifier: BSD-2-Clause
/* bench/datapath: load generators and sink (see load.h). */

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "clock.h"
#include "load.h"
#include "progs.h"

static volatile sig_atomic_t stop_flag;

static void on_alarm(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static volatile sig_atomic_t go_flag;

static void on_go(int sig)
{
	(void)sig;
	go_flag = 1;
}

/* Says "connected" and returns once SIGUSR1 came (on_go is installed). */
static void wait_for_go(void)
{
	sigset_t usr1, old;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	printf("connected\n");
	fflush(stdout);
	while (!go_flag)
		sigsuspend(&old);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* connect() gives up after `seconds` (the run's length): a connection that
 * is never answered fails the run at once instead of after the SYN
 * retries' two minutes, which would stretch the run it is timed in. The
 * sends after it block without a limit again. */
static int connect_to(int type, const char *addr, int port, int seconds)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((__u16)port)};
	struct timeval limit = {.tv_sec = seconds > 0 ? seconds : 1};
	int fd = socket(AF_INET, type, 0);

	if (fd < 0 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit)) ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "datapath gen: connect %s:%d: %s\n", addr, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	limit.tv_sec = 0;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
	return fd;
}

/* Sends as fast as it can until `seconds` pass; prints packets/bytes sent. */
int gen_main(const char *proto, const char *addr, int port, int seconds, int wait_start)
{
	static char buf[65536];
	int udp = !strcmp(proto, "udp");
	int fd;
	unsigned long long sent = 0, bytes = 0;

	signal(SIGUSR1, on_go); /* before connecting: an early start is not fatal */
	fd = connect_to(udp ? SOCK_DGRAM : SOCK_STREAM, addr, port, seconds);
	if (fd < 0)
		return 1;
	if (wait_start)
		wait_for_go();
	memset(buf, 'g', sizeof(buf));
	signal(SIGALRM, on_alarm);
	alarm((unsigned)seconds);
	while (!stop_flag) {
		if (udp) {
			struct mmsghdr msgs[64];
			struct iovec iov = {.iov_base = buf, .iov_len = 18};

			memset(msgs, 0, sizeof(msgs));
			for (int i = 0; i < 64; i++) {
				msgs[i].msg_hdr.msg_iov = &iov;
				msgs[i].msg_hdr.msg_iovlen = 1;
			}
			int n = sendmmsg(fd, msgs, 64, 0);

			if (n > 0) {
				sent += (unsigned)n;
				bytes += 18ull * (unsigned)n;
			}
		} else {
			ssize_t n = send(fd, buf, sizeof(buf), 0);

			if (n > 0) {
				sent++;
				bytes += (unsigned long long)n;
			} else if (n < 0 && errno != EINTR) {
				break;
			}
		}
	}
	printf("sent %llu writes %llu bytes\n", sent, bytes);
	if (!udp) {
		/* the run is over: reset, not send what is still queued (megabytes
		 * that would compete with the next run's streams) */
		struct linger abort_close = {.l_onoff = 1, .l_linger = 0};

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
	}
	close(fd);
	return 0;
}

/* Parses "aa:bb:cc:dd:ee:ff". */
static int parse_mac(const char *text, __u8 mac[ETH_ALEN])
{
	unsigned int b[ETH_ALEN];

	if (sscanf(text, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return -1;
	for (int i = 0; i < ETH_ALEN; i++)
		mac[i] = (__u8)b[i];
	return 0;
}

/* An Ethernet/IPv4/UDP frame of 64 bytes (22-byte payload; bench_tx
 * restores exactly these 64 bytes), UDP checksum 0 (allowed for IPv4). */
static int build_gen_frame(struct pkt *p, const char *dst_mac, const char *src_mac,
			   const char *src_ip, const char *dst_ip, int port)
{
	struct flow f = {.af = AF_INET, .proto = IPPROTO_UDP, .sport = 40000};
	struct ethhdr *eth = (struct ethhdr *)p->data;

	f.dport = (__u16)port;
	if (inet_pton(AF_INET, src_ip, f.saddr) != 1 || inet_pton(AF_INET, dst_ip, f.daddr) != 1)
		return -1;
	build_udp(p, &f, 22);
	if (parse_mac(dst_mac, eth->h_dest) || parse_mac(src_mac, eth->h_source))
		return -1;
	return 0;
}

/*
 * xdpgen: BPF_PROG_RUN of bench_tx (XDP_TX) in live-frame mode with the
 * frame's ingress set to IFNAME, so each run transmits the frame out of
 * IFNAME (a veth: the peer must have NAPI, i.e. XDP or GRO on). Runs
 * batches of `repeat` frames until `seconds` pass.
 */
int xdpgen_main(char **argv)
{
	const char *build = getenv("PFSYNC_BUILD");
	const char *ifname = argv[0];
	int seconds = atoi(argv[6]);
	char path[PATH_MAX];
	struct baseline tx = {0};
	struct xdp_md ctx = {0};
	unsigned long long runs = 0;
	struct pkt p;
	double t0;

	snprintf(path, sizeof(path), "%s", build ? build : "build");
	if (build_gen_frame(&p, argv[1], argv[2], argv[3], argv[4], atoi(argv[5]))) {
		fprintf(stderr, "datapath xdpgen: bad MAC or address\n");
		return 2;
	}
	ctx.ingress_ifindex = if_nametoindex(ifname);
	if (!ctx.ingress_ifindex) {
		fprintf(stderr, "datapath xdpgen: no interface %s\n", ifname);
		return 1;
	}
	ctx.data_end = p.len;
	if (baseline_load(&tx, path, "bench_tx"))
		return 1;
	int tmpl_fd = bpf_object__find_map_fd_by_name(tx.obj, "bench_tx_frame");
	__u32 zero = 0;

	if (tmpl_fd < 0 || bpf_map_update_elem(tmpl_fd, &zero, p.data, BPF_ANY)) {
		fprintf(stderr, "datapath xdpgen: cannot store the frame template\n");
		bpf_object__close(tx.obj);
		return 1;
	}
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p.data, .data_size_in = p.len, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1 << 12,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
	t0 = now_s();
	do {
		if (bpf_prog_test_run_opts(tx.prog_fd, &o)) {
			fprintf(stderr, "datapath xdpgen: live-frame BPF_PROG_RUN: %s\n",
				strerror(errno));
			bpf_object__close(tx.obj);
			return 1;
		}
		runs += o.repeat;
	} while (now_s() - t0 < seconds); /* whole seconds, not tv_sec steps */
	printf("frames %llu\n", runs);
	bpf_object__close(tx.obj);
	return 0;
}

/*
 * pktsend: the frame of xdpgen from an AF_PACKET socket on IFNAME, past the
 * qdisc layer (PACKET_QDISC_BYPASS), PKTSEND_BATCH frames per sendmmsg:
 * the UDP load on kernels that refuse live-frame test runs. Each frame is
 * an skb through veth's xmit: dearer for the sender than an XDP frame, far
 * cheaper than a UDP socket's way through the stack.
 */
#define PKTSEND_BATCH 64

int pktsend_main(char **argv)
{
	static struct mmsghdr msgs[PKTSEND_BATCH];
	struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_halen = ETH_ALEN};
	unsigned long long frames = 0, refused = 0;
	int seconds = atoi(argv[6]), one = 1, fd;
	struct iovec iov;
	double t0;
	struct pkt p;

	if (build_gen_frame(&p, argv[1], argv[2], argv[3], argv[4], atoi(argv[5]))) {
		fprintf(stderr, "datapath pktsend: bad MAC or address\n");
		return 2;
	}
	to.sll_ifindex = (int)if_nametoindex(argv[0]);
	if (!to.sll_ifindex) {
		fprintf(stderr, "datapath pktsend: no interface %s\n", argv[0]);
		return 1;
	}
	memcpy(to.sll_addr, p.data, ETH_ALEN);
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0 || setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one))) {
		fprintf(stderr, "datapath pktsend: packet socket: %s\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	iov = (struct iovec){.iov_base = p.data, .iov_len = p.len};
	for (int i = 0; i < PKTSEND_BATCH; i++)
		msgs[i].msg_hdr = (struct msghdr){
		    .msg_name = &to, .msg_namelen = sizeof(to), .msg_iov = &iov, .msg_iovlen = 1};
	t0 = now_s();
	do {
		int n = sendmmsg(fd, msgs, PKTSEND_BATCH, 0);

		if (n > 0) {
			frames += (unsigned long long)n;
		} else if (errno == ENOBUFS || errno == EAGAIN) {
			refused++; /* the peer's queue is full: the receiver is the bottleneck */
		} else {
			fprintf(stderr, "datapath pktsend: sendmmsg: %s\n", strerror(errno));
			close(fd);
			return 1;
		}
	} while (now_s() - t0 < seconds);
	printf("frames %llu (batches refused: %llu)\n", frames, refused);
	close(fd);
	return 0;
}

#define SINK_MAX_CONNS 256

/* Reads the TCP connections on the listening socket lfd concurrently and
 * forever: a connection whose end never arrives (a sender's reset lost in
 * the flood of the others) stays idle without holding up the next runs'. */
static void sink_tcp(int lfd)
{
	static char buf[65536];
	static struct pollfd fds[SINK_MAX_CONNS + 1];
	int n = 1;

	fds[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
	for (;;) {
		if (poll(fds, (nfds_t)n, -1) < 0)
			continue;
		/* from the end: a closed slot takes the last one, already read */
		for (int i = n - 1; i >= 1; i--) {
			ssize_t got;

			if (!fds[i].revents)
				continue;
			got = recv(fds[i].fd, buf, sizeof(buf), 0);
			if (got > 0 || (got < 0 && errno == EINTR))
				continue;
			close(fds[i].fd);
			fds[i] = fds[--n];
		}
		if (fds[0].revents & POLLIN) {
			int c = accept(lfd, NULL, NULL);

			if (c >= 0 && n <= SINK_MAX_CONNS)
				fds[n++] = (struct pollfd){.fd = c, .events = POLLIN};
			else if (c >= 0)
				close(c);
		}
	}
}

/* Receives and discards until killed. */
int sink_main(const char *proto, int port)
{
	static char buf[65536];
	int udp = !strcmp(proto, "udp");
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((__u16)port)};
	int one = 1;
	int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);

	if (fd < 0)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || (!udp && listen(fd, 8))) {
		fprintf(stderr, "datapath sink: bind port %d: %s\n", port, strerror(errno));
		close(fd);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	if (!udp)
		sink_tcp(fd);
	for (;;)
		recv(fd, buf, sizeof(buf), 0);
}
