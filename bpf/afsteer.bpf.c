// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * afsteer tc programs, attached to the host-side veth of each pod:
 *   afsteer_from_pod  clsact ingress (packets the pod sends)
 *   afsteer_to_pod    clsact egress  (packets delivered to the pod)
 * This stage passes every packet untouched and counts packets and bytes per
 * endpoint, family and direction. Steering (encapsulation) builds on these.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "include/afsteer_maps.h"

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

/* Family of the frame: read the Ethernet type after a bounds check. */
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

/* Count one packet for a registered endpoint; unknown interfaces are not counted. */
static __always_inline void count(struct __sk_buff *skb, __u8 direction)
{
	__u32 ifindex = skb->ifindex;
	struct afsteer_counter_key key = {
		.ifindex = ifindex,
		.family = frame_family(skb),
		.direction = direction,
	};
	struct afsteer_counters *c;

	if (!bpf_map_lookup_elem(&afsteer_endpoints, &ifindex))
		return;
	c = bpf_map_lookup_elem(&afsteer_counters, &key);
	if (!c) {
		struct afsteer_counters init = {};

		/* BPF_NOEXIST: a concurrent creator on another CPU wins; both retry the lookup. */
		bpf_map_update_elem(&afsteer_counters, &key, &init, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&afsteer_counters, &key);
		if (!c)
			return;
	}
	c->packets += 1;
	c->bytes += skb->len;
}

SEC("tc")
int afsteer_from_pod(struct __sk_buff *skb)
{
	count(skb, AFSTEER_DIR_FROM_POD);
	return TC_ACT_OK;
}

SEC("tc")
int afsteer_to_pod(struct __sk_buff *skb)
{
	count(skb, AFSTEER_DIR_TO_POD);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
