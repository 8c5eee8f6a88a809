// The hot path: a worker's burst loop and the twin service (DESIGN.md section 4, invariant 7).
//
// Per burst: one rx_burst, one program pointer load, one program run per packet, then the
// verdicts are acted on in bulk: one free-bulk for drops, one tx_burst per destination, counters
// added once, one quiescent point. No allocation, lock (but see txq::lock), syscall, exception,
// log line or virtual call per packet; the ABORTED trace is rate-limited to one line a second.
#include <linux/bpf.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_pause.h>

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

uint8_t verdict(uint64_t r) noexcept { return r <= XDP_REDIRECT ? uint8_t(r) : uint8_t(XDP_ABORTED); }

void run_native(const vm::program& p, prog::xdp_buff* ctx, uint8_t* actions, helpers::redirect_target* targets,
                uint32_t n) noexcept {
    for (uint32_t i = 0; i < n; ++i) {
        vm::run_state rs;
        uint64_t r = p.native(reinterpret_cast<uint64_t>(&ctx[i]), 0, &rs);
        actions[i] = rs.faulted ? uint8_t(XDP_ABORTED) : verdict(r);
        if (actions[i] == XDP_REDIRECT) targets[i] = helpers::last_redirect;
    }
}

// The reference engine, for programs without native code: every access checked against the
// frame (headroom to tailroom) and the context. A fault aborts the packet.
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

// Frames queued for one destination during a burst.
struct out_buffer {
    txq q;
    uint32_t n = 0;
    rte_mbuf* m[max_burst];
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
        c.packets[size_t(counter::tx_error)].fetch_add(o.n - sent, std::memory_order_relaxed);
        c.bytes[size_t(counter::tx_error)].fetch_add(lost_bytes, std::memory_order_relaxed);
    }
    o.n = 0;
}

// ABORTED: the kernel's trace_xdp_exception, here one log line a second per worker at most.
void trace_aborted(const runner* r, const port_state& ps, uint64_t& last_ns) noexcept {
    uint64_t now = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    if (now - last_ns < 1'000'000'000) return;
    last_ns = now;
    fmt::print(stderr, "xdprt: port '{}': prog '{}' returned XDP_ABORTED (or an invalid action)\n", ps.spec.name,
               r ? r->p.name : std::string_view("?"));
}

// The worker's scratch, sized once: arrays of max_burst per destination.
struct scratch {
    rte_mbuf* pkts[max_burst];
    prog::xdp_buff ctx[max_burst];
    uint8_t actions[max_burst];
    helpers::redirect_target targets[max_burst];
    rte_mbuf* dead[max_burst];
    std::vector<out_buffer> tx, twin;  // per port
};

// Fills the contexts of a burst. data_hard_end keeps the kernel's tailroom free for
// bpf_xdp_adjust_tail growth where the buffer has it; a frame that already reaches into it (an
// af_xdp PMD places frames deep in its buffers) may shrink, not grow. Multi-segment frames (jumbo
// frames, which need XDP_HAS_FRAGS programs) never reach a program: counted as oversize.
void fill_contexts(scratch& s, uint16_t n, const port_state& ps, uint16_t rxq, uint8_t* pre) noexcept {
    for (uint16_t i = 0; i < n; ++i) {
        rte_mbuf* m = s.pkts[i];
        prog::xdp_buff& x = s.ctx[i];
        uint8_t* buf = static_cast<uint8_t*>(m->buf_addr);
        x.data_hard_start = buf - mbuf_priv_bytes;
        x.data = buf + m->data_off;
        x.data_meta = x.data;
        x.data_end = x.data + m->data_len;
        uint8_t* growth_end = buf + m->buf_len - helpers::xdp_tailroom;
        x.data_hard_end = x.data_end > growth_end ? x.data_end : growth_end;
        x.ingress_ifindex = ps.ifindex;
        x.rx_queue_index = rxq;
        x.egress_ifindex = 0;
        x.flags = 0;
        pre[i] = m->nb_segs != 1 ? 1 : 0;
    }
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

}  // namespace

burst_fn burst_fn_for(const vm::program& p) { return p.native ? run_native : run_interpreter; }

int dataplane::impl::port_of_ifindex(uint32_t ifindex) const noexcept {
    for (size_t k = 0; k < ports.size(); ++k)
        if (ports[k]->ifindex == ifindex && ifindex) return int(k);
    return -1;
}

// The port an XDP_REDIRECT goes to, or -1 (counted as redirect_error: the kernel's
// xdp_do_redirect failing, trace_xdp_redirect_err, frame dropped).
static int redirect_port(const dataplane::impl& dp, const helpers::redirect_target& t) noexcept {
    if (!t.map) return dp.port_of_ifindex(t.ifindex);
    auto& m = *const_cast<maps::map*>(t.map);
    switch (m.type()) {
    case BPF_MAP_TYPE_DEVMAP:
    case BPF_MAP_TYPE_DEVMAP_HASH: {
        if (t.flags & BPF_F_BROADCAST) return -1;
        auto* v = static_cast<const uint32_t*>(m.ops().lookup(m, &t.index));
        return v ? dp.port_of_ifindex(v[0]) : -1;
    }
    default:
        return -1;
    }
}

int worker_main(dataplane::impl& dp, worker_state& w) {
    maps::this_cpu = w.lcore;
    auto reader = maps::qsbr::process().attach();
    if (!reader) {
        fmt::print(stderr, "xdprt: worker on lcore {}: {}\n", w.lcore, reader.error().message);
        return -1;
    }
    auto s = std::make_unique<scratch>();
    s->tx.resize(dp.ports.size());
    s->twin.resize(dp.ports.size());
    for (size_t k = 0; k < dp.ports.size(); ++k) {
        const port_state& ps = *dp.ports[k];
        uint16_t q = uint16_t(w.index % ps.tx_queues);
        s->tx[k].q = {ps.ethdev, q, ps.tx_locks ? &ps.tx_locks[q] : nullptr};
        if (ps.twin != no_ethdev) s->twin[k].q = {ps.twin, uint16_t(w.index % ps.twin_queues), nullptr};
    }
    const uint16_t burst = uint16_t(dp.opts.burst);
    uint64_t last_abort_ns = 0;
    uint8_t pre[max_burst];

    reader->online();
    while (dp.running.load(std::memory_order_relaxed)) {
        for (auto [pi, rxq] : w.queues) {
            port_state& ps = *dp.ports[pi];
            uint16_t n = rte_eth_rx_burst(ps.ethdev, rxq, s->pkts, burst);
            if (!n) continue;
            port_counters& c = w.counters[pi];
            uint64_t rx_bytes = 0;
            for (uint16_t i = 0; i < n; ++i) rx_bytes += rte_pktmbuf_pkt_len(s->pkts[i]);
            c.packets[size_t(counter::rx)].fetch_add(n, std::memory_order_relaxed);
            c.bytes[size_t(counter::rx)].fetch_add(rx_bytes, std::memory_order_relaxed);

            const runner* r = ps.active.load(std::memory_order_acquire);
            fill_contexts(*s, n, ps, rxq, pre);
            if (r) {
                r->run(*r->p.prog, s->ctx, s->actions, s->targets, n);
            } else {
                std::memset(s->actions, XDP_PASS, n);  // no program: the kernel gets every frame
            }

            // Verdict counters (packets, bytes) of this burst, added to the port's once.
            uint32_t count[size_t(counter::count_)] = {};
            uint64_t bytes[size_t(counter::count_)] = {};
            uint32_t ndead = 0;
            auto dead = [&](rte_mbuf* m, counter why) {
                ++count[size_t(why)];
                bytes[size_t(why)] += rte_pktmbuf_pkt_len(m);
                s->dead[ndead++] = m;
            };
            for (uint16_t i = 0; i < n; ++i) {
                rte_mbuf* m = s->pkts[i];
                uint8_t a = s->actions[i];
                if (pre[i]) {
                    dead(m, counter::oversize);
                    continue;
                }
                if (a == XDP_DROP || a == XDP_ABORTED) {
                    dead(m, a == XDP_DROP ? counter::drop : counter::aborted);
                    continue;
                }
                if (!commit_frame(m, s->ctx[i])) {
                    dead(m, counter::oversize);
                    continue;
                }
                out_buffer* o;
                counter what;
                if (a == XDP_TX) {
                    o = &s->tx[pi];
                    what = counter::tx;
                } else if (a == XDP_PASS) {
                    o = &s->twin[pi];
                    what = counter::pass;
                    if (ps.twin == no_ethdev) {  // no twin: the kernel cannot receive it
                        dead(m, counter::pass);
                        continue;
                    }
                } else {  // XDP_REDIRECT
                    int to = redirect_port(dp, s->targets[i]);
                    if (to < 0) {
                        dead(m, counter::redirect_error);
                        continue;
                    }
                    o = &s->tx[size_t(to)];
                    what = counter::redirect;
                }
                ++count[size_t(what)];
                bytes[size_t(what)] += m->pkt_len;
                o->m[o->n++] = m;
            }
            if (ndead) rte_pktmbuf_free_bulk(s->dead, ndead);
            if (count[size_t(counter::aborted)]) trace_aborted(r, ps, last_abort_ns);
            for (size_t k = size_t(counter::tx); k < size_t(counter::count_); ++k) {
                if (!count[k]) continue;
                c.packets[k].fetch_add(count[k], std::memory_order_relaxed);
                c.bytes[k].fetch_add(bytes[k], std::memory_order_relaxed);
            }

            // TX on this port, PASS to its twin, REDIRECT to other ports' TX queues.
            for (auto& o : s->tx) flush(o, c);
            flush(s->twin[pi], c);
        }
        reader->quiescent();
    }
    reader->offline();
    return 0;
}

// Frames the kernel sends on a twin (ARP replies, TCP, anything routed out of the port) leave
// through the port, on the port's last TX queue, which no worker uses. Polled every 50 us when
// idle: kernel traffic is control-plane traffic, and this keeps the twins off the workers' loop.
void twin_main(dataplane::impl& dp, std::stop_token stop) {
    rte_mbuf* pkts[max_burst];
    while (!stop.stop_requested()) {
        bool any = false;
        for (size_t k = 0; k < dp.ports.size(); ++k) {
            port_state& ps = *dp.ports[k];
            if (ps.twin == no_ethdev) continue;
            for (uint16_t q = 0; q < ps.twin_queues; ++q) {
                uint16_t n = rte_eth_rx_burst(ps.twin, q, pkts, max_burst);
                if (!n) continue;
                any = true;
                uint64_t bytes = 0;
                for (uint16_t i = 0; i < n; ++i) bytes += rte_pktmbuf_pkt_len(pkts[i]);
                uint16_t txq = uint16_t(ps.tx_queues - 1);
                std::atomic_flag* lock = ps.tx_locks ? &ps.tx_locks[txq] : nullptr;
                if (lock)
                    while (lock->test_and_set(std::memory_order_acquire)) rte_pause();
                uint16_t sent = rte_eth_tx_burst(ps.ethdev, txq, pkts, n);
                if (lock) lock->clear(std::memory_order_release);
                if (sent < n) rte_pktmbuf_free_bulk(pkts + sent, n - sent);
                port_counters& c = *dp.twin_counters[k];
                c.packets[0].fetch_add(sent, std::memory_order_relaxed);
                c.bytes[0].fetch_add(bytes, std::memory_order_relaxed);
                if (sent < n) c.packets[size_t(counter::tx_error)].fetch_add(n - sent, std::memory_order_relaxed);
            }
        }
        if (!any) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
}

}  // namespace xdprt::dataplane
