/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The echo reflector's maps (bpf/afsteer_echo.bpf.c), mirrored in src/bpf/echo-maps.ts and
 * checked against the object's BTF (test/integration/bpf/btf-layout.test.ts). The echo datagram
 * itself is src/negotiator/protocol/echo.ts.
 */
#ifndef AFSTEER_ECHO_H
#define AFSTEER_ECHO_H

#include <linux/types.h>

/* 'A' 'E' and the version byte. */
#define AFSTEER_ECHO_MAGIC_LEN 3
#define AFSTEER_ECHO_VERSION 1
/* An echo datagram's payload: exactly this long (a reply is the request, addresses swapped). */
#define AFSTEER_ECHO_LEN 24

/* Allow-list capacity: 5,000 peer nodes × 2 families, with room to spare. */
#define AFSTEER_ECHO_PEERS_MAX 10240
/* Per-source token buckets (LRU: a source that stops sending is forgotten first). */
#define AFSTEER_ECHO_RATE_MAX 16384

/*
 * afsteer_echo_cfg[0]: the echo port, network byte order (0: reflect nothing), and the
 * per-source rate: rate_per_sec echoes a second, bursts of up to burst (0: no limit).
 */
struct afsteer_echo_cfg {
	__u16 port_be;
	__u16 pad;
	__u32 rate_per_sec;
	__u32 burst;
	__u32 pad2;
};

/* afsteer_echo_stats[0], per CPU: echoes sent back. */
struct afsteer_echo_stats {
	__u64 reflected;
};

/* A source address: family 4 (address in addr[0..4), the rest zero) or 6. */
struct afsteer_echo_src {
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

/* afsteer_echo_peers: an authenticated peer's control address → present (kept by afsteerd). */
struct afsteer_echo_peer {
	__u32 flags;
};

/* afsteer_echo_rate: a source's token bucket; tokens in units of 1/1e9 echo, refilled by elapsed ns × rate. */
struct afsteer_echo_bucket {
	__u64 last_ns;
	__u64 tokens;
};

/* Why an echo was not sent back (index into afsteer_echo_refused's counts). */
enum afsteer_echo_refusal {
	AFSTEER_ECHO_REFUSED_UNKNOWN_SOURCE = 0, /* the source is no peer's control address */
	AFSTEER_ECHO_REFUSED_RATE = 1,           /* above the source's rate */
	AFSTEER_ECHO_REFUSED_SIZE = 2,           /* not exactly AFSTEER_ECHO_LEN bytes of payload */
	AFSTEER_ECHO_REFUSED_LOOP = 3,           /* from the echo port itself (two reflectors) */
	AFSTEER_ECHO_REFUSED_MAX = 4,
};

/* afsteer_echo_refused[0], per CPU: refused echoes by reason. */
struct afsteer_echo_refused {
	__u64 count[AFSTEER_ECHO_REFUSED_MAX];
};

#endif
