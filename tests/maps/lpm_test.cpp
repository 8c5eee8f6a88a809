// LPM_TRIE against the kernel: errnos and lookups checked on the 6.18 host with libbpf, the
// get_next_key post-order of lpm_trie.c's own example, a reference model under random
// operations, and lock-free program lookups racing a writer.
#include <array>
#include <map>
#include <random>
#include <thread>

#include "maps_test_util.h"

namespace xdprt::maps {
namespace {

using testing::code;
using testing::create_errno;
using testing::make_spec;
using testing::must_create;

constexpr int enotsupp = 524;

template <size_t N>
struct lpm_key {
    uint32_t prefixlen = 0;
    uint8_t data[N] = {};
    bool operator==(const lpm_key&) const = default;
};
using v4 = lpm_key<4>;

v4 ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint32_t len) { return v4{len, {a, b, c, d}}; }

std::string str(const v4& k) {
    return fmt::format("{}.{}.{}.{}/{}", k.data[0], k.data[1], k.data[2], k.data[3], k.prefixlen);
}

spec lpm(uint32_t key_size, uint32_t value_size, uint32_t max_entries) {
    return make_spec(BPF_MAP_TYPE_LPM_TRIE, key_size, value_size, max_entries, BPF_F_NO_PREALLOC);
}

TEST(LpmTrie, CreateChecksAsTheKernel) {
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_LPM_TRIE, 8, 4, 10)), EINVAL) << "NO_PREALLOC is required";
    EXPECT_EQ(create_errno(lpm(4, 4, 10)), EINVAL);
    EXPECT_EQ(create_errno(lpm(5, 4, 10)), 0);
    EXPECT_EQ(create_errno(lpm(260, 4, 10)), 0);
    EXPECT_EQ(create_errno(lpm(261, 4, 10)), EINVAL);
    EXPECT_EQ(create_errno(lpm(8, 0, 10)), EINVAL);
    EXPECT_EQ(create_errno(lpm(8, 4, 0)), EINVAL);
    auto s = lpm(8, 4, 10);
    s.flags |= BPF_F_ZERO_SEED;
    EXPECT_EQ(create_errno(s), EINVAL);
    EXPECT_EQ(create_errno(lpm(8, 1u << 22, 10)), EINVAL);
    EXPECT_EQ(create_errno(lpm(8, (1u << 22) - 256 - 24, 10)), 0);
    EXPECT_EQ(create_errno(lpm(8, (1u << 22) - 256 - 23, 10)), EINVAL);
    EXPECT_EQ(create_errno(lpm(8, 4, 0xffffffffu)), 0) << "sparse, as the kernel allocates on demand";
}

TEST(LpmTrie, UpdateFlagsAsTheKernel) {
    auto m = must_create(lpm(8, 4, 2));
    v4 k = ip(192, 168, 0, 0, 16), k2 = ip(192, 168, 1, 0, 24), k3 = ip(10, 0, 0, 0, 8);
    uint32_t v = 1;
    EXPECT_EQ(code(update_elem(*m, &k, &v, BPF_EXIST)), ENOENT);
    EXPECT_EQ(code(update_elem(*m, &k, &v, BPF_NOEXIST)), 0);
    EXPECT_EQ(code(update_elem(*m, &k, &v, BPF_NOEXIST)), EEXIST);
    EXPECT_EQ(code(update_elem(*m, &k, &v, 3)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, &k, &v, BPF_F_LOCK)), EINVAL);
    v4 bad = ip(192, 168, 0, 0, 33);
    EXPECT_EQ(code(update_elem(*m, &bad, &v, 0)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, &k2, &v, 0)), 0);
    EXPECT_EQ(code(update_elem(*m, &k3, &v, 0)), ENOSPC) << "a full trie answers ENOSPC";
    EXPECT_EQ(code(update_elem(*m, &k3, &v, BPF_EXIST)), ENOENT);
    v = 2;
    EXPECT_EQ(code(update_elem(*m, &k2, &v, BPF_EXIST)), 0) << "replacing works when full";
    EXPECT_EQ(m->ops().update(*m, &k3, &v, BPF_ANY), -ENOSPC);
    EXPECT_EQ(m->ops().update(*m, &bad, &v, BPF_ANY), -EINVAL);
}

TEST(LpmTrie, LookupIsLongestPrefixMatch) {
    auto m = must_create(lpm(8, 4, 16));
    const std::pair<v4, uint32_t> entries[] = {
        {ip(192, 168, 0, 0, 16), 1}, {ip(192, 168, 0, 0, 24), 2}, {ip(192, 168, 128, 0, 24), 3},
        {ip(192, 168, 1, 0, 24), 5}, {ip(192, 168, 1, 1, 32), 6},
    };
    for (const auto& [k, v] : entries) ASSERT_EQ(code(update_elem(*m, &k, &v, BPF_NOEXIST)), 0) << str(k);
    const std::pair<v4, int> lookups[] = {
        {ip(192, 168, 1, 5, 32), 5}, {ip(192, 168, 1, 1, 32), 6}, {ip(192, 168, 1, 1, 31), 5},
        {ip(192, 168, 0, 9, 32), 2}, {ip(192, 168, 7, 7, 32), 1}, {ip(192, 168, 128, 1, 32), 3},
        {ip(192, 168, 129, 1, 32), 1}, {ip(192, 168, 1, 5, 20), 1}, {ip(192, 169, 0, 0, 32), -1},
        {ip(10, 0, 0, 1, 32), -1}, {ip(192, 168, 1, 5, 15), -1}, {ip(192, 168, 1, 5, 0), -1},
        {ip(192, 168, 1, 5, 33), -1},
    };
    for (const auto& [k, want] : lookups) {
        uint32_t got = 0;
        auto r = lookup_elem(*m, &k, &got, 0);
        if (want < 0) {
            EXPECT_EQ(code(r), ENOENT) << str(k);
            EXPECT_EQ(m->ops().lookup(*m, &k), nullptr) << str(k);
        } else {
            EXPECT_EQ(code(r), 0) << str(k);
            EXPECT_EQ(got, uint32_t(want)) << str(k);
            auto* p = static_cast<uint32_t*>(m->ops().lookup(*m, &k));
            ASSERT_NE(p, nullptr) << str(k);
            EXPECT_EQ(*p, uint32_t(want)) << str(k);
        }
    }
    v4 any = ip(0, 0, 0, 0, 0), q = ip(1, 2, 3, 4, 0);
    uint32_t v = 99, got = 0;
    ASSERT_EQ(code(update_elem(*m, &any, &v, 0)), 0);
    ASSERT_EQ(code(lookup_elem(*m, &q, &got, 0)), 0) << "a /0 entry matches a /0 lookup";
    EXPECT_EQ(got, 99u);
    EXPECT_EQ(code(lookup_elem(*m, &q, &got, BPF_F_LOCK)), EINVAL);
    EXPECT_EQ(code(lookup_and_delete_elem(*m, &q, &got, 0)), enotsupp);
}

TEST(LpmTrie, GetNextKeyIsThePostOrderOfTheKernel) {
    auto m = must_create(lpm(8, 4, 16));
    v4 next{};
    EXPECT_EQ(code(get_next_key(*m, nullptr, &next)), ENOENT);
    // lpm_trie.c's example, and the order its trie_get_next_key comment gives.
    for (const v4& k : {ip(192, 168, 0, 0, 16), ip(192, 168, 0, 0, 24), ip(192, 168, 128, 0, 24), ip(192, 168, 1, 0, 24)}) {
        uint32_t v = k.prefixlen;
        ASSERT_EQ(code(update_elem(*m, &k, &v, 0)), 0);
    }
    std::vector<std::string> order;
    for (const v4& k : testing::walk_keys<v4>(*m)) order.push_back(str(k));
    EXPECT_EQ(order, (std::vector<std::string>{"192.168.0.0/24", "192.168.1.0/24", "192.168.128.0/24", "192.168.0.0/16"}));
    for (const v4& k : {ip(192, 168, 0, 0, 20), ip(192, 168, 0, 0, 33), ip(10, 0, 0, 0, 8)}) {
        ASSERT_EQ(code(get_next_key(*m, &k, &next)), 0);
        EXPECT_EQ(str(next), "192.168.0.0/24") << str(k) << ": a missing key restarts from the leftmost";
    }
    v4 last = ip(192, 168, 0, 0, 16);
    EXPECT_EQ(code(get_next_key(*m, &last, &next)), ENOENT);
}

TEST(LpmTrie, DeleteAsTheKernel) {
    auto m = must_create(lpm(8, 4, 16));
    v4 a = ip(192, 168, 0, 0, 16), b = ip(192, 168, 0, 0, 24), c = ip(192, 168, 1, 0, 24);
    uint32_t v = 0;
    for (const v4& k : {a, b, c}) ASSERT_EQ(code(update_elem(*m, &k, &v, 0)), 0);
    v4 bad = ip(192, 168, 0, 0, 33), split = ip(192, 168, 0, 0, 23), none = ip(192, 168, 0, 0, 17);
    EXPECT_EQ(code(delete_elem(*m, &bad)), EINVAL);
    EXPECT_EQ(code(delete_elem(*m, &split)), ENOENT) << "the intermediate node 192.168.0.0/23 is no entry";
    EXPECT_EQ(code(delete_elem(*m, &none)), ENOENT);
    EXPECT_EQ(code(delete_elem(*m, &a)), 0);
    EXPECT_EQ(code(delete_elem(*m, &a)), ENOENT);
    EXPECT_EQ(m->ops().erase(*m, &b), 0);
    EXPECT_EQ(m->ops().erase(*m, &b), -ENOENT);
    EXPECT_EQ(testing::walk_keys<v4>(*m), (std::vector<v4>{c}));
    v4 q = ip(192, 168, 0, 1, 32);
    EXPECT_EQ(code(lookup_elem(*m, &q, &v, 0)), ENOENT);
    ASSERT_EQ(code(freeze(*m)), 0);
    EXPECT_EQ(code(delete_elem(*m, &c)), EPERM);
}

// A brute-force model: each prefix's last-written key bytes and value.
template <size_t N>
struct model {
    uint32_t max_prefixlen = 8 * N;
    std::map<std::pair<uint32_t, std::array<uint8_t, N>>, std::pair<lpm_key<N>, uint32_t>> entries;

    static bool prefix_of(const lpm_key<N>& p, const lpm_key<N>& k) {  // p's first p.prefixlen bits match k
        for (uint32_t i = 0; i < p.prefixlen; ++i)
            if (((p.data[i / 8] ^ k.data[i / 8]) >> (7 - i % 8)) & 1) return false;
        return true;
    }
    static std::array<uint8_t, N> masked(const lpm_key<N>& k) {
        std::array<uint8_t, N> d{};
        for (uint32_t i = 0; i < k.prefixlen; ++i) d[i / 8] |= k.data[i / 8] & (0x80 >> (i % 8));
        return d;
    }
    int lookup(const lpm_key<N>& k) const {
        int best = -1, best_len = -1;
        for (const auto& [id, e] : entries)
            if (e.first.prefixlen <= k.prefixlen && int(e.first.prefixlen) > best_len && prefix_of(e.first, k))
                best = int(e.second), best_len = int(e.first.prefixlen);
        return best;
    }
};

template <size_t N>
void random_operations(uint32_t seed, uint32_t max_entries, int steps) {
    auto m = must_create(lpm(4 + N, 4, max_entries));
    model<N> ref;
    std::mt19937 rng(seed);
    // Few distinct prefixes (short lengths, a small address pool) so updates hit existing ones.
    auto random_key = [&] {
        lpm_key<N> k;
        k.prefixlen = rng() % (ref.max_prefixlen + 1);
        for (auto& b : k.data) b = uint8_t(rng() % 4 == 0 ? rng() : rng() % 3);
        return k;
    };
    for (int step = 0; step < steps; ++step) {
        lpm_key<N> k = random_key();
        auto id = std::make_pair(k.prefixlen, model<N>::masked(k));
        bool present = ref.entries.count(id);
        if (rng() % 3 == 0) {
            ASSERT_EQ(code(delete_elem(*m, &k)), present ? 0 : ENOENT) << "step " << step;
            ref.entries.erase(id);
        } else {
            uint32_t v = rng() % 1000000;  // the model answers an int
            uint64_t flags = rng() % 3;
            int want = flags == BPF_NOEXIST && present ? EEXIST
                       : flags == BPF_EXIST && !present ? ENOENT
                       : !present && ref.entries.size() == max_entries ? ENOSPC : 0;
            ASSERT_EQ(code(update_elem(*m, &k, &v, flags)), want) << "step " << step;
            if (want == 0) ref.entries[id] = {k, v};
        }
        for (int q = 0; q < 8; ++q) {
            lpm_key<N> probe = random_key();
            uint32_t got = 0;
            int want = ref.lookup(probe);
            ASSERT_EQ(code(lookup_elem(*m, &probe, &got, 0)), want < 0 ? ENOENT : 0) << "step " << step;
            if (want >= 0) {
                ASSERT_EQ(got, uint32_t(want)) << "step " << step;
            }
        }
        if (step % 50 != 0) continue;
        // Every entry exactly once, each after all its more specific entries.
        auto keys = testing::walk_keys<lpm_key<N>>(*m);
        ASSERT_EQ(keys.size(), ref.entries.size()) << "step " << step;
        for (size_t i = 0; i < keys.size(); ++i) {
            auto it = ref.entries.find({keys[i].prefixlen, model<N>::masked(keys[i])});
            ASSERT_NE(it, ref.entries.end()) << "step " << step;
            EXPECT_EQ(it->second.first, keys[i]) << "get_next_key returns the key bytes last written";
            for (size_t j = 0; j < i; ++j)
                ASSERT_FALSE(keys[j].prefixlen < keys[i].prefixlen && model<N>::prefix_of(keys[j], keys[i]))
                    << "step " << step << ": a prefix came before a more specific one";
        }
    }
}

TEST(LpmTrie, RandomOperationsMatchAReferenceModel) {
    random_operations<1>(1, 40, 3000);
    random_operations<4>(2, 200, 3000);
    random_operations<16>(3, 300, 2000);
}

TEST(LpmTrie, ProgramLookupStaysValidUntilQuiescent) {
    auto m = must_create(lpm(8, 4, 1));
    v4 k = ip(10, 0, 0, 0, 8);
    uint32_t v = 1;
    ASSERT_EQ(code(update_elem(*m, &k, &v, 0)), 0);
    {
        testing::program_thread worker;
        auto* p = static_cast<uint32_t*>(m->ops().lookup(*m, &k));
        ASSERT_NE(p, nullptr);
        // Replacing the one entry over and over parks every old node until the worker's
        // quiescent point, until the pool of spares runs dry.
        int err = 0;
        for (uint32_t i = 2; i < 1000 && err == 0; ++i) err = code(update_elem(*m, &k, &i, BPF_EXIST));
        EXPECT_EQ(err, ENOMEM);
        EXPECT_EQ(*p, 1u) << "the value the program looked up is untouched";
        worker.reader.quiescent();
        v = 7;
        EXPECT_EQ(code(update_elem(*m, &k, &v, BPF_EXIST)), 0) << "spares come back after the grace period";
    }
}

TEST(LpmTrie, ConcurrentLookupsSeeOldOrNewValuesOnly) {
    // A writer churns /24s (value = third octet) under a fixed /8 (value 1000) and a reader on
    // another thread checks every answer.
    auto m = must_create(lpm(8, 4, 64));
    v4 base = ip(10, 0, 0, 0, 8);
    uint32_t v = 1000;
    ASSERT_EQ(code(update_elem(*m, &base, &v, 0)), 0);
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        std::mt19937 rng(5);
        for (int i = 0; i < 200000 && !stop; ++i) {
            uint8_t o = uint8_t(rng() % 48);
            v4 k = ip(10, 1, o, 0, 24);
            uint32_t val = o;
            if (rng() % 2) m->ops().update(*m, &k, &val, BPF_ANY);
            else m->ops().erase(*m, &k);
        }
        stop = true;
    });
    testing::program_thread reader;
    std::mt19937 rng(6);
    uint64_t lookups = 0, bad = 0;
    while (!stop) {
        uint8_t o = uint8_t(rng() % 48);
        v4 q = ip(10, 1, o, uint8_t(rng()), 32);
        auto* p = static_cast<uint32_t*>(m->ops().lookup(*m, &q));
        uint32_t got = p ? *p : ~0u;  // the /8 always matches
        if (got != 1000 && got != o) {
            ADD_FAILURE() << "got " << got << " for " << str(q);
            stop = ++bad > 10;
        }
        if (++lookups % 64 == 0) reader.reader.quiescent();
    }
    writer.join();
    EXPECT_GT(lookups, 1000u);
}

}  // namespace
}  // namespace xdprt::maps
