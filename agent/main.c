/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pfsync-agent: options, datapath set-up (load, attach, identity), the
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
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <xdp/libxdp.h>

#include "agent.h"
#include "attach.h"

#include "config.h"
#include "notify.h"
#include "pfsync_loader.h"
#include "pfsync_maps.h"
#include "ruleset.h"

#define EP_RINGBUF    1
#define EP_SOCK	      2
#define EP_SIGNAL     3
#define RECV_PER_TURN 256
#define MAX_WAIT_MS   1000
/* ids the datapath could reserve while the agent rewrites pfsync_globals */
#define AGENT_ID_WRITE_MARGIN (1ULL << 20)

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
	int rb_consumed; /* records the last turn took from the ringbuf */
	int rb_held;	 /* the ringbuf is out of the epoll set (see intake_hold) */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: pfsync-agent --syncdev IF [--syncpeer ADDR] [--maxupd N] "
		   "[--defer] [--fastpath]\n"
		   "         [--defer-timeout MS] [--defer-release auto|live|redirect]\n"
		   "         [--probe-defer-release] [--hostid N] [--pin-dir DIR] [--attach "
		   "IF]...\n"
		   "         [--ctl PATH] [--obj FILE] [--interval S] [--pfsync-if NAME]\n"
		   "         [--states-max N] [--bulk-rate STATES_PER_S] [-v|-q]\n"
		   "         [--auth-key FILE]... [--min-ttl N] (--syncpeer may repeat: "
		   "IPv4, IPv6, ff12::f0)\n"
		   "         [--no-repair]\n"
		   "Synchronises pf-style connection states with peers (OpenBSD pfsync "
		   "v6).\n");
	fprintf(f,
		"Also: [-f FILE] options from FILE (default %s),\n"
		"[--rules FILE] pf rules loaded at start and on SIGHUP.\n"
		"See pfsync-agent(8) and pfsync.conf(5).\n",
		AGENT_DEFAULT_CONFIG);
}

static int parse_uint(const char *opt, const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v > max || *s == '-') {
		fprintf(stderr, "pfsync-agent: %s %s: expected a number up to %lu\n", opt, s, max);
		return -1;
	}
	*out = v;
	return 0;
}

enum {
	OPT_SYNCDEV = 256,
	OPT_SYNCPEER,
	OPT_MAXUPD,
	OPT_DEFER,
	OPT_FASTPATH,
	OPT_DEFER_TIMEOUT,
	OPT_DEFER_RELEASE,
	OPT_PROBE_RELEASE,
	OPT_HOSTID,
	OPT_PIN_DIR,
	OPT_ATTACH,
	OPT_CTL,
	OPT_OBJ,
	OPT_INTERVAL,
	OPT_PFSYNC_IF,
	OPT_STATES_MAX,
	OPT_BULK_RATE,
	OPT_RULES,
	OPT_AUTH_KEY,
	OPT_MIN_TTL,
	OPT_NO_REPAIR,
	OPT_HELP,
};

static int parse_number_opt(struct agent *a, int opt, const char *arg)
{
	unsigned long v;

	switch (opt) {
	case OPT_MAXUPD:
		if (parse_uint("--maxupd", arg, 255, &v))
			return -1;
		a->opts.maxupd = v;
		return 0;
	case OPT_DEFER_TIMEOUT:
		if (parse_uint("--defer-timeout", arg, 10000, &v))
			return -1;
		a->opts.defer_timeout_ms = v;
		return 0;
	case OPT_HOSTID:
		if (parse_uint("--hostid", arg, 0xffffffffUL, &v))
			return -1;
		if (v == 0) {
			fprintf(stderr, "pfsync-agent: --hostid must not be 0\n");
			return -1;
		}
		a->opts.hostid = v;
		return 0;
	case OPT_INTERVAL:
		if (parse_uint("--interval", arg, 3600, &v) || v == 0)
			return -1;
		a->opts.interval_s = v;
		return 0;
	case OPT_STATES_MAX:
		if (parse_uint("--states-max", arg, 0xffffffffUL, &v))
			return -1;
		a->opts.states_max = v;
		return 0;
	case OPT_BULK_RATE:
		if (parse_uint("--bulk-rate", arg, 100000000UL, &v) || v < 100)
			return -1;
		a->bulk_rate = v;
		return 0;
	case OPT_MIN_TTL:
		if (parse_uint("--min-ttl", arg, 255, &v) || v == 0)
			return -1;
		a->opts.min_ttl = v;
		return 0;
	}
	return -1;
}

static int parse_opts(struct agent *a, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"syncdev", required_argument, NULL, OPT_SYNCDEV},
	    {"syncpeer", required_argument, NULL, OPT_SYNCPEER},
	    {"maxupd", required_argument, NULL, OPT_MAXUPD},
	    {"defer", no_argument, NULL, OPT_DEFER},
	    {"fastpath", no_argument, NULL, OPT_FASTPATH},
	    {"defer-timeout", required_argument, NULL, OPT_DEFER_TIMEOUT},
	    {"defer-release", required_argument, NULL, OPT_DEFER_RELEASE},
	    {"probe-defer-release", no_argument, NULL, OPT_PROBE_RELEASE},
	    {"hostid", required_argument, NULL, OPT_HOSTID},
	    {"pin-dir", required_argument, NULL, OPT_PIN_DIR},
	    {"attach", required_argument, NULL, OPT_ATTACH},
	    {"ctl", required_argument, NULL, OPT_CTL},
	    {"obj", required_argument, NULL, OPT_OBJ},
	    {"interval", required_argument, NULL, OPT_INTERVAL},
	    {"pfsync-if", required_argument, NULL, OPT_PFSYNC_IF},
	    {"states-max", required_argument, NULL, OPT_STATES_MAX},
	    {"bulk-rate", required_argument, NULL, OPT_BULK_RATE},
	    {"rules", required_argument, NULL, OPT_RULES},
	    {"auth-key", required_argument, NULL, OPT_AUTH_KEY},
	    {"min-ttl", required_argument, NULL, OPT_MIN_TTL},
	    {"no-repair", no_argument, NULL, OPT_NO_REPAIR},
	    {"help", no_argument, NULL, OPT_HELP},
	    {"verbose", no_argument, NULL, 'v'},
	    {"quiet", no_argument, NULL, 'q'},
	    {0},
	};
	int opt;

	a->opts.maxupd = AGENT_DEFAULT_MAXUPD;
	a->opts.defer_timeout_ms = 20;
	a->opts.ctl_path = AGENT_DEFAULT_CTL;
	a->opts.interval_s = AGENT_DEFAULT_INTERVAL_S;
	a->opts.pfsync_if = "pfsync0";
	a->bulk_rate = WALKER_DEFAULT_RATE;
	while ((opt = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_SYNCDEV:
			a->opts.syncdev = optarg;
			break;
		case OPT_SYNCPEER:
			if (a->opts.nsyncpeers == SYNC_MAX_PEERS) {
				fprintf(stderr, "pfsync-agent: at most %d --syncpeer\n",
					SYNC_MAX_PEERS);
				return -1;
			}
			a->opts.syncpeers[a->opts.nsyncpeers++] = optarg;
			break;
		case OPT_AUTH_KEY:
			if (a->opts.nauth_keys == AGENT_MAX_AUTH_KEYS) {
				fprintf(stderr, "pfsync-agent: at most %d --auth-key\n",
					AGENT_MAX_AUTH_KEYS);
				return -1;
			}
			a->opts.auth_keys[a->opts.nauth_keys++] = optarg;
			break;
		case OPT_NO_REPAIR:
			a->opts.no_repair = 1;
			break;
		case OPT_DEFER:
			a->opts.defer = 1;
			break;
		case OPT_DEFER_RELEASE:
			if (release_mode_parse(optarg, &a->opts.defer_release)) {
				fprintf(stderr,
					"pfsync-agent: --defer-release %s: expected auto, live or "
					"redirect\n",
					optarg);
				return -1;
			}
			break;
		case OPT_PROBE_RELEASE:
			a->opts.probe_release = 1;
			break;
		case OPT_FASTPATH:
			a->opts.fastpath = 1;
			break;
		case OPT_PIN_DIR:
			a->opts.pin_dir = optarg;
			break;
		case OPT_ATTACH:
			if (a->opts.nattach == AGENT_MAX_ATTACH) {
				fprintf(stderr, "pfsync-agent: at most %d --attach\n",
					AGENT_MAX_ATTACH);
				return -1;
			}
			a->opts.attach[a->opts.nattach++] = optarg;
			break;
		case OPT_CTL:
			a->opts.ctl_path = optarg;
			break;
		case OPT_OBJ:
			a->opts.obj_path = optarg;
			break;
		case OPT_RULES:
			a->opts.rules_path = optarg;
			break;
		case OPT_PFSYNC_IF:
			a->opts.pfsync_if = optarg;
			break;
		case 'v':
			agent_log_level = LOG_LVL_DEBUG;
			break;
		case 'q':
			agent_log_level = LOG_LVL_WARN;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			exit(0);
		case '?':
			usage(stderr);
			return -1;
		default:
			if (parse_number_opt(a, opt, optarg))
				return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pfsync-agent: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!a->opts.syncdev && !a->opts.probe_release) {
		fprintf(stderr, "pfsync-agent: --syncdev IF is required\n");
		usage(stderr);
		return -1;
	}
	return 0;
}

/* ---- datapath ------------------------------------------------------------ */
static int run_sweep(void *progs, struct pfsync_sweep_args *args)
{
	return pfsync_bpf_sweep(progs, args);
}

static int run_unqueue(void *progs, struct pfsync_unqueue_args *args)
{
	return pfsync_bpf_unqueue(progs, args);
}

static __u32 random_hostid(void)
{
	__u32 id = 0;

	while (id == 0)
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			id = (__u32)time(NULL) ^ (__u32)getpid();
	return id;
}

/* --hostid wins; else the hostid already in the map (agent restart); else
 * random */
static int setup_identity(struct process *p)
{
	struct agent *a = &p->a;
	struct pfsync_globals g;
	__u64 seed = ((__u64)time(NULL) << 32) + 1;
	int rc = pfsync_globals_read(&p->maps, &g);

	if (rc)
		return rc;
	a->hostid = a->opts.hostid ? a->opts.hostid : g.hostid ? g.hostid : random_hostid();
	g.hostid = a->hostid;
	/*
	 * The datapath may reserve id blocks between this read and the write
	 * below; writing back the value read would hand those ids out again.
	 * Jumping well past it keeps every id unique.
	 */
	if (g.next_id < seed)
		g.next_id = seed;
	else
		g.next_id += AGENT_ID_WRITE_MARGIN;
	a->states_count = g.states_count;
	return pfsync_globals_write(&p->maps, &g);
}

static int setup_config(struct process *p)
{
	struct agent *a = &p->a;
	int rc = pfsync_config_read(&p->maps, &a->cfg);

	if (rc)
		return rc;
	a->cfg.maxupd = a->opts.maxupd;
	if (a->opts.defer)
		a->cfg.cfg_flags |= PFSYNC_CFG_DEFER;
	else
		a->cfg.cfg_flags &= ~PFSYNC_CFG_DEFER;
	/*
	 * Without --attach the programs were attached by iproute2 and the fast
	 * path is pfsyncctl's (set fastpath): left as it is.
	 */
	if (a->opts.fastpath)
		a->cfg.cfg_flags |= PFSYNC_CFG_FASTPATH;
	else if (a->opts.nattach)
		a->cfg.cfg_flags &= ~PFSYNC_CFG_FASTPATH;
	return pfsync_config_write(&p->maps, &a->cfg);
}

/* With --fastpath, an interface running the programs is a fast-path egress. */
static int fastpath_if_join(struct process *p, const struct attachment *at)
{
	int rc;

	if (!p->a.opts.fastpath)
		return 0;
	rc = pfsync_fastpath_if_add(&p->maps, at->ifindex);
	if (rc)
		log_err("--fastpath: adding %s to %s: %s", at->ifname, PFSYNC_MAP_FASTPATH_IFS,
			rc == -EOPNOTSUPP ? "the BPF object has no fast path" : strerror(-rc));
	else
		log_info("fast path on %s", at->ifname);
	return rc;
}

/* Before detaching: redirects to an interface without the programs must stop. */
static void fastpath_if_leave(struct process *p, const struct attachment *at)
{
	if (p->a.opts.fastpath && at->xdp_attached && p->maps_open)
		pfsync_fastpath_if_del(&p->maps, at->ifindex);
}

static int attach_all(struct process *p)
{
	for (unsigned int i = 0; i < p->a.opts.nattach; i++) {
		int rc;

		p->natt = i + 1;
		rc = attach_iface(&p->att[i], p->a.opts.attach[i], p->bpf.obj, p->bpf.xdp_fd,
				  p->bpf.tc_fd);
		if (rc)
			return rc;
		rc = fastpath_if_join(p, &p->att[i]);
		if (rc)
			return rc;
	}
	if (p->a.opts.fastpath && !p->a.opts.nattach)
		log_info("fast path on: it redirects to the interfaces of pfsyncctl set fastpath "
			 "on IF...");
	return 0;
}

/* ---- defer release paths (release.h) -------------------------------------------- */

static int try_redirect(struct process *p, const char **why)
{
	struct attachment *lo = &p->lo;
	int rc;

	if (p->bpf.release_fd < 0 || p->bpf.release_ctr_fd < 0) {
		*why = "pfsync_release not loaded";
		return -ENOENT;
	}
	/* at attach.c's fixed place: a filter a killed agent left is replaced */
	rc = attach_egress_only(lo, "lo", p->bpf.release_fd);
	if (rc)
		*why = "attaching pfsync_release at lo's tc egress";
	else
		rc = release_probe_redirect(&p->a.defer.io, p->bpf.release_ctr_fd, why);
	if (rc)
		attach_remove(lo);
	return rc;
}

static int try_live(struct process *p, const char **why)
{
	if (p->bpf.xdp_fd < 0) {
		*why = "pfsync_xdp not loaded";
		return -ENOENT;
	}
	return release_probe_live(&p->a.defer.io, p->bpf.xdp_fd, why);
}

/* the programs --defer needs for the paths --defer-release allows */
static unsigned int release_programs(const struct agent_opts *o)
{
	unsigned int which = 0;

	if (!o->defer && !o->probe_release)
		return 0;
	if (o->defer_release != RELEASE_MODE_LIVE)
		which |= PFSYNC_LOAD_RELEASE;
	if (o->defer_release != RELEASE_MODE_REDIRECT)
		which |= PFSYNC_LOAD_XDP; /* re-run on held frames, attached or not */
	return which;
}

/* a path --defer-release forced, refused here: a start-up error */
static int forced_refused(const char *path, const char *why, int rc)
{
	log_err("--defer-release %s: refused here: %s: %s", path, why, strerror(-rc));
	return -EOPNOTSUPP;
}

/*
 * --defer: the ingress release path, each allowed one probed in turn
 * (redirect first: it needs no privileged test run, so the same path runs
 * on every kernel). None that works: the agent refuses to start rather than
 * hold packets it could not release.
 */
static int setup_release(struct process *p)
{
	const struct agent_opts *o = &p->a.opts;
	const char *why_redirect = "", *why_live = "";
	int rc_redirect = 0, rc_live = 0;

	if (!o->defer)
		return 0;
	if (o->defer_release != RELEASE_MODE_LIVE) {
		rc_redirect = try_redirect(p, &why_redirect);
		if (rc_redirect && o->defer_release == RELEASE_MODE_REDIRECT)
			return forced_refused("redirect", why_redirect, rc_redirect);
	}
	if (o->defer_release == RELEASE_MODE_LIVE || rc_redirect) {
		rc_live = try_live(p, &why_live);
		if (rc_live && o->defer_release == RELEASE_MODE_LIVE)
			return forced_refused("live", why_live, rc_live);
	}
	if (rc_redirect && rc_live) {
		log_err(
		    "--defer: no way to release packets held at ingress here (redirect: %s: %s; "
		    "live: %s: %s)%s; refusing to hold packets it could not release",
		    why_redirect, strerror(-rc_redirect), why_live, strerror(-rc_live),
		    o->nattach ? "" : " with the programs attached by someone else (no --attach)");
		return -EOPNOTSUPP;
	}
	if (rc_redirect)
		log_info("defer: redirect release refused (%s: %s)", why_redirect,
			 strerror(-rc_redirect));
	log_info("defer: packets held at ingress are released by %s (--defer-release %s)",
		 release_path_name(p->a.defer.io.ingress),
		 o->defer_release == RELEASE_MODE_AUTO ? "auto" : "forced");
	return 0;
}

/*
 * Generic (SKB-mode) XDP runs on every skb an interface receives, a
 * released frame included, whichever path brought it: the state tracks that
 * packet twice. Said at start for every interface of the namespace running
 * XDP that way (attached by --attach or by anyone before the agent started).
 */
static void warn_generic_xdp(void)
{
	struct if_nameindex *ifs = if_nameindex();

	if (!ifs)
		return;
	for (struct if_nameindex *i = ifs; i->if_index; i++) {
		LIBBPF_OPTS(bpf_xdp_query_opts, q);

		if (bpf_xdp_query((int)i->if_index, 0, &q) == 0 && q.skb_prog_id)
			log_warn("defer: XDP runs in generic (SKB) mode on %s: a released packet "
				 "passes it again and is tracked twice (see pfsync-agent(8)); "
				 "attach in native mode",
				 i->if_name);
	}
	if_freenameindex(ifs);
}

/* --probe-defer-release: one line per ingress path; 0 when one works */
static int probe_release_paths(struct process *p)
{
	const char *why = "";
	int rc_redirect, rc_live;

	rc_redirect = try_redirect(p, &why);
	printf("redirect: %s%s%s%s\n", rc_redirect ? "refused: " : "ok", rc_redirect ? why : "",
	       rc_redirect ? ": " : "", rc_redirect ? strerror(-rc_redirect) : "");
	attach_remove(&p->lo);
	release_io_close(&p->a.defer.io);
	rc_live = try_live(p, &why);
	printf("live: %s%s%s%s\n", rc_live ? "refused: " : "ok", rc_live ? why : "",
	       rc_live ? ": " : "", rc_live ? strerror(-rc_live) : "");
	return rc_redirect && rc_live ? -EOPNOTSUPP : 0;
}

static int setup_datapath(struct process *p)
{
	struct agent *a = &p->a;
	unsigned int which = PFSYNC_LOAD_CTL;
	int rc;

	if (a->opts.nattach)
		which |= PFSYNC_LOAD_XDP | PFSYNC_LOAD_TC;
	which |= release_programs(&a->opts);
	rc = pfsync_bpf_load(&p->bpf, a->opts.obj_path, a->opts.pin_dir, a->opts.states_max, which);

	if (rc)
		return rc;
	p->bpf_loaded = 1;
	log_debug("BPF object %s", a->opts.obj_path ? a->opts.obj_path : pfsync_bpf_default_obj());
	rc = pfsync_maps_open(&p->maps, a->opts.pin_dir);
	if (rc)
		return rc;
	p->maps_open = 1;
	defer_init(&a->defer, a->opts.defer ? p->maps.defer : -1, a->opts.defer_timeout_ms);
	if (a->opts.probe_release)
		return probe_release_paths(p);
	/* before the configuration turns defer on in the datapath */
	rc = setup_release(p);
	if (rc)
		return rc;
	a->config_fd = p->maps.config;
	a->globals_fd = p->maps.globals;
	p->bstore.states_fd = p->maps.states;
	p->bstore.nat_keys_fd = p->maps.nat_keys;
	p->bstore.progs = &p->bpf;
	p->bstore.run_sweep = run_sweep;
	p->bstore.run_unqueue = run_unqueue;
	bpf_store_bind(&a->store, &p->bstore);
	rc = bpf_store_open_import(&a->store, &p->bstore,
				   a->opts.obj_path ? a->opts.obj_path : pfsync_bpf_default_obj());
	if (rc)
		log_info("no batch import (%s: %s): peer states go in one at a time",
			 PFSYNC_BULK_OBJ, strerror(-rc));
	rc = setup_identity(p);
	rc = rc ?: setup_config(p);
	if (rc) {
		log_err("writing identity/configuration to the maps: %s", strerror(-rc));
		return rc;
	}
	/* before attaching: the datapath never runs without the configured ruleset */
	if (a->opts.rules_path) {
		rc = agent_rules_load(&p->maps, a->opts.rules_path);
		if (rc)
			return rc;
	}
	rc = attach_all(p);
	if (rc == 0 && a->opts.defer)
		warn_generic_xdp();
	return rc;
}

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

	/* an expiry pass takes a step a millisecond; a walk goes on at once, or
	 * when its pace allows the next packet */
	if (a->sweep.active)
		return 1;
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
		notify_progress(p);
	}
}

static void teardown(struct process *p)
{
	struct agent *a = &p->a;

	for (unsigned int i = 0; i < p->natt; i++) {
		fastpath_if_leave(p, &p->att[i]);
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
	libxdp_set_print(attach_libxdp_log);
	p->epfd = p->sigfd = -1;
	a->sock.fd = a->tun.fd = a->ctl.fd = -1;
	a->config_fd = a->globals_fd = -1;
	defer_init(&a->defer, -1, 0);
	if (config_merge(argc, argv, &args, cfg_err, sizeof(cfg_err))) {
		fprintf(stderr, "pfsync-agent: %s\n", cfg_err);
		return 2;
	}
	if (parse_opts(a, args.argc, args.argv) || agent_auth_load(a)) {
		config_args_free(&args);
		return 2;
	}
	index_init(&a->index);
	a->now_ns = a->started_ns = agent_clock_ns();
	rc = setup_datapath(p);
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
