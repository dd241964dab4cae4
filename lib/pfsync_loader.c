// SPDX-License-Identifier: BSD-2-Clause
#include "pfsync_loader.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* where `make install` puts the object (mk/install.mk sets it from PREFIX) */
#ifndef PFSYNC_BPF_OBJ_DEFAULT
#define PFSYNC_BPF_OBJ_DEFAULT "/usr/local/lib/bpf/pfsync_xdp.o"
#endif

static int file_exists(const char *path)
{
	return access(path, R_OK) == 0;
}

const char *pfsync_bpf_find_obj(const char *const *dirs, size_t ndirs, const char *fallback)
{
	static char path[PATH_MAX];
	char exe[PATH_MAX - 64]; /* leaves room for the suffixes below */
	const char *env = getenv("PFSYNC_BPF_OBJ");
	ssize_t n;
	char *slash;

	if (env && *env)
		return env;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return fallback;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return fallback;
	*slash = '\0';
	for (size_t i = 0; i < ndirs; i++) {
		snprintf(path, sizeof(path), "%s/%spfsync_xdp.o", exe, dirs[i]);
		if (file_exists(path))
			return path;
	}
	return fallback;
}

const char *pfsync_bpf_default_obj(void)
{
	/* beside the binary (the build tree), then an install prefix's lib/bpf */
	static const char *const dirs[] = {"", "../lib/bpf/"};

	return pfsync_bpf_find_obj(dirs, sizeof(dirs) / sizeof(dirs[0]), PFSYNC_BPF_OBJ_DEFAULT);
}

/* mkdir -p: the default pin dir's parent (/sys/fs/bpf/tc) may not exist yet. */
static int make_dirs(const char *dir)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir);
	char *p;

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, len + 1);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

static int prog_fd_if(struct bpf_object *obj, const char *name, int wanted)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, name);

	if (!wanted || !p)
		return -1;
	return bpf_program__fd(p);
}

/* Only the selected programs are loaded; the rest stay in the object. */
static int select_programs(struct bpf_object *obj, unsigned int which)
{
	static const struct {
		const char *name;
		unsigned int flag;
	} progs[] = {
	    {"pfsync_xdp", PFSYNC_LOAD_XDP},
	    {"pfsync_tc", PFSYNC_LOAD_TC},
	    {PFSYNC_PROG_SWEEP, PFSYNC_LOAD_CTL},
	    {PFSYNC_PROG_UNQUEUE, PFSYNC_LOAD_CTL},
	    {PFSYNC_PROG_RELEASE, PFSYNC_LOAD_RELEASE},
	};
	struct bpf_program *p;
	size_t i;

	bpf_object__for_each_program(p, obj) bpf_program__set_autoload(p, false);
	for (i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		if (!(which & progs[i].flag))
			continue;
		p = bpf_object__find_program_by_name(obj, progs[i].name);
		if (!p) {
			fprintf(stderr, "pfsync: program %s missing from the BPF object\n",
				progs[i].name);
			return -ENOENT;
		}
		bpf_program__set_autoload(p, true);
	}
	return 0;
}

/* max_entries of an already pinned map, 0 if there is none. */
static __u32 pinned_max_entries(const char *path)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);
	__u32 max = 0;

	if (fd < 0)
		return 0;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
		max = info.max_entries;
	close(fd);
	return max;
}

/*
 * A states map already pinned is reused whatever its size: the object is
 * sized like it (libbpf refuses to reuse a pin whose definition differs).
 * Only a fresh map takes states_max.
 */
static int size_states_map(struct bpf_object *obj, const char *pin_dir, __u32 states_max)
{
	char pinned[PATH_MAX];
	struct bpf_map *m;
	__u32 size;
	int err;

	snprintf(pinned, sizeof(pinned), "%s/%s", pin_dir, PFSYNC_MAP_STATES);
	size = pinned_max_entries(pinned);
	if (!size)
		size = states_max;
	if (!size)
		return 0;
	m = bpf_object__find_map_by_name(obj, PFSYNC_MAP_STATES);
	if (!m)
		return -ENOENT;
	err = bpf_map__set_max_entries(m, size);
	if (err)
		fprintf(stderr, "pfsync: cannot size %s to %u: %s\n", PFSYNC_MAP_STATES, size,
			strerror(-err));
	return err;
}

/*
 * The adaptive timeouts scale with the table's size unless a state limit is
 * set (pfsync_state_limit): the size goes into pfsync_config, where the
 * sweep program and every reader of the config find it.
 */
static int record_table_size(struct bpf_object *obj)
{
	struct bpf_map *states = bpf_object__find_map_by_name(obj, PFSYNC_MAP_STATES);
	int cfg_fd = bpf_object__find_map_fd_by_name(obj, PFSYNC_MAP_CONFIG);
	struct pfsync_config cfg;
	__u32 zero = 0;

	if (!states || cfg_fd < 0)
		return -ENOENT;
	if (bpf_map_lookup_elem(cfg_fd, &zero, &cfg))
		return -errno;
	if (cfg.table_size == bpf_map__max_entries(states))
		return 0;
	cfg.table_size = bpf_map__max_entries(states);
	if (bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY))
		return -errno;
	return 0;
}

int pfsync_bpf_load(struct pfsync_bpf *b, const char *obj_path, const char *pin_dir,
		    __u32 states_max, unsigned int which)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	struct bpf_object *obj;
	int err;

	b->obj = NULL;
	b->xdp_fd = b->tc_fd = b->sweep_fd = b->unqueue_fd = b->release_fd = b->release_ctr_fd = -1;
	if (!obj_path)
		obj_path = pfsync_bpf_default_obj();
	if (!pin_dir)
		pin_dir = PFSYNC_DEFAULT_PIN_DIR;
	err = make_dirs(pin_dir);
	if (err) {
		fprintf(stderr, "pfsync: cannot create pin dir %s: %s\n", pin_dir, strerror(-err));
		return err;
	}
	opts.pin_root_path = pin_dir;
	obj = bpf_object__open_file(obj_path, &opts);
	err = libbpf_get_error(obj);
	if (err) {
		fprintf(stderr, "pfsync: cannot open BPF object %s: %s\n", obj_path,
			strerror(-err));
		return err;
	}
	err = select_programs(obj, which);
	if (!err)
		err = size_states_map(obj, pin_dir, states_max);
	if (!err) {
		err = bpf_object__load(obj);
		if (err)
			fprintf(stderr, "pfsync: cannot load %s (pin dir %s): %s\n", obj_path,
				pin_dir, strerror(-err));
	}
	if (!err) {
		err = record_table_size(obj);
		if (err)
			fprintf(stderr, "pfsync: cannot record the table size in %s: %s\n",
				PFSYNC_MAP_CONFIG, strerror(-err));
	}
	if (err) {
		bpf_object__close(obj);
		return err;
	}
	b->obj = obj;
	b->xdp_fd = prog_fd_if(obj, "pfsync_xdp", which & PFSYNC_LOAD_XDP);
	b->tc_fd = prog_fd_if(obj, "pfsync_tc", which & PFSYNC_LOAD_TC);
	b->sweep_fd = prog_fd_if(obj, PFSYNC_PROG_SWEEP, which & PFSYNC_LOAD_CTL);
	b->unqueue_fd = prog_fd_if(obj, PFSYNC_PROG_UNQUEUE, which & PFSYNC_LOAD_CTL);
	b->release_fd = prog_fd_if(obj, PFSYNC_PROG_RELEASE, which & PFSYNC_LOAD_RELEASE);
	if (b->release_fd >= 0)
		b->release_ctr_fd =
		    bpf_map__fd(bpf_object__find_map_by_name(obj, PFSYNC_MAP_RELEASE_CTR));
	return 0;
}

void pfsync_bpf_close(struct pfsync_bpf *b)
{
	if (!b)
		return;
	bpf_object__close(b->obj); /* closes the program fds too; pins stay */
	b->obj = NULL;
	b->xdp_fd = b->tc_fd = b->sweep_fd = b->unqueue_fd = b->release_fd = b->release_ctr_fd = -1;
}

static int run_ctl(int fd, const char *name, void *args, size_t size)
{
	/* syscall programs take no ctx_out: the kernel writes ctx_in back */
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = args, .ctx_size_in = size);
	int err;

	if (fd < 0) {
		fprintf(stderr, "pfsync: %s not loaded (PFSYNC_LOAD_CTL)\n", name);
		return -EBADF;
	}
	err = bpf_prog_test_run_opts(fd, &opts);
	if (err) {
		err = -errno;
		fprintf(stderr, "pfsync: running %s failed: %s\n", name, strerror(-err));
		return err;
	}
	return 0;
}

int pfsync_bpf_sweep(const struct pfsync_bpf *b, struct pfsync_sweep_args *args)
{
	return run_ctl(b->sweep_fd, PFSYNC_PROG_SWEEP, args, sizeof(*args));
}

int pfsync_bpf_unqueue(const struct pfsync_bpf *b, struct pfsync_unqueue_args *args)
{
	return run_ctl(b->unqueue_fd, PFSYNC_PROG_UNQUEUE, args, sizeof(*args));
}
