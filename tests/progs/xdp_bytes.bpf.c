// Packet access through helpers instead of direct pointers. bpf_xdp_load_bytes copies the Ethernet
// header to the stack, the MACs are swapped there and written back with bpf_xdp_store_bytes; the
// last 4 bytes are read at a variable offset (len - 4, from bpf_xdp_get_buff_len); frames of at
// least 46 bytes get the marker "XDPR" stored at offset 42 (the UDP payload start of an untagged
// IPv4/UDP frame). Out-of-range loads and stores (offset = len) must fail, and their return codes
// are kept. Frames shorter than 14 bytes cannot exist here (the kernel refuses them), shorter than
// 18 are passed; the rest return XDP_TX.
// Exercises: xdp_load_bytes, xdp_store_bytes, xdp_get_buff_len (and their error returns).
#include "xdp_common.bpf.h"

struct bytes_state {
    __u32 last_tail;      // the last 4 bytes of the last frame, as loaded
    __u32 last_len;
    __s64 load_past_end;  // return code of a load at offset len
    __s64 store_past_end; // return code of a store at offset len
    __u64 marked;         // frames that got the marker
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct bytes_state);
} bytes_state SEC(".maps");

SEC("xdp") int xdp_bytes(struct xdp_md *ctx) {
    __u32 zero = 0;
    struct bytes_state *s = bpf_map_lookup_elem(&bytes_state, &zero);
    if (!s) return XDP_ABORTED;
    __u32 len = bpf_xdp_get_buff_len(ctx);
    s->last_len = len;
    __u8 probe[4] = {};
    s->load_past_end = bpf_xdp_load_bytes(ctx, len, probe, 1);
    s->store_past_end = bpf_xdp_store_bytes(ctx, len, probe, 1);
    if (len < 18) return XDP_PASS;

    __u8 eth[ETH_HLEN];
    if (bpf_xdp_load_bytes(ctx, 0, eth, sizeof(eth))) return XDP_ABORTED;
    __u8 swapped[ETH_HLEN];
    __builtin_memcpy(swapped, eth + ETH_ALEN, ETH_ALEN);
    __builtin_memcpy(swapped + ETH_ALEN, eth, ETH_ALEN);
    __builtin_memcpy(swapped + 2 * ETH_ALEN, eth + 2 * ETH_ALEN, 2);
    if (bpf_xdp_store_bytes(ctx, 0, swapped, sizeof(swapped))) return XDP_ABORTED;

    __u32 tail;
    if (bpf_xdp_load_bytes(ctx, len - 4, &tail, sizeof(tail))) return XDP_ABORTED;
    s->last_tail = tail;
    if (len >= 46) {
        const char marker[4] = {'X', 'D', 'P', 'R'};
        if (bpf_xdp_store_bytes(ctx, 42, (void *)marker, sizeof(marker))) return XDP_ABORTED;
        __sync_fetch_and_add(&s->marked, 1);
    }
    return XDP_TX;
}

char _license[] SEC("license") = "GPL";
