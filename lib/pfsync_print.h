/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Human and machine readable printing of one pfsync v6 payload (the bytes
 * from the pfsync header on), used by `pfsyncctl decode`.
 *
 * Text follows OpenBSD tcpdump's pfsync printer (pfsync-wire.md §5.2):
 *
 *   PFSYNCv6 len 36
 *       act UPD ST REQ count 1
 *   	id: 0000000000000000 creatorid: 00000000
 *
 * i.e. "\n    act <label> count <n>" per section and "\n\t..." per
 * message. Differences from OpenBSD, on purpose: a state (INS, UPD, DEL) is
 * one "\n\t<ifname> <proto> <keys>    <levels>" line instead of pfctl's
 * untabbed block, and `verbose` adds pfctl -ss -vv's detail lines (each
 * "\n\t   ...") plus the timeout class and flags. The caller prints what
 * comes before ("SRC > DST: ") and the final newline.
 *
 * Malformed input never makes these functions read outside [payload, len):
 * the walker prints OpenBSD's words instead ("[|pfsync]", "...",
 * "invalid header length", "invalid packet length", "act UNKNOWN id N",
 * "unimplemented action").
 */
#ifndef PFSYNC_PRINT_H
#define PFSYNC_PRINT_H

#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

/* OpenBSD tcpdump text without the trailing newline; verbose adds state details. */
void pfsync_print_text(FILE *f, const __u8 *payload, size_t len, int verbose);

/*
 * One JSON object (no newline) with every header, section and message
 * field, the printer's error words as "errors" and, under "receiver", the
 * counters our receiver (pfsync_decode) would bump for this payload.
 */
void pfsync_print_json(FILE *f, const __u8 *payload, size_t len);

/* helpers shared with the pcap front end */
/* JSON string literal (with quotes) of n bytes, stopping at a NUL */
void pfsync_json_string(FILE *f, const char *s, size_t n);
/* name of a PFTM_* timeout class as pf.conf spells it, "unknown" past the table */
const char *pfsync_timeout_name(unsigned int pftm);

#endif /* PFSYNC_PRINT_H */
