// Concurrency stress for every hash type (bounded: ~1.5 s and a fixed op budget per type).
//
// Value types (HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH): two program threads, registered
// QSBR readers passing a quiescent point every 32 ops, share the map:
//   - counter keys: each thread owns half and increments them (lookup, then update with
//     BPF_EXIST); nothing else writes them, so no update may fail and the final counts are
//     exactly the increments each thread made;
//   - churn keys, shared: both insert (ANY / NOEXIST), delete and look up, so chains change and
//     elements are retired and reused under the counters' feet.
// Meanwhile a reader in another process (forked before the threads start) opens the map's memfd
// with view::open and copies the counter keys out lock-free: never missing, never torn (a check
// word, where the value is replaced whole), never going backwards; at the end it compares the
// final counts the parent sends it.
//
// Object types (HASH_OF_MAPS, DEVMAP_HASH): the control thread replaces and deletes entries
// while two program threads look them up and use what they get; a replaced object must outlive
// every reader's quiescent point (ASan would see the use after free), and none may leak.
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "maps_test_util.h"

namespace xdprt::maps {
namespace {

using testing::code;
using testing::make_spec;
using testing::must_create;

constexpr auto run_time = std::chrono::milliseconds(1500);
constexpr uint64_t max_ops = 3'000'000;  // per thread
constexpr uint32_t counter_keys = 64, churn_base = 1000, churn_keys = 300, max_entries = 512;

struct value {
    uint64_t counter;
    uint64_t check;  // check_of(key, counter)
};
uint64_t check_of(uint32_t key, uint64_t counter) { return (counter * 0x9e3779b97f4a7c15ull) ^ key; }

bool percpu(uint32_t t) { return t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH; }

// The other process: returns its exit status (0: every check held).
int outside_reader(int memfd, int done_fd, uint32_t type) {
    auto v = view::open(memfd);
    if (!v) return 10;
    const uint32_t slots = percpu(type) ? possible_cpus() : 1;
    std::vector<value> buf(slots);
    std::vector<uint64_t> last(counter_keys * slots, 0);
    uint64_t reads = 0;
    auto read = [&](uint32_t k) -> int {
        for (int attempt = 0;; ++attempt) {
            auto r = v->copy_out(&k, buf.data());
            if (r) break;
            if (r.error().code != EAGAIN || attempt > 1000) {
                fprintf(stderr, "outside reader: key %u: %s\n", k, r.error().message.c_str());
                return 11;
            }
        }
        ++reads;
        for (uint32_t c = 0; c < slots; ++c) {
            // Per-CPU slots are rewritten in place (as in the kernel), so only whole-element
            // replacements can promise an untorn check word.
            if (!percpu(type) && buf[c].check != check_of(k, buf[c].counter)) return 12;
            if (k < counter_keys) {
                if (buf[c].counter < last[k * slots + c]) return 13;
                last[k * slots + c] = buf[c].counter;
            }
        }
        return 0;
    };
    pollfd p{done_fd, POLLIN, 0};
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    // A pass over the counters every 100 us (poll's timeout): enough to race every update
    // pattern, while leaving the two cores to the program threads most of the time.
    while (poll(&p, 1, 0) == 0) {
        if (std::chrono::steady_clock::now() > give_up) return 14;
        usleep(100);
        for (uint32_t k = 0; k < counter_keys; ++k)
            if (int bad = read(k)) return bad;
    }
    std::vector<uint64_t> expected(counter_keys);
    if (::read(done_fd, expected.data(), expected.size() * 8) != ssize_t(expected.size() * 8)) return 15;
    for (uint32_t k = 0; k < counter_keys; ++k) {
        if (int bad = read(k)) return bad;
        uint32_t owner_slot = percpu(type) ? k % 2 : 0;
        if (buf[owner_slot].counter != expected[k]) {
            fprintf(stderr, "outside reader: key %u: %lu, expected %lu\n", k, buf[owner_slot].counter, expected[k]);
            return 16;
        }
    }
    return reads < 100 ? 17 : 0;
}

struct thread_result {
    std::vector<uint64_t> increments = std::vector<uint64_t>(counter_keys, 0);
    uint64_t ops = 0, failures = 0;
    // Updates refused because every spare element still waits for the other thread's
    // quiescent point (it was descheduled: this machine has 2 cores for 4 busy threads).
    uint64_t enomem = 0;
    std::string first_failure;
    void failed(std::string what) {
        if (failures++ == 0) first_failure = std::move(what);
    }
};

// One program thread: CPU `cpu`, owner of the counter keys k with k % 2 == cpu.
void program_thread(map& m, uint32_t cpu, std::chrono::steady_clock::time_point end, thread_result& out) {
    this_cpu = cpu;
    testing::program_thread q;
    std::mt19937 rng(cpu + 17);
    const ops& o = m.ops();
    for (; out.ops < max_ops && (out.ops % 256 || std::chrono::steady_clock::now() < end); ++out.ops) {
        if (out.ops % 32 == 0) q.reader.quiescent();
        uint32_t dice = rng() % 100;
        if (dice < 50) {
            uint32_t k = (rng() % (counter_keys / 2)) * 2 + cpu;
            auto* p = static_cast<value*>(o.lookup(m, &k));
            if (!p) {
                out.failed(fmt::format("counter key {} missing", k));
                continue;
            }
            value next{p->counter + 1, check_of(k, p->counter + 1)};
            if (long r = o.update(m, &k, &next, BPF_EXIST); r == -ENOMEM) {
                ++out.enomem;  // not applied, not counted
                continue;
            } else if (r != 0) {
                out.failed(fmt::format("counter key {}: update {}", k, r));
                continue;
            }
            ++out.increments[k];
        } else if (dice < 75) {
            uint32_t k = churn_base + rng() % churn_keys;
            value v{rng(), 0};
            v.check = check_of(k, v.counter);
            uint64_t flags = rng() % 2 ? BPF_ANY : BPF_NOEXIST;
            long r = o.update(m, &k, &v, flags);
            out.enomem += r == -ENOMEM;
            if (r != 0 && r != -ENOMEM && !(r == -EEXIST && flags == BPF_NOEXIST))
                out.failed(fmt::format("churn insert {}: {}", k, r));
        } else if (dice < 90) {
            uint32_t k = churn_base + rng() % churn_keys;
            if (long r = o.erase(m, &k); r != 0 && r != -ENOENT) out.failed(fmt::format("churn delete {}: {}", k, r));
        } else {
            uint32_t k = churn_base + rng() % churn_keys;
            auto* p = static_cast<value*>(o.lookup(m, &k));
            if (p && p->check != check_of(k, p->counter) && !percpu(m.type()))
                out.failed(fmt::format("churn key {}: torn value", k));
        }
    }
}

class ValueHashStress : public ::testing::TestWithParam<uint32_t> {};

TEST_P(ValueHashStress, NoLostUpdatesAcrossThreadsAndProcesses) {
    const uint32_t type = GetParam();
    ASSERT_GE(possible_cpus(), 2u) << "two program threads need two CPU slots";
    auto m = must_create(make_spec(type, 4, sizeof(value), max_entries));
    std::vector<value> init(percpu(type) ? possible_cpus() : 1);
    for (uint32_t k = 0; k < counter_keys; ++k) {
        for (auto& v : init) v = {0, check_of(k, 0)};
        ASSERT_EQ(code(update_elem(*m, &k, init.data(), BPF_NOEXIST)), 0);
    }

    // The other process first, while this one has no other threads.
    int done[2];
    ASSERT_EQ(pipe(done), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        close(done[1]);
        _exit(outside_reader(m->memfd(), done[0], type));
    }
    close(done[0]);

    auto end = std::chrono::steady_clock::now() + run_time;
    thread_result results[2];
    std::thread a(program_thread, std::ref(*m), 0, end, std::ref(results[0]));
    std::thread b(program_thread, std::ref(*m), 1, end, std::ref(results[1]));
    a.join();
    b.join();

    std::vector<uint64_t> expected(counter_keys);
    for (uint32_t k = 0; k < counter_keys; ++k) expected[k] = results[k % 2].increments[k];
    ASSERT_EQ(write(done[1], expected.data(), expected.size() * 8), ssize_t(expected.size() * 8));
    close(done[1]);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "outside reader exit status " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    for (const auto& r : results) {
        EXPECT_EQ(r.failures, 0u) << r.first_failure;
        EXPECT_GT(r.ops, 10000u);
        printf("  cpu %ld: %lu ops, %lu refused with ENOMEM\n", &r - results, r.ops, r.enomem);
    }
    // Final counts, through both faces.
    uint64_t total = 0;
    std::vector<value> out(init.size());
    for (uint32_t k = 0; k < counter_keys; ++k) {
        ASSERT_EQ(code(lookup_elem(*m, &k, out.data(), 0)), 0);
        uint32_t owner = k % 2;
        for (uint32_t c = 0; c < out.size(); ++c)
            EXPECT_EQ(out[c].counter, c == (percpu(type) ? owner : 0) ? expected[k] : 0u) << "key " << k << " slot " << c;
        this_cpu = owner;
        EXPECT_EQ(static_cast<value*>(m->ops().lookup(*m, &k))->counter, expected[k]);
        total += expected[k];
    }
    this_cpu = 0;
    uint64_t increments = 0;
    for (const auto& r : results)
        for (uint64_t n : r.increments) increments += n;
    EXPECT_EQ(total, increments);
    size_t live = testing::walk_keys<uint32_t>(*m).size();
    EXPECT_GE(live, counter_keys);
    EXPECT_LE(live, counter_keys + churn_keys);
}

INSTANTIATE_TEST_SUITE_P(HashTypes, ValueHashStress,
                         ::testing::Values(BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_LRU_HASH,
                                           BPF_MAP_TYPE_LRU_PERCPU_HASH),
                         [](const auto& info) {
                             std::string n = type_name(info.param);
                             n.erase(std::remove(n.begin(), n.end(), '_'), n.end());
                             return n;
                         });

// What object maps hold here: counted, and poisoned when destroyed.
std::atomic<int64_t> live_objects{0};
struct object {
    std::atomic<uint64_t> magic{0xfeed};
    uint32_t key;
    explicit object(uint32_t k) : key(k) { ++live_objects; }
    ~object() {
        magic = 0xdead;
        --live_objects;
    }
};

class ObjectHashStress : public ::testing::TestWithParam<uint32_t> {};

TEST_P(ObjectHashStress, ReplacedObjectsLiveUntilReadersAreQuiescent) {
    const uint32_t type = GetParam();
    const bool devmap = type == BPF_MAP_TYPE_DEVMAP_HASH;
    const uint32_t keys = 32;
    auto inner = must_create(make_spec(BPF_MAP_TYPE_ARRAY, 4, 4, 1));
    auto s = make_spec(type, 4, devmap ? 8 : 4, keys);
    s.inner = inner.get();
    auto m = must_create(s);
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> bad{0}, seen{0};
    std::atomic<int> started{0};
    // Readers read until the writer stops them (bounded in time, not in count: a count could run
    // out on an empty map before a descheduled writer made its first update).
    auto reader_end = std::chrono::steady_clock::now() + 12 * run_time;
    auto reader = [&](uint32_t cpu) {
        this_cpu = cpu;
        testing::program_thread q;
        ++started;
        std::mt19937 rng(cpu);
        for (uint64_t i = 0; !stop; ++i) {
            if (i % 4096 == 0 && std::chrono::steady_clock::now() > reader_end) break;
            if (i % 32 == 0) q.reader.quiescent();
            uint32_t k = rng() % keys;
            void* p = m->ops().lookup(*m, &k);
            if (!p) continue;
            ++seen;
            if (devmap) {
                uint32_t ifindex;
                std::memcpy(&ifindex, p, 4);
                bad += ifindex != k + 1;
            } else {
                auto* o = static_cast<object*>(p);
                bad += o->magic.load() != 0xfeed || o->key != k;
            }
        }
    };
    std::thread a(reader, 0), b(reader, 1);
    std::mt19937 rng(99);
    // On a loaded machine the readers may start late: writes begin once both read, and go on
    // (within a hard bound) until they have looked at enough elements to mean something.
    auto hard_end = std::chrono::steady_clock::now() + 10 * run_time;
    while (started.load() < 2 && std::chrono::steady_clock::now() < hard_end) std::this_thread::yield();
    auto end = std::chrono::steady_clock::now() + run_time;
    uint64_t writes = 0, failures = 0, enomem = 0;
    auto more = [&] {
        auto now = std::chrono::steady_clock::now();
        return (writes < max_ops / 10 && now < end) || ((seen.load() <= 1000 || writes <= 1000) && now < hard_end);
    };
    for (; more(); ++writes) {
        uint32_t k = rng() % keys;
        result<void> r;
        if (rng() % 4 == 0) {
            r = delete_elem(*m, &k);
        } else {
            auto o = std::make_shared<object>(k);
            auto* p = o.get();
            r = update_object(*m, &k, held_object{p, k + 100, std::move(o), k + 1}, BPF_ANY);
        }
        enomem += !r && r.error().code == ENOMEM;  // spares all in a grace period: not applied
        failures += !r && r.error().code != ENOENT && r.error().code != ENOMEM;
        if (writes % 16 == 0) qsbr::process().poll();
    }
    printf("  %lu writes, %lu refused with ENOMEM\n", writes, enomem);
    stop = true;
    a.join();
    b.join();
    EXPECT_EQ(bad.load(), 0u);
    EXPECT_EQ(failures, 0u);
    EXPECT_GT(seen.load(), 1000u);
    EXPECT_GT(writes, 1000u);
    // Everything still held is in the map; emptying it releases every object.
    qsbr::process().poll();
    EXPECT_EQ(live_objects.load(), int64_t(testing::walk_keys<uint32_t>(*m).size()));
    for (uint32_t k = 0; k < keys; ++k) (void)delete_elem(*m, &k);
    qsbr::process().poll();
    EXPECT_EQ(live_objects.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(HashTypes, ObjectHashStress,
                         ::testing::Values(BPF_MAP_TYPE_HASH_OF_MAPS, BPF_MAP_TYPE_DEVMAP_HASH),
                         [](const auto& info) {
                             std::string n = type_name(info.param);
                             n.erase(std::remove(n.begin(), n.end(), '_'), n.end());
                             return n;
                         });

}  // namespace
}  // namespace xdprt::maps
