// The map benchmark programs (bench/maps_bench.cpp): each bench_map_<type>.bpf.c defines
// BENCH_MAP_TYPE (and BENCH_LPM for the trie's key) and includes this file.
//
// One map, `bench_map`, of BENCH_MAX_ENTRIES; the benchmark stores keys 0..BENCH_KEYS-1 (value:
// the key number) before it runs anything. Every program runs BENCH_OPS iterations of one map
// operation in a bounded loop, so a PROG_TEST_RUN `duration` divided by BENCH_OPS is the time of
// one operation plus one loop step; `baseline` is the same loop without the map call, for the
// loop step alone.
//
// Return value: XDP_PASS when every operation did what it should (lookup_hit found its key,
// lookup_miss did not, update returned 0); the first that did not returns XDP_DROP at once, so a
// benchmark that times failures is caught. (Counting failures instead makes 6.18's verifier walk
// one path per failure count and give up at 1M instructions.) XDP_TX never happens; it keeps the
// loaded values alive.
#pragma once

#include <linux/bpf.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define BENCH_OPS 256
#define BENCH_KEYS 256
#define BENCH_MAX_ENTRIES 4096
#define BENCH_MISS_OFFSET (1u << 20)  // key numbers from here on are never stored

#ifdef BENCH_LPM
// Stored: 10.0.n.0/24 for key number n. Looked up: 10.0.n.7/32, which only that /24 matches.
struct bench_lpm_key {
    __u32 prefixlen;
    __u32 addr;  // network order
};
typedef struct bench_lpm_key bench_key;
static __always_inline void bench_make_key(bench_key *k, __u32 n) {
    k->prefixlen = 32;
    k->addr = bpf_htonl(0x0a000000u + (n << 8) + 7);
}
#define BENCH_MAP_FLAGS BPF_F_NO_PREALLOC
#else
// A plain __u32: the kernel's array_map_check_btf wants an integer key type.
typedef __u32 bench_key;
static __always_inline void bench_make_key(bench_key *k, __u32 n) { *k = n; }
#define BENCH_MAP_FLAGS 0
#endif

struct {
    __uint(type, BENCH_MAP_TYPE);
    __uint(max_entries, BENCH_MAX_ENTRIES);
    __uint(map_flags, BENCH_MAP_FLAGS);
    __type(key, bench_key);
    __type(value, __u64);
} bench_map SEC(".maps");

static __always_inline int bench_verdict(__u64 acc) { return acc == 0xdeadbeefull ? XDP_TX : XDP_PASS; }

SEC("xdp") int baseline(struct xdp_md *ctx) {
    __u64 acc = 0;
#pragma clang loop unroll(disable)
    for (__u32 i = 0; i < BENCH_OPS; i++) {
        volatile bench_key k;
        bench_make_key((bench_key *)&k, i & (BENCH_KEYS - 1));
        acc += *(volatile __u32 *)&k;
    }
    return bench_verdict(acc);
}

SEC("xdp") int lookup_hit(struct xdp_md *ctx) {
    __u64 acc = 0;
#pragma clang loop unroll(disable)
    for (__u32 i = 0; i < BENCH_OPS; i++) {
        bench_key k;
        bench_make_key(&k, i & (BENCH_KEYS - 1));
        __u64 *v = bpf_map_lookup_elem(&bench_map, &k);
        if (!v) return XDP_DROP;
        acc += *v;
    }
    return bench_verdict(acc);
}

SEC("xdp") int lookup_miss(struct xdp_md *ctx) {
    __u64 acc = 0;
#pragma clang loop unroll(disable)
    for (__u32 i = 0; i < BENCH_OPS; i++) {
        bench_key k;
        bench_make_key(&k, BENCH_MISS_OFFSET + (i & (BENCH_KEYS - 1)));
        __u64 *v = bpf_map_lookup_elem(&bench_map, &k);
        if (v) return XDP_DROP;
        acc += i;
    }
    return bench_verdict(acc);
}

#ifndef BENCH_LPM
// Replaces the value of a stored key (arrays: writes the slot; hashes: the kernel's replace path).
SEC("xdp") int update(struct xdp_md *ctx) {
#pragma clang loop unroll(disable)
    for (__u32 i = 0; i < BENCH_OPS; i++) {
        bench_key k;
        bench_make_key(&k, i & (BENCH_KEYS - 1));
        __u64 v = i;
        if (bpf_map_update_elem(&bench_map, &k, &v, BPF_ANY)) return XDP_DROP;
    }
    return XDP_PASS;
}
#endif

char _license[] SEC("license") = "GPL";
