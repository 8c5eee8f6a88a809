// bpf_redirect to a configured ifindex (.rodata, default 1 = lo): IPv4 UDP frames are redirected,
// a redirect with non-zero flags (which the helper refuses with XDP_ABORTED) is tried for IPv4 TCP,
// the rest is passed. Under BPF_PROG_TEST_RUN without live frames nothing is transmitted: the
// program's return value (XDP_REDIRECT) is the result.
// Exercises: redirect (success and bad-flags paths).
#include "xdp_common.bpf.h"

const volatile __u32 cfg_ifindex = 1;

enum redir_stat { R_REDIRECTED, R_BAD_FLAGS, R_PASSED, R_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, R_MAX);
    __type(key, __u32);
    __type(value, __u64);
} redirect_stats SEC(".maps");

SEC("xdp") int xdp_redirect(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {(void *)(long)ctx->data};
    struct ethhdr *eth;
    struct iphdr *ip;
    if (parse_eth(&c, data_end, &eth, 0, 0) == ETH_P_IP) {
        int l4 = parse_ipv4(&c, data_end, &ip);
        if (l4 == IPPROTO_UDP) {
            count(&redirect_stats, R_REDIRECTED, 1);
            return bpf_redirect(cfg_ifindex, 0);
        }
        if (l4 == IPPROTO_TCP) {
            count(&redirect_stats, R_BAD_FLAGS, 1);
            return bpf_redirect(cfg_ifindex, 1);
        }
    }
    count(&redirect_stats, R_PASSED, 1);
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
