// A program that tail-calls itself (PROG_ARRAY slot 0, set by the setup) until the kernel's limit
// (MAX_TAIL_CALL_CNT, 33 tail calls: 34 runs per packet) makes bpf_tail_call fall through. The depth
// is carried in 4 bytes of XDP metadata (bpf_xdp_adjust_meta on the first run), which survives tail
// calls; the final depth is counted in a histogram, the metadata removed again, and the frame passed.
// Exercises: tail_call limit, self tail call, xdp_adjust_meta (grow and shrink), data_meta access.
#include "xdp_common.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} self_table SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 64);
    __type(key, __u32);    // runs seen for one packet
    __type(value, __u64);  // packets
} depth_hist SEC(".maps");

SEC("xdp") int xdp_tail_limit(struct xdp_md *ctx) {
    void *meta = (void *)(long)ctx->data_meta;
    void *data = (void *)(long)ctx->data;
    if (meta == data) {  // first run: no metadata yet
        if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(__u32))) return XDP_ABORTED;
        meta = (void *)(long)ctx->data_meta;
        data = (void *)(long)ctx->data;
        if (meta + sizeof(__u32) > data) return XDP_ABORTED;
        *(__u32 *)meta = 0;
    }
    if (meta + sizeof(__u32) > data) return XDP_ABORTED;
    __u32 depth = ++*(__u32 *)meta;
    bpf_tail_call(ctx, &self_table, 0);
    // The limit was reached (or the slot is empty).
    count(&depth_hist, depth & 63, 1);
    if (bpf_xdp_adjust_meta(ctx, sizeof(__u32))) return XDP_ABORTED;
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
