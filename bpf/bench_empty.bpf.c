// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/* The baseline for `npm run bench`: a tc program that does nothing (not shipped). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int afsteer_bench_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
