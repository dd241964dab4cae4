/* SPDX-License-Identifier: BSD-2-Clause */
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

void defer_init(struct defer_state *d, int queue_fd, int xdp_fd, unsigned int timeout_ms)
{
	memset(d, 0, sizeof(*d));
	d->queue_fd = queue_fd;
	d->xdp_fd = xdp_fd;
	d->packet_fd = -1;
	d->timeout_ns = (__u64)timeout_ms * 1000000ULL;
	htab_init(&d->acked, sizeof(struct pfsync_key), sizeof(__u8));
}

void defer_free(struct defer_state *d)
{
	htab_free(&d->acked);
	if (d->packet_fd >= 0)
		close(d->packet_fd);
	d->packet_fd = -1;
}

void defer_held(struct agent *a)
{
	a->defer.pending++;
}

void defer_ack(struct agent *a, const struct pfsync_key *key)
{
	int created;

	if (a->defer.pending && !htab_put(&a->defer.acked, key, &created))
		log_err("defer: out of memory");
}

/* the frame goes through the XDP program again, live: XDP_PASS enters the stack */
static int reinject_ingress(struct defer_state *d, struct pfsync_deferred *h)
{
	struct xdp_md ctx = {.data_end = h->len, .ingress_ifindex = h->ifindex};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = h->data, .data_size_in = h->len,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);

	if (d->xdp_fd < 0)
		return -EOPNOTSUPP;
	return bpf_prog_test_run_opts(d->xdp_fd, &opts) ? -errno : 0;
}

static int resend_egress(struct defer_state *d, struct pfsync_deferred *h)
{
	struct sockaddr_ll to = {
	    .sll_family = AF_PACKET,
	    .sll_ifindex = (int)h->ifindex,
	    .sll_halen = ETH_ALEN,
	};

	if (d->packet_fd < 0)
		d->packet_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (d->packet_fd < 0)
		return -errno;
	memcpy(to.sll_addr, h->data, ETH_ALEN);
	if (sendto(d->packet_fd, h->data, h->len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

/* the state is no longer waiting: clear the marks the datapath set */
static void unmark(struct agent *a, const struct pfsync_key *key)
{
	struct pfsync_state_value v;

	if (a->store.lookup(a->store.ctx, key, &v) != 0)
		return;
	v.flags &= ~PFSYNC_SF_DEFERRED;
	v.state_flags &= ~PFSTATE_ACK;
	a->store.update(a->store.ctx, key, &v);
}

static void release(struct agent *a, struct pfsync_deferred *h, int acked)
{
	struct defer_state *d = &a->defer;
	int rc;

	unmark(a, &h->key);
	if (h->len == 0 || h->len > PFSYNC_DEFER_PKT_MAX)
		rc = -EINVAL;
	else if (h->at_egress)
		rc = resend_egress(d, h);
	else
		rc = reinject_ingress(d, h);
	if (rc) {
		d->release_failed++;
		log_debug("defer: releasing a held packet failed: %s", strerror(-rc));
	} else if (acked) {
		d->released_ack++;
	} else {
		d->released_timeout++;
	}
	htab_del(&d->acked, &h->key);
	if (d->pending)
		d->pending--;
}

__u64 defer_run(struct agent *a)
{
	struct defer_state *d = &a->defer;
	struct pfsync_deferred h;

	if (d->queue_fd < 0)
		return 0;
	/* FIFO: the head decides; later packets were held later */
	while (bpf_map_lookup_elem(d->queue_fd, NULL, &h) == 0) {
		int acked = htab_get(&d->acked, &h.key) != NULL;

		if (!acked && a->now_ns < h.held_ns + d->timeout_ns)
			return h.held_ns + d->timeout_ns;
		if (bpf_map_lookup_and_delete_elem(d->queue_fd, NULL, &h) != 0)
			break;
		release(a, &h, acked || htab_get(&d->acked, &h.key) != NULL);
	}
	d->pending = 0;
	htab_clear(&d->acked);
	return 0;
}
