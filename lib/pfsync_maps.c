// SPDX-License-Identifier: BSD-2-Clause
/* Userspace access to the pinned pfsync maps (by path, so any process can use them). */
#include "pfsync_maps.h"

#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static int map_get(const char *dir, const char *name, int *fd_out, int required)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		int err = errno;

		*fd_out = -1;
		if (!required)
			return 0;
		fprintf(
		    stderr,
		    "pfsync: cannot open pinned map %s: %s (is pfsync_xdp.o loaded? its maps are "
		    "pinned under %s; use --pin-dir DIR for another pin dir)\n",
		    path, strerror(err), dir);
		return -err;
	}
	*fd_out = fd;
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void pfsync_maps_close(struct pfsync_maps *m)
{
	close_fd(&m->states);
	close_fd(&m->rules);
	close_fd(&m->events);
	close_fd(&m->defer);
	close_fd(&m->config);
	close_fd(&m->globals);
	close_fd(&m->counters);
	close_fd(&m->fastpath_ifs);
	close_fd(&m->nat_keys);
}

int pfsync_maps_open(struct pfsync_maps *m, const char *pin_dir)
{
	const char *dir = pin_dir ? pin_dir : PFSYNC_DEFAULT_PIN_DIR;
	int err;

	memset(m, 0, sizeof(*m));
	m->states = m->rules = m->events = m->defer = -1;
	m->config = m->globals = m->counters = m->fastpath_ifs = m->nat_keys = -1;
	snprintf(m->pin_dir, sizeof(m->pin_dir), "%s", dir);
	/* the states map first: if it is missing nothing is loaded, one message is enough */
	err = map_get(dir, PFSYNC_MAP_STATES, &m->states, 1);
	if (!err)
		err = map_get(dir, PFSYNC_MAP_RULES, &m->rules, 1);
	if (!err)
		err = map_get(dir, PFSYNC_MAP_CONFIG, &m->config, 1);
	if (!err)
		err = map_get(dir, PFSYNC_MAP_GLOBALS, &m->globals, 1);
	if (!err)
		err = map_get(dir, PFSYNC_MAP_COUNTERS, &m->counters, 1);
	/* the ringbuf and the defer queue are the agent's business, not needed here */
	if (!err)
		err = map_get(dir, PFSYNC_MAP_EVENTS, &m->events, 0);
	if (!err)
		err = map_get(dir, PFSYNC_MAP_DEFER, &m->defer, 0);
	/* absent when an object without the fast path pinned these maps */
	if (!err)
		err = map_get(dir, PFSYNC_MAP_FASTPATH_IFS, &m->fastpath_ifs, 0);
	if (!err)
		err = map_get(dir, PFSYNC_MAP_NAT_KEYS, &m->nat_keys, 0);
	if (err)
		pfsync_maps_close(m);
	return err;
}

__u64 pfsync_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

static int array0_read(int fd, void *val)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(fd, &zero, val) ? -errno : 0;
}

static int array0_write(int fd, const void *val)
{
	__u32 zero = 0;

	return bpf_map_update_elem(fd, &zero, val, BPF_ANY) ? -errno : 0;
}

int pfsync_config_read(const struct pfsync_maps *m, struct pfsync_config *cfg)
{
	return array0_read(m->config, cfg);
}

int pfsync_config_write(const struct pfsync_maps *m, const struct pfsync_config *cfg)
{
	return array0_write(m->config, cfg);
}

int pfsync_globals_read(const struct pfsync_maps *m, struct pfsync_globals *g)
{
	return array0_read(m->globals, g);
}

int pfsync_globals_write(const struct pfsync_maps *m, const struct pfsync_globals *g)
{
	return array0_write(m->globals, g);
}

int pfsync_counters_sum(const struct pfsync_maps *m, struct pfsync_counters *out)
{
	enum { NFIELDS = sizeof(struct pfsync_counters) / sizeof(__u64) };
	int ncpus = libbpf_num_possible_cpus();
	struct pfsync_counters *percpu;
	__u64 *sum = (__u64 *)out;
	__u32 zero = 0;
	int cpu, i, err = 0;

	memset(out, 0, sizeof(*out));
	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	percpu = calloc((size_t)ncpus, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	if (bpf_map_lookup_elem(m->counters, &zero, percpu)) {
		err = -errno;
		goto out;
	}
	for (cpu = 0; cpu < ncpus; cpu++) {
		const __u64 *one = (const __u64 *)&percpu[cpu];

		for (i = 0; i < NFIELDS; i++)
			sum[i] += one[i];
	}
out:
	free(percpu);
	return err;
}

int pfsync_counters_zero(const struct pfsync_maps *m)
{
	int ncpus = libbpf_num_possible_cpus();
	struct pfsync_counters *zeros;
	__u32 zero = 0;
	int err = 0;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	zeros = calloc((size_t)ncpus, sizeof(*zeros));
	if (!zeros)
		return -ENOMEM;
	if (bpf_map_update_elem(m->counters, &zero, zeros, BPF_ANY))
		err = -errno;
	free(zeros);
	return err;
}

long long pfsync_prog_unaccounted(const struct pfsync_prog_outcomes *p)
{
	__u64 sum = 0;
	unsigned int i;

	for (i = 0; i < PFSYNC_OUT_SLOTS; i++)
		sum += p->outcome[i];
	return (long long)(p->seen - sum);
}

typedef int (*pfsync_state_fn)(const struct pfsync_key *, const struct pfsync_state_value *,
			       void *);

/*
 * get_next_key restarts from the first key when the previous key was deleted
 * meanwhile, so this fallback walk is bounded to avoid looping while the
 * datapath churns.
 */
static int foreach_next_key(const struct pfsync_maps *m, pfsync_state_fn fn, void *arg)
{
	__u64 limit = 2ULL * pfsync_states_capacity(m) + 16;
	struct pfsync_key key, next;
	struct pfsync_state_value val;
	void *prev = NULL;
	int ret;

	while (limit--) {
		if (bpf_map_get_next_key(m->states, prev, &next))
			return errno == ENOENT ? 0 : -errno;
		key = next;
		prev = &key;
		/* deleted since get_next_key: skip it */
		if (bpf_map_lookup_elem(m->states, &key, &val))
			continue;
		ret = fn(&key, &val, arg);
		if (ret)
			return ret;
	}
	return 0;
}

#define FOREACH_BATCH 256

struct foreach_buf {
	struct pfsync_key keys[FOREACH_BATCH];
	struct pfsync_state_value vals[FOREACH_BATCH];
};

/* Batch lookup walks the hash bucket by bucket: concurrent deletes cannot restart it. */
static int foreach_batch(const struct pfsync_maps *m, pfsync_state_fn fn, void *arg,
			 int *unsupported)
{
	struct foreach_buf *buf = malloc(sizeof(*buf));
	__u64 in_token = 0, out_token = 0;
	void *in = NULL;
	int err = 0, done = 0;
	__u32 i, count;

	if (!buf)
		return -ENOMEM;
	while (!done && !err) {
		count = FOREACH_BATCH;
		if (bpf_map_lookup_batch(m->states, in, &out_token, buf->keys, buf->vals, &count,
					 NULL)) {
			if (errno != ENOENT) {
				err = -errno;
				*unsupported = in == NULL && (errno == EINVAL || errno == ENOTSUP ||
							      errno == EOPNOTSUPP);
				break;
			}
			done = 1; /* last (possibly partial) batch */
		}
		for (i = 0; i < count && !err; i++)
			err = fn(&buf->keys[i], &buf->vals[i], arg);
		in_token = out_token;
		in = &in_token;
	}
	free(buf);
	return err;
}

int pfsync_states_foreach(const struct pfsync_maps *m, pfsync_state_fn fn, void *arg)
{
	int unsupported = 0;
	int err = foreach_batch(m, fn, arg, &unsupported);

	if (err && unsupported)
		return foreach_next_key(m, fn, arg);
	return err;
}

__u32 pfsync_states_capacity(const struct pfsync_maps *m)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(m->states, &info, &len))
		return 0;
	return info.max_entries;
}

/* The interface's MAC address, as the calling process's namespace sees it. */
static int if_mac(__u32 ifindex, __u8 mac[6])
{
	struct ifreq ifr;
	int fd, err = 0;

	memset(&ifr, 0, sizeof(ifr));
	if (!if_indextoname(ifindex, ifr.ifr_name))
		return -errno;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		err = -errno;
	else if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		err = -EPFNOSUPPORT; /* the fast path rewrites Ethernet headers only */
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return err;
}

int pfsync_fastpath_if_add(const struct pfsync_maps *m, __u32 ifindex)
{
	struct pfsync_fastpath_if val;
	int err;

	if (m->fastpath_ifs < 0)
		return -EOPNOTSUPP;
	memset(&val, 0, sizeof(val));
	err = if_mac(ifindex, val.mac);
	if (err)
		return err;
	return bpf_map_update_elem(m->fastpath_ifs, &ifindex, &val, BPF_ANY) ? -errno : 0;
}

int pfsync_fastpath_if_del(const struct pfsync_maps *m, __u32 ifindex)
{
	if (m->fastpath_ifs < 0)
		return -EOPNOTSUPP;
	return bpf_map_delete_elem(m->fastpath_ifs, &ifindex) ? -errno : 0;
}

int pfsync_fastpath_if_list(const struct pfsync_maps *m, __u32 *ifindexes, int max)
{
	__u32 key, *prev = NULL;
	int n = 0;

	if (m->fastpath_ifs < 0)
		return -EOPNOTSUPP;
	while (n < max && bpf_map_get_next_key(m->fastpath_ifs, prev, &key) == 0) {
		ifindexes[n++] = key;
		prev = &ifindexes[n - 1];
	}
	return n;
}

static const struct {
	const char *name, *text;
} fastpath_reasons[PFSYNC_FP_REASONS] = {
    [PFSYNC_FP_FORWARDED] = {"forwarded", "forwarded in XDP"},
    [PFSYNC_FP_NOT_READY] = {"not_ready", "to the stack: state not established both ways"},
    [PFSYNC_FP_NOT_OURS] = {"not_ours",
			    "to the stack: not sent to the MAC of a fast-path interface"},
    [PFSYNC_FP_VLAN] = {"vlan", "to the stack: VLAN tag"},
    [PFSYNC_FP_IP_OPTIONS] = {"ip_options", "to the stack: IP options or IPv6 extension headers"},
    [PFSYNC_FP_FRAGMENT] = {"fragment", "to the stack: fragment"},
    [PFSYNC_FP_TTL] = {"ttl", "to the stack: TTL or hop limit <= 1"},
    [PFSYNC_FP_NO_ROUTE] = {"no_route", "to the stack: unreachable, blackhole or prohibit"},
    [PFSYNC_FP_NO_NEIGH] = {"no_neigh", "to the stack: next hop not resolved"},
    [PFSYNC_FP_NOT_FWDED] = {"not_fwded", "to the stack: local, broadcast or no route"},
    [PFSYNC_FP_MTU] = {"mtu", "to the stack: larger than the egress MTU"},
    [PFSYNC_FP_EGRESS_NOT_SET] = {"egress_not_set",
				  "to the stack: egress interface not in the fast-path set"},
};

const char *pfsync_fastpath_reason_name(unsigned int reason)
{
	return reason < PFSYNC_FP_REASONS ? fastpath_reasons[reason].name : NULL;
}

const char *pfsync_fastpath_reason_text(unsigned int reason)
{
	return reason < PFSYNC_FP_REASONS ? fastpath_reasons[reason].text : NULL;
}
