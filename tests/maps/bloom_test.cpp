// BLOOM_FILTER against the kernel: errnos and, with BPF_F_ZERO_SEED, the very same bits. The
// expected false positives below were read from the 6.18 host's own bloom filters (libbpf,
// same map attributes, one value pushed, every candidate looked up), so they pin the bit-array
// sizing, jhash (every tail length and the 12-byte blocks) and the seed + i of each function.
#include <random>

#include "maps_test_util.h"

namespace xdprt::maps {
namespace {

using testing::code;
using testing::create_errno;
using testing::make_spec;
using testing::must_create;

constexpr int enotsupp = 524;

spec bloom(uint32_t value_size, uint32_t max_entries, uint64_t hashes, uint32_t flags = BPF_F_ZERO_SEED) {
    auto s = make_spec(BPF_MAP_TYPE_BLOOM_FILTER, 0, value_size, max_entries, flags);
    s.extra = hashes;
    return s;
}

TEST(BloomFilter, CreateChecksAsTheKernel) {
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_BLOOM_FILTER, 4, 4, 10)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_BLOOM_FILTER, 0, 0, 10)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_BLOOM_FILTER, 0, 4, 0)), EINVAL);
    EXPECT_EQ(create_errno(bloom(4, 10, 16, 0)), EINVAL);
    EXPECT_EQ(create_errno(bloom(4, 10, 15, 0)), 0);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_BLOOM_FILTER, 0, 4, 10, BPF_F_NO_PREALLOC)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_BLOOM_FILTER, 0, (1u << 22) + 1, 10)), E2BIG);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_BLOOM_FILTER, 4, (1u << 22) + 1, 0)), E2BIG) << "checked first";
    // The overflowing size: 2^32 bits, 512 MiB of sparse memory.
    auto m = must_create(make_spec(BPF_MAP_TYPE_BLOOM_FILTER, 0, 4, 0xffffffffu));
    ASSERT_TRUE(m);
    EXPECT_EQ(m->bytes(), (size_t(1) << 29) + 4096);
    uint32_t v = 12345;
    EXPECT_EQ(code(update_elem(*m, nullptr, &v, BPF_ANY)), 0);
    EXPECT_EQ(code(lookup_elem(*m, nullptr, &v, 0)), 0);
}

TEST(BloomFilter, CommandsAsTheKernel) {
    auto m = must_create(bloom(4, 100, 0));
    uint32_t v = 7, k = 0;
    EXPECT_EQ(code(lookup_elem(*m, nullptr, &v, 0)), ENOENT);
    EXPECT_EQ(code(lookup_elem(*m, &k, &v, 0)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, nullptr, &v, BPF_EXIST)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, nullptr, &v, BPF_NOEXIST)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, &k, &v, BPF_ANY)), EINVAL);
    ASSERT_EQ(code(update_elem(*m, nullptr, &v, BPF_ANY)), 0);
    EXPECT_EQ(code(lookup_elem(*m, nullptr, &v, 0)), 0);
    EXPECT_EQ(v, 7u) << "the tested value is left as it was";
    EXPECT_EQ(code(lookup_elem(*m, nullptr, &v, BPF_F_LOCK)), EINVAL);
    EXPECT_EQ(code(lookup_and_delete_elem(*m, nullptr, &v, 0)), enotsupp);
    EXPECT_EQ(code(delete_elem(*m, nullptr)), EOPNOTSUPP);
    EXPECT_EQ(code(get_next_key(*m, nullptr, &k)), EOPNOTSUPP);

    EXPECT_EQ(m->ops().push(*m, &v, BPF_EXIST), -EINVAL);
    EXPECT_EQ(m->ops().peek(*m, &v), 0);
    EXPECT_EQ(m->ops().pop(*m, &v), -EOPNOTSUPP);
    EXPECT_EQ(m->ops().update(*m, &k, &v, 0), -EINVAL);
    EXPECT_EQ(m->ops().erase(*m, &k), -EOPNOTSUPP);
}

// The counters x < range that test positive when written at byte `at` of the template
// {1, 2, ..., value_size} (the value each case pushed, for the longer values).
std::vector<uint32_t> positives(map& m, uint32_t value_size, uint32_t at, uint32_t range) {
    std::vector<uint8_t> t(value_size);
    for (uint32_t i = 0; i < value_size; ++i) t[i] = uint8_t(i + 1);
    std::vector<uint32_t> out;
    for (uint32_t x = 0; x < range; ++x) {
        std::memcpy(t.data() + at, &x, 4);
        if (m.ops().peek(m, t.data()) == 0) out.push_back(x);
    }
    return out;
}

TEST(BloomFilter, SameBitsAsTheKernel) {
    using v = std::vector<uint32_t>;
    {  // 4-byte values, one function, max_entries 1: 64 bits.
        auto m = must_create(bloom(4, 1, 1));
        uint32_t one = 1;
        ASSERT_EQ(m->ops().push(*m, &one, BPF_ANY), 0);
        EXPECT_EQ(positives(*m, 4, 0, 300), (v{1, 13, 84, 117, 141, 188}));
    }
    {  // max_entries 100: 100 * 7 / 5 = 140 bits, rounded up to 256.
        auto m = must_create(bloom(4, 100, 1));
        uint32_t one = 1;
        ASSERT_EQ(m->ops().push(*m, &one, BPF_ANY), 0);
        EXPECT_EQ(positives(*m, 4, 0, 2000), (v{1, 812, 914, 933, 971, 1091, 1488, 1591, 1982}));
    }
    {  // Three functions (seeds 0, 1, 2) over 64 bits.
        auto m = must_create(bloom(4, 1, 3));
        uint32_t one = 1;
        ASSERT_EQ(m->ops().push(*m, &one, BPF_ANY), 0);
        EXPECT_EQ(positives(*m, 4, 0, 100000),
                  (v{1, 171, 12175, 45700, 47163, 64558, 68615, 80590, 91570, 97246}));
    }
    {  // A 3-byte value {x, x >> 8, 7} against the pushed {1, 2, 3}.
        auto m = must_create(bloom(3, 1, 1));
        uint8_t pushed[3] = {1, 2, 3};
        ASSERT_EQ(m->ops().push(*m, pushed, BPF_ANY), 0);
        v got;
        for (uint32_t x = 0; x < 3000; ++x) {
            uint8_t t[3] = {uint8_t(x), uint8_t(x >> 8), 7};
            if (m->ops().peek(*m, t) == 0) got.push_back(x);
        }
        EXPECT_EQ(got, (v{26, 99, 135, 150, 240, 252, 267, 295, 314, 399, 434, 458, 552, 714, 750,
                          862, 937, 1076, 1404, 1406, 1463, 1522, 1594, 1605, 1698, 1727, 1823, 2027,
                          2059, 2134, 2243, 2263, 2307, 2320, 2426, 2480, 2549, 2686, 2693, 2694,
                          2794, 2879, 2963}));
    }
    // Longer values: bytes 1..n pushed, the candidate counter in the last 4 bytes.
    const std::pair<uint32_t, v> longer[] = {
        {13, {78, 108, 231, 308, 361, 382}},
        {16, {7, 13, 75, 135, 168, 325, 329, 344}},
        {24, {13}},
        {25, {45, 115, 124, 172, 186, 226, 230, 252, 308}},
    };
    for (const auto& [size, expect] : longer) {
        auto m = must_create(bloom(size, 1, 1));
        std::vector<uint8_t> pushed(size);
        for (uint32_t i = 0; i < size; ++i) pushed[i] = uint8_t(i + 1);
        ASSERT_EQ(m->ops().push(*m, pushed.data(), BPF_ANY), 0);
        EXPECT_EQ(positives(*m, size, size - 4, 400), expect) << size << "-byte values";
    }
}

TEST(BloomFilter, NoFalseNegativesAndFewFalsePositives) {
    auto m = must_create(make_spec(BPF_MAP_TYPE_BLOOM_FILTER, 0, 8, 1000));  // random seed, 5 functions
    std::mt19937_64 rng(3);
    std::vector<uint64_t> in(1000);
    for (auto& x : in) {
        x = rng();
        ASSERT_EQ(code(update_elem(*m, nullptr, &x, BPF_ANY)), 0);
    }
    for (auto x : in) ASSERT_EQ(code(lookup_elem(*m, nullptr, &x, 0)), 0);
    int false_positives = 0;
    for (int i = 0; i < 10000; ++i) {
        uint64_t x = rng();
        false_positives += code(lookup_elem(*m, nullptr, &x, 0)) == 0;
    }
    // 8192 bits, 5 functions, 1000 values: about 2% in theory.
    EXPECT_LT(false_positives, 500);
}

}  // namespace
}  // namespace xdprt::maps
