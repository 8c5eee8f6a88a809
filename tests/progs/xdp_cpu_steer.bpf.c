// CPUMAP steering with a cpumap program: IPv4 UDP goes to CPU (destination port & 1) through
// `cpus`; the entry's program (`cpu_stage`, BPF_XDP_CPUMAP) counts, per CPU id it ran on, the
// frames it saw, drops UDP to port 7 and passes the rest to the kernel. Other frames are passed.
// Exercises: CPUMAP with and without entry programs, bpf_get_smp_processor_id on the target CPU.
#include "xdp_common.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_CPUMAP);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, struct bpf_cpumap_val);
} cpus SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u64);  // frames cpu_stage saw, by the CPU id it ran on
} stage_cpu SEC(".maps");

INLINE int udp_dport(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) return -1;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP) return -1;
    struct udphdr *udp = (void *)(ip + 1);
    if ((void *)(udp + 1) > data_end) return -1;
    return bpf_ntohs(udp->dest);
}

SEC("xdp") int xdp_cpu_steer(struct xdp_md *ctx) {
    int port = udp_dport(ctx);
    if (port < 0) return XDP_PASS;
    return bpf_redirect_map(&cpus, port & 1, XDP_PASS);
}

SEC("xdp/cpumap") int cpu_stage(struct xdp_md *ctx) {
    __u32 cpu = bpf_get_smp_processor_id();
    __u64 *n = bpf_map_lookup_elem(&stage_cpu, &cpu);
    if (n) __sync_fetch_and_add(n, 1);
    return udp_dport(ctx) == 7 ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
