/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * How held packets go back on their way (defer.h holds them, this sends
 * them). At egress one way: a packet socket on the frame's interface that
 * bypasses the qdisc layer (and with it tc egress, which held it). At
 * ingress the frame must enter the stack on its interface as if received
 * there, without the datapath tracking it again, and never leave on a
 * wire; two paths, each probed at start with a throw-away frame:
 *  - live: BPF_PROG_RUN of the XDP program in live-frame mode, the frame
 *    behind PFSYNC_DEFER_META, on which the program passes it (5.18+, and a
 *    kernel that allows live-frame test runs);
 *  - redirect: a packet socket on the loopback device sends the frame with
 *    SO_MARK = PFSYNC_RELEASE_MARK and SO_PRIORITY = its interface;
 *    pfsync_release at lo's tc egress redirects it into that interface's
 *    ingress (clsact and bpf_redirect, 4.5+; the agent attaches it).
 */
#ifndef AGENT_RELEASE_H
#define AGENT_RELEASE_H

#include <stddef.h>
#include <linux/types.h>

#include "pfsync_common.h"

/* --defer-release */
enum release_mode {
	RELEASE_MODE_AUTO = 0, /* redirect, else live */
	RELEASE_MODE_LIVE,
	RELEASE_MODE_REDIRECT,
};

/* the ingress path in use */
enum release_path {
	RELEASE_PATH_NONE = 0,
	RELEASE_PATH_LIVE,
	RELEASE_PATH_REDIRECT,
};

/* "auto", "live", "redirect": 0, or -1 for anything else */
int release_mode_parse(const char *s, enum release_mode *out);
const char *release_path_name(enum release_path path);

struct release_io {
	enum release_path ingress;
	int xdp_fd;	    /* live: the XDP program run on held frames */
	int lo_fd;	    /* redirect: packet socket on lo, marked */
	int lo_ifindex;	    /* redirect: lo */
	int lo_priority;    /* redirect: the target set on lo_fd now */
	int egress_fd;	    /* packet socket for frames held at egress */
	int release_ctr_fd; /* redirect: pfsync_release_ctr */
};

void release_io_init(struct release_io *r);
void release_io_close(struct release_io *r);

/*
 * Probes: one throw-away frame each (an unknown EtherType the stack drops).
 * 0 when the path works, else -errno with *why naming the step refused.
 */
int release_probe_live(struct release_io *r, int xdp_fd, const char **why);
/* the pfsync_release program must already be attached at lo's tc egress */
int release_probe_redirect(struct release_io *r, int release_ctr_fd, const char **why);

/* what pfsync_release did (redirect path only; else zeros and -ENOENT) */
int release_redirect_counters(const struct release_io *r, struct pfsync_release_counters *out);

/* sends h on the way it was held on; 0 or -errno */
int release_send(struct release_io *r, const struct pfsync_deferred *h);

#endif /* AGENT_RELEASE_H */
