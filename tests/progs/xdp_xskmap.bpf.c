// AF_XDP steering: UDP frames to port 4789 go to XSKMAP slot 0 with XDP_PASS as the fallback, the
// slot is first looked up from the program (an XSKMAP lookup returns the socket or NULL); other
// frames are passed. The map stays empty (binding an AF_XDP socket needs a device queue), so every
// frame takes the miss path and returns XDP_PASS; the counters show how many were steered.
// The steering key is fixed rather than ctx->rx_queue_index so the result does not depend on the queue.
// Exercises: XSKMAP, redirect_map (miss), map_lookup_elem on an XSKMAP.
#include "xdp_common.bpf.h"

enum xsk_stat { X_STEERED, X_SOCKET_PRESENT, X_OTHER, X_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u32);
} xsks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, X_MAX);
    __type(key, __u32);
    __type(value, __u64);
} xsk_stats SEC(".maps");

SEC("xdp") int xdp_xskmap(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {(void *)(long)ctx->data};
    struct ethhdr *eth;
    struct iphdr *ip;
    if (parse_eth(&c, data_end, &eth, 0, 0) == ETH_P_IP && parse_ipv4(&c, data_end, &ip) == IPPROTO_UDP) {
        struct udphdr *udp = c.pos;
        if ((void *)(udp + 1) <= data_end && udp->dest == bpf_htons(4789)) {
            __u32 slot = 0;
            count(&xsk_stats, X_STEERED, 1);
            if (bpf_map_lookup_elem(&xsks, &slot)) count(&xsk_stats, X_SOCKET_PRESENT, 1);
            return bpf_redirect_map(&xsks, slot, XDP_PASS);
        }
    }
    count(&xsk_stats, X_OTHER, 1);
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
