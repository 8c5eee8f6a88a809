// The maps whose values are objects: PROG_ARRAY, ARRAY_OF_MAPS, PERF_EVENT_ARRAY, HASH_OF_MAPS,
// DEVMAP, DEVMAP_HASH, CPUMAP, XSKMAP. The server resolves fds into held_objects; these tests
// hand in objects directly and check the kernel's errnos (checked on the 6.18 host with libbpf),
// what userspace and programs see, and that a replaced object lives until readers are quiescent.
#include <fstream>

#include "maps_test_util.h"

namespace xdprt::maps {
namespace {

using testing::code;
using testing::create_errno;
using testing::make_spec;
using testing::must_create;

constexpr int enotsupp = 524;

// A stand-in for a program or an inner map: what the map holds, watched through a weak_ptr.
struct object {
    uint32_t magic = 0x0b1ec7;
};

held_object hold(std::shared_ptr<object> o, uint32_t id, uint32_t extra = 0) {
    return held_object{o.get(), id, std::move(o), extra};
}

uint32_t kernel_nr_cpus() {
    std::ifstream f("/sys/devices/system/cpu/kernel_max");
    uint32_t highest = 8191;
    f >> highest;
    return highest + 1;
}

TEST(FdArrayMaps, CreateChecksAsTheKernel) {
    for (uint32_t t : {BPF_MAP_TYPE_PROG_ARRAY, BPF_MAP_TYPE_PERF_EVENT_ARRAY}) {
        EXPECT_EQ(create_errno(make_spec(t, 4, 8, 10)), EINVAL) << type_name(t);
        EXPECT_EQ(create_errno(make_spec(t, 8, 4, 10)), EINVAL) << type_name(t);
        EXPECT_EQ(create_errno(make_spec(t, 4, 4, 0)), EINVAL) << type_name(t);
        EXPECT_EQ(create_errno(make_spec(t, 4, 4, 10, BPF_F_MMAPABLE)), EINVAL) << type_name(t);
        EXPECT_EQ(create_errno(make_spec(t, 4, 4, 10, BPF_F_RDONLY_PROG)), EINVAL) << type_name(t);
    }
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 10, BPF_F_PRESERVE_ELEMS)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 10, BPF_F_PRESERVE_ELEMS)), 0);

    auto inner = must_create(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 1));
    for (uint32_t t : {BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS}) {
        auto s = make_spec(t, 4, 4, 10);
        EXPECT_EQ(create_errno(s), EBADF) << type_name(t) << ": no inner map";
        s.inner = inner.get();
        EXPECT_EQ(create_errno(s), 0) << type_name(t);
        s.value_size = 8;
        EXPECT_EQ(create_errno(s), EINVAL) << type_name(t);
    }
    auto s = make_spec(BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 10, BPF_F_RDONLY_PROG);
    s.inner = inner.get();
    EXPECT_EQ(create_errno(s), EINVAL);
}

TEST(FdArrayMaps, ProgArrayHoldsProgramsUntilReadersAreQuiescent) {
    auto m = must_create(make_spec(BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4));
    auto prog = std::make_shared<object>();
    std::weak_ptr<object> watch = prog;
    uint32_t k = 0, v = 0, next = 0;
    EXPECT_EQ(code(lookup_elem(*m, &k, &v, 0)), ENOENT);
    EXPECT_EQ(code(delete_elem(*m, &k)), ENOENT);
    EXPECT_EQ(code(update_object(*m, &k, hold(prog, 42), BPF_NOEXIST)), EINVAL);
    EXPECT_EQ(code(update_object(*m, &k, hold(prog, 42), BPF_EXIST)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, &k, &v, BPF_ANY)), EINVAL) << "an unresolved fd";
    k = 4;
    EXPECT_EQ(code(update_object(*m, &k, hold(prog, 42), BPF_ANY)), E2BIG);
    EXPECT_EQ(code(delete_elem(*m, &k)), E2BIG);
    k = 1;
    ASSERT_EQ(code(update_object(*m, &k, hold(prog, 42), BPF_ANY)), 0);
    ASSERT_EQ(code(lookup_elem(*m, &k, &v, 0)), 0);
    EXPECT_EQ(v, 42u) << "userspace sees the program's id";
    EXPECT_EQ(object_at(*m, 1), prog.get()) << "tail calls see the program";
    EXPECT_EQ(object_at(*m, 0), nullptr);
    EXPECT_EQ(object_at(*m, 9), nullptr);
    EXPECT_EQ(m->ops().update(*m, &k, &v, 0), -EOPNOTSUPP);
    ASSERT_EQ(code(get_next_key(*m, nullptr, &next)), 0);
    EXPECT_EQ(next, 0u);

    prog.reset();
    {
        testing::program_thread worker;  // online: may still be running the old program
        ASSERT_EQ(code(delete_elem(*m, &k)), 0);
        qsbr::process().poll();
        EXPECT_FALSE(watch.expired()) << "released before the worker's quiescent point";
        worker.reader.quiescent();
        qsbr::process().poll();
        EXPECT_TRUE(watch.expired());
    }
    EXPECT_EQ(code(delete_elem(*m, &k)), ENOENT);
}

TEST(FdArrayMaps, ArrayOfMapsAndPerfEventArray) {
    auto inner = must_create(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 1));
    auto s = make_spec(BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 2);
    s.inner = inner.get();
    auto m = must_create(s);
    auto obj = std::make_shared<object>();
    uint32_t k = 0, v = 0;
    ASSERT_EQ(code(update_object(*m, &k, hold(obj, 163), BPF_ANY)), 0);
    ASSERT_EQ(code(lookup_elem(*m, &k, &v, 0)), 0);
    EXPECT_EQ(v, 163u);
    EXPECT_EQ(m->ops().lookup(*m, &k), obj.get()) << "programs get the inner map";
    k = 1;
    EXPECT_EQ(code(delete_elem(*m, &k)), ENOENT);
    EXPECT_EQ(m->ops().lookup(*m, &k), nullptr);
    k = 2;
    EXPECT_EQ(code(delete_elem(*m, &k)), E2BIG);
    EXPECT_EQ(code(lookup_and_delete_elem(*m, &k, &v, 0)), enotsupp);

    auto pe = must_create(make_spec(BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 2));
    k = 0;
    EXPECT_EQ(code(lookup_elem(*pe, &k, &v, 0)), enotsupp);
    EXPECT_EQ(code(delete_elem(*pe, &k)), ENOENT);
    ASSERT_EQ(code(update_object(*pe, &k, hold(obj, 5), BPF_ANY)), 0);
    EXPECT_EQ(object_at(*pe, 0), obj.get());
    EXPECT_EQ(code(delete_elem(*pe, &k)), 0);
}

TEST(DevMap, ChecksAndValuesAsTheKernel) {
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_DEVMAP, 4, 12, 10)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_DEVMAP, 8, 4, 10)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_DEVMAP, 4, 4, 0)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_DEVMAP, 4, 4, 10, BPF_F_RDONLY_PROG)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_DEVMAP, 4, 4, 10, BPF_F_RDONLY)), 0);

    auto m = must_create(make_spec(BPF_MAP_TYPE_DEVMAP, 4, 8, 4));
    auto dev = std::make_shared<object>();
    uint32_t k = 0, v[2] = {};
    EXPECT_EQ(code(lookup_elem(*m, &k, v, 0)), ENOENT);
    EXPECT_EQ(code(update_object(*m, &k, hold(dev, 0, 1), BPF_NOEXIST)), EEXIST);
    EXPECT_EQ(code(update_object(*m, &k, hold(dev, 0, 1), 3)), EINVAL);
    k = 4;
    EXPECT_EQ(code(update_object(*m, &k, hold(dev, 0, 1), BPF_ANY)), E2BIG);
    k = 0;
    ASSERT_EQ(code(update_object(*m, &k, hold(dev, 7, 1), BPF_ANY)), 0);
    ASSERT_EQ(code(lookup_elem(*m, &k, v, 0)), 0);
    EXPECT_EQ(v[0], 1u) << "ifindex";
    EXPECT_EQ(v[1], 7u) << "program id";
    auto* pv = static_cast<uint32_t*>(m->ops().lookup(*m, &k));
    ASSERT_NE(pv, nullptr);
    EXPECT_EQ(pv[0], 1u) << "programs read the bpf_devmap_val";
    EXPECT_EQ(code(delete_elem(*m, &k)), 0);
    EXPECT_EQ(code(delete_elem(*m, &k)), 0) << "clearing an empty slot succeeds";
    EXPECT_EQ(code(lookup_elem(*m, &k, v, 0)), ENOENT);
    k = 4;
    EXPECT_EQ(code(delete_elem(*m, &k)), EINVAL);
    EXPECT_EQ(testing::walk_keys<uint32_t>(*m), (std::vector<uint32_t>{0, 1, 2, 3}));
}

TEST(DevMapHash, ChecksAndValuesAsTheKernel) {
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_DEVMAP_HASH, 4, 12, 10)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_DEVMAP_HASH, 4, 8, 10, BPF_F_NO_PREALLOC)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_DEVMAP_HASH, 4, 4, 0xffffffffu)), EINVAL);

    auto m = must_create(make_spec(BPF_MAP_TYPE_DEVMAP_HASH, 4, 8, 2));
    auto dev = std::make_shared<object>();
    uint32_t k = 0, v[2] = {};
    ASSERT_EQ(code(update_object(*m, &k, hold(dev, 9, 1), BPF_ANY)), 0);
    EXPECT_EQ(code(update_object(*m, &k, hold(dev, 9, 1), BPF_NOEXIST)), EEXIST);
    EXPECT_EQ(code(update_object(*m, &k, hold(dev, 9, 1), 3)), EINVAL);
    k = 5;  // __dev_map_hash_update_elem ignores BPF_EXIST: a missing key is inserted
    EXPECT_EQ(code(update_object(*m, &k, hold(dev, 9, 2), BPF_EXIST)), 0);
    ASSERT_EQ(code(lookup_elem(*m, &k, v, 0)), 0);
    EXPECT_EQ(v[0], 2u);
    EXPECT_EQ(v[1], 9u);
    k = 6;
    EXPECT_EQ(code(update_object(*m, &k, hold(dev, 9, 3), BPF_ANY)), E2BIG);
    k = 7;
    EXPECT_EQ(code(delete_elem(*m, &k)), ENOENT);
    EXPECT_EQ(code(lookup_and_delete_elem(*m, &k, v, 0)), enotsupp);
    k = 0;
    auto* pv = static_cast<uint32_t*>(m->ops().lookup(*m, &k));
    ASSERT_NE(pv, nullptr);
    EXPECT_EQ(pv[0], 1u);
    EXPECT_EQ(testing::walk_keys<uint32_t>(*m).size(), 2u);
}

TEST(CpuMap, ChecksAsTheKernel) {
    const uint32_t nr_cpus = kernel_nr_cpus();
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_CPUMAP, 4, 12, 10)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_CPUMAP, 4, 4, 10, BPF_F_RDONLY)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_CPUMAP, 4, 4, nr_cpus)), 0);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_CPUMAP, 4, 4, nr_cpus + 1)), E2BIG) << "NR_CPUS of this kernel";

    const uint32_t max = possible_cpus() + 2;
    auto m = must_create(make_spec(BPF_MAP_TYPE_CPUMAP, 4, 8, max));
    auto ring = std::make_shared<object>();
    uint32_t k = 0, v[2] = {};
    EXPECT_EQ(code(lookup_elem(*m, &k, v, 0)), ENOENT);
    EXPECT_EQ(code(update_object(*m, &k, hold(ring, 0, 16385), BPF_ANY)), EOVERFLOW) << "qsize above 16384";
    ASSERT_EQ(code(update_object(*m, &k, hold(ring, 0, 256), BPF_ANY)), 0);
    ASSERT_EQ(code(lookup_elem(*m, &k, v, 0)), 0);
    EXPECT_EQ(v[0], 256u);
    EXPECT_EQ(code(update_object(*m, &k, hold(ring, 0, 256), BPF_NOEXIST)), EEXIST);
    k = max - 1;  // not a possible CPU, whatever the qsize
    EXPECT_EQ(code(update_object(*m, &k, hold(ring, 0, 256), BPF_ANY)), ENODEV);
    EXPECT_EQ(code(update_object(*m, &k, {}, BPF_ANY)), ENODEV);
    EXPECT_EQ(code(update_object(*m, &k, hold(ring, 0, 16385), BPF_ANY)), EOVERFLOW);
    k = max;
    EXPECT_EQ(code(update_object(*m, &k, hold(ring, 0, 256), BPF_ANY)), E2BIG);
    EXPECT_EQ(code(delete_elem(*m, &k)), EINVAL);
    k = 0;
    EXPECT_EQ(code(delete_elem(*m, &k)), 0);
    EXPECT_EQ(code(lookup_elem(*m, &k, v, 0)), ENOENT);
}

TEST(XskMap, ChecksAsTheKernel) {
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_XSKMAP, 4, 8, 10)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_XSKMAP, 4, 4, 10, BPF_F_RDONLY_PROG)), EINVAL);
    auto m = must_create(make_spec(BPF_MAP_TYPE_XSKMAP, 4, 4, 4));
    auto sock = std::make_shared<object>();
    uint32_t k = 0, v = 0;
    EXPECT_EQ(code(lookup_elem(*m, &k, &v, 0)), EOPNOTSUPP);
    EXPECT_EQ(code(delete_elem(*m, &k)), 0) << "xsk_map_delete_elem clears an empty slot";
    k = 9;
    EXPECT_EQ(code(delete_elem(*m, &k)), EINVAL);
    k = 1;
    ASSERT_EQ(code(update_object(*m, &k, hold(sock, 3), BPF_ANY)), 0);
    EXPECT_EQ(m->ops().lookup(*m, &k), sock.get()) << "programs get the socket";
    EXPECT_EQ(code(delete_elem(*m, &k)), 0);
    EXPECT_EQ(m->ops().lookup(*m, &k), nullptr);
}

TEST(HashOfMaps, ChecksAndValuesAsTheKernel) {
    auto inner = must_create(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 1));
    auto s = make_spec(BPF_MAP_TYPE_HASH_OF_MAPS, 4, 4, 2);
    s.inner = inner.get();
    auto m = must_create(s);
    auto a = std::make_shared<object>(), b = std::make_shared<object>();
    uint32_t k = 0, v = 0;
    EXPECT_EQ(code(update_object(*m, &k, hold(a, 11), BPF_EXIST)), ENOENT);
    EXPECT_EQ(code(update_object(*m, &k, hold(a, 11), 3)), EINVAL);
    ASSERT_EQ(code(update_object(*m, &k, hold(a, 11), BPF_ANY)), 0);
    EXPECT_EQ(code(update_object(*m, &k, hold(a, 11), BPF_NOEXIST)), EEXIST);
    ASSERT_EQ(code(lookup_elem(*m, &k, &v, 0)), 0);
    EXPECT_EQ(v, 11u);
    EXPECT_EQ(m->ops().lookup(*m, &k), a.get());
    EXPECT_EQ(code(lookup_and_delete_elem(*m, &k, &v, 0)), enotsupp);
    k = 1;
    ASSERT_EQ(code(update_object(*m, &k, hold(b, 12), BPF_ANY)), 0);
    k = 2;
    EXPECT_EQ(code(update_object(*m, &k, hold(b, 12), BPF_ANY)), E2BIG);
    EXPECT_EQ(testing::walk_keys<uint32_t>(*m).size(), 2u);
    k = 0;
    ASSERT_EQ(code(delete_elem(*m, &k)), 0);
    EXPECT_EQ(m->ops().lookup(*m, &k), nullptr);
}

TEST(HashOfMaps, AFailedReplaceKeepsTheOldInnerMapAlive) {
    // One entry, and a reader that never passes a quiescent point: each replacement parks the old
    // element until the pool of spares runs out and the update fails with ENOMEM. The element
    // programs still reach must keep its object.
    auto inner = must_create(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 1));
    auto s = make_spec(BPF_MAP_TYPE_HASH_OF_MAPS, 4, 4, 1);
    s.inner = inner.get();
    auto m = must_create(s);
    uint32_t k = 0;
    std::weak_ptr<object> current;
    {
        testing::program_thread stuck;
        int err = 0;
        for (int i = 0; i < 10000 && err == 0; ++i) {
            auto o = std::make_shared<object>();
            err = code(update_object(*m, &k, hold(o, uint32_t(i + 1)), BPF_ANY));
            if (err == 0) current = o;
        }
        ASSERT_EQ(err, ENOMEM);
    }
    qsbr::process().poll();  // the stuck reader is gone: every deferred release runs
    auto* seen = static_cast<object*>(m->ops().lookup(*m, &k));
    ASSERT_NE(seen, nullptr);
    ASSERT_FALSE(current.expired()) << "the map still points at an object whose reference it dropped";
    EXPECT_EQ(seen, current.lock().get());
    EXPECT_EQ(seen->magic, 0x0b1ec7u);
}

}  // namespace
}  // namespace xdprt::maps
