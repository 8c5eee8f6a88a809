// Katran-style traffic through the user's Katran object, run by BPF_PROG_TEST_RUN: one line per
// packet (its action and the packet the program left, byte for byte), then the per-VIP and
// per-real counters. Suite katran runs this same binary against the kernel and, under
// `xdprt with`, against the appliance, with the same configuration, and requires the same output.
//
//   katran_replay CONFIG.yaml   (the object: the config's `object:`, or KATRAN_BPF_OBJ)
//
// The traffic: TCP to a VIP over IPv4 and IPv6 (a SYN, then the same flow's non-SYN packets,
// which the LRU serves, and a non-SYN of a flow never seen, which the ring serves), 8 source
// ports of one client, UDP, QUIC initial (the ring) and short-header packets with a server id
// (server_id_map), ICMP and ICMPv6 echo to a VIP (answered by the balancer itself), ICMP
// fragmentation-needed and ICMPv6 packet-too-big about a VIP's flow (sent to that flow's real),
// traffic to no VIP (passed), an IPv4 fragment and a runt frame (dropped).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "balancer.h"
#include "test_run_opts.h"

using namespace xdprt::katran;

namespace {

using bytes = std::vector<uint8_t>;

void put(bytes& b, const void* p, size_t n) { b.insert(b.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n); }

uint16_t csum(const uint8_t* p, size_t n, uint32_t sum = 0) {
    for (; n > 1; n -= 2, p += 2) sum += uint32_t(p[0]) << 8 | p[1];
    if (n) sum += uint32_t(p[0]) << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return htons(uint16_t(~sum));
}

bytes ether(uint16_t proto) {
    bytes b;
    const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 0x01}, src[6] = {0x02, 0, 0, 0, 0, 0x02};
    put(b, dst, 6);
    put(b, src, 6);
    uint16_t p = htons(proto);
    put(b, &p, 2);
    return b;
}

bytes l4(uint8_t proto, uint16_t sport, uint16_t dport, uint8_t tcp_flags, const bytes& payload) {
    bytes b;
    if (proto == IPPROTO_TCP) {
        tcphdr t{};
        t.source = htons(sport);
        t.dest = htons(dport);
        t.seq = htonl(1000);
        t.doff = 5;
        t.syn = !!(tcp_flags & 2);
        t.ack = !!(tcp_flags & 16);
        t.rst = !!(tcp_flags & 4);
        t.window = htons(65535);
        put(b, &t, sizeof t);
    } else {
        udphdr u{};
        u.source = htons(sport);
        u.dest = htons(dport);
        u.len = htons(uint16_t(sizeof u + payload.size()));
        put(b, &u, sizeof u);
    }
    put(b, payload.data(), payload.size());
    return b;
}

bytes ipv4(const char* src, const char* dst, uint8_t proto, const bytes& body, uint16_t frag = 0) {
    bytes b = ether(ETH_P_IP);
    iphdr h{};
    h.version = 4;
    h.ihl = 5;
    h.ttl = 64;
    h.protocol = proto;
    h.tot_len = htons(uint16_t(sizeof h + body.size()));
    h.id = htons(7);
    h.frag_off = htons(frag);
    inet_pton(AF_INET, src, &h.saddr);
    inet_pton(AF_INET, dst, &h.daddr);
    h.check = csum(reinterpret_cast<uint8_t*>(&h), sizeof h);
    put(b, &h, sizeof h);
    put(b, body.data(), body.size());
    return b;
}

bytes ipv6(const char* src, const char* dst, uint8_t next, const bytes& body) {
    bytes b = ether(ETH_P_IPV6);
    ipv6hdr h{};
    h.version = 6;
    h.payload_len = htons(uint16_t(body.size()));
    h.nexthdr = next;
    h.hop_limit = 64;
    inet_pton(AF_INET6, src, &h.saddr);
    inet_pton(AF_INET6, dst, &h.daddr);
    put(b, &h, sizeof h);
    put(b, body.data(), body.size());
    return b;
}

// Without the Ethernet header: what ICMP errors quote.
bytes inner(const bytes& frame) { return bytes(frame.begin() + ETH_HLEN, frame.end()); }

bytes icmp4(uint8_t type, uint8_t code, uint32_t rest, const bytes& data) {
    bytes b(8, 0);
    b[0] = type;
    b[1] = code;
    std::memcpy(&b[4], &rest, 4);
    put(b, data.data(), data.size());
    uint16_t c = csum(b.data(), b.size());
    std::memcpy(&b[2], &c, 2);
    return b;
}

bytes icmp6(uint8_t type, uint8_t code, uint32_t rest, const bytes& data) {
    bytes b(8, 0);  // the checksum over the pseudo header is not checked by Katran: left 0
    b[0] = type;
    b[1] = code;
    std::memcpy(&b[4], &rest, 4);
    put(b, data.data(), data.size());
    return b;
}

bytes payload(std::initializer_list<uint8_t> head, size_t total) {
    bytes b(head);
    while (b.size() < total) b.push_back(uint8_t(b.size()));
    return b;
}

struct packet {
    std::string name;
    bytes frame;
};

std::vector<packet> traffic() {
    std::vector<packet> out;
    const uint8_t syn = 2, ack = 16;
    const bytes data = payload({}, 32);
    // TCP over IPv4: a SYN, the same flow's ACKs (LRU), a flow seen first without SYN (ring).
    out.push_back({"tcp4-syn", ipv4("192.168.1.10", "10.100.0.1", IPPROTO_TCP, l4(IPPROTO_TCP, 31337, 80, syn, {}))});
    out.push_back({"tcp4-ack", ipv4("192.168.1.10", "10.100.0.1", IPPROTO_TCP, l4(IPPROTO_TCP, 31337, 80, ack, data))});
    out.push_back({"tcp4-ack-again", ipv4("192.168.1.10", "10.100.0.1", IPPROTO_TCP, l4(IPPROTO_TCP, 31337, 80, ack, data))});
    out.push_back({"tcp4-unseen-ack", ipv4("192.168.1.11", "10.100.0.1", IPPROTO_TCP, l4(IPPROTO_TCP, 40000, 80, ack, data))});
    for (uint16_t p = 0; p < 8; ++p)
        out.push_back({"tcp4-port" + std::to_string(1024 + p * 977),
                       ipv4("192.168.1.12", "10.100.0.1", IPPROTO_TCP, l4(IPPROTO_TCP, uint16_t(1024 + p * 977), 80, syn, {}))});
    out.push_back({"tcp4-rst", ipv4("192.168.1.10", "10.100.0.1", IPPROTO_TCP, l4(IPPROTO_TCP, 31337, 80, 4 | ack, {}))});
    // TCP over IPv6.
    out.push_back({"tcp6-syn", ipv6("fc00:1::10", "fc00::2", IPPROTO_TCP, l4(IPPROTO_TCP, 31337, 80, syn, {}))});
    out.push_back({"tcp6-ack", ipv6("fc00:1::10", "fc00::2", IPPROTO_TCP, l4(IPPROTO_TCP, 31337, 80, ack, data))});
    out.push_back({"tcp6-unseen-ack", ipv6("fc00:1::11", "fc00::2", IPPROTO_TCP, l4(IPPROTO_TCP, 5555, 80, ack, data))});
    // UDP over IPv4.
    out.push_back({"udp4", ipv4("192.168.1.20", "10.100.0.2", IPPROTO_UDP, l4(IPPROTO_UDP, 5353, 53, 0, data))});
    out.push_back({"udp4-again", ipv4("192.168.1.20", "10.100.0.2", IPPROTO_UDP, l4(IPPROTO_UDP, 5353, 53, 0, data))});
    // QUIC to an IPv6 VIP: an initial (the ring), short headers with server id 1234 (CID v1)
    // and with an id no real has (the ring again).
    out.push_back({"quic6-initial", ipv6("fc00:1::20", "fc00::1", IPPROTO_UDP,
                                         l4(IPPROTO_UDP, 4433, 443, 0, payload({0xc0, 0, 0, 0, 1, 8, 0x41, 0x34, 0x80, 1, 2, 3, 4, 5}, 64)))});
    out.push_back({"quic6-short-sid1234", ipv6("fc00:1::21", "fc00::1", IPPROTO_UDP,
                                               l4(IPPROTO_UDP, 4434, 443, 0, payload({0x40, 0x41, 0x34, 0x80, 9, 9, 9, 9, 9}, 64)))});
    out.push_back({"quic6-short-sid999", ipv6("fc00:1::21", "fc00::1", IPPROTO_UDP,
                                              l4(IPPROTO_UDP, 4435, 443, 0, payload({0x40, 0x40, 0xf9, 0xc0, 9, 9, 9, 9, 9}, 64)))});
    out.push_back({"quic4-short-sid1234", ipv4("192.168.1.30", "10.100.0.3", IPPROTO_UDP,
                                               l4(IPPROTO_UDP, 4436, 443, 0, payload({0x40, 0x41, 0x34, 0x80, 9, 9, 9, 9, 9}, 64)))});
    // ICMP echo to VIPs: the balancer answers.
    out.push_back({"icmp4-echo", ipv4("192.168.1.40", "10.100.0.1", IPPROTO_ICMP, icmp4(ICMP_ECHO, 0, htonl(0x00010001), data))});
    out.push_back({"icmp6-echo", ipv6("fc00:1::40", "fc00::2", IPPROTO_ICMPV6, icmp6(ICMPV6_ECHO_REQUEST, 0, htonl(0x00010001), data))});
    // ICMP errors about a VIP's flow (the quoted packet goes from the VIP to the client).
    bytes quoted4 = inner(ipv4("10.100.0.1", "192.168.1.10", IPPROTO_TCP, l4(IPPROTO_TCP, 80, 31337, ack, {})));
    out.push_back({"icmp4-frag-needed", ipv4("192.168.1.1", "10.100.0.1", IPPROTO_ICMP, icmp4(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, htonl(1400), quoted4))});
    bytes quoted6 = inner(ipv6("fc00::2", "fc00:1::10", IPPROTO_TCP, l4(IPPROTO_TCP, 80, 31337, ack, {})));
    out.push_back({"icmp6-too-big", ipv6("fc00:1::1", "fc00::2", IPPROTO_ICMPV6, icmp6(ICMPV6_PKT_TOOBIG, 0, htonl(1400), quoted6))});
    // Encapsulated to the balancer (IPIP, IPv6-in-IPv6, GUE on port 6080): a build with inline
    // decapsulation takes them apart, the default build passes them.
    bytes syn4 = inner(ipv4("192.168.1.50", "10.100.0.1", IPPROTO_TCP, l4(IPPROTO_TCP, 31338, 80, syn, {})));
    bytes syn6 = inner(ipv6("fc00:1::50", "fc00::2", IPPROTO_TCP, l4(IPPROTO_TCP, 31338, 80, syn, {})));
    out.push_back({"ipip4-in", ipv4("192.168.1.1", "10.100.0.1", IPPROTO_IPIP, syn4)});
    out.push_back({"ip6ip6-in", ipv6("fc00:1::1", "fc00::2", IPPROTO_IPV6, syn6)});
    out.push_back({"gue4-in", ipv4("192.168.1.1", "10.100.0.1", IPPROTO_UDP, l4(IPPROTO_UDP, 5000, 6080, 0, syn4))});
    out.push_back({"gue6-in", ipv6("fc00:1::1", "fc00::2", IPPROTO_UDP, l4(IPPROTO_UDP, 5000, 6080, 0, syn6))});
    // Not for a VIP; not Katran's to balance.
    out.push_back({"tcp4-no-vip", ipv4("192.168.1.10", "10.100.0.99", IPPROTO_TCP, l4(IPPROTO_TCP, 31337, 80, syn, {}))});
    out.push_back({"tcp4-vip-other-port", ipv4("192.168.1.10", "10.100.0.1", IPPROTO_TCP, l4(IPPROTO_TCP, 31337, 81, syn, {}))});
    out.push_back({"udp6-no-vip", ipv6("fc00:1::10", "fc00::99", IPPROTO_UDP, l4(IPPROTO_UDP, 1, 2, 0, data))});
    out.push_back({"arp", ether(ETH_P_ARP)});
    // Malformed for Katran.
    out.push_back({"ipv4-fragment", ipv4("192.168.1.10", "10.100.0.1", IPPROTO_TCP, l4(IPPROTO_TCP, 31337, 80, ack, data), 0x2000)});
    out.push_back({"runt", bytes(10, 0xab)});
    bytes truncated = ipv4("192.168.1.10", "10.100.0.1", IPPROTO_TCP, l4(IPPROTO_TCP, 31337, 80, syn, {}));
    truncated.resize(ETH_HLEN + 24);
    out.push_back({"tcp4-truncated", truncated});
    return out;
}

std::string hex(const uint8_t* p, size_t n) {
    std::string s;
    char b[3];
    for (size_t i = 0; i < n; ++i) {
        std::snprintf(b, sizeof b, "%02x", p[i]);
        s += b;
    }
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: katran_replay CONFIG.yaml\n");
        return 2;
    }
    // One CPU: the program's per-core LRU and per-CPU counters are the same ones on every run.
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    sched_setaffinity(0, sizeof one, &one);
    auto cfg = load_config(argv[1]);
    if (!cfg) {
        std::fprintf(stderr, "katran_replay: %s\n", cfg.error().message.c_str());
        return 1;
    }
    if (const char* obj = std::getenv("KATRAN_BPF_OBJ"); obj && *obj) cfg->object = obj;
    auto lb = balancer::open(*cfg);
    if (!lb) {
        std::fprintf(stderr, "katran_replay: %s\n", lb.error().message.c_str());
        return 1;
    }
    auto rep = lb->apply(*cfg);
    if (!rep) {
        std::fprintf(stderr, "katran_replay: %s\n", rep.error().message.c_str());
        return 1;
    }
    int failures = 0;
    for (const auto& p : traffic()) {
        std::vector<uint8_t> out(4096);
        bpf_test_run_opts run = xdprt::testing_support::test_run_opts(p.frame, out);
        int err = bpf_prog_test_run_opts(lb->prog_fd(), &run);
        if (err != 0) {
            // The kernel refuses a frame shorter than an Ethernet header (EINVAL): so must xdprt.
            std::printf("%s: test run refused: %s\n", p.name.c_str(), strerror(-err));
            failures += err != -EINVAL;
            continue;
        }
        std::printf("%s: action %u, %u bytes %s\n", p.name.c_str(), run.retval, run.data_size_out, hex(out.data(), run.data_size_out).c_str());
    }
    for (const auto& v : cfg->vips) {
        auto c = lb->vip_stats(v);
        std::printf("vip %s: %lu packets, %lu bytes\n", v.name().c_str(), c ? (unsigned long)c->packets : 0ul,
                    c ? (unsigned long)c->bytes : 0ul);
        for (const auto& r : v.reals) {
            auto rc = lb->real_stats(r.address);
            std::printf("  real %s: %lu packets, %lu bytes\n", r.address.c_str(), rc ? (unsigned long)rc->packets : 0ul,
                        rc ? (unsigned long)rc->bytes : 0ul);
        }
    }
    return failures ? 1 : 0;
}
