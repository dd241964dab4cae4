// SPDX-License-Identifier: BSD-2-Clause
/* Commands that talk to the agent's control socket, or run the sweep themselves. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "pfsync_loader.h"

#define AGENT_TIMEOUT_SEC 10 /* a wedged agent must not hang pfsyncctl forever */

static int agent_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = AGENT_TIMEOUT_SEC};
	int fd, err;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, char **out)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap + 1), *grown;
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			grown = realloc(buf, cap * 2 + 1);
			if (!grown) {
				free(buf);
				return -ENOMEM;
			}
			buf = grown;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno == EAGAIN ? -ETIMEDOUT : -errno;

			free(buf);
			return err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

int ctl_agent_request(const char *path, const char *line, char **reply)
{
	int fd = agent_connect(path), err;

	*reply = NULL;
	if (fd < 0)
		return fd;
	err = write_all(fd, line, strlen(line));
	if (!err)
		err = write_all(fd, "\n", 1);
	if (!err && shutdown(fd, SHUT_WR))
		err = -errno;
	if (!err)
		err = read_all(fd, reply);
	close(fd);
	return err;
}

int ctl_agent_failed(const char *reply)
{
	return !strncmp(reply, "error: ", 7);
}

/* Prints the reply verbatim (stderr if it is an error) and maps it to an exit code. */
static int relay_reply(const char *reply)
{
	size_t len = strlen(reply);
	int failed = ctl_agent_failed(reply);
	FILE *f = failed ? stderr : stdout;

	fputs(reply, f);
	if (len && reply[len - 1] != '\n')
		fputc('\n', f);
	return failed ? CTL_EXIT_ERR : CTL_EXIT_OK;
}

/* One agent command without arguments (--json passed on), its reply relayed. */
static int relay_command(const struct ctl_opts *o, const char *cmd, int argc)
{
	char line[64], *reply;
	int err, rc;

	if (argc) {
		snprintf(line, sizeof(line), "%s [--json]", cmd);
		return ctl_bad_usage(line);
	}
	snprintf(line, sizeof(line), "%s%s", cmd, o->json ? " --json" : "");
	err = ctl_agent_request(o->ctl_path, line, &reply);
	if (err) {
		fprintf(stderr,
			"pfsyncctl: cannot reach pfsync-agent on %s: %s (is pfsync-agent running? "
			"use --ctl PATH for another socket)\n",
			o->ctl_path, strerror(-err));
		return CTL_EXIT_ERR;
	}
	rc = relay_reply(reply);
	free(reply);
	return rc;
}

int cmd_status(const struct ctl_opts *o, int argc, char **argv)
{
	(void)argv;
	return relay_command(o, "status", argc);
}

int cmd_index(const struct ctl_opts *o, int argc, char **argv)
{
	(void)argv;
	return relay_command(o, "index", argc);
}

/* Loads the control programs (reusing the pinned maps) and runs one sweep. */
static int run_sweep(const struct ctl_opts *o, __u32 flags, struct pfsync_sweep_args *args)
{
	struct pfsync_bpf b;
	int err;

	memset(&b, 0, sizeof(b));
	memset(args, 0, sizeof(*args));
	args->sweep_flags = flags;
	err = pfsync_bpf_load(&b, o->obj_path, o->pin_dir, 0, PFSYNC_LOAD_CTL);
	if (err)
		return err; /* the loader said why */
	err = pfsync_bpf_sweep(&b, args);
	if (err)
		fprintf(stderr, "pfsyncctl: sweep failed: %s\n", strerror(-err));
	pfsync_bpf_close(&b);
	return err;
}

/* The sweep loader creates a missing pin dir: check the maps exist first. */
static int require_maps(const struct ctl_opts *o)
{
	struct pfsync_maps m;

	if (ctl_open_maps(o, &m))
		return CTL_EXIT_ERR;
	pfsync_maps_close(&m);
	return 0;
}

int cmd_flush(const struct ctl_opts *o, int argc, char **argv)
{
	struct pfsync_sweep_args args;
	char *reply;
	int err, rc;

	(void)argv;
	if (argc)
		return ctl_bad_usage("flush");
	/* the agent flushes and tells the peers with one CLR */
	err = ctl_agent_request(o->ctl_path, "flush", &reply);
	if (!err) {
		rc = relay_reply(reply);
		free(reply);
		return rc;
	}
	if (require_maps(o))
		return CTL_EXIT_ERR;
	if (run_sweep(o, PFSYNC_SWEEP_FLUSH | PFSYNC_SWEEP_QUIET, &args))
		return CTL_EXIT_ERR;
	printf("%u states cleared (agent not reachable on %s: peers not told)\n", args.deleted,
	       o->ctl_path);
	return CTL_EXIT_OK;
}

int cmd_expire(const struct ctl_opts *o, int argc, char **argv)
{
	struct pfsync_sweep_args args;

	(void)argv;
	if (argc)
		return ctl_bad_usage("expire");
	if (require_maps(o))
		return CTL_EXIT_ERR;
	if (run_sweep(o, 0, &args))
		return CTL_EXIT_ERR;
	if (o->json)
		printf("{\"seen\":%u,\"removed\":%u}\n", args.seen, args.deleted);
	else
		printf("%u states removed (%u seen)\n", args.deleted, args.seen);
	return CTL_EXIT_OK;
}
