// Per-run cost of one XDP program: interpreter vs JIT vs the kernel (BPF_PROG_TEST_RUN on the same
// clang-compiled object), side by side in one binary so ratios come from one run. And JIT compile
// time for a 2,500-instruction program at each optimisation level.
//
//   build/bench/engines_bench --benchmark_counters_tabular=true
//
// Read the kernel figures with its harness in mind: BPF_PROG_TEST_RUN's per-repeat time includes
// the kernel's test-run loop (xdp_buff setup per repeat), about 25-35 ns here; BM_Kernel_XdpDrop is
// that floor, so compare BM_Kernel_X - BM_Kernel_XdpDrop with BM_Jit_X - BM_Jit_XdpDrop as well as
// the raw figures. allocs_per_pkt counts operator new calls inside the timed loop (must be 0).
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <new>

#include "xdp_harness.h"

#include "count_allocations.h"

namespace xdprt::bench {
namespace {

using tools::load_program;
using tools::loaded_program;
using tools::packet_set;

std::string obj_path(std::string_view prog) { return fmt::format("{}/{}.bpf.o", XDPRT_PROGS_DIR, prog); }

// One UDP/IPv4 frame of 74 bytes (the demo's first frame) for every program.
const packet_set& packets() {
    static packet_set set = [] {
        auto s = packet_set::create({tools::demo_frames()[0]});
        if (!s) {
            fmt::print(stderr, "engines_bench: {}\n", s.error().message);
            std::exit(1);
        }
        return std::move(*s);
    }();
    return set;
}

loaded_program* program(const std::string& name) {
    static std::map<std::string, std::unique_ptr<loaded_program>> cache;
    auto it = cache.find(name);
    if (it != cache.end()) return it->second.get();
    auto lp = load_program(obj_path(name));
    if (!lp) return nullptr;
    return cache.emplace(name, std::move(*lp)).first->second.get();
}

void report(benchmark::State& state, uint64_t packets_run, uint64_t allocs) {
    state.SetItemsProcessed(static_cast<int64_t>(packets_run));
    state.counters["ns_per_pkt"] = benchmark::Counter(static_cast<double>(packets_run),
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.counters["allocs_per_pkt"] = packets_run ? static_cast<double>(allocs) / static_cast<double>(packets_run) : 0;
}

void run_interpreter(benchmark::State& state, const std::string& name) {
    loaded_program* lp = program(name);
    if (!lp) return state.SkipWithError(("cannot load " + obj_path(name)).c_str());
    const auto& set = packets();
    const vm::region region = set.region();
    const uint64_t ctx = reinterpret_cast<uint64_t>(set.slot(0).md);
    uint64_t n = 0;
    const uint64_t a0 = allocations.load();
    for (auto _ : state) {
        auto r = vm::interpret(lp->prog, ctx, 0, {&region, 1});
        benchmark::DoNotOptimize(r);
        ++n;
    }
    report(state, n, allocations.load() - a0);
}

#ifdef XDPRT_HAVE_JIT
void run_jit(benchmark::State& state, const std::string& name) {
    loaded_program* lp = program(name);
    if (!lp) return state.SkipWithError(("cannot load " + obj_path(name)).c_str());
    const auto& set = packets();
    const uint64_t ctx = reinterpret_cast<uint64_t>(set.slot(0).md);
    const vm::native_fn fn = lp->image.entry();
    uint64_t n = 0;
    const uint64_t a0 = allocations.load();
    for (auto _ : state) {
        vm::run_state rs;
        benchmark::DoNotOptimize(fn(ctx, 0, &rs));
        ++n;
    }
    report(state, n, allocations.load() - a0);
}
#endif

// The kernel: the same object through libbpf, BPF_PROG_TEST_RUN with `repeat` runs per iteration.
void run_kernel(benchmark::State& state, const std::string& name) {
    static std::map<std::string, int> fds;
    if (!fds.contains(name)) {
        libbpf_set_print(nullptr);
        bpf_object* obj = bpf_object__open_file(obj_path(name).c_str(), nullptr);
        int fd = -1;
        if (obj && bpf_object__load(obj) == 0) {
            bpf_program* p = bpf_object__next_program(obj, nullptr);
            fd = p ? bpf_program__fd(p) : -1;
        }
        fds[name] = fd;
    }
    const int fd = fds[name];
    if (fd < 0) return state.SkipWithError("the kernel refused the program (needs root and BPF)");
    const auto& frame = packets().original(0);
    constexpr uint32_t repeat = 1000;
    uint64_t n = 0;
    for (auto _ : state) {
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<uint32_t>(frame.size()),
                    .repeat = repeat);
        if (bpf_prog_test_run_opts(fd, &opts) != 0) return state.SkipWithError("BPF_PROG_TEST_RUN failed");
        state.SetIterationTime(static_cast<double>(opts.duration) * repeat * 1e-9);  // duration: ns per run
        n += repeat;
    }
    report(state, n, 0);
}

// A synthetic 2,500-instruction program: ALU chains, stack traffic and forward branches.
std::vector<isa::insn> big_program() {
    std::string text = "mov %r0, 1\nmov %r2, 7\n";
    int emitted = 2;
    for (int k = 0; emitted < 2497; ++k) {
        text += fmt::format("add %r0, {}\nstxdw [%r10-{}], %r0\nmul %r2, %r0\njgt %r2, {}, +1\nxor %r0, %r2\n"
                            "ldxdw %r3, [%r10-{}]\nrsh %r3, 3\nadd %r0, %r3\n",
                            k, 8 * (k % 64 + 1), k * 1000, 8 * ((k + 7) % 64 + 1));
        emitted += 8;
    }
    text += "exit\n";
    auto p = isa::assemble(text);
    return p ? *p : std::vector<isa::insn>{};
}

#ifdef XDPRT_HAVE_JIT
void BM_JitCompile(benchmark::State& state) {
    static vm::linkage link;
    static auto insns = big_program();
    auto prog = vm::load("big", insns, link);
    if (!prog) return state.SkipWithError(prog.error().message.c_str());
    jit::options opts;
    opts.opt = static_cast<jit::opt_level>(state.range(0));
    for (auto _ : state) {
        auto image = jit::compile(*prog, opts);
        if (!image) return state.SkipWithError(image.error().message.c_str());
        benchmark::DoNotOptimize(image->entry());
    }
    state.counters["insns"] = static_cast<double>(prog->insns.size());
}
BENCHMARK(BM_JitCompile)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Unit(benchmark::kMillisecond)->Iterations(5);
#endif

struct bench_prog {
    const char* bench_name;
    const char* object;
};
constexpr bench_prog progs[] = {
    {"XdpDrop", "xdp_drop"},
    {"ParseSwapMac", "xdp_swap_mac"},
    {"Loop64", "xdp_loop"},
    {"CallChain", "xdp_calls"},
};

const bool registered = [] {
    for (const auto& p : progs) {
        const std::string obj = p.object;
        benchmark::RegisterBenchmark(fmt::format("BM_Interp_{}", p.bench_name).c_str(),
                                     [obj](benchmark::State& s) { run_interpreter(s, obj); });
#ifdef XDPRT_HAVE_JIT
        benchmark::RegisterBenchmark(fmt::format("BM_Jit_{}", p.bench_name).c_str(),
                                     [obj](benchmark::State& s) { run_jit(s, obj); });
#endif
        benchmark::RegisterBenchmark(fmt::format("BM_Kernel_{}", p.bench_name).c_str(),
                                     [obj](benchmark::State& s) { run_kernel(s, obj); })
            ->UseManualTime();
    }
    return true;
}();

}  // namespace
}  // namespace xdprt::bench

BENCHMARK_MAIN();
