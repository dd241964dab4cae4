// SPDX-License-Identifier: BSD-2-Clause
/* bench/datapath: the NAT rows (see nat.h). */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "nat.h"
#include "stats.h"

#if HAVE_LOADER

/*
 * A TCP flow through `rdr-to`: f's destination (10.0.0.2:80) goes to
 * 10.0.0.3:8080. The rule is loaded only for the handshake, so the other
 * cases keep running without rules. Sets *inside to the flow as the
 * server's side sees it (the stack key).
 */
static int ours_establish_rdr(const struct ours *o, const struct flow *f, struct flow *inside)
{
	struct pfsync_rule r = {.action = PFSYNC_RULE_PASS,
				.rflags = PFSYNC_RF_KEEP_STATE,
				.dir = PF_IN,
				.af = PFSYNC_AF_INET};
	int rules = bpf_object__find_map_fd_by_name(o->b.obj, PFSYNC_MAP_RULES);
	int cfg_fd = bpf_object__find_map_fd_by_name(o->b.obj, PFSYNC_MAP_CONFIG);
	struct pfsync_config cfg;
	__u32 zero = 0, nrules;
	int rc;

	r.nat.type = PFSYNC_NAT_RDR;
	r.nat.af = PFSYNC_AF_INET;
	r.nat.nflags = PFSYNC_NATF_PORT;
	r.nat.port_low = r.nat.port_high = 8080;
	inet_pton(AF_INET, "10.0.0.3", r.nat.addr);
	*inside = *f;
	memcpy(inside->daddr, r.nat.addr, 4);
	inside->dport = 8080;
	if (rules < 0 || cfg_fd < 0 || bpf_map_lookup_elem(cfg_fd, &zero, &cfg) ||
	    bpf_map_update_elem(rules, &zero, &r, BPF_ANY))
		return -1;
	nrules = cfg.nrules;
	cfg.rules_bank = 0;
	cfg.nrules = 1;
	if (bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY))
		return -1;
	rc = ours_handshake(o, f, inside);
	cfg.nrules = nrules;
	if (bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY))
		return -1;
	return rc;
}

/*
 * `repeat` runs of p, the output checked: XDP_PASS, and the destination
 * (address and port, IPv4/TCP without options) equal to want's. A NAT case
 * that rewrote nothing (or something else) would measure nothing.
 */
static int nat_run_check_n(int fd, const struct pkt *p, __u32 repeat, const struct flow *want)
{
	enum { IP_OFF = 14, DADDR_OFF = IP_OFF + 16, DPORT_OFF = IP_OFF + 20 + 2 };
	__u8 out[PKT_MAX];
	__u16 dport = htons(want->dport);
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->data, .data_size_in = p->len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = repeat);

	if (bpf_prog_test_run_opts(fd, &o) || o.retval != XDP_PASS || o.data_size_out != p->len)
		return -1;
	if (memcmp(out + DADDR_OFF, want->daddr, 4) || memcmp(out + DPORT_OFF, &dport, 2))
		return -1;
	return 0;
}

/*
 * The rdr-to state whose wire key has the client port sport: its key and
 * value. 0, or -1 when there is none.
 */
static int rdr_state_of(int states_fd, __u16 sport, struct pfsync_key *key,
			struct pfsync_state_value *v)
{
	struct pfsync_key k, next;
	__u16 port = htons(sport);
	int first = 1;

	while (bpf_map_get_next_key(states_fd, first ? NULL : &k, &next) == 0) {
		first = 0;
		k = next;
		if (bpf_map_lookup_elem(states_fd, &k, v) || v->nat.type != PFSYNC_NAT_RDR)
			continue;
		if (k.port[0] == port || k.port[1] == port) {
			*key = k;
			return 0;
		}
	}
	return -1;
}

/*
 * The mirror of the rdr-to state of client port sport: a state whose wire
 * key is the first one's stack key and the other way round, inserted as a
 * state (no alias). A packet to the public address is then rewritten to the
 * inside one by the first state, and the result back by the mirror: every
 * run of a repeated BPF_PROG_RUN is a wire-key packet with one state lookup
 * and one rewrite, which a single state cannot give (the 2nd run would see
 * its own rewrite).
 */
static int add_rdr_mirror(const struct ours *o, __u16 sport)
{
	int states_fd = bpf_object__find_map_fd_by_name(o->b.obj, PFSYNC_MAP_STATES);
	struct pfsync_state_value v, m;
	struct pfsync_key k;

	if (states_fd < 0 || rdr_state_of(states_fd, sport, &k, &v))
		return -1;
	m = v;
	m.nat.stack_key = k;
	m.nat.stack_init_side = v.init_side;
	m.init_side = v.nat.stack_init_side;
	return bpf_map_update_elem(states_fd, &v.nat.stack_key, &m, BPF_NOEXIST) ? -1 : 0;
}

static int nat_run_check(int fd, const struct pkt *p, const struct flow *want)
{
	return nat_run_check_n(fd, p, 1, want);
}

/* Mean of the middle half of v[0..n) (sorts v); -1 if n < 4. */
static double interquartile_mean(double *v, int n)
{
	double sum = 0;

	if (n < 4)
		return -1;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	for (int i = n / 4; i < n - n / 4; i++)
		sum += v[i];
	return sum / (n - 2 * (n / 4));
}

/*
 * Interquartile mean of `shots` single BPF_PROG_RUN iterations of p, each on
 * a fresh copy of the packet (a repeated run would see its own rewrite from
 * the 2nd on). A single run's duration comes in the clock's steps (tens of
 * ns): a median would be one of those steps; the mean of the middle half
 * resolves between them and leaves out interrupts and cold runs.
 */
static double single_shot_ns(int fd, const struct pkt *p, int shots)
{
	enum { MAX_SHOTS = 4096 };
	static double v[MAX_SHOTS];
	__u32 verdict = 0;
	int n = 0;

	if (shots > MAX_SHOTS)
		shots = MAX_SHOTS;
	for (int i = 0; i < shots; i++) {
		double ns = prog_run(fd, p, 1, &verdict);

		if (ns < 0 || verdict != XDP_PASS)
			return -1;
		v[n++] = ns;
	}
	return interquartile_mean(v, n);
}

/* ns/pkt of each NAT row, rounds interleaved */
enum { NAT_FLOOR1, NAT_PLAIN1, NAT_WIRE1, NAT_PLAIN, NAT_STACK, NAT_WIRE, NAT_ROWS };

static void nat_print(const double med[NAT_ROWS], __u32 repeat, int shots)
{
	double plain1 = med[NAT_PLAIN1] - med[NAT_FLOOR1], wire1 = med[NAT_WIRE1] - med[NAT_FLOOR1];

	printf("\nNAT, BPF_PROG_RUN of pfsync_xdp.o (XDP), established TCP v4, 64-byte segment\n");
	printf("%-52s %9s %9s\n", "case", "ns/pkt", "x plain");
	printf("%-52s %9.1f %9s\n", "plain state, repeated run (baseline)", med[NAT_PLAIN], "");
	printf("%-52s %9.1f", "rdr-to state, wire-key packet, rewritten (mirror)", med[NAT_WIRE]);
	print_ratio(med[NAT_WIRE], med[NAT_PLAIN]);
	printf("\n%-52s %9.1f", "rdr-to state, stack-key packet (alias + state)", med[NAT_STACK]);
	print_ratio(med[NAT_STACK], med[NAT_PLAIN]);
	printf("\n%-52s %9.1f %9s\n", "plain state, single run minus floor (baseline)", plain1, "");
	printf("%-52s %9.1f", "rdr-to state, wire-key packet, rewritten (- floor)", wire1);
	print_ratio(wire1, plain1);
	printf("\ntarget: x plain <= 1.30. Repeated rows: median of rounds of %u runs (mirror: a\n"
	       "second state maps the rewritten packet back, so each run rewrites). Single rows:\n"
	       "interquartile mean of %d one-run BPF_PROG_RUNs per round (a repeated run would see "
	       "its own\n"
	       "rewrite), the empty program's single run (%.1f ns, the timer's cost) subtracted.\n"
	       "wire key: the rdr-to request as it arrives (destination rewritten, checksums\n"
	       "updated), as a nat-to reply at XDP; stack key: what XDP sees of a nat-to request\n"
	       "(alias lookup, then the state; tc egress rewrites it).\n",
	       repeat, shots, med[NAT_FLOOR1]);
}

/* The NAT rows: states set up on ours (already loaded), then measured. */
int run_nat_cases(const struct bench *b, int empty_fd)
{
	static double v[NAT_ROWS][MAX_ROUNDS];
	const int shots = 2000;
	struct flow plain = make_flow(AF_INET, IPPROTO_TCP, 41000);
	struct flow wire = make_flow(AF_INET, IPPROTO_TCP, 41002), inside;
	struct flow mirrored = make_flow(AF_INET, IPPROTO_TCP, 41004), mirrored_in;
	struct pkt p_plain, p_wire, p_stack, p_mirror;
	double med[NAT_ROWS];
	int fd, rounds = b->o->rounds > MAX_ROUNDS ? MAX_ROUNDS : b->o->rounds;

	if (!b->ours)
		return -1;
	fd = b->ours->b.xdp_fd;
	if (ours_establish(b->ours, &plain) || ours_establish_rdr(b->ours, &wire, &inside) ||
	    ours_establish_rdr(b->ours, &mirrored, &mirrored_in) ||
	    add_rdr_mirror(b->ours, mirrored.sport))
		return -1;
	build_tcp(&p_plain, &plain, 0, TH_ACK | TH_PSH, 1001, 5001, 64);
	build_tcp(&p_wire, &wire, 0, TH_ACK | TH_PSH, 1001, 5001, 64);
	build_tcp(&p_stack, &inside, 0, TH_ACK | TH_PSH, 1001, 5001, 64);
	build_tcp(&p_mirror, &mirrored, 0, TH_ACK | TH_PSH, 1001, 5001, 64);
	if (nat_run_check(fd, &p_wire, &inside) || nat_run_check(fd, &p_stack, &inside) ||
	    nat_run_check(fd, &p_plain, &plain) || nat_run_check(fd, &p_mirror, &mirrored_in) ||
	    nat_run_check_n(fd, &p_mirror, 2, &mirrored)) {
		fprintf(stderr, "datapath: NAT: a packet was not passed as expected (rewrite)\n");
		return -1;
	}
	for (int r = 0; r < rounds; r++) {
		v[NAT_FLOOR1][r] = single_shot_ns(empty_fd, &p_plain, shots);
		v[NAT_PLAIN1][r] = single_shot_ns(fd, &p_plain, shots);
		v[NAT_WIRE1][r] = single_shot_ns(fd, &p_wire, shots);
		v[NAT_PLAIN][r] = prog_run(fd, &p_plain, b->o->repeat, NULL);
		v[NAT_STACK][r] = prog_run(fd, &p_stack, b->o->repeat, NULL);
		v[NAT_WIRE][r] = prog_run(fd, &p_mirror, b->o->repeat, NULL);
		for (int i = 0; i < NAT_ROWS; i++)
			if (v[i][r] < 0)
				return -1;
		ring_buffer__consume(b->ours->events);
	}
	for (int i = 0; i < NAT_ROWS; i++)
		med[i] = median(v[i], rounds);
	nat_print(med, b->o->repeat, shots);
	return 0;
}
#endif /* HAVE_LOADER */
