/* SPDX-License-Identifier: BSD-2-Clause */
/* The bulk-update requester state machine with a fake clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../agent/bulk.h"

#define NSEC 1000000000ULL

/* no answer: 12 requests 2 s apart, then failed */
static void test_retries_then_fails(void **unused)
{
	struct bulk_req r = {0};
	unsigned int sent;
	__u64 t = 100 * NSEC;

	(void)unused;
	sent = bulk_req_start(&r, t);
	assert_int_equal(r.state, BULK_REQ_REQUESTED);
	assert_int_equal(bulk_req_deadline(&r), t + 2 * NSEC);
	/* nothing before the timer */
	assert_int_equal(bulk_req_tick(&r, t + 2 * NSEC - 1), 0);
	while (r.state == BULK_REQ_REQUESTED) {
		t = bulk_req_deadline(&r);
		sent += bulk_req_tick(&r, t);
	}
	assert_int_equal(sent, BULK_REQ_MAX_TRIES);
	assert_int_equal(r.state, BULK_REQ_FAILED);
	assert_int_equal(bulk_req_deadline(&r), 0);
	assert_string_equal(bulk_req_state_name(r.state), "failed");
}

/* START then END: done; activity keeps a long transfer alive */
static void test_start_end_done(void **unused)
{
	struct bulk_req r = {0};
	__u64 t = 5 * NSEC;

	(void)unused;
	bulk_req_start(&r, t);
	bulk_req_bus(&r, PFSYNC_BUS_START, t + NSEC);
	assert_int_equal(r.state, BULK_REQ_IN_PROGRESS);
	/* no retries while the peer is sending */
	assert_int_equal(bulk_req_tick(&r, t + 3 * NSEC), 0);
	for (int i = 2; i < 30; i++) {
		bulk_req_activity(&r, t + i * NSEC);
		assert_int_equal(bulk_req_tick(&r, t + i * NSEC), 0);
	}
	assert_int_equal(r.state, BULK_REQ_IN_PROGRESS);
	bulk_req_bus(&r, PFSYNC_BUS_END, t + 30 * NSEC);
	assert_int_equal(r.state, BULK_REQ_DONE);
	assert_string_equal(bulk_req_state_name(r.state), "done");
	/* later BUS messages (answers to other peers) change nothing */
	bulk_req_bus(&r, PFSYNC_BUS_START, t + 31 * NSEC);
	assert_int_equal(r.state, BULK_REQ_DONE);
}

/* a transfer that goes silent fails; an empty table answers END alone */
static void test_silence_and_empty_answer(void **unused)
{
	struct bulk_req r = {0};

	(void)unused;
	bulk_req_start(&r, NSEC);
	bulk_req_bus(&r, PFSYNC_BUS_START, 2 * NSEC);
	assert_int_equal(bulk_req_tick(&r, 2 * NSEC + BULK_IDLE_TIMEOUT_NS), 0);
	assert_int_equal(r.state, BULK_REQ_FAILED);

	bulk_req_start(&r, 50 * NSEC);
	bulk_req_bus(&r, PFSYNC_BUS_END, 50 * NSEC + 1000);
	assert_int_equal(r.state, BULK_REQ_DONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_retries_then_fails),
	    cmocka_unit_test(test_start_end_done),
	    cmocka_unit_test(test_silence_and_empty_answer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
