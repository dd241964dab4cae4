/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

int agent_log_level = LOG_LVL_INFO;

/* syslog priorities of enum log_level (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG) */
static const int syslog_priority[] = {3, 4, 6, 7};
static const char *const level_names[] = {"error", "warning", "info", "debug"};

/* systemd sets $JOURNAL_STREAM to "DEV:INODE" of the stream it connected to stderr */
static int stderr_is_journal(void)
{
	static int known, is_journal;
	unsigned long long dev, ino;
	const char *env;
	struct stat st;

	if (known)
		return is_journal;
	known = 1;
	env = getenv("JOURNAL_STREAM");
	if (env && sscanf(env, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0)
		is_journal =
		    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
	return is_journal;
}

static int line_prefix(char *buf, size_t len, int level)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	if (stderr_is_journal())
		return snprintf(buf, len, "<%d>%s: ", syslog_priority[level], level_names[level]);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	return snprintf(buf, len, "%s.%03ld pfsync-agent %s: ", stamp, ts.tv_nsec / 1000000,
			level_names[level]);
}

static void log_line(int level, const char *fmt, va_list ap)
{
	/* one write per line so lines of concurrent writers never interleave */
	char line[1024];
	int n;

	if (level < LOG_LVL_ERR)
		level = LOG_LVL_ERR;
	if (level > LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	n = line_prefix(line, sizeof(line), level);
	if (n > 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	fwrite(line, 1, n, stderr);
}

void agent_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > agent_log_level)
		return;
	va_start(ap, fmt);
	log_line(level, fmt, ap);
	va_end(ap);
}

int log_limit_allow(struct log_limit *l, __u64 now_ns, unsigned int *suppressed)
{
	*suppressed = 0;
	if (l->window_start_ns == 0 || now_ns - l->window_start_ns >= LOG_LIMIT_WINDOW_NS) {
		l->window_start_ns = now_ns ? now_ns : 1;
		l->printed = 0;
	}
	if (l->printed >= LOG_LIMIT_BURST) {
		l->suppressed++;
		return 0;
	}
	l->printed++;
	*suppressed = l->suppressed;
	l->suppressed = 0;
	return 1;
}

void agent_log_limited(struct log_limit *l, int level, const char *fmt, ...)
{
	unsigned int suppressed;
	struct timespec ts;
	va_list ap;

	if (level > agent_log_level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (!log_limit_allow(l, (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec, &suppressed))
		return;
	if (suppressed)
		agent_log(level, "%u similar messages suppressed (peer-caused, rate-limited)",
			  suppressed);
	va_start(ap, fmt);
	log_line(level, fmt, ap);
	va_end(ap);
}
