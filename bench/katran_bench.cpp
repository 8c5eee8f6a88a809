// Katran's balancer (the user's own object, KATRAN_BPF_OBJ, programmed by katran-port) on xdprt
// and on the kernel, side by side in one run:
//
//   BM_Katran_TestRun/<runner>/<traffic>  the program's cost per packet by BPF_PROG_TEST_RUN: one
//       packet per call (Katran encapsulates the frame in place, so a repeat would run again on
//       the encapsulated frame), the `duration` each runner measures around the program,
//       averaged. runner: kernel, or xdprt (its JIT, through the in-process server).
//   BM_Katran_Native/xdprt/<traffic>      the JIT image run directly, as a worker runs it (no
//       test-run harness), with BM_NativeFloor (xdp_drop in the same loop) as its floor.
//   BM_Katran_Dataplane/ring/<traffic>    Mpps of one worker core running Katran on a net_ring
//       port (dataplane_harness.h: a generator restores and feeds back what the worker sent).
//   traffic: warm_lru (one TCP flow, in the LRU) or ports_8000 (8,000 source ports in turn).
//
//   sudo KATRAN_BPF_OBJ=/path/balancer.bpf.o build/bench/katran_bench --benchmark_counters_tabular=true
//        --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
//
// It ends with a summary: medians per row, the kernel's cost against xdprt's JIT image and worker.
#include <arpa/inet.h>
#include <sched.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "balancer.h"
#include "maps/qsbr.h"
#include "prog/prog.h"
#include "vm/vm.h"
#include "dataplane_harness.h"
#include "test_run_opts.h"

namespace xdprt::bench {
namespace {

katran::lb_config katran_config() {
    katran::lb_config cfg;
    const char* obj = std::getenv("KATRAN_BPF_OBJ");
    cfg.object = obj ? obj : "";
    cfg.gateway_mac = {2, 0, 0, 0, 0, 0xfe};
    cfg.lru_size = 100000;  // the 8,000 flows fit
    cfg.encap_source_v4 = "10.100.0.254";  // used by a GUE build only
    katran::vip_spec v;
    v.address = "10.100.0.1";
    v.port = 80;
    v.proto = IPPROTO_TCP;
    for (const char* r : {"10.200.0.1", "10.200.0.2", "10.200.0.3"}) v.reals.push_back({r, 1});
    cfg.vips.push_back(v);
    return cfg;
}

// A TCP ACK (not a SYN: the LRU keeps the flow) from 192.168.1.10:`sport` to the VIP, 74 bytes.
std::vector<uint8_t> flow_frame(uint16_t sport) {
    std::vector<uint8_t> f(14 + sizeof(iphdr) + sizeof(tcphdr) + 20, 0);
    const uint8_t macs[12] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};
    std::memcpy(f.data(), macs, 12);
    f[12] = 0x08;
    auto* ip = reinterpret_cast<iphdr*>(&f[14]);
    ip->version = 4;
    ip->ihl = 5;
    ip->ttl = 64;
    ip->protocol = IPPROTO_TCP;
    ip->tot_len = htons(uint16_t(f.size() - 14));
    inet_pton(AF_INET, "192.168.1.10", &ip->saddr);
    inet_pton(AF_INET, "10.100.0.1", &ip->daddr);
    auto* tcp = reinterpret_cast<tcphdr*>(ip + 1);
    tcp->source = htons(sport);
    tcp->dest = htons(80);
    tcp->doff = 5;
    tcp->ack = 1;
    return f;
}

std::vector<std::vector<uint8_t>> traffic(int64_t flows) {
    std::vector<std::vector<uint8_t>> out;
    for (int64_t i = 0; i < flows; ++i) out.push_back(flow_frame(uint16_t(20000 + i)));
    return out;
}

// Test runs on CPU 0 only: each runner picks the per-core LRU by the CPU it runs on.
void pin_to_cpu0() {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    sched_setaffinity(0, sizeof one, &one);
}

// One packet per call; the runner's own duration. The first pass over the flows fills the LRU.
void test_run(benchmark::State& state, int prog_fd, const std::vector<std::vector<uint8_t>>& frames) {
    pin_to_cpu0();
    std::vector<uint8_t> out(256);
    auto run = [&](const std::vector<uint8_t>& f, uint32_t& duration) {
        bpf_test_run_opts o = testing_support::test_run_opts(f, out);
        int err = bpf_prog_test_run_opts(prog_fd, &o);
        duration = o.duration;
        return err == 0 && o.retval == XDP_TX;
    };
    uint32_t d = 0;
    for (const auto& f : frames)
        if (!run(f, d)) return state.SkipWithError("Katran did not answer XDP_TX");
    size_t next = 0;
    uint64_t total_ns = 0, packets = 0;
    for (auto _ : state) {
        if (!run(frames[next], d)) return state.SkipWithError("Katran did not answer XDP_TX");
        next = next + 1 == frames.size() ? 0 : next + 1;
        total_ns += d;
        ++packets;
        state.SetIterationTime(double(d) * 1e-9);
    }
    state.counters["ns_per_pkt"] = double(total_ns) / double(packets ? packets : 1);
}

void BM_Katran_TestRun_Kernel(benchmark::State& state) {
    if (!std::getenv("KATRAN_BPF_OBJ")) return state.SkipWithError("KATRAN_BPF_OBJ is unset: Katran's balancer.bpf.o");
    control::inprocess::scoped_route kernel(nullptr);
    static auto lb = [] {
        auto cfg = katran_config();
        auto b = katran::balancer::open(cfg);
        if (b && !b->apply(cfg)) b = tl::unexpected(error{EINVAL, "apply"});
        return b;
    }();
    if (!lb) return state.SkipWithError(lb.error().message.c_str());
    test_run(state, lb->prog_fd(), traffic(state.range(0)));
}

// The appliance of the xdprt rows (EAL starts once per process), Katran loaded into it.
struct xdprt_katran {
    std::unique_ptr<appliance::appliance> app;
    std::optional<katran::balancer> lb;
};
xdprt_katran& xdprt_side() {
    static xdprt_katran k = [] {
        xdprt_katran x;
        x.app = make(dataplane::port_kind::ring, "bkat");
        if (!x.app) return x;
        auto cfg = katran_config();
        auto b = katran::balancer::open(cfg);
        if (b && b->apply(cfg)) x.lb.emplace(std::move(*b));
        else std::fprintf(stderr, "katran_bench: %s\n", b ? "apply failed" : b.error().message.c_str());
        return x;
    }();
    control::inprocess::route_to(k.app ? &k.app->server() : nullptr);
    return k;
}

void BM_Katran_TestRun_Xdprt(benchmark::State& state) {
    if (!std::getenv("KATRAN_BPF_OBJ")) return state.SkipWithError("KATRAN_BPF_OBJ is unset: Katran's balancer.bpf.o");
    auto& k = xdprt_side();
    if (!k.lb) return state.SkipWithError("Katran did not load on xdprt (root needed)");
    test_run(state, k.lb->prog_fd(), traffic(state.range(0)));
}

// The JIT image run directly, the way a worker runs it (no test-run harness around it): each run
// on a fresh copy of the frame in a 4 KiB buffer with 256 bytes of headroom, as the dataplane's
// mbufs. xdp_drop in the same loop is the floor; compare Katran - floor with the kernel's test
// run Katran - floor.
void native_run(benchmark::State& state, const vm::program* p, const std::vector<std::vector<uint8_t>>& frames) {
    pin_to_cpu0();
    maps::this_cpu = 0;
    auto reader = maps::qsbr::process().attach();
    if (!reader) return state.SkipWithError("no qsbr reader slot");
    maps::qsbr::online_scope online(*reader);
    alignas(64) static uint8_t buffer[4096];
    size_t next = 0;
    uint64_t runs = 0;
    auto once = [&] {
        const auto& f = frames[next];
        next = next + 1 == frames.size() ? 0 : next + 1;
        prog::xdp_buff x{};
        x.data_hard_start = buffer;
        x.data = x.data_meta = buffer + 256;
        std::memcpy(x.data, f.data(), f.size());
        x.data_end = x.data + f.size();
        x.data_hard_end = buffer + sizeof buffer - 320;
        vm::run_state rs;
        return p->native(reinterpret_cast<uint64_t>(&x), 0, &rs);
    };
    for (size_t i = 0; i < frames.size(); ++i) once();  // the LRU learns every flow
    for (auto _ : state) {
        benchmark::DoNotOptimize(once());
        ++runs;
        if ((runs & 255) == 0) reader->quiescent();
    }
    state.counters["ns_per_pkt"] = benchmark::Counter(double(runs), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_Katran_Native(benchmark::State& state) {
    if (!std::getenv("KATRAN_BPF_OBJ")) return state.SkipWithError("KATRAN_BPF_OBJ is unset: Katran's balancer.bpf.o");
    auto& k = xdprt_side();
    if (!k.lb) return state.SkipWithError("Katran did not load on xdprt (root needed)");
    auto r = k.app->server().runnable(k.lb->prog_fd());
    if (!r || !r->prog->native) return state.SkipWithError("no JIT image");
    native_run(state, r->prog, traffic(state.range(0)));
}

void BM_Floor_Native(benchmark::State& state) {
    auto& k = xdprt_side();
    if (!k.app) return state.SkipWithError("no appliance (root needed)");
    static bpf_object* obj = nullptr;
    if (!obj) {
        obj = bpf_object__open_file(XDPRT_PROGS_DIR "/xdp_drop.bpf.o", nullptr);
        if (!obj || bpf_object__load(obj) != 0) return state.SkipWithError("xdp_drop did not load");
    }
    auto r = k.app->server().runnable(bpf_program__fd(bpf_object__find_program_by_name(obj, "xdp_drop")));
    if (!r || !r->prog->native) return state.SkipWithError("no JIT image");
    native_run(state, r->prog, traffic(1));
}

void BM_Katran_Dataplane(benchmark::State& state) {
    if (!std::getenv("KATRAN_BPF_OBJ")) return state.SkipWithError("KATRAN_BPF_OBJ is unset: Katran's balancer.bpf.o");
    auto& k = xdprt_side();
    if (!k.lb || !frame_pool()) return state.SkipWithError("Katran did not load on xdprt (root needed)");
    auto r = k.app->server().runnable(k.lb->prog_fd());
    if (!r || !k.app->dataplane().attach(0, {r->prog, r->owner, r->name})) return state.SkipWithError("attach failed");
    generator g;
    g.t = std::thread(generate, std::ref(g), rte_ring_lookup("bkat.rx0"), rte_ring_lookup("bkat.tx0"), frame_pool(),
                      traffic(state.range(0)));
    measure(state, *k.app, 0);
    g.run = false;
    g.t.join();
    state.counters["rx_ring_empty_pct"] = 100.0 * double(g.empty_polls) / double(g.polls ? g.polls.load() : 1);
}

// The test-run harness alone (xdp_drop, one packet per call): subtract it from the rows above
// for the program's own cost on each runner.
void floor_run(benchmark::State& state, bool kernel) {
    std::optional<control::inprocess::scoped_route> route;
    if (kernel) route.emplace(nullptr);
    else if (!xdprt_side().app) return state.SkipWithError("no appliance (root needed)");
    static bpf_object* objs[2] = {};
    bpf_object*& obj = objs[kernel];
    if (!obj) {
        obj = bpf_object__open_file(XDPRT_PROGS_DIR "/xdp_drop.bpf.o", nullptr);
        if (!obj || bpf_object__load(obj) != 0) return state.SkipWithError("xdp_drop did not load");
    }
    int fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "xdp_drop"));
    pin_to_cpu0();
    auto f = flow_frame(20000);
    std::vector<uint8_t> out(256);
    uint64_t total = 0, n = 0;
    for (auto _ : state) {
        bpf_test_run_opts o = testing_support::test_run_opts(f, out);
        if (bpf_prog_test_run_opts(fd, &o) != 0) return state.SkipWithError("test run failed");
        total += o.duration;
        ++n;
        state.SetIterationTime(double(o.duration) * 1e-9);
    }
    state.counters["ns_per_pkt"] = double(total) / double(n ? n : 1);
}
void BM_Floor_Kernel(benchmark::State& state) { floor_run(state, true); }
void BM_Floor_Xdprt(benchmark::State& state) { floor_run(state, false); }
BENCHMARK(BM_Floor_Kernel)->Name("BM_TestRunFloor/kernel/xdp_drop")->UseManualTime();
BENCHMARK(BM_Floor_Xdprt)->Name("BM_TestRunFloor/xdprt/xdp_drop")->UseManualTime();
BENCHMARK(BM_Katran_TestRun_Kernel)->Name("BM_Katran_TestRun/kernel/warm_lru")->Arg(1)->UseManualTime();
BENCHMARK(BM_Katran_TestRun_Xdprt)->Name("BM_Katran_TestRun/xdprt/warm_lru")->Arg(1)->UseManualTime();
BENCHMARK(BM_Katran_TestRun_Kernel)->Name("BM_Katran_TestRun/kernel/ports_8000")->Arg(8000)->UseManualTime();
BENCHMARK(BM_Katran_TestRun_Xdprt)->Name("BM_Katran_TestRun/xdprt/ports_8000")->Arg(8000)->UseManualTime();
BENCHMARK(BM_Floor_Native)->Name("BM_NativeFloor/xdprt/xdp_drop");
BENCHMARK(BM_Katran_Native)->Name("BM_Katran_Native/xdprt/warm_lru")->Arg(1);
BENCHMARK(BM_Katran_Native)->Name("BM_Katran_Native/xdprt/ports_8000")->Arg(8000);
BENCHMARK(BM_Katran_Dataplane)->Name("BM_Katran_Dataplane/ring/warm_lru")->Arg(1)->UseManualTime()->Iterations(6);
BENCHMARK(BM_Katran_Dataplane)->Name("BM_Katran_Dataplane/ring/ports_8000")->Arg(8000)->UseManualTime()->Iterations(6);

// Every row's ns per packet, by name (repetitions collected), for the side-by-side summary.
class summary_reporter : public benchmark::ConsoleReporter {
public:
    std::map<std::string, std::vector<double>> ns;
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const auto& r : runs) {
            if (r.error_occurred || r.run_type != Run::RT_Iteration) continue;
            auto it = r.counters.find("ns_per_pkt");
            if (it == r.counters.end()) continue;
            // An inverted rate counter (BM_*_Native: runs per second, inverted) holds seconds.
            const benchmark::Counter& c = it->second;
            bool seconds = (c.flags & benchmark::Counter::kIsRate) && (c.flags & benchmark::Counter::kInvert);
            ns[r.run_name.str()].push_back(seconds ? c.value * 1e9 : c.value);
        }
        ConsoleReporter::ReportRuns(runs);
    }
};

// The kernel's per-packet cost (test run, with and without its harness floor) against xdprt's
// JIT image and one xdprt worker core, medians over the repetitions of this run (these machines
// are noisy: --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true spreads the
// noise over both sides). The worker's figure includes its I/O (net_ring rx and tx, the burst
// loop); the kernel's test-run figure has no driver in it, so kernel/worker favours the kernel;
// kernel-floor/JIT compares the programs alone.
void print_summary(const std::map<std::string, std::vector<double>>& ns) {
    auto get = [&](const std::string& name) -> double {
        for (const auto& [k, v] : ns) {
            if (k.rfind(name, 0) != 0 || v.empty()) continue;
            std::vector<double> s = v;
            std::sort(s.begin(), s.end());
            return s.size() % 2 ? s[s.size() / 2] : (s[s.size() / 2 - 1] + s[s.size() / 2]) / 2;
        }
        return 0;
    };
    const double kfloor = get("BM_TestRunFloor/kernel/xdp_drop"), nfloor = get("BM_NativeFloor/xdprt/xdp_drop");
    size_t reps = 0;
    for (const auto& [k, v] : ns) reps = std::max(reps, v.size());
    std::printf("\nKatran per packet, medians of %zu repetition(s) in this run (ns; Mpps = 1000 / ns):\n", reps);
    std::printf("%-11s %9s %14s %12s %14s %15s %18s\n", "traffic", "kernel", "kernel-floor", "JIT-floor", "xdprt worker",
                "kernel/worker", "kernel-floor/JIT");
    for (const char* t : {"warm_lru", "ports_8000"}) {
        double k = get(std::string("BM_Katran_TestRun/kernel/") + t), j = get(std::string("BM_Katran_Native/xdprt/") + t),
               w = get(std::string("BM_Katran_Dataplane/ring/") + t);
        if (!k || !j || !w) {
            std::printf("%-11s (a row is missing: nothing to compare)\n", t);
            continue;
        }
        std::printf("%-11s %9.1f %14.1f %12.1f %14.1f %14.2fx %17.2fx\n", t, k, k - kfloor, j - nfloor, w, k / w,
                    (k - kfloor) / (j - nfloor));
    }
}

}  // namespace
}  // namespace xdprt::bench

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    xdprt::bench::summary_reporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    xdprt::bench::print_summary(reporter.ns);
    benchmark::Shutdown();
    return 0;
}
