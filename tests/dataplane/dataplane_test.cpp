// The dataplane (suite dataplane): real DPDK (net_ring ports fed and drained through their named
// rings, net_tap kernel twins), real clang-compiled programs loaded by real libbpf into the
// in-process server, verified by the kernel. The test process moves into a network namespace of
// its own first, so the twins it creates vanish with it.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/xsk.h>

#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <atomic>
#include <map>
#include <utility>
#include <chrono>
#include <cstring>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "appliance/appliance.h"
#include "control/inprocess.h"
#include "scratch_pin_root.h"

namespace xdprt {
namespace {

using namespace std::chrono_literals;
using dataplane::counter;

const std::vector<std::string> eal_args = {"--no-huge", "--no-pci", "-m", "512", "--no-shconf", "-l", "0-1",
                                           "--log-level=lib.eal:error"};

rte_mempool* test_pool() {
    static rte_mempool* p = rte_pktmbuf_pool_create("test", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    return p;
}

// A 60-byte Ethernet/IPv4/UDP frame to 198.18.0.DST (RFC 2544's benchmarking range).
std::vector<uint8_t> udp_frame(uint8_t dst, uint16_t sport = 1000, uint16_t dport = 9) {
    std::vector<uint8_t> f(60, 0);
    const uint8_t macs[12] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
    std::memcpy(f.data(), macs, 12);
    f[12] = 0x08;
    uint8_t* ip = f.data() + 14;
    ip[0] = 0x45;
    ip[3] = 46;  // total length
    ip[8] = 64;
    ip[9] = 17;
    const uint8_t src[4] = {198, 18, 0, 1}, dstip[4] = {198, 18, 0, dst};
    std::memcpy(ip + 12, src, 4);
    std::memcpy(ip + 16, dstip, 4);
    uint32_t sum = 0;
    for (int k = 0; k < 20; k += 2) sum += uint32_t(ip[k] << 8 | ip[k + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    ip[10] = uint8_t(~sum >> 8);
    ip[11] = uint8_t(~sum);
    uint8_t* udp = ip + 20;
    udp[0] = uint8_t(sport >> 8);
    udp[1] = uint8_t(sport);
    udp[2] = uint8_t(dport >> 8);
    udp[3] = uint8_t(dport);
    udp[5] = 26;
    return f;
}

std::vector<uint8_t> bytes_of(rte_mbuf* m) {
    auto* p = rte_pktmbuf_mtod(m, uint8_t*);
    return {p, p + rte_pktmbuf_data_len(m)};
}

// Sends `n` copies of `frame` into `ring` (bounded by `deadline`); returns how many went in.
uint64_t inject(rte_ring* ring, const std::vector<uint8_t>& frame, uint64_t n, std::chrono::steady_clock::time_point deadline,
                const std::function<void()>& between = {}) {
    uint64_t sent = 0;
    rte_mbuf* b[32];
    while (sent < n && std::chrono::steady_clock::now() < deadline) {
        unsigned k = unsigned(std::min<uint64_t>(32, n - sent));
        if (rte_pktmbuf_alloc_bulk(test_pool(), b, k) != 0) {
            if (between) between();
            continue;
        }
        for (unsigned i = 0; i < k; ++i) std::memcpy(rte_pktmbuf_append(b[i], uint16_t(frame.size())), frame.data(), frame.size());
        unsigned in = rte_ring_enqueue_burst(ring, reinterpret_cast<void**>(b), k, nullptr);
        if (in < k) rte_pktmbuf_free_bulk(b + in, k - in);
        sent += in;
        if (between) between();
    }
    return sent;
}

// Takes what the dataplane sent on a ring; frees each frame after `check`.
uint64_t drain(rte_ring* ring, const std::function<void(rte_mbuf*)>& check = {}) {
    rte_mbuf* b[64];
    uint64_t got = 0;
    while (unsigned n = rte_ring_dequeue_burst(ring, reinterpret_cast<void**>(b), 64, nullptr)) {
        for (unsigned i = 0; i < n; ++i) {
            if (check) check(b[i]);
            rte_pktmbuf_free(b[i]);
        }
        got += n;
    }
    return got;
}

template <class Pred>
bool wait_for(Pred p, std::chrono::milliseconds limit = 20s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!p()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

class Dataplane : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "needs root: programs are verified by the kernel, twins are TAP devices";
    }
    void TearDown() override {
        for (auto* o : _objects) bpf_object__close(o);
        control::inprocess::route_to(nullptr);
        _app.reset();
    }

    // An appliance with ring ports named `names` (twins when `twins`), one worker on lcore 1.
    void make(std::vector<std::string> names, bool twins, uint16_t desc = 1024) {
        appliance::options o;
        o.server.pin_root = testing_support::scratch_pin_root();
        o.dataplane.eal_args = eal_args;
        for (auto& n : names) {
            dataplane::port_spec p;
            p.name = n;
            p.kind = dataplane::port_kind::ring;
            p.twin = twins;
            p.rx_desc = p.tx_desc = desc;
            o.dataplane.ports.push_back(p);
        }
        auto a = appliance::appliance::create(std::move(o));
        ASSERT_TRUE(a) << a.error().message;
        _app = std::move(*a);
        ASSERT_NE(test_pool(), nullptr);
        control::inprocess::route_to(&_app->server());
    }

    // An appliance with the one port `p`.
    void make_with(dataplane::port_spec p) {
        appliance::options o;
        o.server.pin_root = testing_support::scratch_pin_root();
        o.dataplane.eal_args = eal_args;
        o.dataplane.ports.push_back(std::move(p));
        auto a = appliance::appliance::create(std::move(o));
        ASSERT_TRUE(a) << a.error().message;
        _app = std::move(*a);
        control::inprocess::route_to(&_app->server());
    }

    // The fd of program `prog` of tests/progs/OBJ.bpf.o, loaded by libbpf into the server.
    int load(const char* obj, const char* prog) {
        bpf_object* o = bpf_object__open_file((std::string(XDPRT_PROGS_DIR) + "/" + obj + ".bpf.o").c_str(), nullptr);
        if (!o) return -1;
        _objects.push_back(o);
        if (bpf_object__load(o) != 0) return -1;
        bpf_program* p = bpf_object__find_program_by_name(o, prog);
        return p ? bpf_program__fd(p) : -1;
    }

    void attach_fd(size_t port, int fd) {
        auto r = _app->server().runnable(fd);
        ASSERT_TRUE(r) << r.error().message;
        auto ok = _app->dataplane().attach(port, {r->prog, r->owner, r->name});
        ASSERT_TRUE(ok) << ok.error().message;
    }

    uint64_t stat(size_t port, counter c) { return _app->dataplane().stats()[port].packets[size_t(c)]; }

    std::unique_ptr<appliance::appliance> _app;
    std::vector<bpf_object*> _objects;
};

TEST_F(Dataplane, DropFreesEveryMbufAfterAMillionPackets) {
    make({"drop0"}, false, 4096);
    attach_fd(0, load("xdp_drop", "xdp_drop"));
    ASSERT_TRUE(_app->dataplane().start());
    const unsigned in_use = rte_mempool_in_use_count(test_pool());
    constexpr uint64_t n = 1'000'000;
    rte_ring* rx = rte_ring_lookup("drop0.rx0");
    ASSERT_NE(rx, nullptr);
    EXPECT_EQ(inject(rx, udp_frame(2), n, std::chrono::steady_clock::now() + 60s), n);
    ASSERT_TRUE(wait_for([&] { return stat(0, counter::drop) == n; })) << stat(0, counter::drop);
    EXPECT_EQ(stat(0, counter::rx), n);
    EXPECT_EQ(_app->dataplane().stats()[0].bytes[size_t(counter::drop)], n * 60);
    EXPECT_EQ(rte_mempool_in_use_count(test_pool()), in_use);
}

// XDP_ABORTED and actions beyond XDP_REDIRECT: dropped, counted aborted, not sent anywhere.
TEST_F(Dataplane, AbortedAndInvalidActionsAreDroppedAndCounted) {
    make({"xab0"}, false);
    for (int action : {int(XDP_ABORTED), 9}) {
        const bpf_insn insns[] = {
            {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, action},
            {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
        };
        int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "abort_prog", "GPL", insns, 2, nullptr);
        ASSERT_GE(fd, 0);
        attach_fd(0, fd);
        close(fd);
        if (action == XDP_ABORTED) {
            ASSERT_TRUE(_app->dataplane().start());
        }
        EXPECT_EQ(inject(rte_ring_lookup("xab0.rx0"), udp_frame(2), 50, std::chrono::steady_clock::now() + 10s), 50u);
    }
    EXPECT_TRUE(wait_for([&] { return stat(0, counter::aborted) >= 100; }));
    EXPECT_EQ(stat(0, counter::aborted), 100u);
    EXPECT_EQ(stat(0, counter::tx) + stat(0, counter::pass) + stat(0, counter::drop), 0u);
    EXPECT_EQ(drain(rte_ring_lookup("xab0.tx0")), 0u);
}

TEST_F(Dataplane, TxSendsTheBytesTheProgramWrote) {
    make({"tx0"}, false);
    attach_fd(0, load("xdp_swap_mac", "xdp_swap_mac"));
    ASSERT_TRUE(_app->dataplane().start());
    auto f = udp_frame(2);
    EXPECT_EQ(inject(rte_ring_lookup("tx0.rx0"), f, 1000, std::chrono::steady_clock::now() + 10s), 1000u);
    auto expect = f;
    std::swap_ranges(expect.begin(), expect.begin() + 6, expect.begin() + 6);
    uint64_t got = 0, good = 0;
    wait_for([&] {
        got += drain(rte_ring_lookup("tx0.tx0"), [&](rte_mbuf* m) { good += bytes_of(m) == expect; });
        return got >= 1000;
    });
    EXPECT_EQ(got, 1000u);
    EXPECT_EQ(good, 1000u);
    EXPECT_EQ(stat(0, counter::tx), 1000u);
    EXPECT_EQ(stat(0, counter::tx_error), 0u);
}

// Two versions of one program: each writes its version into the first and the last byte of the
// Ethernet header and transmits. A packet handled by parts of both would carry two versions.
int marker_prog(int version) {
    const bpf_insn insns[] = {
        {BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0},   // r2 = ctx->data
        {BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, 4, 0},   // r3 = ctx->data_end
        {BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0},
        {BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, 14},
        {BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 4, 0},   // runt: drop
        {BPF_ST | BPF_MEM | BPF_B, BPF_REG_2, 0, 0, version},
        {BPF_ST | BPF_MEM | BPF_B, BPF_REG_2, 0, 13, version},
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_TX},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_DROP},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    return bpf_prog_load(BPF_PROG_TYPE_XDP, version == 1 ? "mark_v1" : "mark_v2", "GPL", insns, std::size(insns), nullptr);
}

TEST_F(Dataplane, HotSwapHundredTimesLosesNoPacket) {
    make({"swap0"}, false, 8192);
    int v1 = marker_prog(1), v2 = marker_prog(2);
    ASSERT_GE(v1, 0);
    ASSERT_GE(v2, 0);
    attach_fd(0, v1);
    ASSERT_TRUE(_app->dataplane().start());
    constexpr uint64_t n = 1'000'000;
    std::atomic<bool> done{false};
    std::atomic<int> swaps{0};
    std::thread swapper([&] {
        for (int k = 0; k < 100 && !done; ++k) {
            std::this_thread::sleep_for(3ms);
            attach_fd(0, k % 2 ? v1 : v2);
            swaps.fetch_add(1);
        }
    });
    uint64_t got = 0, torn = 0, seen[3] = {};
    auto check = [&](rte_mbuf* m) {
        auto* p = rte_pktmbuf_mtod(m, uint8_t*);
        if (p[0] != p[13] || p[0] < 1 || p[0] > 2) ++torn;
        else ++seen[p[0]];
    };
    rte_ring* tx = rte_ring_lookup("swap0.tx0");
    uint64_t sent = inject(rte_ring_lookup("swap0.rx0"), udp_frame(2), n, std::chrono::steady_clock::now() + 60s,
                           [&] { got += drain(tx, check); });
    swapper.join();
    done = true;
    wait_for([&] {
        got += drain(tx, check);
        return got >= sent;
    });
    EXPECT_EQ(sent, n);
    EXPECT_EQ(got, n);
    EXPECT_EQ(torn, 0u);
    EXPECT_EQ(swaps.load(), 100);
    EXPECT_GT(seen[1], 0u);
    EXPECT_GT(seen[2], 0u);
    EXPECT_EQ(stat(0, counter::tx_error), 0u);
    close(v1);
    close(v2);
}

// A raw socket on a twin: what the kernel receives on it (XDP_PASS) and what it sends.
struct packet_socket {
    int fd = -1;
    int ifindex = 0;
    explicit packet_socket(const std::string& dev) {
        ifindex = int(if_nametoindex(dev.c_str()));
        fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
        sockaddr_ll a{};
        a.sll_family = AF_PACKET;
        a.sll_protocol = htons(ETH_P_ALL);
        a.sll_ifindex = ifindex;
        if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            close(fd);
            fd = -1;
        }
    }
    ~packet_socket() {
        if (fd >= 0) close(fd);
    }
    // Reads what the kernel received since the last call; counts our UDP frames per source port
    // (the kernel's own chatter, IPv6 router solicitations and the like, is not ours).
    std::map<uint16_t, int> received;
    int count_received(uint16_t sport) {
        uint8_t buf[2048];
        sockaddr_ll from{};
        socklen_t len = sizeof from;
        ssize_t r;
        while ((r = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len)) > 0) {
            if (from.sll_pkttype == PACKET_OUTGOING) continue;
            if (r >= 36 && buf[12] == 0x08 && buf[13] == 0 && buf[23] == 17) ++received[uint16_t(buf[34] << 8 | buf[35])];
        }
        return std::exchange(received[sport], 0);
    }
    bool send_frame(const std::vector<uint8_t>& f) { return send(fd, f.data(), f.size(), 0) == ssize_t(f.size()); }
};

TEST_F(Dataplane, LinksRedirectPassAndTheTwinPath) {
    make({"xdt0", "xdt1"}, true);
    const auto& ports = _app->dataplane().ports();
    ASSERT_NE(ports[0].ifindex, 0u);
    ASSERT_NE(ports[1].ifindex, 0u);
    int prog = load("xdp_devmap", "xdp_devmap");
    ASSERT_GE(prog, 0);
    int devmap = bpf_object__find_map_fd_by_name(_objects.back(), "tx_ports");
    uint32_t slot = 2, ifindex = ports[1].ifindex;
    ASSERT_EQ(bpf_map_update_elem(devmap, &slot, &ifindex, 0), 0);
    // Attach the way a libbpf application does: a link on the port's ifindex.
    int link = bpf_link_create(prog, int(ports[0].ifindex), BPF_XDP, nullptr);
    ASSERT_GE(link, 0) << _app->server().last_error();
    EXPECT_NE(_app->server().attached_prog_id(ports[0].ifindex), 0u);
    ASSERT_TRUE(_app->dataplane().start());
    packet_socket twin0("xdt0");
    ASSERT_GE(twin0.fd, 0);

    // 198.18.0.2: DEVMAP slot 2 -> port xdt1. 198.18.0.3: empty slot -> XDP_PASS -> twin xdt0.
    auto deadline = std::chrono::steady_clock::now() + 10s;
    EXPECT_EQ(inject(rte_ring_lookup("xdt0.rx0"), udp_frame(2, 4242), 100, deadline), 100u);
    EXPECT_EQ(inject(rte_ring_lookup("xdt0.rx0"), udp_frame(3, 4343), 50, deadline), 50u);
    uint64_t redirected = 0;
    int passed = 0;
    wait_for([&] {
        redirected += drain(rte_ring_lookup("xdt1.tx0"));
        passed += twin0.count_received(4343);
        return redirected >= 100 && passed >= 50;
    });
    EXPECT_EQ(redirected, 100u);
    EXPECT_EQ(passed, 50);
    EXPECT_EQ(stat(0, counter::redirect), 100u);
    EXPECT_EQ(stat(0, counter::pass), 50u);

    // What the kernel sends on the twin leaves through the port (the twin service's TX queue).
    auto out = udp_frame(9, 4444);
    ASSERT_TRUE(twin0.send_frame(out));
    uint64_t from_kernel = 0;
    EXPECT_TRUE(wait_for([&] {
        drain(rte_ring_lookup("xdt0.tx1"), [&](rte_mbuf* m) { from_kernel += bytes_of(m) == out; });
        return from_kernel >= 1;
    }));

    // Closing the link detaches: every frame goes to the kernel again.
    close(link);
    _app->server().count();  // reaps the link
    EXPECT_EQ(_app->server().attached_prog_id(ports[0].ifindex), 0u);
    EXPECT_EQ(inject(rte_ring_lookup("xdt0.rx0"), udp_frame(2, 4545), 20, std::chrono::steady_clock::now() + 10s), 20u);
    int after = 0;
    EXPECT_TRUE(wait_for([&] {
        after += twin0.count_received(4545);
        return after >= 20;
    }));
    EXPECT_EQ(drain(rte_ring_lookup("xdt1.tx0")), 0u);
}

// A classic pcap file (microsecond timestamps, Ethernet link type) of `frames`.
void write_pcap(const std::string& path, const std::vector<std::vector<uint8_t>>& frames) {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    const uint32_t header[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
    std::fwrite(header, sizeof header, 1, f);
    uint32_t t = 1;
    for (auto& fr : frames) {
        const uint32_t rec[4] = {t++, 0, uint32_t(fr.size()), uint32_t(fr.size())};
        std::fwrite(rec, sizeof rec, 1, f);
        std::fwrite(fr.data(), 1, fr.size(), f);
    }
    std::fclose(f);
}

std::vector<std::vector<uint8_t>> read_pcap(const std::string& path) {
    std::vector<std::vector<uint8_t>> out;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return out;
    uint32_t header[6], rec[4];
    if (std::fread(header, sizeof header, 1, f) == 1)
        while (std::fread(rec, sizeof rec, 1, f) == 1) {
            std::vector<uint8_t> fr(rec[2]);
            if (std::fread(fr.data(), 1, fr.size(), f) != fr.size()) break;
            out.push_back(std::move(fr));
        }
    std::fclose(f);
    return out;
}

// A pcap port (net_pcap: a capture in, a capture out) with garbage among the traffic: runts of
// 1 to 13 bytes, random 60-byte frames, a 9,000-byte frame: each counted where it belongs, the
// valid frames transmitted with the bytes the program wrote, nothing else written, no crash.
TEST_F(Dataplane, PcapPortWithGarbageAndRunts) {
    std::string dir = testing_support::scratch_pin_root().string();
    std::string in = dir + "/in.pcap", out = dir + "/out.pcap";
    std::vector<std::vector<uint8_t>> frames;
    auto valid = udp_frame(2);
    for (int k = 0; k < 10; ++k) frames.push_back(valid);
    for (size_t len : {1, 5, 9, 13}) frames.push_back(std::vector<uint8_t>(valid.begin(), valid.begin() + len));
    uint32_t x = 12345;
    for (int k = 0; k < 3; ++k) {
        std::vector<uint8_t> g(60);
        for (auto& b : g) b = uint8_t((x = x * 1103515245 + 12345) >> 16);
        g[12] = 0x88;  // an EtherType that is not IP: xdp_swap_mac passes it
        frames.push_back(g);
    }
    std::vector<uint8_t> jumbo(9000, 0x5a);
    std::copy(valid.begin(), valid.begin() + 14, jumbo.begin());
    frames.push_back(jumbo);
    write_pcap(in, frames);

    dataplane::port_spec p;
    p.name = "pcap0";
    p.kind = dataplane::port_kind::pcap;
    p.rx_pcap = in;
    p.tx_pcap = out;
    p.twin = false;
    make_with(p);
    attach_fd(0, load("xdp_swap_mac", "xdp_swap_mac"));
    ASSERT_TRUE(_app->dataplane().start());
    const uint64_t taken = frames.size();
    EXPECT_TRUE(wait_for([&] { return stat(0, counter::rx) >= taken; }, 10s));
    std::this_thread::sleep_for(100ms);
    _app->dataplane().stop();
    auto s = _app->dataplane().stats()[0];
    control::inprocess::route_to(nullptr);
    _app.reset();  // closes the port: the output capture is complete
    // The 9,000-byte frame does not fit a 2 kB mbuf: net_pcap hands it over in segments, which
    // no program sees (multi-buffer frames need XDP_HAS_FRAGS programs): oversize.
    EXPECT_EQ(s.packets[size_t(counter::rx)], 18u);
    EXPECT_EQ(s.packets[size_t(counter::tx)], 10u);
    EXPECT_EQ(s.packets[size_t(counter::drop)], 4u);   // runts: xdp_swap_mac drops what has no Ethernet header
    EXPECT_EQ(s.packets[size_t(counter::pass)], 3u);   // no twin: counted, freed
    EXPECT_EQ(s.packets[size_t(counter::oversize)], 1u);
    auto written = read_pcap(out);
    ASSERT_EQ(written.size(), 10u);
    auto expect = valid;
    std::swap_ranges(expect.begin(), expect.begin() + 6, expect.begin() + 6);
    for (auto& w : written) EXPECT_EQ(w, expect);
}

// A tap port: the wire is a TAP interface the kernel sends on (here, a packet socket stands in
// for the far end); the program's XDP_TX comes back to the kernel on that interface.
TEST_F(Dataplane, TapPortCarriesTraffic) {
    dataplane::port_spec p;
    p.name = "xtp0";
    p.kind = dataplane::port_kind::tap;
    p.device = "xtw0";
    p.twin = true;
    make_with(p);
    attach_fd(0, load("xdp_swap_mac", "xdp_swap_mac"));
    ASSERT_TRUE(_app->dataplane().start());
    packet_socket wire("xtw0");
    ASSERT_GE(wire.fd, 0);
    for (int k = 0; k < 20; ++k) ASSERT_TRUE(wire.send_frame(udp_frame(2, 6001)));
    int back = 0;
    EXPECT_TRUE(wait_for([&] {
        back += wire.count_received(6001);
        return back >= 20;
    }));
    EXPECT_EQ(back, 20);
    EXPECT_EQ(stat(0, counter::tx), 20u);
}

// A memif port (the appliance is the server) and a memif client of the test's own in the same
// process: frames the client sends come back with their MACs swapped.
TEST_F(Dataplane, MemifPortCarriesTraffic) {
    std::string sock = testing_support::scratch_pin_root().string() + "/memif.sock";
    dataplane::port_spec p;
    p.name = "xmf0";
    p.kind = dataplane::port_kind::memif;
    p.devargs = "role=server,id=7,socket=" + sock;
    p.twin = false;
    make_with(p);
    attach_fd(0, load("xdp_swap_mac", "xdp_swap_mac"));
    ASSERT_TRUE(_app->dataplane().start());
    ASSERT_EQ(rte_dev_probe(("net_memif_testcli,role=client,id=7,socket=" + sock).c_str()), 0);
    uint16_t cli;
    ASSERT_EQ(rte_eth_dev_get_port_by_name("net_memif_testcli", &cli), 0);
    rte_eth_conf conf{};
    ASSERT_EQ(rte_eth_dev_configure(cli, 1, 1, &conf), 0);
    ASSERT_EQ(rte_eth_rx_queue_setup(cli, 0, 1024, 0, nullptr, test_pool()), 0);
    ASSERT_EQ(rte_eth_tx_queue_setup(cli, 0, 1024, 0, nullptr), 0);
    ASSERT_EQ(rte_eth_dev_start(cli), 0);
    EXPECT_TRUE(wait_for([&] {
        rte_eth_link link{};
        return rte_eth_link_get_nowait(cli, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
    }, 10s));
    auto f = udp_frame(2);
    auto expect = f;
    std::swap_ranges(expect.begin(), expect.begin() + 6, expect.begin() + 6);
    uint64_t sent = 0, got = 0, good = 0;
    EXPECT_TRUE(wait_for([&] {
        if (sent < 100) {
            rte_mbuf* m = rte_pktmbuf_alloc(test_pool());
            std::memcpy(rte_pktmbuf_append(m, uint16_t(f.size())), f.data(), f.size());
            if (rte_eth_tx_burst(cli, 0, &m, 1) == 1) ++sent;
            else rte_pktmbuf_free(m);
        }
        rte_mbuf* b[32];
        uint16_t n = rte_eth_rx_burst(cli, 0, b, 32);
        for (uint16_t i = 0; i < n; ++i) {
            good += bytes_of(b[i]) == expect;
            rte_pktmbuf_free(b[i]);
        }
        got += n;
        return got >= 100;
    }));
    EXPECT_EQ(got, 100u);
    EXPECT_EQ(good, 100u);
    rte_eth_dev_info info{};
    (void)rte_eth_dev_info_get(cli, &info);
    (void)rte_eth_dev_stop(cli);
    (void)rte_eth_dev_close(cli);
    if (info.device) (void)rte_dev_remove(info.device);
}

// Two RX queues on one port, one worker polling both (RSS spreads a NIC's flows; here each ring
// is fed directly): frames from both queues are handled.
TEST_F(Dataplane, OneWorkerPollsEveryQueueOfAPort) {
    dataplane::port_spec p;
    p.name = "xmq0";
    p.kind = dataplane::port_kind::ring;
    p.rx_queues = 2;
    p.twin = false;
    make_with(p);
    attach_fd(0, load("xdp_drop", "xdp_drop"));
    ASSERT_TRUE(_app->dataplane().start());
    auto deadline = std::chrono::steady_clock::now() + 10s;
    EXPECT_EQ(inject(rte_ring_lookup("xmq0.rx0"), udp_frame(2), 300, deadline), 300u);
    EXPECT_EQ(inject(rte_ring_lookup("xmq0.rx1"), udp_frame(2), 200, deadline), 200u);
    EXPECT_TRUE(wait_for([&] { return stat(0, counter::drop) >= 500; }));
    EXPECT_EQ(stat(0, counter::rx), 500u);
    auto s = _app->dataplane().stats()[0];
    ASSERT_EQ(s.queues.size(), 2u);
    EXPECT_EQ(s.queues[0].packets[size_t(counter::rx)], 300u);  // each queue's own counters
    EXPECT_EQ(s.queues[1].packets[size_t(counter::drop)], 200u);
}

TEST_F(Dataplane, CpumapRunsEntryProgramsOnTheirCpu) {
    make({"xcp0"}, true);
    int prog = load("xdp_cpu_steer", "xdp_cpu_steer");
    ASSERT_GE(prog, 0);
    bpf_object* obj = _objects.back();
    int stage = bpf_program__fd(bpf_object__find_program_by_name(obj, "cpu_stage"));
    int cpus = bpf_object__find_map_fd_by_name(obj, "cpus");
    int stage_cpu = bpf_object__find_map_fd_by_name(obj, "stage_cpu");
    // CPU 1 (the worker's lcore) runs cpu_stage; CPU 0 (the main lcore, no worker: the twin
    // service stands in) has no program, so its frames go to the kernel as they are.
    bpf_cpumap_val with_prog{}, plain{};
    with_prog.qsize = plain.qsize = 256;
    with_prog.bpf_prog.fd = stage;
    uint32_t one = 1, zero = 0;
    ASSERT_EQ(bpf_map_update_elem(cpus, &one, &with_prog, 0), 0) << _app->server().last_error();
    ASSERT_EQ(bpf_map_update_elem(cpus, &zero, &plain, 0), 0) << _app->server().last_error();
    int link = bpf_link_create(prog, int(_app->dataplane().ports()[0].ifindex), BPF_XDP, nullptr);
    ASSERT_GE(link, 0) << _app->server().last_error();
    ASSERT_TRUE(_app->dataplane().start());
    packet_socket twin("xcp0");
    auto deadline = std::chrono::steady_clock::now() + 10s;
    rte_ring* rx = rte_ring_lookup("xcp0.rx0");
    EXPECT_EQ(inject(rx, udp_frame(2, 5001, 11), 40, deadline), 40u);  // CPU 1, passed by cpu_stage
    EXPECT_EQ(inject(rx, udp_frame(2, 5002, 7), 30, deadline), 30u);   // CPU 1, dropped by cpu_stage
    EXPECT_EQ(inject(rx, udp_frame(2, 5003, 10), 20, deadline), 20u);  // CPU 0, no program: passed
    int via_stage = 0, via_plain = 0, dropped_got = 0;
    EXPECT_TRUE(wait_for([&] {
        via_stage += twin.count_received(5001);
        dropped_got += twin.count_received(5002);
        via_plain += twin.count_received(5003);
        return via_stage >= 40 && via_plain >= 20;
    }));
    EXPECT_EQ(via_stage, 40);
    EXPECT_EQ(via_plain, 20);
    EXPECT_EQ(dropped_got, 0);
    uint64_t seen_cpu1 = 0, seen_cpu0 = 0;
    ASSERT_EQ(bpf_map_lookup_elem(stage_cpu, &one, &seen_cpu1), 0);
    ASSERT_EQ(bpf_map_lookup_elem(stage_cpu, &zero, &seen_cpu0), 0);
    EXPECT_EQ(seen_cpu1, 70u);  // cpu_stage ran on CPU 1 for every frame sent there
    EXPECT_EQ(seen_cpu0, 0u);
    EXPECT_EQ(stat(0, counter::redirect), 90u);
    EXPECT_EQ(stat(0, counter::cpu_in), 90u);
    EXPECT_EQ(stat(0, counter::drop), 30u);
    EXPECT_EQ(stat(0, counter::pass), 60u);
    // Detaching waits until the frames in CPU rings that name the old program's maps are done.
    close(link);
    _app->server().count();
    EXPECT_EQ(_app->server().attached_prog_id(_app->dataplane().ports()[0].ifindex), 0u);
}

TEST_F(Dataplane, BroadcastCopiesToEveryOtherPortThroughDevmapPrograms) {
    make({"xbc0", "xbc1", "xbc2"}, true);
    int prog = load("xdp_broadcast", "xdp_broadcast");
    ASSERT_GE(prog, 0);
    bpf_object* obj = _objects.back();
    int mark = bpf_program__fd(bpf_object__find_program_by_name(obj, "egress_mark"));
    int ports = bpf_object__find_map_fd_by_name(obj, "ports");
    const auto& info = _app->dataplane().ports();
    for (uint32_t k = 0; k < 3; ++k) {
        bpf_devmap_val v{};
        v.ifindex = info[k].ifindex;
        v.bpf_prog.fd = mark;
        ASSERT_EQ(bpf_map_update_elem(ports, &k, &v, 0), 0) << _app->server().last_error();
    }
    int link = bpf_link_create(prog, int(info[0].ifindex), BPF_XDP, nullptr);
    ASSERT_GE(link, 0) << _app->server().last_error();
    ASSERT_TRUE(_app->dataplane().start());
    EXPECT_EQ(inject(rte_ring_lookup("xbc0.rx0"), udp_frame(2), 100, std::chrono::steady_clock::now() + 10s), 100u);
    uint64_t got[3] = {}, marked[3] = {};
    EXPECT_TRUE(wait_for([&] {
        for (uint32_t k = 1; k < 3; ++k)
            got[k] += drain(rte_ring_lookup(fmt::format("xbc{}.tx0", k).c_str()),
                            [&](rte_mbuf* m) { marked[k] += rte_pktmbuf_mtod(m, uint8_t*)[11] == uint8_t(info[k].ifindex); });
        return got[1] >= 100 && got[2] >= 100;
    }));
    got[0] = drain(rte_ring_lookup("xbc0.tx0"));
    EXPECT_EQ(got[0], 0u);  // BPF_F_EXCLUDE_INGRESS
    EXPECT_EQ(got[1], 100u);
    EXPECT_EQ(got[2], 100u);
    EXPECT_EQ(marked[1], 100u);  // each copy went through the devmap program with its egress_ifindex
    EXPECT_EQ(marked[2], 100u);
    EXPECT_EQ(stat(0, counter::redirect), 200u);
    EXPECT_EQ(stat(0, counter::redirect_error), 0u);
    close(link);
}

// A local application's AF_XDP socket, as a consumer of ours binds one (docs/af_xdp.md): copy
// mode, on queue `queue` of a port's kernel twin, with libxdp's own program load inhibited (the
// port's program is the appliance's), its UMEM's frames all in the fill ring.
class xsk_consumer {
public:
    static constexpr uint32_t frames = 1024, frame_size = XSK_UMEM__DEFAULT_FRAME_SIZE;
    xsk_consumer(const std::string& ifname, uint32_t queue) {
        _area = mmap(nullptr, size_t(frames) * frame_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (_area == MAP_FAILED) throw std::runtime_error("umem mmap");
        if (int e = xsk_umem__create(&_umem, _area, uint64_t(frames) * frame_size, &_fill, &_comp, nullptr))
            throw std::runtime_error(fmt::format("xsk_umem__create: {}", strerror(-e)));
        xsk_socket_config cfg{};
        cfg.rx_size = XSK_RING_CONS__DEFAULT_NUM_DESCS;
        cfg.tx_size = XSK_RING_PROD__DEFAULT_NUM_DESCS;
        cfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
        cfg.bind_flags = XDP_COPY;
        if (int e = xsk_socket__create(&_xsk, ifname.c_str(), queue, _umem, &_rx, &_tx, &cfg))
            throw std::runtime_error(fmt::format("xsk_socket__create on {} queue {}: {}", ifname, queue, strerror(-e)));
        // The first half of the UMEM receives, the second half sends.
        uint32_t idx = 0;
        uint32_t n = xsk_ring_prod__reserve(&_fill, frames / 2, &idx);
        for (uint32_t k = 0; k < n; ++k) *xsk_ring_prod__fill_addr(&_fill, idx + k) = uint64_t(k) * frame_size;
        xsk_ring_prod__submit(&_fill, n);
    }
    ~xsk_consumer() {
        if (_xsk) xsk_socket__delete(_xsk);
        if (_umem) xsk_umem__delete(_umem);
        if (_area != MAP_FAILED) munmap(_area, size_t(frames) * frame_size);
    }
    int fd() const { return xsk_socket__fd(_xsk); }

    // Frames received so far; each goes back to the fill ring after `check`.
    uint32_t receive(const std::function<void(std::span<const uint8_t>)>& check) {
        uint32_t idx = 0, got = xsk_ring_cons__peek(&_rx, 64, &idx);
        uint32_t fidx = 0;
        if (got && xsk_ring_prod__reserve(&_fill, got, &fidx) != got) throw std::runtime_error("fill ring full");
        for (uint32_t k = 0; k < got; ++k) {
            const xdp_desc* d = xsk_ring_cons__rx_desc(&_rx, idx + k);
            auto* p = static_cast<const uint8_t*>(xsk_umem__get_data(_area, d->addr));
            check({p, d->len});
            *xsk_ring_prod__fill_addr(&_fill, fidx + k) = xsk_umem__extract_addr(d->addr);
        }
        if (got) {
            xsk_ring_cons__release(&_rx, got);
            xsk_ring_prod__submit(&_fill, got);
        }
        return got;
    }

    // Sends one frame (copy mode: the kernel takes it on the kick).
    bool send(const std::vector<uint8_t>& frame) {
        uint32_t idx = 0;
        if (xsk_ring_prod__reserve(&_tx, 1, &idx) != 1) return false;
        uint64_t addr = uint64_t(frames / 2) * frame_size;
        std::memcpy(xsk_umem__get_data(_area, addr), frame.data(), frame.size());
        xdp_desc* d = xsk_ring_prod__tx_desc(&_tx, idx);
        d->addr = addr;
        d->len = uint32_t(frame.size());
        xsk_ring_prod__submit(&_tx, 1);
        return sendto(fd(), nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0 || errno == EAGAIN || errno == EBUSY;
    }

private:
    void* _area = MAP_FAILED;
    xsk_umem* _umem = nullptr;
    xsk_socket* _xsk = nullptr;
    xsk_ring_prod _fill{}, _tx{};
    xsk_ring_cons _comp{}, _rx{};
};

TEST_F(Dataplane, XskmapRedirectsReachALocalAfXdpSocketOfTheirQueue) {
    dataplane::port_spec p;
    p.name = "xsk0";
    p.kind = dataplane::port_kind::ring;
    p.rx_queues = 2;
    make_with(p);
    int prog = load("xdp_xsk_queue", "xdp_xsk_queue");
    ASSERT_GE(prog, 0) << _app->server().last_error();
    int xsks = bpf_object__find_map_fd_by_name(_objects.back(), "xsks");
    xsk_consumer q0("xsk0", 0), q1("xsk0", 1);
    uint32_t zero = 0, one = 1, two = 2;
    int fd0 = q0.fd(), fd1 = q1.fd();
    ASSERT_EQ(bpf_map_update_elem(xsks, &zero, &fd0, BPF_ANY), 0) << _app->server().last_error();
    ASSERT_EQ(bpf_map_update_elem(xsks, &one, &fd1, BPF_NOEXIST), 0) << _app->server().last_error();
    EXPECT_EQ(bpf_map_update_elem(xsks, &one, &fd1, BPF_NOEXIST), 0) << "the same socket again is no change";
    EXPECT_EQ(bpf_map_update_elem(xsks, &one, &fd0, BPF_NOEXIST), -EEXIST);
    EXPECT_EQ(bpf_map_update_elem(xsks, &two, &fd0, BPF_EXIST), -ENOENT);
    // What cannot be an element, each with the reason.
    int efd = eventfd(0, EFD_CLOEXEC);
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(bpf_map_update_elem(xsks, &two, &efd, BPF_ANY), -ENOTSOCK);
    EXPECT_EQ(bpf_map_update_elem(xsks, &two, &udp, BPF_ANY), -EOPNOTSUPP);
    for (int fd : {efd, udp}) close(fd);

    int link = bpf_link_create(prog, int(_app->dataplane().ports()[0].ifindex), BPF_XDP, nullptr);
    ASSERT_GE(link, 0) << _app->server().last_error();
    ASSERT_TRUE(_app->dataplane().start());
    auto deadline = std::chrono::steady_clock::now() + 10s;
    const auto f0 = udp_frame(2, 5000, 9), f1 = udp_frame(3, 5001, 9);
    EXPECT_EQ(inject(rte_ring_lookup("xsk0.rx0"), f0, 300, deadline), 300u);
    EXPECT_EQ(inject(rte_ring_lookup("xsk0.rx1"), f1, 200, deadline), 200u);
    uint32_t got0 = 0, got1 = 0, good0 = 0, good1 = 0;
    auto count = [](const std::vector<uint8_t>& want, uint32_t& good) {
        return [&want, &good](std::span<const uint8_t> f) { good += std::equal(f.begin(), f.end(), want.begin(), want.end()); };
    };
    EXPECT_TRUE(wait_for([&] {
        got0 += q0.receive(count(f0, good0));
        got1 += q1.receive(count(f1, good1));
        return got0 >= 300 && got1 >= 200;
    }));
    EXPECT_EQ(got0, 300u);
    EXPECT_EQ(got1, 200u);
    EXPECT_EQ(good0, 300u);  // byte for byte, each on the socket of its queue
    EXPECT_EQ(good1, 200u);
    EXPECT_EQ(stat(0, counter::redirect), 500u);
    EXPECT_EQ(stat(0, counter::redirect_error), 0u);

    // A socket takes frames of its own queue alone (the kernel's rule): queue 0's slot now holds
    // queue 1's socket, so queue 0's frames fail to redirect.
    ASSERT_EQ(bpf_map_update_elem(xsks, &zero, &fd1, BPF_ANY), 0) << _app->server().last_error();
    EXPECT_EQ(inject(rte_ring_lookup("xsk0.rx0"), f0, 50, deadline), 50u);
    EXPECT_TRUE(wait_for([&] { return stat(0, counter::redirect_error) >= 50; }));
    EXPECT_EQ(stat(0, counter::redirect_error), 50u);
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(q1.receive([](auto) {}) + q0.receive([](auto) {}), 0u);

    // What the application sends leaves through the port.
    const auto out = udp_frame(9, 6000, 9);
    ASSERT_TRUE(q1.send(out));
    uint64_t sent_out = 0;
    EXPECT_TRUE(wait_for([&] {
        for (const char* tx : {"xsk0.tx0", "xsk0.tx1"})
            drain(rte_ring_lookup(tx), [&](rte_mbuf* m) { sent_out += bytes_of(m) == out; });
        return sent_out >= 1;
    }));
    EXPECT_EQ(sent_out, 1u);
    close(link);
}

}  // namespace
}  // namespace xdprt

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    // A network namespace of our own: the twins live and die with this process.
    if (geteuid() == 0 && unshare(CLONE_NEWNET) != 0) {
        perror("unshare(CLONE_NEWNET)");
        return 1;
    }
    return RUN_ALL_TESTS();
}
