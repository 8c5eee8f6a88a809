// ICMP echo responder for IPv4 and IPv6. An echo request (ICMP type 8, ICMPv6 type 128) is turned
// into the reply in place: MAC and IP addresses swapped, type rewritten, the ICMP checksum updated
// incrementally with bpf_csum_diff over the 4-byte word holding type and code (the IPv6 pseudo-header
// sum is unchanged by swapping source and destination); IPv4 TTL / IPv6 hop limit reset to 64 with
// the IPv4 header checksum fixed the same way. Returns XDP_TX. Requests with a fragmented or
// truncated header are dropped; everything else is passed.
// Exercises: csum_diff on packet memory and stack words, in-place rewrites of IPv4/IPv6/ICMP.
#include "xdp_common.bpf.h"

enum echo_stat { E_REPLIED4, E_REPLIED6, E_PASSED, E_DROPPED, E_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, E_MAX);
    __type(key, __u32);
    __type(value, __u64);
} echo_stats SEC(".maps");

#define ICMPV6_ECHO_REQ 128
#define ICMPV6_ECHO_REP 129

INLINE void swap_mac(struct ethhdr *eth) {
    __u8 tmp[ETH_ALEN];
    __builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
    __builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
    __builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
}

// Replaces the 16-bit word at `field` (2-byte aligned in its header) and fixes `check` (RFC 1624).
INLINE void replace16(__sum16 *check, void *field, __u16 new_word) {
    __be32 from = *(__u16 *)field;
    __be32 to = new_word;
    *check = csum_fold(bpf_csum_diff(&from, sizeof(from), &to, sizeof(to), (__u16)~*check));
    *(__u16 *)field = new_word;
}

INLINE int reply4(struct ethhdr *eth, struct iphdr *ip, void *l4, void *data_end) {
    struct icmp4hdr *icmp = l4;
    if ((void *)(icmp + 1) > data_end) return XDP_DROP;
    if (icmp->type != ICMP_ECHO || icmp->code != 0) return XDP_PASS;
    if (bpf_ntohs(ip->frag_off) & (IP_MF | IP_OFFSET_MASK)) return XDP_DROP;
    __u8 word[2] = {ICMP_ECHOREPLY, icmp->code};
    replace16(&icmp->checksum, &icmp->type, *(__u16 *)word);
    __u8 ttl_proto[2] = {64, ip->protocol};
    replace16(&ip->check, &ip->ttl, *(__u16 *)ttl_proto);
    __be32 tmp = ip->saddr;  // swapping two words leaves the header sum unchanged
    ip->saddr = ip->daddr;
    ip->daddr = tmp;
    swap_mac(eth);
    count(&echo_stats, E_REPLIED4, 1);
    return XDP_TX;
}

INLINE int reply6(struct ethhdr *eth, struct ipv6hdr *ip6, void *l4, void *data_end) {
    struct icmp6hdr *icmp = l4;
    if ((void *)(icmp + 1) > data_end) return XDP_DROP;
    if (icmp->icmp6_type != ICMPV6_ECHO_REQ || icmp->icmp6_code != 0) return XDP_PASS;
    __u8 word[2] = {ICMPV6_ECHO_REP, icmp->icmp6_code};
    replace16(&icmp->icmp6_cksum, &icmp->icmp6_type, *(__u16 *)word);
    struct in6_addr tmp = ip6->saddr;
    ip6->saddr = ip6->daddr;
    ip6->daddr = tmp;
    ip6->hop_limit = 64;
    swap_mac(eth);
    count(&echo_stats, E_REPLIED6, 1);
    return XDP_TX;
}

SEC("xdp") int xdp_icmp_echo(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {(void *)(long)ctx->data};
    struct ethhdr *eth;
    int verdict = XDP_PASS;
    int proto = parse_eth(&c, data_end, &eth, 0, 0);
    if (proto == ETH_P_IP) {
        struct iphdr *ip;
        if (parse_ipv4(&c, data_end, &ip) == IPPROTO_ICMP) verdict = reply4(eth, ip, c.pos, data_end);
    } else if (proto == ETH_P_IPV6) {
        struct ipv6hdr *ip6;
        if (parse_ipv6(&c, data_end, &ip6) == IPPROTO_ICMPV6) verdict = reply6(eth, ip6, c.pos, data_end);
    }
    if (verdict == XDP_PASS) count(&echo_stats, E_PASSED, 1);
    if (verdict == XDP_DROP) count(&echo_stats, E_DROPPED, 1);
    return verdict;
}

char _license[] SEC("license") = "GPL";
