// SPDX-License-Identifier: BSD-2-Clause
/* bench/sync_driver: udpgen and ctinsert (see load.h). */

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "clock.h"
#include "load.h"

#define FLOWS_PER_ADDR 60000 /* udpgen: ports per destination address */
#define CT_SPORT       40000 /* ctinsert: the flows' source port */

/* ---- udpgen -------------------------------------------------------------- */
/*
 * COUNT RATE BASE at num[0..2], as udpgen and ctinsert take them, and the
 * array of send times when a TIMES_FILE follows. Returns 0, or the exit
 * code: 2 for a bad number, 1 when out of memory.
 */
static int parse_load(char **num, int with_times, unsigned long long *count,
		      unsigned long long *rate, unsigned long long *base, double **times)
{
	if (parse_num("COUNT", num[0], count) || parse_num("RATE", num[1], rate) ||
	    parse_num("BASE", num[2], base))
		return 2;
	if (with_times && !(*times = calloc(*count ? *count : 1, sizeof(**times)))) {
		fprintf(stderr, "sync_driver: out of memory\n");
		return 1;
	}
	return 0;
}

static int write_times(const char *path, const double *times, unsigned long long n)
{
	FILE *f = fopen(path, "wb");
	int rc = 0;

	if (!f || fwrite(times, sizeof(*times), n, f) != n)
		rc = -1;
	if (f && fclose(f))
		rc = -1;
	if (rc)
		fprintf(stderr, "sync_driver: writing %s failed\n", path);
	return rc;
}

int cmd_udpgen(int argc, char **argv)
{
	unsigned long long count, rate, base, errors = 0;
	struct in_addr dst_base;
	double *times = NULL, t0;
	char payload[16] = "pfsync-bench";
	int fd, rc = 0;

	if (inet_pton(AF_INET, argv[0], &dst_base) != 1) {
		fprintf(stderr, "sync_driver: DST_BASE %s: not an IPv4 address\n", argv[0]);
		return 2;
	}
	rc = parse_load(argv + 1, argc > 4, &count, &rate, &base, &times);
	if (rc)
		return rc;
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		fprintf(stderr, "sync_driver: socket: %s\n", strerror(errno));
		free(times);
		return 1;
	}
	t0 = now_s();
	for (unsigned long long i = 0; i < count; i++) {
		unsigned long long flow = base + i;
		struct sockaddr_in sa = {.sin_family = AF_INET};

		if (rate && (i & 7) == 0) {
			double due = t0 + (double)i / (double)rate;

			if (due > now_s())
				sleep_until(due);
		}
		sa.sin_addr.s_addr = htonl(ntohl(dst_base.s_addr) + (__u32)(flow / FLOWS_PER_ADDR));
		sa.sin_port = htons((__u16)(1024 + flow % FLOWS_PER_ADDR));
		while (sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&sa, sizeof(sa)) <
		       0) {
			if (errno != ENOBUFS && errno != EAGAIN) {
				fprintf(stderr, "sync_driver: sendto: %s\n", strerror(errno));
				close(fd);
				free(times);
				return 1;
			}
			errors++;
		}
		if (times)
			times[i] = now_s();
	}
	printf("count=%llu\nsend_s=%.6f\nretries=%llu\n", count, now_s() - t0, errors);
	close(fd);
	if (times)
		rc = write_times(argv[4], times, count) ? 1 : 0;
	free(times);
	return rc;
}

/* ---- ctinsert ------------------------------------------------------------ */
#define CT_BATCH   64  /* messages per sendmsg */
#define CT_MSG_MAX 256 /* bytes one CT_NEW takes, at most */
#define CT_TIMEOUT 600

struct nlbuf {
	unsigned char data[CT_BATCH * CT_MSG_MAX];
	size_t len;
};

static struct nlattr *nla_put(struct nlbuf *b, __u16 type, const void *val, size_t len)
{
	struct nlattr *a = (struct nlattr *)(b->data + b->len);

	a->nla_type = type;
	a->nla_len = (__u16)(NLA_HDRLEN + len);
	if (len)
		memcpy((unsigned char *)a + NLA_HDRLEN, val, len);
	b->len += NLA_ALIGN(a->nla_len);
	return a;
}

static struct nlattr *nest_start(struct nlbuf *b, __u16 type)
{
	return nla_put(b, type | NLA_F_NESTED, NULL, 0);
}

static void nest_end(struct nlbuf *b, struct nlattr *a)
{
	a->nla_len = (__u16)(b->data + b->len - (unsigned char *)a);
}

static void put_tuple(struct nlbuf *b, __u16 type, __u32 src, __u32 dst, __u16 sport, __u16 dport)
{
	struct nlattr *t = nest_start(b, type), *n;
	__u8 proto = IPPROTO_UDP;

	n = nest_start(b, CTA_TUPLE_IP);
	nla_put(b, CTA_IP_V4_SRC, &src, sizeof(src));
	nla_put(b, CTA_IP_V4_DST, &dst, sizeof(dst));
	nest_end(b, n);
	n = nest_start(b, CTA_TUPLE_PROTO);
	nla_put(b, CTA_PROTO_NUM, &proto, sizeof(proto));
	nla_put(b, CTA_PROTO_SRC_PORT, &sport, sizeof(sport));
	nla_put(b, CTA_PROTO_DST_PORT, &dport, sizeof(dport));
	nest_end(b, n);
	nest_end(b, t);
}

/* flow i as udpgen sends it: SRC:FLOW_SPORT -> DST_BASE + i / 60000 : 1024 + i % 60000 */
static void put_ct_new(struct nlbuf *b, __u32 seq, __u32 src, __u32 dst_base, __u64 flow)
{
	struct nlmsghdr *nh = (struct nlmsghdr *)(b->data + b->len);
	struct nfgenmsg *g;
	__u32 dst = htonl(ntohl(dst_base) + (__u32)(flow / FLOWS_PER_ADDR));
	__u16 dport = htons((__u16)(1024 + flow % FLOWS_PER_ADDR)), sport = htons(CT_SPORT);
	__u32 timeout = htonl(CT_TIMEOUT);

	nh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
	nh->nlmsg_seq = seq;
	nh->nlmsg_pid = 0;
	b->len += NLMSG_HDRLEN;
	g = (struct nfgenmsg *)(b->data + b->len);
	memset(g, 0, sizeof(*g));
	g->nfgen_family = AF_INET;
	g->version = NFNETLINK_V0;
	b->len += NLMSG_ALIGN(sizeof(*g));
	put_tuple(b, CTA_TUPLE_ORIG, src, dst, sport, dport);
	put_tuple(b, CTA_TUPLE_REPLY, dst, src, dport, sport);
	nla_put(b, CTA_TIMEOUT, &timeout, sizeof(timeout));
	nh->nlmsg_len = (__u32)(b->data + b->len - (unsigned char *)nh);
	b->len = NLMSG_ALIGN(b->len);
}

/* counts the error replies waiting (ctnetlink answers only failures) */
static unsigned long long drain_errors(int fd, int *first_err)
{
	static unsigned char buf[65536];
	unsigned long long errs = 0;
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
		     nh = NLMSG_NEXT(nh, n)) {
			struct nlmsgerr *e = NLMSG_DATA(nh);

			if (nh->nlmsg_type == NLMSG_ERROR && e->error) {
				if (!*first_err)
					*first_err = -e->error;
				errs++;
			}
		}
	}
	return errs;
}

int cmd_ctinsert(int argc, char **argv)
{
	unsigned long long count, rate, base, errors = 0;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct in_addr src, dst_base;
	static struct nlbuf b;
	double *times = NULL;
	int fd, first_err = 0, rc, rcvbuf = 8 << 20;
	__u32 seq = 1;
	double t0;

	if (inet_pton(AF_INET, argv[0], &src) != 1 || inet_pton(AF_INET, argv[1], &dst_base) != 1) {
		fprintf(stderr, "sync_driver: ctinsert: SRC and DST_BASE are IPv4 addresses\n");
		return 2;
	}
	rc = parse_load(argv + 2, argc > 5, &count, &rate, &base, &times);
	if (rc)
		return rc;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0) {
		fprintf(stderr, "sync_driver: netlink socket: %s\n", strerror(errno));
		free(times);
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	t0 = now_s();
	for (unsigned long long i = 0; i < count;) {
		unsigned long long first = i;
		double t;

		if (rate) {
			double due = t0 + (double)i / (double)rate;

			if (due > now_s())
				sleep_until(due);
		}
		b.len = 0;
		for (unsigned int k = 0; k < CT_BATCH && i < count; k++, i++)
			put_ct_new(&b, seq++, src.s_addr, dst_base.s_addr, base + i);
		while (sendto(fd, b.data, b.len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) <
		       0) {
			if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
				fprintf(stderr, "sync_driver: ctnetlink: %s\n", strerror(errno));
				close(fd);
				free(times);
				return 1;
			}
		}
		t = now_s();
		for (unsigned long long j = first; times && j < i; j++)
			times[j] = t;
		errors += drain_errors(fd, &first_err);
	}
	errors += drain_errors(fd, &first_err);
	printf("count=%llu\ninsert_s=%.6f\nerrors=%llu\n", count, now_s() - t0, errors);
	if (errors)
		fprintf(stderr, "sync_driver: ctinsert: %llu entries refused, first: %s\n", errors,
			strerror(first_err));
	close(fd);
	rc = errors ? 1 : 0;
	if (times && write_times(argv[5], times, count))
		rc = 1;
	free(times);
	return rc;
}
