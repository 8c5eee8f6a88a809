// Counters updated under bpf_spin_lock: one global record in an ARRAY (packets, bytes, min and max
// frame length, which need a read-modify-write of several fields) and one record per EtherType in a
// HASH whose value also embeds a lock. The verdict is XDP_PASS, or XDP_DROP for a frame longer than
// every earlier one (a new maximum), decided inside the critical section.
// Exercises: spin_lock, spin_unlock (in ARRAY and HASH values), map_update_elem of a locked value.
#include "xdp_common.bpf.h"

struct locked_totals {
    struct bpf_spin_lock lock;
    __u32 pad;
    __u64 packets;
    __u64 bytes;
    __u64 min_len;
    __u64 max_len;
};

struct locked_proto {
    struct bpf_spin_lock lock;
    __u32 packets;
    __u64 bytes;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct locked_totals);
} totals SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 32);
    __type(key, __u32);  // EtherType (host order), 0xffffffff for runts
    __type(value, struct locked_proto);
} per_proto SEC(".maps");

SEC("xdp") int xdp_spin_lock(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    void *data = (void *)(long)ctx->data;
    __u64 len = data_end - data;
    __u32 zero = 0;
    struct locked_totals *t = bpf_map_lookup_elem(&totals, &zero);
    if (!t) return XDP_ABORTED;
    int verdict = XDP_PASS;
    bpf_spin_lock(&t->lock);
    t->packets++;
    t->bytes += len;
    if (t->min_len == 0 || len < t->min_len) t->min_len = len;
    if (len > t->max_len) {
        if (t->packets > 1) verdict = XDP_DROP;
        t->max_len = len;
    }
    bpf_spin_unlock(&t->lock);

    __u32 key = 0xffffffff;
    if (data + sizeof(struct ethhdr) <= data_end) key = bpf_ntohs(((struct ethhdr *)data)->h_proto);
    struct locked_proto *p = bpf_map_lookup_elem(&per_proto, &key);
    if (!p) {
        struct locked_proto init = {};
        bpf_map_update_elem(&per_proto, &key, &init, BPF_NOEXIST);
        p = bpf_map_lookup_elem(&per_proto, &key);
        if (!p) return verdict;
    }
    bpf_spin_lock(&p->lock);
    p->packets++;
    p->bytes += len;
    bpf_spin_unlock(&p->lock);
    return verdict;
}

char _license[] SEC("license") = "GPL";
