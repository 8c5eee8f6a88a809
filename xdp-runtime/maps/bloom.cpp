// BLOOM_FILTER (kernel/bpf/bloom_filter.c): a bit array from offset 0, sized and hashed as the
// kernel does, so the same values give the same bits and the same false positives:
//   - k = map_extra & 0xf hash functions (0 means 5); bits = max_entries * k * 7 / 5 (u32
//     arithmetic, 7/5 ~ 1/ln 2), at least 64, rounded up to a power of two; 2^32 bits when that
//     overflows or exceeds 2^31.
//   - bit i of value v: jhash(v, value_size, seed + i) & (bits - 1), seed 0 with BPF_F_ZERO_SEED.
// jhash is Bob Jenkins' lookup3 hashlittle as the kernel's <linux/jhash.h> uses it (its jhash2
// over u32 words gives the same result for 4-byte-multiple values on little-endian hosts).
//
// Lock-free both ways, like the kernel's set_bit/test_bit: push ORs whole words atomically, peek
// reads them; a peek racing a push of the same value may miss it, as in the kernel.
#include <bit>
#include <random>

#include "maps/types.h"

namespace xdprt::maps {

namespace {

constexpr uint32_t bloom_flags = BPF_F_NUMA_NODE | BPF_F_ZERO_SEED | access_mask;

enum state_slot { s_mask, s_hashes, s_seed };

constexpr uint32_t rol32(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

// lookup3's mix and final steps, on (a, b, c).
constexpr void jhash_mix(uint32_t& a, uint32_t& b, uint32_t& c) {
    a -= c; a ^= rol32(c, 4); c += b;
    b -= a; b ^= rol32(a, 6); a += c;
    c -= b; c ^= rol32(b, 8); b += a;
    a -= c; a ^= rol32(c, 16); c += b;
    b -= a; b ^= rol32(a, 19); a += c;
    c -= b; c ^= rol32(b, 4); b += a;
}
constexpr void jhash_final(uint32_t& a, uint32_t& b, uint32_t& c) {
    c ^= b; c -= rol32(b, 14);
    a ^= c; a -= rol32(c, 11);
    b ^= a; b -= rol32(a, 25);
    c ^= b; c -= rol32(b, 16);
    a ^= c; a -= rol32(c, 4);
    b ^= a; b -= rol32(a, 14);
    c ^= b; c -= rol32(b, 24);
}

// Bytes are taken little-endian, 12 at a time; the last 1-12 bytes go through the final mix
// zero-padded; a length of 0 returns the initial c.
uint32_t jhash(const void* data, uint32_t length, uint32_t initval) {
    const auto* k = static_cast<const std::byte*>(data);
    uint32_t a = 0xdeadbeef + length + initval, b = a, c = a;
    auto add = [&](const std::byte* p, size_t n) {
        uint32_t w[3] = {};
        std::memcpy(w, p, n);
        a += w[0];
        b += w[1];
        c += w[2];
    };
    for (; length > 12; length -= 12, k += 12) {
        add(k, 12);
        jhash_mix(a, b, c);
    }
    if (length == 0) return c;
    add(k, length);
    jhash_final(a, b, c);
    return c;
}

struct filter {
    std::atomic<uint64_t>* words;
    uint32_t mask, hashes, seed, value_size;

    explicit filter(map& m)
        : words(reinterpret_cast<std::atomic<uint64_t>*>(m.base())),
          mask(uint32_t(m.header().type_state[s_mask])), hashes(uint32_t(m.header().type_state[s_hashes])),
          seed(uint32_t(m.header().type_state[s_seed])), value_size(m.spec().value_size) {}

    uint32_t bit(const void* value, uint32_t i) const { return jhash(value, value_size, seed + i) & mask; }
};

// bloom_map_alloc's sizing: the bit mask (bits - 1) and the bytes of the bit array.
std::pair<uint32_t, size_t> bitset_for(const spec& s) {
    uint32_t k = (s.extra & 0xf) ? uint32_t(s.extra & 0xf) : 5;
    uint32_t bits;
    if (__builtin_mul_overflow(s.max_entries, k, &bits) || __builtin_mul_overflow(bits / 5, 7u, &bits) ||
        bits > (1u << 31))
        return {UINT32_MAX, (size_t(1) << 32) / 8};
    bits = bits <= 64 ? 64 : std::bit_ceil(bits);
    return {bits - 1, bits / 8};
}

result<void> bloom_check(const spec& s) {
    // bloom_map_alloc_check runs before the attribute checks of bloom_map_alloc.
    if (s.value_size > kmalloc_max_size) return fail(E2BIG, "bloom_filter: value_size {} too large", s.value_size);
    if (s.key_size != 0 || s.value_size == 0 || s.max_entries == 0 || (s.flags & ~bloom_flags) ||
        !access_ok(s.flags) || (s.extra & ~uint64_t(0xf)))
        return fail(EINVAL, "bloom_filter: key_size 0, value_size and max_entries non-zero, map_extra 0-15");
    return {};
}

size_t bloom_bytes(const spec& s) { return bitset_for(s).second; }

result<void> bloom_init(map& m) {
    const spec& s = m.spec();
    map_header& h = m.header();
    h.type_state[s_mask] = bitset_for(s).first;
    h.type_state[s_hashes] = (s.extra & 0xf) ? (s.extra & 0xf) : 5;
    h.type_state[s_seed] = (s.flags & BPF_F_ZERO_SEED) ? 0 : std::random_device{}();
    return {};
}

long bloom_push(map& m, const void* value, uint64_t flags) noexcept {
    if (flags != BPF_ANY) return -EINVAL;
    filter f(m);
    for (uint32_t i = 0; i < f.hashes; ++i) {
        uint32_t b = f.bit(value, i);
        std::atomic<uint64_t>& w = f.words[b / 64];
        uint64_t set = uint64_t(1) << (b % 64);
        if (!(w.load(std::memory_order_relaxed) & set)) w.fetch_or(set, std::memory_order_relaxed);
    }
    return 0;
}

long bloom_peek(map& m, void* value) noexcept {
    filter f(m);
    for (uint32_t i = 0; i < f.hashes; ++i) {
        uint32_t b = f.bit(value, i);
        if (!(f.words[b / 64].load(std::memory_order_relaxed) & (uint64_t(1) << (b % 64)))) return -ENOENT;
    }
    return 0;
}

// What bloom_filter.c answers for everything else.
long bloom_pop(map&, void*) noexcept { return -EOPNOTSUPP; }
void* bloom_lookup(map&, const void*) noexcept { return nullptr; }
long bloom_update(map&, const void*, const void*, uint64_t) noexcept { return -EINVAL; }
long bloom_erase(map&, const void*) noexcept { return -EOPNOTSUPP; }

// LOOKUP_ELEM tests the value userspace passed in.
result<void> bloom_copy_out(map& m, const void*, void* value, uint64_t) {
    if (bloom_peek(m, value) < 0) return fail(ENOENT, "bloom_filter: value not present");
    return {};
}
result<void> bloom_store(map& m, const void*, const void* value, uint64_t flags) {
    if (bloom_push(m, value, flags) < 0) return fail(EINVAL, "bloom_filter: update flags {:#x}, only BPF_ANY", flags);
    return {};
}
result<void> bloom_remove(map&, const void*) { return fail(EOPNOTSUPP, "bloom_filter: values cannot be deleted"); }
result<void> bloom_next_key(map&, const void*, void*) { return fail(EOPNOTSUPP, "bloom_filter: no keys"); }

}  // namespace

const ops bloom_filter_ops = {
    .name = "bloom_filter",
    .check = bloom_check,
    .data_bytes = bloom_bytes,
    .init = bloom_init,
    .lookup = bloom_lookup,
    .update = bloom_update,
    .erase = bloom_erase,
    .push = bloom_push,
    .pop = bloom_pop,
    .peek = bloom_peek,
    .copy_out = bloom_copy_out,
    .store = bloom_store,
    .remove = bloom_remove,
    .next_key = bloom_next_key,
    .lookup_and_delete = nullptr,
    .store_object = nullptr,
};

}  // namespace xdprt::maps
