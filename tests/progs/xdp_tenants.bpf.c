// Per-tenant destination allow-lists in a HASH_OF_MAPS: the tenant is the outermost VLAN id (0 for
// untagged frames), its inner HASH maps IPv4 destinations to hit counters. A frame of a tenant with no
// inner map, or to a destination missing from its list, is dropped; an allowed one has its counter
// incremented (inner map, in place) and is passed. Non-IPv4 frames are passed. The outer map is
// declared without an inner-map template: the corpus `prepare` hook creates one and hands it to libbpf
// with bpf_map__set_inner_map_fd before load; the setup inserts the inner maps.
// Exercises: HASH_OF_MAPS, inner-map template from user space, lookups/updates through an inner map.
#include "xdp_common.bpf.h"

enum tenant_stat { TN_ALLOWED, TN_NO_TENANT, TN_NOT_LISTED, TN_NOT_IPV4, TN_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
    __uint(max_entries, 8);
    __uint(key_size, sizeof(__u32));    // tenant: outer VLAN id, 0 if untagged
    __uint(value_size, sizeof(__u32));  // inner map fd (in), id (out)
} tenants SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, TN_MAX);
    __type(key, __u32);
    __type(value, __u64);
} tenant_stats SEC(".maps");

SEC("xdp") int xdp_tenants(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {(void *)(long)ctx->data};
    struct ethhdr *eth;
    struct iphdr *ip;
    __u16 vids[MAX_VLAN_TAGS] = {};
    int nvids = 0;
    if (parse_eth(&c, data_end, &eth, vids, &nvids) != ETH_P_IP || parse_ipv4(&c, data_end, &ip) < 0) {
        count(&tenant_stats, TN_NOT_IPV4, 1);
        return XDP_PASS;
    }
    __u32 tenant = nvids ? vids[0] : 0;
    void *allow = bpf_map_lookup_elem(&tenants, &tenant);
    if (!allow) {
        count(&tenant_stats, TN_NO_TENANT, 1);
        return XDP_DROP;
    }
    __be32 dst = ip->daddr;
    __u64 *hits = bpf_map_lookup_elem(allow, &dst);
    if (!hits) {
        count(&tenant_stats, TN_NOT_LISTED, 1);
        return XDP_DROP;
    }
    __sync_fetch_and_add(hits, 1);
    count(&tenant_stats, TN_ALLOWED, 1);
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
