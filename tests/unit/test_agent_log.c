/* SPDX-License-Identifier: BSD-2-Clause */
/* The log rate limiter for peer-caused messages, and the sd_notify datagram. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../agent/log.h"
#include "../../agent/notify.h"

#define SEC 1000000000ULL

static void test_burst_then_silence_then_count(void **unused)
{
	struct log_limit l = {0};
	unsigned int suppressed = 99, printed = 0;
	__u64 t = 5 * SEC;

	(void)unused;
	/* a flood of 1000 messages within one window prints only the burst */
	for (int i = 0; i < 1000; i++)
		printed += log_limit_allow(&l, t + (__u64)i * 1000, &suppressed);
	assert_int_equal(printed, LOG_LIMIT_BURST);
	/* the next window's first line reports what was left out */
	assert_int_equal(log_limit_allow(&l, t + LOG_LIMIT_WINDOW_NS, &suppressed), 1);
	assert_int_equal(suppressed, 1000 - LOG_LIMIT_BURST);
	assert_int_equal(log_limit_allow(&l, t + LOG_LIMIT_WINDOW_NS + 1, &suppressed), 1);
	assert_int_equal(suppressed, 0);
}

static void test_slow_messages_all_print(void **unused)
{
	struct log_limit l = {0};
	unsigned int suppressed;

	(void)unused;
	for (int i = 0; i < 100; i++) {
		assert_int_equal(log_limit_allow(&l, SEC + (__u64)i * 3 * SEC, &suppressed), 1);
		assert_int_equal(suppressed, 0);
	}
}

/* binds a datagram socket at path (or abstract @name) and points $NOTIFY_SOCKET at it */
static int listen_notify(const char *name)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len = offsetof(struct sockaddr_un, sun_path) + strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	memcpy(sun.sun_path, name, strlen(name));
	if (name[0] == '@')
		sun.sun_path[0] = '\0';
	else
		len++;
	unlink(name);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, len), 0);
	setenv("NOTIFY_SOCKET", name, 1);
	return fd;
}

static void expect_datagram(int fd, const char *want)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void test_notify_path_and_abstract(void **unused)
{
	char path[64], abstract[64];
	int fd;

	(void)unused;
	snprintf(path, sizeof(path), "/tmp/pfsync-notify-test.%d", (int)getpid());
	fd = listen_notify(path);
	assert_int_equal(notify_send("READY=1\nSTATUS=bulk update done\n"), 0);
	expect_datagram(fd, "READY=1\nSTATUS=bulk update done\n");
	close(fd);
	unlink(path);

	snprintf(abstract, sizeof(abstract), "@pfsync-notify-test.%d", (int)getpid());
	fd = listen_notify(abstract);
	assert_int_equal(notify_send("STOPPING=1\n"), 0);
	expect_datagram(fd, "STOPPING=1\n");
	close(fd);

	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_send("READY=1\n"), 1); /* not under systemd: nothing to do */
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(notify_send("READY=1\n"), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_then_silence_then_count),
	    cmocka_unit_test(test_slow_messages_all_print),
	    cmocka_unit_test(test_notify_path_and_abstract),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
