/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * afsteer BPF map layouts: the single source of truth for every structure that
 * crosses the kernel/user boundary. src/bpf/maps-layout.ts mirrors each struct
 * field for field; test/integration/bpf/btf-layout.test.ts checks the mirror against
 * the BTF of the compiled object, so a change here that is not made there fails.
 */
#ifndef AFSTEER_MAPS_H
#define AFSTEER_MAPS_H

#include <linux/types.h>
#include <linux/bpf.h> /* struct bpf_spin_lock */

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
	AFSTEER_DIR_FROM_POD = 0, /* host veth tc ingress; in the pod (AFSTEER_EP_F_IN_POD): its interface's tc egress */
	AFSTEER_DIR_TO_POD = 1,   /* host veth tc egress; in the pod: its interface's tc ingress */
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
/* The endpoint's programs run inside the pod's network namespace, on the pod's own interface
 * (macvlan, ipvlan, host-device: no host-side veth): from the pod = its clsact egress, to the
 * pod = its clsact ingress. Endpoints only. */
#define AFSTEER_EP_F_IN_POD (1U << 2)

/*
 * Endpoint keys (afsteer_endpoints, afsteer_endpoint_cache tags, afsteer_local_addrs values, the
 * local half of afsteer_route_key and so afsteer_demand): a u32 that is either
 *   - the host-side veth's ifindex, for programs on a pod's host veth (below 2^31: the kernel
 *     allocates ifindexes in [1, INT_MAX]), or
 *   - AFSTEER_EP_KEY_POD | id, for programs inside a pod's namespace (AFSTEER_EP_F_IN_POD), where
 *     id (1..AFSTEER_EP_POD_ID_MAX) is the attachment's id, assigned at ADD and carried as the
 *     classid minor of its two tc filters: cls_bpf stores it in skb->tc_classid before the
 *     program runs (a filter without a classid gives 0, the host veth case). Ifindexes inside pod
 *     namespaces repeat from pod to pod and are never a key.
 */
#define AFSTEER_EP_KEY_POD 0x80000000U
#define AFSTEER_EP_POD_ID_MAX 0xffffU

/*
 * Value of afsteer_endpoints (hash keyed by the endpoint key, authoritative) and of
 * afsteer_endpoint_cache (array indexed by key & (AFSTEER_EP_CACHE_SIZE - 1); an entry is
 * valid only when its ifindex field, the key, matches).
 */
struct afsteer_endpoint {
	__u8 ipv4[4];      /* pod IPv4 address, network order */
	__u8 ipv6[16];     /* pod IPv6 address, network order */
	__u32 flags;       /* AFSTEER_EP_F_* */
	__u32 pod_ifindex; /* ifindex of the interface inside the pod netns */
	__u32 slot;        /* counter slot (< AFSTEER_MAX_ENDPOINTS), unique per endpoint */
	__u32 ifindex;     /* the endpoint key this entry describes (cache tag): host veth ifindex or AFSTEER_EP_KEY_POD | id */
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
 * address, by its endpoint key (a host veth ifindex, or AFSTEER_EP_KEY_POD | id: never a
 * redirect target). */
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
	__u32 ifindex; /* local pod's endpoint key (host-side veth ifindex, or AFSTEER_EP_KEY_POD | id) */
	__u8 family;   /* 4 or 6: the family of addr */
	__u8 pad[3];   /* zero */
	__u8 addr[16]; /* remote pod address (IPv4 in addr[0..3], rest zero) */
};

/* Value of afsteer_routes: the pair's steering and everything encapsulation needs. */
struct afsteer_route {
	__u8 wire;             /* enum afsteer_wire */
	__u8 flags;            /* AFSTEER_ROUTE_F_* (zero before protection existed) */
	__u8 pad[2];           /* zero */
	__u32 generation;      /* set by the writer (negotiation round) */
	__u32 pair;            /* index in afsteer_pair_counters (< AFSTEER_MAX_PAIRS) */
	__u8 remote_ipv4[4];   /* the remote pod's addresses */
	__u8 remote_ipv6[16];
};

/* Value of afsteer_pair_seen (array indexed like afsteer_pair_counters; BPF_F_MMAPABLE, so
 * afsteerd reads it in place without a system call): when the pair's last packet left this node
 * and when the last one of the remote pod arrived, over each wire family — [0] over IPv4, [1] over
 * IPv6 — in bpf_ktime_get_ns() (CLOCK_MONOTONIC; 0: never). Demand-style probing (RFC 5880 §6.6):
 * traffic answered over a family proves that path, so afsteerd need not probe it fast. Each field
 * is written at most once per AFSTEER_SEEN_GRAIN_NS, so a busy pair does not keep a cache line hot. */
struct afsteer_pair_seen {
	__u64 sent_ns[2];
	__u64 received_ns[2];
};
#define AFSTEER_SEEN_GRAIN_NS 1000000ULL

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

/* ---- Protected pairs: every packet on both families, the first copy to arrive delivered ----
 *
 * Wire: while a pair is protected, both copies travel encapsulated between the two pods' own
 * addresses, one in each family (IPv4-in-IPv4 / IPv6-in-IPv4 over IPv4, IPv4-in-IPv6 /
 * IPv6-in-IPv6 over IPv6), and carry the same per-pair sequence number in the outer header:
 * AFSTEER_SEQ_MARK | seq in the outer IPv4 identification (DF is set, so the field is free,
 * RFC 6864) or in the low 16 bits of the outer IPv6 flow label. An unmarked tunnel packet is
 * today's steering and is never deduplicated. */

/* afsteer_route.flags: the sender duplicates this pair (the peer confirmed it deduplicates). */
#define AFSTEER_ROUTE_F_PROTECT (1U << 0)
/* Marker bit and sequence number bits in the outer identification / flow label. */
#define AFSTEER_SEQ_MARK 0x8000
#define AFSTEER_SEQ_MASK 0x7fff
/* Receive window: a ring of AFSTEER_DEDUP_WORDS x 64 bits indexed by seq (RFC 6479). A copy up
 * to AFSTEER_DEDUP_WINDOW sequence numbers behind the newest accepted one is judged exactly;
 * an older one is dropped (counted dedup_old). */
#define AFSTEER_DEDUP_WORDS 32
#define AFSTEER_DEDUP_WINDOW ((AFSTEER_DEDUP_WORDS - 1) * 64)
/* A window that saw no copy for this long starts again at the next copy (a sender that
 * re-created the pair starts its sequence again). */
#define AFSTEER_DEDUP_IDLE_NS 500000000ULL
/* Protected pairs on one node (afsteer_protect entries). */
#define AFSTEER_MAX_PROTECTED 8192
/* skb->mark of the second copy while it re-enters afsteer_from_pod (bpf_clone_redirect to the
 * host veth's ingress; in the pod, to its interface's egress): AFSTEER_CLONE_MARK |
 * (outer IPv6 ? AFSTEER_CLONE_F_IPV6 : 0) | seq. On a host veth a pod cannot set it (crossing
 * into the host namespace scrubs skb->mark); inside the pod's namespace a pod with
 * CAP_NET_ADMIN can, so the second pass checks the packet again as the first did. */
#define AFSTEER_CLONE_MARK 0xaf5a0000U
#define AFSTEER_CLONE_MARK_MASK 0xffff0000U
#define AFSTEER_CLONE_F_IPV6 0x8000U

/* Value of afsteer_protect (hash keyed by the pair's index, the route's `pair`): the sender's
 * sequence number and the receiver's window of one protected pair, with its counters. Created
 * by the steering writer when the pair is protected, removed with the pair's routes; missing
 * means no duplication and every copy delivered. */
struct afsteer_protect {
	struct bpf_spin_lock lock; /* guards every field below but the dup_* counters */
	__u32 tx_seq;              /* next sequence number to send (low 15 bits go on the wire) */
	__u32 rx_top;              /* newest sequence number accepted */
	__u32 rx_valid;            /* 0 until the first copy (and again after AFSTEER_DEDUP_IDLE_NS) */
	__u64 rx_last_ns;          /* bpf_ktime_get_ns() of the last copy inside the window */
	__u64 rx_bits[AFSTEER_DEDUP_WORDS]; /* bit seq % (64 x words): that copy was delivered */
	__u64 rx_first;            /* copies delivered (the first of each sequence number) */
	__u64 rx_dup;              /* copies dropped: that sequence number was delivered */
	__u64 rx_old;              /* copies dropped: older than the window */
	__u64 dup_packets;         /* second copies sent (atomic adds) */
	__u64 dup_bytes;
	__u64 dup_capped;          /* packets sent once: the node's duplication budget was spent */
};

/* Value of afsteer_dup_budget (array of one): the node-wide token bucket of duplicated bytes.
 * rate 0 (the map as created) allows no duplication. Written by afsteerd from its config. */
struct afsteer_dup_budget {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 rate;    /* bytes per second */
	__u64 burst;   /* bucket depth, bytes */
	__u64 tokens;  /* bytes left */
	__u64 last_ns; /* last refill */
};

/* Node-wide protection counters (afsteer_protect_stats, per-CPU array index). */
enum afsteer_protect_stat {
	AFSTEER_PSTAT_DUP = 0,          /* second copies sent */
	AFSTEER_PSTAT_DUP_BYTES = 1,    /* their bytes */
	AFSTEER_PSTAT_DUP_CAPPED = 2,   /* protected packets sent once: budget spent */
	AFSTEER_PSTAT_DUP_FAIL = 3,     /* the second copy could not be made or sent */
	AFSTEER_PSTAT_RX_FIRST = 4,     /* marked copies delivered */
	AFSTEER_PSTAT_RX_DUP = 5,       /* marked copies dropped as duplicates */
	AFSTEER_PSTAT_RX_OLD = 6,       /* marked copies dropped as older than the window */
	AFSTEER_PSTAT_RX_NOSTATE = 7,   /* marked copies delivered without a window (pair unknown) */
	AFSTEER_PSTAT_MAX = 8,
};

#endif /* AFSTEER_MAPS_H */
