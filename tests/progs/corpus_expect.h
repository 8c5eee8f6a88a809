// What each corpus program must do with the packet set, checked against one outcome (return codes,
// output frames, final maps). The checks name the packet or map that disagrees. Where a program
// keeps state across packets (queues, per-source counters, running maxima), the expected values come
// from a small model of the program run over the same packets in the same order.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "corpus.h"

namespace xdprt::corpus {

// A frame as the corpus programs' parsers see it (xdp_common.bpf.h rules: up to two VLAN tags,
// IPv4 needs version 4, IHL >= 5 and the whole header; IPv6 the fixed header and version 6).
struct frame_view {
    int ethertype = -1;  // after the VLAN tags; -1 if a header is cut short
    std::vector<uint16_t> vids;
    size_t l3 = 0;
    bool ipv4_ok = false;
    bool ipv6_ok = false;
    uint8_t ihl = 0, proto = 0, ttl = 0;  // IPv4 (proto = nexthdr for IPv6)
    uint16_t frag = 0, tot_len = 0;
    uint32_t saddr = 0, daddr = 0;  // IPv4, host order
    std::array<uint8_t, 16> saddr6{}, daddr6{};
    size_t l4 = 0;  // IPv4: l3 + ihl * 4; IPv6: l3 + 40
};

frame_view inspect(std::span<const uint8_t> frame);

// Runs the entry's checks (GoogleTest EXPECTs); entries without specific checks only get the
// generic ones in the test.
void check_expectations(const entry& e, const outcome& o);

}  // namespace xdprt::corpus
