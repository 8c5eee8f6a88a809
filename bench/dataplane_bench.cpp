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
double io_forward_ns = 0;       // BM_IoForward/null's ns per packet, the null rows' ceiling

// An appliance with one port without a twin; ring ports get 4,096-slot rings.
std::unique_ptr<appliance::appliance> make(dataplane::port_kind kind, const char* name, std::string devargs = "") {
    appliance::options o;
    o.server.pin_root = testing_support::scratch_pin_root();
    o.dataplane.eal_args = eal_args;
    dataplane::port_spec p;
    p.name = name;
    p.kind = kind;
    p.twin = false;
    p.devargs = std::move(devargs);
    if (kind == dataplane::port_kind::ring) p.rx_desc = p.tx_desc = 4096;
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

// `ceiling_ns`: the io-forward cost of the same port kind (0: this row is the ceiling).
void report(benchmark::State& state, uint64_t packets, double seconds, uint64_t allocs, double ceiling_ns) {
    state.counters["Mpps"] = benchmark::Counter(double(packets) / seconds / 1e6);
    double ns = seconds * 1e9 / double(packets ? packets : 1);
    state.counters["ns_per_pkt"] = ns;
    if (ceiling_ns > 0) state.counters["ns_above_io"] = ns - ceiling_ns;
    state.counters["allocs_per_pkt"] = double(allocs) / double(packets ? packets : 1);
    state.SetItemsProcessed(int64_t(packets));
}

// Runs the dataplane for `window` per iteration; packets are what port 0 received.
void measure(benchmark::State& state, appliance::appliance& app, double ceiling_ns) {
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
    report(state, packets, seconds, allocs, ceiling_ns);
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

struct generator {
    std::atomic<bool> run{true};
    std::atomic<uint64_t> empty_polls{0}, polls{0};
    std::thread t;
    ~generator() {
        run = false;
        if (t.joinable()) t.join();
    }
};

// Moves what the worker sent back to its RX ring, restored; tops the RX ring up from `pool`.
void generate(generator& g, rte_ring* rx, rte_ring* tx, rte_mempool* pool, const std::vector<uint8_t>& f) {
    rte_mbuf* b[64];
    auto fill = [&](rte_mbuf* m) {
        m->data_off = RTE_PKTMBUF_HEADROOM;
        std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), f.data(), f.size());
        m->data_len = uint16_t(f.size());
        m->pkt_len = uint32_t(f.size());
    };
    while (g.run.load(std::memory_order_relaxed)) {
        unsigned n = rte_ring_dequeue_burst(tx, reinterpret_cast<void**>(b), 64, nullptr);
        for (unsigned i = 0; i < n; ++i) fill(b[i]);
        if (n) {
            unsigned in = rte_ring_enqueue_burst(rx, reinterpret_cast<void**>(b), n, nullptr);
            if (in < n) rte_pktmbuf_free_bulk(b + in, n - in);
        }
        unsigned have = rte_ring_count(rx);
        g.polls.fetch_add(1, std::memory_order_relaxed);
        if (!have) g.empty_polls.fetch_add(1, std::memory_order_relaxed);
        if (have < 1024 && rte_pktmbuf_alloc_bulk(pool, b, 64) == 0) {
            for (auto* m : b) fill(m);
            unsigned in = rte_ring_enqueue_burst(rx, reinterpret_cast<void**>(b), 64, nullptr);
            if (in < 64) rte_pktmbuf_free_bulk(b + in, 64 - in);
        }
    }
}

rte_mempool* frame_pool() {
    static rte_mempool* p = rte_pktmbuf_pool_create("bench_frames", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    return p;
}

double io_forward_ring_ns = 0;

void BM_IoForward_Ring(benchmark::State& state) {
    auto app = make(dataplane::port_kind::ring, "bio");
    if (!app || !frame_pool()) return state.SkipWithError("no dataplane (root needed)");
    generator g;
    g.t = std::thread(generate, std::ref(g), rte_ring_lookup("bio.rx0"), rte_ring_lookup("bio.tx0"), frame_pool(), vip_frame());
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
    g.t = std::thread(generate, std::ref(g), rte_ring_lookup("bpr.rx0"), rte_ring_lookup("bpr.tx0"), frame_pool(), vip_frame());
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
