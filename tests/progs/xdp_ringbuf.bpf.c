// Ring buffer records. IPv4 frames: a record is reserved (bpf_ringbuf_reserve), filled and submitted;
// IPv6 frames: a record is built on the stack and copied in with bpf_ringbuf_output; other frames: a
// record is reserved and then discarded (it takes ring space but is never seen by the consumer).
// bpf_ringbuf_query gives the ring size (kept) and the unconsumed byte count (only whether it is
// non-zero is kept: it depends on when the consumer ran). All frames are passed. A failed reserve
// or output (ring full) is counted.
// Exercises: RINGBUF, ringbuf_reserve/submit/discard/output/query.
#include "xdp_common.bpf.h"

struct event {
    __u32 kind;  // 4 = IPv4 (reserve+submit), 6 = IPv6 (output)
    __u32 len;
    __u8 src[16];
    __u8 proto;
    __u8 pad[7];
};

struct rb_state {
    __u64 submitted;
    __u64 output;
    __u64 discarded;
    __u64 full;
    __u64 ring_size;
    __u64 had_unconsumed;  // frames after which BPF_RB_AVAIL_DATA was non-zero
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 16 * 1024);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct rb_state);
} rb_state SEC(".maps");

SEC("xdp") int xdp_ringbuf(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    void *data = (void *)(long)ctx->data;
    struct cursor c = {data};
    struct ethhdr *eth;
    __u32 zero = 0;
    struct rb_state *s = bpf_map_lookup_elem(&rb_state, &zero);
    if (!s) return XDP_ABORTED;

    int proto = parse_eth(&c, data_end, &eth, 0, 0);
    if (proto == ETH_P_IP) {
        struct iphdr *ip;
        if (parse_ipv4(&c, data_end, &ip) >= 0) {
            struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
            if (!e) {
                s->full++;
                return XDP_PASS;
            }
            __builtin_memset(e, 0, sizeof(*e));
            e->kind = 4;
            e->len = data_end - data;
            __builtin_memcpy(e->src, &ip->saddr, 4);
            e->proto = ip->protocol;
            bpf_ringbuf_submit(e, 0);
            s->submitted++;
            goto out;
        }
    } else if (proto == ETH_P_IPV6) {
        struct ipv6hdr *ip6;
        if (parse_ipv6(&c, data_end, &ip6) >= 0) {
            struct event e = {.kind = 6, .len = data_end - data, .proto = ip6->nexthdr};
            __builtin_memcpy(e.src, &ip6->saddr, 16);
            if (bpf_ringbuf_output(&events, &e, sizeof(e), 0))
                s->full++;
            else
                s->output++;
            goto out;
        }
    }
    struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        s->full++;
        return XDP_PASS;
    }
    bpf_ringbuf_discard(e, 0);
    s->discarded++;
out:
    s->ring_size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);
    if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) != 0) s->had_unconsumed++;
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
