// Frame length changes with bpf_xdp_adjust_tail. Frames of 68 bytes or more lose their last 4 bytes
// (an FCS-like trailer); frames shorter than 60 bytes are zero-padded to the Ethernet minimum of 60;
// both return XDP_TX, frames of 60..67 bytes are passed untouched. Before that, two calls that must
// fail are made and their return codes kept: shrinking below the 14-byte Ethernet header, and growing
// by 4096 bytes (past the frame's tailroom). Lengths are read back with bpf_xdp_get_buff_len.
// Exercises: xdp_adjust_tail (shrink, grow, both error paths), xdp_get_buff_len.
#include "xdp_common.bpf.h"

enum tail_stat { TS_SHRUNK, TS_GROWN, TS_UNTOUCHED, TS_BYTES_REMOVED, TS_BYTES_ADDED, TS_FAILED, TS_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, TS_MAX);
    __type(key, __u32);
    __type(value, __u64);
} tail_stats SEC(".maps");

struct tail_errors {
    __s64 shrink_below_eth;  // return code of the last too-deep shrink
    __s64 grow_too_far;      // return code of the last too-far grow
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct tail_errors);
} tail_errors SEC(".maps");

#define TRAILER 4
#define MIN_FRAME 60

SEC("xdp") int xdp_adjust_tail(struct xdp_md *ctx) {
    __u32 zero = 0;
    struct tail_errors *e = bpf_map_lookup_elem(&tail_errors, &zero);
    __s64 len = bpf_xdp_get_buff_len(ctx);
    if (!e) return XDP_ABORTED;
    if (len > 10) e->shrink_below_eth = bpf_xdp_adjust_tail(ctx, 10 - (int)len);
    e->grow_too_far = bpf_xdp_adjust_tail(ctx, 4096);

    if (len >= MIN_FRAME + 2 * TRAILER) {
        if (bpf_xdp_adjust_tail(ctx, -TRAILER)) goto fail;
        count(&tail_stats, TS_SHRUNK, 1);
        count(&tail_stats, TS_BYTES_REMOVED, len - bpf_xdp_get_buff_len(ctx));
        return XDP_TX;
    }
    if (len < MIN_FRAME) {
        if (bpf_xdp_adjust_tail(ctx, MIN_FRAME - (int)len)) goto fail;
        count(&tail_stats, TS_GROWN, 1);
        count(&tail_stats, TS_BYTES_ADDED, bpf_xdp_get_buff_len(ctx) - len);
        return XDP_TX;
    }
    count(&tail_stats, TS_UNTOUCHED, 1);
    return XDP_PASS;
fail:
    count(&tail_stats, TS_FAILED, 1);
    return XDP_ABORTED;
}

char _license[] SEC("license") = "GPL";
