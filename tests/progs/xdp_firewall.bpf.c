// Stateless firewall. Order of checks for IPv4: exact source address (HASH src -> rule id), longest
// source prefix (LPM_TRIE prefix -> verdict, so a longer "allow" prefix can punch a hole in a shorter
// "deny"), then (protocol, destination port) (HASH). IPv6 sources go through their own LPM_TRIE.
// Per-verdict counters are per-CPU (PERCPU_ARRAY); hits per rule id are in a HASH. Matching packets
// are dropped, the rest passed; frames that are not IP, and later fragments, are passed.
// Exercises: HASH, LPM_TRIE (IPv4 and IPv6 keys), PERCPU_ARRAY, map_lookup/update_elem, atomics.
#include "xdp_common.bpf.h"

enum fw_stat { FW_PASS, FW_DROP_SRC, FW_DROP_LPM, FW_DROP_PORT, FW_NOT_IP, FW_MALFORMED, FW_MAX };
enum fw_verdict { FW_ALLOW = 0, FW_DENY = 1 };

struct lpm_v4_key {
    __u32 prefixlen;
    __be32 addr;
};

struct lpm_v6_key {
    __u32 prefixlen;
    __u8 addr[16];
};

struct lpm_val {
    __u32 verdict;  // enum fw_verdict
    __u32 rule;     // rule id counted in fw_hits
};

struct port_key {
    __u8 proto;
    __u8 pad;
    __be16 port;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, __be32);   // IPv4 source (looked up with a key pointer into the packet)
    __type(value, __u32);  // rule id
} fw_src_block SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 256);
    __uint(map_flags, BPF_F_NO_PREALLOC);  // LPM_TRIE requires it
    __type(key, struct lpm_v4_key);
    __type(value, struct lpm_val);
} fw_v4_lpm SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 256);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct lpm_v6_key);
    __type(value, struct lpm_val);
} fw_v6_lpm SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, struct port_key);
    __type(value, __u32);  // rule id
} fw_port_block SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, FW_MAX);
    __type(key, __u32);
    __type(value, __u64);
} fw_stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, __u32);    // rule id
    __type(value, __u64);  // hits
} fw_hits SEC(".maps");

INLINE int deny(enum fw_stat why, __u32 rule) {
    __u64 one = 1;
    __u64 *hits = bpf_map_lookup_elem(&fw_hits, &rule);
    if (hits)
        __sync_fetch_and_add(hits, 1);
    else
        bpf_map_update_elem(&fw_hits, &rule, &one, BPF_NOEXIST);
    count(&fw_stats, why, 1);
    return XDP_DROP;
}

INLINE int check_port(void *l4, void *data_end, __u8 proto) {
    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return XDP_PASS;
    struct udphdr *ports = l4;  // source and destination ports sit at the same offsets in TCP
    if ((void *)(ports + 1) > data_end) {
        count(&fw_stats, FW_MALFORMED, 1);
        return XDP_DROP;
    }
    struct port_key pk = {.proto = proto, .port = ports->dest};
    __u32 *rule = bpf_map_lookup_elem(&fw_port_block, &pk);
    if (rule) return deny(FW_DROP_PORT, *rule);
    count(&fw_stats, FW_PASS, 1);
    return XDP_PASS;
}

SEC("xdp") int xdp_firewall(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {(void *)(long)ctx->data};
    struct ethhdr *eth;

    int proto = parse_eth(&c, data_end, &eth, 0, 0);
    if (proto == ETH_P_IP) {
        struct iphdr *ip;
        int l4 = parse_ipv4(&c, data_end, &ip);
        if (l4 < 0) {
            count(&fw_stats, FW_MALFORMED, 1);
            return XDP_DROP;
        }
        __u32 *rule = bpf_map_lookup_elem(&fw_src_block, &ip->saddr);
        if (rule) return deny(FW_DROP_SRC, *rule);
        struct lpm_v4_key key = {.prefixlen = 32, .addr = ip->saddr};
        struct lpm_val *m = bpf_map_lookup_elem(&fw_v4_lpm, &key);
        if (m && m->verdict == FW_DENY) return deny(FW_DROP_LPM, m->rule);
        if (bpf_ntohs(ip->frag_off) & IP_OFFSET_MASK) {
            count(&fw_stats, FW_PASS, 1);
            return XDP_PASS;
        }
        return check_port(c.pos, data_end, l4);
    }
    if (proto == ETH_P_IPV6) {
        struct ipv6hdr *ip6;
        int l4 = parse_ipv6(&c, data_end, &ip6);
        if (l4 < 0) {
            count(&fw_stats, FW_MALFORMED, 1);
            return XDP_DROP;
        }
        struct lpm_v6_key key = {.prefixlen = 128};
        __builtin_memcpy(key.addr, &ip6->saddr, sizeof(key.addr));
        struct lpm_val *m = bpf_map_lookup_elem(&fw_v6_lpm, &key);
        if (m && m->verdict == FW_DENY) return deny(FW_DROP_LPM, m->rule);
        return check_port(c.pos, data_end, l4);
    }
    count(&fw_stats, proto < 0 ? FW_MALFORMED : FW_NOT_IP, 1);
    return proto < 0 ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
