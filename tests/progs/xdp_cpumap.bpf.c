// bpf_redirect_map over a CPUMAP: TCP frames go to CPU slot 0, UDP to slot 1, with XDP_PASS as the
// fallback when the slot is empty; other frames are passed. The setup gives slot 0 a queue of 64
// frames (struct bpf_cpumap_val without a program) and leaves slot 1 empty, so under
// BPF_PROG_TEST_RUN TCP returns XDP_REDIRECT and UDP XDP_PASS.
// Exercises: CPUMAP, redirect_map (hit, miss).
#include "xdp_common.bpf.h"

enum cpu_stat { C_TCP, C_UDP, C_OTHER, C_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_CPUMAP);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, struct bpf_cpumap_val);
} cpu_map SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, C_MAX);
    __type(key, __u32);
    __type(value, __u64);
} cpu_stats SEC(".maps");

SEC("xdp") int xdp_cpumap(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {(void *)(long)ctx->data};
    struct ethhdr *eth;
    int l4 = -1;
    int proto = parse_eth(&c, data_end, &eth, 0, 0);
    if (proto == ETH_P_IP) {
        struct iphdr *ip;
        l4 = parse_ipv4(&c, data_end, &ip);
    } else if (proto == ETH_P_IPV6) {
        struct ipv6hdr *ip6;
        l4 = parse_ipv6(&c, data_end, &ip6);
    }
    if (l4 == IPPROTO_TCP) {
        count(&cpu_stats, C_TCP, 1);
        return bpf_redirect_map(&cpu_map, 0, XDP_PASS);
    }
    if (l4 == IPPROTO_UDP) {
        count(&cpu_stats, C_UDP, 1);
        return bpf_redirect_map(&cpu_map, 1, XDP_PASS);
    }
    count(&cpu_stats, C_OTHER, 1);
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
