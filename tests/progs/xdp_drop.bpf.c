// The smallest XDP program: drop everything. Its cost is the engine's per-run floor.
#include <linux/bpf.h>

__attribute__((section("xdp"), used)) int xdp_drop(struct xdp_md *ctx) { return XDP_DROP; }

char _license[] __attribute__((section("license"), used)) = "GPL";
