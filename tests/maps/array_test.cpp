// ARRAY and PERCPU_ARRAY against the kernel's errnos (each case checked on the 6.18 host with
// libbpf), the per-CPU value layout, BPF_F_LOCK, huge sparse arrays, and the generic command
// checks (RDONLY / WRONLY / MAP_FREEZE) that every type shares.
#include <sys/mman.h>
#include <unistd.h>

#include <thread>

#include "maps_test_util.h"

namespace xdprt::maps {
namespace {

using testing::code;
using testing::create_errno;
using testing::make_spec;
using testing::must_create;

constexpr int enotsupp = 524;

TEST(ArrayMap, CreateChecksAsTheKernel) {
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_ARRAY, 8, 4, 10)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_ARRAY, 4, 0, 10)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 0)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 10, BPF_F_NO_PREALLOC)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 10, BPF_F_PRESERVE_ELEMS)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 10, BPF_F_RDONLY | BPF_F_WRONLY)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 10, BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_ARRAY, 4, 0x80000000u, 1)), E2BIG);
    // 6.18 bounds array values by INT_MAX only (it used to be KMALLOC_MAX_SIZE).
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_ARRAY, 4, (1u << 22) + 8, 1)), 0);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 10, BPF_F_MMAPABLE)), 0);
    auto with_extra = make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 10);
    with_extra.extra = 1;
    EXPECT_EQ(create_errno(with_extra), EINVAL);

    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 10, BPF_F_MMAPABLE)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 10, BPF_F_NUMA_NODE)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 32768, 10)), 0);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 32769, 10)), E2BIG);
}

TEST(ArrayMap, UpdateFlagsAsTheKernel) {
    auto m = must_create(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 4));
    uint32_t k = 4, v = 7;
    EXPECT_EQ(code(update_elem(*m, &k, &v, BPF_ANY)), E2BIG);
    k = 1;
    EXPECT_EQ(code(update_elem(*m, &k, &v, BPF_NOEXIST)), EEXIST);
    EXPECT_EQ(code(update_elem(*m, &k, &v, 3)), EINVAL);  // was accepted before the fix
    EXPECT_EQ(code(update_elem(*m, &k, &v, 4)), EINVAL);  // BPF_F_LOCK: no lock in the value
    EXPECT_EQ(code(update_elem(*m, &k, &v, BPF_EXIST)), 0);
    uint32_t out = 0;
    ASSERT_EQ(code(lookup_elem(*m, &k, &out, 0)), 0);
    EXPECT_EQ(out, 7u);

    // Program side: the same errnos, and writes through the looked-up pointer.
    EXPECT_EQ(m->ops().update(*m, &k, &v, 3), -EINVAL);
    EXPECT_EQ(m->ops().update(*m, &k, &v, BPF_NOEXIST), -EEXIST);
    k = 9;
    EXPECT_EQ(m->ops().update(*m, &k, &v, BPF_ANY), -E2BIG);
    EXPECT_EQ(m->ops().lookup(*m, &k), nullptr);
    EXPECT_EQ(m->ops().erase(*m, &k), -EINVAL);
    k = 2;
    *static_cast<uint32_t*>(m->ops().lookup(*m, &k)) = 99;
    ASSERT_EQ(code(lookup_elem(*m, &k, &out, 0)), 0);
    EXPECT_EQ(out, 99u);
}

TEST(ArrayMap, LookupDeleteAndIteration) {
    auto m = must_create(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 4));
    uint32_t k = 9, v = 0;
    EXPECT_EQ(code(lookup_elem(*m, &k, &v, 0)), ENOENT);
    EXPECT_EQ(code(lookup_elem(*m, &k, &v, 1)), EINVAL);
    EXPECT_EQ(code(lookup_elem(*m, &k, &v, BPF_F_LOCK)), EINVAL);
    EXPECT_EQ(code(delete_elem(*m, &k)), EINVAL);
    k = 1;
    EXPECT_EQ(code(delete_elem(*m, &k)), EINVAL);
    EXPECT_EQ(code(lookup_and_delete_elem(*m, &k, &v, 0)), enotsupp);
    EXPECT_EQ(code(lookup_elem(*m, nullptr, &v, 0)), EFAULT);

    EXPECT_EQ(testing::walk_keys<uint32_t>(*m), (std::vector<uint32_t>{0, 1, 2, 3}));
    uint32_t next = 0;
    k = 3;
    EXPECT_EQ(code(get_next_key(*m, &k, &next)), ENOENT);
    k = 7;  // beyond the end: the first index again
    ASSERT_EQ(code(get_next_key(*m, &k, &next)), 0);
    EXPECT_EQ(next, 0u);
}

TEST(PercpuArrayMap, UserspaceSeesEveryCpuRoundedToEightBytes) {
    const uint32_t ncpu = possible_cpus();
    auto m = must_create(make_spec(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 12, 4));
    ASSERT_EQ(m->user_value_size(), 16u * ncpu);
    std::vector<uint32_t> in(4 * ncpu, 0xeeeeeeee), out(4 * ncpu, 0xffffffff);
    for (uint32_t c = 0; c < ncpu; ++c) in[4 * c] = 100 + c, in[4 * c + 1] = 200 + c, in[4 * c + 2] = 300 + c;
    uint32_t k = 2;
    ASSERT_EQ(code(update_elem(*m, &k, in.data(), BPF_ANY)), 0);
    ASSERT_EQ(code(lookup_elem(*m, &k, out.data(), 0)), 0);
    for (uint32_t c = 0; c < ncpu; ++c) {
        EXPECT_EQ(out[4 * c], 100 + c);
        EXPECT_EQ(out[4 * c + 2], 300 + c);
        EXPECT_EQ(out[4 * c + 3], 0u) << "padding is zeroed, not copied";
    }

    // A program on CPU n sees and writes slot n only.
    const uint32_t cpu = ncpu - 1;
    this_cpu = cpu;
    auto* slot = static_cast<uint32_t*>(m->ops().lookup(*m, &k));
    ASSERT_NE(slot, nullptr);
    EXPECT_EQ(slot[0], 100 + cpu);
    uint32_t mine[3] = {1, 2, 3};
    EXPECT_EQ(m->ops().update(*m, &k, mine, BPF_EXIST), 0);
    this_cpu = 0;
    ASSERT_EQ(code(lookup_elem(*m, &k, out.data(), 0)), 0);
    EXPECT_EQ(out[4 * cpu], 1u);
    EXPECT_EQ(out[4 * cpu + 2], 3u);
    if (cpu != 0) {
        EXPECT_EQ(out[0], 100u);
    }

    EXPECT_EQ(code(update_elem(*m, &k, in.data(), 3)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, &k, in.data(), BPF_F_LOCK)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, &k, in.data(), BPF_NOEXIST)), EEXIST);
    k = 4;
    EXPECT_EQ(code(update_elem(*m, &k, in.data(), BPF_ANY)), E2BIG);
}

// A value with a bpf_spin_lock in the middle: {u32 a; bpf_spin_lock lock; u32 b}.
struct locked_value {
    uint32_t a, lock, b;
};

spec locked_array(uint32_t max_entries) {
    auto s = make_spec(BPF_MAP_TYPE_ARRAY, 4, sizeof(locked_value), max_entries);
    s.spin_lock_off = 4;
    return s;
}

TEST(ArrayMap, SpinLockValueChecksAsTheKernel) {
    auto s = locked_array(4);
    s.type = BPF_MAP_TYPE_PERCPU_ARRAY;
    EXPECT_EQ(create_errno(s), EOPNOTSUPP);
    s = locked_array(4);
    s.spin_lock_off = 12;
    EXPECT_EQ(create_errno(s), EINVAL);
    s = locked_array(4);
    s.flags = BPF_F_RDONLY_PROG;
    EXPECT_EQ(create_errno(s), EACCES);
    auto lru = make_spec(BPF_MAP_TYPE_LRU_HASH, 4, 12, 4);
    lru.spin_lock_off = 4;
    EXPECT_EQ(create_errno(lru), EOPNOTSUPP);
    auto m = must_create(locked_array(4));
    EXPECT_EQ(code(freeze(*m)), enotsupp);
}

TEST(ArrayMap, SpinLockWordIsNeitherCopiedNorShown) {
    auto m = must_create(locked_array(4));
    uint32_t k = 1;
    locked_value in{5, 0xffffffff, 6}, out{};
    ASSERT_EQ(code(update_elem(*m, &k, &in, BPF_ANY)), 0);
    auto* slot = static_cast<locked_value*>(m->ops().lookup(*m, &k));
    EXPECT_EQ(slot->lock, 0u) << "the caller's lock word must not land in the map";
    ASSERT_EQ(code(update_elem(*m, &k, &in, BPF_F_LOCK)), 0);
    ASSERT_EQ(code(lookup_elem(*m, &k, &out, BPF_F_LOCK)), 0);
    EXPECT_EQ(out.a, 5u);
    EXPECT_EQ(out.b, 6u);
    slot->lock = 1;  // a program holds the lock: a plain lookup still hides the word
    ASSERT_EQ(code(lookup_elem(*m, &k, &out, 0)), 0);
    EXPECT_EQ(out.lock, 0u);
    slot->lock = 0;
}

TEST(ArrayMap, LockedUpdatesAndLookupsNeverTear) {
    auto m = must_create(locked_array(1));
    uint32_t k = 0;
    std::atomic<bool> done{false};
    std::thread writer([&] {
        for (uint32_t i = 1; i <= 20000; ++i) {
            locked_value v{i, 0, i};
            ASSERT_EQ(code(update_elem(*m, &k, &v, BPF_F_LOCK)), 0);
        }
        done = true;
    });
    uint64_t reads = 0;
    while (!done || reads < 1000) {
        locked_value v{};
        ASSERT_EQ(code(lookup_elem(*m, &k, &v, BPF_F_LOCK)), 0);
        ASSERT_EQ(v.a, v.b) << "a locked copy saw half an update";
        ++reads;
    }
    writer.join();
}

TEST(ArrayMap, HugeArrayIsSparse) {
    // 33.5M 4-byte values: 256 MiB of map, resident only where written.
    const uint32_t n = 33554432;
    size_t before = testing::rss_bytes();
    auto m = must_create(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, n));
    ASSERT_TRUE(m);
    EXPECT_GE(m->bytes(), size_t(n) * 8);
    for (uint32_t k : {0u, 12345678u, n - 1}) {
        uint32_t v = k ^ 0x5a5a5a5a;
        ASSERT_EQ(code(update_elem(*m, &k, &v, BPF_ANY)), 0);
    }
    for (uint32_t k : {0u, 12345678u, n - 1}) {
        uint32_t v = 0;
        ASSERT_EQ(code(lookup_elem(*m, &k, &v, 0)), 0);
        EXPECT_EQ(v, k ^ 0x5a5a5a5a);
    }
    uint32_t k = n, v = 0;
    EXPECT_EQ(code(update_elem(*m, &k, &v, BPF_ANY)), E2BIG);
    k = 7;
    ASSERT_EQ(code(lookup_elem(*m, &k, &v, 0)), 0);
    EXPECT_EQ(v, 0u);
    if (testing::rss_meaningful) {
        EXPECT_LT(testing::rss_bytes() - before, size_t(32) << 20);
    }
}

TEST(MapCommands, ReadOnlyWriteOnlyAndFrozenAsTheKernel) {
    uint32_t k = 0, v = 1, next = 0;
    auto ro = must_create(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 4, BPF_F_RDONLY));
    EXPECT_EQ(code(update_elem(*ro, &k, &v, 0)), EPERM);
    EXPECT_EQ(code(delete_elem(*ro, &k)), EPERM);
    EXPECT_EQ(code(lookup_elem(*ro, &k, &v, 0)), 0);
    EXPECT_EQ(code(freeze(*ro)), EINVAL);
    EXPECT_EQ(ro->ops().update(*ro, &k, &v, 0), 0) << "programs still write";

    auto wo = must_create(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 4, BPF_F_WRONLY));
    EXPECT_EQ(code(update_elem(*wo, &k, &v, 0)), 0);
    EXPECT_EQ(code(lookup_elem(*wo, &k, &v, 0)), EPERM);
    EXPECT_EQ(code(get_next_key(*wo, &k, &next)), EPERM);

    auto h = must_create(make_spec(BPF_MAP_TYPE_HASH, 4, 4, 4));
    ASSERT_EQ(code(update_elem(*h, &k, &v, 0)), 0);
    ASSERT_EQ(code(freeze(*h)), 0);
    EXPECT_EQ(code(freeze(*h)), EPERM);
    EXPECT_EQ(code(update_elem(*h, &k, &v, 0)), EPERM);
    EXPECT_EQ(code(update_elem(*h, nullptr, &v, 0)), EPERM) << "permission before the key";
    EXPECT_EQ(code(lookup_and_delete_elem(*h, &k, &v, 0)), EPERM);
    EXPECT_EQ(code(delete_elem(*h, &k)), EPERM);
    EXPECT_EQ(code(lookup_elem(*h, &k, &v, 0)), 0);
    EXPECT_EQ(code(lookup_elem(*h, nullptr, &v, 0)), EFAULT);
    EXPECT_EQ(code(get_next_key(*h, nullptr, &next)), 0);
    EXPECT_EQ(h->ops().erase(*h, &k), 0) << "programs still delete";
}

TEST(MapView, ReadsWhatTheCreatorWroteThroughTheMemfdAlone) {
    auto s = locked_array(4);
    auto m = must_create(s);
    uint32_t k = 2;
    locked_value in{7, 0, 8}, out{};
    ASSERT_EQ(code(update_elem(*m, &k, &in, BPF_ANY)), 0);
    static_cast<locked_value*>(m->ops().lookup(*m, &k))->lock = 1;
    auto v = view::open(m->memfd());
    ASSERT_TRUE(v.has_value()) << v.error().message;
    EXPECT_EQ(v->spec().type, uint32_t(BPF_MAP_TYPE_ARRAY));
    EXPECT_EQ(v->spec().value_size, sizeof(locked_value));
    EXPECT_EQ(v->spec().spin_lock_off, 4) << "from the header";
    ASSERT_EQ(code(v->copy_out(&k, &out)), 0);
    EXPECT_EQ(out.a, 7u);
    EXPECT_EQ(out.lock, 0u);
    EXPECT_EQ(out.b, 8u);
    k = 4;
    EXPECT_EQ(code(v->copy_out(&k, &out)), ENOENT);

    const uint32_t ncpu = possible_cpus();
    auto h = must_create(make_spec(BPF_MAP_TYPE_PERCPU_HASH, 8, 4, 16));
    uint64_t key = 1ull << 40;
    std::vector<uint64_t> vals(ncpu), got(ncpu);
    for (uint32_t c = 0; c < ncpu; ++c) vals[c] = 10 + c;
    ASSERT_EQ(code(update_elem(*h, &key, vals.data(), BPF_ANY)), 0);
    auto hv = view::open(h->memfd());
    ASSERT_TRUE(hv.has_value());
    ASSERT_EQ(code(hv->copy_out(&key, got.data())), 0);
    EXPECT_EQ(got, vals);
    key = 5;
    EXPECT_EQ(code(hv->copy_out(&key, got.data())), ENOENT);

    auto q = must_create(make_spec(BPF_MAP_TYPE_QUEUE, 0, 4, 4));
    auto qv = view::open(q->memfd());
    ASSERT_TRUE(qv.has_value());
    EXPECT_EQ(code(qv->copy_out(nullptr, &k)), EOPNOTSUPP) << "no lock-free reader";
    EXPECT_EQ(code(view::open(-1)), EBADF);
    int other = memfd_create("not-a-map", MFD_CLOEXEC);
    ASSERT_GE(other, 0);
    ASSERT_EQ(ftruncate(other, 8192), 0);
    EXPECT_EQ(code(view::open(other)), EINVAL);
    close(other);
}

TEST(MapView, AWritableWindowUpdatesArraysInPlaceWithTheKernelsChecks) {
    const uint32_t ncpu = possible_cpus();
    auto a = must_create(make_spec(BPF_MAP_TYPE_ARRAY, 4, 8, 4));
    auto w = view::open_writable(a->memfd());
    ASSERT_TRUE(w.has_value()) << w.error().message;
    EXPECT_TRUE(w->writable());
    uint32_t k = 3;
    uint64_t v = 0x1122334455667788, out = 0;
    ASSERT_EQ(code(w->update(&k, &v, BPF_ANY, client_writer | 7)), 0);
    ASSERT_EQ(code(lookup_elem(*a, &k, &out, 0)), 0);
    EXPECT_EQ(out, v) << "the creator sees the window's write";
    EXPECT_EQ(code(w->update(&k, &v, BPF_NOEXIST, client_writer | 7)), EEXIST);
    k = 4;
    EXPECT_EQ(code(w->update(&k, &v, BPF_ANY, client_writer | 7)), E2BIG);
    ASSERT_EQ(code(freeze(*a)), 0);
    k = 0;
    EXPECT_EQ(code(w->update(&k, &v, BPF_ANY, client_writer | 7)), EPERM) << "frozen, seen through the shared header";

    auto p = must_create(make_spec(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 2));
    auto pw = view::open_writable(p->memfd());
    ASSERT_TRUE(pw.has_value());
    std::vector<uint64_t> in(ncpu), got(ncpu);  // per CPU: 4 bytes, rounded up to 8
    for (uint32_t c = 0; c < ncpu; ++c) in[c] = 100 + c;
    k = 1;
    ASSERT_EQ(code(pw->update(&k, in.data(), BPF_EXIST, client_writer | 7)), 0);
    ASSERT_EQ(code(lookup_elem(*p, &k, got.data(), 0)), 0);
    EXPECT_EQ(got, in);

    auto q = must_create(make_spec(BPF_MAP_TYPE_QUEUE, 0, 8, 4));
    auto qw = view::open_writable(q->memfd());
    ASSERT_TRUE(qw.has_value());
    EXPECT_EQ(code(qw->update(nullptr, &v, BPF_ANY, client_writer | 7)), EOPNOTSUPP) << "queues are the appliance's to write";
    EXPECT_EQ(code(pw->update(&k, in.data(), BPF_ANY, in_process_writer)), EINVAL) << "a window writes with a client's token";
    auto ro = view::open(a->memfd());
    ASSERT_TRUE(ro.has_value());
    EXPECT_FALSE(ro->writable());
    EXPECT_EQ(code(ro->update(&k, &v, BPF_ANY, client_writer | 7)), EOPNOTSUPP);
}

}  // namespace
}  // namespace xdprt::maps
