// Per-program expectations over the packet set (see corpus_expect.h). Each check_* function states
// the program's promise from its .bpf.c header comment; layouts of map values follow the structs
// there (offsets are written out next to each read).
#include "corpus_expect.h"

#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "packets.h"

namespace xdprt::corpus {

frame_view inspect(std::span<const uint8_t> f) {
    frame_view v;
    auto be16 = [&](size_t off) { return static_cast<uint16_t>(f[off] << 8 | f[off + 1]); };
    if (f.size() < 14) return v;
    size_t off = 12;
    int type = be16(off);
    off += 2;
    for (int i = 0; i < 2 && (type == 0x8100 || type == 0x88a8); i++) {
        if (f.size() < off + 4) return v;
        v.vids.push_back(be16(off) & 0x0fff);
        type = be16(off + 2);
        off += 4;
    }
    v.ethertype = type;
    v.l3 = off;
    if (type == 0x0800 && f.size() >= off + 20 && (f[off] >> 4) == 4 && (f[off] & 0xf) >= 5 &&
        f.size() >= off + (f[off] & 0xf) * 4u) {
        v.ipv4_ok = true;
        v.ihl = f[off] & 0xf;
        v.tot_len = be16(off + 2);
        v.frag = be16(off + 6);
        v.ttl = f[off + 8];
        v.proto = f[off + 9];
        v.saddr = static_cast<uint32_t>(be16(off + 12)) << 16 | be16(off + 14);
        v.daddr = static_cast<uint32_t>(be16(off + 16)) << 16 | be16(off + 18);
        v.l4 = off + v.ihl * 4u;
    } else if (type == 0x86dd && f.size() >= off + 40 && (f[off] >> 4) == 6) {
        v.ipv6_ok = true;
        v.proto = f[off + 6];
        std::copy_n(f.begin() + off + 8, 16, v.saddr6.begin());
        std::copy_n(f.begin() + off + 24, 16, v.daddr6.begin());
        v.l4 = off + 40;
    }
    return v;
}

namespace {

using bytes = std::vector<uint8_t>;

uint16_t be16(const bytes& b, size_t off) { return static_cast<uint16_t>(b[off] << 8 | b[off + 1]); }

template <class T>
T host_at(const bytes& b, size_t off) {
    T v{};
    if (off + sizeof(T) <= b.size()) std::memcpy(&v, b.data() + off, sizeof(T));
    return v;
}

bytes key32(uint32_t v) {
    bytes k(4);
    std::memcpy(k.data(), &v, 4);
    return k;
}

bytes net32(uint32_t host) { return bytes{uint8_t(host >> 24), uint8_t(host >> 16), uint8_t(host >> 8), uint8_t(host)}; }

bool is_runt(const packet& p) { return p.bytes.size() < 14; }

// The outcome with lookups by packet and map name.
class view {
public:
    explicit view(const outcome& o) : _o(o) {}

    const run_result& of(std::string_view name) const {
        const auto& set = packets();
        for (size_t i = 0; i < set.size(); i++)
            if (set[i].name == name) return _o.runs[i];
        ADD_FAILURE() << "no packet " << name;
        static const run_result none;
        return none;
    }

    uint32_t action(std::string_view name) const { return of(name).retval; }

    // Calls fn(packet, run) for every frame the kernel ran (not the runts).
    template <class Fn>
    void each(Fn&& fn) const {
        const auto& set = packets();
        for (size_t i = 0; i < set.size(); i++)
            if (!is_runt(set[i])) fn(set[i], _o.runs[i]);
    }

    uint64_t frames() const {
        uint64_t n = 0;
        each([&](const packet&, const run_result&) { n++; });
        return n;
    }

    // Maps by name; internal maps (".bss", ".data", ".rodata") by their suffix.
    const map_dump* map(std::string_view name) const {
        for (const map_dump& m : _o.snap) {
            const std::string_view n = m.name;
            if (n == name || (name[0] == '.' && n.size() >= name.size() && n.substr(n.size() - name.size()) == name)) return &m;
        }
        ADD_FAILURE() << "no map " << name;
        return nullptr;
    }

    const bytes* value(std::string_view map_name, const bytes& key) const {
        const map_dump* m = map(map_name);
        if (!m) return nullptr;
        for (const auto& [k, v] : m->entries)
            if (k == key) return &v;
        return nullptr;
    }

    // Slot `idx` of an ARRAY of __u64, summed over CPUs for a PERCPU_ARRAY.
    uint64_t counter(std::string_view map_name, uint32_t idx) const {
        const bytes* v = value(map_name, key32(idx));
        if (!v) {
            ADD_FAILURE() << map_name << "[" << idx << "] missing";
            return 0;
        }
        uint64_t sum = 0;
        for (size_t off = 0; off + 8 <= v->size(); off += 8) sum += host_at<uint64_t>(*v, off);
        return sum;
    }

    // Field at `off` of the value at key `idx` of an ARRAY with one struct per slot.
    template <class T>
    T field(std::string_view map_name, size_t off, uint32_t idx = 0) const {
        const bytes* v = value(map_name, key32(idx));
        if (!v) {
            ADD_FAILURE() << map_name << "[" << idx << "] missing";
            return T{};
        }
        return host_at<T>(*v, off);
    }

private:
    const outcome& _o;
};

bytes swapped_macs(bytes f) {
    std::swap_ranges(f.begin(), f.begin() + 6, f.begin() + 6);
    return f;
}

bool ipv4_header_checksum_ok(const bytes& f, size_t l3, size_t ihl) {
    return f.size() >= l3 + ihl * 4 && inet_checksum(std::span(f).subspan(l3, ihl * 4)) == 0;
}

// --- programs -----------------------------------------------------------------------------------

void check_drop(const view& v) {
    v.each([](const packet& p, const run_result& r) { EXPECT_EQ(r.retval, XDP_DROP) << p.name; });
}

void check_swap_mac(const view& v) {
    v.each([](const packet& p, const run_result& r) {
        const frame_view f = inspect(p.bytes);
        const bool udp = f.ethertype == 0x0800 && f.vids.empty() && p.bytes.size() >= 34 && (p.bytes[14] & 0xf) >= 5 &&
                         p.bytes[23] == IPPROTO_UDP && p.bytes.size() >= 14 + (p.bytes[14] & 0xf) * 4u + 8;
        if (!udp) return;
        EXPECT_EQ(r.retval, XDP_TX) << p.name;
        EXPECT_EQ(r.output, swapped_macs(p.bytes)) << p.name;
    });
}

void check_parse_l2(const view& v) {
    // enum l2_class { RUNT, IPV4, IPV6, ARP, OTHER, LLC, VLAN1, VLAN2, BAD_TAG }
    uint64_t want[9] = {};
    std::map<uint16_t, uint64_t> vids;
    v.each([&](const packet& p, const run_result& r) {
        const frame_view f = inspect(p.bytes);
        if (f.ethertype < 0) {
            want[8]++;
            EXPECT_EQ(r.retval, XDP_DROP) << p.name;
            return;
        }
        EXPECT_EQ(r.retval, XDP_PASS) << p.name;
        if (!f.vids.empty()) {
            want[f.vids.size() == 1 ? 6 : 7]++;
            vids[f.vids[0]]++;
        }
        want[f.ethertype < 0x600 ? 5 : f.ethertype == 0x0800 ? 1 : f.ethertype == 0x86dd ? 2 : f.ethertype == 0x0806 ? 3 : 4]++;
    });
    for (uint32_t k = 0; k < 9; k++) EXPECT_EQ(v.counter("l2_stats", k), want[k]) << "l2_stats[" << k << "]";
    EXPECT_EQ(vids, (std::map<uint16_t, uint64_t>{{100, 4}, {200, 1}, {300, 1}}));
    for (auto [vid, n] : vids) {
        bytes key(2);
        std::memcpy(key.data(), &vid, 2);
        const bytes* got = v.value("vlan_seen", key);
        ASSERT_NE(got, nullptr) << "vlan " << vid;
        EXPECT_EQ(host_at<uint64_t>(*got, 0), n) << "vlan " << vid;
    }
}

void check_parse_ipv4(const view& v) {
    for (const char* p : {"ipv4_ihl4", "ipv4_ihl0", "ipv4_version6", "ipv4_trunc_hdr", "ipv4_trunc_opts", "eth_only_ipv4",
                          "ipv4_totlen_short", "ipv4_totlen_long", "ipv4_opts_overrun", "ipv4_opts_len1", "ipv4_tcp_trunc",
                          "ipv4_udp_trunc", "ipv4_icmp_trunc"})
        EXPECT_EQ(v.action(p), XDP_DROP) << p;
    for (const char* p : {"ipv4_tcp_syn", "ipv4_opts_ihl6", "ipv4_opts_ihl11", "ipv4_opts_ihl15", "ipv4_frag_first",
                          "ipv4_frag_middle", "ipv4_frag_last", "vlan100_ipv4_udp", "qinq_ipv4_tcp", "ipv6_udp_dns", "arp_request"})
        EXPECT_EQ(v.action(p), XDP_PASS) << p;
    // Options of ipv4_opts_ihl6..15, lb_vip80_opts (as ihl6) and the NOP before ipv4_opts_len1's bad option.
    const uint64_t opts[7] = {/*EOL*/ 9, /*NOP*/ 39, /*RR*/ 5, /*TS*/ 2, /*RA*/ 2, /*other*/ 1, /*malformed*/ 2};
    for (uint32_t k = 0; k < 7; k++) EXPECT_EQ(v.counter("opt_stats", k), opts[k]) << "opt_stats[" << k << "]";
    EXPECT_EQ(v.counter("frag_stats", 1), 2u);  // ipv4_frag_first, lb_vip80_frag
    EXPECT_EQ(v.counter("frag_stats", 2), 1u);
    EXPECT_EQ(v.counter("frag_stats", 3), 1u);
    EXPECT_EQ(v.counter("ip_stats", 3), 3u);  // IP_BAD_L4: the three truncated transport headers
}

void check_parse_ipv6(const view& v) {
    for (const char* p : {"ipv6_trunc_hdr", "ipv6_ext_trunc", "ipv6_chain7_udp", "ipv6_tcp_trunc"}) EXPECT_EQ(v.action(p), XDP_DROP) << p;
    for (const char* p : {"ipv6_chain5_udp", "ipv6_ah_udp", "ipv6_frag_later", "ipv6_no_next", "ipv6_hbh_udp", "ipv4_tcp_syn"})
        EXPECT_EQ(v.action(p), XDP_PASS) << p;
    // enum ext_class { HOP, ROUTING, FRAG, DSTOPTS, AH, NONE, TOO_MANY, TRUNC }: counted by hand from
    // packets.cpp (ipv6_chain7_udp counts its first six headers before giving up).
    const uint64_t ext[8] = {5, 2, 3, 8, 1, 1, 1, 2};
    for (uint32_t k = 0; k < 8; k++) EXPECT_EQ(v.counter("ext_stats", k), ext[k]) << "ext_stats[" << k << "]";
    // enum l4_class { TCP, UDP, ICMPV6, OTHER, NONFIRST_FRAG, TRUNC }
    const uint64_t l4[6] = {5, 7, 2, 0, 1, 1};
    for (uint32_t k = 0; k < 6; k++) EXPECT_EQ(v.counter("l4_stats", k), l4[k]) << "l4_stats[" << k << "]";
    const std::map<uint32_t, uint64_t> chains{{0, 9}, {1, 7}, {5, 1}};
    const map_dump* m = v.map("chain_len");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->entries.size(), chains.size());
    for (auto [n, count] : chains) {
        const bytes* got = v.value("chain_len", key32(n));
        ASSERT_NE(got, nullptr) << "chain length " << n;
        EXPECT_EQ(host_at<uint64_t>(*got, 0), count) << "chain length " << n;
    }
}

void check_parse_l4(const view& v) {
    for (const char* p : {"ipv4_tcp_telnet", "ipv4_tcp_trunc", "ipv4_udp_trunc", "ipv4_icmp_trunc", "ipv6_tcp_trunc"})
        EXPECT_EQ(v.action(p), XDP_DROP) << p;
    for (const char* p : {"ipv4_tcp_syn", "ipv4_tcp_ssh_opts", "ipv6_icmp_echo", "ipv4_frag_middle", "lldp"})
        EXPECT_EQ(v.action(p), XDP_PASS) << p;
    auto port_count = [&](uint8_t proto, uint16_t port) -> uint64_t {
        bytes key{proto, 0, 0, 0};
        std::memcpy(key.data() + 2, &port, 2);  // port_h is host order
        const bytes* got = v.value("l4_ports", key);
        return got ? host_at<uint64_t>(*got, 0) : 0;
    };
    EXPECT_EQ(port_count(IPPROTO_UDP, 53), 5u);
    EXPECT_EQ(port_count(IPPROTO_TCP, 23), 1u);
    EXPECT_EQ(port_count(IPPROTO_ICMP, 8 << 8), 1u);
    EXPECT_EQ(port_count(IPPROTO_ICMPV6, 128 << 8), 1u);
    EXPECT_EQ(v.counter("tcp_flags", 2), 2u);  // F_RST: ipv4_tcp_rst, ipv6_tcp_rst
}

void check_firewall(const view& v) {
    for (const char* p : {"fw_blocked_src_tcp", "fw_deny_net_udp", "fw_blocked_port_tcp", "fw_blocked_port_udp",
                          "ipv6_tcp_denied_src", "ipv4_ihl4"})
        EXPECT_EQ(v.action(p), XDP_DROP) << p;
    for (const char* p : {"fw_allow_hole_udp", "ipv4_tcp_syn", "ipv6_tcp_syn", "arp_request", "ipv4_frag_middle"})
        EXPECT_EQ(v.action(p), XDP_PASS) << p;
    const map_dump* hits = v.map("fw_hits");
    ASSERT_NE(hits, nullptr);
    EXPECT_EQ(hits->entries.size(), 5u);
    for (uint32_t rule : {7u, 12u, 33u, 44u, 48u}) {
        const bytes* got = v.value("fw_hits", key32(rule));
        ASSERT_NE(got, nullptr) << "rule " << rule;
        EXPECT_EQ(host_at<uint64_t>(*got, 0), 1u) << "rule " << rule;
    }
    EXPECT_EQ(v.counter("fw_stats", 1), 1u);  // FW_DROP_SRC
    EXPECT_EQ(v.counter("fw_stats", 2), 2u);  // FW_DROP_LPM (v4 and v6)
    EXPECT_EQ(v.counter("fw_stats", 3), 2u);  // FW_DROP_PORT
}

void check_lb_ipip(const view& v) {
    static const uint8_t router_mac[6] = {0x02, 0, 0, 0, 0, 0xfe};
    std::map<std::string, uint32_t> real_of;
    for (const char* name : {"lb_vip80_flow_a", "lb_vip80_flow_a_again", "lb_vip80_flow_b", "lb_vip80_flow_c_tos",
                             "lb_vip53_udp", "lb_vip53_udp_other_port", "lb_vip80_opts", "lb_vip80_large"}) {
        const bytes& in = find_packet(name)->bytes;
        const run_result& r = v.of(name);
        ASSERT_EQ(r.retval, XDP_TX) << name;
        ASSERT_EQ(r.output.size(), in.size() + 20) << name;
        const bytes& out = r.output;
        EXPECT_TRUE(std::equal(out.begin(), out.begin() + 6, router_mac)) << name;
        EXPECT_TRUE(std::equal(out.begin() + 6, out.begin() + 12, in.begin())) << name << ": source MAC = old destination";
        EXPECT_EQ(be16(out, 12), 0x0800) << name;
        EXPECT_EQ(out[14], 0x45) << name;
        EXPECT_EQ(out[15], in[15]) << name << ": TOS copied";
        EXPECT_EQ(be16(out, 16), be16(in, 16) + 20) << name << ": outer total length";
        EXPECT_EQ(out[22], 64) << name;
        EXPECT_EQ(out[23], IPPROTO_IPIP) << name;
        EXPECT_TRUE(ipv4_header_checksum_ok(out, 14, 5)) << name;
        EXPECT_EQ(bytes(out.begin() + 26, out.begin() + 30), net32(addr::tunnel_src)) << name;
        const uint32_t real = static_cast<uint32_t>(be16(out, 30)) << 16 | be16(out, 32);
        EXPECT_GE(real, addr::real_base + 1) << name;
        EXPECT_LE(real, addr::real_base + 4) << name;
        real_of[name] = real;
        EXPECT_TRUE(std::equal(out.begin() + 34, out.end(), in.begin() + 14)) << name << ": inner packet unchanged";
    }
    EXPECT_EQ(real_of["lb_vip80_flow_a"], real_of["lb_vip80_flow_a_again"]) << "a flow keeps its real";
    EXPECT_EQ(real_of["lb_vip53_udp"], real_of["lb_vip53_udp_other_port"]) << "VIP 1 hashes the source only";
    EXPECT_GE(real_of["lb_vip53_udp"], addr::real_base + 3);
    for (const char* p : {"lb_vip_wrong_port", "lb_vip80_frag", "ipv4_tcp_syn", "vlan100_ipv4_tcp", "ipv6_tcp_syn"}) {
        EXPECT_EQ(v.action(p), XDP_PASS) << p;
        EXPECT_EQ(v.of(p).output, find_packet(p)->bytes) << p;
    }
    EXPECT_EQ(v.counter("lb_stats", 0), 8u);  // LB_VIP_HIT
    EXPECT_EQ(v.counter("lb_stats", 1), 7u);  // LB_NEW_FLOW
    EXPECT_EQ(v.counter("lb_stats", 2), 1u);  // LB_FLOW_HIT
    const bytes* flows = v.value("lru_mapping", key32(0));
    ASSERT_NE(flows, nullptr) << "inner flow table";
    // Serialised as (u32 len, key, u32 len, value)*: 4 + 16 + 4 + 8 bytes per flow.
    EXPECT_EQ(flows->size(), 7u * 32) << "seven flows remembered";
}

void check_tail_calls(const view& v) {
    uint64_t ipv4 = 0, ipv6 = 0, miss = 0, tcp = 0;
    v.each([&](const packet& p, const run_result& r) {
        const bytes& b = p.bytes;
        const uint16_t type = be16(b, 12);
        if (type == 0x0800) {
            ipv4++;
            if (b.size() < 34) {
            EXPECT_EQ(r.retval, XDP_DROP) << p.name;
            return;
        }
            if (b[23] == IPPROTO_TCP) tcp++;
        } else if (type == 0x86dd) {
            ipv6++;
        } else {
            miss++;
        }
        if (p.name == "ipv4_tcp_telnet" || p.name == "ipv4_tcp_trunc") {
            EXPECT_EQ(r.retval, XDP_DROP) << p.name;
        } else if (type != 0x0800 || b[23] != IPPROTO_TCP) {
            EXPECT_EQ(r.retval, XDP_PASS) << p.name;
        }
    });
    EXPECT_EQ(v.counter("tail_stats", 0), v.frames());
    EXPECT_EQ(v.counter("tail_stats", 1), ipv4);
    EXPECT_EQ(v.counter("tail_stats", 2), ipv6);
    EXPECT_EQ(v.counter("tail_stats", 3), tcp);
    EXPECT_EQ(v.counter("tail_stats", 4), miss);
    EXPECT_EQ(v.counter("tail_stats", 5), 1u);
    const map_dump* jt = v.map("jmp_table");
    ASSERT_NE(jt, nullptr);
    EXPECT_EQ(jt->entries.size(), 3u);
}

void check_tail_limit(const view& v) {
    v.each([](const packet& p, const run_result& r) {
        EXPECT_EQ(r.retval, XDP_PASS) << p.name;
        EXPECT_EQ(r.output, p.bytes) << p.name;
    });
    // MAX_TAIL_CALL_CNT is 33: the first run plus 33 tail calls.
    EXPECT_EQ(v.counter("depth_hist", 34), v.frames());
}

void check_global_data(const view& v) {
    v.each([](const packet& p, const run_result& r) {
        const frame_view f = inspect(p.bytes);
        bool drop = false;
        if (f.ipv4_ok) {
            drop = f.ttl < 2;
            if (!drop && f.proto == IPPROTO_UDP && p.bytes.size() >= f.l4 + 8) drop = be16(p.bytes, f.l4 + 2) == 53;
        }
        EXPECT_EQ(r.retval, drop ? XDP_DROP : XDP_PASS) << p.name;
    });
}

void check_atomics(const view& v) {
    uint64_t n = 0, add = 0, or_bits = 0, xor_acc = 0, max_len = 0, last = 0;
    uint32_t add32 = 0, or32 = 0;
    v.each([&](const packet& p, const run_result& r) {
        const uint64_t len = p.bytes.size();
        EXPECT_EQ(r.retval, n % 2 ? XDP_DROP : XDP_PASS) << p.name;
        n++;
        add += len;
        or_bits |= 1ull << (len & 63);
        xor_acc ^= len;
        max_len = std::max(max_len, len);
        last = len;
        add32 += static_cast<uint32_t>(len);
        or32 |= 1u << (len & 31);
    });
    // struct atomic_state: add 0, sub 8, or_bits 16, and_bits 24, xor_acc 32, last_len 40, max_len 48,
    // cas_hits 56, add32 64, or32 68, xchg32 72, cas32 76
    EXPECT_EQ(v.field<uint64_t>("atomic_state", 0), add);
    EXPECT_EQ(v.field<uint64_t>("atomic_state", 8), 0 - n);
    EXPECT_EQ(v.field<uint64_t>("atomic_state", 16), or_bits);
    EXPECT_EQ(v.field<uint64_t>("atomic_state", 24), ~or_bits);
    EXPECT_EQ(v.field<uint64_t>("atomic_state", 32), xor_acc);
    EXPECT_EQ(v.field<uint64_t>("atomic_state", 40), last);
    EXPECT_EQ(v.field<uint64_t>("atomic_state", 48), max_len);
    EXPECT_EQ(v.field<uint64_t>("atomic_state", 56), n);
    EXPECT_EQ(v.field<uint32_t>("atomic_state", 64), add32);
    EXPECT_EQ(v.field<uint32_t>("atomic_state", 68), or32);
    EXPECT_EQ(v.field<uint32_t>("atomic_state", 72), n);
    EXPECT_EQ(v.field<uint32_t>("atomic_state", 76), n);
}

void check_ttl_csum(const view& v) {
    uint64_t forwarded = 0;
    v.each([&](const packet& p, const run_result& r) {
        const bytes& b = p.bytes;
        const bool v4 = b.size() >= 34 && be16(b, 12) == 0x0800 && (b[14] >> 4) == 4 && (b[14] & 0xf) >= 5;
        if (!v4) {
            EXPECT_EQ(r.retval, XDP_PASS) << p.name;
            return;
        }
        const size_t ihl = b[14] & 0xf;
        if (!ipv4_header_checksum_ok(b, 14, ihl)) {
            EXPECT_EQ(r.retval, XDP_DROP) << p.name;
            return;
        }
        if (b[22] <= 1) {
            EXPECT_EQ(r.retval, XDP_PASS) << p.name;
            return;
        }
        ASSERT_EQ(r.retval, XDP_TX) << p.name;
        forwarded++;
        bytes want = swapped_macs(b);
        want[22]--;
        ASSERT_EQ(r.output.size(), want.size()) << p.name;
        EXPECT_TRUE(ipv4_header_checksum_ok(r.output, 14, ihl)) << p.name;
        want[24] = r.output[24];  // the checksum, checked above
        want[25] = r.output[25];
        EXPECT_EQ(r.output, want) << p.name;
    });
    EXPECT_EQ(v.action("ipv4_bad_csum"), XDP_DROP);
    EXPECT_EQ(v.action("ipv4_ttl1"), XDP_PASS);
    EXPECT_EQ(v.counter("csum_stats", 0), forwarded);
    EXPECT_GE(forwarded, 40u);
}

void check_icmp_echo(const view& v) {
    {
        const bytes& in = find_packet("ipv4_icmp_echo")->bytes;
        const run_result& r = v.of("ipv4_icmp_echo");
        ASSERT_EQ(r.retval, XDP_TX);
        const bytes& out = r.output;
        ASSERT_EQ(out.size(), in.size());
        const bytes want_macs = swapped_macs(in);
        EXPECT_TRUE(std::equal(out.begin(), out.begin() + 12, want_macs.begin())) << "MACs swapped";
        EXPECT_EQ(bytes(out.begin() + 26, out.begin() + 30), bytes(in.begin() + 30, in.begin() + 34));
        EXPECT_EQ(bytes(out.begin() + 30, out.begin() + 34), bytes(in.begin() + 26, in.begin() + 30));
        EXPECT_EQ(out[22], 64);
        EXPECT_TRUE(ipv4_header_checksum_ok(out, 14, 5));
        EXPECT_EQ(out[34], 0) << "echo reply";
        EXPECT_EQ(inet_checksum(std::span(out).subspan(34)), 0) << "ICMP checksum";
        EXPECT_TRUE(std::equal(out.begin() + 38, out.end(), in.begin() + 38)) << "id, sequence and data kept";
    }
    {
        const bytes& in = find_packet("ipv6_icmp_echo")->bytes;
        const run_result& r = v.of("ipv6_icmp_echo");
        ASSERT_EQ(r.retval, XDP_TX);
        const bytes& out = r.output;
        ASSERT_EQ(out.size(), in.size());
        EXPECT_EQ(out[21], 64) << "hop limit";
        EXPECT_EQ(bytes(out.begin() + 22, out.begin() + 38), bytes(in.begin() + 38, in.begin() + 54));
        EXPECT_EQ(bytes(out.begin() + 38, out.begin() + 54), bytes(in.begin() + 22, in.begin() + 38));
        EXPECT_EQ(out[54], 129) << "echo reply";
        bytes pseudo(out.begin() + 22, out.begin() + 54);
        const uint32_t len = static_cast<uint32_t>(out.size() - 54);
        for (uint8_t b : net32(len)) pseudo.push_back(b);
        for (uint8_t b : net32(IPPROTO_ICMPV6)) pseudo.push_back(b);
        bytes all = pseudo;
        all.insert(all.end(), out.begin() + 54, out.end());
        EXPECT_EQ(inet_checksum(all), 0) << "ICMPv6 checksum";
    }
    EXPECT_EQ(v.action("ipv4_icmp_trunc"), XDP_DROP);
    for (const char* p : {"ipv4_icmp_reply", "ipv4_icmp_unreach", "ipv6_icmp_reply", "ipv4_udp_dns"}) {
        EXPECT_EQ(v.action(p), XDP_PASS) << p;
        EXPECT_EQ(v.of(p).output, find_packet(p)->bytes) << p;
    }
    EXPECT_EQ(v.counter("echo_stats", 0), 1u);
    EXPECT_EQ(v.counter("echo_stats", 1), 1u);
}

void check_adjust_tail(const view& v) {
    uint64_t shrunk = 0, grown = 0, added = 0;
    v.each([&](const packet& p, const run_result& r) {
        const size_t len = p.bytes.size();
        if (len >= 68) {
            EXPECT_EQ(r.retval, XDP_TX) << p.name;
            EXPECT_EQ(r.output, bytes(p.bytes.begin(), p.bytes.end() - 4)) << p.name;
            shrunk++;
        } else if (len < 60) {
            bytes want = p.bytes;
            want.resize(60, 0);
            EXPECT_EQ(r.retval, XDP_TX) << p.name;
            EXPECT_EQ(r.output, want) << p.name;
            grown++;
            added += 60 - len;
        } else {
            EXPECT_EQ(r.retval, XDP_PASS) << p.name;
            EXPECT_EQ(r.output, p.bytes) << p.name;
        }
    });
    EXPECT_EQ(v.counter("tail_stats", 0), shrunk);
    EXPECT_EQ(v.counter("tail_stats", 1), grown);
    EXPECT_EQ(v.counter("tail_stats", 3), 4 * shrunk);
    EXPECT_EQ(v.counter("tail_stats", 4), added);
    EXPECT_EQ(v.counter("tail_stats", 5), 0u);
    EXPECT_EQ(v.field<int64_t>("tail_errors", 0), -EINVAL) << "shrink below the Ethernet header";
    EXPECT_EQ(v.field<int64_t>("tail_errors", 8), -EINVAL) << "grow past the tailroom";
}

void check_adjust_meta(const view& v) {
    v.each([](const packet& p, const run_result& r) {
        EXPECT_EQ(r.retval, XDP_PASS) << p.name;
        EXPECT_EQ(r.output, p.bytes) << p.name;
    });
    // struct meta_result: last (16 bytes), unaligned_rc 16, too_big_rc 24, matched 32, mismatched 40
    EXPECT_EQ(v.field<uint32_t>("meta_result", 0), 0x4d455441u);
    EXPECT_EQ(v.field<int64_t>("meta_result", 16), -EACCES) << "metadata length not a multiple of 4";
    EXPECT_EQ(v.field<int64_t>("meta_result", 24), -EINVAL) << "metadata past the headroom";
    EXPECT_EQ(v.field<uint64_t>("meta_result", 32), v.frames());
    EXPECT_EQ(v.field<uint64_t>("meta_result", 40), 0u);
}

void check_vlan_tag(const view& v) {
    v.each([](const packet& p, const run_result& r) {
        const bytes& b = p.bytes;
        const uint16_t type = be16(b, 12);
        if (type == 0x0800 || type == 0x86dd) {
            bytes want(b.begin(), b.begin() + 12);
            for (uint8_t x : {0x81, 0x00, 0x00, 42}) want.push_back(x);
            want.insert(want.end(), b.begin() + 12, b.end());
            EXPECT_EQ(r.retval, XDP_TX) << p.name;
            EXPECT_EQ(r.output, want) << p.name;
        } else if ((type == 0x8100 || type == 0x88a8) && b.size() >= 18 && be16(b, 16) != 0x8100 && be16(b, 16) != 0x88a8) {
            bytes want(b.begin(), b.begin() + 12);
            want.insert(want.end(), b.begin() + 16, b.end());
            EXPECT_EQ(r.retval, XDP_TX) << p.name;
            EXPECT_EQ(r.output, want) << p.name;
        } else {
            EXPECT_EQ(r.retval, XDP_PASS) << p.name;
            EXPECT_EQ(r.output, b) << p.name;
        }
    });
    EXPECT_EQ(v.field<int64_t>("head_error", 0), -EINVAL);
}

void check_bytes(const view& v) {
    uint64_t marked = 0;
    const packet* last = nullptr;
    v.each([&](const packet& p, const run_result& r) {
        last = &p;
        const bytes& b = p.bytes;
        if (b.size() < 18) {
            EXPECT_EQ(r.retval, XDP_PASS) << p.name;
            return;
        }
        bytes want = swapped_macs(b);
        if (b.size() >= 46) {
            std::memcpy(want.data() + 42, "XDPR", 4);
            marked++;
        }
        EXPECT_EQ(r.retval, XDP_TX) << p.name;
        EXPECT_EQ(r.output, want) << p.name;
    });
    // struct bytes_state: last_tail 0, last_len 4, load_past_end 8, store_past_end 16, marked 24
    ASSERT_NE(last, nullptr);
    EXPECT_EQ(v.field<uint32_t>("bytes_state", 0), host_at<uint32_t>(last->bytes, last->bytes.size() - 4));
    EXPECT_EQ(v.field<uint32_t>("bytes_state", 4), last->bytes.size());
    EXPECT_EQ(v.field<int64_t>("bytes_state", 8), -EINVAL);
    EXPECT_EQ(v.field<int64_t>("bytes_state", 16), -EINVAL);
    EXPECT_EQ(v.field<uint64_t>("bytes_state", 24), marked);
}

void check_redirect(const view& v) {
    v.each([](const packet& p, const run_result& r) {
        const frame_view f = inspect(p.bytes);
        const uint32_t want = !f.ipv4_ok ? XDP_PASS : f.proto == IPPROTO_UDP ? XDP_REDIRECT : f.proto == IPPROTO_TCP ? XDP_ABORTED : XDP_PASS;
        EXPECT_EQ(r.retval, want) << p.name;
    });
}

void check_devmap(const view& v) {
    v.each([](const packet& p, const run_result& r) {
        const frame_view f = inspect(p.bytes);
        uint32_t want = XDP_PASS;
        if (f.ethertype == 0x0800) want = !f.ipv4_ok ? XDP_DROP : (f.daddr & 7) == 2 ? XDP_REDIRECT : XDP_PASS;
        if (f.ethertype == 0x86dd) want = !f.ipv6_ok ? XDP_DROP : f.daddr6[15] == 2 ? XDP_REDIRECT : XDP_DROP;
        EXPECT_EQ(r.retval, want) << p.name;
    });
    EXPECT_NE(v.value("tx_ports", key32(2)), nullptr) << "lo in DEVMAP slot 2";
    EXPECT_NE(v.value("tx_ports_hash", key32(2)), nullptr) << "lo in DEVMAP_HASH key 2";
}

void check_cpumap(const view& v) {
    v.each([](const packet& p, const run_result& r) {
        const frame_view f = inspect(p.bytes);
        const bool tcp = (f.ipv4_ok || f.ipv6_ok) && f.proto == IPPROTO_TCP;
        EXPECT_EQ(r.retval, tcp ? XDP_REDIRECT : XDP_PASS) << p.name;
    });
}

void check_xskmap(const view& v) {
    v.each([](const packet& p, const run_result& r) { EXPECT_EQ(r.retval, XDP_PASS) << p.name; });
    EXPECT_EQ(v.counter("xsk_stats", 0), 1u);  // ipv4_udp_vxlan
    EXPECT_EQ(v.counter("xsk_stats", 1), 0u);
}

void check_ringbuf(const view& v) {
    std::vector<bytes> want;
    uint64_t discarded = 0;
    v.each([&](const packet& p, const run_result& r) {
        EXPECT_EQ(r.retval, XDP_PASS) << p.name;
        const frame_view f = inspect(p.bytes);
        // struct event: kind 0, len 4, src 8 (16 bytes), proto 24, pad to 32
        bytes e(32, 0);
        const uint32_t len = static_cast<uint32_t>(p.bytes.size());
        std::memcpy(e.data() + 4, &len, 4);
        if (f.ipv4_ok) {
            e[0] = 4;
            std::copy_n(p.bytes.begin() + f.l3 + 12, 4, e.begin() + 8);
        } else if (f.ipv6_ok) {
            e[0] = 6;
            std::copy_n(f.saddr6.begin(), 16, e.begin() + 8);
        } else {
            discarded++;
            return;
        }
        e[24] = f.proto;
        want.push_back(e);
    });
    const map_dump* m = v.map("events");
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(m->entries.size(), want.size());
    for (size_t i = 0; i < want.size(); i++) EXPECT_EQ(m->entries[i].second, want[i]) << "record " << i;
    // struct rb_state: submitted 0, output 8, discarded 16, full 24, ring_size 32, had_unconsumed 40
    EXPECT_EQ(v.field<uint64_t>("rb_state", 16), discarded);
    EXPECT_EQ(v.field<uint64_t>("rb_state", 24), 0u);
    EXPECT_EQ(v.field<uint64_t>("rb_state", 32), 16u * 1024);
    EXPECT_EQ(v.field<uint64_t>("rb_state", 40), v.frames());
}

void check_perf_event(const view& v) {
    v.each([](const packet& p, const run_result& r) { EXPECT_EQ(r.retval, XDP_PASS) << p.name; });
    // struct perf_result: last_rc 0, ok 8, failed 16
    EXPECT_EQ(v.field<int64_t>("perf_result", 0), -ENOENT) << "no perf event in the CPU's slot";
    EXPECT_EQ(v.field<uint64_t>("perf_result", 8), 0u);
    EXPECT_EQ(v.field<uint64_t>("perf_result", 16), v.frames());
}

void check_queue_stack(const view& v) {
    std::deque<uint32_t> queue;
    std::vector<uint32_t> stack;
    int64_t stack_push_rc = 0, queue_pop_rc = 0, stack_pop_rc = 0;
    uint64_t stack_full = 0;
    v.each([&](const packet& p, const run_result& r) {
        EXPECT_EQ(r.retval, XDP_PASS) << p.name;
        const frame_view f = inspect(p.bytes);
        if (f.ethertype == 0x0800 && f.ipv4_ok) {
            if (queue.size() == 8) queue.pop_front();  // BPF_EXIST: the oldest makes room
            queue.push_back(f.saddr);
            stack_push_rc = stack.size() == 8 ? -E2BIG : 0;
            if (stack_push_rc) stack_full++;
            else stack.push_back(f.saddr);
        } else if (f.ethertype == 0x86dd) {
            queue_pop_rc = queue.empty() ? -ENOENT : 0;
            if (!queue.empty()) queue.pop_front();
            stack_pop_rc = stack.empty() ? -ENOENT : 0;
            if (!stack.empty()) stack.pop_back();
        }
    });
    auto values = [&](const char* name) {
        std::vector<uint32_t> out;
        if (const map_dump* m = v.map(name))
            for (const auto& kv : m->entries) out.push_back(host_at<uint32_t>(kv.second, 0));
        return out;
    };
    EXPECT_EQ(values("src_queue"), std::vector<uint32_t>(queue.begin(), queue.end())) << "queue pops oldest first";
    EXPECT_EQ(values("src_stack"), std::vector<uint32_t>(stack.rbegin(), stack.rend())) << "stack pops newest first";
    // struct qs_state: queue_push_rc 0, stack_push_rc 8, queue_pop_rc 16, stack_pop_rc 24, ..., stack_full 64
    EXPECT_EQ(v.field<int64_t>("qs_state", 8), stack_push_rc);
    EXPECT_EQ(v.field<int64_t>("qs_state", 16), queue_pop_rc);
    EXPECT_EQ(v.field<int64_t>("qs_state", 24), stack_pop_rc);
    EXPECT_EQ(v.field<uint64_t>("qs_state", 64), stack_full);
}

void check_bloom(const view& v) {
    const std::set<uint32_t> allowed{addr::client1, addr::client3, addr::allow_hole};
    std::set<uint32_t> seen;
    uint64_t ok = 0, fresh = 0, repeat = 0;
    v.each([&](const packet& p, const run_result& r) {
        const frame_view f = inspect(p.bytes);
        if (!f.ipv4_ok) {
            EXPECT_EQ(r.retval, XDP_PASS) << p.name;
            return;
        }
        if (allowed.count(f.saddr)) {
            ok++;
            {
            EXPECT_EQ(r.retval, XDP_PASS) << p.name;
            return;
        }
        }
        EXPECT_EQ(r.retval, XDP_DROP) << p.name;
        (seen.insert(f.saddr).second ? fresh : repeat)++;
    });
    EXPECT_EQ(v.counter("bloom_stats", 0), ok);
    EXPECT_EQ(v.counter("bloom_stats", 1), fresh);
    EXPECT_EQ(v.counter("bloom_stats", 2), repeat);
    for (uint32_t a : {addr::client1, addr::client3, addr::allow_hole})
        EXPECT_EQ(*v.value("allowed", net32(a)), bytes{1}) << std::hex << a;
    for (uint32_t a : seen) EXPECT_EQ(*v.value("seen", net32(a)), bytes{1}) << std::hex << a;
    EXPECT_EQ(*v.value("seen", net32(0x08080808)), bytes{0});
    EXPECT_EQ(*v.value("allowed", net32(0x01020304)), bytes{0});
}

void check_flow_stats(const view& v) {
    v.each([](const packet& p, const run_result& r) { EXPECT_EQ(r.retval, XDP_PASS) << p.name; });
    // struct flow_result: created 0, ended 8, last_delete_rc 16
    EXPECT_EQ(v.field<uint64_t>("flow_result", 8), 3u);  // ipv4_tcp_fin, ipv4_tcp_rst, ipv6_tcp_rst
    EXPECT_EQ(v.field<int64_t>("flow_result", 16), 0) << "ipv6_tcp_rst ends a flow that exists";
    const map_dump* m = v.map("flows");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->entries.size(), v.field<uint64_t>("flow_result", 0) - 2) << "two of the created flows were ended";
}

void check_src_lru(const view& v) {
    std::map<uint32_t, uint64_t> seen;
    v.each([&](const packet& p, const run_result& r) {
        const frame_view f = inspect(p.bytes);
        uint32_t src;
        if (f.ipv4_ok) {
            src = f.saddr;
        } else if (f.ipv6_ok) {
            uint32_t w[4];
            std::memcpy(w, f.saddr6.data(), 16);
            src = __builtin_bswap32(w[0] ^ w[1] ^ w[2] ^ w[3]);
        } else {
            {
            EXPECT_EQ(r.retval, XDP_PASS) << p.name;
            return;
        }
        }
        EXPECT_EQ(r.retval, ++seen[src] > 3 ? XDP_DROP : XDP_PASS) << p.name;
    });
    const map_dump* m = v.map("src_stats");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->entries.size(), seen.size());
    for (auto [src, n] : seen) {
        const bytes* got = v.value("src_stats", net32(src));
        ASSERT_NE(got, nullptr) << std::hex << src;
        uint64_t packets = 0;
        for (size_t off = 0; off + 16 <= got->size(); off += 16) packets += host_at<uint64_t>(*got, off);
        EXPECT_EQ(packets, n) << std::hex << src;
    }
}

void check_spin_lock(const view& v) {
    uint64_t n = 0, max_len = 0, min_len = ~0ull, bytes_total = 0;
    v.each([&](const packet& p, const run_result& r) {
        const uint64_t len = p.bytes.size();
        n++;
        bytes_total += len;
        min_len = std::min(min_len, len);
        EXPECT_EQ(r.retval, len > max_len && n > 1 ? XDP_DROP : XDP_PASS) << p.name;
        max_len = std::max(max_len, len);
    });
    // struct locked_totals: lock 0, pad 4, packets 8, bytes 16, min_len 24, max_len 32
    EXPECT_EQ(v.field<uint32_t>("totals", 0), 0u) << "lock word reads as zero";
    EXPECT_EQ(v.field<uint64_t>("totals", 8), n);
    EXPECT_EQ(v.field<uint64_t>("totals", 16), bytes_total);
    EXPECT_EQ(v.field<uint64_t>("totals", 24), min_len);
    EXPECT_EQ(v.field<uint64_t>("totals", 32), max_len);
}

void check_loop_helpers(const view& v) {
    uint32_t adler = 0, iterations = 0;
    uint64_t weighted = 0;
    v.each([&](const packet& p, const run_result& r) {
        const bytes& b = p.bytes;
        const uint32_t len = b.size() < 64 ? 14 : 64;
        uint32_t a = 1, s = 0, i = 0;
        for (; i < 64; i++) {
            if (i >= len || b[i] == 0xff) {
                i++;  // bpf_loop counts the iteration whose callback returned 1
                break;
            }
            a = (a + b[i]) % 65521;
            s = (s + a) % 65521;
        }
        iterations = i;
        adler = s << 16 | a;
        weighted = 0;
        for (uint32_t slot = 0; slot <= 12; slot++)
            if (adler & (1u << slot)) weighted += slot * slot + 1;
        EXPECT_EQ(r.retval, weighted & 1 ? XDP_DROP : XDP_PASS) << p.name;
    });
    // struct loop_result: adler 0, iterations 4, weighted 8, array_visits 16, hash_sum 24, hash_visits 32
    EXPECT_EQ(v.field<uint32_t>("loop_result", 0), adler);
    EXPECT_EQ(v.field<uint32_t>("loop_result", 4), iterations);
    EXPECT_EQ(v.field<uint64_t>("loop_result", 8), weighted);
    EXPECT_EQ(v.field<uint64_t>("loop_result", 16), 13 * v.frames());
    EXPECT_EQ(v.field<uint64_t>("loop_result", 24), 5u * 80 + 7u * (443 & 0xff) + 11u * 53);
    EXPECT_EQ(v.field<uint64_t>("loop_result", 32), 4 * v.frames());
}

void check_env(const view& v) {
    v.each([](const packet& p, const run_result& r) { EXPECT_EQ(r.retval, XDP_PASS) << p.name; });
    for (uint32_t k = 0; k < 9; k++) EXPECT_EQ(v.counter("env_checks", k), v.frames()) << "check " << k;
}

void check_tenants(const view& v) {
    const std::map<uint32_t, std::set<uint32_t>> lists{{0, {addr::server, addr::vip_tcp}}, {100, {addr::server}}};
    std::map<std::pair<uint32_t, uint32_t>, uint64_t> hits;
    v.each([&](const packet& p, const run_result& r) {
        const frame_view f = inspect(p.bytes);
        if (!f.ipv4_ok) {
            EXPECT_EQ(r.retval, XDP_PASS) << p.name;
            return;
        }
        const uint32_t tenant = f.vids.empty() ? 0 : f.vids[0];
        auto it = lists.find(tenant);
        const bool ok = it != lists.end() && it->second.count(f.daddr);
        EXPECT_EQ(r.retval, ok ? XDP_PASS : XDP_DROP) << p.name;
        if (ok) hits[{tenant, f.daddr}]++;
    });
    for (const auto& [tenant, allowed] : lists) {
        const bytes* flat = v.value("tenants", key32(tenant));
        ASSERT_NE(flat, nullptr) << "tenant " << tenant;
        // (u32 4, key, u32 8, hits) per destination, sorted by key bytes.
        ASSERT_EQ(flat->size(), allowed.size() * 20) << "tenant " << tenant;
        for (size_t off = 0; off < flat->size(); off += 20) {
            const bytes key(flat->begin() + off + 4, flat->begin() + off + 8);
            const uint32_t dst = static_cast<uint32_t>(key[0]) << 24 | key[1] << 16 | key[2] << 8 | key[3];
            EXPECT_EQ(host_at<uint64_t>(*flat, off + 12), (hits[{tenant, dst}])) << "tenant " << tenant << std::hex << " dst " << dst;
        }
    }
}

using check_fn = void (*)(const view&);

const std::map<std::string_view, check_fn>& checks() {
    static const std::map<std::string_view, check_fn> m = {
        {"drop", check_drop},
        {"swap_mac", check_swap_mac},
        {"parse_l2", check_parse_l2},
        {"parse_ipv4", check_parse_ipv4},
        {"parse_ipv6", check_parse_ipv6},
        {"parse_l4", check_parse_l4},
        {"firewall", check_firewall},
        {"lb_ipip", check_lb_ipip},
        {"tail_calls", check_tail_calls},
        {"tail_limit", check_tail_limit},
        {"global_data", check_global_data},
        {"atomics", check_atomics},
        {"ttl_csum", check_ttl_csum},
        {"icmp_echo", check_icmp_echo},
        {"adjust_tail", check_adjust_tail},
        {"adjust_meta", check_adjust_meta},
        {"vlan_tag", check_vlan_tag},
        {"bytes", check_bytes},
        {"redirect", check_redirect},
        {"devmap", check_devmap},
        {"cpumap", check_cpumap},
        {"xskmap", check_xskmap},
        {"ringbuf", check_ringbuf},
        {"perf_event", check_perf_event},
        {"queue_stack", check_queue_stack},
        {"bloom", check_bloom},
        {"flow_stats", check_flow_stats},
        {"src_lru", check_src_lru},
        {"spin_lock", check_spin_lock},
        {"loop_helpers", check_loop_helpers},
        {"env", check_env},
        {"tenants", check_tenants},
    };
    return m;
}

}  // namespace

void check_expectations(const entry& e, const outcome& o) {
    auto it = checks().find(e.name);
    if (it != checks().end()) it->second(view(o));
}

}  // namespace xdprt::corpus
