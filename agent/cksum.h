/* SPDX-License-Identifier: BSD-2-Clause */
/* The Internet checksum (RFC 1071) over big-endian bytes, as pfsync0's
 * headers, the TTL rewrite and held frames' partial L4 sums need it. */
#ifndef PFSYNC_AGENT_CKSUM_H
#define PFSYNC_AGENT_CKSUM_H

#include <stddef.h>
#include <linux/types.h>

/* one's complement sum of big-endian 16-bit words, an odd last byte padded */
static inline __u32 cksum_add(const __u8 *p, size_t len, __u32 sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (__u32)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (__u32)p[len - 1] << 8;
	return sum;
}

static inline __u16 cksum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* the checksum field's value (host order) for a header whose field is zero */
static inline __u16 cksum_header(const void *hdr, size_t len)
{
	return (__u16)~cksum_fold(cksum_add(hdr, len, 0));
}

#endif /* PFSYNC_AGENT_CKSUM_H */
