// VLAN tag push and pop with bpf_xdp_adjust_head. An untagged IPv4/IPv6 frame gets an 802.1Q tag
// (VLAN id from .rodata, priority 0) pushed after the MAC addresses: adjust_head(-4), MACs moved to
// the new front. A single-tagged frame has its tag popped: MACs moved 4 bytes on, adjust_head(+4),
// the EtherType after the tag kept. Both return XDP_TX; double-tagged, other EtherTypes and runts
// pass untouched. Also keeps the return code of a too-large adjust_head(+len) that must fail.
// Exercises: xdp_adjust_head (grow and shrink, the error path), packet rewrites after re-checking
// bounds on the moved data pointer.
#include "xdp_common.bpf.h"

const volatile __u16 cfg_push_vid = 42;

enum vlan_stat { V_PUSHED, V_POPPED, V_PASSED, V_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, V_MAX);
    __type(key, __u32);
    __type(value, __u64);
} vlan_stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __s64);  // return code of the last adjust_head past the end of the frame
} head_error SEC(".maps");

INLINE int push_tag(struct xdp_md *ctx, __be16 inner_proto) {
    if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct vlan_hdr))) return XDP_ABORTED;
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct vlan_hdr *vh = (void *)(eth + 1);
    if ((void *)(vh + 1) > data_end) return XDP_ABORTED;
    // The MACs are 4 bytes further on now; move them to the front.
    __builtin_memmove(eth, data + sizeof(struct vlan_hdr), 2 * ETH_ALEN);
    eth->h_proto = bpf_htons(ETH_P_8021Q);
    vh->tci = bpf_htons(cfg_push_vid & VLAN_VID_MASK);
    vh->encap_proto = inner_proto;
    count(&vlan_stats, V_PUSHED, 1);
    return XDP_TX;
}

INLINE int pop_tag(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct vlan_hdr *vh = (void *)(eth + 1);
    if ((void *)(vh + 1) > data_end) return XDP_PASS;
    __be16 inner = vh->encap_proto;
    // Copy the MACs over the tag's place: they end up right before the inner EtherType.
    __u8 macs[2 * ETH_ALEN];
    __builtin_memcpy(macs, eth, sizeof(macs));
    __builtin_memcpy((void *)eth + sizeof(struct vlan_hdr), macs, sizeof(macs));
    if (bpf_xdp_adjust_head(ctx, sizeof(struct vlan_hdr))) return XDP_ABORTED;
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    eth = data;
    if ((void *)(eth + 1) > data_end) return XDP_ABORTED;
    if (eth->h_proto != inner) return XDP_ABORTED;  // the inner EtherType is where the tag was
    count(&vlan_stats, V_POPPED, 1);
    return XDP_TX;
}

SEC("xdp") int xdp_vlan_tag(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    __u32 zero = 0;
    __s64 *err = bpf_map_lookup_elem(&head_error, &zero);
    if (err) *err = bpf_xdp_adjust_head(ctx, data_end - data);  // would leave less than 14 bytes
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;

    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) goto pass;
    __be16 proto = eth->h_proto;
    if (proto == bpf_htons(ETH_P_IP) || proto == bpf_htons(ETH_P_IPV6)) return push_tag(ctx, proto);
    if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
        struct vlan_hdr *vh = (void *)(eth + 1);
        if ((void *)(vh + 1) > data_end) goto pass;
        if (vh->encap_proto == bpf_htons(ETH_P_8021Q) || vh->encap_proto == bpf_htons(ETH_P_8021AD)) goto pass;
        return pop_tag(ctx);
    }
pass:
    count(&vlan_stats, V_PASSED, 1);
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
