/* SPDX-License-Identifier: BSD-2-Clause */
/* `pfsyncctl decode`: print pfsync packets from a pcap file or a live
 * interface. */
#ifndef PFSYNCCTL_DECODE_H
#define PFSYNCCTL_DECODE_H

/*
 * argv[0] is "decode". Usage:
 *   decode [-v] [--json] FILE.pcap
 *   decode [-v] [--json] -i IF [-c COUNT]
 * Returns the exit status: 0 ok, 1 unreadable file / capture error, 2 usage.
 */
int cmd_decode(int argc, char **argv);

struct ctl_opts;
/*
 * The same for pfsyncctl's command table (tools/pfsyncctl/ctl.h): argv holds
 * the words after "decode", o->json carries a --json main.c took out.
 */
int cmd_decode_ctl(const struct ctl_opts *o, int argc, char **argv);

#endif /* PFSYNCCTL_DECODE_H */
