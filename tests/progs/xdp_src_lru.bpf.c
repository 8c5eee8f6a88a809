// Per-source packet and byte counters in an LRU_PERCPU_HASH (IPv4 sources; IPv6 sources folded to
// 32 bits by xor). The map is larger than the number of sources in the test set, so nothing is
// evicted and the contents are deterministic. Sources counted with the value returned by lookup
// (this CPU's slot); new ones inserted with BPF_ANY. Frames whose source has been seen more than
// 3 times are dropped (a crude rate limit), the rest passed.
// Exercises: LRU_PERCPU_HASH, map_lookup_elem/map_update_elem on it.
#include "xdp_common.bpf.h"

struct src_counters {
    __u64 packets;
    __u64 bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, struct src_counters);
} src_stats SEC(".maps");

SEC("xdp") int xdp_src_lru(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    void *data = (void *)(long)ctx->data;
    struct cursor c = {data};
    struct ethhdr *eth;
    __u32 src;
    int proto = parse_eth(&c, data_end, &eth, 0, 0);
    if (proto == ETH_P_IP) {
        struct iphdr *ip;
        if (parse_ipv4(&c, data_end, &ip) < 0) return XDP_PASS;
        src = ip->saddr;
    } else if (proto == ETH_P_IPV6) {
        struct ipv6hdr *ip6;
        if (parse_ipv6(&c, data_end, &ip6) < 0) return XDP_PASS;
        src = ip6->saddr.in6_u.u6_addr32[0] ^ ip6->saddr.in6_u.u6_addr32[1] ^ ip6->saddr.in6_u.u6_addr32[2] ^
              ip6->saddr.in6_u.u6_addr32[3];
    } else {
        return XDP_PASS;
    }
    struct src_counters *sc = bpf_map_lookup_elem(&src_stats, &src);
    if (!sc) {
        struct src_counters init = {1, data_end - data};
        bpf_map_update_elem(&src_stats, &src, &init, BPF_ANY);
        return XDP_PASS;
    }
    sc->packets++;
    sc->bytes += data_end - data;
    return sc->packets > 3 ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
