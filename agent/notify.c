/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

/* fills sun from $NOTIFY_SOCKET; returns the address length, 0 if unset, or -errno */
static int notify_address(struct sockaddr_un *sun)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;

	if (!path || !*path)
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sun->sun_path))
		return -EINVAL;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len);
	if (path[0] == '@')
		sun->sun_path[0] = '\0'; /* abstract: the length, not a NUL, ends the name */
	return (int)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
}

int notify_send(const char *msg)
{
	struct sockaddr_un sun;
	int addrlen = notify_address(&sun);
	int fd, rc = 0;

	if (addrlen <= 0)
		return addrlen < 0 ? addrlen : 1;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun,
		   (socklen_t)addrlen) < 0)
		rc = -errno;
	close(fd);
	return rc;
}
