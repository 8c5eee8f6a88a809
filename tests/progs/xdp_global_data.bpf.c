// Global variables in all three sections. .rodata holds a `const volatile` config (the UDP port to
// drop, a TTL floor) and a constant lookup table; .data holds initialised, non-zero counters that the
// program keeps adding to; .bss holds zero-initialised counters and the last packet's summary.
// UDP to the configured port and IPv4 with a TTL below the floor are dropped, the rest passed.
// Exercises: .data, .rodata (frozen), .bss (libbpf's internal ARRAY maps), direct global access.
#include "xdp_common.bpf.h"

const volatile __u16 cfg_drop_udp_port = 53;
const volatile __u8 cfg_min_ttl = 2;

// A constant table in .rodata: the class of an IP protocol number modulo 8.
static const __u8 proto_class[8] = {7, 1, 2, 3, 4, 5, 6, 0};

__u64 seen_by_class[8] = {100, 200, 300, 400, 500, 600, 700, 800};  // .data
__u32 generation = 1;                                               // .data

struct summary {
    __u32 len;
    __u16 proto;
    __u8 ttl;
    __u8 l4;
};

__u64 packets;                // .bss
__u64 bytes;                  // .bss
__u64 dropped_port;           // .bss
__u64 dropped_ttl;            // .bss
struct summary last;          // .bss

SEC("xdp") int xdp_global_data(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    void *data = (void *)(long)ctx->data;
    struct cursor c = {data};
    struct ethhdr *eth;
    struct iphdr *ip;

    __sync_fetch_and_add(&packets, 1);
    __sync_fetch_and_add(&bytes, data_end - data);
    generation = generation * 3 + 1;
    last.len = data_end - data;
    int proto = parse_eth(&c, data_end, &eth, 0, 0);
    last.proto = proto < 0 ? 0xffff : proto;
    last.ttl = 0;
    last.l4 = 0;
    if (proto != ETH_P_IP) return XDP_PASS;
    int l4 = parse_ipv4(&c, data_end, &ip);
    if (l4 < 0) return XDP_PASS;
    last.ttl = ip->ttl;
    last.l4 = l4;
    seen_by_class[proto_class[l4 & 7] & 7] += 1;  // the verifier cannot bound a byte read at a variable index
    if (ip->ttl < cfg_min_ttl) {
        dropped_ttl++;
        return XDP_DROP;
    }
    if (l4 == IPPROTO_UDP) {
        struct udphdr *udp = c.pos;
        if ((void *)(udp + 1) <= data_end && udp->dest == bpf_htons(cfg_drop_udp_port)) {
            dropped_port++;
            return XDP_DROP;
        }
    }
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
