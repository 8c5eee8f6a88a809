// XDP metadata: reserves 16 bytes in front of the packet with bpf_xdp_adjust_meta, writes a record
// (magic, frame length, EtherType, a hash of the first bytes) into data_meta, reads it back through
// a freshly loaded data_meta pointer and checks every field, keeping the record in an ARRAY. Also
// keeps the return codes of two calls that must fail: a delta that is not a multiple of 4, and one
// larger than the headroom. Finally gives the 16 bytes back (adjust_meta(+16)). XDP_PASS when the
// read-back matched, XDP_ABORTED otherwise; the packet itself is never changed.
// Exercises: xdp_adjust_meta (grow, shrink, two error paths), data_meta bounds checks.
#include "xdp_common.bpf.h"

#define META_MAGIC 0x4d455441u  // "META"

struct meta_rec {
    __u32 magic;
    __u32 len;
    __u32 proto;
    __u32 hash;
};

struct meta_result {
    struct meta_rec last;      // the record read back for the last packet
    __s64 unaligned_rc;        // adjust_meta(-3)
    __s64 too_big_rc;          // adjust_meta(-4096)
    __u64 matched;
    __u64 mismatched;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct meta_result);
} meta_result SEC(".maps");

SEC("xdp") int xdp_adjust_meta(struct xdp_md *ctx) {
    __u32 zero = 0;
    struct meta_result *r = bpf_map_lookup_elem(&meta_result, &zero);
    if (!r) return XDP_ABORTED;
    r->unaligned_rc = bpf_xdp_adjust_meta(ctx, -3);
    r->too_big_rc = bpf_xdp_adjust_meta(ctx, -4096);

    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct meta_rec want = {.magic = META_MAGIC, .len = data_end - data, .proto = 0xffff, .hash = 0x811c9dc5};
    __u8 *p = data;
    for (int i = 0; i < 16; i++) {
        if ((void *)(p + i + 1) > data_end) break;
        want.hash = (want.hash ^ p[i]) * 0x01000193;  // FNV-1a over up to 16 bytes
    }
    if (data + sizeof(struct ethhdr) <= data_end) want.proto = bpf_ntohs(((struct ethhdr *)data)->h_proto);

    if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct meta_rec))) return XDP_ABORTED;
    struct meta_rec *m = (void *)(long)ctx->data_meta;
    if ((void *)(m + 1) > (void *)(long)ctx->data) return XDP_ABORTED;
    *m = want;

    // Read back through pointers loaded again from the context.
    m = (void *)(long)ctx->data_meta;
    if ((void *)(m + 1) > (void *)(long)ctx->data) return XDP_ABORTED;
    r->last = *m;
    int ok = m->magic == want.magic && m->len == want.len && m->proto == want.proto && m->hash == want.hash;
    __sync_fetch_and_add(ok ? &r->matched : &r->mismatched, 1);
    if (bpf_xdp_adjust_meta(ctx, sizeof(struct meta_rec))) return XDP_ABORTED;
    return ok ? XDP_PASS : XDP_ABORTED;
}

char _license[] SEC("license") = "GPL";
