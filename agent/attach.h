/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * --attach: the datapath's XDP program and tc egress filter on one
 * interface, and their removal. A run killed with -9 leaves both behind;
 * the next run replaces them instead of adding to them: the tc filter sits
 * at a fixed handle and preference (so it is found and replaced, never
 * added beside), XDP is replaced in place, and a libxdp dispatcher loses
 * the programs of ours it holds before ours goes in again.
 */
#ifndef AGENT_ATTACH_H
#define AGENT_ATTACH_H

#include <bpf/libbpf.h>
#include <net/if.h>
#include <xdp/libxdp.h>

struct attachment {
	char ifname[IF_NAMESIZE];
	int ifindex;
	struct xdp_program *xdp; /* libxdp handle, or NULL when attached by bpf_xdp_attach */
	int xdp_fd;		 /* the program attached (for a detach of ours only) */
	int xdp_attached;
	enum xdp_attach_mode xdp_mode;
	struct bpf_tc_hook hook;
	struct bpf_tc_opts tc;
	int tc_attached;
	int hook_created;
	int replaced; /* a previous run's filter was found and replaced */
};

/* XDP and tc egress of obj's programs on ifname; 0 or -errno (logged) */
int attach_iface(struct attachment *at, const char *ifname, struct bpf_object *obj, int xdp_fd,
		 int tc_fd);
/*
 * Only a tc egress filter, prog_fd, on ifname, at the same fixed place (the
 * defer release program on lo); 0 or -errno (logged), -ENODEV silently
 */
int attach_egress_only(struct attachment *at, const char *ifname, int prog_fd);
/* removes what attach_iface or attach_egress_only attached (the clsact qdisc too if it made it) */
void attach_remove(struct attachment *at);
/* libxdp's and libbpf's messages during attach only with -v */
int attach_libxdp_log(enum libxdp_print_level level, const char *fmt, va_list ap);
/* a libbpf print callback for expected failures (probes): -v only */
int attach_libbpf_debug_only(enum libbpf_print_level level, const char *fmt, va_list ap);

#endif /* AGENT_ATTACH_H */
