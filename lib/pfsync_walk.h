/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Inside the printers (pfsync_print.c text, pfsync_print_json.c JSON):
 * pfsync_decode() only hands valid messages to callbacks, but a printer
 * also needs the section headers, messages the receiver would reject and
 * the place where a malformed packet goes wrong. So the printers share
 * their own small walker that follows OpenBSD tcpdump's bounds rules
 * (every read is checked against the bytes present, the header length only
 * decides which error word is printed).
 */
#ifndef LIB_PFSYNC_WALK_H
#define LIB_PFSYNC_WALK_H

#include <stddef.h>
#include <linux/types.h>

enum walk_error {
	WALK_SHORT,	    /* fewer bytes than a pfsync header: "[|pfsync]" */
	WALK_TRAILING,	    /* header claims more than the sections hold: "..." */
	WALK_BAD_HDRLEN,    /* sections run past the claimed length */
	WALK_BAD_PKTLEN,    /* bytes left over after the claimed length */
	WALK_UNKNOWN_ACT,   /* action >= PFSYNC_ACT_MAX, printing stops */
	WALK_UNIMPLEMENTED, /* known action without a message layout, printing stops */
};

struct walk_ops {
	void (*header)(void *ctx, const __u8 *hdr, unsigned int version, unsigned int len);
	void (*section)(void *ctx, unsigned int action, unsigned int count, size_t stride);
	void (*message)(void *ctx, unsigned int action, const __u8 *msg);
	void (*error)(void *ctx, enum walk_error err, unsigned int arg);
};

/* calls ops for the header, each section and message, and where it goes wrong */
void pfsync_walk(const __u8 *p, size_t len, const struct walk_ops *ops, void *ctx);
/* tcpdump's words for a walk error */
const char *pfsync_walk_error_word(enum walk_error err);
/* address text for a wire af; unknown families print as 32 hex digits */
void pfsync_format_addr(char *buf, size_t cap, const __u8 addr[16], unsigned int wire_af);
/* "start", "end", "UNKNOWN" */
const char *pfsync_bus_status_name(unsigned int status);

#endif /* LIB_PFSYNC_WALK_H */
