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
/* Direct-mapped endpoint cache (index ifindex & (size - 1)); collisions fall back to the hash. */
#define AFSTEER_EP_CACHE_SIZE 4096
/* Per-CPU endpoint counter cells: endpoint slot x families x directions. */
#define AFSTEER_MAX_COUNTER_KEYS (AFSTEER_MAX_ENDPOINTS * 3 * 2)
/* Index of an endpoint counter cell. */
#define AFSTEER_COUNTER_INDEX(slot, family, direction) ((slot) * 6 + (family) * 2 + (direction))
/* Remote pods known on this node (each has an IPv4 and an IPv6 key). */
#define AFSTEER_MAX_REMOTE_PODS 65536
#define AFSTEER_MAX_REMOTE_KEYS (AFSTEER_MAX_REMOTE_PODS * 2)
/* (local pod, remote pod) pairs with a steering entry; each has two routes (one per address). */
#define AFSTEER_MAX_PAIRS 65536
#define AFSTEER_MAX_ROUTES (AFSTEER_MAX_PAIRS * 2)
/* First packets of unsteered (local pod, remote pod) pairs, for afsteerd to negotiate on demand. */
#define AFSTEER_MAX_DEMAND 4096
/* Node-wide bloom filter of registered remote pod addresses: 1024 bits. */
#define AFSTEER_REMOTE_BLOOM_WORDS 16

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

/* Wire family of a steered pair (afsteer_route.wire, the value of afsteer_routes). */
enum afsteer_wire {
	AFSTEER_WIRE_NATIVE = 0, /* each packet in its own family */
	AFSTEER_WIRE_IPV4 = 4,   /* IPv6 packets travel as IPv6-in-IPv4 (protocol 41) */
	AFSTEER_WIRE_IPV6 = 6,   /* IPv4 packets travel as IPv4-in-IPv6 (next header 4) */
};

/* Node-wide event counters (afsteer_stats, per-CPU array index). */
enum afsteer_stat {
	AFSTEER_STAT_ENCAP = 0,         /* packets encapsulated */
	AFSTEER_STAT_DECAP = 1,         /* packets decapsulated */
	AFSTEER_STAT_DROP_SPOOF = 2,    /* pod sent protocol 4/41 toward a steered peer */
	AFSTEER_STAT_DROP_MISMATCH = 3, /* tunnelled packet for a local pod whose addresses do not match */
	AFSTEER_STAT_ENCAP_FAIL = 4,    /* could not encapsulate: sent natively (dropped if the header write failed) */
	AFSTEER_STAT_DECAP_FAIL = 5,    /* could not decapsulate (e.g. outer fragment): passed (dropped if stripped but not rewritable) */
	AFSTEER_STAT_SRC_FOREIGN = 6,   /* pod packet not from the pod's own address; not steered */
	AFSTEER_STAT_MAX = 8,
};

/* Endpoint / remote flags. */
#define AFSTEER_EP_F_IPV4 (1U << 0) /* ipv4 holds a valid address */
#define AFSTEER_EP_F_IPV6 (1U << 1) /* ipv6 holds a valid address */

/*
 * Value of afsteer_endpoints (hash keyed by the host-side veth ifindex, authoritative) and of
 * afsteer_endpoint_cache (array indexed by ifindex & (AFSTEER_EP_CACHE_SIZE - 1); an entry is
 * valid only when its ifindex field matches).
 */
struct afsteer_endpoint {
	__u8 ipv4[4];      /* pod IPv4 address, network order */
	__u8 ipv6[16];     /* pod IPv6 address, network order */
	__u32 flags;       /* AFSTEER_EP_F_* */
	__u32 pod_ifindex; /* ifindex of the interface inside the pod netns */
	__u32 slot;        /* counter slot (< AFSTEER_MAX_ENDPOINTS), unique per endpoint */
	__u32 ifindex;     /* the host-side veth ifindex this entry describes (cache tag) */
	__u32 routes;      /* afsteer_routes entries of this endpoint */
	__u64 route_bloom; /* bit AFSTEER_BLOOM_BIT(addr) set for every route's remote address */
};

/* Bloom bit of an address: fold to 32 bits (IPv4 as loaded; IPv6 as the xor of its four
 * 32-bit words, each as loaded little-endian), multiply, keep the top 6 bits. A clear bit means
 * "no route to that address": the data plane skips the route lookup. */
#define AFSTEER_BLOOM_BIT(fold32) (((__u32)((fold32) * 0x9E3779B1U)) >> 26)

/* Bit of an address (folded as for AFSTEER_BLOOM_BIT) in the node-wide remote bloom filter:
 * top 10 bits of the same multiply. A clear bit means "not a registered remote pod". */
#define AFSTEER_REMOTE_BLOOM_BIT(fold32) (((__u32)((fold32) * 0x9E3779B1U)) >> 22)

/* Value of afsteer_remote_bloom (array of one): set by afsteerd / `afsteer steer remote add` for
 * every registered remote address, only ever cleared by a full rebuild. The from-pod program
 * checks it before looking for a remote in afsteer_remotes, so traffic to anything else pays
 * one array read. */
struct afsteer_remote_bloom {
	__u64 bits[AFSTEER_REMOTE_BLOOM_WORDS];
};

/* Value of afsteer_demand (LRU hash keyed by struct afsteer_route_key): when a local pod first
 * sent to a registered remote pod that has no route yet. afsteerd reads, negotiates the pair
 * and deletes the entry; the LRU bounds it when no daemon runs. */
struct afsteer_demand {
	__u64 first_ns; /* bpf_ktime_get_ns() of the first packet */
};

/* Value of afsteer_counters (per-CPU array, index AFSTEER_COUNTER_INDEX). */
struct afsteer_counters {
	__u64 packets;
	__u64 bytes;
};

/* Key of afsteer_remotes: one remote pod address (IPv4 in addr[0..3], rest zero). */
struct afsteer_addr_key {
	__u8 family; /* 4 or 6 */
	__u8 pad[3]; /* zero */
	__u8 addr[16];
};

/* Value of afsteer_local_addrs (keyed by struct afsteer_addr_key): the local pod owning the
 * address, by its host-side veth ifindex. */
struct afsteer_local_addr {
	__u32 ifindex;
};

/* Value of afsteer_remotes: both addresses of the remote pod the key belongs to. */
struct afsteer_remote {
	__u8 ipv4[4];
	__u8 ipv6[16];
	__u32 flags; /* AFSTEER_EP_F_*: both must be set for the pod to be steerable */
};

/* Key of afsteer_routes: (local pod, one address of a remote pod). A steered pair has two
 * routes, one per remote address, with the same value. */
struct afsteer_route_key {
	__u32 ifindex; /* local pod's host-side veth ifindex */
	__u8 family;   /* 4 or 6: the family of addr */
	__u8 pad[3];   /* zero */
	__u8 addr[16]; /* remote pod address (IPv4 in addr[0..3], rest zero) */
};

/* Value of afsteer_routes: the pair's steering and everything encapsulation needs. */
struct afsteer_route {
	__u8 wire;             /* enum afsteer_wire */
	__u8 pad[3];           /* zero */
	__u32 generation;      /* set by the writer (negotiation round) */
	__u32 pair;            /* index in afsteer_pair_counters (< AFSTEER_MAX_PAIRS) */
	__u8 remote_ipv4[4];   /* the remote pod's addresses */
	__u8 remote_ipv6[16];
};

/* Value of afsteer_pair_counters (array, shared by CPUs, atomic adds);
 * [0] = IPv4 application packets, [1] = IPv6. */
struct afsteer_pair_counters {
	__u64 native_packets[2];
	__u64 native_bytes[2];
	__u64 encap_packets[2];
	__u64 encap_bytes[2];
	__u64 decap_packets[2];
	__u64 decap_bytes[2];
	__u64 drop_spoof;
	__u64 drop_mismatch;
	__u64 encap_fail;
	__u64 decap_fail;
};

#endif /* AFSTEER_MAPS_H */
