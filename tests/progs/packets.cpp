// Builds the named packet set: small header builders (network byte order written byte by byte, so
// the host's endianness never matters) and the list itself, grouped as in packets.h.
#include "packets.h"

#include <algorithm>
#include <utility>

// Headers below are described with designated initializers over members that all have defaults;
// GCC 12 still warns about every member left out, which is the point of the defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace xdprt::corpus {
namespace {

using bytes = std::vector<uint8_t>;

constexpr uint16_t eth_ipv4 = 0x0800;
constexpr uint16_t eth_ipv6 = 0x86dd;
constexpr uint16_t eth_arp = 0x0806;
constexpr uint16_t eth_8021q = 0x8100;
constexpr uint16_t eth_8021ad = 0x88a8;
constexpr uint16_t eth_lldp = 0x88cc;

constexpr uint8_t ip_icmp = 1, ip_ipip = 4, ip_tcp = 6, ip_udp = 17, ip_gre = 47, ip_icmpv6 = 58;
constexpr uint8_t ip6_hop = 0, ip6_routing = 43, ip6_frag = 44, ip6_ah = 51, ip6_none = 59, ip6_dstopts = 60;

constexpr uint8_t tcp_fin = 0x01, tcp_syn = 0x02, tcp_rst = 0x04, tcp_psh = 0x08, tcp_ack = 0x10;

constexpr uint16_t ip_mf = 0x2000;

void put16(bytes& b, uint16_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}

void put32(bytes& b, uint32_t v) {
    put16(b, static_cast<uint16_t>(v >> 16));
    put16(b, static_cast<uint16_t>(v));
}

void set16(bytes& b, size_t off, uint16_t v) {
    b[off] = static_cast<uint8_t>(v >> 8);
    b[off + 1] = static_cast<uint8_t>(v);
}

void append(bytes& b, std::span<const uint8_t> more) { b.insert(b.end(), more.begin(), more.end()); }

// Deterministic payload bytes; `seed` keeps different packets' payloads apart.
bytes payload(size_t n, uint8_t seed = 0) {
    bytes p(n);
    for (size_t i = 0; i < n; i++) p[i] = static_cast<uint8_t>(i * 7 + 3 + seed);
    return p;
}

uint32_t sum16(std::span<const uint8_t> b, uint32_t sum) {
    for (size_t i = 0; i + 1 < b.size(); i += 2) sum += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
    if (b.size() % 2) sum += static_cast<uint32_t>(b.back() << 8);
    return sum;
}

// A VLAN tag: the TPID that announces it and the VLAN id.
struct tag {
    uint16_t tpid;
    uint16_t vid;
};

bytes eth(uint16_t type, std::span<const uint8_t> body, std::initializer_list<tag> tags = {}) {
    bytes f(mac_server, mac_server + 6);
    f.insert(f.end(), mac_client, mac_client + 6);
    for (const tag& t : tags) {
        put16(f, t.tpid);
        put16(f, t.vid);
    }
    put16(f, type);
    append(f, body);
    return f;
}

// Transport headers with a zero checksum; ipv4()/ipv6() fill it in when the segment is complete.
bytes tcp(uint16_t sport, uint16_t dport, uint8_t flags, size_t data_len, bytes options = {}) {
    while (options.size() % 4) options.push_back(1);  // NOP padding
    bytes t;
    put16(t, sport);
    put16(t, dport);
    put32(t, 1000);                                 // seq
    put32(t, (flags & tcp_ack) ? 2000 : 0);         // ack
    t.push_back(static_cast<uint8_t>((5 + options.size() / 4) << 4));
    t.push_back(flags);
    put16(t, 65535);                                // window
    put16(t, 0);                                    // checksum
    put16(t, 0);                                    // urgent pointer
    append(t, options);
    append(t, payload(data_len, flags));
    return t;
}

bytes udp(uint16_t sport, uint16_t dport, size_t data_len) {
    bytes u;
    put16(u, sport);
    put16(u, dport);
    put16(u, static_cast<uint16_t>(8 + data_len));
    put16(u, 0);
    append(u, payload(data_len, 0x55));
    return u;
}

// ICMPv4 echo-shaped message with its checksum (ICMPv4 has no pseudo-header).
bytes icmp4(uint8_t type, uint8_t code, size_t data_len) {
    bytes m{type, code, 0, 0};
    put16(m, 0x1234);  // id
    put16(m, 1);       // sequence
    append(m, payload(data_len, 0x11));
    set16(m, 2, inet_checksum(m));
    return m;
}

// ICMPv6 echo-shaped message, checksum filled in by ipv6().
bytes icmp6(uint8_t type, size_t data_len) {
    bytes m{type, 0, 0, 0};
    put16(m, 0x4321);
    put16(m, 1);
    append(m, payload(data_len, 0x22));
    return m;
}

struct v4 {
    uint32_t src = addr::client1;
    uint32_t dst = addr::server;
    uint8_t proto = ip_udp;
    uint8_t ttl = 64;
    uint8_t tos = 0;
    uint16_t id = 1;
    uint16_t frag = 0;   // flags and offset, host order
    bytes options;       // padded with EOL to a multiple of 4
};

size_t l4_checksum_offset(uint8_t proto) {
    return proto == ip_tcp ? 16 : proto == ip_udp ? 6 : proto == ip_icmpv6 ? 2 : 0;
}

bytes ipv4(const v4& h, std::span<const uint8_t> l4) {
    bytes opts = h.options;
    while (opts.size() % 4) opts.push_back(0);  // EOL padding
    const size_t hlen = 20 + opts.size();
    bytes p;
    p.push_back(static_cast<uint8_t>(0x40 | (hlen / 4)));
    p.push_back(h.tos);
    put16(p, static_cast<uint16_t>(hlen + l4.size()));
    put16(p, h.id);
    put16(p, h.frag);
    p.push_back(h.ttl);
    p.push_back(h.proto);
    put16(p, 0);
    put32(p, h.src);
    put32(p, h.dst);
    append(p, opts);
    set16(p, 10, inet_checksum(std::span(p).first(hlen)));
    bytes seg(l4.begin(), l4.end());
    const size_t csum_off = l4_checksum_offset(h.proto);
    if (h.frag == 0 && csum_off && seg.size() >= csum_off + 2) {
        bytes pseudo;
        put32(pseudo, h.src);
        put32(pseudo, h.dst);
        put16(pseudo, h.proto);
        put16(pseudo, static_cast<uint16_t>(seg.size()));
        uint16_t c = inet_checksum(seg, sum16(pseudo, 0));
        if (h.proto == ip_udp && c == 0) c = 0xffff;
        set16(seg, csum_off, c);
    }
    append(p, seg);
    return p;
}

// IPv6 with `exts` (extension headers, already chained) before an upper-layer `l4` of protocol
// `l4_proto`, whose checksum is computed when it has a checksum field.
bytes ipv6(std::span<const uint8_t> src, std::span<const uint8_t> dst, uint8_t first_next, std::span<const uint8_t> exts,
           uint8_t l4_proto, std::span<const uint8_t> l4) {
    bytes p{0x60, 0, 0, 0};
    put16(p, static_cast<uint16_t>(exts.size() + l4.size()));
    p.push_back(first_next);
    p.push_back(64);
    append(p, src);
    append(p, dst);
    append(p, exts);
    bytes seg(l4.begin(), l4.end());
    const size_t csum_off = l4_checksum_offset(l4_proto);
    if (csum_off && seg.size() >= csum_off + 2) {
        bytes pseudo(src.begin(), src.end());
        append(pseudo, dst);
        put32(pseudo, static_cast<uint32_t>(seg.size()));
        put32(pseudo, l4_proto);
        set16(seg, csum_off, inet_checksum(seg, sum16(pseudo, 0)));
    }
    append(p, seg);
    return p;
}

bytes ipv6_simple(uint8_t src_last, uint8_t dst_last, uint8_t proto, std::span<const uint8_t> l4) {
    return ipv6(ipv6_addr(src_last), ipv6_addr(dst_last), proto, {}, proto, l4);
}

// Hop-by-hop or destination options header of `len` bytes (a multiple of 8), padded with PadN.
bytes ext_opts(uint8_t next, size_t len) {
    bytes e{next, static_cast<uint8_t>(len / 8 - 1), 1, static_cast<uint8_t>(len - 4)};
    e.resize(len, 0);
    return e;
}

// Type 2 routing header (RFC 6275): one address, segments left 1.
bytes ext_routing(uint8_t next) {
    bytes e{next, 2, 2, 1, 0, 0, 0, 0};
    append(e, ipv6_addr(0x99));
    return e;
}

bytes ext_frag(uint8_t next, uint16_t offset_units, bool more) {
    bytes e{next, 0};
    put16(e, static_cast<uint16_t>(offset_units << 3 | (more ? 1 : 0)));
    put32(e, 0xcafe0001);
    return e;
}

// Authentication header with a 12-byte ICV: 24 bytes, payload length field (24 / 4) - 2 = 4.
bytes ext_ah(uint8_t next) {
    bytes e{next, 4, 0, 0};
    put32(e, 0x100);  // SPI
    put32(e, 1);      // sequence
    e.resize(24, 0xab);
    return e;
}

bytes concat(std::initializer_list<bytes> parts) {
    bytes out;
    for (const bytes& p : parts) append(out, p);
    return out;
}

bytes arp_request() {
    bytes a;
    put16(a, 1);         // Ethernet
    put16(a, eth_ipv4);  // IPv4
    a.push_back(6);
    a.push_back(4);
    put16(a, 1);  // request
    a.insert(a.end(), mac_client, mac_client + 6);
    put32(a, addr::client1);
    a.insert(a.end(), 6, 0);
    put32(a, addr::server);
    bytes f = eth(eth_arp, a);
    f[0] = f[1] = f[2] = f[3] = f[4] = f[5] = 0xff;
    return f;
}

// Options for IHL 6..15, each filling (ihl - 5) * 4 bytes exactly (RFC 791 option formats).
bytes ipv4_options_for(int ihl) {
    auto rr = [](int addrs) {  // record route with `addrs` slots, pointer at the first
        bytes o{7, static_cast<uint8_t>(3 + 4 * addrs), 4};
        o.resize(o.size() + 4 * addrs, 0);
        return o;
    };
    auto ts = [](int stamps) {  // timestamp, flag 0 (timestamps only)
        bytes o{68, static_cast<uint8_t>(4 + 4 * stamps), 5, 0};
        o.resize(o.size() + 4 * stamps, 0);
        return o;
    };
    const bytes ra{148, 4, 0, 0};  // router alert
    const bytes nop{1}, eol{0};
    switch (ihl) {
    case 6: return concat({nop, nop, nop, eol});
    case 7: return concat({ra, nop, nop, nop, eol});
    case 8: return concat({rr(2), eol});
    case 9: return concat({ts(2), nop, nop, nop, eol});
    case 10: return concat({rr(4), eol});
    case 11: return bytes(24, 1);  // 24 NOPs
    case 12: return concat({ra, rr(5), eol});
    case 13: return ts(7);
    case 14: return concat({bytes{0x99, 6, 0, 0, 0, 0}, rr(6), nop, nop, eol});
    default: return concat({rr(9), eol});
    }
}

// Cuts an IPv4 frame (untagged) to `frame_len` bytes and makes tot_len and the header checksum match
// the cut, so that only the transport header is short.
bytes cut_ipv4_l4(bytes f, size_t frame_len) {
    f.resize(frame_len);
    set16(f, 14 + 2, static_cast<uint16_t>(frame_len - 14));
    set16(f, 14 + 10, 0);
    const size_t hlen = (f[14] & 0xf) * 4u;
    set16(f, 14 + 10, inet_checksum(std::span(f).subspan(14, hlen)));
    return f;
}

bytes cut(bytes f, size_t len) {
    f.resize(len);
    return f;
}

// Rewrites IPv4 header byte `off` of an untagged frame and, unless `keep_checksum`, fixes the checksum.
bytes patch_ipv4(bytes f, size_t off, uint8_t value) {
    f[14 + off] = value;
    set16(f, 14 + 10, 0);
    set16(f, 14 + 10, inet_checksum(std::span(f).subspan(14, 20)));
    return f;
}

std::vector<packet> build() {
    std::vector<packet> s;
    auto add = [&](std::string name, bytes b) { s.push_back(packet{std::move(name), std::move(b)}); };
    const bytes v6_1 = ipv6_addr(1), v6_2 = ipv6_addr(2);

    // Runts and non-IP.
    add("runt_0", {});
    add("runt_1", {0x02});
    add("runt_13", cut(eth(eth_ipv4, {}), 13));
    add("eth_only_ipv4", eth(eth_ipv4, {}));
    add("arp_request", arp_request());
    add("lldp", eth(eth_lldp, payload(46, 0x33)));
    {
        bytes llc{0xaa, 0xaa, 0x03, 0, 0, 0};
        append(llc, payload(40, 0x44));
        add("llc_8023", eth(static_cast<uint16_t>(llc.size()), llc));
    }

    // Valid IPv4.
    add("ipv4_tcp_syn", eth(eth_ipv4, ipv4({.proto = ip_tcp}, tcp(40000, 80, tcp_syn, 0))));
    add("ipv4_tcp_data", eth(eth_ipv4, ipv4({.proto = ip_tcp}, tcp(40000, 80, tcp_ack | tcp_psh, 100))));
    add("ipv4_tcp_fin", eth(eth_ipv4, ipv4({.proto = ip_tcp}, tcp(40000, 80, tcp_fin | tcp_ack, 0))));
    add("ipv4_tcp_rst", eth(eth_ipv4, ipv4({.src = addr::client3, .proto = ip_tcp}, tcp(40001, 443, tcp_rst, 0))));
    add("ipv4_tcp_telnet", eth(eth_ipv4, ipv4({.proto = ip_tcp}, tcp(40002, 23, tcp_syn, 0))));
    {
        const bytes opts{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};  // MSS, SACK ok, TS, WS
        add("ipv4_tcp_ssh_opts", eth(eth_ipv4, ipv4({.proto = ip_tcp}, tcp(40003, 22, tcp_syn, 0, opts))));
    }
    add("ipv4_udp_dns", eth(eth_ipv4, ipv4({}, udp(5353, 53, 32))));
    add("ipv4_udp_vxlan", eth(eth_ipv4, ipv4({.src = addr::client3}, udp(12345, 4789, 50))));
    add("ipv4_udp_small", eth(eth_ipv4, ipv4({}, udp(1000, 2000, 2))));
    add("ipv4_icmp_echo", eth(eth_ipv4, ipv4({.proto = ip_icmp}, icmp4(8, 0, 56))));
    add("ipv4_icmp_reply", eth(eth_ipv4, ipv4({.src = addr::server, .dst = addr::client1, .proto = ip_icmp}, icmp4(0, 0, 56))));
    add("ipv4_icmp_unreach", eth(eth_ipv4, ipv4({.proto = ip_icmp}, icmp4(3, 3, 28))));
    add("ipv4_gre", eth(eth_ipv4, ipv4({.proto = ip_gre}, payload(8, 0x66))));
    add("ipv4_ipip", eth(eth_ipv4, ipv4({.proto = ip_ipip}, ipv4({.src = addr::client3}, udp(1, 2, 4)))));
    add("ipv4_ttl1", eth(eth_ipv4, ipv4({.ttl = 1}, udp(5000, 6000, 20))));
    {
        bytes f = eth(eth_ipv4, ipv4({}, udp(5000, 6001, 20)));
        f[14 + 10] ^= 0x5a;  // header checksum now wrong
        add("ipv4_bad_csum", f);
    }

    // IPv4 options, IHL 6..15, then two malformed option areas.
    for (int ihl = 6; ihl <= 15; ihl++)
        add("ipv4_opts_ihl" + std::to_string(ihl),
            eth(eth_ipv4, ipv4({.proto = ip_udp, .options = ipv4_options_for(ihl)}, udp(7000, 7, 8))));
    add("ipv4_opts_overrun", eth(eth_ipv4, ipv4({.options = {148, 0xff, 0, 0, 1, 1, 1, 0}}, udp(7000, 7, 8))));
    add("ipv4_opts_len1", eth(eth_ipv4, ipv4({.options = {1, 0x83, 1, 0}}, udp(7000, 7, 8))));

    // IPv4 fragments of one 200-byte UDP datagram (offsets in 8-byte units).
    {
        bytes dgram = udp(9000, 9001, 192);
        bytes first(dgram.begin(), dgram.begin() + 80), middle(dgram.begin() + 80, dgram.begin() + 160),
            last(dgram.begin() + 160, dgram.end());
        add("ipv4_frag_first", eth(eth_ipv4, ipv4({.id = 0x4242, .frag = ip_mf | 0}, first)));
        add("ipv4_frag_middle", eth(eth_ipv4, ipv4({.id = 0x4242, .frag = ip_mf | 10}, middle)));
        add("ipv4_frag_last", eth(eth_ipv4, ipv4({.id = 0x4242, .frag = 20}, last)));
    }

    // Bad IPv4 headers.
    {
        const bytes good = eth(eth_ipv4, ipv4({}, udp(5000, 6002, 20)));
        add("ipv4_ihl4", patch_ipv4(good, 0, 0x44));
        add("ipv4_ihl0", patch_ipv4(good, 0, 0x40));
        add("ipv4_version6", patch_ipv4(good, 0, 0x65));
        bytes short_len = good;
        set16(short_len, 14 + 2, 10);
        add("ipv4_totlen_short", patch_ipv4(short_len, 1, 0));
        bytes long_len = good;
        set16(long_len, 14 + 2, 1000);
        add("ipv4_totlen_long", patch_ipv4(long_len, 1, 0));
    }

    // Truncated IPv4 and transport headers.
    add("ipv4_trunc_hdr", cut(eth(eth_ipv4, ipv4({}, udp(1, 2, 0))), 14 + 10));
    add("ipv4_trunc_opts", cut(eth(eth_ipv4, ipv4({.options = ipv4_options_for(8)}, udp(1, 2, 0))), 14 + 24));
    add("ipv4_tcp_trunc", cut_ipv4_l4(eth(eth_ipv4, ipv4({.proto = ip_tcp}, tcp(40000, 80, tcp_syn, 0))), 14 + 20 + 10));
    add("ipv4_udp_trunc", cut_ipv4_l4(eth(eth_ipv4, ipv4({}, udp(5000, 53, 0))), 14 + 20 + 4));
    add("ipv4_icmp_trunc", cut_ipv4_l4(eth(eth_ipv4, ipv4({.proto = ip_icmp}, icmp4(8, 0, 0))), 14 + 20 + 4));

    // Valid IPv6.
    add("ipv6_tcp_syn", eth(eth_ipv6, ipv6_simple(1, 2, ip_tcp, tcp(40000, 80, tcp_syn, 0))));
    add("ipv6_tcp_rst", eth(eth_ipv6, ipv6_simple(1, 2, ip_tcp, tcp(40000, 80, tcp_rst, 0))));
    add("ipv6_udp_dns", eth(eth_ipv6, ipv6_simple(1, 2, ip_udp, udp(5353, 53, 40))));
    add("ipv6_icmp_echo", eth(eth_ipv6, ipv6_simple(1, 2, ip_icmpv6, icmp6(128, 32))));
    add("ipv6_icmp_reply", eth(eth_ipv6, ipv6_simple(2, 1, ip_icmpv6, icmp6(129, 32))));
    add("ipv6_tcp_denied_src",
        eth(eth_ipv6, ipv6(ipv6_denied_addr(5), v6_2, ip_tcp, {}, ip_tcp, tcp(40000, 80, tcp_syn, 0))));

    // IPv6 extension headers.
    const bytes u6 = udp(6000, 6001, 16), t6 = tcp(41000, 8080, tcp_syn, 0);
    add("ipv6_hbh_udp", eth(eth_ipv6, ipv6(v6_1, v6_2, ip6_hop, ext_opts(ip_udp, 8), ip_udp, u6)));
    add("ipv6_routing_tcp", eth(eth_ipv6, ipv6(v6_1, v6_2, ip6_routing, ext_routing(ip_tcp), ip_tcp, t6)));
    add("ipv6_frag_first_udp", eth(eth_ipv6, ipv6(v6_1, v6_2, ip6_frag, ext_frag(ip_udp, 0, true), ip_udp, u6)));
    add("ipv6_frag_later", eth(eth_ipv6, ipv6(v6_1, v6_2, ip6_frag, ext_frag(ip_udp, 100, false), 255, payload(24))));
    add("ipv6_dstopts_tcp", eth(eth_ipv6, ipv6(v6_1, v6_2, ip6_dstopts, ext_opts(ip_tcp, 16), ip_tcp, t6)));
    add("ipv6_ah_udp", eth(eth_ipv6, ipv6(v6_1, v6_2, ip6_ah, ext_ah(ip_udp), ip_udp, u6)));
    add("ipv6_chain5_udp",
        eth(eth_ipv6, ipv6(v6_1, v6_2, ip6_hop,
                           concat({ext_opts(ip6_dstopts, 8), ext_opts(ip6_routing, 8), ext_routing(ip6_frag),
                                   ext_frag(ip6_dstopts, 0, true), ext_opts(ip_udp, 24)}),
                           ip_udp, u6)));
    {
        bytes chain = ext_opts(ip6_dstopts, 8);
        for (int i = 0; i < 5; i++) append(chain, ext_opts(ip6_dstopts, 8));
        append(chain, ext_opts(ip_udp, 8));
        add("ipv6_chain7_udp", eth(eth_ipv6, ipv6(v6_1, v6_2, ip6_hop, chain, ip_udp, u6)));
    }
    add("ipv6_no_next", eth(eth_ipv6, ipv6(v6_1, v6_2, ip6_hop, ext_opts(ip6_none, 8), ip6_none, {})));
    add("ipv6_ext_trunc", cut(eth(eth_ipv6, ipv6(v6_1, v6_2, ip6_hop, ext_opts(ip_udp, 32), ip_udp, u6)), 14 + 40 + 16));
    add("ipv6_trunc_hdr", cut(eth(eth_ipv6, ipv6_simple(1, 2, ip_udp, u6)), 14 + 20));
    add("ipv6_tcp_trunc", cut(eth(eth_ipv6, ipv6_simple(1, 2, ip_tcp, t6)), 14 + 40 + 8));

    // VLAN tagged.
    add("vlan100_ipv4_udp", eth(eth_ipv4, ipv4({}, udp(5353, 53, 32)), {{eth_8021q, 100}}));
    add("vlan100_ipv4_tcp", eth(eth_ipv4, ipv4({.proto = ip_tcp}, tcp(40004, 80, tcp_syn, 0)), {{eth_8021q, 100}}));
    add("vlan100_ipv4_unlisted",
        eth(eth_ipv4, ipv4({.dst = 0x0a000009, .proto = ip_tcp}, tcp(40005, 80, tcp_syn, 0)), {{eth_8021q, 100}}));
    add("qinq_ipv4_tcp",
        eth(eth_ipv4, ipv4({.proto = ip_tcp}, tcp(40006, 80, tcp_syn, 0)), {{eth_8021ad, 200}, {eth_8021q, 100}}));
    add("vlan300_ipv6_udp", eth(eth_ipv6, ipv6_simple(1, 2, ip_udp, u6), {{eth_8021q, 300}}));
    add("vlan_trunc", cut(eth(eth_ipv4, ipv4({}, udp(1, 2, 0)), {{eth_8021q, 100}}), 16));
    {
        bytes a = arp_request();
        bytes tagged(a.begin(), a.begin() + 12);
        put16(tagged, eth_8021q);
        put16(tagged, 100);
        tagged.insert(tagged.end(), a.begin() + 12, a.end());
        add("vlan100_arp", tagged);
    }

    // Firewall rules (see corpus.cpp: setup_firewall).
    add("fw_blocked_src_tcp", eth(eth_ipv4, ipv4({.src = addr::blocked_src, .proto = ip_tcp}, tcp(40007, 80, tcp_syn, 0))));
    add("fw_deny_net_udp", eth(eth_ipv4, ipv4({.src = addr::deny_net_host}, udp(5000, 5000, 16))));
    add("fw_allow_hole_udp", eth(eth_ipv4, ipv4({.src = addr::allow_hole}, udp(5000, 5000, 16))));
    add("fw_blocked_port_tcp", eth(eth_ipv4, ipv4({.proto = ip_tcp}, tcp(40008, 3389, tcp_syn, 0))));
    add("fw_blocked_port_udp", eth(eth_ipv4, ipv4({}, udp(5000, 161, 16))));

    // Load balancer VIPs (see corpus.cpp: setup_lb).
    add("lb_vip80_flow_a", eth(eth_ipv4, ipv4({.dst = addr::vip_tcp, .proto = ip_tcp}, tcp(40000, 80, tcp_syn, 0))));
    add("lb_vip80_flow_a_again",
        eth(eth_ipv4, ipv4({.dst = addr::vip_tcp, .proto = ip_tcp, .id = 2}, tcp(40000, 80, tcp_ack | tcp_psh, 200))));
    add("lb_vip80_flow_b",
        eth(eth_ipv4, ipv4({.src = addr::client3, .dst = addr::vip_tcp, .proto = ip_tcp}, tcp(40001, 80, tcp_syn, 0))));
    add("lb_vip80_flow_c_tos",
        eth(eth_ipv4, ipv4({.src = 0x0a000004, .dst = addr::vip_tcp, .proto = ip_tcp, .tos = 0x28}, tcp(40002, 80, tcp_syn, 0))));
    add("lb_vip53_udp", eth(eth_ipv4, ipv4({.dst = addr::vip_udp}, udp(5353, 53, 24))));
    add("lb_vip53_udp_other_port", eth(eth_ipv4, ipv4({.dst = addr::vip_udp}, udp(5354, 53, 24))));
    add("lb_vip_wrong_port", eth(eth_ipv4, ipv4({.dst = addr::vip_tcp, .proto = ip_tcp}, tcp(40000, 81, tcp_syn, 0))));
    add("lb_vip80_opts", eth(eth_ipv4, ipv4({.src = addr::client3, .dst = addr::vip_tcp, .proto = ip_tcp,
                                             .options = ipv4_options_for(6)},
                                            tcp(40005, 80, tcp_syn, 0))));
    add("lb_vip80_frag",
        eth(eth_ipv4, ipv4({.dst = addr::vip_tcp, .proto = ip_tcp, .frag = ip_mf}, tcp(40000, 80, tcp_ack, 40))));
    add("lb_vip80_large",
        eth(eth_ipv4, ipv4({.dst = addr::vip_tcp, .proto = ip_tcp}, tcp(40010, 80, tcp_ack | tcp_psh, 1400))));

    // Full-size frames.
    add("ipv4_udp_1500", eth(eth_ipv4, ipv4({}, udp(5000, 6003, 1500 - 14 - 20 - 8))));
    add("ipv4_tcp_1514", eth(eth_ipv4, ipv4({.proto = ip_tcp}, tcp(40011, 80, tcp_ack, 1514 - 14 - 20 - 20))));
    add("ipv6_udp_1500", eth(eth_ipv6, ipv6_simple(1, 2, ip_udp, udp(5000, 6004, 1500 - 14 - 40 - 8))));
    return s;
}

}  // namespace

uint16_t inet_checksum(std::span<const uint8_t> bytes, uint32_t sum) {
    sum = sum16(bytes, sum);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

std::vector<uint8_t> ipv6_addr(uint8_t last) {
    std::vector<uint8_t> a{0x20, 0x01, 0x0d, 0xb8};
    a.resize(15, 0);
    a.push_back(last);
    return a;
}

std::vector<uint8_t> ipv6_denied_addr(uint8_t last) {
    std::vector<uint8_t> a = ipv6_addr(last);
    a[4] = 0x0b;
    a[5] = 0xad;
    return a;
}

const std::vector<packet>& packets() {
    static const std::vector<packet> set = build();
    return set;
}

const packet* find_packet(std::string_view name) {
    const auto& s = packets();
    auto it = std::find_if(s.begin(), s.end(), [&](const packet& p) { return p.name == name; });
    return it == s.end() ? nullptr : &*it;
}

}  // namespace xdprt::corpus
