// Per-flow packet and byte counters in a PERCPU_HASH keyed by the IPv4/IPv6 5-tuple (IPv4 addresses
// in the first 4 bytes of the 16-byte fields). A new flow is inserted with BPF_NOEXIST, a known one
// is updated in place; a TCP FIN or RST ends the flow: its entry is deleted with map_delete_elem
// (the return code of the last delete is kept, and deleting a flow that was never seen gives
// -ENOENT). All frames are passed.
// Exercises: PERCPU_HASH, map_lookup/update(BPF_NOEXIST)/delete_elem.
#include "xdp_common.bpf.h"

struct flow {
    __u8 src[16];
    __u8 dst[16];
    __be16 sport;
    __be16 dport;
    __u8 proto;
    __u8 pad[3];
};

struct flow_counters {
    __u64 packets;
    __u64 bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 128);
    __type(key, struct flow);
    __type(value, struct flow_counters);
} flows SEC(".maps");

struct flow_result {
    __u64 created;
    __u64 ended;
    __s64 last_delete_rc;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct flow_result);
} flow_result SEC(".maps");

SEC("xdp") int xdp_flow_stats(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    void *data = (void *)(long)ctx->data;
    struct cursor c = {data};
    struct ethhdr *eth;
    struct flow f = {};
    int l4 = -1;
    __u32 zero = 0;
    struct flow_result *res = bpf_map_lookup_elem(&flow_result, &zero);
    if (!res) return XDP_ABORTED;

    int proto = parse_eth(&c, data_end, &eth, 0, 0);
    if (proto == ETH_P_IP) {
        struct iphdr *ip;
        l4 = parse_ipv4(&c, data_end, &ip);
        if (l4 < 0 || (bpf_ntohs(ip->frag_off) & IP_OFFSET_MASK)) return XDP_PASS;
        __builtin_memcpy(f.src, &ip->saddr, 4);
        __builtin_memcpy(f.dst, &ip->daddr, 4);
    } else if (proto == ETH_P_IPV6) {
        struct ipv6hdr *ip6;
        l4 = parse_ipv6(&c, data_end, &ip6);
        if (l4 < 0) return XDP_PASS;
        __builtin_memcpy(f.src, &ip6->saddr, 16);
        __builtin_memcpy(f.dst, &ip6->daddr, 16);
    } else {
        return XDP_PASS;
    }
    f.proto = l4;
    int end = 0;
    if (l4 == IPPROTO_TCP || l4 == IPPROTO_UDP) {
        struct udphdr *ports = c.pos;
        if ((void *)(ports + 1) > data_end) return XDP_PASS;
        f.sport = ports->source;
        f.dport = ports->dest;
        if (l4 == IPPROTO_TCP) {
            struct tcphdr *tcp = c.pos;
            if ((void *)(tcp + 1) > data_end) return XDP_PASS;
            end = tcp->fin || tcp->rst;
        }
    }
    if (end) {
        res->last_delete_rc = bpf_map_delete_elem(&flows, &f);
        res->ended++;
        return XDP_PASS;
    }
    struct flow_counters *fc = bpf_map_lookup_elem(&flows, &f);
    if (fc) {
        fc->packets++;  // this CPU's slot: no atomics needed
        fc->bytes += data_end - data;
    } else {
        struct flow_counters init = {1, data_end - data};
        if (bpf_map_update_elem(&flows, &f, &init, BPF_NOEXIST) == 0) res->created++;
    }
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
