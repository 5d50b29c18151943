// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * afsteer tc programs, attached to the host-side veth of each pod (or, for a pod interface with
 * no host-side veth — macvlan, ipvlan, host-device — inside the pod's namespace on the pod's own
 * interface, with the directions swapped: from the pod = its egress, to the pod = its ingress;
 * the endpoint key then comes from the filter's classid, see AFSTEER_EP_KEY_POD):
 *   afsteer_from_pod  clsact ingress (in the pod: egress): packets the pod sends. If the pair (this pod, the
 *                     remote pod) is steered to the other family, encapsulate the packet in
 *                     that family between the two pods' own addresses (IPv4-in-IPv6, next
 *                     header 4, or IPv6-in-IPv4, protocol 41). The inner packet is untouched.
 *   afsteer_to_pod    clsact egress (in the pod: ingress): packets delivered to the pod. A tunnelled packet whose
 *                     outer and inner addresses are the same known remote pod and this pod is
 *                     decapsulated; one that claims this pod but does not match is dropped;
 *                     everything else passes untouched.
 * and to the egress of the bridge the pods' veths are enslaved to (when there is one):
 *   afsteer_bridge_out clsact egress of the bridge: a tunnelled packet for a local pod goes
 *                     straight to that pod's host veth (the bridge has no tunnel GSO offload);
 *                     everything else is bridged as usual.
 * Missing state always means "pass natively".
 */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "include/afsteer_maps.h"

/* Not in older uapi headers; values from include/uapi/linux/bpf.h (Linux >= 6.3). */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AFSTEER_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct afsteer_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AFSTEER_EP_CACHE_SIZE);
	__type(key, __u32);
	__type(value, struct afsteer_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_endpoint_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AFSTEER_MAX_COUNTER_KEYS);
	__type(key, __u32);
	__type(value, struct afsteer_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AFSTEER_MAX_REMOTE_KEYS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct afsteer_addr_key);
	__type(value, struct afsteer_remote);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_remotes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AFSTEER_MAX_ENDPOINTS * 2);
	__type(key, struct afsteer_addr_key);
	__type(value, struct afsteer_local_addr);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_local_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AFSTEER_MAX_ROUTES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct afsteer_route_key);
	__type(value, struct afsteer_route);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AFSTEER_MAX_PAIRS);
	__type(key, __u32);
	__type(value, struct afsteer_pair_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_pair_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AFSTEER_MAX_PAIRS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct afsteer_pair_seen);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_pair_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AFSTEER_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct afsteer_remote_bloom);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_remote_bloom SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, AFSTEER_MAX_DEMAND);
	__type(key, struct afsteer_route_key);
	__type(value, struct afsteer_demand);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_demand SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AFSTEER_MAX_PROTECTED);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct afsteer_protect);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_protect SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct afsteer_dup_budget);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_dup_budget SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AFSTEER_PSTAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_protect_stats SEC(".maps");

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&afsteer_stats, &which);

	if (v)
		*v += 1;
}

/*
 * The endpoint key of the attachment this program runs for: the classid minor of the tc filter
 * (cls_bpf stores it in skb->tc_classid before running the program) for an attachment inside a
 * pod's namespace, else — a filter without a classid, on a host veth — the interface's ifindex.
 */
static __always_inline __u32 endpoint_key(struct __sk_buff *skb)
{
	__u32 id = skb->tc_classid & AFSTEER_EP_POD_ID_MAX;

	return id ? (AFSTEER_EP_KEY_POD | id) : skb->ifindex;
}

/* The endpoint with key ifindex (endpoint_key): the direct-mapped cache first, then the hash. */
static __always_inline struct afsteer_endpoint *lookup_endpoint(__u32 ifindex)
{
	__u32 idx = ifindex & (AFSTEER_EP_CACHE_SIZE - 1);
	struct afsteer_endpoint *ep = bpf_map_lookup_elem(&afsteer_endpoint_cache, &idx);

	if (ep && ep->ifindex == ifindex)
		return ep;
	return bpf_map_lookup_elem(&afsteer_endpoints, &ifindex);
}

static __always_inline __u64 bloom4(__be32 a)
{
	return 1ULL << AFSTEER_BLOOM_BIT((__u32)a);
}

static __always_inline __u64 bloom6(const __u8 *a)
{
	const __u32 *w = (const __u32 *)a;

	return 1ULL << AFSTEER_BLOOM_BIT(w[0] ^ w[1] ^ w[2] ^ w[3]);
}

/* True when the node-wide remote bloom filter may hold the address folded to fold. */
static __always_inline int remote_bloom_hit(__u32 fold)
{
	__u32 zero = 0, bit = AFSTEER_REMOTE_BLOOM_BIT(fold);
	struct afsteer_remote_bloom *b = bpf_map_lookup_elem(&afsteer_remote_bloom, &zero);

	return b && ((b->bits[(bit >> 6) & (AFSTEER_REMOTE_BLOOM_WORDS - 1)] >> (bit & 63)) & 1);
}

/*
 * A pod sent to an address with no route: if it is a registered remote pod, record the pair's
 * first packet for afsteerd (once: an entry already there is left alone). The route key's tail
 * (family, pad, addr) has the layout of struct afsteer_addr_key.
 */
static __always_inline void note_demand(struct afsteer_route_key *rkey, __u32 fold)
{
	struct afsteer_demand d;

	if (!remote_bloom_hit(fold))
		return;
	/* Already recorded (afsteerd has not taken it yet, or is not running): one lookup. */
	if (bpf_map_lookup_elem(&afsteer_demand, rkey))
		return;
	if (!bpf_map_lookup_elem(&afsteer_remotes, &rkey->family))
		return;
	d.first_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&afsteer_demand, rkey, &d, BPF_NOEXIST);
}

static __always_inline void pstat_add(__u32 which, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&afsteer_protect_stats, &which);

	if (v)
		*v += n;
}

/* Count one packet in the endpoint's counter cell (a per-CPU array: no hashing, no locking). */
static __always_inline void count_endpoint(const struct afsteer_endpoint *ep, __u8 family, __u8 direction, __u32 len)
{
	__u32 idx = AFSTEER_COUNTER_INDEX(ep->slot, family, direction);
	struct afsteer_counters *c = bpf_map_lookup_elem(&afsteer_counters, &idx);

	if (c) {
		c->packets += 1;
		c->bytes += len;
	}
}

/* Shared per-pair counters: atomic adds (several CPUs may carry one pair). */
#define PAIR_ADD(pc, field, v) __sync_fetch_and_add(&(pc)->field, (v))

static __always_inline int addr_eq6(const __u8 *a, const __u8 *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1];
}

static __always_inline void copy6(__u8 *dst, const __u8 *src)
{
	__builtin_memcpy(dst, src, 16);
}

/* Folds a 32-bit one's-complement sum to the 16-bit IPv4 header checksum. */
static __always_inline __u16 csum_fold(__u32 csum)
{
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	return (__u16)~csum;
}

/*
 * The programs never write packet memory directly: a program with direct packet writes gets a
 * verifier prologue that makes every *cloned* skb's head writable on entry (bpf_skb_pull_data) —
 * a helper call, and a copy of the head when it is shared (TCP's clones, packet taps) — on every
 * packet, steered or not. bpf_skb_store_bytes makes only the rewritten packets writable.
 */

/* The Ethernet type followed by an outer IPv6 header, as written after the MAC addresses. */
struct outer6 {
	__be16 h_proto;
	struct ipv6hdr ip6;
} __attribute__((packed));

/* The Ethernet type followed by an outer IPv4 header. */
struct outer4 {
	__be16 h_proto;
	struct iphdr ip;
} __attribute__((packed));

/*
 * Wrap the packet after the Ethernet header in an outer IPv6 header: next header 4 for an IPv4
 * packet (steering), 41 for an IPv6 one (a protected pair's IPv6 copy); the flow label's low 16
 * bits carry `mark` (AFSTEER_SEQ_MARK | seq for a protected pair's copy, else 0).
 */
static __always_inline int encap_in_ipv6(struct __sk_buff *skb, const __u8 *src6, const __u8 *dst6, __u8 tos, __u8 ttl,
					 __u8 nexthdr, __u16 mark)
{
	struct outer6 o = {
		.h_proto = bpf_htons(ETH_P_IPV6),
		.ip6 = {
			.version = 6,
			.priority = tos >> 4,
			.flow_lbl = { (__u8)(tos << 4), (__u8)(mark >> 8), (__u8)mark },
			.payload_len = bpf_htons((__u16)(skb->len - ETH_HLEN)),
			.nexthdr = nexthdr,
			.hop_limit = ttl,
		},
	};

	copy6(o.ip6.saddr.in6_u.u6_addr8, src6);
	copy6(o.ip6.daddr.in6_u.u6_addr8, dst6);
	if (bpf_skb_adjust_room(skb, sizeof(struct ipv6hdr), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return -1;
	/* -2: the room is made but the header is not written; the packet can no longer go native. */
	return bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &o, sizeof(o), 0) ? -2 : 0;
}

/*
 * Wrap the packet after the Ethernet header in an outer IPv4 header (DF): protocol 41 for an IPv6
 * packet (steering), 4 for an IPv4 one (a protected pair's IPv4 copy); the identification carries
 * `mark` (AFSTEER_SEQ_MARK | seq for a protected pair's copy, else 0).
 */
static __always_inline int encap_in_ipv4(struct __sk_buff *skb, const __u8 *src4, const __u8 *dst4, __u8 tclass, __u8 hop_limit,
					 __u8 proto, __u16 mark)
{
	__u32 outer_len = skb->len - ETH_HLEN + sizeof(struct iphdr);
	struct outer4 o = {
		.h_proto = bpf_htons(ETH_P_IP),
		.ip = {
			.version = 4,
			.ihl = 5,
			.tos = tclass,
			.id = bpf_htons(mark),
			.frag_off = bpf_htons(IP_DF),
			.ttl = hop_limit,
			.protocol = proto,
		},
	};
	__u32 sum;

	if (outer_len > 0xffff)
		return -1;
	o.ip.tot_len = bpf_htons((__u16)outer_len);
	o.ip.saddr = *(const __be32 *)src4;
	o.ip.daddr = *(const __be32 *)dst4;
	/* Header checksum over the ten 16-bit words (check is zero), folded. */
	sum = ((__u32)bpf_htons(0x4500 | tclass)) + o.ip.tot_len + o.ip.id + bpf_htons(IP_DF) +
	      ((__u32)bpf_htons(((__u16)hop_limit << 8) | proto)) +
	      (o.ip.saddr & 0xffff) + (o.ip.saddr >> 16) + (o.ip.daddr & 0xffff) + (o.ip.daddr >> 16);
	o.ip.check = csum_fold(sum);
	if (bpf_skb_adjust_room(skb, sizeof(struct iphdr), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return -1;
	return bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &o, sizeof(o), 0) ? -2 : 0;
}

/* Sentinel upper protocol: the extension-header chain was longer than we walk (or unreadable). */
#define AFSTEER_PROTO_UNPARSED 256

/*
 * Upper-layer protocol of the IPv6 packet whose header starts at l3: follows up to
 * AFSTEER_MAX_EXT extension headers (hop-by-hop, routing, fragment, destination options, AH),
 * each read with bpf_skb_load_bytes (bounds-checked by the helper).
 */
#define AFSTEER_MAX_EXT 6
static __always_inline __u32 ipv6_upper_proto(struct __sk_buff *skb, __u32 l3, __u8 nexthdr)
{
	__u32 pos = l3 + sizeof(struct ipv6hdr);
	__u8 ext[2];
	int i;

#pragma unroll
	for (i = 0; i < AFSTEER_MAX_EXT; i++) {
		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (bpf_skb_load_bytes(skb, pos, ext, sizeof(ext)))
				return AFSTEER_PROTO_UNPARSED;
			nexthdr = ext[0];
			pos += ((__u32)ext[1] + 1) * 8;
			break;
		case IPPROTO_FRAGMENT:
			if (bpf_skb_load_bytes(skb, pos, ext, sizeof(ext)))
				return AFSTEER_PROTO_UNPARSED;
			nexthdr = ext[0];
			pos += 8;
			break;
		case IPPROTO_AH:
			if (bpf_skb_load_bytes(skb, pos, ext, sizeof(ext)))
				return AFSTEER_PROTO_UNPARSED;
			nexthdr = ext[0];
			pos += ((__u32)ext[1] + 2) * 4;
			break;
		default:
			return nexthdr;
		}
	}
	return AFSTEER_PROTO_UNPARSED;
}

/* True for what could carry a tunnelled packet: IPIP, IPv6-in-IP, or a chain too long to judge. */
static __always_inline int tunnel_proto(__u32 proto)
{
	return proto == IPPROTO_IPIP || proto == IPPROTO_IPV6 || proto == AFSTEER_PROTO_UNPARSED;
}

static __always_inline struct afsteer_pair_counters *pair_counters(const struct afsteer_route *r)
{
	__u32 idx = r->pair;

	return bpf_map_lookup_elem(&afsteer_pair_counters, &idx);
}

/* Notes that pair's packet left (received = 0) or arrived (1) over wire family wire (AFSTEER_FAMILY_IPV4/IPV6) now. */
static __always_inline void pair_seen(__u32 pair, int received, __u8 wire)
{
	struct afsteer_pair_seen *s;
	__u32 idx = pair;
	__u64 now, *at;

	s = bpf_map_lookup_elem(&afsteer_pair_seen, &idx);
	if (!s)
		return;
	at = received ? &s->received_ns[wire & 1] : &s->sent_ns[wire & 1];
	now = bpf_ktime_get_ns();
	if (now - *(volatile __u64 *)at >= AFSTEER_SEEN_GRAIN_NS)
		*(volatile __u64 *)at = now;
}

/* Protected pairs, sending side. */
enum protect_verdict { PROTECT_NO = 0, PROTECT_SENT = 1, PROTECT_DROP = 2 };

/*
 * Takes len bytes from the node-wide duplication budget (token bucket, refilled at rate bytes/s
 * up to burst); 0 when it is spent or was never configured (rate 0).
 */
static __always_inline int dup_budget_take(__u32 len)
{
	__u32 zero = 0;
	struct afsteer_dup_budget *b = bpf_map_lookup_elem(&afsteer_dup_budget, &zero);
	__u64 now = bpf_ktime_get_ns(), elapsed, tokens;
	int ok = 0;

	if (!b)
		return 0;
	bpf_spin_lock(&b->lock);
	if (b->rate) {
		elapsed = now - b->last_ns;
		if (elapsed > 1000000000ULL)
			elapsed = 1000000000ULL;
		/* us x bytes/s / 10^6: no overflow below 1.8 x 10^13 bytes/s. */
		tokens = b->tokens + (elapsed / 1000) * b->rate / 1000000;
		if (tokens > b->burst)
			tokens = b->burst;
		if (tokens >= len) {
			tokens -= len;
			ok = 1;
		}
		b->tokens = tokens;
		b->last_ns = now;
	}
	bpf_spin_unlock(&b->lock);
	return ok;
}

/* One copy of a protected pair's packet: wrapped for the outer family (IPv6 when outer6) with seq. */
static __always_inline int encap_copy(struct __sk_buff *skb, const struct afsteer_endpoint *ep,
				      const struct afsteer_route *route, __u8 fam, int outer6, __u16 seq, __u8 tos, __u8 ttl)
{
	__u8 inner = fam == AFSTEER_FAMILY_IPV4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	__u16 mark = AFSTEER_SEQ_MARK | (seq & AFSTEER_SEQ_MASK);

	if (outer6)
		return encap_in_ipv6(skb, ep->ipv6, route->remote_ipv6, tos, ttl, inner, mark);
	return encap_in_ipv4(skb, ep->ipv4, route->remote_ipv4, tos, ttl, inner, mark);
}

/*
 * A protected pair's packet (the pod's own source, both its addresses, checked by the caller):
 * take a sequence number, send a clone back into this program (bpf_clone_redirect to the host
 * veth's ingress — in the pod, to its interface's egress —, the mark naming its family and
 * number: second_copy() wraps it there, so it
 * leaves by the same path as every packet of the pod), then wrap this one for the pair's wire
 * family (its own family when the pair is native). The clone is made before the first copy is
 * wrapped: both copies carry the inner packet as the pod sent it, GSO packets whole.
 * PROTECT_NO: send as today (no window entry, or the node's duplication budget is spent).
 */
static __always_inline int protect_send(struct __sk_buff *skb, const struct afsteer_endpoint *ep,
					const struct afsteer_route *route, struct afsteer_pair_counters *pc,
					__u8 fam, __u8 tos, __u8 ttl, __u32 len)
{
	__u32 idx = route->pair, mark = skb->mark;
	struct afsteer_protect *p = bpf_map_lookup_elem(&afsteer_protect, &idx);
	int first6, rc;
	__u16 seq;

	if (!p)
		return PROTECT_NO;
	if (!dup_budget_take(len)) {
		pstat_add(AFSTEER_PSTAT_DUP_CAPPED, 1);
		PAIR_ADD(p, dup_capped, 1);
		return PROTECT_NO;
	}
	bpf_spin_lock(&p->lock);
	seq = p->tx_seq & AFSTEER_SEQ_MASK;
	p->tx_seq += 1;
	bpf_spin_unlock(&p->lock);
	if (route->wire == AFSTEER_WIRE_IPV6)
		first6 = 1;
	else if (route->wire == AFSTEER_WIRE_IPV4)
		first6 = 0;
	else
		first6 = fam == AFSTEER_FAMILY_IPV6;
	skb->mark = AFSTEER_CLONE_MARK | (first6 ? 0 : AFSTEER_CLONE_F_IPV6) | seq;
	rc = bpf_clone_redirect(skb, skb->ifindex, (ep->flags & AFSTEER_EP_F_IN_POD) ? 0 : BPF_F_INGRESS);
	skb->mark = mark;
	if (rc)
		pstat_add(AFSTEER_PSTAT_DUP_FAIL, 1);
	rc = encap_copy(skb, ep, route, fam, first6, seq, tos, ttl);
	if (rc) {
		/* A packet the kernel will not resize goes native, as unprotected ones do (its clone
		 * fails the same way in second_copy and is dropped there). */
		stat_inc(AFSTEER_STAT_ENCAP_FAIL);
		if (pc)
			PAIR_ADD(pc, encap_fail, 1);
		return rc == -2 ? PROTECT_DROP : PROTECT_NO;
	}
	stat_inc(AFSTEER_STAT_ENCAP);
	if (pc) {
		PAIR_ADD(pc, encap_packets[fam & 1], 1);
		PAIR_ADD(pc, encap_bytes[fam & 1], len);
	}
	return PROTECT_SENT;
}

/*
 * The second copy of a protected pair's packet, back in afsteer_from_pod from bpf_clone_redirect
 * with AFSTEER_CLONE_MARK: the first pass checked it (source, anti-spoofing, route) and counted it;
 * this pass wraps it for the family the mark names, with the mark's sequence number. When the
 * endpoint or the route went away in between, the copy is dropped: the first one is on its way.
 * Inside a pod's namespace the pod itself can set skb->mark, so the packet is checked again as
 * the first pass checks it (the pod's own source, a protected route, no tunnel inside): a forged
 * mark gets a pod nothing it could not send anyway.
 */
static __always_inline int second_copy(struct __sk_buff *skb, __u32 mark)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 key = endpoint_key(skb);
	struct afsteer_route_key rkey = { .ifindex = key };
	struct afsteer_endpoint *ep;
	struct afsteer_route *route;
	struct afsteer_protect *p;
	__u32 len = skb->len, idx, proto;
	__u8 fam, tos, ttl;
	int own_src;

	skb->mark = 0;
	ep = lookup_endpoint(key);
	if (!ep || (void *)(eth + 1) > data_end)
		goto drop;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			goto drop;
		fam = AFSTEER_FAMILY_IPV4;
		rkey.family = 4;
		*(__be32 *)rkey.addr = ip->daddr;
		tos = ip->tos;
		ttl = ip->ttl;
		proto = ip->protocol;
		own_src = (ep->flags & AFSTEER_EP_F_IPV4) && ip->saddr == *(__be32 *)ep->ipv4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			goto drop;
		fam = AFSTEER_FAMILY_IPV6;
		rkey.family = 6;
		copy6(rkey.addr, ip6->daddr.in6_u.u6_addr8);
		tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
		ttl = ip6->hop_limit;
		proto = ip6->nexthdr;
		own_src = (ep->flags & AFSTEER_EP_F_IPV6) && addr_eq6(ip6->saddr.in6_u.u6_addr8, ep->ipv6);
	} else {
		goto drop;
	}
	if (ep->flags & AFSTEER_EP_F_IN_POD) {
		if (fam == AFSTEER_FAMILY_IPV6 && proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMPV6)
			proto = ipv6_upper_proto(skb, ETH_HLEN, proto);
		if (!own_src || tunnel_proto(proto)) {
			stat_inc(AFSTEER_STAT_DROP_SPOOF);
			return TC_ACT_SHOT;
		}
	}
	route = bpf_map_lookup_elem(&afsteer_routes, &rkey);
	if (!route || ((ep->flags & AFSTEER_EP_F_IN_POD) && !(route->flags & AFSTEER_ROUTE_F_PROTECT)))
		goto drop;
	idx = route->pair;
	if (encap_copy(skb, ep, route, fam, !!(mark & AFSTEER_CLONE_F_IPV6), mark & AFSTEER_SEQ_MASK, tos, ttl))
		goto drop;
	pstat_add(AFSTEER_PSTAT_DUP, 1);
	pstat_add(AFSTEER_PSTAT_DUP_BYTES, len);
	p = bpf_map_lookup_elem(&afsteer_protect, &idx);
	if (p) {
		PAIR_ADD(p, dup_packets, 1);
		PAIR_ADD(p, dup_bytes, len);
	}
	return TC_ACT_OK;
drop:
	pstat_add(AFSTEER_PSTAT_DUP_FAIL, 1);
	return TC_ACT_SHOT;
}

/* The from-pod program's logic. */
static __always_inline int from_pod(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 ifindex = endpoint_key(skb);
	__u32 len = skb->len;
	struct afsteer_endpoint *ep;
	struct afsteer_route_key rkey = { .ifindex = ifindex };
	struct afsteer_route *route;
	struct afsteer_pair_counters *pc;
	__u8 fam, tos, ttl;
	__u32 proto, wire_flag, fold;
	int own_src, rc;

	if ((skb->mark & AFSTEER_CLONE_MARK_MASK) == AFSTEER_CLONE_MARK)
		return second_copy(skb, skb->mark);
	ep = lookup_endpoint(ifindex);
	if (!ep)
		return TC_ACT_OK;
	if ((void *)(eth + 1) > data_end) {
		count_endpoint(ep, AFSTEER_FAMILY_OTHER, AFSTEER_DIR_FROM_POD, len);
		return TC_ACT_OK;
	}

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		fam = AFSTEER_FAMILY_IPV4;
		count_endpoint(ep, fam, AFSTEER_DIR_FROM_POD, len);
		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			return TC_ACT_OK;
		rkey.family = 4;
		*(__be32 *)rkey.addr = ip->daddr;
		fold = (__u32)ip->daddr;
		/* Fast path: no route to this destination (bloom bit clear) needs nothing else but
		 * the demand check (one array read unless it is a remote pod). */
		if (!(ep->route_bloom & bloom4(ip->daddr))) {
			note_demand(&rkey, fold);
			return TC_ACT_OK;
		}
		proto = ip->protocol;
		tos = ip->tos;
		ttl = ip->ttl;
		own_src = (ep->flags & AFSTEER_EP_F_IPV4) && ip->saddr == *(__be32 *)ep->ipv4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		fam = AFSTEER_FAMILY_IPV6;
		count_endpoint(ep, fam, AFSTEER_DIR_FROM_POD, len);
		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_OK;
		rkey.family = 6;
		copy6(rkey.addr, ip6->daddr.in6_u.u6_addr8);
		fold = ip6->daddr.in6_u.u6_addr32[0] ^ ip6->daddr.in6_u.u6_addr32[1] ^
		       ip6->daddr.in6_u.u6_addr32[2] ^ ip6->daddr.in6_u.u6_addr32[3];
		if (!(ep->route_bloom & bloom6(ip6->daddr.in6_u.u6_addr8))) {
			note_demand(&rkey, fold);
			return TC_ACT_OK;
		}
		proto = ip6->nexthdr;
		tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
		ttl = ip6->hop_limit;
		own_src = (ep->flags & AFSTEER_EP_F_IPV6) && addr_eq6(ip6->saddr.in6_u.u6_addr8, ep->ipv6);
	} else {
		count_endpoint(ep, AFSTEER_FAMILY_OTHER, AFSTEER_DIR_FROM_POD, len);
		return TC_ACT_OK;
	}

	route = bpf_map_lookup_elem(&afsteer_routes, &rkey);
	if (!route) {
		/* No steering for this peer (unknown, same node, or not negotiated yet): the bloom
		 * bit was another route's. */
		note_demand(&rkey, fold);
		return TC_ACT_OK;
	}
	pc = pair_counters(route);

	/* Anti-spoofing: a pod may not hand us ready-made tunnel packets for a steered peer
	 * (also behind IPv6 extension headers). */
	if (fam == AFSTEER_FAMILY_IPV6 && proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMPV6)
		proto = ipv6_upper_proto(skb, ETH_HLEN, proto);
	if (tunnel_proto(proto)) {
		stat_inc(AFSTEER_STAT_DROP_SPOOF);
		if (pc)
			PAIR_ADD(pc, drop_spoof, 1);
		return TC_ACT_SHOT;
	}

	/* A protected pair: both families, one sequence number (only the pod's own address, and
	 * only when the pod has both; anything else is steered as today). */
	if ((route->flags & AFSTEER_ROUTE_F_PROTECT) && own_src &&
	    (ep->flags & (AFSTEER_EP_F_IPV4 | AFSTEER_EP_F_IPV6)) == (AFSTEER_EP_F_IPV4 | AFSTEER_EP_F_IPV6)) {
		rc = protect_send(skb, ep, route, pc, fam, tos, ttl, len);
		if (rc == PROTECT_SENT)
			return TC_ACT_OK;
		if (rc == PROTECT_DROP)
			return TC_ACT_SHOT;
	}

	/* Steered to the other family: wrap it (only the pod's own address, and only when the pod
	 * has an address in the wire family). */
	if (fam == AFSTEER_FAMILY_IPV4 && route->wire == AFSTEER_WIRE_IPV6)
		wire_flag = AFSTEER_EP_F_IPV6;
	else if (fam == AFSTEER_FAMILY_IPV6 && route->wire == AFSTEER_WIRE_IPV4)
		wire_flag = AFSTEER_EP_F_IPV4;
	else
		goto native;
	if (!own_src || !(ep->flags & wire_flag)) {
		stat_inc(AFSTEER_STAT_SRC_FOREIGN);
		goto native;
	}
	rc = wire_flag == AFSTEER_EP_F_IPV6 ? encap_in_ipv6(skb, ep->ipv6, route->remote_ipv6, tos, ttl, IPPROTO_IPIP, 0)
					    : encap_in_ipv4(skb, ep->ipv4, route->remote_ipv4, tos, ttl, IPPROTO_IPV6, 0);
	if (rc) {
		stat_inc(AFSTEER_STAT_ENCAP_FAIL);
		if (pc)
			PAIR_ADD(pc, encap_fail, 1);
		if (rc == -2)
			return TC_ACT_SHOT;
		goto native;
	}
	stat_inc(AFSTEER_STAT_ENCAP);
	if (pc) {
		PAIR_ADD(pc, encap_packets[fam], 1);
		PAIR_ADD(pc, encap_bytes[fam], len);
	}
	pair_seen(route->pair, 0, fam ^ 1);
	return TC_ACT_OK;

native:
	if (pc) {
		PAIR_ADD(pc, native_packets[fam], 1);
		PAIR_ADD(pc, native_bytes[fam], len);
	}
	pair_seen(route->pair, 0, fam);
	return TC_ACT_OK;
}

/* Decapsulation result. DUPLICATE: a protected pair's copy whose sequence number was delivered
 * (or is older than the window). */
enum decap_verdict { PASS = 0, DECAPPED = 1, DROP = 2, DUPLICATE = 3 };

/* No route, so no pair index (tunnel_peer). */
#define AFSTEER_NO_PAIR 0xffffffffU

/* Window verdicts. */
enum dedup_verdict { DEDUP_NEW = 0, DEDUP_DUP = 1, DEDUP_OLD = 2 };

/*
 * The receive window of one protected pair (RFC 6479's ring of words, sequence numbers of 15
 * bits): newer than the newest accepted advances it (clearing the words it passes), within
 * AFSTEER_DEDUP_WINDOW behind is judged by its bit, older is dropped. A window idle for
 * AFSTEER_DEDUP_IDLE_NS starts again. src/bpf/dedup-window.ts is the same algorithm in
 * TypeScript, checked against this one and against a reference model.
 */
static __always_inline int dedup_window(struct afsteer_protect *p, __u32 seq, __u64 now)
{
	__u32 top, fwd, back, wd, i, w;
	__u64 bit = 1ULL << (seq & 63);
	int v = DEDUP_NEW;

	bpf_spin_lock(&p->lock);
	top = p->rx_top;
	/* `now` was read before the lock: another CPU may have stored a later time meanwhile. Such a
	 * copy is not idle — unsigned, now - rx_last_ns would wrap and restart a live window, and the
	 * second copies of the packets just accepted would be delivered again. */
	if (!p->rx_valid || (now > p->rx_last_ns && now - p->rx_last_ns > AFSTEER_DEDUP_IDLE_NS)) {
#pragma unroll
		for (i = 0; i < AFSTEER_DEDUP_WORDS; i++)
			p->rx_bits[i] = 0;
		p->rx_valid = 1;
		p->rx_top = seq;
		p->rx_bits[(seq >> 6) & (AFSTEER_DEDUP_WORDS - 1)] = bit;
		goto out;
	}
	fwd = (seq - top) & AFSTEER_SEQ_MASK;
	if (fwd == 0) {
		v = DEDUP_DUP;
	} else if (fwd <= AFSTEER_SEQ_MASK / 2) {
		/* Newer: clear the words between the old newest and this one (all when it jumped past
		 * the ring). 512 words span the sequence space. */
		wd = ((seq >> 6) - (top >> 6)) & ((AFSTEER_SEQ_MASK + 1) / 64 - 1);
#pragma unroll
		for (i = 1; i <= AFSTEER_DEDUP_WORDS; i++)
			if (i <= wd)
				p->rx_bits[((top >> 6) + i) & (AFSTEER_DEDUP_WORDS - 1)] = 0;
		p->rx_top = seq;
		p->rx_bits[(seq >> 6) & (AFSTEER_DEDUP_WORDS - 1)] |= bit;
	} else {
		back = (top - seq) & AFSTEER_SEQ_MASK;
		w = (seq >> 6) & (AFSTEER_DEDUP_WORDS - 1);
		if (back >= AFSTEER_DEDUP_WINDOW)
			v = DEDUP_OLD;
		else if (p->rx_bits[w] & bit)
			v = DEDUP_DUP;
		else
			p->rx_bits[w] |= bit;
	}
out:
	if (v == DEDUP_NEW)
		p->rx_first += 1;
	else if (v == DEDUP_DUP)
		p->rx_dup += 1;
	else
		p->rx_old += 1;
	if (v != DEDUP_OLD && now > p->rx_last_ns)
		p->rx_last_ns = now;
	bpf_spin_unlock(&p->lock);
	return v;
}

/*
 * Whether a verified tunnel packet of pair (index from tunnel_peer) with outer mark (the IPv4
 * identification / low flow label bits) is delivered: unmarked ones always (today's steering);
 * marked ones once per sequence number. Called only after the address checks, so a copy with a
 * forged number from another source never reaches a pair's window. No window (pair unknown or
 * not protected here) ⇒ delivered.
 */
static __always_inline int dedup_admit(__u32 pair, __u16 mark)
{
	struct afsteer_protect *p;
	int v;

	if (!(mark & AFSTEER_SEQ_MARK))
		return 1;
	p = pair == AFSTEER_NO_PAIR ? 0 : bpf_map_lookup_elem(&afsteer_protect, &pair);
	if (!p) {
		pstat_add(AFSTEER_PSTAT_RX_NOSTATE, 1);
		return 1;
	}
	v = dedup_window(p, mark & AFSTEER_SEQ_MASK, bpf_ktime_get_ns());
	pstat_add(v == DEDUP_NEW ? AFSTEER_PSTAT_RX_FIRST : v == DEDUP_DUP ? AFSTEER_PSTAT_RX_DUP : AFSTEER_PSTAT_RX_OLD, 1);
	return v == DEDUP_NEW;
}

/*
 * The tunnel peer for (local pod, outer source address): its route when the pair is steered
 * (with its counters), else the registered remote — a pair that was just switched back to
 * native may still have packets in flight, and they must be delivered.
 */
static __always_inline const __u8 *tunnel_peer(const struct afsteer_endpoint *ep, __u32 ifindex, __u8 family,
						 const void *outer_src, __u8 want_family,
						 struct afsteer_pair_counters **pc, __u32 *pair)
{
	struct afsteer_addr_key akey = { .family = family };
	struct afsteer_remote *remote;

	*pc = 0;
	*pair = AFSTEER_NO_PAIR;
	if (ep->route_bloom & (family == 4 ? bloom4(*(const __be32 *)outer_src) : bloom6(outer_src))) {
		struct afsteer_route_key rkey = { .ifindex = ifindex, .family = family };
		struct afsteer_route *route;

		if (family == 4)
			*(__be32 *)rkey.addr = *(const __be32 *)outer_src;
		else
			copy6(rkey.addr, outer_src);
		route = bpf_map_lookup_elem(&afsteer_routes, &rkey);
		if (route) {
			*pc = pair_counters(route);
			*pair = route->pair;
			return want_family == 4 ? route->remote_ipv4 : route->remote_ipv6;
		}
	}
	if (family == 4)
		*(__be32 *)akey.addr = *(const __be32 *)outer_src;
	else
		copy6(akey.addr, outer_src);
	remote = bpf_map_lookup_elem(&afsteer_remotes, &akey);
	if (!remote || !(remote->flags & (want_family == 4 ? AFSTEER_EP_F_IPV4 : AFSTEER_EP_F_IPV6)))
		return 0;
	return want_family == 4 ? remote->ipv4 : remote->ipv6;
}

/* Strips the outer header (hlen bytes) of a verified tunnel packet and counts the result. */
static __always_inline int strip_outer(struct __sk_buff *skb, __u32 hlen, __u64 decap_flag, __u16 inner_proto,
				       __u8 inner_family, struct afsteer_pair_counters *pc)
{
	__be16 proto = bpf_htons(inner_proto);
	__u32 len;

	if (bpf_skb_adjust_room(skb, -(__s32)hlen, BPF_ADJ_ROOM_MAC, decap_flag | BPF_F_ADJ_ROOM_FIXED_GSO))
		goto fail;
	/* The outer header is gone: from here on the packet is only deliverable with this type. */
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0)) {
		stat_inc(AFSTEER_STAT_DECAP_FAIL);
		if (pc)
			PAIR_ADD(pc, decap_fail, 1);
		return DROP;
	}
	len = skb->len;
	stat_inc(AFSTEER_STAT_DECAP);
	if (pc) {
		PAIR_ADD(pc, decap_packets[inner_family & 1], 1);
		PAIR_ADD(pc, decap_bytes[inner_family & 1], len);
	}
	return DECAPPED;
fail:
	stat_inc(AFSTEER_STAT_DECAP_FAIL);
	if (pc)
		PAIR_ADD(pc, decap_fail, 1);
	return PASS;
}

/* A verdict of strip_outer, after noting that the pair's packet arrived over wire when it was decapsulated. */
static __always_inline int seen_if_decapped(int v, __u32 pair, __u8 wire)
{
	if (v == DECAPPED && pair != AFSTEER_NO_PAIR)
		pair_seen(pair, 1, wire);
	return v;
}

/*
 * A protected pair's IPv6 copy of an IPv6 packet (outer next header 41, marked flow label; the
 * caller checked the outer destination is this pod): the inner destination must be this pod and
 * the inner source the remote pod the outer source belongs to — else it is dropped as a mismatch,
 * before its sequence number is looked at. An unmarked IPv6-in-IPv6 packet is not afsteer's and
 * passes untouched, as before.
 */
static __always_inline int decap_6in6(struct __sk_buff *skb, struct afsteer_endpoint *ep, __u32 ifindex, __u16 mark)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *outer = data + ETH_HLEN;
	struct ipv6hdr *inner = (void *)(outer + 1);
	struct afsteer_pair_counters *pc;
	const __u8 *peer6;
	__u8 src[16];
	__u32 pair;

	if ((void *)(inner + 1) > data_end)
		return PASS;
	if (!addr_eq6(inner->daddr.in6_u.u6_addr8, ep->ipv6))
		return PASS;
	copy6(src, outer->saddr.in6_u.u6_addr8);
	peer6 = tunnel_peer(ep, ifindex, 6, src, 6, &pc, &pair);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	inner = data + ETH_HLEN + sizeof(struct ipv6hdr);
	if ((void *)(inner + 1) > data_end)
		return PASS;
	if (!peer6 || inner->version != 6 || !addr_eq6(inner->saddr.in6_u.u6_addr8, peer6)) {
		stat_inc(AFSTEER_STAT_DROP_MISMATCH);
		if (pc)
			PAIR_ADD(pc, drop_mismatch, 1);
		return DROP;
	}
	if (!dedup_admit(pair, mark))
		return DUPLICATE;
	return seen_if_decapped(strip_outer(skb, sizeof(struct ipv6hdr), BPF_F_ADJ_ROOM_DECAP_L3_IPV6, ETH_P_IPV6, AFSTEER_FAMILY_IPV6, pc), pair, AFSTEER_FAMILY_IPV6);
}

/*
 * A protected pair's IPv4 copy of an IPv4 packet (outer protocol 4, marked identification; the
 * caller checked neither): the same checks as decap_6in6, and an outer fragment passes untouched
 * (decap_fail), as for protocol 41.
 */
static __always_inline int decap_4in4(struct __sk_buff *skb, struct afsteer_endpoint *ep, __u32 ifindex, __u16 mark)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *outer = data + ETH_HLEN;
	struct iphdr *inner;
	struct afsteer_pair_counters *pc;
	const __u8 *peer4;
	__be32 src;
	__u32 hlen, pair;

	if ((void *)(outer + 1) > data_end)
		return PASS;
	if (!(ep->flags & AFSTEER_EP_F_IPV4) || outer->daddr != *(__be32 *)ep->ipv4)
		return PASS;
	src = outer->saddr;
	if (outer->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		peer4 = tunnel_peer(ep, ifindex, 4, &src, 4, &pc, &pair);
		stat_inc(AFSTEER_STAT_DECAP_FAIL);
		if (pc)
			PAIR_ADD(pc, decap_fail, 1);
		return PASS;
	}
	hlen = outer->ihl * 4;
	if (hlen < sizeof(*outer) || hlen > 60)
		return PASS;
	inner = (void *)outer + hlen;
	if ((void *)(inner + 1) > data_end)
		return PASS;
	if (inner->daddr != *(__be32 *)ep->ipv4)
		return PASS;
	peer4 = tunnel_peer(ep, ifindex, 4, &src, 4, &pc, &pair);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	inner = data + ETH_HLEN + hlen;
	if ((void *)(inner + 1) > data_end)
		return PASS;
	if (!peer4 || inner->version != 4 || inner->saddr != *(const __be32 *)peer4) {
		stat_inc(AFSTEER_STAT_DROP_MISMATCH);
		if (pc)
			PAIR_ADD(pc, drop_mismatch, 1);
		return DROP;
	}
	if (!dedup_admit(pair, mark))
		return DUPLICATE;
	return seen_if_decapped(strip_outer(skb, hlen, BPF_F_ADJ_ROOM_DECAP_L3_IPV4, ETH_P_IP, AFSTEER_FAMILY_IPV4, pc), pair, AFSTEER_FAMILY_IPV4);
}

/* Outer IPv6 (next header 4) to this pod: check and strip it. */
static __always_inline int decap_from_ipv6(struct __sk_buff *skb, struct afsteer_endpoint *ep, __u32 ifindex)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *outer = data + ETH_HLEN;
	struct iphdr *inner = (void *)(outer + 1);
	struct afsteer_pair_counters *pc;
	const __u8 *peer4;
	__u8 src[16];
	__u32 pair;
	__u16 mark;

	if ((void *)(outer + 1) > data_end)
		return PASS;
	if (!(ep->flags & AFSTEER_EP_F_IPV6) || !addr_eq6(outer->daddr.in6_u.u6_addr8, ep->ipv6))
		return PASS;
	mark = ((__u16)outer->flow_lbl[1] << 8) | outer->flow_lbl[2];
	if (outer->nexthdr != IPPROTO_IPIP) {
		__u8 nh = outer->nexthdr;

		if (nh == IPPROTO_IPV6 && (mark & AFSTEER_SEQ_MARK))
			return decap_6in6(skb, ep, ifindex, mark);
		if (nh == IPPROTO_TCP || nh == IPPROTO_UDP || nh == IPPROTO_ICMPV6 || nh == IPPROTO_IPV6)
			return PASS;
		/* afsteer never sends extension headers before the tunnelled packet: an IPv4
		 * packet hidden behind them, addressed to this pod, is not ours to deliver. */
		if (ipv6_upper_proto(skb, ETH_HLEN, nh) == IPPROTO_IPIP) {
			stat_inc(AFSTEER_STAT_DROP_MISMATCH);
			return DROP;
		}
		return PASS;
	}
	if ((void *)(inner + 1) > data_end)
		return PASS;
	/* Only a packet that claims this pod as its inner destination is ours to judge. */
	if (!(ep->flags & AFSTEER_EP_F_IPV4) || inner->daddr != *(__be32 *)ep->ipv4)
		return PASS;
	copy6(src, outer->saddr.in6_u.u6_addr8);
	peer4 = tunnel_peer(ep, ifindex, 6, src, 4, &pc, &pair);
	/* tunnel_peer looked up maps: re-derive packet pointers before reading the packet again. */
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	inner = data + ETH_HLEN + sizeof(struct ipv6hdr);
	if ((void *)(inner + 1) > data_end)
		return PASS;
	if (!peer4 || inner->version != 4 || inner->saddr != *(const __be32 *)peer4) {
		stat_inc(AFSTEER_STAT_DROP_MISMATCH);
		if (pc)
			PAIR_ADD(pc, drop_mismatch, 1);
		return DROP;
	}
	if (!dedup_admit(pair, mark))
		return DUPLICATE;
	return seen_if_decapped(strip_outer(skb, sizeof(struct ipv6hdr), BPF_F_ADJ_ROOM_DECAP_L3_IPV4, ETH_P_IP, AFSTEER_FAMILY_IPV4, pc), pair, AFSTEER_FAMILY_IPV6);
}

/* Outer IPv4 (protocol 41) to this pod: check and strip it. */
static __always_inline int decap_from_ipv4(struct __sk_buff *skb, struct afsteer_endpoint *ep, __u32 ifindex)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *outer = data + ETH_HLEN;
	struct ipv6hdr *inner;
	struct afsteer_pair_counters *pc;
	const __u8 *peer6;
	__be32 src;
	__u32 hlen, pair;
	__u16 mark;

	if ((void *)(outer + 1) > data_end)
		return PASS;
	mark = bpf_ntohs(outer->id);
	if (outer->protocol == IPPROTO_IPIP && (mark & AFSTEER_SEQ_MARK))
		return decap_4in4(skb, ep, ifindex, mark);
	if (outer->protocol != IPPROTO_IPV6 || !(ep->flags & AFSTEER_EP_F_IPV4) ||
	    outer->daddr != *(__be32 *)ep->ipv4)
		return PASS;
	src = outer->saddr;
	/* An outer fragment cannot be stripped (and a non-first one has no inner header to
	 * read): let it through untouched (the pod drops it). afsteer sends with DF. */
	if (outer->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		peer6 = tunnel_peer(ep, ifindex, 4, &src, 6, &pc, &pair);
		stat_inc(AFSTEER_STAT_DECAP_FAIL);
		if (pc)
			PAIR_ADD(pc, decap_fail, 1);
		return PASS;
	}
	hlen = outer->ihl * 4;
	if (hlen < sizeof(*outer) || hlen > 60)
		return PASS;
	inner = (void *)outer + hlen;
	if ((void *)(inner + 1) > data_end)
		return PASS;
	if (!(ep->flags & AFSTEER_EP_F_IPV6) || !addr_eq6(inner->daddr.in6_u.u6_addr8, ep->ipv6))
		return PASS;
	peer6 = tunnel_peer(ep, ifindex, 4, &src, 6, &pc, &pair);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	inner = data + ETH_HLEN + hlen;
	if ((void *)(inner + 1) > data_end)
		return PASS;
	if (!peer6 || inner->version != 6 || !addr_eq6(inner->saddr.in6_u.u6_addr8, peer6)) {
		stat_inc(AFSTEER_STAT_DROP_MISMATCH);
		if (pc)
			PAIR_ADD(pc, drop_mismatch, 1);
		return DROP;
	}
	if (!dedup_admit(pair, mark))
		return DUPLICATE;
	return seen_if_decapped(strip_outer(skb, hlen, BPF_F_ADJ_ROOM_DECAP_L3_IPV6, ETH_P_IPV6, AFSTEER_FAMILY_IPV6, pc), pair, AFSTEER_FAMILY_IPV4);
}

/* Family of the frame now in skb, for the delivered-traffic counters. */
static __always_inline __u8 frame_family(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return AFSTEER_FAMILY_OTHER;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return AFSTEER_FAMILY_IPV4;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return AFSTEER_FAMILY_IPV6;
	return AFSTEER_FAMILY_OTHER;
}

/*
 * A packet for the pod that was not a tunnel packet: when it comes from the remote pod of one of
 * the pod's pairs (a route keyed by its source address), note that the pair's packet arrived over
 * its own family. A pod without routes, or a source not in its route bloom, costs one read and one
 * test; nothing is written to the packet.
 */
static __always_inline void note_native_arrival(struct __sk_buff *skb, const struct afsteer_endpoint *ep, __u32 ifindex, __u8 fam)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct afsteer_route_key rkey = { .ifindex = ifindex };
	struct afsteer_route *route;

	if (!ep->route_bloom)
		return;
	if (fam == AFSTEER_FAMILY_IPV4) {
		struct iphdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > data_end || !(ep->route_bloom & bloom4(ip->saddr)))
			return;
		rkey.family = 4;
		*(__be32 *)rkey.addr = ip->saddr;
	} else if (fam == AFSTEER_FAMILY_IPV6) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end || !(ep->route_bloom & bloom6(ip6->saddr.in6_u.u6_addr8)))
			return;
		rkey.family = 6;
		copy6(rkey.addr, ip6->saddr.in6_u.u6_addr8);
	} else {
		return;
	}
	route = bpf_map_lookup_elem(&afsteer_routes, &rkey);
	if (route)
		pair_seen(route->pair, 1, fam);
}

/* The to-pod program's logic. */
static __always_inline int to_pod(struct __sk_buff *skb)
{
	__u32 ifindex = endpoint_key(skb);
	struct afsteer_endpoint *ep = lookup_endpoint(ifindex);
	__u8 fam;
	int v = PASS;

	if (!ep)
		return TC_ACT_OK;
	fam = frame_family(skb);
	if (fam == AFSTEER_FAMILY_IPV6)
		v = decap_from_ipv6(skb, ep, ifindex);
	else if (fam == AFSTEER_FAMILY_IPV4)
		v = decap_from_ipv4(skb, ep, ifindex);
	if (v == DROP || v == DUPLICATE)
		return TC_ACT_SHOT;
	if (v == DECAPPED)
		fam = frame_family(skb);
	else
		note_native_arrival(skb, ep, ifindex, fam);
	count_endpoint(ep, fam, AFSTEER_DIR_TO_POD, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int afsteer_from_pod(struct __sk_buff *skb)
{
	return from_pod(skb);
}

SEC("tc")
int afsteer_to_pod(struct __sk_buff *skb)
{
	return to_pod(skb);
}

/*
 * afsteer_bridge_out (clsact egress of the bridge the pods' veths are enslaved to): a tunnelled
 * packet (IPv6 next header 4 / IPv4 protocol 41) addressed to a local pod is redirected straight
 * to that pod's host veth, where afsteer_to_pod decapsulates it. Without this the bridge device —
 * which has no tunnel GSO offload — would segment every tunnelled GSO packet in software before
 * it reaches the veth. Everything else passes to normal bridge forwarding.
 */
SEC("tc")
int afsteer_bridge_out(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct afsteer_addr_key key = {};
	struct afsteer_local_addr *local;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_OK;
		if (ip6->nexthdr != IPPROTO_IPIP && !(ip6->nexthdr == IPPROTO_IPV6 && (ip6->flow_lbl[1] & (AFSTEER_SEQ_MARK >> 8))))
			return TC_ACT_OK;
		key.family = 6;
		copy6(key.addr, ip6->daddr.in6_u.u6_addr8);
	} else if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return TC_ACT_OK;
		if (ip->protocol != IPPROTO_IPV6 && !(ip->protocol == IPPROTO_IPIP && (ip->id & bpf_htons(AFSTEER_SEQ_MARK))))
			return TC_ACT_OK;
		key.family = 4;
		*(__be32 *)key.addr = ip->daddr;
	} else {
		return TC_ACT_OK;
	}
	local = bpf_map_lookup_elem(&afsteer_local_addrs, &key);
	/* A pod whose programs run in its own namespace is not behind this bridge's veths. */
	if (!local || (local->ifindex & AFSTEER_EP_KEY_POD))
		return TC_ACT_OK;
	return bpf_redirect(local->ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
