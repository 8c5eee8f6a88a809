// Katran-style L4 load balancer. A TCP/UDP IPv4 packet to a VIP (HASH {addr, port, proto} -> vip
// number) picks a real server from the VIP's slice of a consistent-hash ring (ARRAY), remembers the
// choice per 5-tuple in an LRU_HASH with BPF_F_NO_COMMON_LRU (per-CPU LRU lists) reached through an
// ARRAY_OF_MAPS (slot 0; the setup creates the inner map and inserts it), and is encapsulated in
// IPIP: bpf_xdp_adjust_head(-20), a new Ethernet header (source = the old destination MAC,
// destination = the router MAC from .rodata), an outer IPv4 header from the tunnel source in .rodata
// to the real, checksummed with bpf_csum_diff. Returns XDP_TX. Packets to no VIP, non-IPv4, VLAN
// tagged and fragments are passed; a VIP whose ring slot names no real is dropped.
// Exercises: ARRAY_OF_MAPS over LRU_HASH (NO_COMMON_LRU), HASH, ARRAY, PERCPU_ARRAY, .rodata,
// xdp_adjust_head, csum_diff, map_lookup/update_elem on an inner map.
#include "xdp_common.bpf.h"

#define RING_SIZE 16
#define MAX_VIPS 8
#define MAX_REALS 16
#define FLOW_ENTRIES 1024

enum lb_stat { LB_VIP_HIT, LB_NEW_FLOW, LB_FLOW_HIT, LB_PASS, LB_NO_REAL, LB_NO_FLOW_TABLE, LB_ENCAP_FAIL, LB_MAX };

struct vip_key {
    __be32 addr;
    __be16 port;
    __u8 proto;
    __u8 pad;
};

struct vip_meta {
    __u32 vip_num;  // index of the VIP's ring slice
    __u32 flags;    // VIP_F_* below
};

#define VIP_F_HASH_SRC_ONLY 1  // hash only the source address (sticky per client, like Katran's F_HASH_NO_SRC_PORT)

struct real {
    __be32 addr;
};

struct flow_key {
    __be32 src;
    __be32 dst;
    __be16 sport;
    __be16 dport;
    __u8 proto;
    __u8 pad[3];
};

struct flow_val {
    __u32 real;  // index into reals
    __u32 pad;
};

struct lb_cfg {
    __u8 router_mac[ETH_ALEN];
    __u8 pad[2];
    __be32 tunnel_src;
};

const volatile struct lb_cfg cfg = {
    .router_mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0xfe},
    .tunnel_src = 0x0100ff0a,  // 10.255.0.1 in network order
};

// The inner map's template. Sizes rather than __type: clang emits only a forward declaration for a
// struct reached solely through the __array pointer, and libbpf cannot size a forward declaration.
struct flow_table {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(map_flags, BPF_F_NO_COMMON_LRU);
    __uint(max_entries, FLOW_ENTRIES);
    __uint(key_size, sizeof(struct flow_key));
    __uint(value_size, sizeof(struct flow_val));
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 1);
    __type(key, __u32);
    __array(values, struct flow_table);
} lru_mapping SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MAX_VIPS);
    __type(key, struct vip_key);
    __type(value, struct vip_meta);
} vips SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MAX_REALS);
    __type(key, __u32);
    __type(value, struct real);
} reals SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MAX_VIPS * RING_SIZE);
    __type(key, __u32);
    __type(value, __u32);  // index into reals
} ch_rings SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, LB_MAX);
    __type(key, __u32);
    __type(value, __u64);
} lb_stats SEC(".maps");

INLINE __u32 flow_hash(const struct flow_key *f, __u32 flags) {
    if (flags & VIP_F_HASH_SRC_ONLY) return mix32(0x5eed, f->src);
    __u32 h = mix32(0x5eed, f->src);
    h = mix32(h, f->dst);
    h = mix32(h, (__u32)f->sport << 16 | f->dport);
    return mix32(h, f->proto);
}

// Finds or creates the flow's real. Returns the real's index or -1.
INLINE int pick_real(struct flow_key *f, const struct vip_meta *vip) {
    __u32 zero = 0;
    void *flows = bpf_map_lookup_elem(&lru_mapping, &zero);
    if (!flows) {
        count(&lb_stats, LB_NO_FLOW_TABLE, 1);
        return -1;
    }
    struct flow_val *known = bpf_map_lookup_elem(flows, f);
    if (known) {
        count(&lb_stats, LB_FLOW_HIT, 1);
        return known->real;
    }
    __u32 slot = vip->vip_num * RING_SIZE + flow_hash(f, vip->flags) % RING_SIZE;
    __u32 *real = bpf_map_lookup_elem(&ch_rings, &slot);
    if (!real) return -1;
    struct flow_val v = {.real = *real};
    bpf_map_update_elem(flows, f, &v, BPF_ANY);
    count(&lb_stats, LB_NEW_FLOW, 1);
    return v.real;
}

// Prepends Ethernet + outer IPv4 (protocol 4) in front of the inner IPv4 packet.
INLINE int encap_ipip(struct xdp_md *ctx, const __u8 *our_mac, __be32 real_addr, __u16 inner_len, __u8 tos) {
    if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct iphdr))) return -1;
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *outer = data + sizeof(*eth);
    if ((void *)(outer + 1) > data_end) return -1;

    __builtin_memcpy(eth->h_source, our_mac, ETH_ALEN);
    __builtin_memcpy(eth->h_dest, (const void *)cfg.router_mac, ETH_ALEN);
    eth->h_proto = bpf_htons(ETH_P_IP);

    struct iphdr h = {
        .version = 4,
        .ihl = 5,
        .tos = tos,
        .tot_len = bpf_htons(inner_len + sizeof(struct iphdr)),
        .ttl = 64,
        .protocol = IPPROTO_IPIP,
        .saddr = cfg.tunnel_src,
        .daddr = real_addr,
    };
    h.check = csum_fold(bpf_csum_diff(0, 0, (__be32 *)&h, sizeof(h), 0));
    *outer = h;
    return 0;
}

SEC("xdp") int xdp_lb_ipip(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    void *data = (void *)(long)ctx->data;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) goto pass;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5) goto pass;
    if (bpf_ntohs(ip->frag_off) & (IP_MF | IP_OFFSET_MASK)) goto pass;
    if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP) goto pass;
    struct udphdr *ports = (void *)ip + ip->ihl * 4;
    if ((void *)(ports + 1) > data_end) goto pass;
    __u16 inner_len = bpf_ntohs(ip->tot_len);
    if ((void *)ip + inner_len > data_end || inner_len < ip->ihl * 4) goto pass;

    struct vip_key vk = {.addr = ip->daddr, .port = ports->dest, .proto = ip->protocol};
    struct vip_meta *vip = bpf_map_lookup_elem(&vips, &vk);
    if (!vip) goto pass;
    count(&lb_stats, LB_VIP_HIT, 1);

    struct flow_key f = {.src = ip->saddr, .dst = ip->daddr, .sport = ports->source, .dport = ports->dest, .proto = ip->protocol};
    __u8 tos = ip->tos;
    __u8 our_mac[ETH_ALEN];
    __builtin_memcpy(our_mac, eth->h_dest, ETH_ALEN);
    int idx = pick_real(&f, vip);
    if (idx < 0) return XDP_DROP;
    __u32 ridx = idx;
    struct real *r = bpf_map_lookup_elem(&reals, &ridx);
    if (!r || r->addr == 0) {
        count(&lb_stats, LB_NO_REAL, 1);
        return XDP_DROP;
    }
    if (encap_ipip(ctx, our_mac, r->addr, inner_len, tos) < 0) {
        count(&lb_stats, LB_ENCAP_FAIL, 1);
        return XDP_ABORTED;
    }
    return XDP_TX;
pass:
    count(&lb_stats, LB_PASS, 1);
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
