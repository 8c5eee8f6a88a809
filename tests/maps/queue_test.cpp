// QUEUE and STACK against the kernel's errnos (checked on the 6.18 host with libbpf): creation,
// push with and without BPF_EXIST, peek, pop, FIFO and LIFO order, and the keyed commands the
// kernel refuses.
#include <thread>

#include "maps_test_util.h"

namespace xdprt::maps {
namespace {

using testing::code;
using testing::create_errno;
using testing::make_spec;
using testing::must_create;

class QueueStack : public ::testing::TestWithParam<uint32_t> {};

TEST_P(QueueStack, CreateChecksAsTheKernel) {
    uint32_t t = GetParam();
    EXPECT_EQ(create_errno(make_spec(t, 4, 4, 10)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(t, 0, 0, 10)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(t, 0, 4, 0)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(t, 0, 4, 10, BPF_F_NO_PREALLOC)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(t, 0, 4, 10, BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(t, 0, 4, 10, BPF_F_RDONLY_PROG)), 0);
    EXPECT_EQ(create_errno(make_spec(t, 0, (1u << 22) + 1, 10)), E2BIG);
    EXPECT_EQ(create_errno(make_spec(t, 0, (1u << 22) + 1, 0)), EINVAL) << "EINVAL checks come first";
    EXPECT_EQ(create_errno(make_spec(t, 0, 1u << 22, 4)), 0);
    auto extra = make_spec(t, 0, 4, 10);
    extra.extra = 1;
    EXPECT_EQ(create_errno(extra), EINVAL);
    // 4G values of 4 bytes: 16 GiB of sparse memory, as the kernel accepts it.
    EXPECT_EQ(create_errno(make_spec(t, 0, 4, 0xffffffffu)), 0);
}

TEST_P(QueueStack, SyscallPushPeekPopAsTheKernel) {
    const bool fifo = GetParam() == BPF_MAP_TYPE_QUEUE;
    auto m = must_create(make_spec(GetParam(), 0, 4, 2));
    uint32_t v = 7, k = 0, next = 0;
    EXPECT_EQ(code(lookup_elem(*m, nullptr, &v, 0)), ENOENT);
    EXPECT_EQ(v, 0u) << "an empty peek zeroes the value";
    EXPECT_EQ(code(lookup_and_delete_elem(*m, nullptr, &v, 0)), ENOENT);
    EXPECT_EQ(code(lookup_elem(*m, &k, &v, 0)), EINVAL) << "no keys";
    EXPECT_EQ(code(update_elem(*m, &k, &v, 0)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, nullptr, &v, BPF_NOEXIST)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, nullptr, &v, 3)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, nullptr, &v, BPF_F_LOCK)), EINVAL);

    v = 1;
    ASSERT_EQ(code(update_elem(*m, nullptr, &v, BPF_ANY)), 0);
    v = 2;
    ASSERT_EQ(code(update_elem(*m, nullptr, &v, BPF_EXIST)), 0);
    v = 3;
    EXPECT_EQ(code(update_elem(*m, nullptr, &v, BPF_ANY)), E2BIG);
    ASSERT_EQ(code(update_elem(*m, nullptr, &v, BPF_EXIST)), 0) << "EXIST drops the oldest (1)";
    ASSERT_EQ(code(lookup_elem(*m, nullptr, &v, 0)), 0);
    EXPECT_EQ(v, fifo ? 2u : 3u);
    EXPECT_EQ(code(lookup_elem(*m, nullptr, &v, BPF_F_LOCK)), EINVAL);
    EXPECT_EQ(code(lookup_and_delete_elem(*m, nullptr, &v, BPF_F_LOCK)), EINVAL);
    EXPECT_EQ(code(lookup_and_delete_elem(*m, nullptr, &v, 1)), EINVAL);
    ASSERT_EQ(code(lookup_and_delete_elem(*m, nullptr, &v, 0)), 0);
    EXPECT_EQ(v, fifo ? 2u : 3u);
    ASSERT_EQ(code(lookup_and_delete_elem(*m, nullptr, &v, 0)), 0);
    EXPECT_EQ(v, fifo ? 3u : 2u);
    EXPECT_EQ(code(lookup_and_delete_elem(*m, nullptr, &v, 0)), ENOENT);

    EXPECT_EQ(code(delete_elem(*m, nullptr)), EINVAL);
    EXPECT_EQ(code(delete_elem(*m, &k)), EINVAL);
    EXPECT_EQ(code(get_next_key(*m, nullptr, &next)), EINVAL);
    EXPECT_EQ(code(get_next_key(*m, &k, &next)), EINVAL);

    ASSERT_EQ(code(update_elem(*m, nullptr, &v, 0)), 0);
    ASSERT_EQ(code(freeze(*m)), 0);
    EXPECT_EQ(code(update_elem(*m, nullptr, &v, 0)), EPERM);
    EXPECT_EQ(code(lookup_and_delete_elem(*m, nullptr, &v, 0)), EPERM);
    EXPECT_EQ(code(lookup_elem(*m, nullptr, &v, 0)), 0);
    EXPECT_EQ(m->ops().pop(*m, &v), 0) << "programs still pop a frozen map";

    auto wo = must_create(make_spec(GetParam(), 0, 4, 2, BPF_F_WRONLY));
    EXPECT_EQ(code(update_elem(*wo, nullptr, &v, 0)), 0);
    EXPECT_EQ(code(lookup_and_delete_elem(*wo, nullptr, &v, 0)), EPERM);
}

TEST_P(QueueStack, ProgramSideOrderAcrossTheWrap) {
    const bool fifo = GetParam() == BPF_MAP_TYPE_QUEUE;
    const uint32_t n = 5;
    auto m = must_create(make_spec(GetParam(), 0, 8, n));
    uint64_t v = 0;
    uint32_t k = 0;
    EXPECT_EQ(m->ops().lookup(*m, &k), nullptr);
    EXPECT_EQ(m->ops().update(*m, &k, &v, 0), -EINVAL);
    EXPECT_EQ(m->ops().erase(*m, &k), -EINVAL);
    EXPECT_EQ(m->ops().push(*m, &v, BPF_NOEXIST), -EINVAL);
    EXPECT_EQ(m->ops().push(*m, &v, 4), -EINVAL);
    // Several rounds so head and tail wrap around the n + 1 slots.
    for (uint64_t round = 0; round < 7; ++round) {
        for (uint64_t i = 0; i < n; ++i) {
            uint64_t x = round * 100 + i;
            ASSERT_EQ(m->ops().push(*m, &x, BPF_ANY), 0);
        }
        EXPECT_EQ(m->ops().push(*m, &v, BPF_ANY), -E2BIG);
        ASSERT_EQ(m->ops().peek(*m, &v), 0);
        EXPECT_EQ(v, round * 100 + (fifo ? 0 : n - 1));
        for (uint64_t i = 0; i < n; ++i) {
            ASSERT_EQ(m->ops().pop(*m, &v), 0);
            EXPECT_EQ(v, round * 100 + (fifo ? i : n - 1 - i));
        }
        EXPECT_EQ(m->ops().pop(*m, &v), -ENOENT);
        EXPECT_EQ(m->ops().peek(*m, &v), -ENOENT);
    }
    // Overwriting pushes keep the newest n values.
    for (uint64_t x = 0; x < 3 * n; ++x) ASSERT_EQ(m->ops().push(*m, &x, BPF_EXIST), 0);
    for (uint64_t i = 0; i < n; ++i) {
        ASSERT_EQ(m->ops().pop(*m, &v), 0);
        EXPECT_EQ(v, fifo ? 2 * n + i : 3 * n - 1 - i);
    }
    EXPECT_EQ(code(lookup_and_delete_elem(*m, nullptr, &v, 0)), ENOENT);
}

TEST_P(QueueStack, ConcurrentPushersAndPoppersLoseNothing) {
    auto m = must_create(make_spec(GetParam(), 0, 8, 64));
    const uint64_t per_thread = 20000;
    std::atomic<uint64_t> popped_sum{0}, popped{0};
    auto pusher = [&](uint64_t base) {
        for (uint64_t i = 1; i <= per_thread; ++i) {
            uint64_t x = base + i;
            while (m->ops().push(*m, &x, BPF_ANY) == -E2BIG) std::this_thread::yield();
        }
    };
    auto popper = [&] {
        uint64_t v;
        while (popped.load() < 2 * per_thread) {
            if (m->ops().pop(*m, &v) == 0) popped_sum += v, ++popped;
            else std::this_thread::yield();
        }
    };
    std::thread a(pusher, 0), b(pusher, 1'000'000), c(popper);
    a.join();
    b.join();
    c.join();
    uint64_t expect = 2 * (per_thread * (per_thread + 1) / 2) + per_thread * 1'000'000;
    EXPECT_EQ(popped_sum.load(), expect);
}

INSTANTIATE_TEST_SUITE_P(Both, QueueStack, ::testing::Values(BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK),
                         [](const auto& info) { return std::string(type_name(info.param)); });

}  // namespace
}  // namespace xdprt::maps
