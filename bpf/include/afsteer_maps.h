/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * afsteer BPF map layouts: the single source of truth for every structure that
 * crosses the kernel/user boundary. src/bpf/maps-layout.ts mirrors each struct
 * field for field; test/integration/btf-layout.test.ts checks the mirror against
 * the BTF of the compiled object, so a change here that is not made there fails.
 */
#ifndef AFSTEER_MAPS_H
#define AFSTEER_MAPS_H

#include <linux/types.h>

/* Capacity of the local endpoint map: pods on one node. */
#define AFSTEER_MAX_ENDPOINTS 1024
/* Capacity of the per-CPU counter map: endpoints x families x directions. */
#define AFSTEER_MAX_COUNTER_KEYS (AFSTEER_MAX_ENDPOINTS * 3 * 2)

/* Address family index used in counter keys. */
enum afsteer_family {
	AFSTEER_FAMILY_IPV4 = 0,
	AFSTEER_FAMILY_IPV6 = 1,
	AFSTEER_FAMILY_OTHER = 2,
};

/* Direction of a packet relative to the pod. */
enum afsteer_direction {
	AFSTEER_DIR_FROM_POD = 0, /* host veth tc ingress */
	AFSTEER_DIR_TO_POD = 1,   /* host veth tc egress */
};

/* Endpoint flags. */
#define AFSTEER_EP_F_IPV4 (1U << 0) /* ipv4 holds a valid address */
#define AFSTEER_EP_F_IPV6 (1U << 1) /* ipv6 holds a valid address */

/* Value of afsteer_endpoints, keyed by the host-side veth ifindex (__u32). */
struct afsteer_endpoint {
	__u8 ipv4[4];      /* pod IPv4 address, network order */
	__u8 ipv6[16];     /* pod IPv6 address, network order */
	__u32 flags;       /* AFSTEER_EP_F_* */
	__u32 pod_ifindex; /* ifindex of the interface inside the pod netns */
};

/* Key of afsteer_counters. */
struct afsteer_counter_key {
	__u32 ifindex;  /* host-side veth ifindex */
	__u8 family;    /* enum afsteer_family */
	__u8 direction; /* enum afsteer_direction */
	__u16 pad;      /* zero */
};

/* Value of afsteer_counters (per CPU). */
struct afsteer_counters {
	__u64 packets;
	__u64 bytes;
};

#endif /* AFSTEER_MAPS_H */
