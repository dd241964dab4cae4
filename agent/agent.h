/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The agent's process state, shared by its modules. Each module owns its
 * part (comments say which file); main.c owns setup, the event loop and
 * everything process-wide.
 */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <time.h>
#include <linux/types.h>

#include "bulk.h"
#include "ctl.h"
#include "defer.h"
#include "index.h"
#include "log.h"
#include "pfsync_wire.h"
#include "repair.h"
#include "sendq.h"
#include "transport.h"
#include "store.h"
#include "transport.h"
#include "tun.h"

#define AGENT_MAX_ATTACH	 16
#define AGENT_DEFAULT_CTL	 "/run/pfsync/pfsync.sock"
#define AGENT_DEFAULT_MAXUPD	 128
#define AGENT_DEFAULT_INTERVAL_S 10
#define AGENT_UPD_REQ_MAX	 1024 /* unknown states collected from one packet */
#define AGENT_RXBUF		 65536
#define AGENT_MAX_AUTH_KEYS	 2 /* the signing key and one more (rotation) */

struct agent_opts {
	const char *syncdev;
	const char *syncpeers[SYNC_MAX_PEERS]; /* none = the group (peers.h) */
	unsigned int nsyncpeers;
	const char *auth_keys[AGENT_MAX_AUTH_KEYS]; /* --auth-key files (transport.c, auth.c) */
	unsigned int nauth_keys;
	unsigned int min_ttl; /* --min-ttl, 0 = not given (then 255) */
	unsigned int maxupd;
	int defer;
	int fastpath; /* --fastpath: established flows forwarded in XDP */
	unsigned int defer_timeout_ms;
	enum release_mode defer_release; /* --defer-release (release.h) */
	int probe_release;		 /* --probe-defer-release: probe, print, exit */
	__u32 hostid;			 /* 0 = keep the map's, else random */
	const char *pin_dir;
	const char *attach[AGENT_MAX_ATTACH];
	unsigned int nattach;
	const char *ctl_path;
	const char *obj_path;
	const char *rules_path; /* --rules: loaded at start and on SIGHUP */
	unsigned int interval_s;
	const char *pfsync_if;
	__u32 states_max;
	int no_repair; /* --no-repair: no sequence trailer, no NAKs (repair_io.c) */
	enum store_read_path bulk_read; /* --bulk-read: how whole-table reads go */
};

struct upd_req_ident {
	__u64 id;
	__u32 creatorid;
};

/*
 * Ringbuf records are acted on in groups of this many, in order: the index
 * and send-queue slots of a group are prefetched as its records arrive, so
 * a burst waits for memory about once a group instead of twice a record.
 */
#define AGENT_INTAKE_AHEAD 16

/* allocations from this size on are mmaps (main.c: mallopt) */
#define AGENT_MMAP_THRESHOLD (128 * 1024)

struct agent {
	struct agent_opts opts;
	__u32 hostid;
	struct pfsync_config cfg; /* refreshed from the map at each sweep */
	__u32 states_count;	  /* from pfsync_globals, for adaptive timeouts */
	struct state_store store; /* the datapath (store.c) */
	struct state_index index; /* index.c */
	/*
	 * A peer's state went into the map without an index entry (no-sync,
	 * or out of memory): a CLR must then walk the table even when the
	 * index holds none of its creator's states.
	 */
	int peer_states_unindexed;
	struct sendq sendq;	  /* sendq.c */
	struct sendq_io sendq_io; /* bound to the store and the socket (sendq use in intake.c) */
	struct sync_sock sock;	  /* transport.c, peers.c */
	struct tun_dev tun;	  /* tun.c */
	struct bulk_req bulk_req; /* bulk.c: our request for a bulk update */
	struct walker walker;	  /* bulk.c: bulk answers and full resends */
	struct ctl_server ctl;	  /* ctl.c */
	struct defer_state defer; /* defer.c */
	__u64 next_defer_ns;	  /* when the oldest held packet is due */
	struct pfsync_builder *builder; /* immediate packets (UPD_REQ, CLR, BUS, bulk) */
	__u8 *pkt;			/* builder output, sock.mtu bytes */
	__u8 *rxbuf;
	struct pfsync_stats stats;
	/* apply.c: unknown states named by UPD_C in the packet being applied */
	struct upd_req_ident upd_reqs[AGENT_UPD_REQ_MAX];
	unsigned int nupd_reqs;
	__u64 now_ns; /* CLOCK_BOOTTIME of the current loop iteration */
	__u64 started_ns;
	__u64 next_sweep_ns;
	struct store_sweep sweep; /* intake.c: the expiry pass under way */
	__u64 next_sweep_step_ns; /* its next step (intake.c: SWEEP_STEP_NS apart) */
	/* intake.c */
	__u64 records, records_bad, records_lost;
	__u64 lost_events;
	__u64 lost_covered;    /* loss reports a rebuild covers: nothing more to do */
	__u64 lost_rebuild_ns; /* when the last rebuild for a loss began (CLOCK_BOOTTIME) */
	int lost_rebuild_due;  /* a loss report asked for a rebuild (intake_settle) */
	__u64 lost_poll_ns;    /* next look at the datapath's unreported losses */
	/* records taken but not yet acted on (their tables' slots are loading) */
	struct pfsync_event intake_held[AGENT_INTAKE_AHEAD];
	unsigned int intake_nheld;
	/* apply.c */
	__u64 imported, merged, deleted_by_peer, cleared_by_peer;
	/* sends a payload; NULL = the sync socket (tests capture packets here) */
	int (*xmit)(struct agent *a, const __u8 *payload, size_t len);
	int config_fd, globals_fd;
	/* rx.c: receive drops seen, and whether they hit a bulk update */
	__u32 rx_dropped_seen;
	int bulk_lossy;
	__u64 resync_due_ns;	      /* packets were dropped: ask a bulk update then (0: no) */
	__u64 bulk_resyncs;	      /* bulk updates asked for that reason */
	unsigned int bulk_rerequests; /* -1 when absent (tests) */
	__u64 bulk_rate;	      /* states per second a walk may send */
	int table_iter;		      /* whole-table reads go through pfsync_table_iter */
	__u64 walk_credit_ns;
	/* repair_io.c */
	int repair_on;
	struct repair_tx repair_tx;
	struct repair_rx repair_rx;
	__u64 repair_full_ns; /* the last full resend a NAK asked for */
	__u64 repair_bad;     /* malformed repair trailers received */
	__u8 *txbuf;	      /* payload and repair trailer, contiguous for the MAC */
	int stop;
};

static inline __u64 agent_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* wall-clock seconds for the auth trailer's freshness field (tx.c, rx.c) */
static inline __u32 agent_wall_seconds(void)
{
	return (__u32)time(NULL);
}

/* ---- transport.c (the agent's side of opening the sockets) -------------- */
/* --auth-key files (refused if group/world-readable) and --min-ttl; 0 or -1 after logging */
int agent_auth_load(struct agent *a);
void agent_auth_free(struct agent *a);
/* the sync sockets for opts.syncdev / opts.syncpeers, with the loaded keys */
int agent_sock_open(struct agent *a);
void agent_sock_close(struct agent *a);

/* ---- tx.c (transmit) ------------------------------------------------------ */
/* sends one pfsync payload, counts opackets/oerrors/oacts, copies it to pfsync0 */
int agent_send_payload(struct agent *a, const __u8 *payload, size_t len, const unsigned int *acts);
/* a bare pfsync header with this repair trailer (BEACON, NAK, DONE); 0 or -errno */
int agent_send_control(struct agent *a, const __u8 *trailer, size_t tlen);
/* one packet with just these messages (UPD_REQ, CLR, BUS); 0 or -errno */
int agent_send_msgs(struct agent *a, __u8 action, const void *msgs, unsigned int n);
/* the sendq callbacks bound to a's store and socket */
void agent_bind_sendq_io(struct agent *a);
/* send what the queue's rules say is due now */
void agent_flush_sendq(struct agent *a);
/* "INS 3, UPD_C 2" for debug lines */
const char *agent_acts_summary(const unsigned int *acts, char *buf, size_t cap);

/* ---- rx.c (receive: transport checks, then apply.c and repair_io.c) ------ */
/* reads and applies up to max queued packets; returns packets read */
int agent_receive(struct agent *a, unsigned int max);
/* the kernel dropped received packets (sock.rx_dropped moved): recovery */
void agent_note_rx_drops(struct agent *a);

/* ---- status.c (control socket output of the transport) ------------------- */
/* control socket: peers, transport and auth lines (JSON: fields, each with a comma) */
void agent_transport_status(const struct agent *a, FILE *out, int json);
/* control socket: the pfsync counters, then per-peer and auth counters */
void agent_transport_stats(struct agent *a, FILE *out, int json);
/* the configured peers, comma-separated; "" for the default group alone */
const char *agent_peer_list(const struct agent *a, char *buf, size_t cap);

/* ---- repair_io.c (repair.h: loss repair) --------------------------------- */
int agent_repair_init(struct agent *a); /* after the socket: 0 or -ENOMEM */
void agent_repair_free(struct agent *a);
/* numbers a packet about to go out; writes its trailer, returns its length (0: off) */
size_t agent_repair_data_trailer(struct agent *a, const __u8 *payload, size_t len, __u8 *out);
/* a received payload's trailer: 1 ours (our hostid and session), 0 another
 * sender's, -1 none (an OpenBSD sender, --no-repair, or malformed) */
int agent_repair_sender_is_us(const struct agent *a, const __u8 *payload, size_t len);
/* an accepted packet's trailer: gaps, NAKs to answer, DONEs */
void agent_repair_on_packet(struct agent *a, const __u8 *payload, size_t len);
/* beacons and NAKs that are due */
void agent_repair_tick(struct agent *a);
__u64 agent_repair_deadline(const struct agent *a); /* 0 = no timer */
void agent_repair_status(const struct agent *a, FILE *out, int json);

/* ---- apply.c ------------------------------------------------------------- */
/*
 * one received IPv4 packet from interface ifindex: checks, counts, applies;
 * 0 when it passed every check (nothing in it counted as bad), else -1
 */
int apply_packet(struct agent *a, const __u8 *ip, size_t len, int ifindex);
extern const struct pfsync_decode_ops apply_ops;

/* ---- intake.c ------------------------------------------------------------ */
/* one ringbuf record (libbpf ring_buffer_sample_fn shape); the records of a
 * drain are all acted on by intake_settle */
int intake_record(void *ctx, void *data, size_t size);
/* after a turn's records: the one rebuild and resend their loss reports ask for */
void intake_settle(struct agent *a);
/* a loss the datapath has not reported yet (no record since): have it reported */
void intake_poll_lost(struct agent *a);
/* rebuilds the index from the map (start, ringbuf loss) */
int intake_rebuild_index(struct agent *a);
/* state (k, v) is in the map: indexed unless no-sync; 0, or -ENOMEM */
int intake_index_state(struct agent *a, const struct pfsync_key *k,
		       const struct pfsync_state_value *v);

/*
 * The index against the table: every state peers can name (all but
 * no-sync ones) indexed under its key, and no index entry beyond them.
 * missing = states - matched, stale = indexed - matched; both 0 when the
 * index covers the table (once the ringbuf's records are in).
 */
struct index_check {
	size_t states;	/* in the table, no-sync ones apart */
	size_t nosync;	/* never indexed */
	size_t indexed; /* entries in the index */
	size_t matched; /* states whose identity the index maps to their key */
	size_t missing;
	size_t stale;
};
int intake_index_check(struct agent *a, struct index_check *c);
/* starts an expiry pass when next_sweep_ns is due, advances one under way
 * by a bounded step when next_sweep_step_ns is due; 1 while a pass is
 * unfinished. Delete records arrive on the ringbuf. */
int intake_sweep(struct agent *a);
/* flush: every state goes, peers get one CLR */
int intake_flush_all(struct agent *a);

#endif /* AGENT_AGENT_H */
