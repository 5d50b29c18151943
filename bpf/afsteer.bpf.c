// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * afsteer tc programs, attached to the host-side veth of each pod:
 *   afsteer_from_pod  clsact ingress: packets the pod sends. If the pair (this pod, the
 *                     remote pod) is steered to the other family, encapsulate the packet in
 *                     that family between the two pods' own addresses (IPv4-in-IPv6, next
 *                     header 4, or IPv6-in-IPv4, protocol 41). The inner packet is untouched.
 *   afsteer_to_pod    clsact egress: packets delivered to the pod. A tunnelled packet whose
 *                     outer and inner addresses are the same known remote pod and this pod is
 *                     decapsulated; one that claims this pod but does not match is dropped;
 *                     everything else passes untouched.
 * Missing state always means "pass natively".
 */
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
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, AFSTEER_MAX_COUNTER_KEYS);
	__type(key, struct afsteer_counter_key);
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
	__uint(max_entries, AFSTEER_MAX_PAIRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct afsteer_pair_key);
	__type(value, struct afsteer_steering);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_steering SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, AFSTEER_MAX_PAIRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct afsteer_pair_key);
	__type(value, struct afsteer_pair_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_pair_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AFSTEER_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_stats SEC(".maps");

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&afsteer_stats, &which);

	if (v)
		*v += 1;
}

/* Count one packet for a registered endpoint (creating its counter slot on first use). */
static __always_inline void count_endpoint(__u32 ifindex, __u8 family, __u8 direction, __u32 len)
{
	struct afsteer_counter_key key = {
		.ifindex = ifindex,
		.family = family,
		.direction = direction,
	};
	struct afsteer_counters *c = bpf_map_lookup_elem(&afsteer_counters, &key);

	if (!c) {
		struct afsteer_counters init = {};

		/* BPF_NOEXIST: a concurrent creator on another CPU wins; both look up again. */
		bpf_map_update_elem(&afsteer_counters, &key, &init, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&afsteer_counters, &key);
		if (!c)
			return;
	}
	c->packets += 1;
	c->bytes += len;
}

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

/* Wrap the IPv4 packet after the Ethernet header in an outer IPv6 header (next header 4). */
static __always_inline int encap_in_ipv6(struct __sk_buff *skb, const __u8 *src6, const __u8 *dst6, __u8 tos, __u8 ttl)
{
	struct ipv6hdr h = {};
	__be16 proto = bpf_htons(ETH_P_IPV6);
	__u32 inner_len = skb->len - ETH_HLEN;

	if (bpf_skb_adjust_room(skb, sizeof(h), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return -1;
	h.version = 6;
	h.priority = tos >> 4;
	h.flow_lbl[0] = (tos & 0xf) << 4;
	h.payload_len = bpf_htons((__u16)inner_len);
	h.nexthdr = IPPROTO_IPIP;
	h.hop_limit = ttl;
	copy6(h.saddr.in6_u.u6_addr8, src6);
	copy6(h.daddr.in6_u.u6_addr8, dst6);
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, sizeof(h), 0))
		return -1;
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0))
		return -1;
	return 0;
}

/* Wrap the IPv6 packet after the Ethernet header in an outer IPv4 header (protocol 41, DF). */
static __always_inline int encap_in_ipv4(struct __sk_buff *skb, const __u8 *src4, const __u8 *dst4, __u8 tclass, __u8 hop_limit)
{
	struct iphdr h = {};
	__be16 proto = bpf_htons(ETH_P_IP);
	__u32 outer_len = skb->len - ETH_HLEN + sizeof(h);
	__s64 sum;

	if (outer_len > 0xffff)
		return -1;
	if (bpf_skb_adjust_room(skb, sizeof(h), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return -1;
	h.version = 4;
	h.ihl = 5;
	h.tos = tclass;
	h.tot_len = bpf_htons((__u16)outer_len);
	h.frag_off = bpf_htons(IP_DF);
	h.ttl = hop_limit;
	h.protocol = IPPROTO_IPV6;
	h.saddr = *(const __be32 *)src4;
	h.daddr = *(const __be32 *)dst4;
	sum = bpf_csum_diff(0, 0, (__be32 *)&h, sizeof(h), 0);
	if (sum < 0)
		return -1;
	h.check = csum_fold((__u32)sum);
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, sizeof(h), 0))
		return -1;
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0))
		return -1;
	return 0;
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

static __always_inline struct afsteer_pair_counters *pair_counters(struct afsteer_pair_key *k)
{
	return bpf_map_lookup_elem(&afsteer_pair_counters, k);
}

SEC("tc")
int afsteer_from_pod(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 ifindex = skb->ifindex;
	__u32 len = skb->len;
	struct afsteer_endpoint *ep;
	struct afsteer_remote *remote;
	struct afsteer_addr_key rkey = {};
	struct afsteer_pair_key pkey = { .ifindex = ifindex };
	struct afsteer_steering *st;
	struct afsteer_pair_counters *pc;
	__u8 fam, tos, ttl;
	__u32 proto;
	int own_src;

	ep = bpf_map_lookup_elem(&afsteer_endpoints, &ifindex);
	if (!ep)
		return TC_ACT_OK;
	if ((void *)(eth + 1) > data_end) {
		count_endpoint(ifindex, AFSTEER_FAMILY_OTHER, AFSTEER_DIR_FROM_POD, len);
		return TC_ACT_OK;
	}

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		fam = AFSTEER_FAMILY_IPV4;
		count_endpoint(ifindex, fam, AFSTEER_DIR_FROM_POD, len);
		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			return TC_ACT_OK;
		rkey.family = 4;
		*(__be32 *)rkey.addr = ip->daddr;
		proto = ip->protocol;
		tos = ip->tos;
		ttl = ip->ttl;
		own_src = (ep->flags & AFSTEER_EP_F_IPV4) && ip->saddr == *(__be32 *)ep->ipv4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		fam = AFSTEER_FAMILY_IPV6;
		count_endpoint(ifindex, fam, AFSTEER_DIR_FROM_POD, len);
		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_OK;
		rkey.family = 6;
		copy6(rkey.addr, ip6->daddr.in6_u.u6_addr8);
		proto = ip6->nexthdr;
		tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
		ttl = ip6->hop_limit;
		own_src = (ep->flags & AFSTEER_EP_F_IPV6) && addr_eq6(ip6->saddr.in6_u.u6_addr8, ep->ipv6);
		/* Extension headers are followed only for the anti-spoofing check below. */
		if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMPV6)
			proto = ipv6_upper_proto(skb, ETH_HLEN, proto);
	} else {
		count_endpoint(ifindex, AFSTEER_FAMILY_OTHER, AFSTEER_DIR_FROM_POD, len);
		return TC_ACT_OK;
	}

	remote = bpf_map_lookup_elem(&afsteer_remotes, &rkey);
	if (!remote || !(remote->flags & AFSTEER_EP_F_IPV6))
		return TC_ACT_OK; /* unknown peer (or same node): native */
	copy6(pkey.remote_ipv6, remote->ipv6);
	st = bpf_map_lookup_elem(&afsteer_steering, &pkey);
	pc = pair_counters(&pkey);
	if (!st)
		return TC_ACT_OK;

	/* Anti-spoofing: a pod may not hand us ready-made tunnel packets for a steered peer
	 * (also behind IPv6 extension headers). */
	if (tunnel_proto(proto)) {
		stat_inc(AFSTEER_STAT_DROP_SPOOF);
		if (pc)
			pc->drop_spoof += 1;
		return TC_ACT_SHOT;
	}

	if (fam == AFSTEER_FAMILY_IPV4 && st->wire == AFSTEER_WIRE_IPV6) {
		if (!own_src || !(ep->flags & AFSTEER_EP_F_IPV6)) {
			stat_inc(AFSTEER_STAT_SRC_FOREIGN);
			goto native;
		}
		if (encap_in_ipv6(skb, ep->ipv6, remote->ipv6, tos, ttl)) {
			stat_inc(AFSTEER_STAT_ENCAP_FAIL);
			if (pc)
				pc->encap_fail += 1;
			goto native;
		}
	} else if (fam == AFSTEER_FAMILY_IPV6 && st->wire == AFSTEER_WIRE_IPV4) {
		if (!own_src || !(ep->flags & AFSTEER_EP_F_IPV4) || !(remote->flags & AFSTEER_EP_F_IPV4)) {
			stat_inc(AFSTEER_STAT_SRC_FOREIGN);
			goto native;
		}
		if (encap_in_ipv4(skb, ep->ipv4, remote->ipv4, tos, ttl)) {
			stat_inc(AFSTEER_STAT_ENCAP_FAIL);
			if (pc)
				pc->encap_fail += 1;
			goto native;
		}
	} else {
		goto native;
	}
	stat_inc(AFSTEER_STAT_ENCAP);
	if (pc) {
		pc->encap_packets[fam] += 1;
		pc->encap_bytes[fam] += len;
	}
	return TC_ACT_OK;

native:
	if (pc) {
		pc->native_packets[fam] += 1;
		pc->native_bytes[fam] += len;
	}
	return TC_ACT_OK;
}

/* Decapsulation result: the inner family delivered, or a verdict. */
enum decap_verdict { PASS = 0, DECAPPED = 1, DROP = 2 };

/* Outer IPv6 (next header 4) to this pod: check and strip it. */
static __always_inline int decap_from_ipv6(struct __sk_buff *skb, struct afsteer_endpoint *ep, __u32 ifindex)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *outer = data + ETH_HLEN;
	struct iphdr *inner = (void *)(outer + 1);
	struct afsteer_addr_key rkey = { .family = 6 };
	struct afsteer_pair_key pkey = { .ifindex = ifindex };
	struct afsteer_remote *remote;
	struct afsteer_pair_counters *pc;
	__be16 proto = bpf_htons(ETH_P_IP);
	__u32 len;

	if ((void *)(outer + 1) > data_end)
		return PASS;
	if (!(ep->flags & AFSTEER_EP_F_IPV6) || !addr_eq6(outer->daddr.in6_u.u6_addr8, ep->ipv6))
		return PASS;
	if (outer->nexthdr != IPPROTO_IPIP) {
		__u8 nh = outer->nexthdr;

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
	copy6(rkey.addr, outer->saddr.in6_u.u6_addr8);
	copy6(pkey.remote_ipv6, outer->saddr.in6_u.u6_addr8);
	remote = bpf_map_lookup_elem(&afsteer_remotes, &rkey);
	pc = pair_counters(&pkey);
	if (!remote || !(remote->flags & AFSTEER_EP_F_IPV4) || inner->version != 4 ||
	    inner->saddr != *(__be32 *)remote->ipv4) {
		stat_inc(AFSTEER_STAT_DROP_MISMATCH);
		if (pc)
			pc->drop_mismatch += 1;
		return DROP;
	}
	if (bpf_skb_adjust_room(skb, -(__s32)sizeof(struct ipv6hdr), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_DECAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO) ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0)) {
		stat_inc(AFSTEER_STAT_DECAP_FAIL);
		if (pc)
			pc->decap_fail += 1;
		return PASS;
	}
	len = skb->len;
	stat_inc(AFSTEER_STAT_DECAP);
	if (pc) {
		pc->decap_packets[AFSTEER_FAMILY_IPV4] += 1;
		pc->decap_bytes[AFSTEER_FAMILY_IPV4] += len;
	}
	return DECAPPED;
}

/* Outer IPv4 (protocol 41) to this pod: check and strip it. */
static __always_inline int decap_from_ipv4(struct __sk_buff *skb, struct afsteer_endpoint *ep, __u32 ifindex)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *outer = data + ETH_HLEN;
	struct ipv6hdr *inner;
	struct afsteer_addr_key rkey = { .family = 4 };
	struct afsteer_pair_key pkey = { .ifindex = ifindex };
	struct afsteer_remote *remote;
	struct afsteer_pair_counters *pc;
	__be16 proto = bpf_htons(ETH_P_IPV6);
	__u32 hlen, len;

	if ((void *)(outer + 1) > data_end)
		return PASS;
	if (outer->protocol != IPPROTO_IPV6 || !(ep->flags & AFSTEER_EP_F_IPV4) ||
	    outer->daddr != *(__be32 *)ep->ipv4)
		return PASS;
	*(__be32 *)rkey.addr = outer->saddr;
	remote = bpf_map_lookup_elem(&afsteer_remotes, &rkey);
	if (remote)
		copy6(pkey.remote_ipv6, remote->ipv6);
	pc = remote ? pair_counters(&pkey) : 0;
	/* An outer fragment cannot be stripped (and a non-first one has no inner header to
	 * read): let it through untouched (the pod drops it). afsteer sends with DF. */
	if (outer->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
		stat_inc(AFSTEER_STAT_DECAP_FAIL);
		if (pc)
			pc->decap_fail += 1;
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
	if (!remote || !(remote->flags & AFSTEER_EP_F_IPV6) || inner->version != 6 ||
	    !addr_eq6(inner->saddr.in6_u.u6_addr8, remote->ipv6)) {
		stat_inc(AFSTEER_STAT_DROP_MISMATCH);
		if (pc)
			pc->drop_mismatch += 1;
		return DROP;
	}
	if (bpf_skb_adjust_room(skb, -(__s32)hlen, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_DECAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO) ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0)) {
		stat_inc(AFSTEER_STAT_DECAP_FAIL);
		if (pc)
			pc->decap_fail += 1;
		return PASS;
	}
	len = skb->len;
	stat_inc(AFSTEER_STAT_DECAP);
	if (pc) {
		pc->decap_packets[AFSTEER_FAMILY_IPV6] += 1;
		pc->decap_bytes[AFSTEER_FAMILY_IPV6] += len;
	}
	return DECAPPED;
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

SEC("tc")
int afsteer_to_pod(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct afsteer_endpoint *ep = bpf_map_lookup_elem(&afsteer_endpoints, &ifindex);
	__u8 fam;
	int v = PASS;

	if (!ep)
		return TC_ACT_OK;
	fam = frame_family(skb);
	if (fam == AFSTEER_FAMILY_IPV6)
		v = decap_from_ipv6(skb, ep, ifindex);
	else if (fam == AFSTEER_FAMILY_IPV4)
		v = decap_from_ipv4(skb, ep, ifindex);
	if (v == DROP)
		return TC_ACT_SHOT;
	if (v == DECAPPED)
		fam = fam == AFSTEER_FAMILY_IPV6 ? AFSTEER_FAMILY_IPV4 : AFSTEER_FAMILY_IPV6;
	count_endpoint(ifindex, fam, AFSTEER_DIR_TO_POD, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
