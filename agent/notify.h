/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * systemd's readiness protocol without libsystemd: one datagram of
 * "KEY=VALUE\n" lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path,
 * or "@name" for the abstract namespace). The agent sends READY=1 once its
 * bulk update has ended (done, or failed because no peer answered), so a
 * Type=notify unit, and whatever is ordered after it (keepalived), starts
 * only with the state table filled.
 */
#ifndef AGENT_NOTIFY_H
#define AGENT_NOTIFY_H

/* 0 sent, 1 not under a service manager (no $NOTIFY_SOCKET), or -errno */
int notify_send(const char *msg);

#endif /* AGENT_NOTIFY_H */
