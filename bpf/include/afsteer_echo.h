/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The echo reflector's maps (bpf/afsteer_echo.bpf.c), mirrored in src/bpf/echo-reflector.ts and
 * checked against the object's BTF there. The echo datagram itself is src/negotiator/protocol/echo.ts.
 */
#ifndef AFSTEER_ECHO_H
#define AFSTEER_ECHO_H

#include <linux/types.h>

/* 'A' 'E' and the version byte. */
#define AFSTEER_ECHO_MAGIC_LEN 3
#define AFSTEER_ECHO_VERSION 1

/* afsteer_echo_cfg[0]: the echo port, network byte order (0: reflect nothing). */
struct afsteer_echo_cfg {
	__u16 port_be;
	__u16 pad;
};

/* afsteer_echo_stats[0], per CPU: echoes sent back. */
struct afsteer_echo_stats {
	__u64 reflected;
};

#endif
