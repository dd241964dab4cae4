/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pfsync v6 codec: the constructed vectors of pfsync-wire.md §5.3 byte for
 * byte (built and decoded), INS round trips, negative vectors bumping
 * exactly their counter, truncation at every offset, stride and skip
 * rules, MTU filling and section order, pf's merge rules, stats output.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "pfsync_wire.h"

#define NS	 1000000000ULL
#define CREATOR	 0x1234abcdU
#define STATE_ID 0x6578a1c000000001ULL

/* ---- §5.3 vectors (payload only) ----------------------------------------- */
static const __u8 vec_bulk_req[] = {
    0x06, 0x00, 0x00, 0x24, 0,	  0,	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0,	  0,	0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
static const __u8 vec_ins_ack[] = {
    0x06, 0x00, 0x00, 0x24, 0,	  0,	0,    0,    0,	  0,	0,    0,
    0,	  0,	0,    0,    0,	  0,	0,    0,    0x02, 0x03, 0x00, 0x01,
    0x65, 0x78, 0xa1, 0xc0, 0x00, 0x00, 0x00, 0x01, 0x12, 0x34, 0xab, 0xcd,
};
static const __u8 vec_del_c2[] = {
    0x06, 0x00, 0x00, 0x30, 0,	  0,	0,    0,    0,	  0,	0,    0,    0,	  0,	0,    0,
    0,	  0,	0,    0,    0x07, 0x03, 0x00, 0x02, 0x65, 0x78, 0xa1, 0xc0, 0x00, 0x00, 0x00, 0x01,
    0x12, 0x34, 0xab, 0xcd, 0x65, 0x78, 0xa1, 0xc0, 0x00, 0x00, 0x00, 0x02, 0x12, 0x34, 0xab, 0xcd,
};
static const __u8 vec_bus_end[] = {
    0x06, 0x00, 0x00, 0x24, 0,	  0,	0,    0,    0,	  0,	0,    0,
    0,	  0,	0,    0,    0,	  0,	0,    0,    0x0a, 0x03, 0x00, 0x01,
    0x12, 0x34, 0xab, 0xcd, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
};
static const __u8 vec_clr[] = {
    0x06, 0x00, 0x00, 0x2c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    0,	  0x00, 0x05,
    0x00, 0x01, 0,    0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0xab, 0xcd,
};

/* ---- decode recorder ------------------------------------------------------ */
struct rec {
	int calls[PFSYNC_ACT_MAX];
	__u64 ids[8];
	__u32 creators[8];
	int nids;
	struct pfsync_state state; /* last INS/UPD */
	struct pfsync_upd_c upd_c;
	struct pfsync_bus bus;
	struct pfsync_clr clr;
};

static void rec_id(struct rec *r, const void *msg12)
{
	if (r->nids < 8) {
		r->ids[r->nids] = pfsync_get_be64(msg12);
		r->creators[r->nids] = pfsync_get_be32((const __u8 *)msg12 + 8);
		r->nids++;
	}
}

static void on_clr(void *ctx, const struct pfsync_clr *m)
{
	struct rec *r = ctx;

	r->calls[PFSYNC_ACT_CLR]++;
	memcpy(&r->clr, m, sizeof(r->clr));
}

static void on_ins(void *ctx, const struct pfsync_state *m)
{
	struct rec *r = ctx;

	r->calls[PFSYNC_ACT_INS]++;
	memcpy(&r->state, m, sizeof(r->state));
}

static void on_upd(void *ctx, const struct pfsync_state *m)
{
	struct rec *r = ctx;

	r->calls[PFSYNC_ACT_UPD]++;
	memcpy(&r->state, m, sizeof(r->state));
}

static void on_del(void *ctx, const struct pfsync_state *m)
{
	struct rec *r = ctx;

	r->calls[PFSYNC_ACT_DEL]++;
	rec_id(r, m);
}

static void on_ins_ack(void *ctx, const struct pfsync_ins_ack *m)
{
	struct rec *r = ctx;

	r->calls[PFSYNC_ACT_INS_ACK]++;
	rec_id(r, m);
}

static void on_upd_c(void *ctx, const struct pfsync_upd_c *m)
{
	struct rec *r = ctx;

	r->calls[PFSYNC_ACT_UPD_C]++;
	memcpy(&r->upd_c, m, sizeof(r->upd_c));
}

static void on_upd_req(void *ctx, const struct pfsync_upd_req *m)
{
	struct rec *r = ctx;

	r->calls[PFSYNC_ACT_UPD_REQ]++;
	rec_id(r, m);
}

static void on_del_c(void *ctx, const struct pfsync_del_c *m)
{
	struct rec *r = ctx;

	r->calls[PFSYNC_ACT_DEL_C]++;
	rec_id(r, m);
}

static void on_bus(void *ctx, const struct pfsync_bus *m)
{
	struct rec *r = ctx;

	r->calls[PFSYNC_ACT_BUS]++;
	memcpy(&r->bus, m, sizeof(r->bus));
}

static void on_tdb(void *ctx, const struct pfsync_tdb *m)
{
	struct rec *r = ctx;

	(void)m;
	r->calls[PFSYNC_ACT_TDB]++;
}

static const struct pfsync_decode_ops rec_ops = {
    .clr = on_clr,
    .ins = on_ins,
    .ins_ack = on_ins_ack,
    .upd = on_upd,
    .upd_c = on_upd_c,
    .upd_req = on_upd_req,
    .del = on_del,
    .del_c = on_del_c,
    .bus = on_bus,
    .tdb = on_tdb,
};

/* decodes from an exactly sized heap copy so that ASan sees any overread */
static int decode_copy(const __u8 *pkt, size_t len, struct rec *r, struct pfsync_stats *st)
{
	__u8 *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, pkt, len);
	rc = pfsync_decode(copy, len, &rec_ops, r, st);
	free(copy);
	return rc;
}

/* the 16 OpenBSD error/result counters, by name, for "exactly one" checks */
static const size_t error_counters[] = {
    offsetof(struct pfsync_stats, badif),   offsetof(struct pfsync_stats, badttl),
    offsetof(struct pfsync_stats, hdrops),  offsetof(struct pfsync_stats, badver),
    offsetof(struct pfsync_stats, badauth), offsetof(struct pfsync_stats, badact),
    offsetof(struct pfsync_stats, badlen),  offsetof(struct pfsync_stats, badval),
    offsetof(struct pfsync_stats, stale),   offsetof(struct pfsync_stats, badstate),
};

static __u64 counter_at(const struct pfsync_stats *st, size_t off)
{
	__u64 v;

	memcpy(&v, (const char *)st + off, sizeof(v));
	return v;
}

/* every error counter is 0 except `expected` (pass SIZE_MAX for none), which is 1 */
static void assert_only_counter(const struct pfsync_stats *st, size_t expected)
{
	for (size_t i = 0; i < sizeof(error_counters) / sizeof(error_counters[0]); i++)
		assert_int_equal(counter_at(st, error_counters[i]),
				 error_counters[i] == expected ? 1 : 0);
}

/* ---- builder helpers ------------------------------------------------------ */
static size_t build_one(__u8 action, const void *msg, size_t nmsgs, size_t msg_size, __u8 *out,
			size_t cap)
{
	struct pfsync_builder *b = pfsync_builder_new(1500);
	size_t n;

	assert_non_null(b);
	for (size_t i = 0; i < nmsgs; i++)
		assert_int_equal(pfsync_builder_add(b, action, (const __u8 *)msg + i * msg_size),
				 0);
	assert_int_equal(pfsync_builder_count(b), nmsgs);
	n = pfsync_builder_finish(b, out, cap);
	assert_int_equal(pfsync_builder_count(b), 0); /* finish resets */
	pfsync_builder_free(b);
	return n;
}

static void assert_packet(const __u8 *got, size_t got_len, const __u8 *want, size_t want_len)
{
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
}

/* ---- §5.3 vectors: build and decode ---------------------------------------- */
static void test_vec_bulk_request(void **unused)
{
	struct pfsync_upd_req req;
	struct pfsync_stats st = {0};
	struct rec r = {0};
	__u8 out[1500];

	(void)unused;
	pfsync_id_msg_fill(&req, 0, 0);
	assert_packet(out, build_one(PFSYNC_ACT_UPD_REQ, &req, 1, sizeof(req), out, sizeof(out)),
		      vec_bulk_req, sizeof(vec_bulk_req));
	assert_int_equal(decode_copy(vec_bulk_req, sizeof(vec_bulk_req), &r, &st), 0);
	assert_int_equal(r.calls[PFSYNC_ACT_UPD_REQ], 1);
	assert_int_equal(r.nids, 1);
	assert_true(r.ids[0] == 0 && r.creators[0] == 0);
	assert_int_equal(st.iacts[PFSYNC_ACT_UPD_REQ], 1);
	assert_only_counter(&st, SIZE_MAX);
}

static void test_vec_ins_ack(void **unused)
{
	struct pfsync_ins_ack ack;
	struct pfsync_stats st = {0};
	struct rec r = {0};
	__u8 out[1500];

	(void)unused;
	pfsync_id_msg_fill(&ack, STATE_ID, CREATOR);
	assert_packet(out, build_one(PFSYNC_ACT_INS_ACK, &ack, 1, sizeof(ack), out, sizeof(out)),
		      vec_ins_ack, sizeof(vec_ins_ack));
	assert_int_equal(decode_copy(vec_ins_ack, sizeof(vec_ins_ack), &r, &st), 0);
	assert_int_equal(r.calls[PFSYNC_ACT_INS_ACK], 1);
	assert_true(r.ids[0] == STATE_ID);
	assert_int_equal(r.creators[0], CREATOR);
	assert_int_equal(st.iacts[PFSYNC_ACT_INS_ACK], 1);
	assert_only_counter(&st, SIZE_MAX);
}

static void test_vec_del_c_two(void **unused)
{
	struct pfsync_del_c del[2];
	struct pfsync_stats st = {0};
	struct rec r = {0};
	__u8 out[1500];

	(void)unused;
	pfsync_id_msg_fill(&del[0], STATE_ID, CREATOR);
	pfsync_id_msg_fill(&del[1], STATE_ID + 1, CREATOR);
	assert_packet(out, build_one(PFSYNC_ACT_DEL_C, del, 2, sizeof(del[0]), out, sizeof(out)),
		      vec_del_c2, sizeof(vec_del_c2));
	assert_int_equal(decode_copy(vec_del_c2, sizeof(vec_del_c2), &r, &st), 0);
	assert_int_equal(r.calls[PFSYNC_ACT_DEL_C], 2);
	assert_true(r.ids[0] == STATE_ID && r.ids[1] == STATE_ID + 1);
	assert_int_equal(r.creators[1], CREATOR);
	assert_int_equal(st.iacts[PFSYNC_ACT_DEL_C], 2);
	assert_only_counter(&st, SIZE_MAX);
}

static void test_vec_bus_end(void **unused)
{
	struct pfsync_bus bus;
	struct pfsync_stats st = {0};
	struct rec r = {0};
	__u8 out[1500];

	(void)unused;
	memset(&bus, 0, sizeof(bus));
	pfsync_put_be32(&bus.creatorid, CREATOR);
	bus.status = PFSYNC_BUS_END;
	assert_packet(out, build_one(PFSYNC_ACT_BUS, &bus, 1, sizeof(bus), out, sizeof(out)),
		      vec_bus_end, sizeof(vec_bus_end));
	assert_int_equal(decode_copy(vec_bus_end, sizeof(vec_bus_end), &r, &st), 0);
	assert_int_equal(r.calls[PFSYNC_ACT_BUS], 1);
	assert_int_equal(r.bus.status, PFSYNC_BUS_END);
	assert_int_equal(pfsync_get_be32(&r.bus.creatorid), CREATOR);
	assert_int_equal(pfsync_get_be32(&r.bus.endtime), 0);
	assert_only_counter(&st, SIZE_MAX);
}

static void test_vec_clr(void **unused)
{
	struct pfsync_clr clr;
	struct pfsync_stats st = {0};
	struct rec r = {0};
	__u8 out[1500];

	(void)unused;
	memset(&clr, 0, sizeof(clr));
	pfsync_put_be32(&clr.creatorid, CREATOR);
	assert_packet(out, build_one(PFSYNC_ACT_CLR, &clr, 1, sizeof(clr), out, sizeof(out)),
		      vec_clr, sizeof(vec_clr));
	assert_int_equal(decode_copy(vec_clr, sizeof(vec_clr), &r, &st), 0);
	assert_int_equal(r.calls[PFSYNC_ACT_CLR], 1);
	assert_int_equal(pfsync_get_be32(&r.clr.creatorid), CREATOR);
	assert_int_equal(r.clr.ifname[0], 0);
	assert_int_equal(st.iacts[PFSYNC_ACT_CLR], 1);
	assert_only_counter(&st, SIZE_MAX);
}

/* ---- states for round trips ----------------------------------------------- */
static void make_state(struct pfsync_key *k, struct pfsync_state_value *v, __u8 af, __u8 proto,
		       __u8 direction, int init_side, __u64 now)
{
	memset(k, 0, sizeof(*k));
	memset(v, 0, sizeof(*v));
	k->af = af;
	k->proto = proto;
	if (af == PFSYNC_AF_INET) {
		k->addr[0][0] = htonl(0x0a000001); /* 10.0.0.1 < 10.0.0.2 */
		k->addr[1][0] = htonl(0x0a000002);
	} else {
		k->addr[0][0] = htonl(0x20010db8);
		k->addr[0][3] = htonl(1);
		k->addr[1][0] = htonl(0x20010db8);
		k->addr[1][3] = htonl(2);
	}
	if (proto == IPPROTO_ICMP) {
		k->port[init_side] = htons(0x1234); /* echo id at the initiator */
		k->port[!init_side] = htons(8);	    /* echo request type */
	} else {
		k->port[init_side] = htons(40000);
		k->port[!init_side] = htons(proto == IPPROTO_UDP ? 53 : 443);
	}
	v->id = STATE_ID;
	v->creatorid = CREATOR;
	v->rule = 3;
	v->creation = now - 100 * NS;
	v->last_seen = now - 5 * NS;
	v->packets[0] = 0x100000002ULL;
	v->packets[1] = 7;
	v->bytes[0] = 1500;
	v->bytes[1] = 0xabcdef0123ULL;
	v->direction = direction;
	v->init_side = (__u8)init_side;
	if (proto == IPPROTO_TCP) {
		v->peer[0] = (struct pfsync_peer){.seqlo = 1000,
						  .seqhi = 70000,
						  .max_win = 65535,
						  .mss = 1460,
						  .state = TCPS_ESTABLISHED,
						  .wscale = PF_WSCALE_FLAG | 7};
		v->peer[1] = (struct pfsync_peer){.seqlo = 0xfffffff0,
						  .seqhi = 0x10000,
						  .max_win = 29200,
						  .state = TCPS_ESTABLISHED,
						  .wscale = PF_WSCALE_FLAG | 2};
		v->timeout = PFTM_TCP_ESTABLISHED;
		v->state_flags = PFSTATE_ACK;
	} else if (proto == IPPROTO_UDP) {
		v->peer[0].state = PFUDPS_MULTIPLE;
		v->peer[1].state = PFUDPS_SINGLE;
		v->timeout = PFTM_UDP_MULTIPLE;
		v->state_flags = PFSTATE_SLOPPY;
	} else {
		v->peer[0].state = PFUDPS_SINGLE;
		v->timeout = PFTM_ICMP_FIRST_PACKET;
	}
}

static void roundtrip(__u8 af, __u8 proto, __u8 direction, int init_side)
{
	struct pfsync_key k, k2;
	struct pfsync_state_value v, v2;
	struct pfsync_state wire;
	struct pfsync_stats st = {0};
	struct rec r = {0};
	__u64 now = 5000 * NS;
	int init_w = direction == PF_OUT ? 1 : 0;
	size_t alen = af == PFSYNC_AF_INET6 ? 16 : 4;
	__u8 pkt[1500];
	size_t n;

	make_state(&k, &v, af, proto, direction, init_side, now);
	pfsync_state_export(&k, &v, now, NULL, 10, &wire);

	/* wire layout: pf's index convention, BSD af, fixed fields */
	assert_memory_equal(wire.key[0].addr[init_w], k.addr[init_side], alen);
	assert_memory_equal(wire.key[0].addr[!init_w], k.addr[!init_side], alen);
	assert_memory_equal(&wire.key[0].port[init_w], &k.port[init_side], 2);
	assert_memory_equal(&wire.key[0], &wire.key[1], sizeof(wire.key[0]));
	assert_int_equal(wire.af, af == PFSYNC_AF_INET6 ? 24 : 2);
	assert_int_equal(wire.key[0].af, wire.af);
	assert_string_equal(wire.ifname, "all");
	assert_int_equal(pfsync_get_be32(&wire.rtableid[0]), 0xffffffffU);
	assert_int_equal(pfsync_get_be32(&wire.anchor), 0xffffffffU);
	assert_int_equal(pfsync_get_be32(&wire.nat_rule), 0xffffffffU);
	assert_int_equal(pfsync_get_be32(&wire.rule), 3);
	assert_int_equal(pfsync_get_be32(&wire.creation), 100);
	assert_true(pfsync_get_be64(&wire.packets[0]) == v.packets[0]);
	assert_true(pfsync_get_be64(&wire.bytes[1]) == v.bytes[1]);
	assert_int_equal(((const __u8 *)&wire)[0], 0x65);   /* id big-endian */
	assert_int_equal(((const __u8 *)&wire)[236], 0x12); /* creatorid raw */

	struct pfsync_builder *b = pfsync_builder_new(1500);

	assert_non_null(b);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS, &wire), 0);
	n = pfsync_builder_finish(b, pkt, sizeof(pkt));
	pfsync_builder_free(b);
	assert_int_equal(n, PFSYNC_HDRLEN + 4 + sizeof(struct pfsync_state));
	assert_int_equal(decode_copy(pkt, n, &r, &st), 0);
	assert_int_equal(r.calls[PFSYNC_ACT_INS], 1);
	assert_only_counter(&st, SIZE_MAX);
	assert_memory_equal(&r.state, &wire, sizeof(wire));

	assert_int_equal(pfsync_state_import(&r.state, now, NULL, &k2, &v2), 0);
	assert_memory_equal(&k2, &k, sizeof(k));
	assert_int_equal(v2.init_side, v.init_side);
	assert_int_equal(v2.direction, v.direction);
	assert_true(v2.id == v.id);
	assert_int_equal(v2.creatorid, v.creatorid);
	assert_memory_equal(v2.peer, v.peer, sizeof(v.peer));
	assert_int_equal(v2.timeout, v.timeout);
	assert_int_equal(v2.state_flags, v.state_flags);
	assert_int_equal(v2.flags, PFSYNC_SF_FROM_PEER);
	assert_true(v2.packets[0] == 0 && v2.bytes[1] == 0); /* counters restart */
	assert_true(v2.creation == v.creation);
	/* seconds on the wire: the peer's expiry is kept within one second */
	assert_true(v2.last_seen >= v.last_seen && v2.last_seen < v.last_seen + NS);
}

static void test_roundtrip_tcp4_in(void **unused)
{
	(void)unused;
	roundtrip(PFSYNC_AF_INET, IPPROTO_TCP, PF_IN, 1);
	roundtrip(PFSYNC_AF_INET, IPPROTO_TCP, PF_IN, 0);
}

static void test_roundtrip_tcp6_out(void **unused)
{
	(void)unused;
	roundtrip(PFSYNC_AF_INET6, IPPROTO_TCP, PF_OUT, 0);
	roundtrip(PFSYNC_AF_INET6, IPPROTO_TCP, PF_OUT, 1);
}

static void test_roundtrip_udp(void **unused)
{
	(void)unused;
	roundtrip(PFSYNC_AF_INET, IPPROTO_UDP, PF_OUT, 1);
	roundtrip(PFSYNC_AF_INET6, IPPROTO_UDP, PF_IN, 0);
}

static void test_roundtrip_icmp(void **unused)
{
	(void)unused;
	roundtrip(PFSYNC_AF_INET, IPPROTO_ICMP, PF_IN, 0);
	roundtrip(PFSYNC_AF_INET, IPPROTO_ICMP, PF_OUT, 1);
}

/*
 * Issue 15: an OpenBSD INS of a nat-to state, laid out by hand from
 * pfsync-wire.md §2.5-2.6. 10.0.0.5:1234 connected out to 203.0.113.9:443
 * and leaves as 198.51.100.1:50123: key[0] (wire) and key[1] (stack)
 * differ in the initiator's endpoint, which direction OUT puts at [1].
 */
static void put_bytes(__u8 *at, const __u8 *bytes, size_t n)
{
	memcpy(at, bytes, n);
}

static void put_key_v4(__u8 *key, const __u8 a0[4], const __u8 a1[4], __u16 p0, __u16 p1)
{
	memset(key, 0, 40);
	put_bytes(key + 0, a0, 4);  /* addr[0] */
	put_bytes(key + 16, a1, 4); /* addr[1] */
	key[32] = (__u8)(p0 >> 8);  /* port[0], network order */
	key[33] = (__u8)p0;
	key[34] = (__u8)(p1 >> 8);
	key[35] = (__u8)p1;
	key[38] = 2; /* af: BSD AF_INET */
}

static void build_nat_ins(__u8 st[264], __u8 direction, const __u8 *wire_key, const __u8 *stack_key)
{
	static const __u8 id[8] = {0x65, 0x78, 0xa1, 0xc0, 0, 0, 0, 0x09};
	static const __u8 creator[4] = {0x12, 0x34, 0xab, 0xcd};
	static const __u8 none[4] = {0xff, 0xff, 0xff, 0xff};

	memset(st, 0, 264);
	put_bytes(st + 0, id, 8);
	put_bytes(st + 8, (const __u8 *)"all", 3);
	put_bytes(st + 24, wire_key, 40);
	put_bytes(st + 64, stack_key, 40);
	st[104 + 24] = TCPS_ESTABLISHED; /* src.state */
	st[136 + 24] = TCPS_ESTABLISHED; /* dst.state */
	put_bytes(st + 184, none, 4);	 /* rule */
	put_bytes(st + 188, none, 4);	 /* anchor */
	put_bytes(st + 192, none, 4);	 /* nat_rule */
	st[199] = 10;			 /* creation: 10 s ago */
	st[202] = 0x0e;			 /* expire: 3600 s */
	st[203] = 0x10;
	put_bytes(st + 236, creator, 4);
	put_bytes(st + 240, none, 4); /* rtableid[0] */
	put_bytes(st + 244, none, 4); /* rtableid[1] */
	st[250] = 2;		      /* af */
	st[251] = IPPROTO_TCP;
	st[252] = direction;
	st[255] = PFTM_TCP_ESTABLISHED;
}

static const __u8 ip_server[4] = {203, 0, 113, 9}, ip_public[4] = {198, 51, 100, 1},
		  ip_client[4] = {10, 0, 0, 5}, ip_remote[4] = {192, 0, 2, 7},
		  ip_inside[4] = {10, 0, 0, 10};

static void assert_endpoint(const struct pfsync_key *k, int side, const __u8 addr[4], __u16 port)
{
	assert_memory_equal(k->addr[side], addr, 4);
	assert_int_equal(ntohs(k->port[side]), port);
}

static void import_and_export(const __u8 st[264], struct pfsync_key *k,
			      struct pfsync_state_value *v, struct pfsync_state *out)
{
	struct pfsync_state in;
	__u64 now = 5000 * NS;

	memcpy(&in, st, sizeof(in));
	assert_int_equal(pfsync_state_check(&in, PFSYNC_ACT_INS), 0);
	assert_int_equal(pfsync_state_import(&in, now, NULL, k, v), 0);
	pfsync_state_export(k, v, now, NULL, 10, out);
}

/* import keeps both keys, export writes the same 80 key bytes back */
static void import_export_nat(const __u8 st[264], struct pfsync_key *k,
			      struct pfsync_state_value *v)
{
	struct pfsync_state out;

	import_and_export(st, k, v, &out);
	assert_memory_equal((const __u8 *)&out + 24, st + 24, 80);
}

static void test_nat_to_ins_both_keys(void **unused)
{
	__u8 wire[40], stack[40], st[264];
	struct pfsync_state_value v;
	struct pfsync_key k;

	(void)unused;
	put_key_v4(wire, ip_server, ip_public, 443, 50123);
	put_key_v4(stack, ip_server, ip_client, 443, 1234);
	build_nat_ins(st, PF_OUT, wire, stack);
	import_export_nat(st, &k, &v);
	/* the map key is the wire key: 198.51.100.1 sorts first, the initiator */
	assert_int_equal(v.init_side, 0);
	assert_endpoint(&k, 0, ip_public, 50123);
	assert_endpoint(&k, 1, ip_server, 443);
	assert_int_equal(v.nat.type, PFSYNC_NAT_NAT);
	assert_int_equal(v.nat.stack_init_side, 0);
	assert_endpoint(&v.nat.stack_key, 0, ip_client, 1234);
	assert_endpoint(&v.nat.stack_key, 1, ip_server, 443);
	assert_int_equal(v.nat.stack_key.proto, IPPROTO_TCP);
	assert_int_equal(v.nat.stack_key.af, PFSYNC_AF_INET);
}

/* rdr-to, direction IN: [0] is the initiator, the responder's endpoint differs */
static void test_rdr_to_ins_both_keys(void **unused)
{
	__u8 wire[40], stack[40], st[264];
	struct pfsync_state_value v;
	struct pfsync_state out;
	struct pfsync_key k;

	(void)unused;
	put_key_v4(wire, ip_remote, ip_public, 40000, 80);
	put_key_v4(stack, ip_remote, ip_inside, 40000, 8080);
	build_nat_ins(st, PF_IN, wire, stack);
	st[64 + 38] = 0; /* a key af of 0 means the state's; export fills it in */
	import_and_export(st, &k, &v, &out);
	assert_memory_equal((const __u8 *)&out + 24, wire, 40);
	assert_memory_equal((const __u8 *)&out + 64, stack, 40);
	assert_int_equal(v.nat.type, PFSYNC_NAT_RDR);
	/* wire: 192.0.2.7 < 198.51.100.1; stack: 10.0.0.10 sorts before 192.0.2.7 */
	assert_int_equal(v.init_side, 0);
	assert_int_equal(v.nat.stack_init_side, 1);
	assert_endpoint(&v.nat.stack_key, 0, ip_inside, 8080);
	assert_endpoint(&v.nat.stack_key, 1, ip_remote, 40000);
}

/* key[1] equal to key[0]: one key, nothing translated, key[1] sent equal */
static void test_equal_keys_untranslated(void **unused)
{
	__u8 wire[40], st[264];
	struct pfsync_state_value v;
	struct pfsync_key k;

	(void)unused;
	put_key_v4(wire, ip_server, ip_client, 443, 1234);
	build_nat_ins(st, PF_OUT, wire, wire);
	import_export_nat(st, &k, &v);
	assert_int_equal(v.nat.type, PFSYNC_NAT_NONE);
	assert_int_equal(v.nat.stack_init_side, 0);
	assert_int_equal(v.nat.stack_key.af, 0);
}

static void test_export_expire(void **unused)
{
	struct pfsync_key k;
	struct pfsync_state_value v;
	struct pfsync_state wire;
	struct pfsync_config cfg;
	__u64 now = 5000 * NS;

	(void)unused;
	make_state(&k, &v, PFSYNC_AF_INET, IPPROTO_UDP, PF_IN, 0, now);
	v.last_seen = now - 10 * NS; /* udp.multiple 60 s, 50 left */
	pfsync_state_export(&k, &v, now, NULL, 0, &wire);
	assert_int_equal(pfsync_get_be32(&wire.expire), 50);
	/* adaptive: halfway between start and end halves the timeout (30 s, 20 left) */
	memset(&cfg, 0, sizeof(cfg));
	cfg.timeouts[PFTM_ADAPTIVE_START] = 100;
	cfg.timeouts[PFTM_ADAPTIVE_END] = 200;
	pfsync_state_export(&k, &v, now, &cfg, 150, &wire);
	assert_int_equal(pfsync_get_be32(&wire.expire), 20);
	/* due already: 0 */
	v.last_seen = now - 100 * NS;
	pfsync_state_export(&k, &v, now, NULL, 0, &wire);
	assert_int_equal(pfsync_get_be32(&wire.expire), 0);
}

static void test_import_times_and_checks(void **unused)
{
	struct pfsync_key k, k2;
	struct pfsync_state_value v, v2;
	struct pfsync_state wire, bad;
	__u64 now = 100000 * NS;

	(void)unused;
	make_state(&k, &v, PFSYNC_AF_INET, IPPROTO_TCP, PF_IN, 0, now);
	pfsync_state_export(&k, &v, now, NULL, 0, &wire);
	pfsync_put_be32(&wire.expire, 10); /* 10 of tcp.established's 86400 left */
	assert_int_equal(pfsync_state_import(&wire, now, NULL, &k2, &v2), 0);
	assert_true(v2.last_seen == now - (86400 - 10) * NS);
	pfsync_put_be32(&wire.expire, 0); /* 0 = full fresh timeout */
	assert_int_equal(pfsync_state_import(&wire, now, NULL, &k2, &v2), 0);
	assert_true(v2.last_seen == now);

	/* no-sync travels both ways between PFSTATE_NOSYNC and the local flag */
	v.flags |= PFSYNC_SF_NOSYNC;
	pfsync_state_export(&k, &v, now, NULL, 0, &bad);
	assert_int_equal(pfsync_get_be16(&bad.state_flags) & PFSTATE_NOSYNC, PFSTATE_NOSYNC);
	assert_int_equal(pfsync_state_import(&bad, now, NULL, &k2, &v2), 0);
	assert_int_equal(v2.flags, PFSYNC_SF_FROM_PEER | PFSYNC_SF_NOSYNC);

	bad = wire;
	pfsync_put_be32(&bad.creatorid, 0);
	assert_int_equal(pfsync_state_import(&bad, now, NULL, &k2, &v2), -EINVAL);
	bad = wire;
	bad.timeout = PFTM_MAX;
	assert_int_equal(pfsync_state_import(&bad, now, NULL, &k2, &v2), -EINVAL);
	bad = wire;
	bad.dst.state = 13;
	assert_int_equal(pfsync_state_import(&bad, now, NULL, &k2, &v2), -EINVAL);
	bad = wire;
	bad.direction = 3;
	assert_int_equal(pfsync_state_import(&bad, now, NULL, &k2, &v2), -EINVAL);
	bad = wire;
	bad.af = 10;
	assert_int_equal(pfsync_state_import(&bad, now, NULL, &k2, &v2), -EINVAL);
	bad = wire;
	bad.key[1].af = 28; /* FreeBSD's AF_INET6 */
	assert_int_equal(pfsync_state_import(&bad, now, NULL, &k2, &v2), -EINVAL);
	bad = wire;
	bad.key[0].af = 0; /* 0 = the state's af */
	bad.key[1].af = 0;
	assert_int_equal(pfsync_state_import(&bad, now, NULL, &k2, &v2), 0);
}

/* ---- negative vectors: each bumps exactly its counter ---------------------- */
static void test_neg_ttl(void **unused)
{
	__u8 ip[20 + sizeof(vec_ins_ack)];
	struct pfsync_stats st = {0};
	struct rec r = {0};

	(void)unused;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[1] = PFSYNC_IPTOS;
	pfsync_put_be16(ip + 2, sizeof(ip));
	ip[8] = 255;
	ip[9] = IPPROTO_PFSYNC;
	memcpy(ip + 20, vec_ins_ack, sizeof(vec_ins_ack));
	assert_int_equal(pfsync_input_ipv4(ip, sizeof(ip), &rec_ops, &r, &st), 0);
	assert_int_equal(r.calls[PFSYNC_ACT_INS_ACK], 1);
	assert_only_counter(&st, SIZE_MAX);
	assert_int_equal(st.ipackets, 1);

	ip[8] = 254;
	memset(&r, 0, sizeof(r));
	assert_int_equal(pfsync_input_ipv4(ip, sizeof(ip), &rec_ops, &r, &st), -1);
	assert_int_equal(r.calls[PFSYNC_ACT_INS_ACK], 0);
	assert_only_counter(&st, offsetof(struct pfsync_stats, badttl));
	assert_int_equal(st.ipackets, 2);
}

static void test_ipv4_malformed(void **unused)
{
	__u8 ip[24 + sizeof(vec_ins_ack) + 5];
	struct pfsync_stats st = {0};
	struct rec r = {0};

	(void)unused;
	/* IHL 6 (one option word) and 5 trailing bytes past the IP total length */
	memset(ip, 0, sizeof(ip));
	ip[0] = 0x46;
	pfsync_put_be16(ip + 2, 24 + sizeof(vec_ins_ack));
	ip[8] = 255;
	ip[9] = IPPROTO_PFSYNC;
	memcpy(ip + 24, vec_ins_ack, sizeof(vec_ins_ack));
	assert_int_equal(pfsync_input_ipv4(ip, sizeof(ip), &rec_ops, &r, &st), 0);
	assert_int_equal(r.calls[PFSYNC_ACT_INS_ACK], 1);
	assert_only_counter(&st, SIZE_MAX);

	ip[9] = IPPROTO_UDP; /* not pfsync */
	assert_int_equal(pfsync_input_ipv4(ip, sizeof(ip), &rec_ops, &r, &st), -1);
	assert_only_counter(&st, offsetof(struct pfsync_stats, hdrops));
	ip[9] = IPPROTO_PFSYNC;
	ip[0] = 0x4f; /* IHL beyond the packet */
	memset(&st, 0, sizeof(st));
	assert_int_equal(pfsync_input_ipv4(ip, 50, &rec_ops, &r, &st), -1);
	assert_only_counter(&st, offsetof(struct pfsync_stats, hdrops));
	ip[0] = 0x65; /* IPv6 version nibble */
	memset(&st, 0, sizeof(st));
	assert_int_equal(pfsync_input_ipv4(ip, sizeof(ip), &rec_ops, &r, &st), -1);
	assert_only_counter(&st, offsetof(struct pfsync_stats, hdrops));
	/* IP total length shorter than the pfsync header's len: badlen */
	ip[0] = 0x46;
	pfsync_put_be16(ip + 2, 24 + sizeof(vec_ins_ack) - 4);
	memset(&st, 0, sizeof(st));
	assert_int_equal(pfsync_input_ipv4(ip, sizeof(ip), &rec_ops, &r, &st), -1);
	assert_only_counter(&st, offsetof(struct pfsync_stats, badlen));
	assert_int_equal(st.ipackets, 1);
}

static void neg_vector(const __u8 *pkt, size_t len, size_t counter)
{
	struct pfsync_stats st = {0};
	struct rec r = {0};

	assert_int_equal(decode_copy(pkt, len, &r, &st), -1);
	assert_only_counter(&st, counter);
}

static void test_neg_badver(void **unused)
{
	__u8 pkt[sizeof(vec_ins_ack)];

	(void)unused;
	memcpy(pkt, vec_ins_ack, sizeof(pkt));
	pkt[0] = 5;
	neg_vector(pkt, sizeof(pkt), offsetof(struct pfsync_stats, badver));
}

static void test_neg_badlen(void **unused)
{
	__u8 pkt[sizeof(vec_ins_ack)];

	(void)unused;
	memcpy(pkt, vec_ins_ack, sizeof(pkt));
	pkt[3] = 0x25;
	neg_vector(pkt, sizeof(pkt), offsetof(struct pfsync_stats, badlen));
}

static void test_neg_badact(void **unused)
{
	__u8 pkt[sizeof(vec_bulk_req)];

	(void)unused;
	memcpy(pkt, vec_bulk_req, sizeof(pkt));
	memcpy(pkt + 20, "\x13\x00\x00\x01", 4);
	neg_vector(pkt, sizeof(pkt), offsetof(struct pfsync_stats, badact));
}

static void test_neg_hdrops(void **unused)
{
	(void)unused;
	neg_vector(vec_ins_ack, PFSYNC_HDRLEN - 1, offsetof(struct pfsync_stats, hdrops));
}

static void test_neg_upd_c_timeout(void **unused)
{
	struct pfsync_key k;
	struct pfsync_state_value v;
	struct pfsync_upd_c u[2];
	struct pfsync_stats st = {0};
	struct rec r = {0};
	__u8 pkt[1500];
	size_t n;

	(void)unused;
	make_state(&k, &v, PFSYNC_AF_INET, IPPROTO_TCP, PF_IN, 0, 100 * NS);
	pfsync_upd_c_export(&v, &u[0]);
	assert_int_equal(pfsync_get_be32(&u[0].creatorid), CREATOR);
	assert_int_equal(u[0].timeout, PFTM_TCP_ESTABLISHED);
	u[1] = u[0];
	u[0].timeout = 20; /* bad one first: the good one after it is still applied */
	n = build_one(PFSYNC_ACT_UPD_C, u, 2, sizeof(u[0]), pkt, sizeof(pkt));
	assert_int_equal(decode_copy(pkt, n, &r, &st), 0);
	assert_only_counter(&st, offsetof(struct pfsync_stats, badval));
	assert_int_equal(r.calls[PFSYNC_ACT_UPD_C], 1);
	assert_int_equal(r.upd_c.timeout, PFTM_TCP_ESTABLISHED);
	assert_int_equal(st.iacts[PFSYNC_ACT_UPD_C], 2);
}

static void test_neg_ins_af10(void **unused)
{
	struct pfsync_key k;
	struct pfsync_state_value v;
	struct pfsync_state s;
	struct pfsync_stats st = {0};
	struct rec r = {0};
	__u8 pkt[1500];
	size_t n;

	(void)unused;
	make_state(&k, &v, PFSYNC_AF_INET6, IPPROTO_TCP, PF_IN, 0, 100 * NS);
	pfsync_state_export(&k, &v, 100 * NS, NULL, 0, &s);
	s.af = 10; /* Linux AF_INET6 */
	n = build_one(PFSYNC_ACT_INS, &s, 1, sizeof(s), pkt, sizeof(pkt));
	assert_int_equal(decode_copy(pkt, n, &r, &st), 0);
	assert_only_counter(&st, offsetof(struct pfsync_stats, badval));
	assert_int_equal(r.calls[PFSYNC_ACT_INS], 0);
	/* UPD does not check af (OpenBSD's pfsync_in_upd) */
	memset(&st, 0, sizeof(st));
	n = build_one(PFSYNC_ACT_UPD, &s, 1, sizeof(s), pkt, sizeof(pkt));
	assert_int_equal(decode_copy(pkt, n, &r, &st), 0);
	assert_only_counter(&st, SIZE_MAX);
	assert_int_equal(r.calls[PFSYNC_ACT_UPD], 1);
}

/* ---- robustness ----------------------------------------------------------- */
static size_t build_mixed(__u8 *pkt, size_t cap)
{
	struct pfsync_builder *b = pfsync_builder_new(1500);
	struct pfsync_key k;
	struct pfsync_state_value v;
	struct pfsync_state s;
	struct pfsync_upd_c u;
	struct pfsync_del_c d;
	size_t n;

	assert_non_null(b);
	make_state(&k, &v, PFSYNC_AF_INET, IPPROTO_TCP, PF_IN, 0, 100 * NS);
	pfsync_state_export(&k, &v, 100 * NS, NULL, 0, &s);
	pfsync_upd_c_export(&v, &u);
	pfsync_id_msg_fill(&d, STATE_ID, CREATOR);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS, &s), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_UPD_C, &u), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_DEL_C, &d), 0);
	n = pfsync_builder_finish(b, pkt, cap);
	pfsync_builder_free(b);
	return n;
}

static void test_truncation_every_offset(void **unused)
{
	const struct {
		const __u8 *p;
		size_t n;
	} vecs[] = {{vec_bulk_req, sizeof(vec_bulk_req)},
		    {vec_ins_ack, sizeof(vec_ins_ack)},
		    {vec_del_c2, sizeof(vec_del_c2)},
		    {vec_bus_end, sizeof(vec_bus_end)},
		    {vec_clr, sizeof(vec_clr)}};
	__u8 mixed[1500];
	size_t nmixed = build_mixed(mixed, sizeof(mixed));

	(void)unused;
	assert_true(nmixed > 300);
	for (size_t v = 0; v <= sizeof(vecs) / sizeof(vecs[0]); v++) {
		const __u8 *p = v < 5 ? vecs[v].p : mixed;
		size_t n = v < 5 ? vecs[v].n : nmixed;

		for (size_t cut = 0; cut < n; cut++) {
			struct pfsync_stats st = {0};
			struct rec r = {0};

			/* a cut packet still announces the full length: hdrops or badlen */
			assert_int_equal(decode_copy(p, cut, &r, &st), -1);
			assert_int_equal(st.hdrops + st.badlen, 1);
			for (int a = 0; a < PFSYNC_ACT_MAX; a++)
				assert_int_equal(r.calls[a], 0);
		}
	}
}

static void test_trim_and_short_header_len(void **unused)
{
	__u8 pkt[sizeof(vec_del_c2) + 7];
	struct pfsync_stats st = {0};
	struct rec r = {0};

	(void)unused;
	/* trailing bytes beyond header len are trimmed */
	memcpy(pkt, vec_del_c2, sizeof(vec_del_c2));
	memset(pkt + sizeof(vec_del_c2), 0xee, 7);
	assert_int_equal(decode_copy(pkt, sizeof(pkt), &r, &st), 0);
	assert_int_equal(r.calls[PFSYNC_ACT_DEL_C], 2);
	assert_only_counter(&st, SIZE_MAX);
	/* header claims fewer bytes than a section needs: the section is short -> badlen */
	memset(&r, 0, sizeof(r));
	pkt[3] = 0x24;
	assert_int_equal(decode_copy(pkt, sizeof(pkt), &r, &st), -1);
	assert_int_equal(r.calls[PFSYNC_ACT_DEL_C], 0);
	assert_int_equal(st.badlen, 1);
}

static void test_larger_stride(void **unused)
{
	/* INS_ACK announced as 4 words (16 bytes) per message, two of them */
	__u8 pkt[20 + 4 + 32];
	struct pfsync_stats st = {0};
	struct rec r = {0};

	(void)unused;
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 6;
	pkt[3] = sizeof(pkt);
	memcpy(pkt + 20, "\x02\x04\x00\x02", 4);
	pfsync_id_msg_fill(pkt + 24, STATE_ID, CREATOR);
	memset(pkt + 36, 0xaa, 4); /* tail of message 1, ignored */
	pfsync_id_msg_fill(pkt + 40, STATE_ID + 9, CREATOR + 1);
	memset(pkt + 52, 0xbb, 4);
	assert_int_equal(decode_copy(pkt, sizeof(pkt), &r, &st), 0);
	assert_int_equal(r.calls[PFSYNC_ACT_INS_ACK], 2);
	assert_true(r.ids[0] == STATE_ID && r.ids[1] == STATE_ID + 9);
	assert_int_equal(r.creators[1], CREATOR + 1);
	assert_int_equal(st.iacts[PFSYNC_ACT_INS_ACK], 2);
	assert_only_counter(&st, SIZE_MAX);
}

static void test_skip_unknown_and_short(void **unused)
{
	/* action 20 len 1 x2 (skipped), EOF len 1 x1 (skipped), INS_ACK len 2 (smaller than
	   ours, skipped), then a real INS_ACK */
	__u8 pkt[20 + 4 + 8 + 4 + 4 + 4 + 8 + 4 + 12];
	struct pfsync_stats st = {0};
	struct rec r = {0};
	size_t off = 20;

	(void)unused;
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 6;
	pkt[3] = sizeof(pkt);
	memcpy(pkt + off, "\x14\x01\x00\x02", 4);
	off += 4 + 8;
	memcpy(pkt + off, "\x0c\x01\x00\x01", 4);
	off += 4 + 4;
	memcpy(pkt + off, "\x02\x02\x00\x01", 4);
	off += 4 + 8;
	memcpy(pkt + off, "\x02\x03\x00\x01", 4);
	pfsync_id_msg_fill(pkt + off + 4, STATE_ID, CREATOR);
	assert_int_equal(decode_copy(pkt, sizeof(pkt), &r, &st), 0);
	assert_int_equal(r.calls[PFSYNC_ACT_INS_ACK], 1);
	assert_true(r.ids[0] == STATE_ID);
	assert_int_equal(st.iacts[PFSYNC_ACT_INS_ACK], 1);
	assert_int_equal(st.iacts[PFSYNC_ACT_EOF], 0);
	assert_only_counter(&st, SIZE_MAX);
}

static void test_section_overrun_keeps_earlier(void **unused)
{
	/* DEL_C x1 applied, then INS_ACK announcing 3 messages with room for 1 -> badlen */
	__u8 pkt[20 + 4 + 12 + 4 + 12];
	struct pfsync_stats st = {0};
	struct rec r = {0};

	(void)unused;
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 6;
	pkt[3] = sizeof(pkt);
	memcpy(pkt + 20, "\x07\x03\x00\x01", 4);
	pfsync_id_msg_fill(pkt + 24, STATE_ID, CREATOR);
	memcpy(pkt + 36, "\x02\x03\x00\x03", 4);
	assert_int_equal(decode_copy(pkt, sizeof(pkt), &r, &st), -1);
	assert_int_equal(r.calls[PFSYNC_ACT_DEL_C], 1);
	assert_int_equal(r.calls[PFSYNC_ACT_INS_ACK], 0);
	assert_only_counter(&st, offsetof(struct pfsync_stats, badlen));
	/* known action with count 0 is fine (nothing to do), len 0 on unknown is badact */
	memset(&st, 0, sizeof(st));
	memcpy(pkt + 36, "\x02\x03\x00\x00", 4);
	pkt[3] = 40;
	assert_int_equal(decode_copy(pkt, 40, &r, &st), 0);
	assert_only_counter(&st, SIZE_MAX);
}

/* ---- builder --------------------------------------------------------------- */
static void test_builder_fills_mtu(void **unused)
{
	struct pfsync_builder *b = pfsync_builder_new(1500);
	struct pfsync_state s;
	struct pfsync_ins_ack ack;
	__u8 pkt[1500];
	int added = 0;

	(void)unused;
	assert_non_null(b);
	memset(&s, 0x11, sizeof(s));
	while (pfsync_builder_add(b, PFSYNC_ACT_INS, &s) == 0)
		added++;
	assert_int_equal(added, 5); /* 20 + 4 + 5 * 264 = 1344 <= 1480 < 1608 */
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS, &s), -ENOSPC);
	/* the space left (136 B) still takes small messages: 11 INS_ACKs with their subheader */
	pfsync_id_msg_fill(&ack, 1, 2);
	added = 0;
	while (pfsync_builder_add(b, PFSYNC_ACT_INS_ACK, &ack) == 0)
		added++;
	assert_int_equal(added, (1480 - 1344 - 4) / 12);
	assert_true(pfsync_builder_bytes(b) <= 1480);
	assert_true(pfsync_builder_bytes(b) + 12 > 1480);
	assert_int_equal(pfsync_builder_finish(b, pkt, 100), 0); /* too small: nothing lost */
	assert_int_equal(pfsync_builder_count(b), 5 + added);
	assert_int_equal(pfsync_builder_finish(b, pkt, sizeof(pkt)), 1344 + 4 + added * 12);
	assert_int_equal(pfsync_get_be16(pkt + 2), 1344 + 4 + added * 12);
	assert_int_equal(pfsync_builder_finish(b, pkt, sizeof(pkt)), 0); /* empty now */
	assert_int_equal(pfsync_builder_add(b, 1, &ack), -EINVAL);
	assert_int_equal(pfsync_builder_add(b, 16, &ack), -EINVAL);
	pfsync_builder_free(b);
	assert_null(pfsync_builder_new(300));
	b = pfsync_builder_new(9000);
	assert_non_null(b);
	added = 0;
	while (pfsync_builder_add(b, PFSYNC_ACT_UPD, &s) == 0)
		added++;
	assert_int_equal(added, 33);
	pfsync_builder_free(b);
}

/* walks the sections of a packet and returns their actions in order */
static size_t section_actions(const __u8 *pkt, size_t len, __u8 *acts, size_t max)
{
	size_t off = PFSYNC_HDRLEN, n = 0;

	while (off + 4 <= len && n < max) {
		acts[n++] = pkt[off];
		off += 4 + (size_t)pkt[off + 1] * 4 * pfsync_get_be16(pkt + off + 2);
	}
	assert_int_equal(off, len);
	return n;
}

static void test_builder_order(void **unused)
{
	struct pfsync_builder *b = pfsync_builder_new(1500);
	struct pfsync_state s;
	struct pfsync_upd_c u;
	struct pfsync_clr c;
	struct pfsync_bus start, end;
	__u8 id12[12], pkt[1500], acts[16];
	const __u8 want[] = {0, 2, 4, 7, 13, 14, 5, 10};
	const __u8 want_start[] = {10, 7};
	size_t n;

	(void)unused;
	assert_non_null(b);
	memset(&s, 0, sizeof(s));
	memset(&u, 0, sizeof(u));
	memset(&c, 0, sizeof(c));
	memset(&start, 0, sizeof(start));
	start.status = PFSYNC_BUS_START;
	end = start;
	end.status = PFSYNC_BUS_END;
	pfsync_id_msg_fill(id12, 1, 1);
	/* added in a scrambled order */
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_BUS, &end), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_UPD, &s), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_DEL_C, id12), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS, &s), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_UPD_C, &u), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_UPD, &s), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_INS_ACK, id12), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_UPD_REQ, id12), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_CLR, &c), 0);
	n = pfsync_builder_finish(b, pkt, sizeof(pkt));
	assert_int_equal(section_actions(pkt, n, acts, 16), sizeof(want));
	assert_memory_equal(acts, want, sizeof(want));
	assert_int_equal(pfsync_get_be16(pkt + 2), n);
	for (size_t i = 4; i < PFSYNC_HDRLEN; i++)
		assert_int_equal(pkt[i], 0); /* pfcksum zero */

	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_BUS, &start), 0);
	assert_int_equal(pfsync_builder_add(b, PFSYNC_ACT_DEL_C, id12), 0);
	n = pfsync_builder_finish(b, pkt, sizeof(pkt));
	assert_int_equal(section_actions(pkt, n, acts, 16), sizeof(want_start));
	assert_memory_equal(acts, want_start, sizeof(want_start));
	pfsync_builder_free(b);
}

/* ---- merge (§3.4) ---------------------------------------------------------- */
static struct pfsync_state_peer wire_peer(__u8 state, __u32 seqlo)
{
	struct pfsync_peer p = {
	    .seqlo = seqlo, .seqhi = seqlo + 1000, .max_win = 100, .state = state};
	struct pfsync_state_peer w;

	pfsync_peer_export(&p, &w);
	return w;
}

static void local_state(struct pfsync_state_value *v, __u8 s0, __u32 q0, __u8 s1, __u32 q1)
{
	memset(v, 0, sizeof(*v));
	v->peer[0].state = s0;
	v->peer[0].seqlo = q0;
	v->peer[1].state = s1;
	v->peer[1].seqlo = q1;
	v->last_seen = 10 * NS;
	v->timeout = PFTM_TCP_OPENING;
}

static void test_merge_tcp(void **unused)
{
	struct pfsync_state_value v;
	struct pfsync_state_peer src, dst;
	__u64 now = 50 * NS;

	(void)unused;
	/* incoming newer on both halves: overwritten, refreshed */
	local_state(&v, TCPS_SYN_SENT, 100, TCPS_CLOSED, 0);
	src = wire_peer(TCPS_ESTABLISHED, 200);
	dst = wire_peer(TCPS_ESTABLISHED, 5000);
	assert_int_equal(pfsync_merge_peers(&v, &src, &dst, PFTM_TCP_ESTABLISHED, IPPROTO_TCP, now),
			 0);
	assert_int_equal(v.peer[0].state, TCPS_ESTABLISHED);
	assert_int_equal(v.peer[0].seqlo, 200);
	assert_int_equal(v.peer[0].seqhi, 1200);
	assert_int_equal(v.peer[1].seqlo, 5000);
	assert_true(v.last_seen == now);
	assert_int_equal(v.timeout, PFTM_TCP_ESTABLISHED);

	/* src: local level higher -> stale; dst: same level, local seqlo ahead -> stale */
	local_state(&v, TCPS_FIN_WAIT_1, 100, TCPS_ESTABLISHED, 900);
	src = wire_peer(TCPS_ESTABLISHED, 500);
	dst = wire_peer(TCPS_ESTABLISHED, 800);
	assert_int_equal(pfsync_merge_peers(&v, &src, &dst, PFTM_TCP_ESTABLISHED, IPPROTO_TCP, now),
			 2);
	assert_int_equal(v.peer[0].state, TCPS_FIN_WAIT_1);
	assert_int_equal(v.peer[1].seqlo, 900);
	assert_true(v.last_seen == 10 * NS); /* two stale halves: not refreshed */
	assert_int_equal(v.timeout, PFTM_TCP_OPENING);

	/* one stale half: the other is taken and the state refreshed */
	local_state(&v, TCPS_ESTABLISHED, 300, TCPS_ESTABLISHED, 100);
	src = wire_peer(TCPS_ESTABLISHED, 200); /* local ahead: stale */
	dst = wire_peer(TCPS_ESTABLISHED, 150); /* incoming ahead: taken */
	assert_int_equal(pfsync_merge_peers(&v, &src, &dst, PFTM_TCP_ESTABLISHED, IPPROTO_TCP, now),
			 1);
	assert_int_equal(v.peer[0].seqlo, 300);
	assert_int_equal(v.peer[1].seqlo, 150);
	assert_true(v.last_seen == now);

	/* sequence wrap: 0x10 is ahead of 0xfffffff0 */
	local_state(&v, TCPS_ESTABLISHED, 0x10, TCPS_ESTABLISHED, 0xfffffff0);
	src = wire_peer(TCPS_ESTABLISHED, 0xfffffff0); /* behind local 0x10: stale */
	dst = wire_peer(TCPS_ESTABLISHED, 0x10);       /* ahead of local: taken */
	assert_int_equal(pfsync_merge_peers(&v, &src, &dst, PFTM_TCP_ESTABLISHED, IPPROTO_TCP, now),
			 1);
	assert_int_equal(v.peer[0].seqlo, 0x10);
	assert_int_equal(v.peer[1].seqlo, 0x10);

	/* a local synproxy level does not make a non-proxy update stale (src half) */
	local_state(&v, PF_TCPS_PROXY_SRC, 0, TCPS_CLOSED, 0);
	src = wire_peer(TCPS_ESTABLISHED, 1);
	dst = wire_peer(TCPS_ESTABLISHED, 1);
	assert_int_equal(pfsync_merge_peers(&v, &src, &dst, PFTM_TCP_ESTABLISHED, IPPROTO_TCP, now),
			 0);
	assert_int_equal(v.peer[0].state, TCPS_ESTABLISHED);
	/* ... but a higher proxy level over a lower proxy one is stale */
	local_state(&v, PF_TCPS_PROXY_DST, 0, TCPS_CLOSED, 0);
	src = wire_peer(PF_TCPS_PROXY_SRC, 1);
	assert_int_equal(pfsync_merge_peers(&v, &src, &dst, PFTM_TCP_ESTABLISHED, IPPROTO_TCP, now),
			 1);
	assert_int_equal(v.peer[0].state, PF_TCPS_PROXY_DST);
}

static void test_merge_levels_only(void **unused)
{
	struct pfsync_state_value v;
	struct pfsync_state_peer src, dst;
	__u64 now = 70 * NS;

	(void)unused;
	/* UDP: sequence numbers do not matter, only levels */
	local_state(&v, PFUDPS_MULTIPLE, 500, PFUDPS_SINGLE, 500);
	src = wire_peer(PFUDPS_SINGLE, 900);   /* lower level: stale */
	dst = wire_peer(PFUDPS_MULTIPLE, 100); /* higher level, lower seq: taken */
	assert_int_equal(pfsync_merge_peers(&v, &src, &dst, PFTM_UDP_MULTIPLE, IPPROTO_UDP, now),
			 1);
	assert_int_equal(v.peer[0].state, PFUDPS_MULTIPLE);
	assert_int_equal(v.peer[1].state, PFUDPS_MULTIPLE);
	assert_int_equal(v.peer[1].seqlo, 100);
	assert_int_equal(v.timeout, PFTM_UDP_MULTIPLE);
	assert_true(v.last_seen == now);
	/* equal levels are never stale for non-TCP */
	local_state(&v, PFUDPS_SINGLE, 500, PFUDPS_SINGLE, 500);
	src = wire_peer(PFUDPS_SINGLE, 1);
	dst = wire_peer(PFUDPS_SINGLE, 1);
	assert_int_equal(pfsync_merge_peers(&v, &src, &dst, PFTM_OTHER_SINGLE, IPPROTO_GRE, now),
			 0);
	assert_int_equal(v.peer[0].seqlo, 1);
}

/* ---- stats text ------------------------------------------------------------ */
static void test_stats_print(void **unused)
{
	struct pfsync_stats st = {0};
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)unused;
	st.ipackets = 3;
	st.badttl = 1;
	st.opackets = 2;
	st.iacts[PFSYNC_ACT_INS] = 42;
	st.oacts[PFSYNC_ACT_UPD_C] = 7;
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	pfsync_stats_print(f, &st);
	fclose(f);
	assert_non_null(strstr(buf, "pfsync:\n\t3 packets received (IPv4)\n"));
	assert_non_null(strstr(buf, "\t0 packets received (IPv6)\n"));
	assert_non_null(strstr(buf, "\t\t1 packet discarded for bad ttl\n"));
	assert_non_null(strstr(buf, "\t\t0 states discarded for bad values\n"));
	assert_non_null(strstr(buf, "\t2 packets sent (IPv4)\n"));
	assert_non_null(strstr(buf, "\t\t0 send error\n"));
	assert_non_null(strstr(buf, "INS ST "));
	assert_non_null(strstr(buf, "42"));
	free(buf);

	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	pfsync_stats_print_json(f, &st);
	fclose(f);
	assert_non_null(strstr(buf, "\"ipackets\":3,"));
	assert_non_null(strstr(buf, "\"badttl\":1,"));
	assert_non_null(strstr(buf, "{\"action\":13,\"label\":\"INS ST\",\"in\":42,\"out\":0}"));
	assert_non_null(strstr(buf, "{\"action\":4,\"label\":\"UPD ST COMP\",\"in\":0,\"out\":7}"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vec_bulk_request),
	    cmocka_unit_test(test_vec_ins_ack),
	    cmocka_unit_test(test_vec_del_c_two),
	    cmocka_unit_test(test_vec_bus_end),
	    cmocka_unit_test(test_vec_clr),
	    cmocka_unit_test(test_roundtrip_tcp4_in),
	    cmocka_unit_test(test_roundtrip_tcp6_out),
	    cmocka_unit_test(test_roundtrip_udp),
	    cmocka_unit_test(test_roundtrip_icmp),
	    cmocka_unit_test(test_nat_to_ins_both_keys),
	    cmocka_unit_test(test_rdr_to_ins_both_keys),
	    cmocka_unit_test(test_equal_keys_untranslated),
	    cmocka_unit_test(test_export_expire),
	    cmocka_unit_test(test_import_times_and_checks),
	    cmocka_unit_test(test_neg_ttl),
	    cmocka_unit_test(test_ipv4_malformed),
	    cmocka_unit_test(test_neg_badver),
	    cmocka_unit_test(test_neg_badlen),
	    cmocka_unit_test(test_neg_badact),
	    cmocka_unit_test(test_neg_hdrops),
	    cmocka_unit_test(test_neg_upd_c_timeout),
	    cmocka_unit_test(test_neg_ins_af10),
	    cmocka_unit_test(test_truncation_every_offset),
	    cmocka_unit_test(test_trim_and_short_header_len),
	    cmocka_unit_test(test_larger_stride),
	    cmocka_unit_test(test_skip_unknown_and_short),
	    cmocka_unit_test(test_section_overrun_keeps_earlier),
	    cmocka_unit_test(test_builder_fills_mtu),
	    cmocka_unit_test(test_builder_order),
	    cmocka_unit_test(test_merge_tcp),
	    cmocka_unit_test(test_merge_levels_only),
	    cmocka_unit_test(test_stats_print),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
