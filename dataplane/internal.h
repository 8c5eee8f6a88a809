// Private to dataplane/: the state workers read and the control thread writes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/dataplane.h"
#include "helpers/helpers.h"
#include "prog/prog.h"

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

namespace xdprt::dataplane {

inline constexpr uint16_t no_ethdev = 0xffff;
// Bytes of the mbuf's private area, just before its buffer: with the PMDs' RTE_PKTMBUF_HEADROOM
// (128) it makes the 256 B of headroom XDP promises (helpers::xdp_headroom).
inline constexpr uint16_t mbuf_priv_bytes = 128;

// Runs the program over `n` contexts, writing each verdict (XDP_* action) to `actions` and, for
// XDP_REDIRECT, the target to `targets`. Chosen once per program: JIT code or the interpreter.
using burst_fn = void (*)(const vm::program& p, prog::xdp_buff* ctx, uint8_t* actions,
                          helpers::redirect_target* targets, uint32_t n) noexcept;

struct xsk_registry;  // xsk.cpp

// A published program: what a worker loads once per burst.
struct runner {
    xdp_program p;
    burst_fn run = nullptr;
};

// Counters of one worker for one port, flushed once per burst (cache-line aligned: only the
// owning worker writes them; stats() reads them racily, which is fine for monotonic u64s).
struct alignas(64) port_counters {
    std::atomic<uint64_t> packets[size_t(counter::count_)] = {};
    std::atomic<uint64_t> bytes[size_t(counter::count_)] = {};
};

// A TX queue a worker transmits on. Shared (`lock` non-null) only when the device has fewer TX
// queues than transmitters (af_xdp on a single-queue veth): then the flush takes the lock, once
// per burst, never per packet.
struct txq {
    uint16_t ethdev = no_ethdev;
    uint16_t queue = 0;
    std::atomic_flag* lock = nullptr;
};

struct port_state {
    // read by workers
    std::atomic<const runner*> active{nullptr};
    uint16_t ethdev = no_ethdev;
    uint16_t twin = no_ethdev;   // the twin's ethdev; no_ethdev when the port has none
    // The twin's queues: [0, rx_queues) deliver to AF_XDP sockets bound to the twin's queue of
    // the same number (xsk.cpp); then one per worker (PASS) and one for the twin service.
    uint16_t twin_pass_queue = 0;  // the first after the AF_XDP ones
    uint32_t ifindex = 0;
    // control thread only
    port_spec spec;
    uint16_t tx_queues = 0, twin_queues = 0;
    struct {
        int prog = -1, link = -1;  // on the twin, in the kernel, once a socket binds (xsk.cpp)
    } xsk;
    std::unique_ptr<std::atomic_flag[]> tx_locks;  // one per TX queue when shared
    std::unique_ptr<runner> owned;                 // the runner `active` points to
};

struct worker_state {
    unsigned lcore = 0;
    uint32_t index = 0;  // this worker's TX queue on every port and twin
    std::vector<std::pair<uint32_t, uint16_t>> queues;  // (port index, rx queue)
    std::unique_ptr<port_counters[]> queue_counters;    // per entry of `queues`
    std::unique_ptr<port_counters[]> counters;          // per port: CPUMAP work done on this lcore
};

struct dataplane::impl {
    options opts;
    rte_mempool* pool = nullptr;
    std::vector<std::unique_ptr<port_state>> ports;
    std::vector<port_info> info;
    std::vector<std::unique_ptr<worker_state>> workers;
    std::atomic<bool> running{false};
    bool started = false;
    std::jthread twin_service;   // kernel -> twin -> port, for every port; CPUMAP rings without a worker
    std::unique_ptr<port_counters[]> twin_counters;             // per port, written by twin_service
    std::unique_ptr<port_counters[]> service_counters;          // per port: CPUMAP work of twin_service
    std::vector<rte_ring*> cpu_rings;  // per runtime CPU id: frames redirected through a CPUMAP
    void drop_cpu_rings();             // frees what the rings hold (the dataplane stopped)
    void wait_cpu_rings();             // until every frame enqueued so far was processed

    [[nodiscard]] result<void> open_ports();
    [[nodiscard]] result<void> plan_workers();
    void close_ports();
    std::shared_ptr<xsk_registry> xsks;  // AF_XDP sockets (xsk.cpp); outlives us in their bindings
    // The port whose twin has `ifindex` (a redirect's target), or -1.
    int port_of_ifindex(uint32_t ifindex) const noexcept;
    ~impl();
};

// Detaches and closes the kernel side of a port's AF_XDP delivery (xsk.cpp), if it has one.
void close_xsk(port_state& ps);

// The worker loop (worker.cpp): runs until `running` is false.
int worker_main(dataplane::impl& dp, worker_state& w);
// The twin service loop (worker.cpp): frames the kernel sent on twins leave through their port.
void twin_main(dataplane::impl& dp, std::stop_token stop);
// The burst function for a program: native code when compiled, else the interpreter.
burst_fn burst_fn_for(const vm::program& p);

}  // namespace xdprt::dataplane
