// Layer-2 parser: Ethernet, 802.3 length frames, and up to two VLAN tags (802.1Q, 802.1ad QinQ).
// Counts frames per class in an ARRAY and frames per outermost VLAN id in a HASH (inserted with
// BPF_NOEXIST, then incremented in place). Runts and cut-short tags are dropped, the rest passed.
// Exercises: ARRAY, HASH, map_lookup_elem, map_update_elem, __sync_fetch_and_add, bounds checks.
#include "xdp_common.bpf.h"

enum l2_class { L2_RUNT, L2_IPV4, L2_IPV6, L2_ARP, L2_OTHER, L2_LLC, L2_VLAN1, L2_VLAN2, L2_BAD_TAG, L2_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, L2_MAX);
    __type(key, __u32);
    __type(value, __u64);
} l2_stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u16);    // outermost VLAN id
    __type(value, __u64);  // frames
} vlan_seen SEC(".maps");

SEC("xdp") int xdp_parse_l2(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {(void *)(long)ctx->data};
    struct ethhdr *eth;
    __u16 vids[MAX_VLAN_TAGS] = {};
    int nvids = 0;

    if (c.pos + sizeof(struct ethhdr) > data_end) {
        count(&l2_stats, L2_RUNT, 1);
        return XDP_DROP;
    }
    int proto = parse_eth(&c, data_end, &eth, vids, &nvids);
    if (proto < 0) {
        count(&l2_stats, L2_BAD_TAG, 1);
        return XDP_DROP;
    }
    if (nvids > 0) {
        count(&l2_stats, nvids == 1 ? L2_VLAN1 : L2_VLAN2, 1);
        __u16 vid = vids[0];
        __u64 one = 1;
        __u64 *n = bpf_map_lookup_elem(&vlan_seen, &vid);
        if (n)
            __sync_fetch_and_add(n, 1);
        else
            bpf_map_update_elem(&vlan_seen, &vid, &one, BPF_NOEXIST);
    }
    // EtherType values below 0x0600 are 802.3 lengths (an LLC header follows).
    if (proto < 0x0600)
        count(&l2_stats, L2_LLC, 1);
    else if (proto == ETH_P_IP)
        count(&l2_stats, L2_IPV4, 1);
    else if (proto == ETH_P_IPV6)
        count(&l2_stats, L2_IPV6, 1);
    else if (proto == ETH_P_ARP)
        count(&l2_stats, L2_ARP, 1);
    else
        count(&l2_stats, L2_OTHER, 1);
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
