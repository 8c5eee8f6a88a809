// The dataplane's life cycle: EAL, mempool, ports and twins, worker plan, program swaps, stats.
#include "dataplane/dataplane.h"

#include <net/if.h>
#include <unistd.h>

#include <cstring>

#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <chrono>
#include <set>
#include <thread>

#include "dataplane/internal.h"
#include "maps/map.h"
#include "maps/qsbr.h"
#include "vm/vm.h"

namespace xdprt::dataplane {

const char* port_kind_name(port_kind k) {
    switch (k) {
    case port_kind::pci: return "pci";
    case port_kind::af_xdp: return "af_xdp";
    case port_kind::tap: return "tap";
    case port_kind::ring: return "ring";
    case port_kind::null: return "null";
    case port_kind::pcap: return "pcap";
    case port_kind::memif: return "memif";
    }
    return "?";
}

namespace {

// rte_eal_init works once per process (MACHINE.md): the first dataplane starts it with its
// arguments, later ones reuse it.
std::mutex eal_lock;
bool eal_up = false;

result<void> start_eal(const std::vector<std::string>& args) {
    std::lock_guard g(eal_lock);
    if (eal_up) return {};
    std::vector<std::string> owned{"xdprt"};
    owned.insert(owned.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : owned) argv.push_back(a.data());
    argv.push_back(nullptr);
    // EALREADY: the embedding process started the EAL itself.
    if (rte_eal_init(int(argv.size() - 1), argv.data()) < 0 && rte_errno != EALREADY)
        return fail(EINVAL, "EAL: {} (arguments: {})", rte_strerror(rte_errno), fmt::join(args, " "));
    eal_up = true;
    return {};
}

std::atomic<uint32_t> generation{0};  // vdev names are unique per process: dataplanes come and go in tests

result<void> dpdk_call(int rc, std::string_view what) {
    // Some PMDs answer a bare -1 and say why in their log.
    if (rc == -1) return fail(EINVAL, "{}: refused by the driver (its log line above says why)", what);
    if (rc < 0) return fail(-rc, "{}: {}", what, rte_strerror(-rc));
    return {};
}

// Brings up one ethdev: rx queues on the pool, tx queues (fewer than asked when the device has
// fewer), RSS across several rx queues, started, promiscuous when asked.
result<uint16_t> setup_ethdev(uint16_t id, uint16_t rxq, uint16_t txq_wanted, uint16_t rx_desc, uint16_t tx_desc,
                              rte_mempool* pool, bool promiscuous, uint16_t& txq_out) {
    rte_eth_dev_info dev_info;
    if (auto ok = dpdk_call(rte_eth_dev_info_get(id, &dev_info), "device info"); !ok) return tl::unexpected(ok.error());
    if (rxq > dev_info.max_rx_queues)
        return fail(EINVAL, "{} rx queues asked, the device has {}", rxq, dev_info.max_rx_queues);
    uint16_t txq = std::min<uint16_t>(txq_wanted, dev_info.max_tx_queues);
    if (!txq) return fail(EINVAL, "the device has no tx queue");
    rte_eth_conf conf{};
    if (rxq > 1) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & dev_info.flow_type_rss_offloads;
    }
    if (auto ok = dpdk_call(rte_eth_dev_configure(id, rxq, txq, &conf), "configure"); !ok) return tl::unexpected(ok.error());
    uint16_t nrx = rx_desc, ntx = tx_desc;
    if (auto ok = dpdk_call(rte_eth_dev_adjust_nb_rx_tx_desc(id, &nrx, &ntx), "descriptors"); !ok)
        return tl::unexpected(ok.error());
    int socket = rte_eth_dev_socket_id(id);
    if (socket < 0) socket = 0;
    for (uint16_t q = 0; q < rxq; ++q)
        if (auto ok = dpdk_call(rte_eth_rx_queue_setup(id, q, nrx, unsigned(socket), nullptr, pool), fmt::format("rx queue {}", q)); !ok)
            return tl::unexpected(ok.error());
    for (uint16_t q = 0; q < txq; ++q)
        if (auto ok = dpdk_call(rte_eth_tx_queue_setup(id, q, ntx, unsigned(socket), nullptr), fmt::format("tx queue {}", q)); !ok)
            return tl::unexpected(ok.error());
    if (auto ok = dpdk_call(rte_eth_dev_start(id), "start"); !ok) return tl::unexpected(ok.error());
    if (promiscuous) (void)rte_eth_promiscuous_enable(id);  // not every PMD has it (net_ring, net_null)
    txq_out = txq;
    return id;
}

result<uint16_t> probe(const std::string& devargs, const std::string& name) {
    if (int rc = rte_dev_probe(devargs.c_str()); rc < 0) return fail(-rc, "probe '{}': {}", devargs, rte_strerror(-rc));
    uint16_t id;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &id) != 0) return fail(ENODEV, "'{}' probed but no ethdev has that name", name);
    return id;
}

std::string ring_name(const std::string& port, const char* dir, uint16_t q) { return fmt::format("{}.{}{}", port, dir, q); }

}  // namespace

dataplane::dataplane(std::unique_ptr<impl> i) : _impl(std::move(i)) {}
dataplane::~dataplane() = default;

dataplane::impl::~impl() {
    if (running.exchange(false))
        for (auto& w : workers) rte_eal_wait_lcore(w->lcore);
    twin_service = {};
    drop_cpu_rings();
    for (rte_ring* r : cpu_rings) rte_ring_free(r);
    close_ports();
    if (pool) rte_mempool_free(pool);
}

void dataplane::impl::drop_cpu_rings() {
    rte_mbuf* m;
    for (rte_ring* r : cpu_rings)
        while (rte_ring_dequeue(r, reinterpret_cast<void**>(&m)) == 0) rte_pktmbuf_free(m);
}

void dataplane::impl::wait_cpu_rings() {
    // Every frame enqueued before now was taken once the consumer's tail passes today's head;
    // it was processed once its consumer then passes a quiescent point (the caller waits for one).
    std::vector<uint32_t> heads;
    for (rte_ring* r : cpu_rings) heads.push_back(__atomic_load_n(&r->prod.tail, __ATOMIC_ACQUIRE));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    for (size_t k = 0; k < cpu_rings.size(); ++k)
        while (int32_t(__atomic_load_n(&cpu_rings[k]->cons.tail, __ATOMIC_ACQUIRE) - heads[k]) < 0 &&
               running.load() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
}

result<void> dataplane::impl::open_ports() {
    const uint32_t gen = generation.fetch_add(1);
    const uint16_t nworkers = uint16_t(workers.size());
    for (size_t k = 0; k < opts.ports.size(); ++k) {
        auto ps = std::make_unique<port_state>();
        ps->spec = opts.ports[k];
        const port_spec& sp = ps->spec;
        auto where = [&](const error& e) { return tl::unexpected(with_context(e, fmt::format("port '{}' ({})", sp.name, port_kind_name(sp.kind)))); };
        const std::string base = fmt::format("x{}_{}", gen, k);
        // A virtual device of `driver` named after this dataplane and port, with the kind's own
        // arguments, then the config's devargs.
        auto vdev = [&](const char* driver, const std::string& args) {
            std::string name = fmt::format("{}_{}", driver, base);
            std::string dev = name;
            for (const std::string* more : {&args, &sp.devargs})
                if (!more->empty()) dev += "," + *more;
            return probe(dev, name);
        };
        result<uint16_t> id = fail(EINVAL, "unknown port kind");
        switch (sp.kind) {
        case port_kind::null:
            id = vdev("net_null", "");
            break;
        case port_kind::tap:
            if (sp.twin && (sp.device.empty() || sp.device == sp.name))
                return where(error{EINVAL, "a tap port's interface is named by `device`, and must differ from the port's name, "
                                           "which its kernel twin takes"});
            id = vdev("net_tap", "iface=" + (sp.device.empty() ? sp.name : sp.device));
            break;
        case port_kind::pcap:
            if (access(sp.rx_pcap.c_str(), R_OK) != 0)
                return where(error{ENOENT, fmt::format("rx_pcap '{}': {}", sp.rx_pcap, std::strerror(errno))});
            id = vdev("net_pcap", fmt::format("rx_pcap={},tx_pcap={}", sp.rx_pcap, sp.tx_pcap));
            break;
        case port_kind::af_xdp:
            if (!if_nametoindex(sp.device.c_str()))
                return where(error{ENODEV, fmt::format("no kernel interface '{}' to read with af_xdp", sp.device)});
            id = vdev("net_af_xdp", fmt::format("iface={},start_queue=0,queue_count={}", sp.device, sp.rx_queues));
            break;
        case port_kind::memif:
            id = vdev("net_memif", sp.devargs.empty() ? "role=server" : "");
            break;
        case port_kind::pci: {
            // A PCI address to probe, or the name of an ethdev the embedding process made.
            uint16_t existing;
            if (rte_eth_dev_get_port_by_name(sp.device.c_str(), &existing) == 0) id = existing;
            else id = probe(sp.device + (sp.devargs.empty() ? "" : "," + sp.devargs), sp.device);
            break;
        }
        case port_kind::ring: {
            // Named rings a local producer and consumer reach with rte_ring_lookup:
            // NAME.rxQ feeds rx queue Q, NAME.txQ receives what tx queue Q sends.
            std::vector<rte_ring*> rings[2];
            const uint16_t count[2] = {sp.rx_queues, uint16_t(nworkers + 1)};
            const uint16_t size[2] = {sp.rx_desc, sp.tx_desc};
            for (int dir = 0; dir < 2; ++dir)
                for (uint16_t q = 0; q < count[dir]; ++q) {
                    std::string name = ring_name(sp.name, dir ? "tx" : "rx", q);
                    rte_ring* r = rte_ring_create(name.c_str(), size[dir], SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
                    if (!r) return where(error{rte_errno, fmt::format("ring {}: {}", name, rte_strerror(rte_errno))});
                    rings[dir].push_back(r);
                }
            std::string name = "net_ring_" + base;
            int rc = rte_eth_from_rings(name.c_str(), rings[0].data(), unsigned(rings[0].size()), rings[1].data(),
                                        unsigned(rings[1].size()), 0);
            id = rc < 0 ? result<uint16_t>(fail(rte_errno, "net_ring: {}", rte_strerror(rte_errno))) : result<uint16_t>(uint16_t(rc));
            break;
        }
        }
        if (!id) return where(id.error());
        ps->ethdev = *id;
        // Each worker has its own TX queue on every port, and the twin service one more.
        // af_xdp pairs each TX queue with an RX queue's socket and net_tap wants as many of each:
        // there the transmitters share the port's queues (txq::lock).
        bool paired = sp.kind == port_kind::af_xdp || sp.kind == port_kind::tap;
        uint16_t want_tx = paired ? sp.rx_queues : uint16_t(nworkers + 1);
        auto up = setup_ethdev(ps->ethdev, sp.rx_queues, want_tx, sp.rx_desc, sp.tx_desc, pool, sp.promiscuous, ps->tx_queues);
        if (!up) return where(up.error());
        if (ps->tx_queues < nworkers + 1) {
            ps->tx_locks = std::make_unique<std::atomic_flag[]>(ps->tx_queues);
            for (uint16_t q = 0; q < ps->tx_queues; ++q) ps->tx_locks[q].clear();
        }
        if (sp.twin) {
            std::string twin_dev = "net_tap_" + base + "t";
            auto tid = probe(fmt::format("{},iface={}", twin_dev, sp.name), twin_dev);
            if (!tid) return where(with_context(tid.error(), "kernel twin"));
            ps->twin = *tid;
            uint16_t tq = 0;
            // A queue pair per RX queue (AF_XDP delivery), per worker (PASS), and one for the twin
            // service (CPUMAP work it does).
            const uint16_t want = uint16_t(sp.rx_queues + nworkers + 1);
            auto tup = setup_ethdev(ps->twin, want, want, 512, 512, pool, false, tq);
            if (!tup) return where(with_context(tup.error(), "kernel twin"));
            if (tq < want) return where(error{ENOTSUP, fmt::format("kernel twin: {} queues of {} wanted", tq, want)});
            ps->twin_queues = tq;
            ps->twin_pass_queue = sp.rx_queues;
            ps->ifindex = if_nametoindex(sp.name.c_str());
            if (!ps->ifindex) return where(error{ENODEV, fmt::format("kernel twin '{}' has no ifindex", sp.name)});
        }
        info.push_back({sp.name, ps->ethdev, ps->ifindex});
        ports.push_back(std::move(ps));
    }
    return {};
}

void dataplane::impl::close_ports() {
    for (auto& ps : ports) {
        // A twin is always a vdev of ours; so is the port, but for pci (a NIC, or an ethdev the
        // embedding process made) and ring (an ethdev made from rings, which go below).
        auto close = [](uint16_t id, bool remove) {
            if (id == no_ethdev) return;
            rte_eth_dev_info dev_info{};
            bool known = rte_eth_dev_info_get(id, &dev_info) == 0 && dev_info.device;
            (void)rte_eth_dev_stop(id);
            (void)rte_eth_dev_close(id);
            if (remove && known) (void)rte_dev_remove(dev_info.device);
        };
        close_xsk(*ps);
        close(ps->twin, true);
        close(ps->ethdev, ps->spec.kind != port_kind::pci && ps->spec.kind != port_kind::ring);
        if (ps->spec.kind == port_kind::ring) {
            // Frames still in the rings go back to their pools with them.
            auto release = [](const std::string& name) {
                rte_ring* r = rte_ring_lookup(name.c_str());
                rte_mbuf* m;
                while (r && rte_ring_dequeue(r, reinterpret_cast<void**>(&m)) == 0) rte_pktmbuf_free(m);
                rte_ring_free(r);
            };
            for (uint16_t q = 0; q < ps->spec.rx_queues; ++q) release(ring_name(ps->spec.name, "rx", q));
            for (uint16_t q = 0; q < workers.size() + 1; ++q) release(ring_name(ps->spec.name, "tx", q));
        }
    }
    ports.clear();
}

result<void> dataplane::impl::plan_workers() {
    std::map<std::string, size_t> by_name;
    for (size_t k = 0; k < opts.ports.size(); ++k) {
        if (!by_name.emplace(opts.ports[k].name, k).second) return fail(EINVAL, "port '{}' is named twice", opts.ports[k].name);
        if (opts.ports[k].name.empty() || opts.ports[k].name.size() >= IF_NAMESIZE)
            return fail(EINVAL, "port '{}': a name of 1 to {} characters (it names the kernel twin)", opts.ports[k].name, IF_NAMESIZE - 1);
        if (!opts.ports[k].rx_queues) return fail(EINVAL, "port '{}': rx_queues must be at least 1", opts.ports[k].name);
    }
    auto specs = opts.workers;
    if (specs.empty()) {
        unsigned lcore = rte_get_next_lcore(unsigned(-1), 1, 0);
        if (lcore >= RTE_MAX_LCORE) return fail(EINVAL, "no worker lcore: give the EAL at least two lcores (-l 0-1)");
        worker_spec w{lcore, {}};
        for (auto& p : opts.ports)
            for (uint16_t q = 0; q < p.rx_queues; ++q) w.queues.push_back({p.name, q});
        specs.push_back(std::move(w));
    }
    std::set<std::pair<size_t, uint16_t>> owned;
    std::set<unsigned> lcores;
    for (auto& ws : specs) {
        if (ws.lcore >= RTE_MAX_LCORE || !rte_lcore_is_enabled(ws.lcore))
            return fail(EINVAL, "worker lcore {} is not enabled in the EAL's lcores", ws.lcore);
        if (ws.lcore == rte_get_main_lcore())
            return fail(EINVAL, "worker lcore {} is the main lcore, which runs the control thread", ws.lcore);
        if (ws.lcore >= maps::possible_cpus())
            return fail(EINVAL, "worker lcore {}: programs see it as their CPU id, which must be below the {} possible CPUs",
                        ws.lcore, maps::possible_cpus());
        if (!lcores.insert(ws.lcore).second) return fail(EINVAL, "lcore {} has two workers", ws.lcore);
        auto w = std::make_unique<worker_state>();
        w->lcore = ws.lcore;
        w->index = uint32_t(workers.size());
        for (auto& q : ws.queues) {
            auto it = by_name.find(q.port);
            if (it == by_name.end()) return fail(EINVAL, "worker on lcore {}: no port '{}'", ws.lcore, q.port);
            if (q.rx_queue >= opts.ports[it->second].rx_queues)
                return fail(EINVAL, "worker on lcore {}: port '{}' has no rx queue {}", ws.lcore, q.port, q.rx_queue);
            if (!owned.emplace(it->second, q.rx_queue).second)
                return fail(EINVAL, "port '{}' rx queue {} has two workers", q.port, q.rx_queue);
            w->queues.emplace_back(uint32_t(it->second), q.rx_queue);
        }
        w->counters = std::make_unique<port_counters[]>(opts.ports.size());
        w->queue_counters = std::make_unique<port_counters[]>(w->queues.size());
        workers.push_back(std::move(w));
    }
    for (size_t k = 0; k < opts.ports.size(); ++k)
        for (uint16_t q = 0; q < opts.ports[k].rx_queues; ++q)
            if (!owned.count({k, q})) return fail(EINVAL, "port '{}' rx queue {} has no worker: its frames would be lost", opts.ports[k].name, q);
    return {};
}

result<std::unique_ptr<dataplane>> dataplane::create(options opts) {
    if (!opts.burst || opts.burst > max_burst) return fail(EINVAL, "burst {}: 1 to {}", opts.burst, max_burst);
    if (auto ok = start_eal(opts.eal_args); !ok) return tl::unexpected(ok.error());
    auto d = std::make_unique<impl>();
    d->opts = std::move(opts);
    if (auto ok = d->plan_workers(); !ok) return tl::unexpected(ok.error());
    // Every rx descriptor holds an mbuf, plus what is in flight in workers and the per-lcore caches.
    uint64_t need = 0;
    for (auto& p : d->opts.ports) need += uint64_t(p.rx_desc) * p.rx_queues + p.tx_desc * (d->workers.size() + 1) + (p.twin ? 512u * (p.rx_queues + d->workers.size() + 1) : 0);
    need += (d->workers.size() + 1) * (max_burst * 4 + 512);
    uint32_t n = uint32_t(std::max<uint64_t>(d->opts.mbufs, need));
    static std::atomic<uint32_t> pools{0};
    d->pool = rte_pktmbuf_pool_create(fmt::format("xdprt{}", pools.fetch_add(1)).c_str(), n, 256, mbuf_priv_bytes,
                                      RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    if (!d->pool) return fail(ENOMEM, "mempool of {} mbufs: {}", n, rte_strerror(rte_errno));
    d->twin_counters = std::make_unique<port_counters[]>(d->opts.ports.size());
    d->service_counters = std::make_unique<port_counters[]>(d->opts.ports.size());
    if (auto ok = d->open_ports(); !ok) return tl::unexpected(ok.error());
    // CPUMAP: a ring per runtime CPU id, multi-producer (any worker redirects), single consumer.
    static std::atomic<uint32_t> rings{0};
    uint32_t gen = rings.fetch_add(1);
    for (uint32_t cpu = 0; cpu < maps::possible_cpus(); ++cpu) {
        rte_ring* r = rte_ring_create(fmt::format("xdprt_cpu{}_{}", gen, cpu).c_str(), 4096, SOCKET_ID_ANY, RING_F_SC_DEQ);
        if (!r) return fail(ENOMEM, "cpumap ring of cpu {}: {}", cpu, rte_strerror(rte_errno));
        d->cpu_rings.push_back(r);
    }
    return std::unique_ptr<dataplane>(new dataplane(std::move(d)));
}

static int launch(void* arg) {
    auto* p = static_cast<std::pair<dataplane::impl*, worker_state*>*>(arg);
    int rc = worker_main(*p->first, *p->second);
    delete p;
    return rc;
}

result<void> dataplane::start() {
    impl& d = *_impl;
    if (d.started) return fail(EALREADY, "the dataplane is already running");
    d.running.store(true);
    for (auto& w : d.workers) {
        auto* arg = new std::pair<impl*, worker_state*>(&d, w.get());
        if (int rc = rte_eal_remote_launch(launch, arg, w->lcore); rc != 0) {
            delete arg;
            stop();
            return fail(-rc, "lcore {}: launch: {}", w->lcore, rte_strerror(-rc));
        }
    }
    d.twin_service = std::jthread([&d](std::stop_token st) { twin_main(d, st); });
    d.started = true;
    return {};
}

void dataplane::stop() {
    impl& d = *_impl;
    if (d.running.exchange(false))
        for (auto& w : d.workers) rte_eal_wait_lcore(w->lcore);
    d.twin_service = {};
    d.drop_cpu_rings();  // their frames name programs and maps that may not outlive the stop
    d.started = false;
}

const std::vector<dataplane::port_info>& dataplane::ports() const { return _impl->info; }

result<void> dataplane::attach(size_t index, xdp_program p) {
    impl& d = *_impl;
    if (index >= d.ports.size()) return fail(ENODEV, "no port {}", index);
    port_state& ps = *d.ports[index];
    std::unique_ptr<runner> next;
    if (p.prog) {
        next = std::make_unique<runner>();
        next->run = burst_fn_for(*p.prog);
        next->p = std::move(p);
    }
    ps.active.store(next.get(), std::memory_order_release);
    // No worker reads the old runner after every worker has passed a quiescent point; frames
    // it sent to CPUMAP rings (naming its maps) are processed after one more.
    maps::qsbr::process().synchronize();
    if (d.started) {
        d.wait_cpu_rings();
        maps::qsbr::process().synchronize();
    }
    ps.owned = std::move(next);
    return {};
}

std::vector<port_stats> dataplane::stats() const {
    const impl& d = *_impl;
    std::vector<port_stats> out;
    for (size_t k = 0; k < d.ports.size(); ++k) {
        port_stats s;
        s.name = d.ports[k]->spec.name;
        s.ifindex = d.ports[k]->ifindex;
        auto add = [&](const port_counters& from, uint64_t* packets, uint64_t* bytes) {
            for (size_t c = 0; c < size_t(counter::count_); ++c) {
                packets[c] += from.packets[c].load(std::memory_order_relaxed);
                bytes[c] += from.bytes[c].load(std::memory_order_relaxed);
            }
        };
        s.queues.resize(d.ports[k]->spec.rx_queues);
        for (auto& w : d.workers) {
            for (size_t qi = 0; qi < w->queues.size(); ++qi) {
                auto [pi, rxq] = w->queues[qi];
                if (pi != k) continue;
                add(w->queue_counters[qi], s.queues[rxq].packets, s.queues[rxq].bytes);
                add(w->queue_counters[qi], s.packets, s.bytes);
            }
            add(w->counters[k], s.packets, s.bytes);
        }
        add(d.service_counters[k], s.packets, s.bytes);
        s.twin_rx = d.twin_counters[k].packets[0].load(std::memory_order_relaxed);
        s.packets[size_t(counter::tx_error)] += d.twin_counters[k].packets[size_t(counter::tx_error)].load(std::memory_order_relaxed);
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace xdprt::dataplane
