// Counts packets per EtherType in a HASH and per action in an ARRAY; drops EtherTypes listed in
// .rodata; keeps the last length in .bss. Exercises maps, global data and the context rewrite.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u16);
    __type(value, __u64);
} by_ethertype SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 5);
    __type(key, __u32);
    __type(value, __u64);
} by_action SEC(".maps");

const volatile __u16 blocked_ethertype = 0x0608;  // ARP, as it appears in memory (big endian)
__u32 last_len;
__u64 seen = 7;

SEC("xdp") int xdp_count(struct xdp_md *ctx) {
    unsigned char *data = (void *)(long)ctx->data;
    unsigned char *data_end = (void *)(long)ctx->data_end;
    __u32 action = XDP_PASS;
    last_len = (__u32)(data_end - data);
    seen++;
    if (data + 14 > data_end) {
        action = XDP_ABORTED;
    } else {
        __u16 type = *(__u16 *)(data + 12);
        __u64 one = 1, *n = bpf_map_lookup_elem(&by_ethertype, &type);
        if (n) __sync_fetch_and_add(n, 1);
        else bpf_map_update_elem(&by_ethertype, &type, &one, BPF_NOEXIST);
        if (type == blocked_ethertype) action = XDP_DROP;
    }
    __u64 *c = bpf_map_lookup_elem(&by_action, &action);
    if (c) __sync_fetch_and_add(c, 1);
    return action;
}

char _license[] SEC("license") = "GPL";
