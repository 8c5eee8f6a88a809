// bpf_redirect_map over a DEVMAP (index -> ifindex) and a DEVMAP_HASH (key -> ifindex). IPv4 frames
// use DEVMAP slot (destination address & 7), falling back to XDP_PASS on an empty slot; IPv6 frames
// use DEVMAP_HASH key (last byte of the destination address), falling back to XDP_DROP; other frames
// are passed. Before redirecting, the entry is also looked up from the program (DEVMAP lookups return
// the bpf_devmap_val) and hits/misses counted. The setup puts ifindex 1 (lo) in DEVMAP slot 2 and
// DEVMAP_HASH key 2; under BPF_PROG_TEST_RUN a hit returns XDP_REDIRECT, a miss the fallback.
// Exercises: DEVMAP, DEVMAP_HASH, redirect_map (hit and miss with both fallbacks), lookups on both.
#include "xdp_common.bpf.h"

enum dev_stat { D_V4_HIT, D_V4_MISS, D_V6_HIT, D_V6_MISS, D_OTHER, D_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_DEVMAP);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u32);  // ifindex
} tx_ports SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u32);  // ifindex
} tx_ports_hash SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, D_MAX);
    __type(key, __u32);
    __type(value, __u64);
} dev_stats SEC(".maps");

SEC("xdp") int xdp_devmap(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {(void *)(long)ctx->data};
    struct ethhdr *eth;
    int proto = parse_eth(&c, data_end, &eth, 0, 0);
    if (proto == ETH_P_IP) {
        struct iphdr *ip;
        if (parse_ipv4(&c, data_end, &ip) < 0) return XDP_DROP;
        __u32 key = bpf_ntohl(ip->daddr) & 7;
        count(&dev_stats, bpf_map_lookup_elem(&tx_ports, &key) ? D_V4_HIT : D_V4_MISS, 1);
        return bpf_redirect_map(&tx_ports, key, XDP_PASS);
    }
    if (proto == ETH_P_IPV6) {
        struct ipv6hdr *ip6;
        if (parse_ipv6(&c, data_end, &ip6) < 0) return XDP_DROP;
        __u32 key = ip6->daddr.in6_u.u6_addr8[15];
        count(&dev_stats, bpf_map_lookup_elem(&tx_ports_hash, &key) ? D_V6_HIT : D_V6_MISS, 1);
        return bpf_redirect_map(&tx_ports_hash, key, XDP_DROP);
    }
    count(&dev_stats, D_OTHER, 1);
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
