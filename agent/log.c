/* SPDX-License-Identifier: BSD-2-Clause */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

int agent_log_level = LOG_LVL_INFO;

void agent_log(int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "info", "debug"};
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	va_list ap;

	if (level > agent_log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	/* one write per line so lines of concurrent writers never interleave */
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s.%03ld pfsync-agent %s: ", stamp,
			 ts.tv_nsec / 1000000, names[level]);

	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	fwrite(line, 1, n, stderr);
}
