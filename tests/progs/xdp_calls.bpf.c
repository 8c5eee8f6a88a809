// A chain of bpf-to-bpf calls (noinline subprograms), four deep, on packet bytes.
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define NOINLINE static __attribute__((noinline))

NOINLINE unsigned int mix4(unsigned int a, unsigned int b) { return (a ^ b) * 0x9e3779b1u; }
NOINLINE unsigned int mix3(unsigned int a, unsigned int b) { return mix4(a + 1, b) + mix4(b, a); }
NOINLINE unsigned int mix2(unsigned int a, unsigned int b) { return mix3(a, b >> 1) ^ b; }
NOINLINE unsigned int mix1(unsigned int a, unsigned int b) { return mix2(a, b) + mix2(b, a); }

SEC("xdp") int xdp_calls(struct xdp_md *ctx) {
    unsigned char *data = (void *)(long)ctx->data;
    unsigned char *data_end = (void *)(long)ctx->data_end;
    if (data + 8 > data_end) return XDP_DROP;
    unsigned int h = mix1(*(unsigned int *)data, *(unsigned int *)(data + 4));
    return (h & 1) ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
