/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What the pfsync-agent process holds beyond struct agent: the loaded BPF
 * object, its maps and attachments, the event loop's descriptors. main.c
 * owns it; datapath.c sets its datapath up.
 */
#ifndef AGENT_PROCESS_H
#define AGENT_PROCESS_H

#include "agent.h"
#include "attach.h"
#include "pfsync_loader.h"
#include "pfsync_maps.h"

struct process {
	struct agent a;
	struct pfsync_bpf bpf;
	struct pfsync_maps maps;
	struct bpf_store bstore;
	struct ring_buffer *rb;
	struct attachment att[AGENT_MAX_ATTACH];
	unsigned int natt;
	struct attachment lo; /* pfsync_release at lo's tc egress (redirect release) */
	int epfd;
	int sigfd;
	int bpf_loaded, maps_open;
	enum bulk_req_state notified_bulk; /* last bulk state told to systemd */
	int notified_ready;
	int rb_consumed;      /* records the last turn took from the ringbuf */
	int rb_held;	      /* the ringbuf is out of the epoll set (see intake_hold) */
	__u64 next_ifaddr_ns; /* next look at nat-to (IF) addresses (ruleset.c) */
};

/* load, open the maps, write identity and configuration, attach; 0 or -errno */
int process_setup_datapath(struct process *p);
/* before detaching at: redirects to an interface without the programs stop */
void process_fastpath_if_leave(struct process *p, const struct attachment *at);

#endif /* AGENT_PROCESS_H */
