// AF_XDP delivery as an application's own program does it (libxdp's default program is the
// same): every frame to the XSKMAP slot of its RX queue, to the kernel when the slot is empty.
// Exercises: XSKMAP redirects by ctx->rx_queue_index (tests/dataplane: a local AF_XDP consumer).
#include "xdp_common.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u32);
} xsks SEC(".maps");

SEC("xdp") int xdp_xsk_queue(struct xdp_md *ctx) {
    return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
