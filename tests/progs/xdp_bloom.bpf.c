// Source admission with two BLOOM_FILTER maps (BPF_F_ZERO_SEED, so the hash seed and therefore any
// false positive is the same on every load). `allowed` is filled by the setup; an IPv4 source found
// in it (bpf_map_peek_elem) is passed, any other IPv4 source is dropped and pushed into `seen`
// (bpf_map_push_elem), after first checking whether it was already there (a repeat offender).
// Non-IPv4 frames are passed. The filters are large for their contents, so with the packet set of
// the tests there are no false positives.
// Exercises: BLOOM_FILTER, map_peek_elem and map_push_elem on it, map_extra (hash count).
#include "xdp_common.bpf.h"

enum bloom_stat { B_ALLOWED, B_DENIED_NEW, B_DENIED_REPEAT, B_NOT_IPV4, B_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
    __uint(max_entries, 256);
    __uint(map_flags, BPF_F_ZERO_SEED);
    __uint(map_extra, 3);  // hash functions
    __type(value, __u32);
} allowed SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
    __uint(max_entries, 256);
    __uint(map_flags, BPF_F_ZERO_SEED);
    __uint(map_extra, 5);
    __type(value, __u32);
} seen SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, B_MAX);
    __type(key, __u32);
    __type(value, __u64);
} bloom_stats SEC(".maps");

SEC("xdp") int xdp_bloom(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {(void *)(long)ctx->data};
    struct ethhdr *eth;
    struct iphdr *ip;
    if (parse_eth(&c, data_end, &eth, 0, 0) != ETH_P_IP || parse_ipv4(&c, data_end, &ip) < 0) {
        count(&bloom_stats, B_NOT_IPV4, 1);
        return XDP_PASS;
    }
    __u32 src = ip->saddr;
    if (bpf_map_peek_elem(&allowed, &src) == 0) {
        count(&bloom_stats, B_ALLOWED, 1);
        return XDP_PASS;
    }
    if (bpf_map_peek_elem(&seen, &src) == 0) {
        count(&bloom_stats, B_DENIED_REPEAT, 1);
    } else {
        bpf_map_push_elem(&seen, &src, BPF_ANY);
        count(&bloom_stats, B_DENIED_NEW, 1);
    }
    return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
