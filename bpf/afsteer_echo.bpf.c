// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * afsteer_echo_reflect: afsteerd's probe reflector in the kernel, on the clsact ingress of the
 * interfaces that hold the node's control addresses (BFD echo, RFC 5880 §6.4, in spirit: the
 * peer's probe is looped back by this node's forwarding path, no process touches it).
 *
 * A UDP datagram to the echo port (afsteerd's port + 1, in afsteer_echo_cfg) whose payload starts
 * with the echo magic 'A' 'E' version 1 and whose source port is not the echo port (so two
 * reflectors never bounce one packet between them) is sent back where it came from: Ethernet
 * addresses, IP addresses and UDP ports swapped, out of the interface it arrived on. Swapping
 * leaves the IPv4 header checksum and the UDP checksum valid (ones'-complement sums do not depend
 * on order), so nothing is recomputed. The payload is not read beyond the magic: the prober
 * authenticates its own echo (its per-path nonce and probe id), as with afsteerd's userspace
 * reflector. Anything else, or missing config, passes untouched.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "include/afsteer_echo.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct afsteer_echo_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_echo_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct afsteer_echo_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_echo_stats SEC(".maps");

/* Headers plus the magic must be in the linear part; pulled in when they are not. */
#define ECHO_NEED_V6 (sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + sizeof(struct udphdr) + AFSTEER_ECHO_MAGIC_LEN)

static __always_inline int reflect_udp(struct __sk_buff *skb, struct ethhdr *eth, struct udphdr *udp, void *end, __u16 port)
{
	__u8 *magic = (void *)(udp + 1);
	if ((void *)(magic + AFSTEER_ECHO_MAGIC_LEN) > end)
		return TC_ACT_OK;
	if (udp->dest != port || udp->source == port)
		return TC_ACT_OK;
	if (magic[0] != 'A' || magic[1] != 'E' || magic[2] != AFSTEER_ECHO_VERSION)
		return TC_ACT_OK;
	__u8 mac[ETH_ALEN];
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	udp->dest = udp->source;
	udp->source = port;
	__u32 k = 0;
	struct afsteer_echo_stats *st = bpf_map_lookup_elem(&afsteer_echo_stats, &k);
	if (st)
		st->reflected++;
	return bpf_redirect(skb->ifindex, 0);
}

SEC("tc")
int afsteer_echo_reflect(struct __sk_buff *skb)
{
	__u32 k = 0;
	struct afsteer_echo_cfg *cfg = bpf_map_lookup_elem(&afsteer_echo_cfg, &k);
	if (!cfg || !cfg->port_be)
		return TC_ACT_OK;
	__u16 port = cfg->port_be;
	if (skb->protocol != bpf_htons(ETH_P_IP) && skb->protocol != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	if (data + ECHO_NEED_V6 > end) {
		/* Short datagrams (an IPv4 echo is smaller than this bound) fail the pull harmlessly. */
		bpf_skb_pull_data(skb, ECHO_NEED_V6);
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
	}
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return TC_ACT_OK;
		/* No options, no fragments: an echo is one small datagram. */
		if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x3fff)))
			return TC_ACT_OK;
		struct udphdr *udp = (void *)(ip + 1);
		if ((void *)(udp + 1) > end)
			return TC_ACT_OK;
		__be32 a = ip->saddr;
		int rc = reflect_udp(skb, eth, udp, end, port);
		if (rc != TC_ACT_OK) {
			ip->saddr = ip->daddr;
			ip->daddr = a;
		}
		return rc;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return TC_ACT_OK;
		/* No extension headers. */
		if (ip6->nexthdr != IPPROTO_UDP)
			return TC_ACT_OK;
		struct udphdr *udp = (void *)(ip6 + 1);
		if ((void *)(udp + 1) > end)
			return TC_ACT_OK;
		struct in6_addr a = ip6->saddr;
		int rc = reflect_udp(skb, eth, udp, end, port);
		if (rc != TC_ACT_OK) {
			ip6->saddr = ip6->daddr;
			ip6->daddr = a;
		}
		return rc;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
