// The corpus table: one entry per program, with the hooks that fill its maps. Map layouts below
// mirror the structs in the .bpf.c files (static_asserts pin the sizes); all values are written in
// the byte order the program reads them (network order for addresses and ports).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "corpus.h"
#include "packets.h"

namespace xdprt::corpus {
namespace {

using bytes = std::vector<uint8_t>;

result<int> map_fd(bpf_object* obj, const char* name) {
    bpf_map* m = bpf_object__find_map_by_name(obj, name);
    if (!m) return fail(ENOENT, "no map '{}'", name);
    int fd = bpf_map__fd(m);
    if (fd < 0) return fail(EBADF, "map '{}' is not loaded", name);
    return fd;
}

template <class K, class V>
result<void> update(bpf_object* obj, const char* map, const K& key, const V& value, uint64_t flags = BPF_ANY) {
    auto fd = map_fd(obj, map);
    if (!fd) return tl::unexpected(fd.error());
    if (bpf_map_update_elem(*fd, &key, &value, flags)) return fail(errno, "map '{}': update: {}", map, std::strerror(errno));
    return {};
}

result<int> prog_fd(bpf_object* obj, const char* name) {
    bpf_program* p = bpf_object__find_program_by_name(obj, name);
    if (!p) return fail(ENOENT, "no program '{}'", name);
    return bpf_program__fd(p);
}

// Runs `steps` in order, stopping at the first failure.
template <class... Steps>
result<void> all(Steps&&... steps) {
    result<void> r;
    ((r.has_value() ? (void)(r = steps()) : (void)0), ...);
    return r;
}

// --- xdp_firewall -------------------------------------------------------------------------------

struct lpm_v4_key {
    uint32_t prefixlen;
    uint32_t addr;  // network order
};
struct lpm_v6_key {
    uint32_t prefixlen;
    uint8_t addr[16];
};
struct lpm_val {
    uint32_t verdict;  // 0 allow, 1 deny
    uint32_t rule;
};
struct port_key {
    uint8_t proto;
    uint8_t pad;
    uint16_t port;  // network order
};
static_assert(sizeof(lpm_v4_key) == 8 && sizeof(lpm_v6_key) == 20 && sizeof(port_key) == 4);

result<void> setup_firewall(bpf_object* obj, std::vector<owned_fd>&) {
    lpm_v6_key v6{48, {}};
    const bytes denied = ipv6_denied_addr(0);
    std::memcpy(v6.addr, denied.data(), 16);
    return all([&] { return update(obj, "fw_src_block", htonl(addr::blocked_src), uint32_t{7}); },
               [&] { return update(obj, "fw_v4_lpm", lpm_v4_key{12, htonl(0xac100000)}, lpm_val{1, 12}); },
               [&] { return update(obj, "fw_v4_lpm", lpm_v4_key{24, htonl(0xac100500)}, lpm_val{0, 24}); },
               [&] { return update(obj, "fw_v6_lpm", v6, lpm_val{1, 48}); },
               [&] { return update(obj, "fw_port_block", port_key{IPPROTO_TCP, 0, htons(3389)}, uint32_t{33}); },
               [&] { return update(obj, "fw_port_block", port_key{IPPROTO_UDP, 0, htons(161)}, uint32_t{44}); });
}

// --- xdp_lb_ipip --------------------------------------------------------------------------------

struct vip_key {
    uint32_t addr;  // network order
    uint16_t port;  // network order
    uint8_t proto;
    uint8_t pad;
};
struct vip_meta {
    uint32_t vip_num;
    uint32_t flags;
};
struct flow_key {
    uint32_t src, dst;
    uint16_t sport, dport;
    uint8_t proto;
    uint8_t pad[3];
};
struct flow_val {
    uint32_t real;
    uint32_t pad;
};
static_assert(sizeof(vip_key) == 8 && sizeof(flow_key) == 16 && sizeof(flow_val) == 8);

constexpr uint32_t lb_ring_size = 16;
constexpr uint32_t vip_hash_src_only = 1;

result<void> setup_lb(bpf_object* obj, std::vector<owned_fd>& keep) {
    // The inner flow table: same type, flags, sizes and max_entries as the template in the object.
    bpf_map_create_opts opts{};  // not LIBBPF_OPTS: clang's missing-designated-field-initializers
    opts.sz = sizeof opts;
    opts.map_flags = BPF_F_NO_COMMON_LRU;
    owned_fd flows(bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "lb_flows", sizeof(flow_key), sizeof(flow_val), 1024, &opts));
    if (flows.get() < 0) return fail(errno, "create inner LRU_HASH: {}", std::strerror(errno));
    const uint32_t flows_fd = static_cast<uint32_t>(flows.get());
    keep.push_back(std::move(flows));
    auto r = all([&] { return update(obj, "lru_mapping", uint32_t{0}, flows_fd); },
                 [&] { return update(obj, "vips", vip_key{htonl(addr::vip_tcp), htons(80), IPPROTO_TCP, 0}, vip_meta{0, 0}); },
                 [&] {
                     return update(obj, "vips", vip_key{htonl(addr::vip_udp), htons(53), IPPROTO_UDP, 0},
                                   vip_meta{1, vip_hash_src_only});
                 });
    if (!r) return r;
    for (uint32_t n = 1; n <= 4; n++)
        if (auto u = update(obj, "reals", n, htonl(addr::real_base + n)); !u) return u;
    for (uint32_t i = 0; i < lb_ring_size; i++) {
        // VIP 0 spreads over reals 1..4; VIP 1 over reals 3 and 4.
        if (auto u = update(obj, "ch_rings", i, 1 + i % 4); !u) return u;
        if (auto u = update(obj, "ch_rings", lb_ring_size + i, 3 + i % 2); !u) return u;
    }
    return {};
}

// --- tail calls ---------------------------------------------------------------------------------

result<void> setup_tail_calls(bpf_object* obj, std::vector<owned_fd>&) {
    const char* stages[] = {"xdp_tail_ipv4", "xdp_tail_ipv6", "xdp_tail_tcp"};  // slots 0, 1, 2; 3 stays empty
    for (uint32_t slot = 0; slot < 3; slot++) {
        auto fd = prog_fd(obj, stages[slot]);
        if (!fd) return tl::unexpected(fd.error());
        if (auto u = update(obj, "jmp_table", slot, static_cast<uint32_t>(*fd)); !u) return u;
    }
    return {};
}

result<void> setup_tail_limit(bpf_object* obj, std::vector<owned_fd>&) {
    auto fd = prog_fd(obj, "xdp_tail_limit");
    if (!fd) return tl::unexpected(fd.error());
    return update(obj, "self_table", uint32_t{0}, static_cast<uint32_t>(*fd));
}

// --- xdp_atomics --------------------------------------------------------------------------------

struct atomic_state {
    uint64_t add, sub, or_bits, and_bits, xor_acc, last_len, max_len, cas_hits;
    uint32_t add32, or32, xchg32, cas32;
};
static_assert(sizeof(atomic_state) == 80);

result<void> setup_atomics(bpf_object* obj, std::vector<owned_fd>&) {
    atomic_state s{};
    s.and_bits = ~uint64_t{0};
    return update(obj, "atomic_state", uint32_t{0}, s);
}

// --- redirect maps ------------------------------------------------------------------------------

constexpr uint32_t loopback_ifindex = 1;

result<void> setup_devmap(bpf_object* obj, std::vector<owned_fd>&) {
    return all([&] { return update(obj, "tx_ports", uint32_t{2}, loopback_ifindex); },
               [&] { return update(obj, "tx_ports_hash", uint32_t{2}, loopback_ifindex); });
}

result<void> setup_cpumap(bpf_object* obj, std::vector<owned_fd>&) {
    bpf_cpumap_val v{};
    v.qsize = 64;
    return update(obj, "cpu_map", uint32_t{0}, v);
}

// --- xdp_bloom ----------------------------------------------------------------------------------

result<void> setup_bloom(bpf_object* obj, std::vector<owned_fd>&) {
    auto fd = map_fd(obj, "allowed");
    if (!fd) return tl::unexpected(fd.error());
    for (uint32_t a : {addr::client1, addr::client3, addr::allow_hole}) {
        const uint32_t v = htonl(a);
        if (bpf_map_update_elem(*fd, nullptr, &v, BPF_ANY)) return fail(errno, "map 'allowed': push: {}", std::strerror(errno));
    }
    return {};
}

// Every IPv4 source in the packet set, and two that never appear.
std::vector<bytes> bloom_probes() {
    std::vector<bytes> out;
    for (uint32_t a : {addr::client1, addr::server, addr::client3, uint32_t{0x0a000004}, addr::blocked_src,
                       addr::deny_net_host, addr::allow_hole, uint32_t{0x08080808}, uint32_t{0x01020304}}) {
        const uint32_t v = htonl(a);
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        out.emplace_back(p, p + 4);
    }
    return out;
}

// --- xdp_loop_helpers ---------------------------------------------------------------------------

result<void> setup_loop_helpers(bpf_object* obj, std::vector<owned_fd>&) {
    for (uint32_t i = 0; i < 16; i++)
        if (auto u = update(obj, "weights", i, uint64_t{i * i + 1}); !u) return u;
    const std::array<std::pair<uint32_t, uint64_t>, 4> ports{{{80, 5}, {443, 7}, {53, 11}, {0, 1000}}};
    for (auto [port, w] : ports)
        if (auto u = update(obj, "port_weights", port, w); !u) return u;
    return {};
}

// --- xdp_tenants --------------------------------------------------------------------------------

constexpr uint32_t tenant_list_entries = 16;

result<void> prepare_tenants(bpf_object* obj, std::vector<owned_fd>& keep) {
    // The outer map has no template in the object; this one gives the inner maps' shape.
    owned_fd tmpl(bpf_map_create(BPF_MAP_TYPE_HASH, "tenant_tmpl", 4, 8, tenant_list_entries, nullptr));
    if (tmpl.get() < 0) return fail(errno, "create inner template: {}", std::strerror(errno));
    bpf_map* outer = bpf_object__find_map_by_name(obj, "tenants");
    if (!outer) return fail(ENOENT, "no map 'tenants'");
    if (int err = bpf_map__set_inner_map_fd(outer, tmpl.get()); err)
        return fail(-err, "map 'tenants': set_inner_map_fd: {}", std::strerror(-err));
    keep.push_back(std::move(tmpl));  // libbpf does not take ownership
    return {};
}

result<void> setup_tenants(bpf_object* obj, std::vector<owned_fd>& keep) {
    struct tenant {
        uint32_t vid;
        std::vector<uint32_t> allowed;
    };
    const tenant tenants[] = {{0, {addr::server, addr::vip_tcp}}, {100, {addr::server}}};
    for (const tenant& t : tenants) {
        owned_fd list(bpf_map_create(BPF_MAP_TYPE_HASH, "tenant_list", 4, 8, tenant_list_entries, nullptr));
        if (list.get() < 0) return fail(errno, "tenant {}: create list: {}", t.vid, std::strerror(errno));
        for (uint32_t a : t.allowed) {
            const uint32_t k = htonl(a);
            const uint64_t hits = 0;
            if (bpf_map_update_elem(list.get(), &k, &hits, BPF_NOEXIST))
                return fail(errno, "tenant {}: list update: {}", t.vid, std::strerror(errno));
        }
        if (auto u = update(obj, "tenants", t.vid, static_cast<uint32_t>(list.get())); !u) return u;
        keep.push_back(std::move(list));
    }
    return {};
}

// --- objects Debian packages (libxdp1's xdp-filter programs, xdp-tests) -------------------------

// xdp-filter's maps, keyed by port, IPv4 address, IPv6 address and MAC address. Some keys of the
// packet set get a value with every bit set (every direction and protocol flag), so the
// programs' match paths run as well as their miss paths; the rest of the set misses.
result<void> setup_xdp_filter(bpf_object* obj, std::vector<owned_fd>&) {
    auto fill = [&](const char* name, const std::vector<bytes>& keys) -> result<void> {
        bpf_map* m = bpf_object__find_map_by_name(obj, name);
        if (!m) return {};
        bpf_map_type t = bpf_map__type(m);
        bool per_cpu = t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
        size_t slot = (bpf_map__value_size(m) + 7) / 8 * 8;
        bytes value(per_cpu ? slot * size_t(possible_cpus()) : bpf_map__value_size(m), 0xff);
        for (const bytes& k : keys) {
            if (k.size() != bpf_map__key_size(m)) return fail(EINVAL, "map '{}': key of {} bytes", name, k.size());
            if (bpf_map_update_elem(bpf_map__fd(m), k.data(), value.data(), BPF_ANY))
                return fail(errno, "map '{}': update: {}", name, std::strerror(errno));
        }
        return {};
    };
    auto u32 = [](uint32_t v) {
        bytes b(4);
        std::memcpy(b.data(), &v, 4);
        return b;
    };
    const bytes mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
    return all([&] { return fill("filter_ports", {u32(53), u32(80)}); },
               [&] { return fill("filter_ipv4", {u32(htonl(addr::client1)), u32(htonl(addr::vip_tcp))}); },
               [&] { return fill("filter_ipv6", {ipv6_addr(1)}); },
               [&] { return fill("filter_ethernet", {mac}); });
}

// xdp-filter pins xdp_stats_map by name (LIBBPF_PIN_BY_NAME); bpffs is not mounted here for the
// kernel side, and a pin would carry one load's counters into the next: load it unpinned.
result<void> no_pinning(bpf_object* obj, std::vector<owned_fd>&) {
    bpf_map* m;
    bpf_object__for_each_map(m, obj) {
        if (int e = bpf_map__set_pin_path(m, nullptr)) return fail(-e, "map '{}': clear pin path", bpf_map__name(m));
    }
    return {};
}

constexpr std::string_view xdp_filter_notes =
    "ports 53 and 80, 10.0.0.1, 10.100.0.1, 2001:db8::1 and 02:00:00:00:00:01 with every flag set";

const std::vector<entry>& table() {
    static const std::vector<entry> t = {
        {"drop", "xdp_drop.bpf.o", "xdp_drop", nullptr, nullptr, "no maps"},
        {"swap_mac", "xdp_swap_mac.bpf.o", "xdp_swap_mac", nullptr, nullptr, "no maps"},
        {"loop", "xdp_loop.bpf.o", "xdp_loop", nullptr, nullptr, "no maps"},
        {"calls", "xdp_calls.bpf.o", "xdp_calls", nullptr, nullptr, "no maps"},
        {"parse_l2", "xdp_parse_l2.bpf.o", "xdp_parse_l2", nullptr, nullptr, "maps start empty"},
        {"parse_ipv4", "xdp_parse_ipv4.bpf.o", "xdp_parse_ipv4", nullptr, nullptr, "maps start empty"},
        {"parse_ipv6", "xdp_parse_ipv6.bpf.o", "xdp_parse_ipv6", nullptr, nullptr, "maps start empty"},
        {"parse_l4", "xdp_parse_l4.bpf.o", "xdp_parse_l4", nullptr, nullptr, "maps start empty"},
        {"firewall", "xdp_firewall.bpf.o", "xdp_firewall", nullptr, setup_firewall,
         "src 192.168.66.6 -> rule 7; LPM 172.16.0.0/12 deny (rule 12), 172.16.5.0/24 allow; "
         "2001:db8:bad::/48 deny (rule 48); TCP 3389 -> rule 33, UDP 161 -> rule 44"},
        {"lb_ipip", "xdp_lb_ipip.bpf.o", "xdp_lb_ipip", nullptr, setup_lb,
         "inner LRU_HASH (NO_COMMON_LRU, 1024) created and put in lru_mapping[0]; VIP 10.100.0.1:80/TCP -> vip 0 "
         "(reals 1..4 round the ring), 10.100.0.2:53/UDP -> vip 1 (source-only hash, reals 3,4); reals N = 10.200.0.N"},
        {"tail_calls", "xdp_tail_calls.bpf.o", "xdp_tail_entry", nullptr, setup_tail_calls,
         "jmp_table: 0 = xdp_tail_ipv4, 1 = xdp_tail_ipv6, 2 = xdp_tail_tcp, 3 empty"},
        {"tail_limit", "xdp_tail_limit.bpf.o", "xdp_tail_limit", nullptr, setup_tail_limit,
         "self_table[0] = xdp_tail_limit itself"},
        {"global_data", "xdp_global_data.bpf.o", "xdp_global_data", nullptr, nullptr, ".rodata defaults: drop UDP 53, min TTL 2"},
        {"atomics", "xdp_atomics.bpf.o", "xdp_atomics", nullptr, setup_atomics, "atomic_state.and_bits = all ones"},
        {"ttl_csum", "xdp_ttl_csum.bpf.o", "xdp_ttl_csum", nullptr, nullptr, "maps start empty"},
        {"icmp_echo", "xdp_icmp_echo.bpf.o", "xdp_icmp_echo", nullptr, nullptr, "maps start empty"},
        {"adjust_tail", "xdp_adjust_tail.bpf.o", "xdp_adjust_tail", nullptr, nullptr, "maps start empty"},
        {"adjust_meta", "xdp_adjust_meta.bpf.o", "xdp_adjust_meta", nullptr, nullptr, "maps start empty"},
        {"vlan_tag", "xdp_vlan_tag.bpf.o", "xdp_vlan_tag", nullptr, nullptr, ".rodata default: push VLAN 42"},
        {"bytes", "xdp_bytes.bpf.o", "xdp_bytes", nullptr, nullptr, "maps start empty"},
        {"redirect", "xdp_redirect.bpf.o", "xdp_redirect", nullptr, nullptr, ".rodata default: ifindex 1 (lo)"},
        {"devmap", "xdp_devmap.bpf.o", "xdp_devmap", nullptr, setup_devmap,
         "tx_ports[2] = 1 (lo), tx_ports_hash{2} = 1 (lo); the kernel accepts lo in both"},
        {"cpumap", "xdp_cpumap.bpf.o", "xdp_cpumap", nullptr, setup_cpumap, "cpu_map[0] = {qsize 64, no program}; slot 1 empty"},
        {"xskmap", "xdp_xskmap.bpf.o", "xdp_xskmap", nullptr, nullptr, "empty: no AF_XDP socket, every lookup misses"},
        {"ringbuf", "xdp_ringbuf.bpf.o", "xdp_ringbuf", nullptr, nullptr, "16 KiB ring, consumed by the snapshot"},
        {"perf_event", "xdp_perf_event.bpf.o", "xdp_perf_event", nullptr, nullptr,
         "no perf events opened: every output returns -ENOENT, recorded in perf_result"},
        {"queue_stack", "xdp_queue_stack.bpf.o", "xdp_queue_stack", nullptr, nullptr, "maps start empty"},
        {"bloom", "xdp_bloom.bpf.o", "xdp_bloom", nullptr, setup_bloom,
         "allowed += 10.0.0.1, 10.0.0.3, 172.16.5.9", bloom_probes},
        {"flow_stats", "xdp_flow_stats.bpf.o", "xdp_flow_stats", nullptr, nullptr, "maps start empty"},
        {"src_lru", "xdp_src_lru.bpf.o", "xdp_src_lru", nullptr, nullptr, "maps start empty"},
        {"spin_lock", "xdp_spin_lock.bpf.o", "xdp_spin_lock", nullptr, nullptr, "maps start empty"},
        {"loop_helpers", "xdp_loop_helpers.bpf.o", "xdp_loop_helpers", nullptr, setup_loop_helpers,
         "weights[i] = i*i + 1; port_weights {80: 5, 443: 7, 53: 11, 0: 1000}"},
        {"env", "xdp_env.bpf.o", "xdp_env", nullptr, nullptr, "maps start empty"},
        {"tenants", "xdp_tenants.bpf.o", "xdp_tenants", prepare_tenants, setup_tenants,
         "inner template HASH(4, 8, 16) set before load; tenant 0 -> {10.0.0.2, 10.100.0.1}, tenant 100 -> {10.0.0.2}"},
        // Third-party objects, loaded unmodified from where Debian installs them.
        {"deb_xdpfilt_alw_all", "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_all.o", "xdpfilt_alw_all", no_pinning, setup_xdp_filter, xdp_filter_notes},
        {"deb_xdpfilt_alw_eth", "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_eth.o", "xdpfilt_alw_eth", no_pinning, setup_xdp_filter, xdp_filter_notes},
        {"deb_xdpfilt_alw_ip", "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_ip.o", "xdpfilt_alw_ip", no_pinning, setup_xdp_filter, xdp_filter_notes},
        {"deb_xdpfilt_alw_tcp", "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_tcp.o", "xdpfilt_alw_tcp", no_pinning, setup_xdp_filter, xdp_filter_notes},
        {"deb_xdpfilt_alw_udp", "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_udp.o", "xdpfilt_alw_udp", no_pinning, setup_xdp_filter, xdp_filter_notes},
        {"deb_xdpfilt_dny_all", "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_dny_all.o", "xdpfilt_dny_all", no_pinning, setup_xdp_filter, xdp_filter_notes},
        {"deb_xdpfilt_dny_eth", "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_dny_eth.o", "xdpfilt_dny_eth", no_pinning, setup_xdp_filter, xdp_filter_notes},
        {"deb_xdpfilt_dny_ip", "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_dny_ip.o", "xdpfilt_dny_ip", no_pinning, setup_xdp_filter, xdp_filter_notes},
        {"deb_xdpfilt_dny_tcp", "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_dny_tcp.o", "xdpfilt_dny_tcp", no_pinning, setup_xdp_filter, xdp_filter_notes},
        {"deb_xdpfilt_dny_udp", "/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_dny_udp.o", "xdpfilt_dny_udp", no_pinning, setup_xdp_filter, xdp_filter_notes},
        {"deb_xsk_def_xdp_prog", "/usr/lib/x86_64-linux-gnu/bpf/xsk_def_xdp_prog.o", "xsk_def_prog", nullptr, nullptr,
         "xsks_map empty: every redirect falls back to XDP_PASS"},
        {"deb_xsk_def_xdp_prog_5_3", "/usr/lib/x86_64-linux-gnu/bpf/xsk_def_xdp_prog_5.3.o", "xsk_def_prog", nullptr, nullptr,
         "xsks_map empty"},
        {"deb_xdp_pass", "/usr/libexec/xdp-tools/xdp_pass.o", "xdp_pass", nullptr, nullptr, "xdp-tests"},
        {"deb_xdp_drop", "/usr/libexec/xdp-tools/xdp_drop.o", "xdp_drop", nullptr, nullptr, "xdp-tests"},
        {"deb_test_long_func_name", "/usr/libexec/xdp-tools/test_long_func_name.o", "xdp_test_prog_with_a_long_name", nullptr,
         nullptr, "xdp-tests; the object's second program is loaded too"},
    };
    return t;
}

}  // namespace

std::span<const entry> entries() { return table(); }

const entry* find_entry(std::string_view name) {
    for (const entry& e : table())
        if (e.name == name) return &e;
    return nullptr;
}

}  // namespace xdprt::corpus
