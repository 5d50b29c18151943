// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * Baselines for `npm run bench` (not shipped):
 *   afsteer_bench_empty        a tc program that does nothing;
 *   afsteer_bench_encap_floor  the kernel's part of an encapsulation alone: the same
 *                              bpf_skb_adjust_room call and outer IPv6 header afsteer writes
 *                              (with bpf_skb_store_bytes, as afsteer does), fixed addresses, no
 *                              lookups, parsing or counting;
 *   afsteer_bench_decap_floor  the same for a decapsulation: strip the outer header (IPv6: 40
 *                              bytes, DECAP_L3_IPV4; IPv4: 20 bytes, DECAP_L3_IPV6) and write the
 *                              Ethernet type, as afsteer does; no checks.
 */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

SEC("tc")
int afsteer_bench_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tc")
int afsteer_bench_encap_floor(struct __sk_buff *skb)
{
	struct {
		__be16 h_proto;
		struct ipv6hdr ip6;
	} __attribute__((packed)) o = {
		.h_proto = bpf_htons(ETH_P_IPV6),
		.ip6 = {
			.version = 6,
			.payload_len = bpf_htons((__u16)(skb->len - ETH_HLEN)),
			.nexthdr = IPPROTO_IPIP,
			.hop_limit = 64,
		},
	};

	__builtin_memset(&o.ip6.saddr, 0xfd, 16);
	__builtin_memset(&o.ip6.daddr, 0xfd, 16);
	if (bpf_skb_adjust_room(skb, sizeof(struct ipv6hdr), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return TC_ACT_SHOT;
	/* Written the way afsteer writes it (no direct packet writes, see afsteer.bpf.c). */
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &o, sizeof(o), 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("tc")
int afsteer_bench_decap_floor(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__be16 proto;
	int v6;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_SHOT;
	v6 = eth->h_proto == bpf_htons(ETH_P_IPV6);
	proto = v6 ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	if (bpf_skb_adjust_room(skb, v6 ? -40 : -20, BPF_ADJ_ROOM_MAC,
				(v6 ? BPF_F_ADJ_ROOM_DECAP_L3_IPV4 : BPF_F_ADJ_ROOM_DECAP_L3_IPV6) | BPF_F_ADJ_ROOM_FIXED_GSO))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
