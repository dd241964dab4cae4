/* SPDX-License-Identifier: BSD-2-Clause */
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"

#define CTL_CLIENT_TIMEOUT_NS 5000000000ULL

static int make_parent_dir(const char *path)
{
	char dir[sizeof(((struct ctl_server *)0)->path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0750) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* a socket file left by a dead agent is replaced; a live agent's is not */
static int path_in_use(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int live;

	if (fd < 0)
		return 0;
	live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return live;
}

int ctl_open(struct ctl_server *c, const char *path, int epfd)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = CTL_EP_LISTEN};
	int rc;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->epfd = epfd;
	for (unsigned int i = 0; i < CTL_MAX_CLIENTS; i++)
		c->clients[i].fd = -1;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("--ctl %s: path too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	rc = make_parent_dir(path);
	if (rc) {
		log_err("--ctl %s: cannot create its directory: %s", path, strerror(-rc));
		return rc;
	}
	if (path_in_use(&sun)) {
		log_err("--ctl %s: another agent is listening there", path);
		return -EADDRINUSE;
	}
	unlink(path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    chmod(path, 0660) != 0 || listen(c->fd, 16) != 0 ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		rc = -errno;
		log_err("--ctl %s: %s", path, strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return rc;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	return 0;
}

static void client_close(struct ctl_server *c, struct ctl_client *cl)
{
	if (cl->fd < 0)
		return;
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
	close(cl->fd);
	cl->fd = -1;
	cl->len = 0;
}

void ctl_close(struct ctl_server *c)
{
	for (unsigned int i = 0; i < CTL_MAX_CLIENTS; i++)
		client_close(c, &c->clients[i]);
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
		unlink(c->path);
	}
}

void ctl_on_listen(struct agent *a)
{
	struct ctl_server *c = &a->ctl;

	for (;;) {
		int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctl_client *slot = NULL;

		if (fd < 0)
			return;
		for (unsigned int i = 0; i < CTL_MAX_CLIENTS && !slot; i++) {
			if (c->clients[i].fd < 0) {
				struct epoll_event ev = {.events = EPOLLIN,
							 .data.u64 = CTL_EP_CLIENT + i};

				slot = &c->clients[i];
				if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
					slot = NULL;
			}
		}
		if (!slot) {
			static const char busy[] = "error: agent busy, try again\n";

			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL) < 0)
				log_debug("control client: %s", strerror(errno));
			close(fd);
			continue;
		}
		slot->fd = fd;
		slot->len = 0;
		slot->since_ns = a->now_ns;
	}
}

/* blocking write of the whole reply (small, and the client is reading) */
static void reply_write(int fd, const char *buf, size_t len)
{
	int flags = fcntl(fd, F_GETFL);
	struct timeval tv = {.tv_sec = 2};

	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void client_run(struct agent *a, struct ctl_client *cl)
{
	char *reply = NULL;
	size_t reply_len = 0;
	FILE *out = open_memstream(&reply, &reply_len);

	cl->line[cl->len] = '\0';
	cl->line[strcspn(cl->line, "\r\n")] = '\0';
	if (!out) {
		reply_write(cl->fd, "error: out of memory\n", 21);
		return;
	}
	ctl_execute(a, cl->line, out);
	fclose(out);
	reply_write(cl->fd, reply, reply_len);
	free(reply);
}

void ctl_on_client(struct agent *a, unsigned int slot)
{
	struct ctl_client *cl;

	if (slot >= CTL_MAX_CLIENTS || a->ctl.clients[slot].fd < 0)
		return;
	cl = &a->ctl.clients[slot];
	for (;;) {
		ssize_t n = read(cl->fd, cl->line + cl->len, sizeof(cl->line) - 1 - cl->len);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n > 0)
			cl->len += (size_t)n;
		/* a whole line, EOF (write side shut) or a full buffer: answer */
		if (n <= 0 || memchr(cl->line, '\n', cl->len) || cl->len == sizeof(cl->line) - 1) {
			if (n >= 0 && cl->len > 0)
				client_run(a, cl);
			client_close(&a->ctl, cl);
			return;
		}
	}
}

void ctl_expire(struct agent *a)
{
	for (unsigned int i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *cl = &a->ctl.clients[i];

		if (cl->fd >= 0 && a->now_ns - cl->since_ns > CTL_CLIENT_TIMEOUT_NS)
			client_close(&a->ctl, cl);
	}
}

/* ---- commands ------------------------------------------------------------ */
/* the datapath's value: `pfsyncctl set maxupd` may have changed it since start */
static unsigned int current_maxupd(const struct agent *a)
{
	struct pfsync_config cfg;
	__u32 zero = 0;

	if (a->config_fd >= 0 && bpf_map_lookup_elem(a->config_fd, &zero, &cfg) == 0 && cfg.maxupd)
		return cfg.maxupd;
	return a->opts.maxupd;
}
static void status_release_text(struct agent *a, FILE *out)
{
	struct pfsync_release_counters rc;

	fprintf(out, "defer release: %s at ingress", release_path_name(a->defer.io.ingress));
	if (release_redirect_counters(&a->defer.io, &rc) == 0)
		fprintf(out, " (%llu redirected, %llu refused)", (unsigned long long)rc.redirected,
			(unsigned long long)rc.refused);
	fprintf(out, ", packet socket at egress\n");
}

static void status_text(struct agent *a, FILE *out)
{
	char peers[SYNC_MAX_PEERS * (SYNC_ADDRSTRLEN + 1)];

	fprintf(out, "pfsync: syncdev: %s", a->sock.ifname);
	if (*agent_peer_list(a, peers, sizeof(peers)))
		fprintf(out, " syncpeer: %s", peers);
	fprintf(out, " maxupd: %u defer: %s\n", current_maxupd(a), a->opts.defer ? "on" : "off");
	agent_transport_status(a, out, 0);
	fprintf(out, "bulk: %s\n", bulk_req_state_name(a->bulk_req.state));
	if (a->bulk_req.state == BULK_REQ_REQUESTED)
		fprintf(out, "bulk tries: %u of %u\n", a->bulk_req.tries, BULK_REQ_MAX_TRIES);
	fprintf(out, "bulk send: %s", a->walker.active ? "in progress" : "idle");
	fprintf(out, " (%llu served, last %llu states in %llu ms)\n",
		(unsigned long long)a->walker.runs, (unsigned long long)a->walker.last_states,
		(unsigned long long)a->walker.last_duration_ns / 1000000);
	if (a->opts.defer)
		status_release_text(a, out);
	if (a->opts.defer)
		fprintf(out, "defer: %u held, %llu released on ack, %llu on timeout, %llu failed\n",
			a->defer.pending, (unsigned long long)a->defer.released_ack,
			(unsigned long long)a->defer.released_timeout,
			(unsigned long long)a->defer.release_failed);
	agent_repair_status(a, out, 0);
	fprintf(out, "hostid: 0x%08x\n", a->hostid);
	fprintf(out, "mtu: %u", a->sock.link_mtu);
	if (a->sock.link_mtu != a->sock.mtu) /* room left for an IPv6 header or an auth trailer */
		fprintf(out, " (packets filled to %u as IPv4)", a->sock.mtu);
	fprintf(out, "\n");
	fprintf(out, "pfsync-if: %s\n", a->tun.fd >= 0 ? a->tun.name : "none");
	fprintf(out, "states indexed: %zu (index %zu KiB)\n", index_count(&a->index),
		index_bytes(&a->index) / 1024);
	fprintf(out, "pending messages: %zu\n", sendq_pending(&a->sendq));
	fprintf(out, "receive drops: %u (bulk updates asked to catch up: %llu)\n",
		a->sock.rx_dropped, (unsigned long long)a->bulk_resyncs);
	fprintf(out,
		"ringbuf records: %llu (bad %llu, lost %llu in %llu reports, %llu of them "
		"covered by an earlier rebuild)\n",
		(unsigned long long)a->records, (unsigned long long)a->records_bad,
		(unsigned long long)a->records_lost, (unsigned long long)a->lost_events,
		(unsigned long long)a->lost_covered);
	fprintf(out, "uptime: %llu s\n",
		(unsigned long long)(a->now_ns - a->started_ns) / 1000000000ULL);
}

static void status_json(struct agent *a, FILE *out)
{
	char peers[SYNC_MAX_PEERS * (SYNC_ADDRSTRLEN + 1)];
	struct pfsync_release_counters rc;

	fprintf(out, "{\"syncdev\":\"%s\",", a->sock.ifname);
	if (*agent_peer_list(a, peers, sizeof(peers)))
		fprintf(out, "\"syncpeer\":\"%s\",", peers);
	else
		fprintf(out, "\"syncpeer\":null,");
	agent_transport_status(a, out, 1);
	agent_repair_status(a, out, 1);
	fprintf(out, "\"maxupd\":%u,\"defer\":%s,\"hostid\":%u,\"mtu\":%u,", current_maxupd(a),
		a->opts.defer ? "true" : "false", a->hostid, a->sock.link_mtu);
	fprintf(out, "\"bulk\":\"%s\",\"bulk_tries\":%u,\"bulk_sending\":%s,\"bulks_served\":%llu,",
		bulk_req_state_name(a->bulk_req.state), a->bulk_req.tries,
		a->walker.active ? "true" : "false", (unsigned long long)a->walker.runs);
	fprintf(out, "\"bulk_read\":\"%s\",", a->table_iter ? "iter" : "batch");
	release_redirect_counters(&a->defer.io, &rc);
	fprintf(out, "\"defer_redirected\":%llu,\"defer_redirect_refused\":%llu,",
		(unsigned long long)rc.redirected, (unsigned long long)rc.refused);
	fprintf(out,
		"\"defer_release\":\"%s\",\"defer_held\":%u,\"defer_released_ack\":%llu,"
		"\"defer_released_timeout\":%llu,\"defer_release_failed\":%llu,",
		release_path_name(a->defer.io.ingress), a->defer.pending,
		(unsigned long long)a->defer.released_ack,
		(unsigned long long)a->defer.released_timeout,
		(unsigned long long)a->defer.release_failed);
	fprintf(out,
		"\"states_indexed\":%zu,\"index_bytes\":%zu,\"pending\":%zu,\"records\":%llu,"
		"\"records_lost\":%llu,\"loss_reports\":%llu,\"loss_reports_covered\":%llu,"
		"\"uptime_s\":%llu}\n",
		index_count(&a->index), index_bytes(&a->index), sendq_pending(&a->sendq),
		(unsigned long long)a->records, (unsigned long long)a->records_lost,
		(unsigned long long)a->lost_events, (unsigned long long)a->lost_covered,
		(unsigned long long)(a->now_ns - a->started_ns) / 1000000000ULL);
}

static int has_json_flag(const char *args)
{
	return strstr(args, "--json") != NULL;
}

/* `index`: the identity index checked against the whole table */
static int index_report(struct agent *a, FILE *out, int json)
{
	struct index_check c;

	if (intake_index_check(a, &c) != 0) {
		fprintf(out, "error: reading the state table failed\n");
		return -1;
	}
	if (json)
		fprintf(out,
			"{\"states\":%zu,\"nosync\":%zu,\"indexed\":%zu,\"matched\":%zu,"
			"\"missing\":%zu,\"stale\":%zu}\n",
			c.states, c.nosync, c.indexed, c.matched, c.missing, c.stale);
	else
		fprintf(out,
			"index: %zu entries for %zu states (%zu no-sync apart): %zu missing, %zu "
			"stale\n",
			c.indexed, c.states, c.nosync, c.missing, c.stale);
	return 0;
}

int ctl_execute(struct agent *a, const char *line, FILE *out)
{
	char cmd[32] = "";
	const char *args;
	size_t n;

	line += strspn(line, " \t");
	n = strcspn(line, " \t");
	if (n == 0 || n >= sizeof(cmd)) {
		fprintf(out, "error: empty or unknown command\n");
		return -1;
	}
	memcpy(cmd, line, n);
	args = line + n;
	if (!strcmp(cmd, "status")) {
		if (has_json_flag(args))
			status_json(a, out);
		else
			status_text(a, out);
	} else if (!strcmp(cmd, "stats")) {
		agent_transport_stats(a, out, has_json_flag(args));
	} else if (!strcmp(cmd, "flush")) {
		if (intake_flush_all(a) != 0) {
			fprintf(out, "error: flush failed\n");
			return -1;
		}
		fprintf(out, "flushed; CLR sent for creatorid 0x%08x\n", a->hostid);
	} else if (!strcmp(cmd, "bulk")) {
		bulk_request(a);
		fprintf(out, "bulk update requested\n");
	} else if (!strcmp(cmd, "index")) {
		return index_report(a, out, has_json_flag(args));
	} else {
		fprintf(out, "error: unknown command '%s' (status, stats, flush, bulk, index)\n",
			cmd);
		return -1;
	}
	return 0;
}
