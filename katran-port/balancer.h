// The Katran control plane of katran-port: what Katran's KatranLb does through its BPF adapter,
// done through libbpf, so that it runs against the kernel and, under `xdprt with`, against the
// appliance alike. It drives the user's unmodified Katran object (balancer.bpf.o as Katran's
// own build makes it); the layouts below are that object's (katran/lib/bpf/balancer_structs.h).
//
// Loading, as KatranLb: one LRU_HASH per forwarding core is created first and given to libbpf as
// the template of lru_mapping's inner maps; the object is loaded; lru_mapping[core] = that
// core's LRU (the program picks its LRU by bpf_get_smp_processor_id()); ctl_array[0] = the
// gateway MAC. With a pin directory, every map and the program are pinned there, and a later
// run (another `katran-ctl apply`) reopens them instead of loading again.
//
// Programming, as KatranLb: a VIP is vip_map[{address, port (network order), proto}] = {flags,
// vip_num}; a real is reals[index] = {address, F_IPV6 for IPv6}, indices from 1 (0 is "no real"
// to the program); a VIP's ring is ch_rings[vip_num * 65537 + slot] = real index, filled by our
// Maglev (maglev.h) over the VIP's reals and weights. apply() reads what the maps hold and
// writes only the difference: ring slots that change, VIPs and reals added or removed. A removed
// real's flows are also forgotten by the LRUs (Katran's LRU would keep sending them to it), so
// they move at once, and only they. The server ids apply wrote are listed in a map of ours
// (pinned beside Katran's as katran_ctl_ids), so that a later apply clears the ones a file drops
// without scanning server_id_map's 16M slots.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace xdprt::katran {

// Katran's VIP flags (balancer_consts.h), by the names the YAML uses.
inline constexpr std::pair<const char*, uint32_t> vip_flag_names[] = {
    {"hash_no_src_port", 1u << 0}, {"lru_bypass", 1u << 1},      {"quic", 1u << 2},
    {"hash_dport_only", 1u << 3},  {"src_routing", 1u << 4},     {"local_vip", 1u << 5},
    {"global_lru", 1u << 6},       {"hash_src_dst_port", 1u << 7}, {"udp_stable_routing", 1u << 8},
    {"udp_flow_migration", 1u << 9},
};

struct real_spec {
    std::string address;  // IPv4 or IPv6
    uint32_t weight = 1;
};

struct vip_spec {
    std::string address;
    uint16_t port = 0;
    uint8_t proto = 6;    // IPPROTO_TCP or IPPROTO_UDP
    uint32_t flags = 0;   // vip_flag_names
    std::vector<real_spec> reals;
    std::string name() const;  // "10.0.0.1:80/tcp"
};

struct lb_config {
    std::string object;               // the user's Katran balancer.bpf.o
    std::string pin_dir;              // maps and program pinned here; empty: nothing pinned
    std::string interface;            // standalone mode: attach here by netlink (IFLA_XDP)
    std::string xdp_mode = "native";  // native or skb
    std::string root_array;           // shared mode: xdp_root's pinned PROG_ARRAY ...
    uint32_t root_index = 0;          // ... and the slot this balancer takes in it
    std::array<uint8_t, 6> gateway_mac{};
    std::vector<uint32_t> cores;      // forwarding cores (lru_mapping slots); empty: every possible CPU
    uint32_t lru_size = 100000;       // entries per core's LRU
    std::vector<vip_spec> vips;
    std::map<uint32_t, std::string> server_ids;  // QUIC / TPR server id -> real address
    // The outer source addresses of GUE encapsulation (KatranLb's katranSrcV4/katranSrcV6), in
    // pckt_srcs; required by an object built with GUE_ENCAP, unused by an IPIP one.
    std::string encap_source_v4, encap_source_v6;
};

// Reads a katran-port YAML file (katran-port/README.md); errors name the file, the key and why.
[[nodiscard]] result<lb_config> load_config(const std::string& path);

struct counters {
    uint64_t packets = 0, bytes = 0;
};

struct change_report {
    size_t vips_added = 0, vips_removed = 0, vips_changed = 0;
    size_t reals_added = 0, reals_removed = 0;
    size_t ring_slots_written = 0;  // slots whose real changed, over every VIP
    size_t lru_entries_purged = 0;  // flows that went to a removed real: they take the ring again
    size_t server_ids_removed = 0;  // ids an earlier apply wrote that the file no longer has
};

class balancer {
public:
    // Loads `cfg.object` (or reopens what a previous run pinned in cfg.pin_dir), ready to apply().
    [[nodiscard]] static result<balancer> open(const lb_config& cfg);
    balancer(balancer&&) noexcept;
    balancer& operator=(balancer&&) noexcept;
    ~balancer();

    // Makes the maps hold cfg's VIPs, reals, rings and server ids (and the gateway MAC),
    // writing only what differs from what they hold now.
    [[nodiscard]] result<change_report> apply(const lb_config& cfg);
    // Standalone (cfg.interface) or shared (cfg.root_array) attachment, and its undoing.
    [[nodiscard]] result<void> attach(const lb_config& cfg);
    [[nodiscard]] result<void> detach(const lb_config& cfg);
    // Removes the pins (the objects live on while attached or referenced).
    [[nodiscard]] result<void> unpin(const lb_config& cfg);

    int prog_fd() const;
    // Packets and bytes, summed over the possible CPUs: a VIP's (stats[vip_num]), a real's
    // (reals_stats[index]); ENOENT for one the maps do not hold.
    [[nodiscard]] result<counters> vip_stats(const vip_spec& vip) const;
    [[nodiscard]] result<counters> real_stats(const std::string& address) const;
    // The real index of `address`, 0 when the maps hold none.
    uint32_t real_index(const std::string& address) const;
    // A VIP's ring as the maps hold it (65537 real indices).
    [[nodiscard]] result<std::vector<uint32_t>> ring(const vip_spec& vip) const;

    struct state;

private:
    explicit balancer(std::unique_ptr<state> s);
    std::unique_ptr<state> _s;
};

}  // namespace xdprt::katran
