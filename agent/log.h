/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * One line per event on stderr, filtered by -q / -v. Levels are syslog's
 * (err, warning, info, debug); under systemd (stderr is the journal stream
 * named by $JOURNAL_STREAM) each line starts with "<N>" so the journal
 * keeps the priority, and the timestamp is left to the journal.
 *
 * Messages a peer can cause (any packet on the sync link) go through
 * log_peer(): at most LOG_LIMIT_BURST lines per call site every
 * LOG_LIMIT_WINDOW_NS, then one "N similar messages suppressed" line when
 * the window reopens, so a flood of forged packets cannot flood the log.
 */
#ifndef AGENT_LOG_H
#define AGENT_LOG_H

#include <linux/types.h>

enum log_level {
	LOG_LVL_ERR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

extern int agent_log_level; /* default LOG_LVL_INFO */

void agent_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   agent_log(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  agent_log(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  agent_log(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) agent_log(LOG_LVL_DEBUG, __VA_ARGS__)

#define LOG_LIMIT_BURST	    5
#define LOG_LIMIT_WINDOW_NS 10000000000ULL /* 10 s */

/* one per call site (log_peer declares it static) */
struct log_limit {
	__u64 window_start_ns;
	unsigned int printed;	 /* in the current window */
	unsigned int suppressed; /* since the last line printed */
};

/*
 * Pure decision, tested on its own: 1 = print now. When it returns 1 and
 * lines were suppressed before, *suppressed says how many (else 0).
 */
int log_limit_allow(struct log_limit *l, __u64 now_ns, unsigned int *suppressed);

void agent_log_limited(struct log_limit *l, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_peer(level, ...)                                                                       \
	do {                                                                                       \
		static struct log_limit log_peer_limit_;                                           \
		agent_log_limited(&log_peer_limit_, level, __VA_ARGS__);                           \
	} while (0)

#endif /* AGENT_LOG_H */
