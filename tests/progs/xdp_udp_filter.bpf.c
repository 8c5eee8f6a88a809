// The end-to-end tests' and the demo's filter: IPv4 UDP to the ports in `blocked_ports` (port 9,
// discard, unless the control plane changes it) is dropped and counted per port; everything
// else, ARP and ICMP and TCP included, goes to the kernel (XDP_PASS).
// Exercises: a real deployment's shape: a HASH the control plane edits, PERCPU counters.
#include "xdp_common.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u16);    // UDP destination port, host order
    __type(value, __u8);   // 1: drop
} blocked_ports SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);  // [0] passed, [1] dropped
} filter_stats SEC(".maps");

const volatile __u16 default_blocked = 9;

SEC("xdp") int xdp_udp_filter(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
    __u32 verdict = 0;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) goto out;
    if (eth->h_proto != bpf_htons(ETH_P_IP)) goto out;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || ip->ihl < 5 || ip->protocol != IPPROTO_UDP) goto out;
    struct udphdr *udp = (void *)ip + ip->ihl * 4;
    if ((void *)(udp + 1) > data_end) goto out;
    __u16 port = bpf_ntohs(udp->dest);
    if (port == default_blocked || bpf_map_lookup_elem(&blocked_ports, &port)) verdict = 1;
out:;
    __u64 *n = bpf_map_lookup_elem(&filter_stats, &verdict);
    if (n) *n += 1;
    return verdict ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
