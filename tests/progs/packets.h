// The packet set the corpus programs run over: Ethernet frames built in code, each with a name.
//
// Valid frames carry correct IPv4 header checksums and correct TCP/UDP/ICMP checksums; the
// malformed ones (runts, truncated headers, bad IHL, bad checksum) are built valid and then cut or
// corrupted, so each differs from a valid frame in one way only. Addresses below are the ones the
// corpus setups install (firewall rules, LB VIPs and reals, tenant lists, bloom filter members).
// Thread affinity: none (pure functions over immutable data).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xdprt::corpus {

struct packet {
    std::string name;
    std::vector<uint8_t> bytes;
};

// IPv4 addresses in host order (the setups convert with htonl).
namespace addr {
constexpr uint32_t client1 = 0x0a000001;       // 10.0.0.1
constexpr uint32_t server = 0x0a000002;        // 10.0.0.2
constexpr uint32_t client3 = 0x0a000003;       // 10.0.0.3
constexpr uint32_t blocked_src = 0xc0a84206;   // 192.168.66.6: firewall exact-source rule 7
constexpr uint32_t deny_net_host = 0xac100101; // 172.16.1.1: inside 172.16.0.0/12 (deny, rule 12)
constexpr uint32_t allow_hole = 0xac100509;    // 172.16.5.9: inside 172.16.5.0/24 (allow)
constexpr uint32_t vip_tcp = 0x0a640001;       // 10.100.0.1: LB VIP, TCP port 80
constexpr uint32_t vip_udp = 0x0a640002;       // 10.100.0.2: LB VIP, UDP port 53
constexpr uint32_t real_base = 0x0ac80000;     // 10.200.0.N: LB reals N = 1..4
constexpr uint32_t tunnel_src = 0x0aff0001;    // 10.255.0.1: LB outer source (.rodata default)
}  // namespace addr

// IPv6 addresses: 2001:db8::<last byte>, and the firewall's denied 2001:db8:bad::/48.
std::vector<uint8_t> ipv6_addr(uint8_t last);
std::vector<uint8_t> ipv6_denied_addr(uint8_t last);

// MAC addresses: frames go from `mac_client` to `mac_server`.
inline constexpr uint8_t mac_client[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
inline constexpr uint8_t mac_server[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

// The whole set, in a fixed order (built once).
const std::vector<packet>& packets();

// The packet with that name, or nullptr.
const packet* find_packet(std::string_view name);

// RFC 1071 Internet checksum of `bytes` (odd length padded with a zero byte), seeded with `sum`.
uint16_t inet_checksum(std::span<const uint8_t> bytes, uint32_t sum = 0);

}  // namespace xdprt::corpus
