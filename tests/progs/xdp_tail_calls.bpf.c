// A tail-call pipeline through a PROG_ARRAY. xdp_tail_entry classifies the EtherType and jumps to
// slot 0 (xdp_tail_ipv4) or slot 1 (xdp_tail_ipv6); anything else jumps to slot 3, which the setup
// leaves empty, so bpf_tail_call returns and the entry passes the frame itself. xdp_tail_ipv4 jumps
// on to slot 2 (xdp_tail_tcp) for TCP; xdp_tail_tcp drops destination port 23 and passes the rest.
// Each stage counts itself, so the counters show the path every packet took.
// Exercises: PROG_ARRAY, tail_call (hit, miss on an empty slot, a two-deep chain).
#include "xdp_common.bpf.h"

enum tail_stat { T_ENTRY, T_IPV4, T_IPV6, T_TCP, T_MISS, T_TELNET, T_MAX };
enum tail_slot { SLOT_IPV4, SLOT_IPV6, SLOT_TCP, SLOT_EMPTY, SLOT_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, SLOT_MAX);
    __type(key, __u32);
    __type(value, __u32);
} jmp_table SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, T_MAX);
    __type(key, __u32);
    __type(value, __u64);
} tail_stats SEC(".maps");

SEC("xdp") int xdp_tail_entry(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = (void *)(long)ctx->data;
    count(&tail_stats, T_ENTRY, 1);
    if ((void *)(eth + 1) > data_end) return XDP_DROP;
    if (eth->h_proto == bpf_htons(ETH_P_IP))
        bpf_tail_call(ctx, &jmp_table, SLOT_IPV4);
    else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
        bpf_tail_call(ctx, &jmp_table, SLOT_IPV6);
    else
        bpf_tail_call(ctx, &jmp_table, SLOT_EMPTY);
    count(&tail_stats, T_MISS, 1);  // only reached when the slot was empty
    return XDP_PASS;
}

SEC("xdp") int xdp_tail_ipv4(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct iphdr *ip = (void *)(long)ctx->data + sizeof(struct ethhdr);
    count(&tail_stats, T_IPV4, 1);
    if ((void *)(ip + 1) > data_end) return XDP_DROP;
    if (ip->protocol == IPPROTO_TCP) bpf_tail_call(ctx, &jmp_table, SLOT_TCP);
    return XDP_PASS;
}

SEC("xdp") int xdp_tail_ipv6(struct xdp_md *ctx) {
    count(&tail_stats, T_IPV6, 1);
    return XDP_PASS;
}

SEC("xdp") int xdp_tail_tcp(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {(void *)(long)ctx->data + sizeof(struct ethhdr)};
    struct iphdr *ip;
    count(&tail_stats, T_TCP, 1);
    if (parse_ipv4(&c, data_end, &ip) != IPPROTO_TCP) return XDP_DROP;
    struct tcphdr *tcp = c.pos;
    if ((void *)(tcp + 1) > data_end) return XDP_DROP;
    if (tcp->dest == bpf_htons(23)) {
        count(&tail_stats, T_TELNET, 1);
        return XDP_DROP;
    }
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
