/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The configuration file (pfsync.conf(5)): `key value...` lines, `#`
 * comments, values quoted with "..." when they hold blanks. It is not a
 * second option parser: each line becomes the long option of the same name
 * (`maxupd 64` -> `--maxupd 64`), put in front of the command line's, and
 * main.c's getopt loop parses the lot. An option the command line gives
 * replaces the file's lines of that key entirely (list keys too), so the
 * command line always wins.
 */
#ifndef AGENT_CONFIG_H
#define AGENT_CONFIG_H

#include <stddef.h>

#ifndef PFSYNC_SYSCONFDIR
#define PFSYNC_SYSCONFDIR "/etc"
#endif
#define AGENT_DEFAULT_CONFIG PFSYNC_SYSCONFDIR "/pfsync/pfsync.conf"
#define CONFIG_ERR_MAX	     512

/* an argument vector that owns its strings */
struct config_args {
	int argc;
	char **argv; /* argc entries and a NULL */
};

/*
 * Parses a whole file's text (name is used in messages) and appends the
 * options to args. Lines whose key is in skip[] (long option names, NULL
 * terminated; may be NULL) are checked but not added. On a syntax error err
 * reads "NAME:LINE: message" and -EINVAL is returned; -ENOMEM otherwise.
 */
int config_parse(const char *name, const char *text, const char *const *skip,
		 struct config_args *args, char *err, size_t errlen);

/*
 * The argument vector main.c parses: argv[0], the options of the config
 * file (-f FILE / --config FILE, else AGENT_DEFAULT_CONFIG, which may be
 * absent) minus those the command line gives, then the command line
 * without -f. With -h/--help on the command line no file is read.
 * 0, or -errno with the reason in err.
 */
int config_merge(int argc, char **argv, struct config_args *out, char *err, size_t errlen);

void config_args_free(struct config_args *args);

#endif /* AGENT_CONFIG_H */
