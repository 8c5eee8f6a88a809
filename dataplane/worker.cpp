// The hot path: a worker's burst loop, CPUMAP delivery, and the twin service (DESIGN.md section 4,
// invariant 7).
//
// Per burst: one rx_burst, one program pointer load, one program run per packet, then the
// verdicts are acted on in bulk: one free-bulk for drops, one tx_burst per destination port or
// twin, one ring enqueue per CPUMAP target, counters added once, one quiescent point. No
// allocation, lock (but see txq::lock), syscall, exception, log line or virtual call per packet;
// the ABORTED trace is rate-limited to one line a second.
//
// CPUMAP: the kernel runs a cpumap entry's program on the entry's CPU, then hands the frame to
// its stack. Here each runtime CPU id has a ring; the worker on that lcore drains it (the twin
// service does, for CPU ids without a worker: the main lcore's, say), runs the entry's program
// (ingress_ifindex of the port the frame came in on) and acts on its verdict: PASS to that port's
// twin, DROP, REDIRECT onward; XDP_TX is not an action a cpumap program has (dropped, counted
// aborted, as the kernel's bpf_warn_invalid_xdp_action). No program: PASS. What a frame needs
// across the ring rides in the 40 bytes at data_hard_start that XDP keeps for struct xdp_frame.
#include <linux/bpf.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "dataplane/internal.h"
#include "maps/map.h"
#include "maps/qsbr.h"
#include "vm/vm.h"

namespace xdprt::dataplane {

namespace {

// Counters have one writer each (the lcore or thread owning them): a plain relaxed load and
// store, no locked read-modify-write; readers see whole values.
inline void bump(std::atomic<uint64_t>& counter, uint64_t by) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

uint8_t verdict(uint64_t r) noexcept { return r <= XDP_REDIRECT ? uint8_t(r) : uint8_t(XDP_ABORTED); }

void run_native(const vm::program& p, prog::xdp_buff* ctx, uint8_t* actions, helpers::redirect_target* targets,
                uint32_t n) noexcept {
    const uint32_t cpu = maps::this_cpu;
    for (uint32_t i = 0; i < n; ++i) {
        vm::run_state rs;
        rs.cpu = cpu;
        uint64_t r = p.native(reinterpret_cast<uint64_t>(&ctx[i]), 0, &rs);
        actions[i] = rs.faulted ? uint8_t(XDP_ABORTED) : verdict(r);
        if (actions[i] == XDP_REDIRECT) targets[i] = helpers::last_redirect;
    }
}

// The reference engine, for programs without native code: every access checked against the
// frame (headroom to hard end) and the context. A fault aborts the packet.
void run_interpreter(const vm::program& p, prog::xdp_buff* ctx, uint8_t* actions, helpers::redirect_target* targets,
                     uint32_t n) noexcept {
    for (uint32_t i = 0; i < n; ++i) {
        prog::xdp_buff& x = ctx[i];
        vm::region regions[] = {
            {reinterpret_cast<uint64_t>(x.data_hard_start), uint64_t(x.data_hard_end - x.data_hard_start), true},
            {reinterpret_cast<uint64_t>(&x), sizeof x, false}};
        auto r = vm::interpret(p, reinterpret_cast<uint64_t>(&x), 0, regions);
        actions[i] = r ? verdict(*r) : uint8_t(XDP_ABORTED);
        if (actions[i] == XDP_REDIRECT) targets[i] = helpers::last_redirect;
    }
}

// One packet through a program of a map entry (devmap or cpumap); XDP_ABORTED on a fault.
uint8_t run_one(const vm::program& p, prog::xdp_buff& x, helpers::redirect_target& target) noexcept {
    uint8_t a;
    burst_fn_for(p)(p, &x, &a, &target, 1);
    return a;
}

// What rides with a frame through a CPUMAP ring, at data_hard_start (kept free by XDP).
struct cpumap_meta {
    maps::map* map;
    uint32_t key;
    uint32_t ingress_port;
};
static_assert(sizeof(cpumap_meta) <= helpers::xdp_frame_bytes);

// Frames queued for one destination during a burst.
struct out_buffer {
    txq q;
    uint32_t n = 0;
    rte_mbuf* m[max_burst];
};
struct out_ring {
    rte_ring* ring = nullptr;
    uint32_t n = 0;
    rte_mbuf* m[max_burst];
};

// A thread's scratch (a worker's or the twin service's), sized once: max_burst per destination.
struct scratch {
    rte_mbuf* pkts[max_burst];
    prog::xdp_buff ctx[max_burst];
    uint8_t actions[max_burst];
    uint8_t pre[max_burst];
    helpers::redirect_target targets[max_burst];
    rte_mbuf* dead[max_burst];
    std::vector<out_buffer> tx, twin;  // per port
    out_buffer xsk;                    // to the AF_XDP sockets of the RX queue being processed
    std::vector<out_ring> cpu;         // per runtime CPU id
    uint64_t last_abort_ns = 0;

    // `index`: which TX queue of every port and twin this thread uses (workers 0..n-1, the
    // service n); shared queues take their lock.
    scratch(const dataplane::impl& dp, uint32_t index) : tx(dp.ports.size()), twin(dp.ports.size()), cpu(dp.cpu_rings.size()) {
        for (size_t k = 0; k < dp.ports.size(); ++k) {
            const port_state& ps = *dp.ports[k];
            uint16_t q = uint16_t(index % ps.tx_queues);
            tx[k].q = {ps.ethdev, q, ps.tx_locks ? &ps.tx_locks[q] : nullptr};
            if (ps.twin != no_ethdev) twin[k].q = {ps.twin, uint16_t(ps.twin_pass_queue + index), nullptr};
        }
        for (size_t c = 0; c < cpu.size(); ++c) cpu[c].ring = dp.cpu_rings[c];
    }
};

// Transmits what is queued; what the device does not take is freed and counted as tx_error
// (the frame was still counted under the program's verdict).
void flush(out_buffer& o, port_counters& c) noexcept {
    if (!o.n) return;
    uint16_t sent;
    if (o.q.lock) {
        while (o.q.lock->test_and_set(std::memory_order_acquire)) rte_pause();
        sent = rte_eth_tx_burst(o.q.ethdev, o.q.queue, o.m, uint16_t(o.n));
        o.q.lock->clear(std::memory_order_release);
    } else {
        sent = rte_eth_tx_burst(o.q.ethdev, o.q.queue, o.m, uint16_t(o.n));
    }
    if (sent < o.n) {
        uint64_t lost_bytes = 0;
        for (uint32_t k = sent; k < o.n; ++k) lost_bytes += rte_pktmbuf_pkt_len(o.m[k]);
        rte_pktmbuf_free_bulk(o.m + sent, o.n - sent);
        bump(c.packets[size_t(counter::tx_error)], o.n - sent);
        bump(c.bytes[size_t(counter::tx_error)], lost_bytes);
    }
    o.n = 0;
}

// A full CPUMAP ring drops what does not fit (the kernel's ptr_ring full: xdp_redirect_err).
void flush(out_ring& o, port_counters& c) noexcept {
    if (!o.n) return;
    unsigned in = rte_ring_enqueue_burst(o.ring, reinterpret_cast<void**>(o.m), o.n, nullptr);
    if (in < o.n) {
        rte_pktmbuf_free_bulk(o.m + in, o.n - in);
        bump(c.packets[size_t(counter::redirect_error)], o.n - in);
    }
    o.n = 0;
}

// ABORTED: the kernel's trace_xdp_exception, here one log line a second per thread at most.
void trace_aborted(std::string_view prog, const port_state& ps, uint64_t& last_ns) noexcept {
    uint64_t now = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    if (now - last_ns < 1'000'000'000) return;
    last_ns = now;
    fmt::print(stderr, "xdprt: port '{}': prog '{}' returned XDP_ABORTED (or an invalid action)\n", ps.spec.name, prog);
}

// Where a frame's headroom starts: mbuf_priv_bytes before the buffer in our pools, at the buffer
// in others. One pool's answer serves a whole burst: the pool's private data is another line.
uint8_t* hard_start_of(const rte_mbuf* m) noexcept {
    static thread_local const rte_mempool* last_pool = nullptr;
    static thread_local bool last_has_priv = false;
    if (m->pool != last_pool) {
        last_pool = m->pool;
        last_has_priv = rte_pktmbuf_priv_size(m->pool) >= mbuf_priv_bytes;
    }
    uint8_t* buf = static_cast<uint8_t*>(m->buf_addr);
    return last_has_priv ? buf - mbuf_priv_bytes : buf;
}

// The program's view of one frame. With the mbuf private area of our pools (mbuf_priv_bytes
// right before the buffer) the headroom is 256 B; mbufs of other pools (a test's, a PMD's) have
// only their own. data_hard_end keeps the kernel's tailroom free for bpf_xdp_adjust_tail growth
// where the buffer has it; a frame that already reaches into it (the af_xdp PMD places frames
// deep in its buffers) may shrink, not grow. Returns false for a frame no program may see:
// multi-segment (jumbo frames need XDP_HAS_FRAGS programs), counted oversize.
bool fill_context(prog::xdp_buff& x, rte_mbuf* m, const port_state& ps, uint16_t rxq) noexcept {
    uint8_t* buf = static_cast<uint8_t*>(m->buf_addr);
    x.data_hard_start = hard_start_of(m);
    x.data = buf + m->data_off;
    x.data_meta = x.data;
    x.data_end = x.data + m->data_len;
    uint8_t* growth_end = buf + m->buf_len - helpers::xdp_tailroom;
    x.data_hard_end = x.data_end > growth_end ? x.data_end : growth_end;
    x.ingress_ifindex = ps.ifindex;
    x.rx_queue_index = rxq;
    x.egress_ifindex = 0;
    x.flags = 0;
    return m->nb_segs == 1;
}

// Writes the program's view of the frame back into the mbuf. A frame the program moved in front
// of the mbuf's buffer (more than 128 B of adjust_head / adjust_meta growth) is moved back into
// it; false when it does not fit.
bool commit_frame(rte_mbuf* m, const prog::xdp_buff& x) noexcept {
    uint8_t* buf = static_cast<uint8_t*>(m->buf_addr);
    size_t len = size_t(x.data_end - x.data);
    uint8_t* data = x.data;
    if (data < buf) {
        if (len > m->buf_len) return false;
        std::memmove(buf, data, len);
        data = buf;
    }
    m->data_off = uint16_t(data - buf);
    m->data_len = uint16_t(len);
    m->pkt_len = uint32_t(len);
    return true;
}

// Where an XDP_REDIRECT goes.
struct destination {
    enum kind_t : uint8_t { none, port, cpu, xsk } kind = none;
    uint32_t index = 0;                  // port index, CPU id, or the socket's slot (xsk.cpp)
    const vm::program* prog = nullptr;   // a devmap entry's program, run before transmission
    uint32_t egress_ifindex = 0;
    uint32_t queue = 0;                  // xsk: the twin queue the socket is bound to
};

destination resolve(const dataplane::impl& dp, const helpers::redirect_target& t) noexcept {
    destination d;
    if (!t.map) {
        int p = dp.port_of_ifindex(t.ifindex);
        if (p >= 0) d = {destination::port, uint32_t(p), nullptr, t.ifindex};
        return d;
    }
    auto& m = *const_cast<maps::map*>(t.map);
    switch (m.type()) {
    case BPF_MAP_TYPE_DEVMAP:
    case BPF_MAP_TYPE_DEVMAP_HASH: {
        auto* v = static_cast<const uint32_t*>(m.ops().lookup(m, &t.index));
        if (!v) return d;
        int p = dp.port_of_ifindex(v[0]);
        if (p >= 0) d = {destination::port, uint32_t(p), static_cast<const vm::program*>(maps::entry_program(m, t.index)), v[0]};
        return d;
    }
    case BPF_MAP_TYPE_CPUMAP:
        if (t.index < dp.cpu_rings.size() && m.ops().lookup(m, &t.index)) d = {destination::cpu, t.index, nullptr, 0};
        return d;
    case BPF_MAP_TYPE_XSKMAP:
        if (auto* b = static_cast<const maps::xsk_binding*>(m.ops().lookup(m, &t.index)))
            d = {destination::xsk, b->slot, nullptr, 0, b->queue};
        return d;
    default:
        return d;
    }
}

enum class stage { rx, cpumap };

// Queues `m` on port `to`'s TX buffer, flushing it first when full (a broadcast can queue more
// than a burst on one port).
void queue_tx(scratch& s, uint32_t to, rte_mbuf* m, port_counters& c) noexcept {
    out_buffer& o = s.tx[to];
    if (o.n == max_burst) flush(o, c);
    o.m[o.n++] = m;
}

// bpf_redirect_map with BPF_F_BROADCAST (the kernel's dev_map_enqueue_multi): a copy of the
// frame to every entry of the devmap, in map order, but the ingress interface's with
// BPF_F_EXCLUDE_INGRESS; each entry's program sees its copy with its egress_ifindex first. The
// frame itself goes to the last target. Returns how many copies were queued; `errors` counts
// entries that name no port of the appliance and copies that could not be made.
uint32_t broadcast(const dataplane::impl& dp, scratch& s, rte_mbuf* m, const port_state& in,
                   const helpers::redirect_target& t, port_counters& c, uint32_t& errors) noexcept {
    auto& map = *const_cast<maps::map*>(t.map);
    struct target {
        uint32_t port, key, ifindex;
    };
    target targets[64];
    uint32_t nt = 0;
    uint64_t cursor = 0;
    uint32_t key, ifindex;
    while (nt < std::size(targets) && maps::next_devmap_entry(map, cursor, &key, &ifindex)) {
        if ((t.flags & BPF_F_EXCLUDE_INGRESS) && ifindex == in.ifindex) continue;
        int p = dp.port_of_ifindex(ifindex);
        if (p < 0) {
            ++errors;
            continue;
        }
        targets[nt++] = {uint32_t(p), key, ifindex};
    }
    uint32_t queued = 0;
    for (uint32_t k = 0; k < nt; ++k) {
        rte_mbuf* f = k + 1 == nt ? m : rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
        if (!f) {
            ++errors;
            continue;
        }
        if (auto* p = static_cast<const vm::program*>(maps::entry_program(map, targets[k].key))) {
            prog::xdp_buff x;
            if (!fill_context(x, f, in, 0)) {
                rte_pktmbuf_free(f);
                ++errors;
                continue;
            }
            x.egress_ifindex = targets[k].ifindex;
            helpers::redirect_target ignored;
            if (run_one(*p, x, ignored) != XDP_PASS || !commit_frame(f, x)) {
                rte_pktmbuf_free(f);
                continue;
            }
        }
        queue_tx(s, targets[k].port, f, c);
        ++queued;
    }
    if (!nt) rte_pktmbuf_free(m);  // no target: the frame is consumed, as the kernel does
    return queued;
}

// Acts on the verdicts of `n` frames received on port `pi` (or taken from a CPUMAP ring for
// it): frees the dead in bulk, queues the rest per destination, adds the counters once.
void act(dataplane::impl& dp, scratch& s, uint32_t n, size_t pi, port_counters& c, std::string_view prog_name,
         stage st) noexcept {
    const port_state& ps = *dp.ports[pi];
    uint32_t count[size_t(counter::count_)] = {};
    uint64_t bytes[size_t(counter::count_)] = {};
    uint32_t ndead = 0;
    auto dead = [&](rte_mbuf* m, counter why) {
        ++count[size_t(why)];
        bytes[size_t(why)] += rte_pktmbuf_pkt_len(m);
        s.dead[ndead++] = m;
    };
    for (uint32_t i = 0; i < n; ++i) {
        rte_mbuf* m = s.pkts[i];
        uint8_t a = s.actions[i];
        prog::xdp_buff& x = s.ctx[i];
        if (s.pre[i]) {
            dead(m, counter::oversize);
            continue;
        }
        if (a == XDP_TX && st == stage::cpumap) a = XDP_ABORTED;  // not a cpumap program's action
        if (a == XDP_DROP || a == XDP_ABORTED) {
            dead(m, a == XDP_DROP ? counter::drop : counter::aborted);
            continue;
        }
        destination d;
        if (a == XDP_REDIRECT && s.targets[i].map && (s.targets[i].flags & BPF_F_BROADCAST)) {
            if (!commit_frame(m, x)) {
                dead(m, counter::oversize);
                continue;
            }
            uint32_t errors = 0;
            uint64_t len = m->pkt_len;
            uint32_t copies = broadcast(dp, s, m, ps, s.targets[i], c, errors);
            count[size_t(counter::redirect)] += copies;
            bytes[size_t(counter::redirect)] += len * copies;
            count[size_t(counter::redirect_error)] += errors;
            continue;
        }
        if (a == XDP_REDIRECT) {
            d = resolve(dp, s.targets[i]);
            // An AF_XDP socket takes frames of its own queue alone (the kernel's xsk_rcv_check;
            // the kernel checks the interface as it delivers), never a cpumap program's.
            bool foreign_xsk = d.kind == destination::xsk &&
                               (d.queue != x.rx_queue_index || st == stage::cpumap || ps.twin == no_ethdev);
            if (d.kind == destination::none || foreign_xsk) {
                dead(m, counter::redirect_error);
                continue;
            }
            if (d.prog) {  // the devmap entry's program sees the frame with its egress_ifindex
                x.egress_ifindex = d.egress_ifindex;
                helpers::redirect_target ignored;
                uint8_t e = run_one(*d.prog, x, ignored);
                if (e != XDP_PASS) {  // DROP, ABORTED; TX and REDIRECT are not a devmap program's
                    dead(m, e == XDP_DROP ? counter::drop : counter::aborted);
                    continue;
                }
            }
        }
        if (!commit_frame(m, x)) {
            dead(m, counter::oversize);
            continue;
        }
        const uint32_t len = m->pkt_len;
        counter what;
        if (a == XDP_TX) {
            what = counter::tx;
            queue_tx(s, uint32_t(pi), m, c);
        } else if (a == XDP_PASS) {
            what = counter::pass;
            if (ps.twin == no_ethdev) {  // no twin: the kernel cannot receive it
                dead(m, counter::pass);
                continue;
            }
            s.twin[pi].m[s.twin[pi].n++] = m;
        } else if (d.kind == destination::port) {
            what = counter::redirect;
            queue_tx(s, d.index, m, c);
        } else if (d.kind == destination::xsk) {
            // To the twin's queue of the frame's RX queue (one per burst), behind the slot that
            // the kernel program there redirects by.
            auto* slot = rte_pktmbuf_prepend(m, sizeof(uint32_t));
            if (!slot) {
                dead(m, counter::redirect_error);
                continue;
            }
            std::memcpy(slot, &d.index, sizeof(uint32_t));
            what = counter::redirect;
            s.xsk.q = {ps.twin, uint16_t(d.queue), nullptr};
            s.xsk.m[s.xsk.n++] = m;
        } else {
            what = counter::redirect;
            auto* meta = reinterpret_cast<cpumap_meta*>(x.data_hard_start);
            *meta = {const_cast<maps::map*>(s.targets[i].map), s.targets[i].index, uint32_t(pi)};
            s.cpu[d.index].m[s.cpu[d.index].n++] = m;
        }
        ++count[size_t(what)];
        bytes[size_t(what)] += len;
    }
    if (ndead) rte_pktmbuf_free_bulk(s.dead, ndead);
    if (count[size_t(counter::aborted)]) trace_aborted(prog_name, ps, s.last_abort_ns);
    for (size_t k = size_t(counter::tx); k < size_t(counter::count_); ++k) {
        if (!count[k]) continue;
        bump(c.packets[k], count[k]);
        bump(c.bytes[k], bytes[k]);
    }
    for (auto& o : s.tx) flush(o, c);
    flush(s.twin[pi], c);
    flush(s.xsk, c);
    for (auto& o : s.cpu) flush(o, c);
}

const cpumap_meta& meta_of(const rte_mbuf* m) noexcept { return *reinterpret_cast<const cpumap_meta*>(hard_start_of(m)); }

// Takes up to a burst from CPU `cpu`'s ring and runs each frame through its cpumap entry's
// program. Counted on the ingress port: cpu_in, then the entry's verdicts. Frames are acted on
// per run of one ingress port (its counters, its twin). Returns how many were taken.
uint32_t drain_cpumap(dataplane::impl& dp, scratch& s, uint32_t cpu, port_counters* counters_of_port) noexcept {
    rte_mbuf* taken[max_burst];
    uint32_t n = rte_ring_dequeue_burst(dp.cpu_rings[cpu], reinterpret_cast<void**>(taken), dp.opts.burst, nullptr);
    for (uint32_t i = 0; i < n;) {
        const uint32_t pi = meta_of(taken[i]).ingress_port;
        std::string_view name = "cpumap";
        uint32_t k = 0;
        for (; i < n && meta_of(taken[i]).ingress_port == pi; ++i, ++k) {
            rte_mbuf* m = taken[i];
            const cpumap_meta meta = meta_of(m);
            s.pkts[k] = m;
            s.pre[k] = !fill_context(s.ctx[k], m, *dp.ports[pi], 0);
            auto* p = static_cast<const vm::program*>(maps::entry_program(*meta.map, meta.key));
            if (p) {
                name = p->name;
                s.actions[k] = run_one(*p, s.ctx[k], s.targets[k]);
            } else {
                s.actions[k] = XDP_PASS;
            }
        }
        port_counters& c = counters_of_port[pi];
        bump(c.packets[size_t(counter::cpu_in)], k);
        act(dp, s, k, pi, c, name, stage::cpumap);
    }
    return n;
}

}  // namespace

burst_fn burst_fn_for(const vm::program& p) { return p.native ? run_native : run_interpreter; }

int dataplane::impl::port_of_ifindex(uint32_t ifindex) const noexcept {
    for (size_t k = 0; k < ports.size(); ++k)
        if (ports[k]->ifindex == ifindex && ifindex) return int(k);
    return -1;
}

int worker_main(dataplane::impl& dp, worker_state& w) {
    maps::this_cpu = w.lcore;
    auto reader = maps::qsbr::process().attach();
    if (!reader) {
        fmt::print(stderr, "xdprt: worker on lcore {}: {}\n", w.lcore, reader.error().message);
        return -1;
    }
    auto s = std::make_unique<scratch>(dp, w.index);
    const uint16_t burst = uint16_t(dp.opts.burst);
    const bool has_cpu_ring = w.lcore < dp.cpu_rings.size();

    reader->online();
    while (dp.running.load(std::memory_order_relaxed)) {
        for (size_t qi = 0; qi < w.queues.size(); ++qi) {
            auto [pi, rxq] = w.queues[qi];
            port_state& ps = *dp.ports[pi];
            uint16_t n = rte_eth_rx_burst(ps.ethdev, rxq, s->pkts, burst);
            if (!n) continue;
            port_counters& c = w.queue_counters[qi];
            uint64_t rx_bytes = 0;
            // The first line of every frame is on its way to the cache before the program reads it;
            // the mbufs' headers first, whose addresses need no load (a ring port's rx does not
            // touch them: another core wrote them last), then the frames they point to.
            for (uint16_t i = 0; i < n; ++i) rte_prefetch0(s->pkts[i]);
            for (uint16_t i = 0; i < n; ++i) rte_prefetch0(rte_pktmbuf_mtod(s->pkts[i], void*));
            for (uint16_t i = 0; i < n; ++i) {
                rx_bytes += rte_pktmbuf_pkt_len(s->pkts[i]);
                s->pre[i] = !fill_context(s->ctx[i], s->pkts[i], ps, rxq);
            }
            bump(c.packets[size_t(counter::rx)], n);
            bump(c.bytes[size_t(counter::rx)], rx_bytes);
            const runner* r = ps.active.load(std::memory_order_acquire);
            if (r) r->run(*r->p.prog, s->ctx, s->actions, s->targets, n);
            else std::memset(s->actions, XDP_PASS, n);  // no program: the kernel gets every frame
            act(dp, *s, n, pi, c, r ? std::string_view(r->p.name) : std::string_view(), stage::rx);
        }
        if (has_cpu_ring) drain_cpumap(dp, *s, w.lcore, w.counters.get());
        reader->quiescent();
    }
    reader->offline();
    return 0;
}

// The twin service: frames the kernel sends on a twin (ARP replies, TCP, anything routed out of
// the port) leave through the port, on the port's last TX queue, which no worker uses; and the
// CPUMAP rings of CPU ids no worker runs on are drained here. Polled every 50 us when idle:
// kernel traffic is control-plane traffic, and this keeps the twins off the workers' loop.
void twin_main(dataplane::impl& dp, std::stop_token stop) {
    auto reader = maps::qsbr::process().attach();
    if (!reader) {
        fmt::print(stderr, "xdprt: twin service: {}\n", reader.error().message);
        return;
    }
    auto s = std::make_unique<scratch>(dp, uint32_t(dp.workers.size()));
    std::vector<uint32_t> unserved;  // CPU ids without a worker
    for (uint32_t cpu = 0; cpu < dp.cpu_rings.size(); ++cpu) {
        bool worker = false;
        for (auto& w : dp.workers) worker |= w->lcore == cpu;
        if (!worker) unserved.push_back(cpu);
    }
    while (!stop.stop_requested()) {
        bool any = false;
        for (size_t k = 0; k < dp.ports.size(); ++k) {
            port_state& ps = *dp.ports[k];
            if (ps.twin == no_ethdev) continue;
            for (uint16_t q = 0; q < ps.twin_queues; ++q) {
                uint16_t n = rte_eth_rx_burst(ps.twin, q, s->pkts, max_burst);
                if (!n) continue;
                any = true;
                uint64_t bytes = 0;
                for (uint16_t i = 0; i < n; ++i) bytes += rte_pktmbuf_pkt_len(s->pkts[i]);
                out_buffer& o = s->tx[k];
                std::memcpy(o.m, s->pkts, n * sizeof(rte_mbuf*));
                o.n = n;
                port_counters& c = dp.twin_counters[k];
                bump(c.packets[0], n);
                bump(c.bytes[0], bytes);
                flush(o, c);
            }
        }
        if (!unserved.empty()) {
            reader->online();
            for (uint32_t cpu : unserved) {
                maps::this_cpu = cpu;  // this thread stands in for that CPU
                any |= drain_cpumap(dp, *s, cpu, dp.service_counters.get()) > 0;
            }
            reader->offline();
        }
        if (!any) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
}

}  // namespace xdprt::dataplane
