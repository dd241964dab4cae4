/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pfsync-agent: datapath set-up (load, attach, identity), the
 * event loop and an orderly stop. Everything process-wide lives here; the
 * other agent/ files hold the logic and are linked into the unit tests.
 *
 * Latency and batching: every wake-up first drains what woke it (ringbuf
 * records, received packets, control requests), then asks the send queue
 * what is due. Inserts and deletes (and acks, request replies, maxupd) make
 * the queue send at the end of that same wake-up, so an idle agent puts a
 * lone insert on the wire within one loop turn, and a burst drained in one
 * wake-up shares packets. Packet-driven updates (UPD_C) wait and collapse
 * for up to 1 s, unless something urgent carries them earlier or they fill
 * a packet.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <xdp/libxdp.h>

#include "agent.h"
#include "attach.h"

#include "config.h"
#include "notify.h"
#include "opts.h"
#include "process.h"
#include "pfsync_loader.h"
#include "pfsync_maps.h"
#include "ruleset.h"

#define EP_RINGBUF    1
#define EP_SOCK	      2
#define EP_SIGNAL     3
#define RECV_PER_TURN 256
#define MAX_WAIT_MS   1000

/* ---- event loop ---------------------------------------------------------- */
static int epoll_add(int epfd, int fd, __u64 tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int setup_io(struct process *p)
{
	struct agent *a = &p->a;
	sigset_t mask;
	int rc;

	rc = agent_sock_open(a);
	if (rc)
		return rc;
	if (sendq_init(&a->sendq, a->sock.mtu) != 0)
		return -ENOMEM;
	agent_bind_sendq_io(a);
	if (agent_repair_init(a) != 0)
		return -ENOMEM;
	a->builder = pfsync_builder_new(a->sock.mtu);
	a->pkt = malloc(a->sock.mtu > AGENT_RXBUF ? a->sock.mtu : AGENT_RXBUF);
	a->rxbuf = malloc(AGENT_RXBUF);
	if (!a->builder || !a->pkt || !a->rxbuf)
		return -ENOMEM;
	a->tun.fd = -1;
	if (strcmp(a->opts.pfsync_if, "none") != 0 && tun_open(&a->tun, a->opts.pfsync_if) != 0)
		log_err("continuing without %s (no capture copies)", a->opts.pfsync_if);
	p->rb = ring_buffer__new(p->maps.events, intake_record, a, NULL);
	if (!p->rb) {
		log_err("opening the events ringbuf: %s", strerror(errno));
		return -errno;
	}
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->epfd < 0)
		return -errno;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	p->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	rc = p->sigfd < 0 ? -errno : 0;
	rc = rc ?: epoll_add(p->epfd, p->sigfd, EP_SIGNAL);
	rc = rc ?: epoll_add(p->epfd, ring_buffer__epoll_fd(p->rb), EP_RINGBUF);
	rc = rc ?: epoll_add(p->epfd, a->sock.fd, EP_SOCK);
	if (a->sock.has6)
		rc = rc ?: epoll_add(p->epfd, a->sock.fd6, EP_SOCK);
	if (rc)
		return rc;
	return ctl_open(&a->ctl, a->opts.ctl_path, p->epfd);
}

static void earliest(__u64 *deadline, __u64 t)
{
	if (t && (!*deadline || t < *deadline))
		*deadline = t;
}

static int wait_ms(struct agent *a)
{
	__u64 deadline = a->next_sweep_ns;
	__u64 now = agent_clock_ns();

	/*
	 * An expiry pass takes a step a millisecond; a walk goes on at once, or
	 * when its pace allows the next packet. A pass does not hold a walk
	 * back: sleeping its millisecond between walker turns (themselves at
	 * most WALKER_TURN_NS) halved a bulk update that overlapped a pass.
	 */
	if (a->sweep.active)
		earliest(&deadline, a->next_sweep_step_ns > now ? a->next_sweep_step_ns : now);
	earliest(&deadline, walker_deadline(a));
	earliest(&deadline, sendq_deadline(&a->sendq));
	earliest(&deadline, bulk_req_deadline(&a->bulk_req));
	earliest(&deadline, a->resync_due_ns);
	earliest(&deadline, a->next_defer_ns);
	earliest(&deadline, agent_repair_deadline(a));
	if (deadline <= now)
		return 0;
	if (deadline - now >= (__u64)MAX_WAIT_MS * 1000000)
		return MAX_WAIT_MS;
	return (int)((deadline - now + 999999) / 1000000);
}

#define IFADDR_CHECK_NS 1000000000ULL /* a second: what a DHCP renewal can wait */

/* nat-to (IF) rules follow their interface's address */
static void follow_ifaddr(struct process *p)
{
	if (p->a.now_ns < p->next_ifaddr_ns)
		return;
	p->next_ifaddr_ns = p->a.now_ns + IFADDR_CHECK_NS;
	agent_rules_follow_ifaddr(&p->maps);
}

/* SIGHUP (systemctl reload): the rules file again; a bad file keeps the old rules */
static void reload_rules(struct process *p)
{
	notify_send("RELOADING=1\nSTATUS=reloading the rules\n");
	if (!p->a.opts.rules_path)
		log_info("SIGHUP: no --rules file to reload");
	else
		agent_rules_load(&p->maps, p->a.opts.rules_path);
	p->notified_bulk = BULK_REQ_NONE; /* STATUS= again */
	if (p->notified_ready)
		notify_send("READY=1\n");
}

/*
 * Tells systemd how the bulk update goes (STATUS=) and READY=1 when it has
 * ended: done, or failed because no peer answered (a lone firewall must
 * come up too, as OpenBSD's pfsync does after its tries).
 */
static void notify_progress(struct process *p)
{
	enum bulk_req_state st = p->a.bulk_req.state;
	char msg[160];

	if (st == p->notified_bulk)
		return;
	p->notified_bulk = st;
	if (st == BULK_REQ_DONE || st == BULK_REQ_FAILED) {
		snprintf(msg, sizeof(msg), "%sSTATUS=bulk update %s, %zu states\n",
			 p->notified_ready ? "" : "READY=1\n", bulk_req_state_name(st),
			 index_count(&p->a.index));
		p->notified_ready = 1;
	} else {
		snprintf(msg, sizeof(msg), "STATUS=bulk update %s, %zu states\n",
			 bulk_req_state_name(st), index_count(&p->a.index));
	}
	notify_send(msg);
}

static void handle_event(struct process *p, __u64 tag)
{
	struct agent *a = &p->a;

	switch (tag) {
	case EP_RINGBUF: {
		int n = ring_buffer__consume(p->rb);

		p->rb_consumed += n > 0 ? n : 0;
		intake_settle(a);
		return;
	}
	case EP_SOCK:
		agent_receive(a, RECV_PER_TURN);
		return;
	case EP_SIGNAL: {
		struct signalfd_siginfo si;

		if (read(p->sigfd, &si, sizeof(si)) != sizeof(si))
			return;
		if (si.ssi_signo == SIGHUP) {
			reload_rules(p);
			return;
		}
		log_info("signal %u: stopping", si.ssi_signo);
		a->stop = 1;
		return;
	}
	case CTL_EP_LISTEN:
		ctl_on_listen(a);
		return;
	default:
		if (tag >= CTL_EP_CLIENT && tag < CTL_EP_CLIENT + CTL_MAX_CLIENTS)
			ctl_on_client(a, (unsigned int)(tag - CTL_EP_CLIENT));
	}
}

static void periodic(struct agent *a)
{
	a->next_defer_ns = defer_run(a);
	walker_run(a);
	intake_sweep(a); /* one bounded step: events are served in between */
	intake_poll_lost(a);
	bulk_tick(a);
	ctl_expire(a);
	/* last: whatever this turn queued shares the packets (see top of file) */
	agent_flush_sendq(a);
	agent_repair_tick(a); /* after the data: a beacon only when none went */
}

/*
 * During a burst each record would wake the loop (the ringbuf signals the
 * first record after the agent caught up), yet whatever it queues waits
 * for the send hold-off anyway. So after a turn that took a burst's worth
 * of records and sent, the ringbuf leaves the epoll set until the hold-off
 * ends: records gather there (no wakeups) and go out together, in fuller
 * packets. Returns the end of the hold, or 0 for none.
 */
#define INTAKE_HOLD_RECORDS 4

static __u64 intake_hold(struct process *p)
{
	const struct sendq *q = &p->a.sendq;
	__u64 now = agent_clock_ns();

	if (p->rb_consumed < INTAKE_HOLD_RECORDS || !q->last_send_ns ||
	    now >= q->last_send_ns + SENDQ_HOLDOFF_NS)
		return 0;
	return q->last_send_ns + SENDQ_HOLDOFF_NS;
}

static void intake_set_watch(struct process *p, int watch)
{
	struct epoll_event ev = {.events = watch ? EPOLLIN : 0, .data.u64 = EP_RINGBUF};

	if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, ring_buffer__epoll_fd(p->rb), &ev) == 0)
		p->rb_held = !watch;
}

static int wait_events(struct process *p, struct epoll_event *evs, int max)
{
	static int no_pwait2; /* kernels before 5.11 */
	__u64 hold = intake_hold(p);
	__u64 now, limit_ns;
	struct timespec ts;
	int ms = wait_ms(&p->a), n;

	if (hold && !p->rb_held)
		intake_set_watch(p, 0);
	if (!p->rb_held)
		return epoll_wait(p->epfd, evs, max, ms);
	/*
	 * Held: wake at the hold's end at the latest. No hold but still held
	 * (the watch could not be restored): look at the ringbuf every ms.
	 */
	now = agent_clock_ns();
	limit_ns = !hold ? 1000000 : hold > now ? hold - now : 0;
	if ((__u64)ms * 1000000 < limit_ns)
		limit_ns = (__u64)ms * 1000000;
	if (!no_pwait2) {
		ts.tv_sec = (time_t)(limit_ns / 1000000000);
		ts.tv_nsec = (long)(limit_ns % 1000000000);
		n = epoll_pwait2(p->epfd, evs, max, &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		no_pwait2 = 1;
	}
	return epoll_wait(p->epfd, evs, max, limit_ns ? 1 : 0);
}

static void run(struct process *p)
{
	struct agent *a = &p->a;
	struct epoll_event evs[16];

	while (!a->stop) {
		int n = wait_events(p, evs, 16);

		if (n < 0 && errno != EINTR) {
			log_err("epoll_wait: %s", strerror(errno));
			break;
		}
		a->now_ns = agent_clock_ns();
		p->rb_consumed = 0;
		if (p->rb_held) {
			/* the hold is over (or something else woke the loop): take what gathered */
			intake_set_watch(p, 1);
			handle_event(p, EP_RINGBUF);
		}
		for (int i = 0; i < n; i++)
			handle_event(p, evs[i].data.u64);
		periodic(a);
		follow_ifaddr(p);
		notify_progress(p);
	}
}

static void teardown(struct process *p)
{
	struct agent *a = &p->a;

	for (unsigned int i = 0; i < p->natt; i++) {
		process_fastpath_if_leave(p, &p->att[i]);
		attach_remove(&p->att[i]);
	}
	attach_remove(&p->lo); /* after defer_flush: the last held frames went through it */
	ctl_close(&a->ctl);
	if (p->rb)
		ring_buffer__free(p->rb);
	if (p->sigfd >= 0)
		close(p->sigfd);
	if (p->epfd >= 0)
		close(p->epfd);
	tun_close(&a->tun);
	agent_sock_close(a);
	agent_repair_free(a);
	walker_free(&a->walker);
	store_sweep_free(&a->sweep);
	defer_free(&a->defer);
	sendq_free(&a->sendq);
	pfsync_builder_free(a->builder);
	free(a->pkt);
	free(a->rxbuf);
	index_free(&a->index);
	bpf_store_close_iter(&a->store, &p->bstore);
	bpf_store_close_import(&a->store, &p->bstore);
	if (p->maps_open)
		pfsync_maps_close(&p->maps);
	if (p->bpf_loaded)
		pfsync_bpf_close(&p->bpf);
}

int main(int argc, char **argv)
{
	static struct process proc;
	static struct config_args args; /* the options point into it until exit */
	char cfg_err[CONFIG_ERR_MAX];
	char transport[32], peers[SYNC_MAX_PEERS * (SYNC_ADDRSTRLEN + 1)];
	struct process *p = &proc;
	struct agent *a = &p->a;
	int rc;

	signal(SIGPIPE, SIG_IGN); /* a control client may go away mid-reply */
	/*
	 * Big tables (index, send queue) are mmaps, given back whole when
	 * freed: glibc's threshold stays where it starts instead of rising to
	 * the largest block freed so far. Loading a BPF object frees large
	 * blocks (libbpf's copy of the kernel's BTF, tens of MB); after that
	 * the tables came from the heap, where their freed predecessors stayed
	 * resident (agent RSS at 1M states 85 instead of 44-60 bytes a state).
	 */
	mallopt(M_MMAP_THRESHOLD, AGENT_MMAP_THRESHOLD);
	libxdp_set_print(attach_libxdp_log);
	p->epfd = p->sigfd = -1;
	a->sock.fd = a->tun.fd = a->ctl.fd = -1;
	a->config_fd = a->globals_fd = -1;
	defer_init(&a->defer, -1, 0);
	if (config_merge(argc, argv, &args, cfg_err, sizeof(cfg_err))) {
		fprintf(stderr, "pfsync-agent: %s\n", cfg_err);
		return 2;
	}
	if (agent_parse_opts(a, args.argc, args.argv) || agent_auth_load(a)) {
		config_args_free(&args);
		return 2;
	}
	index_init(&a->index);
	a->now_ns = a->started_ns = agent_clock_ns();
	rc = process_setup_datapath(p);
	if (a->opts.probe_release) {
		teardown(p);
		config_args_free(&args);
		return rc ? 1 : 0;
	}
	rc = rc ?: setup_io(p);
	if (rc == 0 && intake_rebuild_index(a) != 0)
		log_err("reading the existing states failed; continuing");
	if (rc) {
		log_err("start-up failed: %s", strerror(-rc));
		teardown(p);
		config_args_free(&args);
		return 1;
	}
	log_info("running: syncdev %s (mtu %u) %s%s%s, auth %s, hostid 0x%08x, %zu states in "
		 "the table",
		 a->sock.ifname, a->sock.link_mtu,
		 sync_sock_transport(&a->sock, transport, sizeof(transport)),
		 agent_peer_list(a, peers, sizeof(peers))[0] ? " " : "", peers,
		 a->sock.auth ? "on" : "off", a->hostid, index_count(&a->index));
	a->now_ns = agent_clock_ns();
	a->next_sweep_ns = a->now_ns + (__u64)a->opts.interval_s * 1000000000ULL;
	/*
	 * States already in the table: a run before this one (killed, say)
	 * may have taken their records off the ring and died before sending
	 * them, and no sequence number tells the peers. They get them all.
	 */
	if (index_count(&a->index) && walker_start(a, 0) != 0)
		log_err("cannot resend the %zu states found at start", index_count(&a->index));
	bulk_request(a);
	run(p);
	notify_send("STOPPING=1\n");
	defer_flush(a); /* held packets go out, not down with the agent */
	teardown(p);
	config_args_free(&args);
	log_info("stopped");
	return 0;
}
