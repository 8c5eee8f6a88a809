// Every atomic the BPF ISA has, on an ARRAY value and on .bss globals, in 64 and 32 bits:
// fetch-and-add/sub/or/and/xor, add-and-fetch, exchange (__sync_lock_test_and_set), compare-and-swap
// (value and bool forms; a bounded CAS loop keeps the maximum frame length). The old values returned
// by the fetch forms steer the verdict (XDP_PASS on an even packet number, XDP_DROP on an odd one),
// so a wrong fetch result shows in the return code as well as in the map.
// Exercises: BPF_ATOMIC add/and/or/xor with and without FETCH, XCHG, CMPXCHG (64 and 32 bit).
// Built with -mcpu=v3 (tests/progs/meson.build): clang refuses 32-bit atomics other than add under
// the default v1, so this is also the corpus program with ALU32 and JMP32 instructions.
#include "xdp_common.bpf.h"

struct atomic_state {
    __u64 add;       // sum of frame lengths
    __u64 sub;       // starts at 0, minus one per packet (wraps)
    __u64 or_bits;   // bit (len % 64) of every frame
    __u64 and_bits;  // starts all-ones (setup), clears bit (len % 64)
    __u64 xor_acc;   // xor of lengths
    __u64 last_len;  // exchanged in each time
    __u64 max_len;   // CAS-maintained maximum
    __u64 cas_hits;  // successful bool CAS of the packet counter
    __u32 add32;
    __u32 or32;
    __u32 xchg32;
    __u32 cas32;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct atomic_state);
} atomic_state SEC(".maps");

__u64 packet_no;     // .bss
__u32 packet_no32;   // .bss

SEC("xdp") int xdp_atomics(struct xdp_md *ctx) {
    __u64 len = ctx->data_end - ctx->data;
    __u32 zero = 0;
    struct atomic_state *s = bpf_map_lookup_elem(&atomic_state, &zero);
    if (!s) return XDP_ABORTED;

    __u64 n = __sync_fetch_and_add(&packet_no, 1);
    __sync_fetch_and_add(&s->add, len);
    __sync_fetch_and_sub(&s->sub, 1);
    __sync_fetch_and_or(&s->or_bits, 1ull << (len & 63));
    __sync_fetch_and_and(&s->and_bits, ~(1ull << (len & 63)));
    __u64 old_xor = __sync_fetch_and_xor(&s->xor_acc, len);
    __u64 prev_len = __sync_lock_test_and_set(&s->last_len, len);
    for (int i = 0; i < 4; i++) {
        __u64 cur = s->max_len;
        if (len <= cur) break;
        if (__sync_val_compare_and_swap(&s->max_len, cur, len) == cur) break;
    }
    // Succeeds only if nobody moved packet_no since the fetch-add above, which is always here.
    if (__sync_bool_compare_and_swap(&packet_no, n + 1, n + 1)) __sync_fetch_and_add(&s->cas_hits, 1);

    __u32 n32 = __sync_add_and_fetch(&packet_no32, 1);
    __sync_fetch_and_add(&s->add32, (__u32)len);
    __sync_fetch_and_or(&s->or32, 1u << (len & 31));
    __sync_lock_test_and_set(&s->xchg32, n32);
    __sync_val_compare_and_swap(&s->cas32, n32 - 1, n32);

    // The verdict depends on the fetched old values: the packet number's parity, flipped if the
    // xor fetch or the exchange returned something inconsistent with what is in the map now.
    __u64 bad = (old_xor ^ len) != s->xor_acc || s->last_len != len || prev_len > 0xffff;
    return ((n ^ bad) & 1) ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
