// SPDX-License-Identifier: BSD-2-Clause
/* bench/sync_driver: config, count, missing, mapmem, ctl, waitidx (see query.h). */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "args.h"
#include "clock.h"
#include "flows.h"
#include "query.h"

#define UDP_TIMEOUT_S	   3600	     /* longer than any bench run */
#define ADAPTIVE_OFF_START 400000000 /* states: never reached */
#define ADAPTIVE_OFF_END   800000000

/* ---- config -------------------------------------------------------------- */
int cmd_config(const char *pin_dir)
{
	struct pfsync_maps maps;
	struct pfsync_config cfg;
	int rc;

	if (pfsync_maps_open(&maps, pin_dir))
		return 1;
	rc = pfsync_config_read(&maps, &cfg);
	if (!rc) {
		cfg.timeouts[PFTM_UDP_FIRST_PACKET] = UDP_TIMEOUT_S;
		cfg.timeouts[PFTM_UDP_SINGLE] = UDP_TIMEOUT_S;
		cfg.timeouts[PFTM_UDP_MULTIPLE] = UDP_TIMEOUT_S;
		cfg.timeouts[PFTM_ADAPTIVE_START] = ADAPTIVE_OFF_START;
		cfg.timeouts[PFTM_ADAPTIVE_END] = ADAPTIVE_OFF_END;
		rc = pfsync_config_write(&maps, &cfg);
	}
	if (rc)
		fprintf(stderr, "sync_driver: writing the configuration: %s\n", strerror(-rc));
	else
		printf("capacity=%u\n", pfsync_states_capacity(&maps));
	pfsync_maps_close(&maps);
	return rc ? 1 : 0;
}

/* ---- count / mapmem ------------------------------------------------------ */
static long count_keys(int fd)
{
	struct pfsync_key key, next;
	void *prev = NULL;
	long n = 0;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		n++;
	}
	return errno == ENOENT ? n : -errno;
}

int cmd_count(const char *pin_dir)
{
	struct pfsync_maps m;
	long n;

	if (pfsync_maps_open(&m, pin_dir))
		return 1;
	n = count_keys(m.states);
	pfsync_maps_close(&m);
	if (n < 0) {
		fprintf(stderr, "sync_driver: counting states: %s\n", strerror((int)-n));
		return 1;
	}
	printf("%ld\n", n);
	return 0;
}

/*
 * States of A at least MIN_AGE_S old (by their creation time) that B's map
 * lacks: the fault suite's measure of what loss repair left undone.
 */
int cmd_missing(char **argv)
{
	struct pfsync_key key, next;
	struct pfsync_state_value val;
	struct pfsync_maps a, b;
	struct timespec ts;
	unsigned long old_enough = 0, missing = 0, total = 0;
	__u64 now, min_age = strtoull(argv[2], NULL, 10) * 1000000000ULL;
	void *prev = NULL;
	int rc = 0;

	if (pfsync_maps_open(&a, argv[0]))
		return 1;
	if (pfsync_maps_open(&b, argv[1])) {
		pfsync_maps_close(&a);
		return 1;
	}
	clock_gettime(CLOCK_BOOTTIME, &ts);
	now = (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
	while (bpf_map_get_next_key(a.states, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(a.states, &key, &val) != 0)
			continue; /* deleted meanwhile */
		total++;
		if (val.creation + min_age > now)
			continue;
		old_enough++;
		if (bpf_map_lookup_elem(b.states, &key, &val) != 0)
			missing++;
	}
	if (errno != ENOENT) {
		fprintf(stderr, "sync_driver: walking A's states: %s\n", strerror(errno));
		rc = 1;
	}
	printf("total=%lu old=%lu missing=%lu\n", total, old_enough, missing);
	pfsync_maps_close(&b);
	pfsync_maps_close(&a);
	return rc;
}

/* memlock as the kernel accounts it for this map fd (fdinfo). */
static long long fd_memlock(int fd)
{
	char path[64], line[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

int cmd_mapmem(const char *pin_dir)
{
	struct bpf_map_info info = {0};
	__u32 len = sizeof(info);
	struct pfsync_maps m;

	if (pfsync_maps_open(&m, pin_dir))
		return 1;
	if (bpf_obj_get_info_by_fd(m.states, &info, &len)) {
		fprintf(stderr, "sync_driver: map info: %s\n", strerror(errno));
		pfsync_maps_close(&m);
		return 1;
	}
	printf("memlock=%lld\nmax_entries=%u\nkey_size=%u\nvalue_size=%u\nmap_flags=0x%x\n",
	       fd_memlock(m.states), info.max_entries, info.key_size, info.value_size,
	       info.map_flags);
	pfsync_maps_close(&m);
	return 0;
}

/* ---- waitidx ------------------------------------------------------------- */
/* One control-socket exchange (the agent's protocol: one line, then EOF). */
static int ctl_exchange(const char *sock_path, const char *cmd, char *buf, size_t cap)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t used = 0, len = strlen(cmd);
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, cmd, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		close(fd);
		return -1;
	}
	shutdown(fd, SHUT_WR);
	while (used < cap - 1 && (n = read(fd, buf + used, cap - 1 - used)) > 0)
		used += (size_t)n;
	close(fd);
	buf[used] = '\0';
	return 0;
}

/* states_indexed from `status --json`, or -1 */
static long agent_indexed(const char *sock_path)
{
	static const char field[] = "\"states_indexed\":";
	char buf[4096];
	const char *p;

	if (ctl_exchange(sock_path, "status --json", buf, sizeof(buf)))
		return -1;
	p = strstr(buf, field);
	return p ? strtol(p + strlen(field), NULL, 10) : -1;
}

int cmd_ctl(const char *sock_path, const char *cmd)
{
	char buf[16384];

	if (ctl_exchange(sock_path, cmd, buf, sizeof(buf))) {
		fprintf(stderr, "sync_driver: control socket %s: %s\n", sock_path, strerror(errno));
		return 1;
	}
	fputs(buf, stdout);
	return strncmp(buf, "error: ", 7) == 0;
}

int cmd_waitidx(char **argv)
{
	unsigned long long want, timeout;
	double start, deadline, t;
	long have = -1;

	if (parse_num("N", argv[1], &want) || parse_num("TIMEOUT_S", argv[2], &timeout))
		return 2;
	start = strtod(argv[3], NULL);
	deadline = now_s() + (double)timeout;
	for (;;) {
		have = agent_indexed(argv[0]);
		t = now_s();
		if (have >= 0 && (unsigned long long)have >= want)
			break;
		if (t > deadline) {
			printf("elapsed=-1\nindexed=%ld\n", have);
			return 1;
		}
		sleep_until(t + 0.002);
	}
	printf("elapsed=%.6f\nindexed=%ld\n", t - start, have);
	return 0;
}
