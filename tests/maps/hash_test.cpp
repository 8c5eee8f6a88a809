// HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH against the kernel's errnos (each case checked on
// the 6.18 host with libbpf): creation, update flags, lookup/delete, iteration, the per-CPU
// layout, BPF_F_LOCK, LRU eviction, a full HASH, and an 8M-entry LRU.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <random>

#include "maps_test_util.h"

namespace xdprt::maps {
namespace {

using testing::code;
using testing::create_errno;
using testing::make_spec;
using testing::must_create;

constexpr int enotsupp = 524;

bool lru(uint32_t t) { return t == BPF_MAP_TYPE_LRU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH; }
bool percpu(uint32_t t) { return t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH; }

class HashMaps : public ::testing::TestWithParam<uint32_t> {
protected:
    uint32_t type() const { return GetParam(); }
    // A userspace value of `value_size` bytes per CPU where the type is per-CPU: every slot holds v.
    std::vector<uint64_t> user_value(uint64_t v) const {
        std::vector<uint64_t> out(percpu(type()) ? possible_cpus() : 1, v);
        return out;
    }
};

TEST_P(HashMaps, CreateChecksAsTheKernel) {
    uint32_t t = type();
    EXPECT_EQ(create_errno(make_spec(t, 0, 8, 10)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(t, 4, 0, 10)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(t, 4, 8, 0)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(t, 4, 8, 10, BPF_F_MMAPABLE)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(t, 4, 8, 10, BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(t, 4, 8, 10, BPF_F_NO_COMMON_LRU)), lru(t) ? 0 : EINVAL);
    EXPECT_EQ(create_errno(make_spec(t, 4, 8, 10, BPF_F_NO_PREALLOC)), lru(t) ? enotsupp : 0);
    EXPECT_EQ(create_errno(make_spec(t, 4, 8, 10, BPF_F_NUMA_NODE)), percpu(t) ? EINVAL : 0);
    EXPECT_EQ(create_errno(make_spec(t, 4, 8, 10, BPF_F_ZERO_SEED)), 0);
    // 6.18 bounds only key + value (below KMALLOC_MAX_SIZE - 48); keys above 512 bytes are fine.
    EXPECT_EQ(create_errno(make_spec(t, 513, 8, 10)), 0);
    if (!percpu(t)) {
        EXPECT_EQ(create_errno(make_spec(t, 4, 4194251, 1)), 0);
        EXPECT_EQ(create_errno(make_spec(t, 4, 4194252, 1)), E2BIG);
    } else {
        EXPECT_EQ(create_errno(make_spec(t, 4, 32768, 1)), 0);
        EXPECT_EQ(create_errno(make_spec(t, 4, 32769, 1)), E2BIG);
    }
    // The bucket array bound of htab_map_alloc.
    EXPECT_EQ(create_errno(make_spec(t, 4, 8, (1u << 27) + 1)), E2BIG);
}

TEST_P(HashMaps, UpdateFlagsAsTheKernel) {
    auto m = must_create(make_spec(type(), 4, 8, 2));
    auto v = user_value(11), out = user_value(0);
    uint32_t k = 1;
    EXPECT_EQ(code(update_elem(*m, &k, v.data(), BPF_EXIST)), ENOENT);
    EXPECT_EQ(code(update_elem(*m, &k, v.data(), 3)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, &k, v.data(), BPF_F_LOCK)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, &k, v.data(), BPF_ANY)), 0);
    EXPECT_EQ(code(update_elem(*m, &k, v.data(), BPF_NOEXIST)), EEXIST);
    k = 2;
    EXPECT_EQ(code(update_elem(*m, &k, v.data(), BPF_NOEXIST)), 0);
    // Full: a new key is refused (or, for LRU, evicts); existing keys still update.
    k = 3;
    EXPECT_EQ(code(update_elem(*m, &k, v.data(), BPF_ANY)), lru(type()) ? 0 : E2BIG);
    EXPECT_EQ(code(update_elem(*m, &k, v.data(), BPF_EXIST)), lru(type()) ? 0 : ENOENT);
    k = lru(type()) ? 3 : 2;
    v = user_value(22);
    EXPECT_EQ(code(update_elem(*m, &k, v.data(), BPF_EXIST)), 0);
    EXPECT_EQ(code(update_elem(*m, &k, v.data(), BPF_ANY)), 0);
    ASSERT_EQ(code(lookup_elem(*m, &k, out.data(), 0)), 0);
    EXPECT_EQ(out, user_value(22));
    EXPECT_EQ(testing::walk_keys<uint32_t>(*m).size(), 2u);

    // Program side: the same errnos.
    uint64_t pv = 5;
    EXPECT_EQ(m->ops().update(*m, &k, &pv, 3), -EINVAL);
    EXPECT_EQ(m->ops().update(*m, &k, &pv, BPF_NOEXIST), -EEXIST);
    k = 77;
    EXPECT_EQ(m->ops().update(*m, &k, &pv, BPF_EXIST), -ENOENT);
    EXPECT_EQ(m->ops().update(*m, &k, &pv, BPF_ANY), lru(type()) ? 0 : -E2BIG);
}

TEST_P(HashMaps, LookupDeleteAndLookupAndDelete) {
    auto m = must_create(make_spec(type(), 4, 8, 8));
    auto v = user_value(33), out = user_value(0);
    uint32_t k = 5;
    EXPECT_EQ(code(lookup_elem(*m, &k, out.data(), 0)), ENOENT);
    EXPECT_EQ(code(delete_elem(*m, &k)), ENOENT);
    ASSERT_EQ(code(update_elem(*m, &k, v.data(), 0)), 0);
    EXPECT_EQ(code(lookup_elem(*m, &k, out.data(), 1)), EINVAL);
    EXPECT_EQ(code(lookup_elem(*m, &k, out.data(), BPF_F_LOCK)), EINVAL);
    EXPECT_EQ(code(lookup_and_delete_elem(*m, &k, out.data(), 1)), EINVAL);
    EXPECT_EQ(code(lookup_and_delete_elem(*m, &k, out.data(), BPF_F_LOCK)), EINVAL);
    ASSERT_EQ(code(lookup_and_delete_elem(*m, &k, out.data(), 0)), 0);
    EXPECT_EQ(out, user_value(33));
    EXPECT_EQ(code(lookup_and_delete_elem(*m, &k, out.data(), 0)), ENOENT);
    EXPECT_EQ(code(lookup_elem(*m, &k, out.data(), 0)), ENOENT);

    ASSERT_EQ(code(update_elem(*m, &k, v.data(), 0)), 0);
    auto* p = static_cast<uint64_t*>(m->ops().lookup(*m, &k));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(*p, 33u);
    EXPECT_EQ(m->ops().erase(*m, &k), 0);
    EXPECT_EQ(m->ops().erase(*m, &k), -ENOENT);
    EXPECT_EQ(m->ops().lookup(*m, &k), nullptr);
    EXPECT_EQ(code(delete_elem(*m, &k)), ENOENT);
}

TEST_P(HashMaps, GetNextKeyVisitsEveryKeyOnce) {
    const uint32_t n = 500;
    auto m = must_create(make_spec(type(), 8, 8, n));
    std::mt19937_64 rng(7);
    std::set<uint64_t> keys;
    while (keys.size() < n) keys.insert(rng());
    for (uint64_t k : keys) {
        auto v = user_value(k * 3);
        ASSERT_EQ(code(update_elem(*m, &k, v.data(), BPF_NOEXIST)), 0);
    }
    auto seen = testing::walk_keys<uint64_t>(*m);
    ASSERT_EQ(seen.size(), n);
    EXPECT_EQ(std::set<uint64_t>(seen.begin(), seen.end()), keys);
    uint64_t next = 0, missing = 12345;
    ASSERT_EQ(code(get_next_key(*m, &missing, &next)), 0);
    EXPECT_EQ(next, seen.front()) << "a missing key restarts from the first";
    EXPECT_EQ(code(get_next_key(*m, &seen.back(), &next)), ENOENT);
    // Deleting while iterating (the usual userspace dump-and-clear) still reaches every key.
    size_t deleted = 0;
    for (auto r = get_next_key(*m, nullptr, &next); r; r = get_next_key(*m, nullptr, &next)) {
        ASSERT_EQ(code(delete_elem(*m, &next)), 0);
        ++deleted;
    }
    EXPECT_EQ(deleted, n);
}

TEST_P(HashMaps, PerCpuLayout) {
    if (!percpu(type())) GTEST_SKIP() << "not a per-CPU type";
    const uint32_t ncpu = possible_cpus();
    auto m = must_create(make_spec(type(), 4, 12, 4));
    ASSERT_EQ(m->user_value_size(), 16u * ncpu);
    uint32_t k = 1, v[3] = {7, 8, 9};
    this_cpu = ncpu - 1;
    ASSERT_EQ(m->ops().update(*m, &k, v, BPF_ANY), 0);
    this_cpu = 0;
    std::vector<uint32_t> out(4 * ncpu, 0xffffffff);
    ASSERT_EQ(code(lookup_elem(*m, &k, out.data(), 0)), 0);
    for (uint32_t c = 0; c < ncpu; ++c) {
        bool mine = c == ncpu - 1;
        EXPECT_EQ(out[4 * c], mine ? 7u : 0u) << "cpu " << c << ": a new element starts at zero elsewhere";
        EXPECT_EQ(out[4 * c + 2], mine ? 9u : 0u);
        EXPECT_EQ(out[4 * c + 3], 0u);
    }
    for (uint32_t c = 0; c < ncpu; ++c) out[4 * c] = 100 + c;
    ASSERT_EQ(code(update_elem(*m, &k, out.data(), BPF_EXIST)), 0);
    for (uint32_t c = 0; c < ncpu; ++c) {
        this_cpu = c;
        auto* slot = static_cast<uint32_t*>(m->ops().lookup(*m, &k));
        ASSERT_NE(slot, nullptr);
        EXPECT_EQ(slot[0], 100 + c);
    }
    this_cpu = 0;
}

TEST_P(HashMaps, HugeMapIsSparse) {
    // 8M entries: created, used at a few keys, resident memory far below the map's size.
    if (type() != BPF_MAP_TYPE_LRU_HASH && type() != BPF_MAP_TYPE_HASH) GTEST_SKIP() << "one per family";
    const uint32_t n = 8u << 20;
    size_t before = testing::rss_bytes();
    auto m = must_create(make_spec(type(), 8, 8, n));
    ASSERT_TRUE(m);
    EXPECT_GE(m->bytes(), size_t(n) * 48);
    for (uint64_t k : {1ull, 1ull << 40, 77777ull}) {
        uint64_t v = ~k;
        ASSERT_EQ(code(update_elem(*m, &k, &v, BPF_NOEXIST)), 0);
    }
    for (uint64_t k : {1ull, 1ull << 40, 77777ull}) {
        uint64_t v = 0;
        ASSERT_EQ(code(lookup_elem(*m, &k, &v, 0)), 0);
        EXPECT_EQ(v, ~k);
    }
    uint64_t k = 77777;
    EXPECT_EQ(code(delete_elem(*m, &k)), 0);
    EXPECT_EQ(testing::walk_keys<uint64_t>(*m).size(), 2u);
    // The bucket heads (4 bytes each) are written at creation; elements only as used.
    if (testing::rss_meaningful) {
        EXPECT_LT(testing::rss_bytes() - before, size_t(n) * 4 + (size_t(16) << 20));
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, HashMaps,
                         ::testing::Values(BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_LRU_HASH,
                                           BPF_MAP_TYPE_LRU_PERCPU_HASH),
                         [](const auto& info) {
                             std::string n = type_name(info.param);
                             n.erase(std::remove(n.begin(), n.end(), '_'), n.end());
                             return n;
                         });

TEST(HashMap, FullHashRefusesNewKeysWithE2big) {
    auto m = must_create(make_spec(BPF_MAP_TYPE_HASH, 4, 4, 64));
    for (uint32_t k = 0; k < 64; ++k) ASSERT_EQ(code(update_elem(*m, &k, &k, BPF_ANY)), 0);
    uint32_t k = 64;
    EXPECT_EQ(code(update_elem(*m, &k, &k, BPF_ANY)), E2BIG);
    EXPECT_EQ(m->ops().update(*m, &k, &k, BPF_ANY), -E2BIG);
    k = 3;
    EXPECT_EQ(code(delete_elem(*m, &k)), 0);
    k = 64;
    EXPECT_EQ(code(update_elem(*m, &k, &k, BPF_ANY)), 0);
    EXPECT_EQ(testing::walk_keys<uint32_t>(*m).size(), 64u);
}

TEST(LruHashMap, EvictsUntouchedKeysBeforeRecentlyUsedOnes) {
    const uint32_t n = 1000, hot = 100;
    for (uint32_t type : {BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH}) {
        auto m = must_create(make_spec(type, 4, 8, n));
        std::vector<uint64_t> v(percpu(type) ? possible_cpus() : 1, 1);
        for (uint32_t k = 0; k < n; ++k) ASSERT_EQ(code(update_elem(*m, &k, v.data(), BPF_NOEXIST)), 0);
        // 2x max_entries new keys into the full map; a program keeps looking up the hot keys.
        for (uint32_t i = 0; i < 2 * n; ++i) {
            for (uint32_t h = 0; i % 50 == 0 && h < hot; ++h) {
                ASSERT_NE(m->ops().lookup(*m, &h), nullptr) << "hot key " << h << " before insert " << i;
            }
            uint32_t k = 1'000'000 + i;
            ASSERT_EQ(code(update_elem(*m, &k, v.data(), BPF_NOEXIST)), 0) << "LRU updates never fail when full";
        }
        auto keys = testing::walk_keys<uint32_t>(*m);
        EXPECT_EQ(keys.size(), n) << type_name(type);
        size_t hot_left = 0, cold_left = 0;
        for (uint32_t k : keys) hot_left += k < hot, cold_left += k >= hot && k < n;
        EXPECT_EQ(hot_left, hot) << type_name(type) << ": looked-up keys survive";
        EXPECT_LT(cold_left, size_t(n - hot) / 10) << type_name(type) << ": untouched keys go first";
    }
}

TEST(LruHashMap, NoSpareElementEvictsNothing) {
    // A reader that never passes a quiescent point keeps every replaced element parked; once
    // the spares run out, updates fail with ENOMEM. Evicting a live key would not help (the
    // evicted element waits out the same grace period), so none may go.
    auto m = must_create(make_spec(BPF_MAP_TYPE_LRU_HASH, 4, 8, 8));
    uint64_t v = 0;
    for (uint32_t k = 0; k < 4; ++k) ASSERT_EQ(code(update_elem(*m, &k, &v, BPF_ANY)), 0);
    int err = 0;
    {
        testing::program_thread stuck;
        uint32_t k = 0;
        for (; v < 10000 && err == 0; ++v) err = code(update_elem(*m, &k, &v, BPF_EXIST));
        EXPECT_EQ(err, ENOMEM);
        uint32_t fresh = 100;
        EXPECT_EQ(m->ops().update(*m, &fresh, &v, BPF_ANY), -ENOMEM);
        auto keys = testing::walk_keys<uint32_t>(*m);
        std::sort(keys.begin(), keys.end());
        EXPECT_EQ(keys, (std::vector<uint32_t>{0, 1, 2, 3})) << "live keys were evicted for nothing";
    }
    uint32_t fresh = 100;
    EXPECT_EQ(code(update_elem(*m, &fresh, &v, BPF_ANY)), 0) << "spares return after the grace period";
}

struct locked_value {
    uint32_t a, lock, b;
};

TEST(HashMap, NewElementsStartUnlockedWhateverTheCallerPassed) {
    auto s = make_spec(BPF_MAP_TYPE_HASH, 4, sizeof(locked_value), 8);
    s.spin_lock_off = 4;
    auto m = must_create(s);
    uint32_t k = 1;
    locked_value in{1, 0xffffffff, 2}, out{};
    ASSERT_EQ(code(update_elem(*m, &k, &in, BPF_ANY)), 0);
    auto* slot = static_cast<locked_value*>(m->ops().lookup(*m, &k));
    ASSERT_NE(slot, nullptr);
    EXPECT_EQ(slot->lock, 0u) << "a copied lock word would make the next BPF_F_LOCK spin forever";
    k = 2;
    ASSERT_EQ(m->ops().update(*m, &k, &in, BPF_ANY), 0);
    slot = static_cast<locked_value*>(m->ops().lookup(*m, &k));
    EXPECT_EQ(slot->lock, 0u);
    ASSERT_EQ(code(update_elem(*m, &k, &in, BPF_F_LOCK)), 0);  // returns: the lock is free
    ASSERT_EQ(code(lookup_elem(*m, &k, &out, BPF_F_LOCK)), 0);
    EXPECT_EQ(out.a, 1u);
    EXPECT_EQ(out.b, 2u);
}

TEST(HashMap, LookupAndDeleteHidesTheLockWord) {
    auto s = make_spec(BPF_MAP_TYPE_HASH, 4, sizeof(locked_value), 8);
    s.spin_lock_off = 4;
    auto m = must_create(s);
    uint32_t k = 1;
    locked_value in{3, 0, 4}, out{};
    ASSERT_EQ(code(update_elem(*m, &k, &in, BPF_ANY)), 0);
    static_cast<locked_value*>(m->ops().lookup(*m, &k))->lock = 1;  // held by a program
    ASSERT_EQ(code(lookup_and_delete_elem(*m, &k, &out, 0)), 0);
    EXPECT_EQ(out.a, 3u);
    EXPECT_EQ(out.lock, 0u) << "the kernel never shows the lock word";
    EXPECT_EQ(out.b, 4u);
}

// A window (maps::view) writes as a client in another process does, through the shared memory:
// the creator sees every write, and the window's answers are the kernel's.
TEST_P(HashMaps, AWritableWindowWritesWithTheKernelsAnswers) {
    const uint32_t t = type(), token = client_writer | 7;
    auto m = must_create(make_spec(t, 4, 8, 4));
    auto w = view::open_writable(m->memfd());
    ASSERT_TRUE(w.has_value()) << w.error().message;
    auto v = user_value(0x1122), got = user_value(0);
    uint32_t k = 1, next = 0;
    ASSERT_EQ(code(w->update(&k, v.data(), BPF_NOEXIST, token)), 0);
    ASSERT_EQ(code(lookup_elem(*m, &k, got.data(), 0)), 0);
    EXPECT_EQ(got, v) << "the creator sees the window's insert";
    EXPECT_EQ(code(w->update(&k, v.data(), BPF_NOEXIST, token)), EEXIST);
    uint32_t absent = 9;
    EXPECT_EQ(code(w->update(&absent, v.data(), BPF_EXIST, token)), ENOENT);
    v = user_value(0x3344);
    ASSERT_EQ(code(w->update(&k, v.data(), BPF_EXIST, token)), 0);
    ASSERT_EQ(code(lookup_elem(*m, &k, got.data(), 0)), 0);
    EXPECT_EQ(got, v) << "the creator sees the window's replace";
    for (uint32_t more = 2; more <= 4; ++more) ASSERT_EQ(code(w->update(&more, v.data(), BPF_ANY, token)), 0);
    uint32_t fifth = 5;
    EXPECT_EQ(code(w->update(&fifth, v.data(), BPF_ANY, token)), lru(t) ? 0 : E2BIG);
    EXPECT_EQ(code(w->update(&k, v.data(), 8, token)), EINVAL) << "unknown flag";
    EXPECT_EQ(code(w->update(&k, v.data(), BPF_F_LOCK, token)), EOPNOTSUPP) << "BPF_F_LOCK is the appliance's";
    std::vector<uint32_t> walked;
    for (const void* at = nullptr; code(w->next_key(at, &next, token)) == 0; at = &next) walked.push_back(next);
    EXPECT_EQ(walked, testing::walk_keys<uint32_t>(*m)) << "the window walks in the creator's order";
    uint32_t live = walked.front();
    ASSERT_EQ(code(w->erase(&live, token)), 0);
    EXPECT_EQ(code(lookup_elem(*m, &live, got.data(), 0)), ENOENT) << "the creator sees the window's delete";
    EXPECT_EQ(code(w->erase(&live, token)), ENOENT);
    ASSERT_EQ(code(freeze(*m)), 0);
    EXPECT_EQ(code(w->update(&live, v.data(), BPF_ANY, token)), EPERM) << "frozen, seen through the shared header";
    EXPECT_EQ(code(w->erase(&k, token)), EPERM);
    auto ro = view::open(m->memfd());
    ASSERT_TRUE(ro.has_value());
    EXPECT_EQ(code(ro->update(&k, v.data(), BPF_ANY, token)), EOPNOTSUPP);
    EXPECT_EQ(code(ro->erase(&k, token)), EOPNOTSUPP);
}

TEST(HashWindow, WhatAWindowUnlinksWaitsForTheCreatorsReaders) {
    // The window cannot see the creator's readers, so it never reuses what it unlinks; the
    // creator stamps those elements with its own epoch and reuses them once its readers pass.
    const uint32_t token = client_writer | 7;
    auto m = must_create(make_spec(BPF_MAP_TYPE_HASH, 4, 8, 4));
    auto w = view::open_writable(m->memfd());
    ASSERT_TRUE(w.has_value()) << w.error().message;
    uint32_t k = 0, other = 1;
    uint64_t v = 0;
    ASSERT_EQ(code(update_elem(*m, &k, &v, BPF_ANY)), 0);
    {
        testing::program_thread stuck;  // holds the pointer below until it passes a quiescent point
        const auto* held = static_cast<const uint64_t*>(m->ops().lookup(*m, &k));
        ASSERT_NE(held, nullptr);
        int err = 0;
        uint64_t n = 0;
        while (n < 10000 && err == 0) {
            v = ++n;
            err = code(w->update(&k, &v, BPF_EXIST, token));
        }
        EXPECT_EQ(err, EAGAIN) << "the window ran out of spares instead of reusing its own retired elements";
        EXPECT_GT(n, 250u) << "every never-used element is a spare";
        EXPECT_EQ(*held, 0u) << "the element a program holds was reused";
        EXPECT_EQ(code(update_elem(*m, &other, &v, BPF_ANY)), ENOMEM) << "the creator's reader has not passed";
        EXPECT_EQ(*held, 0u) << "the element a program holds was reused";
    }
    EXPECT_EQ(code(update_elem(*m, &other, &v, BPF_ANY)), 0) << "the creator reclaims the window's elements";
    for (int i = 0; i < 200; ++i) {
        v = 100000 + i;
        ASSERT_EQ(code(w->update(&k, &v, BPF_EXIST, token)), 0) << "the window reuses what the creator reclaimed, " << i;
    }
    uint64_t got = 0;
    ASSERT_EQ(code(lookup_elem(*m, &k, &got, 0)), 0);
    EXPECT_EQ(got, v);
}

TEST(HashWindow, AWriterLockHeldByAGoneClientIsTakenBack) {
    auto m = must_create(make_spec(BPF_MAP_TYPE_HASH, 4, 8, 4));
    const uint32_t gone = client_writer | 9;
    m->header().writer_lock.store(gone);  // a client killed in the middle of a write
    EXPECT_FALSE(release_writer(*m, client_writer | 8)) << "another client's token";
    EXPECT_FALSE(release_writer(*m, in_process_writer));
    EXPECT_TRUE(release_writer(*m, gone));
    EXPECT_FALSE(release_writer(*m, gone)) << "free already";

    // A writer of the appliance finds the holder dead (exited, reaped or not) and takes the lock.
    for (bool reaped : {true, false}) {
        pid_t child = fork();
        if (child == 0) _exit(0);
        if (reaped) waitpid(child, nullptr, 0);
        else while (!testing::is_zombie(child)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        m->header().writer_lock.store(client_writer | uint32_t(child));
        uint32_t k = reaped;
        uint64_t v = 1;
        EXPECT_EQ(code(update_elem(*m, &k, &v, BPF_ANY)), 0) << (reaped ? "reaped" : "a zombie");
        EXPECT_EQ(m->ops().update(*m, &k, &v, BPF_ANY), 0) << "program side";
        EXPECT_EQ(m->header().writer_lock.load(), 0u);
        if (!reaped) waitpid(child, nullptr, 0);
    }

    // A live holder that does not let go (a stopped client): programs give up at once with EBUSY,
    // syscalls after a second, naming it; a window hands the write to the appliance (EAGAIN).
    const uint32_t live = client_writer | uint32_t(getpid());
    m->header().writer_lock.store(live);
    uint32_t k = 3;
    uint64_t v = 1;
    EXPECT_EQ(m->ops().update(*m, &k, &v, BPF_ANY), -EBUSY);
    EXPECT_EQ(m->ops().erase(*m, &k), -EBUSY);
    auto r = update_elem(*m, &k, &v, BPF_ANY);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, EBUSY);
    EXPECT_NE(r.error().message.find(std::to_string(getpid())), std::string::npos) << r.error().message;
    auto w = view::open_writable(m->memfd());
    ASSERT_TRUE(w.has_value());
    EXPECT_EQ(code(w->update(&k, &v, BPF_ANY, client_writer | 5)), EAGAIN);
    EXPECT_EQ(m->header().writer_lock.load(), live) << "a live holder keeps its lock";
    m->header().writer_lock.store(0);
}

}  // namespace
}  // namespace xdprt::maps
