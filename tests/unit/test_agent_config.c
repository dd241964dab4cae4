/* SPDX-License-Identifier: BSD-2-Clause */
/* pfsync.conf lines -> long options, and how the command line overrides them. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../agent/config.h"
#include "../../agent/release.h"
#include "../../agent/store.h"

/* the argument vector joined with single blanks, for one comparison */
static const char *joined(const struct config_args *a)
{
	static char buf[1024];
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < a->argc; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? " " : "", a->argv[i]);
	assert_null(a->argv[a->argc]);
	return buf;
}

static void test_every_key_kind(void **unused)
{
	static const char text[] = "# comment line\n"
				   "\n"
				   "syncdev eth2   # trailing comment\n"
				   "  syncpeer 10.0.0.2 10.0.0.3\n"
				   "attach eth0 eth1\n"
				   "maxupd 64\n"
				   "defer\n"
				   "defer no\n"
				   "defer yes\n"
				   "defer-release redirect\n"
				   "fastpath no\n"
				   "fastpath yes\n"
				   "hostid 0x0a0a0a0a\n"
				   "rules \"/etc/pf sync/rules.conf\"\n"
				   "auth-key k3y\r\n"
				   "interval 5\n"
				   "bulk-read batch";
	struct config_args a = {0};
	char err[CONFIG_ERR_MAX] = "";

	(void)unused;
	assert_int_equal(config_parse("t.conf", text, NULL, &a, err, sizeof(err)), 0);
	assert_string_equal(joined(&a), "--syncdev eth2 --syncpeer 10.0.0.2 --syncpeer 10.0.0.3 "
					"--attach eth0 --attach eth1 --maxupd 64 --defer --defer "
					"--defer-release redirect --fastpath --hostid 0x0a0a0a0a "
					"--rules /etc/pf sync/rules.conf "
					"--auth-key k3y --interval 5 --bulk-read batch");
	assert_string_equal(a.argv[20], "/etc/pf sync/rules.conf");
	config_args_free(&a);
}

/* --defer-release's values (the option parser refuses the rest with a message) */
static void test_defer_release_names(void **unused)
{
	enum release_mode m = RELEASE_MODE_LIVE;

	(void)unused;
	assert_int_equal(release_mode_parse("auto", &m), 0);
	assert_int_equal(m, RELEASE_MODE_AUTO);
	assert_int_equal(release_mode_parse("redirect", &m), 0);
	assert_int_equal(m, RELEASE_MODE_REDIRECT);
	assert_int_equal(release_mode_parse("live", &m), 0);
	assert_int_equal(m, RELEASE_MODE_LIVE);
	assert_int_equal(release_mode_parse("Live", &m), -1);
	assert_int_equal(release_mode_parse("", &m), -1);
	assert_int_equal(m, RELEASE_MODE_LIVE); /* untouched by a refused name */
	assert_string_equal(release_path_name(RELEASE_PATH_REDIRECT), "redirect");
	assert_string_equal(release_path_name(RELEASE_PATH_LIVE), "live");
	assert_string_equal(release_path_name(RELEASE_PATH_NONE), "none");
}

static void expect_error(const char *text, const char *message)
{
	struct config_args a = {0};
	char err[CONFIG_ERR_MAX] = "";

	assert_int_equal(config_parse("bad.conf", text, NULL, &a, err, sizeof(err)), -EINVAL);
	if (!strstr(err, message))
		fail_msg("\"%s\" does not contain \"%s\"", err, message);
	config_args_free(&a);
}

/* --bulk-read's values */
static void test_bulk_read_names(void **unused)
{
	enum store_read_path p = STORE_READ_BATCH;

	(void)unused;
	assert_int_equal(store_read_path_parse("auto", &p), 0);
	assert_int_equal(p, STORE_READ_AUTO);
	assert_int_equal(store_read_path_parse("iter", &p), 0);
	assert_int_equal(p, STORE_READ_ITER);
	assert_int_equal(store_read_path_parse("batch", &p), 0);
	assert_int_equal(p, STORE_READ_BATCH);
	assert_int_equal(store_read_path_parse("iterator", &p), -1);
	assert_int_equal(store_read_path_parse("", &p), -1);
	assert_int_equal(p, STORE_READ_BATCH); /* untouched by a refused name */
}

static void test_errors_name_file_and_line(void **unused)
{
	(void)unused;
	expect_error("syncdev eth0\n\nbogus 1\n", "bad.conf:3: unknown keyword: \"bogus 1\"");
	expect_error("syncdev\n", "bad.conf:1: missing value");
	expect_error("syncdev a b\n", "bad.conf:1: one value expected");
	expect_error("# x\nmaxupd ten\n", "bad.conf:2: expected a number");
	expect_error("maxupd -1\n", "bad.conf:1: expected a number");
	expect_error("defer maybe\n", "bad.conf:1: expected nothing, yes or no");
	expect_error("rules \"/no/end\n", "bad.conf:1: unterminated quote");
	expect_error("rules a\"b\n", "bad.conf:1: quote inside a word");
	expect_error("attach\n", "bad.conf:1: missing value");
}

static void test_skip_keeps_checking(void **unused)
{
	static const char *const skip[] = {"attach", "maxupd", NULL};
	struct config_args a = {0};
	char err[CONFIG_ERR_MAX] = "";

	(void)unused;
	assert_int_equal(
	    config_parse("t", "attach a b\nmaxupd 3\nsyncdev x\n", skip, &a, err, sizeof(err)), 0);
	assert_string_equal(joined(&a), "--syncdev x");
	config_args_free(&a);
	/* a skipped line with an error is still an error */
	assert_int_equal(config_parse("t", "maxupd x\n", skip, &a, err, sizeof(err)), -EINVAL);
	config_args_free(&a);
}

static char *write_temp(const char *text)
{
	static char path[64];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/pfsync-config-test.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_merge_command_line_wins(void **unused)
{
	char *path = write_temp("syncdev eth2\nattach a b\nmaxupd 64\ndefer\n");
	char *argv[] = {"pfsync-agent", "--attach", "c",       "-f", path,
			"--maxupd=9",	"-v",	    "--defer", NULL};
	struct config_args a;
	char err[CONFIG_ERR_MAX] = "";

	(void)unused;
	assert_int_equal(config_merge(8, argv, &a, err, sizeof(err)), 0);
	/* the file's attach, maxupd and defer lines are replaced, syncdev is kept */
	assert_string_equal(joined(&a), "pfsync-agent --syncdev eth2 --attach c --maxupd=9 -v "
					"--defer");
	config_args_free(&a);
	unlink(path);
}

static void test_merge_missing_files(void **unused)
{
	char *argv[] = {"pfsync-agent", "--config", "/nonexistent/pfsync.conf", NULL};
	char *help[] = {"pfsync-agent", "-f/nonexistent/pfsync.conf", "--help", NULL};
	char *dangling[] = {"pfsync-agent", "-f", NULL};
	struct config_args a;
	char err[CONFIG_ERR_MAX] = "";

	(void)unused;
	/* a file named on the command line must exist */
	assert_int_equal(config_merge(3, argv, &a, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/pfsync.conf: No such file"));
	/* --help reads no file */
	assert_int_equal(config_merge(3, help, &a, err, sizeof(err)), 0);
	assert_string_equal(joined(&a), "pfsync-agent --help");
	config_args_free(&a);
	assert_int_equal(config_merge(2, dangling, &a, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "-f needs a file name");
}

static void test_merge_reports_line(void **unused)
{
	char *path = write_temp("syncdev eth2\nmaxupd 64\nmaxupd\n");
	char *argv[] = {"pfsync-agent", "-f", path, NULL};
	struct config_args a;
	char err[CONFIG_ERR_MAX] = "", want[128];

	(void)unused;
	assert_int_equal(config_merge(3, argv, &a, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:3: missing value", path);
	assert_non_null(strstr(err, want));
	assert_null(a.argv);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_key_kind),
	    cmocka_unit_test(test_defer_release_names),
	    cmocka_unit_test(test_bulk_read_names),
	    cmocka_unit_test(test_errors_name_file_and_line),
	    cmocka_unit_test(test_skip_keeps_checking),
	    cmocka_unit_test(test_merge_command_line_wins),
	    cmocka_unit_test(test_merge_missing_files),
	    cmocka_unit_test(test_merge_reports_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
