// IPv4 forwarding step with checksums done by bpf_csum_diff. Verifies the received header checksum
// over the whole header including options (copied to the stack with bpf_xdp_load_bytes, up to 60
// bytes), drops a bad one; passes TTL <= 1 up to the stack (it would answer with ICMP time exceeded);
// otherwise decrements the TTL and updates the checksum incrementally (RFC 1624: the difference of
// the 16-bit word holding TTL and protocol), then recomputes it from scratch over the new header and
// drops if the two disagree; swaps the MAC addresses and returns XDP_TX.
// Exercises: csum_diff (full sum and incremental), xdp_load_bytes into a variable-length stack buffer.
#include "xdp_common.bpf.h"

enum csum_stat { CS_FORWARDED, CS_BAD_CSUM, CS_TTL_EXPIRED, CS_MISMATCH, CS_NOT_IPV4, CS_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, CS_MAX);
    __type(key, __u32);
    __type(value, __u64);
} csum_stats SEC(".maps");

// One's complement sum of the IPv4 header at packet offset `off`, `ihl` 32-bit words long.
INLINE int header_sum(struct xdp_md *ctx, __u32 off, __u32 ihl, __u16 *folded) {
    __be32 words[15] = {};
    __u64 len = opaque(ihl * 4);  // 64-bit: a 32-bit copy would be range-checked, not the argument
    if (len < sizeof(struct iphdr) || len > sizeof(words)) return -1;
    if (bpf_xdp_load_bytes(ctx, off, words, len) < 0) return -1;
    *folded = csum_fold(bpf_csum_diff(0, 0, words, len, 0));
    return 0;
}

SEC("xdp") int xdp_ttl_csum(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl < 5) {
        count(&csum_stats, CS_NOT_IPV4, 1);
        return XDP_PASS;
    }
    __u32 ihl = ip->ihl;
    __u16 sum;
    // A correct header sums (checksum field included) to 0xffff, which folds to 0.
    if (header_sum(ctx, sizeof(*eth), ihl, &sum) < 0 || sum != 0) {
        count(&csum_stats, CS_BAD_CSUM, 1);
        return XDP_DROP;
    }
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    eth = data;
    ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end) return XDP_ABORTED;
    if (ip->ttl <= 1) {
        count(&csum_stats, CS_TTL_EXPIRED, 1);
        return XDP_PASS;
    }

    // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), with m the 16-bit word holding TTL and protocol.
    // bpf_csum_diff(from, 4, to, 4, seed) adds ~from + to to the seed; the words are padded to 32 bits.
    __be32 old_word = *(__be16 *)&ip->ttl;
    ip->ttl--;
    __be32 new_word = *(__be16 *)&ip->ttl;
    __u32 seed = (__u16)~ip->check;
    ip->check = csum_fold(bpf_csum_diff(&old_word, sizeof(old_word), &new_word, sizeof(new_word), seed));
    __u16 expect = ip->check;

    // Recompute from scratch: zero the checksum field, sum the header, compare.
    ip->check = 0;
    if (header_sum(ctx, sizeof(*eth), ihl, &sum) < 0) return XDP_ABORTED;
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    eth = data;
    ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end) return XDP_ABORTED;
    ip->check = sum;
    if (sum != expect) {
        count(&csum_stats, CS_MISMATCH, 1);
        return XDP_DROP;
    }
    __u8 tmp[ETH_ALEN];
    __builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
    __builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
    __builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
    count(&csum_stats, CS_FORWARDED, 1);
    return XDP_TX;
}

char _license[] SEC("license") = "GPL";
