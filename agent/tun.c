/* SPDX-License-Identifier: BSD-2-Clause */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cksum.h"
#include "log.h"
#include "pfsync_wire.h"
#include "tun.h"

static void write_sysctl(const char *family, const char *name, const char *knob, const char *value)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/%s/conf/%s/%s", family, name, knob);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) < 0)
		log_debug("%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static int bring_up(const char *name)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc = 0;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
		rc = -errno;
	} else {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
			rc = -errno;
	}
	close(fd);
	return rc;
}

/*
 * A two-instruction tc ingress program dropping everything that enters
 * pfsync0: captures (taps run before tc ingress) still see each copy, but
 * the stack never routes, delivers or answers it, and it costs nothing.
 */
static void drop_ingress(struct tun_dev *t)
{
	const struct bpf_insn drop_all[] = {
	    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = TC_ACT_SHOT},
	    {.code = BPF_JMP | BPF_EXIT},
	};
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)if_nametoindex(t->name),
		    .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts);
	int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "pfsync0_drop", "GPL", drop_all, 2, NULL);
	int rc;

	if (fd < 0) {
		log_debug("%s: no drop program (%s); relying on sysctls", t->name, strerror(errno));
		return;
	}
	rc = bpf_tc_hook_create(&hook);
	opts.prog_fd = fd;
	if ((rc == 0 || rc == -EEXIST) && bpf_tc_attach(&hook, &opts) == 0)
		log_debug("%s: copies are dropped at tc ingress", t->name);
	/* the filter keeps the program alive; it goes with the device */
	close(fd);
}

int tun_open(struct tun_dev *t, const char *name)
{
	struct ifreq ifr;
	int rc;

	memset(t, 0, sizeof(*t));
	t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0) {
		rc = -errno;
		log_err("/dev/net/tun: %s", strerror(errno));
		return rc;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(t->fd, TUNSETIFF, &ifr) != 0) {
		rc = -errno;
		log_err("creating %s: %s", name, strerror(errno));
		tun_close(t);
		return rc;
	}
	snprintf(t->name, sizeof(t->name), "%s", ifr.ifr_name);
	t->ifindex = (int)if_nametoindex(t->name);
	/* copies written here are for capture only: never forward or accept them */
	write_sysctl("ipv4", t->name, "forwarding", "0");
	write_sysctl("ipv4", t->name, "rp_filter", "1");
	write_sysctl("ipv4", t->name, "accept_local", "0");
	/* no IPv6 chatter (router solicitations, MLD) in captures of pfsync0 */
	write_sysctl("ipv6", t->name, "disable_ipv6", "1");
	rc = bring_up(t->name);
	if (rc) {
		log_err("bringing %s up: %s", t->name, strerror(-rc));
		tun_close(t);
		return rc;
	}
	drop_ingress(t);
	return 0;
}

void tun_close(struct tun_dev *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

int tun_packet_sockets_see(const char *proc_net_packet, int ifindex)
{
	const char *line = strchr(proc_net_packet, '\n'); /* past the header */

	for (; line; line = strchr(line, '\n')) {
		unsigned int proto;
		int iface, running;

		line++;
		if (sscanf(line, "%*s %*s %*s %x %d %d", &proto, &iface, &running) != 3)
			continue;
		if (running && (iface == ifindex || iface == 0) &&
		    (proto == ETH_P_ALL || proto == ETH_P_IP))
			return 1;
	}
	return 0;
}

/* reads the agent's namespace's packet sockets; a failed read counts as watched */
static int packet_sockets_see(int ifindex)
{
	static char text[65536];
	ssize_t got, len = 0;
	int fd = open("/proc/net/packet", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 1;
	while (len < (ssize_t)sizeof(text) - 1 &&
	       (got = read(fd, text + len, sizeof(text) - 1 - (size_t)len)) > 0)
		len += got;
	close(fd);
	text[len] = '\0';
	/* a table too big to read whole: copy rather than miss a capture */
	return len == (ssize_t)sizeof(text) - 1 || tun_packet_sockets_see(text, ifindex);
}

static int tun_watched(struct tun_dev *t)
{
	struct timespec ts;
	__u64 now_ns;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_ns = (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
	if (!t->checked_ns || now_ns - t->checked_ns >= TUN_LISTEN_CHECK_NS) {
		t->watched = packet_sockets_see(t->ifindex);
		t->checked_ns = now_ns;
	}
	return t->watched;
}

static void tun_writev(struct tun_dev *t, const struct iovec *iov, int n)
{
	/* a full device queue (nobody capturing) just loses the copy */
	if (writev(t->fd, iov, n) < 0)
		t->dropped++;
	else
		t->written++;
}

void tun_write_ip(struct tun_dev *t, const void *ip, size_t len)
{
	struct iovec iov = {.iov_base = (void *)ip, .iov_len = len};

	if (t->fd >= 0 && tun_watched(t))
		tun_writev(t, &iov, 1);
}

void tun_write_payload(struct tun_dev *t, __u32 src, __u32 dst, const void *payload, size_t len)
{
	struct iphdr ip = {
	    .version = 4,
	    .ihl = 5,
	    .tos = PFSYNC_IPTOS,
	    .tot_len = htons((__u16)(len + sizeof(ip))),
	    .frag_off = htons(IP_DF),
	    .ttl = PFSYNC_DFLTTL,
	    .protocol = IPPROTO_PFSYNC,
	    .saddr = src,
	    .daddr = dst,
	};
	struct iovec iov[2] = {
	    {.iov_base = &ip, .iov_len = sizeof(ip)},
	    {.iov_base = (void *)payload, .iov_len = len},
	};

	if (t->fd < 0 || !tun_watched(t))
		return;
	ip.check = htons(cksum_header(&ip, sizeof(ip)));
	tun_writev(t, iov, 2);
}
