/* SPDX-License-Identifier: BSD-2-Clause */
/* pfsync0's copies: which packet sockets (/proc/net/packet) could see them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../agent/tun.h"

#define HEADER "sk       RefCnt Type Proto  Iface R Rmem   User   Inode\n"
#define IFX    7

static void test_no_sockets(void **unused)
{
	(void)unused;
	assert_false(tun_packet_sockets_see(HEADER, IFX));
	assert_false(tun_packet_sockets_see("", IFX));
}

static void test_capture_on_the_device(void **unused)
{
	/* tcpdump -i pfsync0: every protocol, bound to the device, running */
	(void)unused;
	assert_true(tun_packet_sockets_see(
	    HEADER "ffff8c0a1 3      3    0003   7     1 0      0      4242\n", IFX));
	/* an IPv4-only socket on the device sees the copies too */
	assert_true(tun_packet_sockets_see(
	    HEADER "ffff8c0a1 3      2    0800   7     1 0      0      4242\n", IFX));
}

static void test_capture_on_any(void **unused)
{
	/* tcpdump -i any: bound to no device */
	(void)unused;
	assert_true(tun_packet_sockets_see(
	    HEADER "ffff8c0a1 3      2    0003   0     1 0      0      4242\n", IFX));
}

static void test_sockets_that_cannot_see(void **unused)
{
	(void)unused;
	/* another device */
	assert_false(tun_packet_sockets_see(
	    HEADER "ffff8c0a1 3      3    0003   3     1 0      0      4242\n", IFX));
	/* not running (no protocol hook registered yet) */
	assert_false(tun_packet_sockets_see(
	    HEADER "ffff8c0a1 3      3    0003   7     0 0      0      4242\n", IFX));
	/* LLDP only */
	assert_false(tun_packet_sockets_see(
	    HEADER "ffff8c0a1 3      3    88cc   0     1 0      0      4242\n", IFX));
	/* a short or garbled line */
	assert_false(tun_packet_sockets_see(HEADER "ffff8c0a1 3\n", IFX));
}

static void test_one_of_many(void **unused)
{
	(void)unused;
	assert_true(tun_packet_sockets_see(HEADER
					   "ffff8c0a1 3      3    88cc   0     1 0      0      1\n"
					   "ffff8c0a2 3      3    0003   3     1 0      0      2\n"
					   "ffff8c0a3 3      3    0003   7     1 0      0      3\n",
					   IFX));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_sockets),	   cmocka_unit_test(test_capture_on_the_device),
	    cmocka_unit_test(test_capture_on_any), cmocka_unit_test(test_sockets_that_cannot_see),
	    cmocka_unit_test(test_one_of_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
