/* SPDX-License-Identifier: BSD-2-Clause */
/* One line per event on stderr, filtered by -q / -v. */
#ifndef AGENT_LOG_H
#define AGENT_LOG_H

enum log_level {
	LOG_LVL_ERR = 0,
	LOG_LVL_INFO = 1,
	LOG_LVL_DEBUG = 2,
};

extern int agent_log_level; /* default LOG_LVL_INFO */

void agent_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   agent_log(LOG_LVL_ERR, __VA_ARGS__)
#define log_info(...)  agent_log(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) agent_log(LOG_LVL_DEBUG, __VA_ARGS__)

#endif /* AGENT_LOG_H */
