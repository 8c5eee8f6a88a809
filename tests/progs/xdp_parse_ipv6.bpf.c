// IPv6 parser: the fixed header, then the extension header chain (RFC 8200 section 4: hop-by-hop,
// routing, fragment, destination options; plus AH, RFC 4302) in a bounded loop of at most 6
// headers, each read with bpf_xdp_load_bytes at a running offset; a non-first fragment ends the walk
// (no L4 header in it); otherwise the TCP/UDP/ICMPv6 header must fit. Counts every extension header
// kind, the chain length (HASH) and the final protocol. Truncated headers and over-long chains are
// dropped, the rest passed; non-IPv6 frames are passed uncounted.
// Exercises: bounded loop, xdp_load_bytes, HASH update with BPF_ANY, ARRAY counters.
#include "xdp_common.bpf.h"

#define MAX_EXT_HDRS 6

enum ext_class { EXT_HOP, EXT_ROUTING, EXT_FRAG, EXT_DSTOPTS, EXT_AH, EXT_NONE, EXT_TOO_MANY, EXT_TRUNC, EXT_MAX };
enum l4_class { L4_TCP, L4_UDP, L4_ICMPV6, L4_OTHER, L4_NONFIRST_FRAG, L4_TRUNC, L4_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, EXT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} ext_stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, L4_MAX);
    __type(key, __u32);
    __type(value, __u64);
} l4_stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, __u32);    // number of extension headers before the upper layer
    __type(value, __u64);  // packets
} chain_len SEC(".maps");

INLINE void count_chain(__u32 n) {
    __u64 *v = bpf_map_lookup_elem(&chain_len, &n);
    __u64 one = 1;
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&chain_len, &n, &one, BPF_ANY);
}

SEC("xdp") int xdp_parse_ipv6(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {data};
    struct ethhdr *eth;
    struct ipv6hdr *ip6;

    int proto = parse_eth(&c, data_end, &eth, 0, 0);
    if (proto < 0) return XDP_DROP;
    if (proto != ETH_P_IPV6) return XDP_PASS;
    int next = parse_ipv6(&c, data_end, &ip6);
    if (next < 0) {
        count(&ext_stats, EXT_TRUNC, 1);
        return XDP_DROP;
    }
    __u32 off = c.pos - data;
    __u32 n = 0;
    for (int i = 0; i < MAX_EXT_HDRS; i++) {
        __u8 h[4];
        if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_FRAGMENT &&
            next != IPPROTO_DSTOPTS && next != IPPROTO_AH)
            break;
        if (bpf_xdp_load_bytes(ctx, off, h, sizeof(h)) < 0) {
            count(&ext_stats, EXT_TRUNC, 1);
            return XDP_DROP;
        }
        __u8 nh = h[0];
        __u32 len;
        if (next == IPPROTO_FRAGMENT) {
            len = 8;
            count(&ext_stats, EXT_FRAG, 1);
            // Fragment offset is the top 13 bits of bytes 2-3; non-zero means no L4 header here.
            if (((h[2] << 8 | h[3]) & 0xfff8) != 0) {
                count_chain(n + 1);
                count(&l4_stats, L4_NONFIRST_FRAG, 1);
                return XDP_PASS;
            }
        } else if (next == IPPROTO_AH) {
            len = (h[1] + 2) * 4;
            count(&ext_stats, EXT_AH, 1);
        } else {
            len = (h[1] + 1) * 8;
            count(&ext_stats, next == IPPROTO_HOPOPTS ? EXT_HOP : next == IPPROTO_ROUTING ? EXT_ROUTING : EXT_DSTOPTS, 1);
        }
        // The whole extension header must be present, not only its first bytes.
        __u8 last;
        if (bpf_xdp_load_bytes(ctx, off + len - 1, &last, 1) < 0) {
            count(&ext_stats, EXT_TRUNC, 1);
            return XDP_DROP;
        }
        next = nh;
        off += len;
        n++;
    }
    if (next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_FRAGMENT || next == IPPROTO_DSTOPTS ||
        next == IPPROTO_AH) {
        count(&ext_stats, EXT_TOO_MANY, 1);
        return XDP_DROP;
    }
    count_chain(n);
    if (next == IPPROTO_NONE) {
        count(&ext_stats, EXT_NONE, 1);
        return XDP_PASS;
    }
    __u32 need = next == IPPROTO_TCP ? sizeof(struct tcphdr) : next == IPPROTO_UDP ? sizeof(struct udphdr) : next == IPPROTO_ICMPV6 ? sizeof(struct icmp6hdr) : 0;
    __u8 l4[sizeof(struct tcphdr)];
    if (need && bpf_xdp_load_bytes(ctx, off, l4, need) < 0) {
        count(&l4_stats, L4_TRUNC, 1);
        return XDP_DROP;
    }
    count(&l4_stats, next == IPPROTO_TCP ? L4_TCP : next == IPPROTO_UDP ? L4_UDP : next == IPPROTO_ICMPV6 ? L4_ICMPV6 : L4_OTHER, 1);
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
