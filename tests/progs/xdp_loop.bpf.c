// A 64-iteration bounded loop over packet bytes (a checksum-like fold); the action depends on the
// result so the loop cannot be optimised away.
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

SEC("xdp") int xdp_loop(struct xdp_md *ctx) {
    unsigned char *data = (void *)(long)ctx->data;
    unsigned char *data_end = (void *)(long)ctx->data_end;
    if (data + 64 > data_end) return XDP_DROP;
    unsigned int acc = 0;
#pragma clang loop unroll(disable)
    for (int i = 0; i < 64; i++) acc = (acc << 5) + acc + data[i];
    return (acc & 1) ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
