// QUEUE and STACK maps of 8 IPv4 source addresses. IPv4 frames push their source onto both: the
// queue with BPF_EXIST (when full, the oldest element is dropped to make room), the stack without
// (when full the push fails with -E2BIG, which is counted). IPv6 frames pop one element from each
// and keep the popped values; other frames peek at both heads. Return codes of the last push, pop
// and peek on each map are kept. All frames are passed.
// Exercises: QUEUE, STACK, map_push_elem (with and without BPF_EXIST), map_pop_elem, map_peek_elem.
#include "xdp_common.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_QUEUE);
    __uint(max_entries, 8);
    __type(value, __u32);
} src_queue SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_STACK);
    __uint(max_entries, 8);
    __type(value, __u32);
} src_stack SEC(".maps");

struct qs_state {
    __s64 queue_push_rc, stack_push_rc;
    __s64 queue_pop_rc, stack_pop_rc;
    __s64 queue_peek_rc, stack_peek_rc;
    __u32 queue_popped, stack_popped;  // last values popped
    __u32 queue_head, stack_head;      // last values peeked
    __u64 stack_full;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct qs_state);
} qs_state SEC(".maps");

SEC("xdp") int xdp_queue_stack(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {(void *)(long)ctx->data};
    struct ethhdr *eth;
    __u32 zero = 0;
    struct qs_state *s = bpf_map_lookup_elem(&qs_state, &zero);
    if (!s) return XDP_ABORTED;

    int proto = parse_eth(&c, data_end, &eth, 0, 0);
    if (proto == ETH_P_IP) {
        struct iphdr *ip;
        if (parse_ipv4(&c, data_end, &ip) < 0) return XDP_PASS;
        __u32 src = bpf_ntohl(ip->saddr);
        s->queue_push_rc = bpf_map_push_elem(&src_queue, &src, BPF_EXIST);
        s->stack_push_rc = bpf_map_push_elem(&src_stack, &src, 0);
        if (s->stack_push_rc) s->stack_full++;
    } else if (proto == ETH_P_IPV6) {
        __u32 v = 0;
        s->queue_pop_rc = bpf_map_pop_elem(&src_queue, &v);
        s->queue_popped = v;
        v = 0;
        s->stack_pop_rc = bpf_map_pop_elem(&src_stack, &v);
        s->stack_popped = v;
    } else {
        __u32 v = 0;
        s->queue_peek_rc = bpf_map_peek_elem(&src_queue, &v);
        s->queue_head = v;
        v = 0;
        s->stack_peek_rc = bpf_map_peek_elem(&src_stack, &v);
        s->stack_head = v;
    }
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
