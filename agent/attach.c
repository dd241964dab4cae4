/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <linux/if_link.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>

#include "attach.h"
#include "log.h"

/*
 * Where the egress filter goes: always here, so that a run finds the one a
 * crashed run left and replaces it (kernel-chosen preferences gave each
 * restart a filter of its own). The preference is an unusual one, away
 * from tc's own choices (49152 and down) and the small numbers people pick.
 */
#define ATTACH_TC_HANDLE 1
#define ATTACH_TC_PRIO	 0x7053

#define XDP_PROG_NAME "pfsync_xdp"

int attach_libxdp_log(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	char line[512];

	if (level != LIBXDP_DEBUG && agent_log_level >= LOG_LVL_DEBUG) {
		vsnprintf(line, sizeof(line), fmt, ap);
		line[strcspn(line, "\n")] = '\0';
		log_debug("%s", line);
	}
	return 0;
}

/*
 * libbpf messages that are expected failures (libxdp probing its
 * dispatcher, an existing clsact, a filter not there yet): -v only
 */
int attach_libbpf_debug_only(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return attach_libxdp_log(level == LIBBPF_WARN ? LIBXDP_WARN : LIBXDP_DEBUG, fmt, ap);
}

/*
 * A libxdp dispatcher left by a crashed run still holds our program: it
 * goes before ours is added again, or each restart would run the datapath
 * once more per packet. (Single-program attach is replaced in place.)
 */
static void drop_stale_dispatched(struct attachment *at)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(at->ifindex);
	struct xdp_program *prog, *next;

	if (!mp || libxdp_get_error(mp))
		return;
	if (!xdp_multiprog__is_legacy(mp)) {
		for (prog = xdp_multiprog__next_prog(NULL, mp); prog; prog = next) {
			next = xdp_multiprog__next_prog(prog, mp);
			if (strcmp(xdp_program__name(prog), XDP_PROG_NAME))
				continue;
			if (xdp_program__detach(prog, at->ifindex, xdp_multiprog__attach_mode(mp),
						0) == 0)
				log_info("removed a stale %s from the XDP dispatcher on %s",
					 XDP_PROG_NAME, at->ifname);
		}
	}
	xdp_multiprog__close(mp);
}

static int attach_xdp_libxdp(struct attachment *at, struct bpf_object *obj)
{
	int rc;

	drop_stale_dispatched(at);
	at->xdp = xdp_program__from_bpf_obj(obj, "xdp");
	if (at->xdp && !libxdp_get_error(at->xdp)) {
		rc = xdp_program__attach(at->xdp, at->ifindex, XDP_MODE_UNSPEC, 0);
		if (rc == 0) {
			at->xdp_attached = 1;
			at->xdp_mode = xdp_program__is_attached(at->xdp, at->ifindex);
			return 0;
		}
		log_debug("libxdp attach on %s: %s; using bpf_xdp_attach", at->ifname,
			  strerror(-rc));
		xdp_program__close(at->xdp);
	}
	at->xdp = NULL;
	return -EOPNOTSUPP;
}

static int attach_xdp(struct attachment *at, struct bpf_object *obj)
{
	int rc = attach_xdp_libxdp(at, obj);

	if (rc == 0)
		return 0;
	/* no flags: a program already there (a crashed run's) is replaced */
	rc = bpf_xdp_attach(at->ifindex, at->xdp_fd, 0, NULL);
	if (rc) {
		log_err("attaching XDP to %s: %s", at->ifname, strerror(-rc));
		return rc;
	}
	at->xdp_attached = 1;
	return 0;
}

static void tc_opts_at_our_place(struct bpf_tc_opts *o, int prog_fd, __u32 flags)
{
	memset(o, 0, sizeof(*o));
	o->sz = sizeof(*o);
	o->handle = ATTACH_TC_HANDLE;
	o->priority = ATTACH_TC_PRIO;
	o->prog_fd = prog_fd;
	o->flags = flags;
}

static int attach_tc(struct attachment *at, int tc_fd)
{
	struct bpf_tc_opts found;
	int rc;

	memset(&at->hook, 0, sizeof(at->hook));
	at->hook.sz = sizeof(at->hook);
	at->hook.ifindex = at->ifindex;
	at->hook.attach_point = BPF_TC_EGRESS;
	rc = bpf_tc_hook_create(&at->hook);
	if (rc && rc != -EEXIST) {
		log_err("creating clsact on %s: %s", at->ifname, strerror(-rc));
		return rc;
	}
	at->hook_created = rc == 0;
	tc_opts_at_our_place(&found, 0, 0);
	at->replaced = !at->hook_created && bpf_tc_query(&at->hook, &found) == 0;
	tc_opts_at_our_place(&at->tc, tc_fd, BPF_TC_F_REPLACE);
	rc = bpf_tc_attach(&at->hook, &at->tc);
	if (rc) {
		log_err("attaching tc egress to %s: %s", at->ifname, strerror(-rc));
		return rc;
	}
	at->tc_attached = 1;
	if (at->replaced)
		log_info("replaced the tc egress program (id %u) a previous run left on %s",
			 found.prog_id, at->ifname);
	return 0;
}

int attach_iface(struct attachment *at, const char *ifname, struct bpf_object *obj, int xdp_fd,
		 int tc_fd)
{
	libbpf_print_fn_t prev;
	int rc;

	memset(at, 0, sizeof(*at));
	snprintf(at->ifname, sizeof(at->ifname), "%s", ifname);
	at->xdp_fd = xdp_fd;
	at->ifindex = (int)if_nametoindex(at->ifname);
	if (!at->ifindex) {
		log_err("--attach %s: no such interface", at->ifname);
		return -ENODEV;
	}
	prev = libbpf_set_print(attach_libbpf_debug_only);
	rc = attach_xdp(at, obj);
	rc = rc ?: attach_tc(at, tc_fd);
	libbpf_set_print(prev);
	if (rc == 0)
		log_info("attached XDP and tc egress to %s", at->ifname);
	return rc;
}

int attach_egress_only(struct attachment *at, const char *ifname, int prog_fd)
{
	libbpf_print_fn_t prev;
	int rc;

	memset(at, 0, sizeof(*at));
	snprintf(at->ifname, sizeof(at->ifname), "%s", ifname);
	at->ifindex = (int)if_nametoindex(at->ifname);
	if (!at->ifindex)
		return -ENODEV;
	prev = libbpf_set_print(attach_libbpf_debug_only);
	rc = attach_tc(at, prog_fd);
	libbpf_set_print(prev);
	return rc;
}

void attach_remove(struct attachment *at)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, ours, .old_prog_fd = at->xdp_fd);

	if (at->tc_attached) {
		tc_opts_at_our_place(&at->tc, 0, 0);
		bpf_tc_detach(&at->hook, &at->tc);
		at->tc_attached = 0;
	}
	if (at->hook_created) {
		/* the clsact qdisc was ours: remove it whole */
		at->hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&at->hook);
		at->hook_created = 0;
	}
	if (at->xdp_attached) {
		if (at->xdp)
			xdp_program__detach(at->xdp, at->ifindex, at->xdp_mode, 0);
		else /* only if it is still ours: a later attach by someone else stays */
			bpf_xdp_detach(at->ifindex, XDP_FLAGS_REPLACE, &ours);
		at->xdp_attached = 0;
	}
	if (at->xdp)
		xdp_program__close(at->xdp);
	at->xdp = NULL;
}
