// Shared by the corpus programs: protocol headers, bounds-checked parsing steps and small helpers.
//
// Every parsing step takes a cursor and data_end and returns -1 when the header does not fit, so the
// verifier sees one comparison against data_end before each header is read. Values are network
// order as on the wire unless a name says otherwise (`_h` = host order).
#pragma once

#include <linux/bpf.h>
#include <linux/icmpv6.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define NOINLINE static __attribute__((noinline))
#define INLINE static __always_inline

// IEEE 802.1Q tag as it follows the MAC addresses (linux/if_vlan.h has it only in the kernel tree).
struct vlan_hdr {
    __be16 tci;
    __be16 encap_proto;
};

// ICMPv4 echo header (linux/icmp.h pulls in libc socket headers that do not build for -target bpf).
struct icmp4hdr {
    __u8 type;
    __u8 code;
    __sum16 checksum;
    __be16 id;
    __be16 sequence;
};

#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

#define VLAN_VID_MASK 0x0fff
#define MAX_VLAN_TAGS 2

// IPv4 fragment bits in frag_off (host order).
#define IP_MF 0x2000
#define IP_OFFSET_MASK 0x1fff

struct cursor {
    void *pos;
};

// Ethernet header plus up to two 802.1Q/802.1ad tags. Returns the inner EtherType (host order) or
// -1 when a header is cut short; `vids` (may be null) receives the VLAN ids outermost first.
INLINE int parse_eth(struct cursor *c, void *data_end, struct ethhdr **eth_out, __u16 *vids, int *nvids) {
    struct ethhdr *eth = c->pos;
    if ((void *)(eth + 1) > data_end) return -1;
    *eth_out = eth;
    c->pos = eth + 1;
    __u16 proto = bpf_ntohs(eth->h_proto);
    int n = 0;
#pragma unroll
    for (int i = 0; i < MAX_VLAN_TAGS; i++) {
        if (proto != ETH_P_8021Q && proto != ETH_P_8021AD) break;
        struct vlan_hdr *vh = c->pos;
        if ((void *)(vh + 1) > data_end) return -1;
        if (vids) vids[i] = bpf_ntohs(vh->tci) & VLAN_VID_MASK;
        proto = bpf_ntohs(vh->encap_proto);
        c->pos = vh + 1;
        n++;
    }
    if (nvids) *nvids = n;
    return proto;
}

// IPv4 header with its options. Returns the protocol or -1 (cut short, IHL < 5, version not 4).
INLINE int parse_ipv4(struct cursor *c, void *data_end, struct iphdr **ip_out) {
    struct iphdr *ip = c->pos;
    if ((void *)(ip + 1) > data_end) return -1;
    if (ip->version != 4 || ip->ihl < 5) return -1;
    void *next = (void *)ip + ip->ihl * 4;
    if (next > data_end) return -1;
    *ip_out = ip;
    c->pos = next;
    return ip->protocol;
}

// The fixed IPv6 header only. Returns nexthdr or -1.
INLINE int parse_ipv6(struct cursor *c, void *data_end, struct ipv6hdr **ip6_out) {
    struct ipv6hdr *ip6 = c->pos;
    if ((void *)(ip6 + 1) > data_end) return -1;
    if (ip6->version != 6) return -1;
    *ip6_out = ip6;
    c->pos = ip6 + 1;
    return ip6->nexthdr;
}

// Folds a 32-bit one's complement partial sum (as bpf_csum_diff returns it) to the 16-bit checksum.
INLINE __u16 csum_fold(__u32 sum) {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (__u16)~sum;
}

// A deterministic 32-bit mix (no random seed: the differential test needs equal results).
INLINE __u32 mix32(__u32 h, __u32 v) {
    h ^= v;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

// Hides a value from the optimiser so that a range check written after it survives to the verifier
// (clang otherwise drops checks it can prove from, say, a 4-bit bitfield the verifier cannot see).
INLINE __u64 opaque(__u64 v) {
    asm volatile("" : "+r"(v));
    return v;
}

// Adds `delta` to slot `idx` of an ARRAY/PERCPU_ARRAY of __u64 counters (always inlined, so the
// verifier sees the map itself, not a pointer argument).
INLINE void count(void *map, __u32 idx, __u64 delta) {
    __u64 *v = bpf_map_lookup_elem(map, &idx);
    if (v) __sync_fetch_and_add(v, delta);
}
