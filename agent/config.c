/* SPDX-License-Identifier: BSD-2-Clause */
/* pfsync.conf: `key value...` lines turned into long options (config.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define CONFIG_MAX_WORDS 32 /* a key and its values on one line */
#define CONFIG_MAX_BYTES (1 << 20)

enum value_kind {
	VAL_ONE,    /* key VALUE */
	VAL_NUMBER, /* key NUMBER (range checked by the option parser) */
	VAL_LIST,   /* key VALUE [VALUE...]: one option per value */
	VAL_BOOL,   /* key [yes|no]: the option alone, or nothing */
};

static const struct config_key {
	const char *name; /* the file's key and the long option's name */
	enum value_kind kind;
} config_keys[] = {
    {"syncdev", VAL_ONE},      {"syncpeer", VAL_LIST},	      {"maxupd", VAL_NUMBER},
    {"defer", VAL_BOOL},       {"defer-timeout", VAL_NUMBER}, {"hostid", VAL_NUMBER},
    {"pin-dir", VAL_ONE},      {"attach", VAL_LIST},	      {"rules", VAL_ONE},
    {"interval", VAL_NUMBER},  {"auth-key", VAL_ONE},	      {"ctl", VAL_ONE},
    {"obj", VAL_ONE},	       {"pfsync-if", VAL_ONE},	      {"states-max", VAL_NUMBER},
    {"bulk-rate", VAL_NUMBER}, {"no-repair", VAL_BOOL},	      {"defer-release", VAL_ONE},
    {"fastpath", VAL_BOOL},    {"bulk-read", VAL_ONE},
};

static const struct config_key *find_key(const char *name)
{
	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
		if (!strcmp(config_keys[i].name, name))
			return &config_keys[i];
	return NULL;
}

void config_args_free(struct config_args *args)
{
	for (int i = 0; i < args->argc; i++)
		free(args->argv[i]);
	free(args->argv);
	args->argv = NULL;
	args->argc = 0;
}

static int args_push(struct config_args *args, const char *s)
{
	char **grown = realloc(args->argv, sizeof(*grown) * (size_t)(args->argc + 2));
	char *copy;

	if (!grown)
		return -ENOMEM;
	args->argv = grown;
	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	args->argv[args->argc++] = copy;
	args->argv[args->argc] = NULL;
	return 0;
}

static int push_option(struct config_args *args, const char *key, const char *value)
{
	char opt[64];

	snprintf(opt, sizeof(opt), "--%s", key);
	if (args_push(args, opt))
		return -ENOMEM;
	return value ? args_push(args, value) : 0;
}

/*
 * Splits one line in place into words: blanks separate, `#` outside quotes
 * ends the line, "..." keeps blanks (no escapes: a value never needs a
 * quote). Returns the word count or -1 with *why set.
 */
static int split_words(char *line, char **words, const char **why)
{
	int n = 0;
	char *p = line;

	for (;;) {
		p += strspn(p, " \t\r");
		if (*p == '\0' || *p == '#')
			return n;
		if (n == CONFIG_MAX_WORDS) {
			*why = "too many words on one line";
			return -1;
		}
		if (*p == '"') {
			char *close = strchr(p + 1, '"');

			if (!close) {
				*why = "unterminated quote";
				return -1;
			}
			*close = '\0';
			words[n++] = p + 1;
			p = close + 1;
			if (*p && !strchr(" \t\r#", *p)) {
				*why = "text right after a closing quote";
				return -1;
			}
			continue;
		}
		words[n++] = p;
		p += strcspn(p, " \t\r#\"");
		if (*p == '"') {
			*why = "quote inside a word";
			return -1;
		}
		if (*p == '#') {
			*p = '\0';
			return n;
		}
		if (*p)
			*p++ = '\0';
	}
}

static int is_number(const char *s)
{
	char *end;

	if (*s == '-' || *s == '+' || *s == '\0')
		return 0;
	errno = 0;
	(void)strtoull(s, &end, 0);
	return errno == 0 && *end == '\0';
}

static int in_list(const char *const *list, const char *name)
{
	for (; list && *list; list++)
		if (!strcmp(*list, name))
			return 1;
	return 0;
}

/* checks one line's words against its key; NULL = fine */
static const char *check_values(const struct config_key *k, char **words, int n)
{
	switch (k->kind) {
	case VAL_ONE:
		return n == 2 ? NULL : n < 2 ? "missing value" : "one value expected";
	case VAL_NUMBER:
		if (n != 2)
			return n < 2 ? "missing value" : "one value expected";
		return is_number(words[1]) ? NULL : "expected a number";
	case VAL_LIST:
		return n >= 2 ? NULL : "missing value";
	case VAL_BOOL:
		if (n == 1 || (n == 2 && (!strcmp(words[1], "yes") || !strcmp(words[1], "no"))))
			return NULL;
		return "expected nothing, yes or no";
	}
	return "internal error";
}

static int add_line(const struct config_key *k, char **words, int n, struct config_args *args)
{
	int rc = 0;

	if (k->kind == VAL_BOOL)
		return n == 2 && !strcmp(words[1], "no") ? 0 : push_option(args, k->name, NULL);
	for (int i = 1; i < n && rc == 0; i++)
		rc = push_option(args, k->name, words[i]);
	return rc;
}

static int parse_line(char *line, const char *const *skip, struct config_args *args,
		      const char **why)
{
	char *words[CONFIG_MAX_WORDS];
	const struct config_key *k;
	int n = split_words(line, words, why);

	if (n <= 0)
		return n;
	k = find_key(words[0]);
	if (!k) {
		*why = "unknown keyword";
		return -1;
	}
	*why = check_values(k, words, n);
	if (*why)
		return -1;
	if (in_list(skip, k->name))
		return 0; /* the command line gives this one */
	return add_line(k, words, n, args) ? -ENOMEM : 0;
}

int config_parse(const char *name, const char *text, const char *const *skip,
		 struct config_args *args, char *err, size_t errlen)
{
	char *copy = strdup(text), *line, *next;
	unsigned int lineno = 0;
	int rc = 0;

	if (!copy) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	for (line = copy; line && rc == 0; line = next) {
		const char *why = NULL;
		char shown[80]; /* the line as written, for the message */

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		snprintf(shown, sizeof(shown), "%s", line + strspn(line, " \t"));
		shown[strcspn(shown, "\r")] = '\0';
		rc = parse_line(line, skip, args, &why);
		if (rc == -1) {
			snprintf(err, errlen, "%s:%u: %s: \"%s\"", name, lineno, why, shown);
			rc = -EINVAL;
		} else if (rc) {
			snprintf(err, errlen, "%s:%u: out of memory", name, lineno);
		}
	}
	free(copy);
	return rc;
}

/* the whole file, NUL terminated; -errno (ENOENT for a missing file) */
static int read_text(const char *path, char **out)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t len;
	int rc = 0;

	if (!f)
		return -errno;
	buf = malloc(CONFIG_MAX_BYTES + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	len = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
	if (ferror(f))
		rc = -EIO;
	else if (len > CONFIG_MAX_BYTES)
		rc = -EFBIG;
	else if (memchr(buf, '\0', len))
		rc = -EINVAL; /* a binary file: say so rather than parse half of it */
	fclose(f);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

struct cmdline {
	const char *config; /* -f FILE, or NULL */
	int help;	    /* -h / --help given */
	const char **given; /* long option names the command line uses, NULL terminated */
	const char **rest;  /* the command line without -f FILE */
	int nrest;
	char **given_storage; /* the names, owned */
	int ngiven;
};

static void cmdline_free(struct cmdline *c)
{
	for (int i = 0; i < c->ngiven; i++)
		free(c->given_storage[i]);
	free(c->given_storage);
	free(c->given);
	free(c->rest);
}

/* notes "--name" or "--name=value" so the file's lines of that key are skipped */
static int note_given(struct cmdline *c, const char *arg)
{
	size_t len = strcspn(arg + 2, "=");

	c->given_storage[c->ngiven] = strndup(arg + 2, len);
	if (!c->given_storage[c->ngiven])
		return -ENOMEM;
	c->given[c->ngiven] = c->given_storage[c->ngiven];
	c->ngiven++;
	return 0;
}

static int scan_cmdline(int argc, char **argv, struct cmdline *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->rest = calloc((size_t)argc + 1, sizeof(*c->rest));
	c->given = calloc((size_t)argc + 1, sizeof(*c->given));
	c->given_storage = calloc((size_t)argc + 1, sizeof(*c->given_storage));
	if (!c->rest || !c->given || !c->given_storage)
		return -ENOMEM;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-f") || !strcmp(a, "--config")) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "%s needs a file name", a);
				return -EINVAL;
			}
			c->config = argv[++i];
		} else if (!strncmp(a, "--config=", 9)) {
			c->config = a + 9;
		} else if (!strncmp(a, "-f", 2)) {
			c->config = a + 2;
		} else {
			if (!strcmp(a, "-h") || !strcmp(a, "--help"))
				c->help = 1;
			if (!strncmp(a, "--", 2) && a[2] && note_given(c, a))
				return -ENOMEM;
			c->rest[c->nrest++] = a;
		}
	}
	return 0;
}

static int read_config(const struct cmdline *c, struct config_args *out, char *err, size_t errlen)
{
	const char *path = c->config ? c->config : AGENT_DEFAULT_CONFIG;
	char *text = NULL;
	int rc;

	if (c->help)
		return 0;
	rc = read_text(path, &text);
	if (rc == -ENOENT && !c->config)
		return 0; /* no default file: command line only */
	if (rc) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = config_parse(path, text, c->given, out, err, errlen);
	free(text);
	return rc;
}

int config_merge(int argc, char **argv, struct config_args *out, char *err, size_t errlen)
{
	struct cmdline c;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = scan_cmdline(argc, argv, &c, err, errlen);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	rc = rc ?: args_push(out, argc > 0 ? argv[0] : "pfsync-agent");
	rc = rc ?: read_config(&c, out, err, errlen);
	for (int i = 0; i < c.nrest && rc == 0; i++)
		rc = args_push(out, c.rest[i]);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	cmdline_free(&c);
	if (rc)
		config_args_free(out);
	return rc;
}
