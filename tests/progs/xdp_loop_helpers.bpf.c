// Loops through helpers. bpf_loop runs a callback once per byte of the first 64 bytes of the frame
// (only the first 14 for shorter frames; copied to the stack with bpf_xdp_load_bytes), computing an
// Adler-32 style sum; the callback stops early (returns 1) at the first 0xff byte.
// bpf_for_each_map_elem walks an ARRAY of 16 weights filled by the setup, summing the weights of the
// slots selected by the frame's sum bits and stopping after slot 12 (an early exit, well defined
// because an ARRAY is walked in index order), and a HASH of port weights in full (hash order
// depends on the kernel's hash function, so nothing order-dependent is computed from it). Results
// for the last frame and running totals are kept in an ARRAY. The verdict is XDP_PASS for an even
// weighted sum, XDP_DROP for an odd one.
// Exercises: loop (bpf_loop, early exit), for_each_map_elem on ARRAY (early exit) and HASH.
#include "xdp_common.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, __u64);
} weights SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, __u64);
} port_weights SEC(".maps");

struct loop_result {
    __u32 adler;        // of the last frame
    __u32 iterations;   // bpf_loop's return value for the last frame
    __u64 weighted;     // ARRAY walk sum for the last frame
    __u64 array_visits; // bpf_for_each_map_elem's return value, summed over frames
    __u64 hash_sum;     // HASH walk sum for the last frame
    __u64 hash_visits;  // summed over frames
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct loop_result);
} loop_result SEC(".maps");

struct sum_ctx {
    __u8 bytes[64];
    __u32 len;
    __u32 a, b;
};

static long sum_step(__u32 i, void *arg) {
    struct sum_ctx *s = arg;
    if (i >= s->len) return 1;
    __u8 v = s->bytes[i & 63];
    if (v == 0xff) return 1;
    s->a = (s->a + v) % 65521;
    s->b = (s->b + s->a) % 65521;
    return 0;
}

struct walk_ctx {
    __u32 select;  // bit i set: slot i counts
    __u64 sum;
};

#define LAST_SLOT 12

static long weigh_slot(void *map, __u32 *key, __u64 *value, struct walk_ctx *w) {
    if (w->select & (1u << (*key & 31))) w->sum += *value;
    return *key == LAST_SLOT;  // 1 stops the walk
}

static long weigh_port(void *map, __u32 *key, __u64 *value, struct walk_ctx *w) {
    w->sum += *value * (*key & 0xff);
    return 0;
}

SEC("xdp") int xdp_loop_helpers(struct xdp_md *ctx) {
    __u32 zero = 0;
    struct loop_result *r = bpf_map_lookup_elem(&loop_result, &zero);
    if (!r) return XDP_ABORTED;
    struct sum_ctx s = {.a = 1};
    __u64 len = ctx->data_end - ctx->data;
    s.len = len < 64 ? len : 64;
    if (bpf_xdp_load_bytes(ctx, 0, s.bytes, len < 64 ? 14 : 64) < 0) return XDP_ABORTED;
    if (len < 64) s.len = 14;  // the kernel guarantees at least an Ethernet header
    r->iterations = bpf_loop(64, sum_step, &s, 0);
    r->adler = s.b << 16 | s.a;

    struct walk_ctx w = {.select = r->adler};
    r->array_visits += bpf_for_each_map_elem(&weights, weigh_slot, &w, 0);
    r->weighted = w.sum;
    struct walk_ctx h = {};
    r->hash_visits += bpf_for_each_map_elem(&port_weights, weigh_port, &h, 0);
    r->hash_sum = h.sum;
    return (w.sum & 1) ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
