// IPv4 parser: validates version, IHL (>= 5), total length and header fit; walks the options under
// bpf_loop (at most 40 bytes, RFC 791 section 3.1: EOL, NOP, and type-length options) counting
// each kind; classifies fragments (first, middle, last) from frag_off; checks that the TCP, UDP or
// ICMP header of unfragmented and first fragments fits. Malformed packets are dropped (XDP_DROP),
// the rest passed; non-IPv4 frames are passed without counting.
// Exercises: ARRAY counters, bpf_loop, xdp_load_bytes with a variable length, IHL arithmetic.
#include "xdp_common.bpf.h"

enum opt_class { OPT_EOL, OPT_NOP, OPT_RR, OPT_TS, OPT_RA, OPT_OTHER, OPT_MALFORMED, OPT_MAX };
enum frag_class { FRAG_NONE, FRAG_FIRST, FRAG_MIDDLE, FRAG_LAST, FRAG_MAX };
enum ip_class { IP_OK, IP_BAD_HDR, IP_BAD_LEN, IP_BAD_L4, IP_TCP, IP_UDP, IP_ICMP, IP_OTHER_L4, IP_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, OPT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} opt_stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, FRAG_MAX);
    __type(key, __u32);
    __type(value, __u64);
} frag_stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, IP_MAX);
    __type(key, __u32);
    __type(value, __u64);
} ip_stats SEC(".maps");

// The option walk runs under bpf_loop and reads each option with bpf_xdp_load_bytes. As an ordinary
// bounded loop, or indexing a stack copy, the offset becomes a precise scalar and the verifier has to
// follow every iteration separately (it gave up at 1M instructions); a helper offset stays imprecise,
// so the callback's states converge after a few passes.
struct opt_walk {
    struct xdp_md *ctx;
    __u32 off;  // from the packet start
    __u32 end;  // ip + ihl * 4
    int bad;
};

static long opt_step(__u32 i, void *arg) {
    struct opt_walk *w = arg;
    __u8 opt[2] = {};
    __u32 off = w->off;
    if (off >= w->end) return 1;
    if (bpf_xdp_load_bytes(w->ctx, off, opt, 1) < 0) {
        w->bad = 1;
        return 1;
    }
    if (opt[0] == IPOPT_END) {
        count(&opt_stats, OPT_EOL, 1);
        return 1;
    }
    if (opt[0] == IPOPT_NOOP) {
        count(&opt_stats, OPT_NOP, 1);
        w->off = off + 1;
        return 0;
    }
    if (off + 2 > w->end || bpf_xdp_load_bytes(w->ctx, off, opt, 2) < 0 || opt[1] < 2 || off + opt[1] > w->end) {
        w->bad = 1;
        return 1;
    }
    __u32 k = opt[0] == IPOPT_RR ? OPT_RR : opt[0] == IPOPT_TIMESTAMP ? OPT_TS : opt[0] == IPOPT_RA ? OPT_RA : OPT_OTHER;
    count(&opt_stats, k, 1);
    w->off = off + opt[1];
    return 0;
}

// Walks the options area [ip + 20, ip + ihl * 4). Returns 0, or -1 for a malformed option.
INLINE int walk_options(struct xdp_md *ctx, __u32 ip_off, __u32 ihl) {
    if (ihl <= 5) return 0;
    struct opt_walk w = {.ctx = ctx, .off = ip_off + sizeof(struct iphdr), .end = ip_off + ihl * 4};
    bpf_loop(40, opt_step, &w, 0);
    return w.bad ? -1 : 0;
}

SEC("xdp") int xdp_parse_ipv4(struct xdp_md *ctx) {
    void *data_end = (void *)(long)ctx->data_end;
    struct cursor c = {(void *)(long)ctx->data};
    struct ethhdr *eth;
    struct iphdr *ip;

    int proto = parse_eth(&c, data_end, &eth, 0, 0);
    if (proto < 0) return XDP_DROP;
    if (proto != ETH_P_IP) return XDP_PASS;
    int l4 = parse_ipv4(&c, data_end, &ip);
    if (l4 < 0) {
        count(&ip_stats, IP_BAD_HDR, 1);
        return XDP_DROP;
    }
    __u16 tot_len = bpf_ntohs(ip->tot_len);
    if (tot_len < ip->ihl * 4 || (void *)ip + tot_len > data_end) {
        count(&ip_stats, IP_BAD_LEN, 1);
        return XDP_DROP;
    }
    if (walk_options(ctx, (void *)ip - (void *)(long)ctx->data, ip->ihl) < 0) {
        count(&opt_stats, OPT_MALFORMED, 1);
        return XDP_DROP;
    }
    __u16 frag = bpf_ntohs(ip->frag_off);
    __u16 offset = frag & IP_OFFSET_MASK;
    int fclass = !(frag & IP_MF) && offset == 0 ? FRAG_NONE : offset == 0 ? FRAG_FIRST : (frag & IP_MF) ? FRAG_MIDDLE : FRAG_LAST;
    count(&frag_stats, fclass, 1);
    count(&ip_stats, IP_OK, 1);
    if (offset != 0) return XDP_PASS;  // no L4 header in later fragments

    __u32 need = l4 == IPPROTO_TCP ? sizeof(struct tcphdr) : l4 == IPPROTO_UDP ? sizeof(struct udphdr) : l4 == IPPROTO_ICMP ? sizeof(struct icmp4hdr) : 0;
    if (c.pos + need > data_end) {
        count(&ip_stats, IP_BAD_L4, 1);
        return XDP_DROP;
    }
    if (l4 == IPPROTO_TCP) {
        struct tcphdr *tcp = c.pos;
        if ((void *)(tcp + 1) > data_end || tcp->doff < 5) {
            count(&ip_stats, IP_BAD_L4, 1);
            return XDP_DROP;
        }
        count(&ip_stats, IP_TCP, 1);
    } else if (l4 == IPPROTO_UDP) {
        count(&ip_stats, IP_UDP, 1);
    } else if (l4 == IPPROTO_ICMP) {
        count(&ip_stats, IP_ICMP, 1);
    } else {
        count(&ip_stats, IP_OTHER_L4, 1);
    }
    return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
