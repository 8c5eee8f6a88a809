// The demo's load balancer: IPv4 TCP/UDP to the VIP 198.18.10.1 is spread over four reals
// (198.19.0.1-4) by a hash of the 5-tuple, remembered per flow in an LRU_HASH, and encapsulated
// in IPIP toward the real (adjust_head(-20), MACs swapped, outer header checksummed with
// bpf_csum_diff); XDP_TX sends it back out. Everything else goes to the kernel. Per-real packet
// counts in a PERCPU_ARRAY. The addresses are RFC 2544's benchmarking range.
#include "xdp_common.bpf.h"

#define REALS 4

struct flow {
    __be32 src, dst;
    __be16 sport, dport;
    __u8 proto, pad[3];
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct flow);
    __type(value, __u32);  // the real's index
} flows SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, REALS + 1);
    __type(key, __u32);
    __type(value, __u64);  // packets per real; [REALS]: new flows
} real_stats SEC(".maps");

const volatile __be32 vip = bpf_htonl(0xc6120a01);          // 198.18.10.1
const volatile __be32 real_base = bpf_htonl(0xc6130000);    // 198.19.0.0: reals are .1 to .4

SEC("xdp") int xdp_demo_lb(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) return XDP_PASS;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || ip->ihl != 5 || ip->daddr != vip) return XDP_PASS;
    if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET_MASK)) return XDP_PASS;
    if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP) return XDP_PASS;
    struct udphdr *l4 = (void *)(ip + 1);  // ports sit at the same offsets in TCP
    if ((void *)(l4 + 1) > data_end) return XDP_DROP;

    struct flow f = {ip->saddr, ip->daddr, l4->source, l4->dest, ip->protocol};
    __u32 real, *known = bpf_map_lookup_elem(&flows, &f);
    if (known) {
        real = *known;
    } else {
        real = mix32(mix32(mix32(0, f.src), f.sport | (__u32)f.dport << 16), f.proto) % REALS;
        bpf_map_update_elem(&flows, &f, &real, BPF_ANY);
        count(&real_stats, REALS, 1);
    }
    if (real >= REALS) return XDP_ABORTED;
    count(&real_stats, real, 1);

    __u16 inner_len = bpf_ntohs(ip->tot_len);
    unsigned char src_mac[ETH_ALEN], dst_mac[ETH_ALEN];
    __builtin_memcpy(src_mac, eth->h_dest, ETH_ALEN);
    __builtin_memcpy(dst_mac, eth->h_source, ETH_ALEN);
    if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr))) return XDP_DROP;
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    eth = data;
    struct iphdr *outer = (void *)(eth + 1);
    if ((void *)(outer + 1) > data_end) return XDP_DROP;
    __builtin_memcpy(eth->h_source, src_mac, ETH_ALEN);
    __builtin_memcpy(eth->h_dest, dst_mac, ETH_ALEN);
    eth->h_proto = bpf_htons(ETH_P_IP);
    outer->version = 4;
    outer->ihl = 5;
    outer->tos = 0;
    outer->tot_len = bpf_htons(inner_len + sizeof(struct iphdr));
    outer->id = 0;
    outer->frag_off = 0;
    outer->ttl = 64;
    outer->protocol = IPPROTO_IPIP;
    outer->check = 0;
    outer->saddr = vip;
    outer->daddr = real_base | bpf_htonl(real + 1);
    outer->check = csum_fold(bpf_csum_diff(0, 0, (__be32 *)outer, sizeof(*outer), 0));
    return XDP_TX;
}

char _license[] SEC("license") = "GPL";
