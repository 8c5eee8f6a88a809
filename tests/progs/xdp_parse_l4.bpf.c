// L4 parser built from bpf-to-bpf calls: static noinline subprograms that take packet pointers
// (verified in the caller's context, so the bounds carry over) and a global function (verified on
// its own from its BTF signature) that classifies the parsed key. Parses Ethernet/VLAN, IPv4 or the
// fixed IPv6 header, then TCP/UDP/ICMP/ICMPv6; counts TCP flags (ARRAY) and packets per
// (protocol, destination port or ICMP type) (HASH). Drops truncated L4 headers and telnet
// (TCP port 23); passes the rest.
// Exercises: bpf-to-bpf calls (static with packet pointers, global with a stack pointer), HASH, ARRAY.
#include "xdp_common.bpf.h"

enum flag_class { F_FIN, F_SYN, F_RST, F_PSH, F_ACK, F_URG, F_MAX };
enum verdict { V_PASS, V_DROP };

struct l4_key {
    __u8 proto;
    __u8 pad;
    __u16 port_h;  // TCP/UDP destination port, or ICMP type << 8 | code
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, F_MAX);
    __type(key, __u32);
    __type(value, __u64);
} tcp_flags SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 128);
    __type(key, struct l4_key);
    __type(value, __u64);
} l4_ports SEC(".maps");

NOINLINE int parse_tcp(struct tcphdr *tcp, void *data_end, struct l4_key *k) {
    if ((void *)(tcp + 1) > data_end || tcp->doff < 5) return -1;
    if ((void *)tcp + tcp->doff * 4 > data_end) return -1;
    k->port_h = bpf_ntohs(tcp->dest);
    if (tcp->fin) count(&tcp_flags, F_FIN, 1);
    if (tcp->syn) count(&tcp_flags, F_SYN, 1);
    if (tcp->rst) count(&tcp_flags, F_RST, 1);
    if (tcp->psh) count(&tcp_flags, F_PSH, 1);
    if (tcp->ack) count(&tcp_flags, F_ACK, 1);
    if (tcp->urg) count(&tcp_flags, F_URG, 1);
    return 0;
}

NOINLINE int parse_udp(struct udphdr *udp, void *data_end, struct l4_key *k) {
    if ((void *)(udp + 1) > data_end) return -1;
    if (bpf_ntohs(udp->len) < sizeof(*udp)) return -1;
    k->port_h = bpf_ntohs(udp->dest);
    return 0;
}

NOINLINE int parse_icmp(struct icmp4hdr *icmp, void *data_end, struct l4_key *k) {
    if ((void *)(icmp + 1) > data_end) return -1;
    k->port_h = icmp->type << 8 | icmp->code;
    return 0;
}

// Dispatches on the protocol; a second level of calls below the program's own.
NOINLINE int parse_l4(void *l4, void *data_end, __u8 proto, struct l4_key *k) {
    k->proto = proto;
    if (proto == IPPROTO_TCP) return parse_tcp(l4, data_end, k);
    if (proto == IPPROTO_UDP) return parse_udp(l4, data_end, k);
    if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) return parse_icmp(l4, data_end, k);
    return 0;
}

// Global: verified once on its own, `k` is a possibly-null pointer to sizeof(struct l4_key) bytes.
__attribute__((noinline)) int l4_verdict(struct l4_key *k) {
    if (!k) return V_PASS;
    return k->proto == IPPROTO_TCP && k->port_h == 23 ? V_DROP : V_PASS;
}

SEC("xdp") int xdp_parse_l4(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {(void *)(long)ctx->data};
    struct ethhdr *eth;
    struct l4_key k = {};
    int proto = parse_eth(&c, data_end, &eth, 0, 0);
    int l4;
    if (proto == ETH_P_IP) {
        struct iphdr *ip;
        l4 = parse_ipv4(&c, data_end, &ip);
        if (l4 >= 0 && (bpf_ntohs(ip->frag_off) & IP_OFFSET_MASK)) return XDP_PASS;
    } else if (proto == ETH_P_IPV6) {
        struct ipv6hdr *ip6;
        l4 = parse_ipv6(&c, data_end, &ip6);
    } else {
        return proto < 0 ? XDP_DROP : XDP_PASS;
    }
    if (l4 < 0) return XDP_DROP;
    if (parse_l4(c.pos, data_end, l4, &k) < 0) return XDP_DROP;

    __u64 one = 1;
    __u64 *n = bpf_map_lookup_elem(&l4_ports, &k);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&l4_ports, &k, &one, BPF_NOEXIST);
    return l4_verdict(&k) == V_DROP ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
