/* SPDX-License-Identifier: BSD-2-Clause */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "release.h"

/* IEEE 802 local experimental EtherType: no protocol handler takes it */
#define PROBE_ETHERTYPE 0x88b5
#define PROBE_LEN	60

int release_mode_parse(const char *s, enum release_mode *out)
{
	if (!strcmp(s, "auto"))
		*out = RELEASE_MODE_AUTO;
	else if (!strcmp(s, "live"))
		*out = RELEASE_MODE_LIVE;
	else if (!strcmp(s, "redirect"))
		*out = RELEASE_MODE_REDIRECT;
	else
		return -1;
	return 0;
}

const char *release_path_name(enum release_path path)
{
	switch (path) {
	case RELEASE_PATH_LIVE:
		return "live";
	case RELEASE_PATH_REDIRECT:
		return "redirect";
	default:
		return "none";
	}
}

void release_io_init(struct release_io *r)
{
	memset(r, 0, sizeof(*r));
	r->xdp_fd = r->lo_fd = r->egress_fd = r->release_ctr_fd = -1;
	r->lo_priority = -1;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void release_io_close(struct release_io *r)
{
	close_fd(&r->lo_fd);
	close_fd(&r->egress_fd);
	r->ingress = RELEASE_PATH_NONE;
}

static int packet_send(int fd, int ifindex, const __u8 *frame, size_t len)
{
	struct sockaddr_ll to = {
	    .sll_family = AF_PACKET,
	    .sll_ifindex = ifindex,
	    .sll_halen = ETH_ALEN,
	};

	memcpy(to.sll_addr, frame, ETH_ALEN);
	if (sendto(fd, frame, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

/* ---- live: the XDP program run on the frame, live ------------------------------- */

static int send_live(int xdp_fd, const struct pfsync_deferred *h)
{
	static __u8 buf[PFSYNC_DEFER_META_LEN + PFSYNC_DEFER_PKT_MAX];
	__u32 meta = PFSYNC_DEFER_META;
	struct xdp_md ctx = {.data = PFSYNC_DEFER_META_LEN,
			     .data_end = PFSYNC_DEFER_META_LEN + h->len,
			     .ingress_ifindex = h->ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = buf,
		    .data_size_in = PFSYNC_DEFER_META_LEN + h->len, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = 1, .flags = BPF_F_TEST_XDP_LIVE_FRAMES);

	if (xdp_fd < 0)
		return -EOPNOTSUPP;
	memset(buf, 0, PFSYNC_DEFER_META_LEN);
	memcpy(buf, &meta, sizeof(meta));
	memcpy(buf + PFSYNC_DEFER_META_LEN, h->data, h->len);
	return bpf_prog_test_run_opts(xdp_fd, &opts) ? -errno : 0;
}

/* ---- redirect: a marked frame on lo, redirected by pfsync_release --------------- */

static int open_lo_socket(struct release_io *r, const char **why)
{
	int mark = (int)PFSYNC_RELEASE_MARK;

	r->lo_ifindex = (int)if_nametoindex("lo");
	if (!r->lo_ifindex) {
		*why = "no loopback device in this namespace";
		return -ENODEV;
	}
	r->lo_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (r->lo_fd < 0) {
		*why = "packet socket";
		return -errno;
	}
	/* no PACKET_QDISC_BYPASS: the frame must meet lo's tc egress */
	if (setsockopt(r->lo_fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark))) {
		*why = "SO_MARK on the packet socket";
		return -errno;
	}
	return 0;
}

/* the target interface travels as the socket's priority (one call per change) */
static int set_target(struct release_io *r, int ifindex)
{
	if (r->lo_priority == ifindex)
		return 0;
	if (setsockopt(r->lo_fd, SOL_SOCKET, SO_PRIORITY, &ifindex, sizeof(ifindex)))
		return -errno;
	r->lo_priority = ifindex;
	return 0;
}

static int send_redirect(struct release_io *r, const struct pfsync_deferred *h)
{
	int rc;

	if (r->lo_fd < 0)
		return -EOPNOTSUPP;
	if (h->ifindex == PFSYNC_RELEASE_PROBE_IFX || h->ifindex > 0x7fffffffu)
		return -EINVAL;
	rc = set_target(r, (int)h->ifindex);
	return rc ?: packet_send(r->lo_fd, r->lo_ifindex, h->data, h->len);
}

/* pfsync_release_ctr summed over the CPUs */
static int counters_sum(int ctr_fd, struct pfsync_release_counters *out)
{
	int ncpu = libbpf_num_possible_cpus(), rc = 0;
	struct pfsync_release_counters *per;
	__u32 zero = 0;

	memset(out, 0, sizeof(*out));
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	per = calloc((size_t)ncpu, sizeof(*per));
	if (!per)
		return -ENOMEM;
	if (bpf_map_lookup_elem(ctr_fd, &zero, per) == 0) {
		for (int i = 0; i < ncpu; i++) {
			out->redirected += per[i].redirected;
			out->refused += per[i].refused;
			out->probes += per[i].probes;
		}
	} else {
		rc = -errno;
	}
	free(per);
	return rc;
}

int release_redirect_counters(const struct release_io *r, struct pfsync_release_counters *out)
{
	if (r->ingress != RELEASE_PATH_REDIRECT || r->release_ctr_fd < 0) {
		memset(out, 0, sizeof(*out));
		return -ENOENT;
	}
	return counters_sum(r->release_ctr_fd, out);
}

/* probes the program dropped and counted; -errno on failure */
static long long probes_seen(int ctr_fd)
{
	struct pfsync_release_counters c;
	int rc = counters_sum(ctr_fd, &c);

	return rc ? rc : (long long)c.probes;
}

/* ---- probes ---------------------------------------------------------------------- */

static void probe_frame(struct pfsync_deferred *h, __u32 ifindex)
{
	memset(h, 0, sizeof(*h));
	h->ifindex = ifindex;
	h->len = PROBE_LEN;
	h->data[6] = 0x02; /* source: locally administered, dest all zero */
	h->data[12] = PROBE_ETHERTYPE >> 8;
	h->data[13] = PROBE_ETHERTYPE & 0xff;
}

int release_probe_live(struct release_io *r, int xdp_fd, const char **why)
{
	static struct pfsync_deferred probe;
	__u32 lo = if_nametoindex("lo");
	int rc;

	if (!lo) {
		*why = "no loopback device in this namespace";
		return -ENODEV;
	}
	probe_frame(&probe, lo);
	rc = send_live(xdp_fd, &probe);
	if (rc) {
		*why = "BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES";
		return rc;
	}
	r->xdp_fd = xdp_fd;
	r->ingress = RELEASE_PATH_LIVE;
	return 0;
}

int release_probe_redirect(struct release_io *r, int release_ctr_fd, const char **why)
{
	static struct pfsync_deferred probe;
	long long before, after;
	int rc = open_lo_socket(r, why);

	if (rc)
		goto fail;
	before = probes_seen(release_ctr_fd);
	probe_frame(&probe, PFSYNC_RELEASE_PROBE_IFX);
	/* set_target, not send_redirect: that one refuses the probe's target */
	rc = set_target(r, PFSYNC_RELEASE_PROBE_IFX);
	rc = rc ?: packet_send(r->lo_fd, r->lo_ifindex, probe.data, probe.len);
	if (rc == -ENOBUFS)
		rc = 0; /* the program dropped it, as it drops every probe: counted below */
	if (rc) {
		*why = rc == -ENETDOWN ? "the loopback device is down" : "sending on lo";
		goto fail;
	}
	/* lo's tc egress runs in the sender's context: counted by now */
	after = probes_seen(release_ctr_fd);
	if (before < 0 || after != before + 1) {
		*why = "the probe frame did not reach pfsync_release at lo's tc egress";
		rc = before < 0 ? (int)before : -EPROTO;
		goto fail;
	}
	r->release_ctr_fd = release_ctr_fd;
	r->ingress = RELEASE_PATH_REDIRECT;
	return 0;
fail:
	close_fd(&r->lo_fd);
	return rc;
}

/* ---- egress: straight out of the interface, past tc egress ----------------------- */

static int send_egress(struct release_io *r, const struct pfsync_deferred *h)
{
	if (r->egress_fd < 0) {
		int one = 1;

		r->egress_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
		if (r->egress_fd < 0)
			return -errno;
		if (setsockopt(r->egress_fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)))
			log_debug("defer: PACKET_QDISC_BYPASS: %s", strerror(errno));
	}
	return packet_send(r->egress_fd, (int)h->ifindex, h->data, h->len);
}

int release_send(struct release_io *r, const struct pfsync_deferred *h)
{
	if (h->at_egress)
		return send_egress(r, h);
	switch (r->ingress) {
	case RELEASE_PATH_LIVE:
		return send_live(r->xdp_fd, h);
	case RELEASE_PATH_REDIRECT:
		return send_redirect(r, h);
	default:
		return -EOPNOTSUPP;
	}
}
