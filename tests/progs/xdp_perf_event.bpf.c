// bpf_perf_event_output of a small record plus up to 64 bytes of the packet (the upper 32 bits of
// the flags ask the helper to append that many packet bytes) on the current CPU's slot of a
// PERF_EVENT_ARRAY (max_entries left 0: libbpf sizes it to the possible CPUs). The setup opens no
// perf events, so the helper returns -ENOENT; the return code of the last call and ok/error counts
// are kept, which is what the differential comparison checks. All frames are passed.
// tests/control/perf_event_test.cpp opens libbpf's perf_buffer on the same program and compares
// the records delivered by the kernel and by xdprt.
// Exercises: PERF_EVENT_ARRAY, perf_event_output with BPF_F_CURRENT_CPU and a packet sample.
#include "xdp_common.bpf.h"

struct sample_hdr {
    __u32 len;
    __u16 proto;
    __u16 sampled;
};

struct perf_result {
    __s64 last_rc;
    __u64 ok;
    __u64 failed;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct perf_result);
} perf_result SEC(".maps");

SEC("xdp") int xdp_perf_event(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    void *data = (void *)(long)ctx->data;
    __u32 zero = 0;
    struct perf_result *r = bpf_map_lookup_elem(&perf_result, &zero);
    if (!r) return XDP_ABORTED;
    __u64 len = data_end - data;
    struct sample_hdr h = {.len = len, .proto = 0xffff, .sampled = len < 64 ? len : 64};
    if (data + sizeof(struct ethhdr) <= data_end) h.proto = bpf_ntohs(((struct ethhdr *)data)->h_proto);
    __u64 flags = BPF_F_CURRENT_CPU | ((__u64)h.sampled << 32);
    long rc = bpf_perf_event_output(ctx, &perf_events, flags, &h, sizeof(h));
    r->last_rc = rc;
    __sync_fetch_and_add(rc == 0 ? &r->ok : &r->failed, 1);
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
