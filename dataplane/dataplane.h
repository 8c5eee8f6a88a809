// The DPDK dataplane (DESIGN.md section 4): ports, their kernel twins, and the worker lcores that
// run the attached XDP program over each burst and act on its verdicts.
//
// One burst of a worker: rx_burst -> fill one xdp_buff per mbuf (256 B of headroom: the mbuf's
// private area sits right before its buffer and serves as the front of the headroom) -> run the
// port's program over the burst -> partition by action -> DROP/ABORTED: one free-bulk; TX: the
// same port's TX queue of this worker; PASS: the port's kernel twin; REDIRECT: the target port's
// TX queue (bpf_redirect to a port's ifindex, DEVMAP, DEVMAP_HASH) -> one tx_burst per target ->
// counters flushed -> one quiescent point (maps and program swaps).
//
// Ports: every port is a DPDK ethdev. Its kernel twin is a TAP interface (net_tap) named after
// the port: XDP_PASS writes the frame there so the kernel receives it as if from the port, and
// what the kernel sends on the twin leaves through the port. The twin's ifindex is the port's
// ifindex: loaders attach to it and programs redirect to it.
//
// Programs are swapped atomically (DESIGN.md invariant 8): attach() publishes the new program's
// pointer, waits until every worker has passed a quiescent point, then drops the old one; a worker
// reads the pointer once per burst, so each packet is handled wholly by one version.
//
// Thread affinity: create/start/stop/attach/stats from one control thread; workers are lcores.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "maps/map.h"

namespace xdprt::vm {
struct program;
}

namespace xdprt::dataplane {

enum class port_kind { pci, af_xdp, tap, ring, null, pcap, memif };
const char* port_kind_name(port_kind k);

struct port_spec {
    std::string name;              // the port's name, and its twin's interface name
    port_kind kind = port_kind::null;
    std::string device;            // pci: the PCI address; af_xdp: the kernel interface; tap: its interface
    std::string rx_pcap, tx_pcap;  // pcap: the capture read and the capture written
    std::string devargs;           // extra PMD arguments, appended as given ("size=64,copy=1")
    uint16_t rx_queues = 1;
    uint16_t rx_desc = 1024, tx_desc = 1024;
    bool twin = true;              // create the kernel twin (needs CAP_NET_ADMIN and /dev/net/tun)
    bool promiscuous = true;
};

struct worker_spec {
    unsigned lcore = 1;
    struct queue {
        std::string port;
        uint16_t rx_queue = 0;
    };
    std::vector<queue> queues;  // the (port, queue) pairs this worker polls
};

struct options {
    std::vector<std::string> eal_args;  // after argv[0]; rte_eal_init runs once per process
    uint32_t burst = 32;                // packets per rx_burst, at most max_burst
    uint32_t mbufs = 16383;             // mempool size (per dataplane)
    std::vector<port_spec> ports;
    std::vector<worker_spec> workers;   // empty: one worker on the first worker lcore, all queues
};

inline constexpr uint32_t max_burst = 256;

// What a worker runs for a port: a loaded XDP program (JIT code when it has some, else the
// interpreter) and whatever keeps it alive while any worker may still run it.
struct xdp_program {
    const vm::program* prog = nullptr;
    std::shared_ptr<const void> owner;
    std::string name;
};

// Per port and action, summed over the workers.
// rx: frames received; tx, drop, pass, redirect, aborted: verdicts (of the port's program, and
// of cpumap entries' programs for frames it redirected to a CPU: cpu_in counts those arrivals);
// tx_error: frames a device refused; redirect_error: redirects to nothing (an empty map slot, an
// interface that is no port) or a full CPU ring; oversize: frames no program may see (multi-
// segment) or a frame grown past its buffer.
enum class counter : uint8_t { rx, tx, drop, pass, redirect, aborted, tx_error, redirect_error, oversize, cpu_in, count_ };
inline constexpr const char* counter_names[] = {"rx",       "tx",       "drop",           "pass",     "redirect",
                                                "aborted",  "tx_error", "redirect_error", "oversize", "cpu_in"};
static_assert(std::size(counter_names) == size_t(counter::count_));

struct port_stats {
    std::string name;
    uint32_t ifindex = 0;
    uint64_t packets[size_t(counter::count_)] = {};  // the port's totals
    uint64_t bytes[size_t(counter::count_)] = {};
    struct queue {
        uint64_t packets[size_t(counter::count_)] = {};
        uint64_t bytes[size_t(counter::count_)] = {};
    };
    std::vector<queue> queues;  // per RX queue: what arrived there and its verdicts (not CPUMAP work)
    uint64_t twin_rx = 0;  // frames the kernel sent on the twin, out of the port
};

class dataplane {
public:
    // Starts the EAL (once per process), creates the mempool and the ports and their twins.
    // Errors name the port and what failed.
    [[nodiscard]] static result<std::unique_ptr<dataplane>> create(options opts);
    ~dataplane();  // stops workers, closes ports, removes twins
    dataplane(const dataplane&) = delete;
    dataplane& operator=(const dataplane&) = delete;

    // Launches the workers on their lcores.
    [[nodiscard]] result<void> start();
    // Stops the workers (they finish their burst) and waits for them.
    void stop();

    // The port's ifindex (its twin's; 0 without a twin) and index by name.
    struct port_info {
        std::string name;
        uint16_t ethdev = 0;
        uint32_t ifindex = 0;
    };
    const std::vector<port_info>& ports() const;

    // Attaches `p` to port `index` (null prog: detach; the port then passes every frame to its
    // twin, as a netdev without XDP does). Returns after no worker can still run the old program.
    [[nodiscard]] result<void> attach(size_t index, xdp_program p);

    std::vector<port_stats> stats() const;

    // AF_XDP sockets of local applications, the targets of XSKMAP redirects (xsk.cpp). An
    // application binds its socket in copy mode (XDP_COPY) to queue q of a port's kernel twin,
    // as it would to queue q of a NIC, then puts the socket in the program's XSKMAP: frames the
    // program redirects to it that came in on that port's RX queue q (the kernel's rule) reach
    // it, and what it sends leaves through the port. bind_xsk takes the socket's fd (of this
    // process) as it enters an XSKMAP; the element holds the answer, and the socket's slot is
    // released with the last element holding it. Not a socket: ENOTSOCK; not AF_XDP: EOPNOTSUPP.
    [[nodiscard]] result<std::shared_ptr<const maps::xsk_binding>> bind_xsk(int fd);

    struct impl;

private:
    explicit dataplane(std::unique_ptr<impl> i);
    std::unique_ptr<impl> _impl;
};

}  // namespace xdprt::dataplane
