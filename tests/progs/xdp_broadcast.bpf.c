// bpf_redirect_map with BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS over `ports` (a DEVMAP whose
// entries carry `egress_mark`, a BPF_XDP_DEVMAP program): every port but the ingress one gets a
// copy, and each copy's source MAC ends with the low byte of the egress_ifindex its devmap
// program saw. Exercises: broadcast, devmap entry programs, egress_ifindex.
#include "xdp_common.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_DEVMAP);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, struct bpf_devmap_val);
} ports SEC(".maps");

SEC("xdp") int xdp_broadcast(struct xdp_md *ctx) {
    return bpf_redirect_map(&ports, 0, BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS);
}

SEC("xdp/devmap") int egress_mark(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end) return XDP_DROP;
    eth->h_source[5] = (__u8)ctx->egress_ifindex;
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
