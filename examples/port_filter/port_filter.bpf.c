// The example's XDP program: drops UDP to the ports in `blocked`, passes everything else, and
// counts both per CPU (PERCPU_ARRAY: index 0 passed, 1 dropped).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u16);  // UDP destination port, host order
    __type(value, __u8);
} blocked SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} verdicts SEC(".maps");

static __always_inline int count(__u32 which, int action) {
    __u64 *n = bpf_map_lookup_elem(&verdicts, &which);
    if (n) *n += 1;
    return action;
}

SEC("xdp") int port_filter(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) return count(0, XDP_PASS);
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP) return count(0, XDP_PASS);
    struct udphdr *udp = (void *)ip + ip->ihl * 4;
    if ((void *)(udp + 1) > data_end) return count(0, XDP_PASS);
    __u16 port = bpf_ntohs(udp->dest);
    if (bpf_map_lookup_elem(&blocked, &port)) return count(1, XDP_DROP);
    return count(0, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
