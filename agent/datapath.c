/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The agent's datapath set-up (process.h): the BPF object loaded, its maps
 * opened, identity and configuration written, the defer release path
 * chosen, the rules loaded, and then the programs attached.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "agent.h"
#include "process.h"
#include "ruleset.h"

/* ids the datapath could reserve while the agent rewrites pfsync_globals */
#define AGENT_ID_WRITE_MARGIN (1ULL << 20)

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
void process_fastpath_if_leave(struct process *p, const struct attachment *at)
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
 * --bulk-read: the iterator (pfsync_table_iter) unless told batch; a
 * kernel that refuses it leaves the batch reads under auto and stops the
 * agent under iter, so that a forced path is never quietly another one.
 */
static int open_table_reader(struct process *p)
{
	struct agent *a = &p->a;
	const char *obj = a->opts.obj_path ? a->opts.obj_path : pfsync_bpf_default_obj();
	libbpf_print_fn_t prev;
	int rc;

	a->table_iter = 0;
	if (a->opts.bulk_read == STORE_READ_BATCH)
		return 0;
	/* a refusal is an answer here, not a warning: libbpf's words with -v only */
	prev = libbpf_set_print(attach_libbpf_debug_only);
	rc = bpf_store_open_iter(&a->store, &p->bstore, obj);
	libbpf_set_print(prev);
	if (rc == 0) {
		a->table_iter = 1;
		log_info("whole-table reads through the %s iterator", PFSYNC_ITER_OBJ);
		return 0;
	}
	if (a->opts.bulk_read == STORE_READ_ITER && rc == -ENOENT) {
		log_err("--bulk-read iter: no %s beside %s", PFSYNC_ITER_OBJ, obj);
		return rc;
	}
	if (a->opts.bulk_read == STORE_READ_ITER) {
		log_err("--bulk-read iter: the kernel refuses %s: %s", PFSYNC_ITER_OBJ,
			strerror(-rc));
		return rc;
	}
	log_info("no table iterator (%s: %s): whole-table reads in batches", PFSYNC_ITER_OBJ,
		 strerror(-rc));
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

int process_setup_datapath(struct process *p)
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
	/*
	 * The index holds at most what the map does. Its IPv4 table, the one
	 * nearly every state is in, gets room for all of them now (about 40
	 * bytes per state of the map's capacity, beside the kernel's 300):
	 * growing it in a burst of new states or a bulk update was half of
	 * that burst's CPU, the page clearing of each fresh table.
	 */
	index_size_hint(&a->index, pfsync_states_capacity(&p->maps));
	rc = index_reserve(&a->index, pfsync_states_capacity(&p->maps));
	if (rc)
		log_info("index: no room reserved for %u states (%s): it grows as needed",
			 pfsync_states_capacity(&p->maps), strerror(-rc));
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
	rc = open_table_reader(p);
	if (rc)
		return rc;
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
