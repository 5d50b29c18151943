// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * Baselines for `npm run bench` (not shipped):
 *   afsteer_bench_empty        a tc program that does nothing;
 *   afsteer_bench_encap_floor  the kernel's part of an encapsulation alone: the same
 *                              bpf_skb_adjust_room call and outer IPv6 header afsteer writes,
 *                              with fixed addresses and no lookups, parsing or counting;
 *   afsteer_bench_decap_floor  the same for a decapsulation: strip the outer header (IPv6: 40
 *                              bytes, DECAP_L3_IPV4; IPv4: 20 bytes, DECAP_L3_IPV6), no checks.
 */
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
	__u32 inner_len = skb->len - ETH_HLEN;
	void *data, *data_end;
	struct ethhdr *eth;
	struct ipv6hdr *h;

	if (bpf_skb_adjust_room(skb, sizeof(*h), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return TC_ACT_SHOT;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	h = (void *)(eth + 1);
	if ((void *)(h + 1) > data_end)
		return TC_ACT_SHOT;
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	*(__be32 *)h = bpf_htonl(6U << 28);
	h->payload_len = bpf_htons((__u16)inner_len);
	h->nexthdr = IPPROTO_IPIP;
	h->hop_limit = 64;
	__builtin_memset(&h->saddr, 0xfd, 16);
	__builtin_memset(&h->daddr, 0xfd, 16);
	return TC_ACT_OK;
}

SEC("tc")
int afsteer_bench_decap_floor(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	int v6;

	if ((void *)(eth + 1) > data_end)
		return TC_ACT_SHOT;
	v6 = eth->h_proto == bpf_htons(ETH_P_IPV6);
	if (bpf_skb_adjust_room(skb, v6 ? -40 : -20, BPF_ADJ_ROOM_MAC,
				(v6 ? BPF_F_ADJ_ROOM_DECAP_L3_IPV4 : BPF_F_ADJ_ROOM_DECAP_L3_IPV6) | BPF_F_ADJ_ROOM_FIXED_GSO))
		return TC_ACT_SHOT;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_SHOT;
	eth->h_proto = v6 ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
