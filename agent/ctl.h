/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Control socket (api.md): a client connects to the Unix stream socket,
 * writes one command line, shuts down its write side and reads the reply
 * until EOF. Replies starting with "error: " are failures.
 *   status [--json]   OpenBSD's ifconfig pfsync line, bulk state, counts
 *   stats [--json]    netstat -s -p pfsync counters + per-action counts
 *   flush             remove every state, tell peers with one CLR
 *   bulk              request a new bulk update
 */
#ifndef AGENT_CTL_H
#define AGENT_CTL_H

#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

#define CTL_MAX_CLIENTS 8
#define CTL_LINE_MAX	256
/* epoll data: the listener and each client slot */
#define CTL_EP_LISTEN 0x100
#define CTL_EP_CLIENT 0x200 /* + slot */

struct ctl_client {
	int fd; /* -1 = free slot */
	size_t len;
	__u64 since_ns;
	char line[CTL_LINE_MAX];
};

struct ctl_server {
	int fd;
	int epfd; /* the agent's epoll, clients are added to it */
	char path[108];
	struct ctl_client clients[CTL_MAX_CLIENTS];
};

struct agent;
/* creates the socket (and its directory); 0 or -errno after logging */
int ctl_open(struct ctl_server *c, const char *path, int epfd);
/* closes clients and the socket and removes the socket file */
void ctl_close(struct ctl_server *c);
void ctl_on_listen(struct agent *a);
void ctl_on_client(struct agent *a, unsigned int slot);
/* drops clients that never finished their line */
void ctl_expire(struct agent *a);
/* runs one command line, writing the reply to out; returns 0 or -1 (error reply) */
int ctl_execute(struct agent *a, const char *line, FILE *out);

#endif /* AGENT_CTL_H */
