/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Loads build/pfsync_xdp.o with libbpf: maps pinned by name under a pin dir
 * (existing pins are reused, so the agent, pfsyncctl and iproute2-attached
 * programs share one state table), only the selected programs loaded.
 */
#ifndef PFSYNC_LOADER_H
#define PFSYNC_LOADER_H

#include <stddef.h>

#include "pfsync_common.h"

#define PFSYNC_LOAD_XDP	    0x1 /* program "pfsync_xdp", SEC("xdp") */
#define PFSYNC_LOAD_TC	    0x2 /* program "pfsync_tc",  SEC("tc")  */
#define PFSYNC_LOAD_CTL	    0x4 /* "pfsync_sweep" and "pfsync_unqueue", SEC("syscall") */
#define PFSYNC_LOAD_RELEASE 0x8 /* "pfsync_release", SEC("tc"), for lo's egress */

struct bpf_object;

struct pfsync_bpf {
	struct bpf_object *obj;
	int xdp_fd, tc_fd, sweep_fd, unqueue_fd, release_fd; /* -1 when not loaded */
	int release_ctr_fd; /* pfsync_release_ctr, with PFSYNC_LOAD_RELEASE; else -1 */
};

/*
 * obj_path NULL = pfsync_bpf_default_obj(); pin_dir NULL = PFSYNC_DEFAULT_PIN_DIR
 * (created if missing); states_max 0 = as compiled (ignored when the states
 * map is already pinned: the pinned one is reused with its own size). Returns 0 or -errno
 * after printing a clear message to stderr.
 */
int pfsync_bpf_load(struct pfsync_bpf *b, const char *obj_path, const char *pin_dir,
		    __u32 states_max, unsigned int which);
void pfsync_bpf_close(struct pfsync_bpf *b);
int pfsync_bpf_sweep(const struct pfsync_bpf *b, struct pfsync_sweep_args *args);
int pfsync_bpf_unqueue(const struct pfsync_bpf *b, struct pfsync_unqueue_args *args);
/*
 * $PFSYNC_BPF_OBJ, else <dir of /proc/self/exe>/pfsync_xdp.o, else
 * <exe dir>/../lib/bpf/pfsync_xdp.o, else PFSYNC_BPF_OBJ_DEFAULT
 * ($(PREFIX)/lib/bpf/pfsync_xdp.o of the build, mk/install.mk)
 */
const char *pfsync_bpf_default_obj(void);
/*
 * $PFSYNC_BPF_OBJ, else the first pfsync_xdp.o that exists under one of
 * dirs (each "" or ending in '/', relative to the running executable's
 * directory), else fallback. The returned path may be a static buffer.
 */
const char *pfsync_bpf_find_obj(const char *const *dirs, size_t ndirs, const char *fallback);

#endif /* PFSYNC_LOADER_H */
