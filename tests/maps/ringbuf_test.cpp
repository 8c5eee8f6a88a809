// RINGBUF: the kernel's errnos (checked on the 6.18 host with libbpf), its record format and
// positions, records that wrap read whole both contiguously (as libbpf reads its mmap) and by
// mask, reserve's refusal to overrun a record still being written, and concurrent producers.
#include <sys/mman.h>

#include <chrono>
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

spec ring(uint32_t bytes) { return make_spec(BPF_MAP_TYPE_RINGBUF, 0, 0, bytes); }

uint64_t u64_at(const map& m, size_t off) {
    uint64_t v;
    std::memcpy(&v, m.base() + off, 8);
    return v;
}
uint32_t u32_at(const map& m, size_t off) {
    uint32_t v;
    std::memcpy(&v, m.base() + off, 4);
    return v;
}

std::vector<std::string> consume_all(map& m) {
    std::vector<std::string> out;
    ringbuf_consume(m, [&](std::span<const std::byte> s) { out.emplace_back(reinterpret_cast<const char*>(s.data()), s.size()); });
    return out;
}

TEST(Ringbuf, CreateChecksAsTheKernel) {
    EXPECT_EQ(create_errno(ring(4096)), 0);
    EXPECT_EQ(create_errno(ring(3 * 8192)), EINVAL);
    EXPECT_EQ(create_errno(ring(2048)), EINVAL);
    EXPECT_EQ(create_errno(ring(0)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_RINGBUF, 4, 0, 4096)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_RINGBUF, 0, 4, 4096)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_RINGBUF, 0, 0, 4096, BPF_F_NO_PREALLOC)), EINVAL);
    EXPECT_EQ(create_errno(make_spec(BPF_MAP_TYPE_RINGBUF, 0, 0, 4096, BPF_F_RDONLY_PROG)), EINVAL);
    auto big = must_create(ring(1u << 31));  // 2 GiB, sparse
    ASSERT_TRUE(big);
    EXPECT_EQ(ringbuf_query(*big, BPF_RB_RING_SIZE), 1u << 31);
}

TEST(Ringbuf, ElementCommandsAsTheKernel) {
    auto m = must_create(ring(4096));
    uint32_t k = 0, v = 0;
    EXPECT_EQ(code(lookup_elem(*m, nullptr, &v, 0)), enotsupp);
    EXPECT_EQ(code(lookup_elem(*m, &k, &v, 0)), EINVAL);
    EXPECT_EQ(code(update_elem(*m, nullptr, &v, 0)), enotsupp);
    EXPECT_EQ(code(delete_elem(*m, nullptr)), enotsupp);
    EXPECT_EQ(code(get_next_key(*m, nullptr, &k)), enotsupp);
    EXPECT_EQ(code(lookup_and_delete_elem(*m, nullptr, &v, 0)), enotsupp);
    EXPECT_EQ(m->ops().lookup(*m, &k), nullptr);
    EXPECT_EQ(code(freeze(*m)), 0);
}

TEST(Ringbuf, RecordsAndPositionsAsTheKernelLaysThemOut) {
    auto m = must_create(ring(4096));
    ASSERT_EQ(ringbuf_reserve(*m, 8, 1), nullptr) << "reserve takes no flags";
    auto* a = static_cast<char*>(ringbuf_reserve(*m, 10, 0));
    ASSERT_EQ(a, reinterpret_cast<char*>(m->base()) + 8192 + 8) << "data from 8192, after the 8-byte header";
    EXPECT_EQ(u32_at(*m, 8192), 10u | BPF_RINGBUF_BUSY_BIT);
    EXPECT_EQ(u32_at(*m, 8196), 2u) << "pg_off: the header's page";
    EXPECT_EQ(u64_at(*m, 4096), 24u) << "producer_pos: 8 + 10 rounded to 8";
    EXPECT_EQ(u64_at(*m, 0), 0u) << "consumer_pos";
    std::memcpy(a, "0123456789", 10);
    auto* b = static_cast<char*>(ringbuf_reserve(*m, 3, 0));
    ASSERT_EQ(b, a + 24);
    std::memcpy(b, "abc", 3);
    ringbuf_submit(b, 0);
    EXPECT_EQ(consume_all(*m).size(), 0u) << "the first record is still reserved";
    ringbuf_submit(a, BPF_RB_NO_WAKEUP);
    EXPECT_EQ(u32_at(*m, 8192), 10u);
    EXPECT_EQ(consume_all(*m), (std::vector<std::string>{"0123456789", "abc"}));
    EXPECT_EQ(u64_at(*m, 0), 40u);

    auto* c = static_cast<char*>(ringbuf_reserve(*m, 5, 0));
    ringbuf_discard(c, 0);
    EXPECT_EQ(u32_at(*m, 8192 + 40), 5u | BPF_RINGBUF_DISCARD_BIT);
    ASSERT_EQ(ringbuf_output(*m, "xyz", 3, 0), 0);
    EXPECT_EQ(consume_all(*m), (std::vector<std::string>{"xyz"})) << "discarded records are skipped";
    EXPECT_EQ(ringbuf_output(*m, "xyz", 3, 4), -EINVAL);
}

TEST(Ringbuf, QueryFullAndTooLarge) {
    auto m = must_create(ring(4096));
    EXPECT_EQ(ringbuf_query(*m, BPF_RB_RING_SIZE), 4096u);
    EXPECT_EQ(ringbuf_reserve(*m, 4096 - 7, 0), nullptr) << "record larger than the ring";
    EXPECT_EQ(ringbuf_reserve(*m, uint64_t(1) << 32, 0), nullptr);
    std::vector<char> chunk(1000, 'q');
    int written = 0;
    while (ringbuf_output(*m, chunk.data(), chunk.size(), 0) == 0) ++written;
    EXPECT_EQ(written, 4) << "four 1008-byte records fit in 4095 bytes, a fifth does not";
    EXPECT_EQ(ringbuf_output(*m, chunk.data(), chunk.size(), 0), -EAGAIN);
    EXPECT_EQ(ringbuf_query(*m, BPF_RB_AVAIL_DATA), 4 * 1008u);
    EXPECT_EQ(ringbuf_query(*m, BPF_RB_PROD_POS), 4 * 1008u);
    EXPECT_EQ(ringbuf_query(*m, BPF_RB_CONS_POS), 0u);
    EXPECT_EQ(ringbuf_query(*m, 99), 0u);
    EXPECT_EQ(consume_all(*m).size(), 4u);
    EXPECT_EQ(ringbuf_query(*m, BPF_RB_AVAIL_DATA), 0u);
    EXPECT_EQ(ringbuf_query(*m, BPF_RB_CONS_POS), 4 * 1008u);
    EXPECT_EQ(ringbuf_output(*m, chunk.data(), chunk.size(), BPF_RB_FORCE_WAKEUP), 0);
}

// Reads the ring the way a consumer in another process does: from its own mapping of the memfd,
// libbpf's (consumer page, then 4K + 2N bytes from offset 4K), contiguously and also by mask.
struct outside_reader {
    size_t n;
    std::byte* cons = nullptr;
    std::byte* rest = nullptr;

    outside_reader(int memfd, size_t n) : n(n) {
        cons = static_cast<std::byte*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0));
        rest = static_cast<std::byte*>(mmap(nullptr, 4096 + 2 * n, PROT_READ, MAP_SHARED, memfd, 4096));
    }
    ~outside_reader() {
        munmap(cons, 4096);
        munmap(rest, 4096 + 2 * n);
    }
    // Every submitted record; each must read the same both ways.
    std::vector<std::string> consume() {
        std::vector<std::string> out;
        auto* cpos = reinterpret_cast<std::atomic<uint64_t>*>(cons);
        auto* ppos = reinterpret_cast<std::atomic<uint64_t>*>(rest);
        const std::byte* data = rest + 4096;
        for (uint64_t c = cpos->load(); c < ppos->load(std::memory_order_acquire);) {
            const std::byte* h = data + (c & (n - 1));
            uint32_t len = reinterpret_cast<const std::atomic<uint32_t>*>(h)->load(std::memory_order_acquire);
            if (len & BPF_RINGBUF_BUSY_BIT) break;
            len &= ~uint32_t(BPF_RINGBUF_DISCARD_BIT);
            std::string whole(reinterpret_cast<const char*>(h + 8), len), masked;
            for (uint64_t i = 0; i < len; ++i) masked += char(data[(c + 8 + i) & (n - 1)]);
            EXPECT_EQ(whole, masked) << "at position " << c;
            out.push_back(whole);
            c += (len + 8 + 7) & ~uint64_t(7);
            cpos->store(c, std::memory_order_release);
        }
        return out;
    }
};

TEST(Ringbuf, WrappedRecordsReadWholeFromAnyMapping) {
    auto m = must_create(ring(4096));
    outside_reader outside(m->memfd(), 4096);
    std::mt19937 rng(11);
    uint64_t seq = 0, wrapped = 0;
    for (int round = 0; round < 300; ++round) {
        std::vector<std::string> sent;
        for (int i = 0, count = 1 + int(rng() % 4); i < count; ++i) {
            std::string s = fmt::format("#{}:", seq++);
            s.resize(1 + rng() % 900, char('a' + round % 26));
            uint64_t pos = ringbuf_query(*m, BPF_RB_PROD_POS);
            auto* p = static_cast<char*>(ringbuf_reserve(*m, s.size(), 0));
            if (!p) break;
            wrapped += (pos % 4096) + 8 + s.size() > 4096;
            std::memcpy(p, s.data(), s.size());
            ringbuf_submit(p, 0);
            sent.push_back(s);
        }
        // Alternate consumers; both advance the same consumer_pos.
        auto got = round % 2 ? outside.consume() : consume_all(*m);
        ASSERT_EQ(got, sent) << "round " << round;
    }
    EXPECT_GT(wrapped, 20u) << "the test must cross the end of the ring";
}

TEST(Ringbuf, ReserveNeverOverrunsARecordStillBeingWritten) {
    // A consumer that skips ahead of a reserved record (the kernel's consumer page is writable
    // too) must not let producers reuse that record's space.
    auto m = must_create(ring(4096));
    auto* a = static_cast<char*>(ringbuf_reserve(*m, 100, 0));  // positions 0-111, busy
    ASSERT_NE(a, nullptr);
    reinterpret_cast<std::atomic<uint64_t>*>(m->base())->store(112);  // consumer skips it
    ASSERT_NE(ringbuf_reserve(*m, 3900, 0), nullptr);  // up to 4024: fits behind A
    EXPECT_EQ(ringbuf_reserve(*m, 100, 0), nullptr) << "would wrap onto A's header";
    EXPECT_EQ(u32_at(*m, 8192), 100u | BPF_RINGBUF_BUSY_BIT);
    ringbuf_submit(a, 0);
}

TEST(Ringbuf, ConcurrentProducersAndAConsumer) {
    // Two producers, each numbering its records (every 7th reserved one discarded), and a
    // consumer that must see each producer's records in order, none lost or torn.
    auto m = must_create(ring(1 << 14));
    const uint64_t per_thread = 50000;
    std::atomic<bool> stop{false};
    auto discarded = [](uint64_t i) { return i % 7 == 0 && i % 3 != 0; };
    auto producer = [&](uint64_t id) {
        for (uint64_t i = 0; i < per_thread && !stop; ++i) {
            uint64_t rec[3] = {id, i, id * 1000003 + i};
            size_t size = 8 * (i % 3 + 1) + (i % 3 == 0 ? 8 : 0);
            if (i % 3 == 0) {
                while (ringbuf_output(*m, rec, size, 0) != 0 && !stop) std::this_thread::yield();
                continue;
            }
            void* p = nullptr;
            while (!stop && !(p = ringbuf_reserve(*m, size, 0))) std::this_thread::yield();
            if (!p) return;
            std::memcpy(p, rec, size);
            if (discarded(i)) ringbuf_discard(p, 0);
            else ringbuf_submit(p, 0);
        }
    };
    std::thread a(producer, 0), b(producer, 1);
    uint64_t next[2] = {0, 0}, received = 0, bad = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while ((next[0] < per_thread || next[1] < per_thread) && !bad && std::chrono::steady_clock::now() < deadline) {
        ringbuf_consume(*m, [&](std::span<const std::byte> s) {
            uint64_t rec[3] = {};
            std::memcpy(rec, s.data(), std::min(s.size(), sizeof rec));
            uint64_t id = rec[0] & 1;
            bad += rec[0] > 1 || rec[1] != next[id] || s.size() != 8 * (rec[1] % 3 + 1) + (rec[1] % 3 == 0 ? 8 : 0);
            bad += s.size() >= 24 && rec[2] != id * 1000003 + rec[1];
            do ++next[id];
            while (next[id] < per_thread && discarded(next[id]));
            ++received;
        });
    }
    stop = true;
    a.join();
    b.join();
    EXPECT_EQ(bad, 0u);
    uint64_t skipped = 0;
    for (uint64_t i = 0; i < per_thread; ++i) skipped += discarded(i);
    EXPECT_EQ(received, 2 * (per_thread - skipped));
}

}  // namespace
}  // namespace xdprt::maps
