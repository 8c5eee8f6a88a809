// Map operations, xdprt against the kernel, side by side in one binary so ratios come from one run.
//
//   build/bench/maps_bench --benchmark_counters_tabular=true
//
// Program side (BM_Jit_<Type><Op> vs BM_Kernel_<Type><Op>): tests/progs/bench_map_<type>.bpf.o,
// loaded through real libbpf into the kernel or into the in-process bpf() server (JIT engine).
// Each program runs BENCH_OPS (256) lookups or updates in a bounded loop; one BPF_PROG_TEST_RUN
// runs it `repeat` times. Figures come from the `duration` the kernel or the server reports (ns
// per run, its own clock around the repeat loop, so the syscall and libbpf are outside it):
//   ns_per_op       median duration / 256: one map operation plus one loop step
//   base_ns_per_op  the same for `baseline`, the loop without the map call, run in the same
//                   iterations (LLVM folds that loop away entirely: ~0 for the JIT)
//   net_ns_per_op   the difference: the map operation alone
// Medians over the iterations, because the server's duration is wall time (a run preempted by
// another process counts in full) while the kernel stops its timer when it reschedules.
// The harness's per-run cost (xdp_buff setup, ~30 ns) is spread over 256 operations and cancels
// in net_ns_per_op. Manual time is the op program's duration times repeat.
//
// Control side (BM_Server_<Type>Ctl<Op> vs BM_Kernel_<Type>Ctl<Op>): bpf_map_lookup_elem /
// bpf_map_update_elem through libbpf, wall time per call (the whole syscall; for the server the
// in-process route: attr and key copied with process_vm_readv, as for another process), and
// BM_*_MaglevBatch: one bpf_map_update_batch of a 65,537-entry ARRAY (4-byte keys and values, a
// Maglev ring), wall time per batch and ns_per_elem. allocs_per_op counts operator new calls in
// the timed loop.
//
// The kernel rows need root; without it they are skipped with the reason. The server then runs
// with verification off (as `unsafe`), which does not change run time.
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "control/inprocess.h"
#include "control/server.h"

#include "count_allocations.h"
#include "scratch_pin_root.h"

namespace xdprt::bench {
namespace {

// Must match tests/progs/bench_map.bpf.h.
constexpr uint32_t bench_ops = 256;
constexpr uint32_t bench_keys = 256;
constexpr uint32_t xdp_pass = 2;

enum class side { kernel, server };

bool is_root() { return geteuid() == 0; }

control::server* the_server() {
    static std::unique_ptr<control::server> s = [] {
        control::server_options o;
        o.default_engine = control::engine::jit;
        // Objects live in a scratch directory on /dev/shm (a tmpfs), not in the appliance's pin root.
        o.pin_root = testing_support::scratch_pin_root();
        if (!is_root()) {
            o.verify = control::verify_mode::off;  // the kernel's verifier needs root
            o.unsafe = true;
        }
        auto r = control::server::create(o);
        if (!r) {
            fmt::print(stderr, "maps_bench: server: {}\n", r.error().message);
            std::exit(1);
        }
        return std::move(*r);
    }();
    return s.get();
}

control::server* target(side s) { return s == side::server ? the_server() : nullptr; }

// Skips a kernel row without root; true when the row may run.
bool may_run(benchmark::State& state, side s) {
    if (s == side::kernel && !is_root()) {
        state.SkipWithError("kernel side skipped: bpf() map creation and BPF_PROG_TEST_RUN need root");
        return false;
    }
    return true;
}

std::string last_error(side s) { return s == side::server ? the_server()->last_error() : std::string(strerror(errno)); }

// ---- program side --------------------------------------------------------------------------

struct map_type {
    const char* bench_name;  // "Hash"
    const char* object;      // "bench_map_hash"
    bool percpu;
    bool lpm;
};
constexpr map_type map_types[] = {
    {"Array", "bench_map_array", false, false},
    {"PercpuArray", "bench_map_percpu_array", true, false},
    {"Hash", "bench_map_hash", false, false},
    {"PercpuHash", "bench_map_percpu_hash", true, false},
    {"LruHash", "bench_map_lru_hash", false, false},
    {"LruPercpuHash", "bench_map_lru_percpu_hash", true, false},
    {"LpmTrie", "bench_map_lpm_trie", false, true},
};

struct bench_op {
    const char* bench_name;
    const char* prog;
};
constexpr bench_op ops[] = {{"LookupHit", "lookup_hit"}, {"LookupMiss", "lookup_miss"}, {"Update", "update"}};

struct loaded_object {
    bpf_object* obj = nullptr;
    std::map<std::string, int> prog_fds;
    std::string error;
};

// Stores keys 0..bench_keys-1 (value: the key number, every CPU's slot) as the programs expect.
std::string populate(const map_type& t, int map_fd) {
    const int cpus = t.percpu ? libbpf_num_possible_cpus() : 1;
    for (uint32_t n = 0; n < bench_keys; ++n) {
        std::vector<uint64_t> value(size_t(cpus), n);
        int r;
        if (t.lpm) {
            struct {
                uint32_t prefixlen, addr;
            } key{24, htonl(0x0a000000u + (n << 8))};  // 10.0.n.0/24
            r = bpf_map_update_elem(map_fd, &key, value.data(), BPF_ANY);
        } else {
            r = bpf_map_update_elem(map_fd, &n, value.data(), BPF_ANY);
        }
        if (r != 0) return fmt::format("storing key {}: {}", n, strerror(errno));
    }
    return {};
}

// The object of `t`, loaded once per side.
const loaded_object& object(side s, const map_type& t) {
    static std::map<std::pair<side, std::string>, loaded_object> cache;
    auto key = std::make_pair(s, std::string(t.object));
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    loaded_object& lo = cache[key];
    control::inprocess::scoped_route route(target(s));
    libbpf_set_print(nullptr);
    const std::string path = fmt::format("{}/{}.bpf.o", XDPRT_PROGS_DIR, t.object);
    lo.obj = bpf_object__open_file(path.c_str(), nullptr);
    if (!lo.obj) return lo.error = "cannot open " + path, lo;
    if (bpf_object__load(lo.obj) != 0) return lo.error = fmt::format("{}: load: {}", path, last_error(s)), lo;
    bpf_program* p;
    bpf_object__for_each_program(p, lo.obj) lo.prog_fds[bpf_program__name(p)] = bpf_program__fd(p);
    bpf_map* m = bpf_object__find_map_by_name(lo.obj, "bench_map");
    if (!m) return lo.error = path + ": no bench_map", lo;
    if (auto e = populate(t, bpf_map__fd(m)); !e.empty()) lo.error = path + ": " + e;
    return lo;
}

// One BPF_PROG_TEST_RUN of `fd` with `repeat` runs over a minimal Ethernet frame: the duration
// (ns per run), or -1 with the reason in `error`.
int64_t test_run(int fd, int repeat, std::string& error, side s) {
    static const uint8_t frame[64] = {};
    bpf_test_run_opts opts{};  // field by field: LIBBPF_OPTS trips clang's designated-initializer warning
    opts.sz = sizeof opts;
    opts.data_in = frame;
    opts.data_size_in = sizeof frame;
    opts.repeat = repeat;
    if (bpf_prog_test_run_opts(fd, &opts) != 0) return error = "BPF_PROG_TEST_RUN: " + last_error(s), -1;
    if (opts.retval != xdp_pass) return error = fmt::format("program returned {}: an operation failed", opts.retval), -1;
    return opts.duration;
}

double median(std::vector<int64_t>& v) {
    if (v.empty()) return 0;
    std::nth_element(v.begin(), v.begin() + ptrdiff_t(v.size() / 2), v.end());
    return double(v[v.size() / 2]);
}

void run_prog(benchmark::State& state, side s, const map_type& t, const bench_op& op) {
    if (!may_run(state, s)) return;
    const loaded_object& lo = object(s, t);
    if (!lo.error.empty()) return state.SkipWithError(lo.error.c_str());
    auto fd = lo.prog_fds.find(op.prog);
    auto base_fd = lo.prog_fds.find("baseline");
    if (fd == lo.prog_fds.end() || base_fd == lo.prog_fds.end()) return state.SkipWithError("program missing from the object");
    constexpr int repeat = 200;
    control::inprocess::scoped_route route(target(s));
    std::string error;
    std::vector<int64_t> op_ns, base_ns;
    op_ns.reserve(state.max_iterations);
    base_ns.reserve(state.max_iterations);
    for (auto _ : state) {
        int64_t d = test_run(fd->second, repeat, error, s);
        int64_t b = d < 0 ? -1 : test_run(base_fd->second, repeat, error, s);
        if (d < 0 || b < 0) return state.SkipWithError(error.c_str());
        state.SetIterationTime(double(d) * repeat * 1e-9);
        op_ns.push_back(d);
        base_ns.push_back(b);
    }
    // Medians: the server's duration is wall time, so a run preempted by another process counts
    // in full (the kernel stops its timer when it reschedules); the median leaves such runs out.
    const double per_op = median(op_ns) / bench_ops, base = median(base_ns) / bench_ops;
    state.counters["ns_per_op"] = per_op;
    state.counters["base_ns_per_op"] = base;
    state.counters["net_ns_per_op"] = per_op - base;
}

// ---- control side --------------------------------------------------------------------------

void report(benchmark::State& state, uint64_t ops_done, uint64_t allocs) {
    state.SetItemsProcessed(int64_t(ops_done));
    state.counters["ns_per_op"] = benchmark::Counter(double(ops_done), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.counters["allocs_per_op"] = ops_done ? double(allocs) / double(ops_done) : 0;
}

// A map of `type` with keys 0..bench_keys-1 stored, created once per side.
int control_map(side s, bpf_map_type type, std::string& error) {
    static std::map<std::pair<side, int>, int> cache;
    auto key = std::make_pair(s, int(type));
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    control::inprocess::scoped_route route(target(s));
    int fd = bpf_map_create(type, "bench_ctl", 4, 8, 4096, nullptr);
    if (fd < 0) return error = "map create: " + last_error(s), -1;
    for (uint32_t n = 0; n < bench_keys; ++n) {
        uint64_t v = n;
        if (bpf_map_update_elem(fd, &n, &v, BPF_ANY) != 0) return error = "populate: " + last_error(s), -1;
    }
    return cache[key] = fd;
}

enum class ctl_op { lookup, update };

void run_ctl(benchmark::State& state, side s, bpf_map_type type, ctl_op op) {
    if (!may_run(state, s)) return;
    std::string error;
    const int fd = control_map(s, type, error);
    if (fd < 0) return state.SkipWithError(error.c_str());
    control::inprocess::scoped_route route(target(s));
    uint32_t n = 0;
    uint64_t value = 0, done = 0;
    const uint64_t a0 = allocations.load();
    for (auto _ : state) {
        const uint32_t key = n++ & (bench_keys - 1);
        int r = op == ctl_op::lookup ? bpf_map_lookup_elem(fd, &key, &value) : bpf_map_update_elem(fd, &key, &value, BPF_ANY);
        if (r != 0) return state.SkipWithError(("bpf(): " + last_error(s)).c_str());
        ++done;
    }
    report(state, done, allocations.load() - a0);
}

// One BPF_MAP_UPDATE_BATCH over a whole Maglev ring: 65,537 ARRAY entries, 4-byte keys and values.
void run_maglev_batch(benchmark::State& state, side s) {
    if (!may_run(state, s)) return;
    constexpr uint32_t ring = 65537;
    static std::map<side, int> fds;
    if (!fds.contains(s)) {
        control::inprocess::scoped_route route(target(s));
        fds[s] = bpf_map_create(BPF_MAP_TYPE_ARRAY, "maglev_ring", 4, 4, ring, nullptr);
        if (fds[s] < 0) return state.SkipWithError(("map create: " + last_error(s)).c_str());
    }
    const int fd = fds[s];
    if (fd < 0) return state.SkipWithError("map create failed earlier");
    static const auto keys_values = [] {
        std::pair<std::vector<uint32_t>, std::vector<uint32_t>> kv;
        for (uint32_t k = 0; k < ring; ++k) {
            kv.first.push_back(k);
            kv.second.push_back((k * 2654435761u) % 97);  // a backend index
        }
        return kv;
    }();
    control::inprocess::scoped_route route(target(s));
    bpf_map_batch_opts opts{};
    opts.sz = sizeof opts;
    uint64_t batches = 0;
    const uint64_t a0 = allocations.load();
    for (auto _ : state) {
        uint32_t count = ring;
        if (bpf_map_update_batch(fd, keys_values.first.data(), keys_values.second.data(), &count, &opts) != 0 || count != ring)
            return state.SkipWithError(fmt::format("update_batch: {} after {}", last_error(s), count).c_str());
        ++batches;
    }
    state.SetItemsProcessed(int64_t(batches * ring));
    state.counters["ns_per_elem"] =
        benchmark::Counter(double(batches * ring), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.counters["allocs_per_batch"] = batches ? double(allocations.load() - a0) / double(batches) : 0;
}

const char* side_name(side s, bool program) { return s == side::kernel ? "Kernel" : program ? "Jit" : "Server"; }

const bool registered = [] {
    // Program side: xdprt and kernel rows next to each other.
    for (const map_type& t : map_types)
        for (const bench_op& op : ops) {
            if (t.lpm && std::string_view(op.prog) == "update") continue;  // the trie object has lookups only
            for (side s : {side::server, side::kernel})
                benchmark::RegisterBenchmark(fmt::format("BM_{}_{}{}", side_name(s, true), t.bench_name, op.bench_name).c_str(),
                                             [s, &t, &op](benchmark::State& st) { run_prog(st, s, t, op); })
                    ->UseManualTime()
                    ->Iterations(60);
        }
    struct ctl_row {
        const char* name;
        bpf_map_type type;
        ctl_op op;
    };
    constexpr ctl_row ctl_rows[] = {{"ArrayCtlLookup", BPF_MAP_TYPE_ARRAY, ctl_op::lookup},
                                    {"ArrayCtlUpdate", BPF_MAP_TYPE_ARRAY, ctl_op::update},
                                    {"HashCtlLookup", BPF_MAP_TYPE_HASH, ctl_op::lookup},
                                    {"HashCtlUpdate", BPF_MAP_TYPE_HASH, ctl_op::update}};
    for (const ctl_row& r : ctl_rows)
        for (side s : {side::server, side::kernel})
            benchmark::RegisterBenchmark(fmt::format("BM_{}_{}", side_name(s, false), r.name).c_str(),
                                         [s, r](benchmark::State& st) { run_ctl(st, s, r.type, r.op); })
                ->MinTime(0.2);
    for (side s : {side::server, side::kernel})
        benchmark::RegisterBenchmark(fmt::format("BM_{}_MaglevBatch/65537", side_name(s, false)).c_str(),
                                     [s](benchmark::State& st) { run_maglev_batch(st, s); })
            ->Unit(benchmark::kMillisecond)
            ->MinTime(0.5);
    return true;
}();

}  // namespace
}  // namespace xdprt::bench

BENCHMARK_MAIN();
