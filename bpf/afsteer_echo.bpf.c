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
 *
 * It answers known peers only: the source must be in afsteer_echo_peers (the authenticated
 * peers' control addresses, kept by afsteerd), within its token bucket (afsteer_echo_rate, well
 * above the probing rate), the payload exactly one echo (so a reply is never larger than its
 * request: it is the request). A refused echo is dropped — it was addressed to this node's echo
 * port, which no one else serves — and counted by reason in afsteer_echo_refused. A known peer's
 * address spoofed by someone on its path is not told apart (out of scope: such an attacker can
 * answer the probes itself).
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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AFSTEER_ECHO_PEERS_MAX);
	__type(key, struct afsteer_echo_src);
	__type(value, struct afsteer_echo_peer);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_echo_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, AFSTEER_ECHO_RATE_MAX);
	__type(key, struct afsteer_echo_src);
	__type(value, struct afsteer_echo_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_echo_rate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct afsteer_echo_refused);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} afsteer_echo_refused SEC(".maps");

#define NS_PER_ECHO 1000000000ULL
/* A bucket idle longer than this is full again (bounds elapsed × rate far below 2^64). */
#define REFILL_CAP_NS (10ULL * NS_PER_ECHO)

static __always_inline int refuse(enum afsteer_echo_refusal why)
{
	__u32 k = 0;
	struct afsteer_echo_refused *r = bpf_map_lookup_elem(&afsteer_echo_refused, &k);
	if (r && why < AFSTEER_ECHO_REFUSED_MAX)
		r->count[why]++;
	return TC_ACT_SHOT;
}

/* True when the source may have one more echo now (takes a token); a new source starts with a full bucket. */
static __always_inline int within_rate(const struct afsteer_echo_src *src, const struct afsteer_echo_cfg *cfg)
{
	if (!cfg->rate_per_sec || !cfg->burst)
		return 1;
	__u64 now = bpf_ktime_get_ns();
	__u64 cap = (__u64)cfg->burst * NS_PER_ECHO;
	struct afsteer_echo_bucket *b = bpf_map_lookup_elem(&afsteer_echo_rate, src);
	if (!b) {
		struct afsteer_echo_bucket fresh = { .last_ns = now, .tokens = cap - NS_PER_ECHO };
		bpf_map_update_elem(&afsteer_echo_rate, src, &fresh, BPF_ANY);
		return 1;
	}
	/* Per-CPU races may lose a refill or a take: a few echoes more or less, never a fault. */
	__u64 elapsed = now - b->last_ns;
	if (now < b->last_ns)
		elapsed = 0;
	if (elapsed > REFILL_CAP_NS)
		elapsed = REFILL_CAP_NS;
	__u64 tokens = b->tokens + elapsed * cfg->rate_per_sec;
	if (tokens > cap)
		tokens = cap;
	b->last_ns = now;
	if (tokens < NS_PER_ECHO) {
		b->tokens = tokens;
		return 0;
	}
	b->tokens = tokens - NS_PER_ECHO;
	return 1;
}

/* Headers plus the magic must be in the linear part; pulled in when they are not. */
#define ECHO_NEED_V6 (sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + sizeof(struct udphdr) + AFSTEER_ECHO_MAGIC_LEN)

/*
 * An echo to the echo port from src: refused (dropped, counted) unless src is a known peer within
 * its rate and the payload is exactly one echo; sent back otherwise. TC_ACT_OK: not an echo.
 */
static __always_inline int reflect_udp(struct __sk_buff *skb, struct ethhdr *eth, struct udphdr *udp, void *end,
				       const struct afsteer_echo_cfg *cfg, const struct afsteer_echo_src *src)
{
	__u16 port = cfg->port_be;
	__u8 *magic = (void *)(udp + 1);
	if ((void *)(magic + AFSTEER_ECHO_MAGIC_LEN) > end)
		return TC_ACT_OK;
	if (udp->dest != port)
		return TC_ACT_OK;
	if (magic[0] != 'A' || magic[1] != 'E' || magic[2] != AFSTEER_ECHO_VERSION)
		return TC_ACT_OK;
	if (udp->source == port)
		return refuse(AFSTEER_ECHO_REFUSED_LOOP);
	if (udp->len != bpf_htons(sizeof(struct udphdr) + AFSTEER_ECHO_LEN))
		return refuse(AFSTEER_ECHO_REFUSED_SIZE);
	if (!bpf_map_lookup_elem(&afsteer_echo_peers, src))
		return refuse(AFSTEER_ECHO_REFUSED_UNKNOWN_SOURCE);
	if (!within_rate(src, cfg))
		return refuse(AFSTEER_ECHO_REFUSED_RATE);
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
		struct afsteer_echo_src src = { .family = 4 };
		__builtin_memcpy(src.addr, &a, 4);
		int rc = reflect_udp(skb, eth, udp, end, cfg, &src);
		if (rc == TC_ACT_REDIRECT) {
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
		struct afsteer_echo_src src = { .family = 6 };
		__builtin_memcpy(src.addr, &a, 16);
		int rc = reflect_udp(skb, eth, udp, end, cfg, &src);
		if (rc == TC_ACT_REDIRECT) {
			ip6->saddr = ip6->daddr;
			ip6->daddr = a;
		}
		return rc;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
