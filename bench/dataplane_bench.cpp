// Packets per second of one worker core (lcore 1), in one run so the ratios are side by side:
//
//   BM_IoForward/null        rx_burst -> tx_burst on a net_null port, no program: the ceiling of
//                            DPDK and the PMD on this machine (testpmd's io mode).
//   BM_Dataplane_XdpDrop/null, BM_Dataplane_XdpTx/null
//                            the dataplane's whole burst loop (contexts, program, verdicts, bulk
//                            free or tx_burst, counters, quiescent point) on the same port.
//   BM_IoForward/ring, BM_Dataplane_<Prog>/ring
//                            real frames (UDP to the demo VIP, 64 B) on a net_ring port: a
//                            generator thread on the other core restores each frame the worker
//                            sent (TX ring) and feeds it back to the RX ring, topping up what the
//                            worker dropped or passed; ~1,000 frames in flight. Programs: xdp_drop,
//                            xdp_swap_mac (TX), xdp_udp_filter (the firewall: passes these frames),
//                            xdp_demo_lb (LRU flow lookup, IPIP encapsulation, TX). When the
//                            generator cannot keep the RX ring fed the worker idles and the row
//                            says so (rx_ring_empty_pct).
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
#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include <benchmark/benchmark.h>

#include "dataplane_harness.h"

namespace xdprt::bench {
namespace {

double io_forward_ns = 0;  // BM_IoForward/null's ns per packet, the null rows' ceiling

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

// Runs io_forward on lcore 1 over `port` for the benchmark's iterations; the ns per packet.
double measure_io(benchmark::State& state, uint16_t port) {
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
    report(state, packets, seconds, 0, 0);
    return seconds * 1e9 / double(packets ? packets : 1);
}

void BM_IoForward(benchmark::State& state) {
    auto app = make(dataplane::port_kind::null, "bnull0", "size=64");
    if (!app) return state.SkipWithError("no dataplane (root needed)");
    io_forward_ns = measure_io(state, app->dataplane().ports()[0].ethdev);
}
BENCHMARK(BM_IoForward)->Name("BM_IoForward/null")->UseManualTime()->Iterations(6);

void BM_Dataplane_XdpDrop(benchmark::State& state) {
    auto app = make(dataplane::port_kind::null, "bnull1", "size=64");
    bpf_object* obj = nullptr;
    if (!app || !attach(*app, "xdp_drop", "xdp_drop", &obj)) return state.SkipWithError("load failed (root needed)");
    measure(state, *app, io_forward_ns);
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
    measure(state, *app, io_forward_ns);
    app.reset();
    close(fd);
}
BENCHMARK(BM_Dataplane_XdpTx)->Name("BM_Dataplane_XdpTx/null")->UseManualTime()->Iterations(6);


// ---- net_ring with real frames ---------------------------------------------------------------

// A 64-byte UDP frame to the demo VIP 198.18.10.1 (xdp_demo_lb balances it; xdp_udp_filter
// passes it; xdp_swap_mac transmits it).
std::vector<uint8_t> vip_frame() {
    std::vector<uint8_t> f(64, 0);
    const uint8_t head[] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
                            0x45, 0, 0, 50, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 2, 1, 198, 18, 10, 1,
                            0x9c, 0x40, 0, 53, 0, 30, 0, 0};
    std::memcpy(f.data(), head, sizeof head);
    return f;
}

double io_forward_ring_ns = 0;

void BM_IoForward_Ring(benchmark::State& state) {
    auto app = make(dataplane::port_kind::ring, "bio");
    if (!app || !frame_pool()) return state.SkipWithError("no dataplane (root needed)");
    generator g;
    g.t = std::thread(generate, std::ref(g), rte_ring_lookup("bio.rx0"), rte_ring_lookup("bio.tx0"), frame_pool(), std::vector<std::vector<uint8_t>>{vip_frame()});
    io_forward_ring_ns = measure_io(state, app->dataplane().ports()[0].ethdev);
    g.run = false;
    g.t.join();
    state.counters["rx_ring_empty_pct"] = 100.0 * double(g.empty_polls) / double(g.polls ? g.polls.load() : 1);
}
BENCHMARK(BM_IoForward_Ring)->Name("BM_IoForward/ring")->UseManualTime()->Iterations(6);

void ring_program(benchmark::State& state, const char* obj, const char* prog) {
    auto app = make(dataplane::port_kind::ring, "bpr");
    bpf_object* o = nullptr;
    if (!app || !frame_pool() || !attach(*app, obj, prog, &o)) return state.SkipWithError("load failed (root needed)");
    generator g;
    g.t = std::thread(generate, std::ref(g), rte_ring_lookup("bpr.rx0"), rte_ring_lookup("bpr.tx0"), frame_pool(), std::vector<std::vector<uint8_t>>{vip_frame()});
    measure(state, *app, io_forward_ring_ns);
    g.run = false;
    g.t.join();
    state.counters["rx_ring_empty_pct"] = 100.0 * double(g.empty_polls) / double(g.polls ? g.polls.load() : 1);
    app.reset();
    bpf_object__close(o);
}
void BM_Ring_XdpDrop(benchmark::State& state) { ring_program(state, "xdp_drop", "xdp_drop"); }
void BM_Ring_SwapMac(benchmark::State& state) { ring_program(state, "xdp_swap_mac", "xdp_swap_mac"); }
void BM_Ring_Firewall(benchmark::State& state) { ring_program(state, "xdp_udp_filter", "xdp_udp_filter"); }
void BM_Ring_LoadBalancer(benchmark::State& state) { ring_program(state, "xdp_demo_lb", "xdp_demo_lb"); }
BENCHMARK(BM_Ring_XdpDrop)->Name("BM_Dataplane_XdpDrop/ring")->UseManualTime()->Iterations(6);
BENCHMARK(BM_Ring_SwapMac)->Name("BM_Dataplane_SwapMac/ring")->UseManualTime()->Iterations(6);
BENCHMARK(BM_Ring_Firewall)->Name("BM_Dataplane_Firewall/ring")->UseManualTime()->Iterations(6);
BENCHMARK(BM_Ring_LoadBalancer)->Name("BM_Dataplane_LoadBalancer/ring")->UseManualTime()->Iterations(6);

}  // namespace
}  // namespace xdprt::bench

BENCHMARK_MAIN();
