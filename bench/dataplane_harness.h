// The one-worker dataplane harness of the Mpps benchmarks (dataplane_bench, katran_bench): an
// in-process appliance with one port, the measurement window, and, for net_ring ports, a
// generator thread that restores and feeds back what the worker sent.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <rte_ethdev.h>
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

using namespace std::chrono_literals;
inline const std::vector<std::string> eal_args = {"--no-huge", "--no-pci", "-m", "512", "--no-shconf", "-l", "0-1",
                                           "--log-level=lib.eal:error", "--log-level=pmd.net.null:error"};
inline constexpr auto window = 500ms;  // one iteration: the worker runs this long

// An appliance with one port without a twin; ring ports get 4,096-slot rings.
inline std::unique_ptr<appliance::appliance> make(dataplane::port_kind kind, const char* name, std::string devargs = "") {
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
inline bool attach(appliance::appliance& app, const char* obj, const char* prog, bpf_object** keep) {
    *keep = bpf_object__open_file((std::string(XDPRT_PROGS_DIR) + "/" + obj + ".bpf.o").c_str(), nullptr);
    if (!*keep || bpf_object__load(*keep) != 0) return false;
    bpf_program* p = bpf_object__find_program_by_name(*keep, prog);
    if (!p) return false;
    auto r = app.server().runnable(bpf_program__fd(p));
    return r && app.dataplane().attach(0, {r->prog, r->owner, r->name});
}

// `ceiling_ns`: the io-forward cost of the same port kind (0: this row is the ceiling).
inline void report(benchmark::State& state, uint64_t packets, double seconds, uint64_t allocs, double ceiling_ns) {
    state.counters["Mpps"] = benchmark::Counter(double(packets) / seconds / 1e6);
    double ns = seconds * 1e9 / double(packets ? packets : 1);
    state.counters["ns_per_pkt"] = ns;
    if (ceiling_ns > 0) state.counters["ns_above_io"] = ns - ceiling_ns;
    state.counters["allocs_per_pkt"] = double(allocs) / double(packets ? packets : 1);
    state.SetItemsProcessed(int64_t(packets));
}

// Runs the dataplane for `window` per iteration; packets are what port 0 received.
inline void measure(benchmark::State& state, appliance::appliance& app, double ceiling_ns) {
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
// Cycles through `frames` (one per flow).
inline void generate(generator& g, rte_ring* rx, rte_ring* tx, rte_mempool* pool, std::vector<std::vector<uint8_t>> frames) {
    size_t next = 0;
    rte_mbuf* b[64];
    auto fill = [&](rte_mbuf* m) {
        const auto& f = frames[next];
        next = next + 1 == frames.size() ? 0 : next + 1;
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

inline rte_mempool* frame_pool() {
    static rte_mempool* p = rte_pktmbuf_pool_create("bench_frames", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    return p;
}

}  // namespace xdprt::bench
