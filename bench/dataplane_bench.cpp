// Packets per second of one worker core (lcore 1), in one run so the ratios are side by side:
//
//   BM_IoForward/null        rx_burst -> tx_burst on a net_null port, no program: the ceiling of
//                            DPDK and the PMD on this machine (testpmd's io mode).
//   BM_Dataplane_XdpDrop/null, BM_Dataplane_XdpTx/null
//                            the dataplane's whole burst loop (contexts, program, verdicts, bulk
//                            free or tx_burst, counters, quiescent point) on the same port.
//
// Counters: Mpps, ns_per_pkt, ns_above_io (the dataplane's cost above BM_IoForward, from the
// same run), allocs_per_pkt (operator new calls during the measurement; must be 0).
// Needs root (programs are verified by the kernel). Measured here (2 vCPU EPYC, --no-huge):
// see the issue notes; rerun with --benchmark_counters_tabular=true.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_mbuf.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include <benchmark/benchmark.h>

#include "appliance/appliance.h"
#include "control/inprocess.h"
#include "count_allocations.h"
#include "scratch_pin_root.h"

namespace xdprt::bench {
namespace {

using namespace std::chrono_literals;
const std::vector<std::string> eal_args = {"--no-huge", "--no-pci", "-m", "512", "--no-shconf", "-l", "0-1",
                                           "--log-level=lib.eal:error", "--log-level=pmd.net.null:error"};
constexpr auto window = 500ms;  // one iteration: the worker runs this long
double io_forward_ns = 0;       // BM_IoForward's ns per packet, for ns_above_io

std::unique_ptr<appliance::appliance> make(dataplane::port_kind kind, const char* name, std::string devargs = "") {
    appliance::options o;
    o.server.pin_root = testing_support::scratch_pin_root();
    o.dataplane.eal_args = eal_args;
    dataplane::port_spec p;
    p.name = name;
    p.kind = kind;
    p.twin = false;
    p.devargs = std::move(devargs);
    o.dataplane.ports.push_back(p);
    auto a = appliance::appliance::create(std::move(o));
    if (!a) {
        std::fprintf(stderr, "dataplane_bench: %s\n", a.error().message.c_str());
        return nullptr;
    }
    control::inprocess::route_to(&(*a)->server());
    return std::move(*a);
}

// Loads tests/progs/OBJ.bpf.o's program `prog` and attaches it to port 0.
bool attach(appliance::appliance& app, const char* obj, const char* prog, bpf_object** keep) {
    *keep = bpf_object__open_file((std::string(XDPRT_PROGS_DIR) + "/" + obj + ".bpf.o").c_str(), nullptr);
    if (!*keep || bpf_object__load(*keep) != 0) return false;
    bpf_program* p = bpf_object__find_program_by_name(*keep, prog);
    if (!p) return false;
    auto r = app.server().runnable(bpf_program__fd(p));
    return r && app.dataplane().attach(0, {r->prog, r->owner, r->name});
}

void report(benchmark::State& state, uint64_t packets, double seconds, uint64_t allocs) {
    state.counters["Mpps"] = benchmark::Counter(double(packets) / seconds / 1e6);
    double ns = seconds * 1e9 / double(packets ? packets : 1);
    state.counters["ns_per_pkt"] = ns;
    if (io_forward_ns > 0) state.counters["ns_above_io"] = ns - io_forward_ns;
    state.counters["allocs_per_pkt"] = double(allocs) / double(packets ? packets : 1);
    state.SetItemsProcessed(int64_t(packets));
}

// Runs the dataplane for `window` per iteration; packets are what port 0 received.
void measure(benchmark::State& state, appliance::appliance& app) {
    if (!app.dataplane().start()) {
        state.SkipWithError("start failed");
        return;
    }
    std::this_thread::sleep_for(100ms);  // warm up
    uint64_t packets = 0, allocs = 0;
    double seconds = 0;
    for (auto _ : state) {
        uint64_t p0 = app.dataplane().stats()[0].packets[0];
        uint64_t a0 = allocations.load();  // after stats(), which allocates its answer
        auto t0 = std::chrono::steady_clock::now();
        std::this_thread::sleep_for(window);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        allocs += allocations.load() - a0;
        uint64_t p1 = app.dataplane().stats()[0].packets[0];
        packets += p1 - p0;
        seconds += s;
        state.SetIterationTime(s);
    }
    app.dataplane().stop();
    report(state, packets, seconds, allocs);
}

std::atomic<bool> io_running{false};
std::atomic<uint64_t> io_packets{0};

int io_forward(void* arg) {
    uint16_t port = uint16_t(reinterpret_cast<uintptr_t>(arg));
    rte_mbuf* pkts[32];
    uint64_t n = 0;
    while (io_running.load(std::memory_order_relaxed)) {
        uint16_t k = rte_eth_rx_burst(port, 0, pkts, 32);
        if (!k) continue;
        uint16_t sent = rte_eth_tx_burst(port, 0, pkts, k);
        if (sent < k) rte_pktmbuf_free_bulk(pkts + sent, k - sent);
        n += k;
        io_packets.store(n, std::memory_order_relaxed);
    }
    return 0;
}

void BM_IoForward(benchmark::State& state) {
    auto app = make(dataplane::port_kind::null, "bnull0", "size=64");
    if (!app) return state.SkipWithError("no dataplane (root needed)");
    uint16_t port = app->dataplane().ports()[0].ethdev;
    io_running = true;
    io_packets = 0;
    rte_eal_remote_launch(io_forward, reinterpret_cast<void*>(uintptr_t(port)), 1);
    std::this_thread::sleep_for(100ms);
    uint64_t packets = 0;
    double seconds = 0;
    for (auto _ : state) {
        uint64_t p0 = io_packets.load();
        auto t0 = std::chrono::steady_clock::now();
        std::this_thread::sleep_for(window);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        packets += io_packets.load() - p0;
        seconds += s;
        state.SetIterationTime(s);
    }
    io_running = false;
    rte_eal_wait_lcore(1);
    io_forward_ns = seconds * 1e9 / double(packets ? packets : 1);
    report(state, packets, seconds, 0);
}
BENCHMARK(BM_IoForward)->Name("BM_IoForward/null")->UseManualTime()->Iterations(6);

void BM_Dataplane_XdpDrop(benchmark::State& state) {
    auto app = make(dataplane::port_kind::null, "bnull1", "size=64");
    bpf_object* obj = nullptr;
    if (!app || !attach(*app, "xdp_drop", "xdp_drop", &obj)) return state.SkipWithError("load failed (root needed)");
    measure(state, *app);
    app.reset();
    bpf_object__close(obj);
}
BENCHMARK(BM_Dataplane_XdpDrop)->Name("BM_Dataplane_XdpDrop/null")->UseManualTime()->Iterations(6);

// XDP_TX of every frame (the net_null frames are zeros, which xdp_swap_mac would pass): a
// program that writes one byte of the frame and transmits.
void BM_Dataplane_XdpTx(benchmark::State& state) {
    auto app = make(dataplane::port_kind::null, "bnull2", "size=64");
    if (!app) return state.SkipWithError("no dataplane (root needed)");
    const bpf_insn insns[] = {
        {BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0},
        {BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, 4, 0},
        {BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0},
        {BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, 14},
        {BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 3, 0},
        {BPF_ST | BPF_MEM | BPF_B, BPF_REG_2, 0, 0, 2},
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_TX},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_DROP},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "bench_tx", "GPL", insns, std::size(insns), nullptr);
    auto r = app->server().runnable(fd);
    if (fd < 0 || !r || !app->dataplane().attach(0, {r->prog, r->owner, r->name})) return state.SkipWithError("load failed");
    measure(state, *app);
    app.reset();
    close(fd);
}
BENCHMARK(BM_Dataplane_XdpTx)->Name("BM_Dataplane_XdpTx/null")->UseManualTime()->Iterations(6);

}  // namespace
}  // namespace xdprt::bench

BENCHMARK_MAIN();
