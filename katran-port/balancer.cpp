#include "balancer.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <tuple>

#include "maglev.h"

namespace xdprt::katran {

namespace {

// balancer_consts.h and balancer_structs.h of Katran's object.
constexpr uint32_t max_vips = 512, max_reals = 4096, max_supported_cpus = 128;
constexpr uint8_t real_f_ipv6 = 1;
constexpr const char* prog_name = "balancer_ingress";
// Ours, beside Katran's pins: the server ids apply wrote (id -> 1), so a later apply can clear
// the ones a file drops. Far more than Katran's reals (4096) ever carry.
constexpr const char* ids_ledger_name = "katran_ctl_ids";
constexpr uint32_t ids_ledger_entries = 1u << 16;
constexpr uint32_t v4_src_index = 0, v6_src_index = 1;  // pckt_srcs (balancer_consts.h)

struct vip_definition {
    uint8_t addr[16];
    uint16_t port;  // network order
    uint8_t proto;
    uint8_t pad;
};
static_assert(sizeof(vip_definition) == 20);
struct vip_meta {
    uint32_t flags, vip_num;
};
struct real_definition {
    uint8_t addr[16];
    uint8_t flags;
    uint8_t pad[3];
};
static_assert(sizeof(real_definition) == 20);
struct lb_stats {
    uint64_t v1, v2;
};

// An IPv4 or IPv6 address as Katran's maps hold it: IPv4 in the first 4 bytes.
struct address {
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};
    bool operator<(const address& o) const { return std::tie(v6, bytes) < std::tie(o.v6, o.bytes); }
    bool operator==(const address& o) const = default;
    bool zero() const { return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; }); }
    std::string text() const {
        char buf[INET6_ADDRSTRLEN] = {};
        inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
        return buf;
    }
};

result<address> parse_address(const std::string& text) {
    address a;
    if (inet_pton(AF_INET, text.c_str(), a.bytes.data()) == 1) return a;
    a.v6 = true;
    if (inet_pton(AF_INET6, text.c_str(), a.bytes.data()) == 1) return a;
    return fail(EINVAL, "'{}' is not an IPv4 or IPv6 address", text);
}

result<vip_definition> vip_key(const vip_spec& v) {
    auto a = parse_address(v.address);
    if (!a) return tl::unexpected(with_context(a.error(), "vip " + v.name()));
    vip_definition k{};
    std::memcpy(k.addr, a->bytes.data(), 16);
    k.port = htons(v.port);
    k.proto = v.proto;
    return k;
}

int dup_fd(int fd) { return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0); }

unexpected_error errno_fail(const std::string& what) { return fail(errno, "{}: {}", what, strerror(errno)); }

}  // namespace

std::string vip_spec::name() const {
    return fmt::format("{}:{}/{}", address, port, proto == 17 ? "udp" : proto == 6 ? "tcp" : std::to_string(proto));
}

struct balancer::state {
    bpf_object* obj = nullptr;  // null when reopened from pins
    int prog = -1;
    int vip_map = -1, reals = -1, ch_rings = -1, ctl_array = -1, stats = -1, reals_stats = -1, server_id_map = -1,
        lru_mapping = -1, fallback_cache = -1;
    int pckt_srcs = -1;   // only in objects built with GUE_ENCAP
    int ids_ledger = -1;  // ids_ledger_name
    bool server_ids_hashed = false;  // server_id_map is a HASH (SERVER_ID_HASH_MAP), else an ARRAY
    std::optional<bool> batches;     // the probe's answer: ch_rings takes MAP_*_BATCH

    // As KatranLb: one LOOKUP_BATCH of one element tells whether the map commands take batches
    // (0, or ENOENT at the end of the map); the rings are then written with UPDATE_BATCH.
    bool batches_supported() {
        if (!batches) {
            uint32_t out = 0, key = 0, value = 0, count = 1;
            int r = bpf_map_lookup_batch(ch_rings, nullptr, &out, &key, &value, &count, nullptr);
            batches = r == 0 || r == -ENOENT;
        }
        return *batches;
    }
    std::vector<int> lrus;
    uint32_t ncpu = 1;

    ~state();

    // Forgets the flows the LRUs (every core's and the fallback) send to the reals `gone`: their
    // next packets take the ring, which no longer has them. Returns how many were forgotten.
    result<size_t> purge_lru(const std::set<uint32_t>& gone) const {
        std::vector<int> lrus{fallback_cache};
        std::vector<int> opened;
        for (uint32_t core = 0; core < max_supported_cpus; ++core) {
            uint32_t id = 0;
            if (bpf_map_lookup_elem(lru_mapping, &core, &id) != 0 || !id) continue;
            int fd = bpf_map_get_fd_by_id(id);
            if (fd < 0) {
                auto failed = errno_fail(fmt::format("lru_mapping[{}]: map id {}", core, id));
                for (int o : opened) close(o);
                return failed;
            }
            opened.push_back(fd);
            lrus.push_back(fd);
        }
        size_t purged = 0;
        for (int fd : lrus) {
            std::array<uint8_t, 40> key{}, next{};
            std::vector<std::array<uint8_t, 40>> doomed;
            for (const void* at = nullptr; bpf_map_get_next_key(fd, at, next.data()) == 0; at = key.data()) {
                key = next;
                struct { uint32_t pos, pad; uint64_t atime; } v{};
                if (bpf_map_lookup_elem(fd, key.data(), &v) == 0 && gone.count(v.pos)) doomed.push_back(key);
            }
            for (auto& k : doomed)
                if (bpf_map_delete_elem(fd, k.data()) == 0) ++purged;
        }
        for (int fd : opened) close(fd);
        return purged;
    }

    // The object must be Katran's: the maps katran-port writes have the layouts it writes.
    result<void> check_layouts() const {
        struct want {
            const char* name;
            int fd;
            uint32_t key, value, min_entries;
        } wants[] = {
            {"vip_map", vip_map, 20, 8, 1},
            {"reals", reals, 4, 20, max_reals},
            {"ch_rings", ch_rings, 4, 4, max_vips * katran_ring_size},
            {"ctl_array", ctl_array, 4, 8, 1},
            {"stats", stats, 4, 16, max_vips},
            {"reals_stats", reals_stats, 4, 16, max_reals},
            {"lru_mapping", lru_mapping, 4, 4, 1},
        };
        for (const auto& w : wants) {
            bpf_map_info info{};
            uint32_t len = sizeof info;
            if (bpf_obj_get_info_by_fd(w.fd, &info, &len) != 0) return errno_fail(fmt::format("map {}: info", w.name));
            if (info.key_size != w.key || info.value_size != w.value || info.max_entries < w.min_entries)
                return fail(EINVAL,
                            "map {} has key {} B, value {} B, {} entries; katran-port writes Katran's layout "
                            "(key {} B, value {} B, at least {} entries): is this Katran's balancer object?",
                            w.name, info.key_size, info.value_size, info.max_entries, w.key, w.value, w.min_entries);
        }
        return {};
    }
};

// The object's maps katran-port uses, by the names the object (and the pins) give them.
constexpr std::pair<const char*, int balancer::state::*> named_maps[] = {
    {"vip_map", &balancer::state::vip_map},         {"reals", &balancer::state::reals},
    {"ch_rings", &balancer::state::ch_rings},       {"ctl_array", &balancer::state::ctl_array},
    {"stats", &balancer::state::stats},             {"reals_stats", &balancer::state::reals_stats},
    {"server_id_map", &balancer::state::server_id_map}, {"lru_mapping", &balancer::state::lru_mapping},
    {"fallback_cache", &balancer::state::fallback_cache},
};

balancer::state::~state() {
    if (prog >= 0) close(prog);
    for (const auto& [name, fd] : named_maps)
        if (this->*fd >= 0) close(this->*fd);
    for (int fd : {pckt_srcs, ids_ledger})
        if (fd >= 0) close(fd);
    for (int fd : lrus) close(fd);
    if (obj) bpf_object__close(obj);
}

balancer::balancer(std::unique_ptr<state> s) : _s(std::move(s)) {}
balancer::balancer(balancer&&) noexcept = default;
balancer& balancer::operator=(balancer&&) noexcept = default;
balancer::~balancer() = default;
int balancer::prog_fd() const { return _s->prog; }

result<balancer> balancer::open(const lb_config& cfg) {
    auto s = std::make_unique<state>();
    int n = libbpf_num_possible_cpus();
    if (n <= 0) return fail(-n, "possible CPUs: {}", strerror(-n));
    s->ncpu = uint32_t(n);
    const std::filesystem::path pins = cfg.pin_dir;
    std::error_code ec;
    if (!cfg.pin_dir.empty() && std::filesystem::exists(pins / prog_name, ec)) {
        // A previous run loaded and pinned it: reopen.
        s->prog = bpf_obj_get((pins / prog_name).c_str());
        if (s->prog < 0) return errno_fail("reopen " + (pins / prog_name).string());
        for (const auto& [name, slot] : named_maps) {
            s.get()->*slot = bpf_obj_get((pins / name).c_str());
            if (s.get()->*slot < 0) return errno_fail("reopen " + (pins / name).string());
        }
        // Pinned only by a GUE build, and by a katran-ctl that keeps the ledger.
        for (auto [name, fd] : {std::pair{"pckt_srcs", &s->pckt_srcs}, {ids_ledger_name, &s->ids_ledger}}) {
            if (!std::filesystem::exists(pins / name, ec)) continue;
            *fd = bpf_obj_get((pins / name).c_str());
            if (*fd < 0) return errno_fail("reopen " + (pins / name).string());
        }
    } else {
        if (cfg.object.empty()) return fail(EINVAL, "no object: set `object:` to Katran's balancer.bpf.o");
        s->obj = bpf_object__open_file(cfg.object.c_str(), nullptr);
        if (!s->obj) return errno_fail("open " + cfg.object);
        bpf_map* lru_mapping = bpf_object__find_map_by_name(s->obj, "lru_mapping");
        bpf_program* prog = bpf_object__find_program_by_name(s->obj, prog_name);
        if (!lru_mapping || !prog) return fail(EINVAL, "{}: no lru_mapping map or {} program: not Katran's balancer object", cfg.object, prog_name);
        std::vector<uint32_t> cores = cfg.cores;
        if (cores.empty())
            for (uint32_t c = 0; c < s->ncpu && c < max_supported_cpus; ++c) cores.push_back(c);
        for (uint32_t core : cores) {
            if (core >= max_supported_cpus) return fail(EINVAL, "forwarding core {}: Katran supports cores below {}", core, max_supported_cpus);
            // Katran's per-core LRU: flow_key (40 B) -> real_pos_lru (16 B).
            int fd = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "katran_lru", 40, 16, cfg.lru_size, nullptr);
            if (fd < 0) return errno_fail(fmt::format("LRU of core {}", core));
            s->lrus.push_back(fd);
        }
        if (bpf_map__set_inner_map_fd(lru_mapping, s->lrus.front()) != 0) return errno_fail("lru_mapping: inner map template");
        if (int err = bpf_object__load(s->obj); err != 0) return fail(-err, "load {}: {}", cfg.object, strerror(-err));
        s->prog = dup_fd(bpf_program__fd(prog));
        for (const auto& [name, slot] : named_maps) {
            bpf_map* m = bpf_object__find_map_by_name(s->obj, name);
            if (!m) return fail(EINVAL, "{}: no map {}: not Katran's balancer object", cfg.object, name);
            s.get()->*slot = dup_fd(bpf_map__fd(m));
        }
        if (bpf_map* m = bpf_object__find_map_by_name(s->obj, "pckt_srcs")) s->pckt_srcs = dup_fd(bpf_map__fd(m));
        for (size_t k = 0; k < cores.size(); ++k)
            if (bpf_map_update_elem(s->lru_mapping, &cores[k], &s->lrus[k], BPF_ANY) != 0)
                return errno_fail(fmt::format("lru_mapping[{}]", cores[k]));
        if (!cfg.pin_dir.empty()) {
            std::filesystem::create_directories(pins, ec);
            if (int err = bpf_object__pin_maps(s->obj, cfg.pin_dir.c_str()); err != 0)
                return fail(-err, "pin maps in {}: {}", cfg.pin_dir, strerror(-err));
            if (int err = bpf_program__pin(prog, (pins / prog_name).c_str()); err != 0)
                return fail(-err, "pin {}: {}", (pins / prog_name).string(), strerror(-err));
        }
    }
    if (s->ids_ledger < 0) {
        bpf_map_create_opts no_prealloc{};
        no_prealloc.sz = sizeof no_prealloc;
        no_prealloc.map_flags = BPF_F_NO_PREALLOC;
        s->ids_ledger = bpf_map_create(BPF_MAP_TYPE_HASH, ids_ledger_name, 4, 4, ids_ledger_entries, &no_prealloc);
        if (s->ids_ledger < 0) return errno_fail("create the server id ledger");
        if (!cfg.pin_dir.empty() && bpf_obj_pin(s->ids_ledger, (pins / ids_ledger_name).c_str()) != 0)
            return errno_fail("pin " + (pins / ids_ledger_name).string());
    }
    bpf_map_info sid{};
    uint32_t sid_len = sizeof sid;
    if (bpf_obj_get_info_by_fd(s->server_id_map, &sid, &sid_len) != 0) return errno_fail("map server_id_map: info");
    s->server_ids_hashed = sid.type == BPF_MAP_TYPE_HASH;
    if (auto ok = s->check_layouts(); !ok) return tl::unexpected(with_context(ok.error(), cfg.object));
    return balancer(std::move(s));
}

namespace {

// What the maps hold now.
struct held {
    std::map<address, uint32_t> reals;  // address -> index
    std::vector<std::pair<vip_definition, vip_meta>> vips;
};

result<held> read_held(int vip_map, int reals) {
    held h;
    for (uint32_t i = 1; i < max_reals; ++i) {
        real_definition r{};
        if (bpf_map_lookup_elem(reals, &i, &r) != 0) return errno_fail(fmt::format("reals[{}]", i));
        address a;
        a.v6 = r.flags & real_f_ipv6;
        std::memcpy(a.bytes.data(), r.addr, 16);
        if (!a.zero()) h.reals[a] = i;
    }
    vip_definition key{}, next{};
    for (const void* at = nullptr; bpf_map_get_next_key(vip_map, at, &next) == 0; at = &key) {
        key = next;
        vip_meta meta{};
        if (bpf_map_lookup_elem(vip_map, &key, &meta) == 0) h.vips.emplace_back(key, meta);
    }
    return h;
}

bool same_key(const vip_definition& a, const vip_definition& b) {
    return std::memcmp(a.addr, b.addr, 16) == 0 && a.port == b.port && a.proto == b.proto;
}

}  // namespace

result<std::vector<uint32_t>> balancer::ring(const vip_spec& vip) const {
    auto key = vip_key(vip);
    if (!key) return tl::unexpected(key.error());
    vip_meta meta{};
    if (bpf_map_lookup_elem(_s->vip_map, &*key, &meta) != 0) return fail(ENOENT, "vip {} is not programmed", vip.name());
    std::vector<uint32_t> out(katran_ring_size);
    for (uint32_t i = 0; i < katran_ring_size; ++i) {
        uint32_t k = meta.vip_num * katran_ring_size + i;
        if (bpf_map_lookup_elem(_s->ch_rings, &k, &out[i]) != 0) return errno_fail(fmt::format("ch_rings[{}]", k));
    }
    return out;
}

result<change_report> balancer::apply(const lb_config& cfg) {
    state& s = *_s;
    change_report report;
    uint32_t zero = 0;
    uint64_t mac = 0;
    std::memcpy(&mac, cfg.gateway_mac.data(), 6);
    if (bpf_map_update_elem(s.ctl_array, &zero, &mac, BPF_ANY) != 0) return errno_fail("ctl_array[0] (gateway MAC)");

    if (s.pckt_srcs >= 0) {
        // GUE: the outer source of encapsulated packets, pckt_srcs[0] IPv4 and [1] IPv6.
        if (cfg.encap_source_v4.empty() && cfg.encap_source_v6.empty())
            return fail(EINVAL, "this object encapsulates in GUE (it has pckt_srcs): set encap_sources (v4, v6)");
        for (auto [text, key, v6] : {std::tuple{&cfg.encap_source_v4, v4_src_index, false}, {&cfg.encap_source_v6, v6_src_index, true}}) {
            if (text->empty()) continue;
            auto a = parse_address(*text);
            if (!a) return tl::unexpected(with_context(a.error(), "encap_sources"));
            if (a->v6 != v6) return fail(EINVAL, "encap_sources.{}: '{}' is not an IPv{} address", v6 ? "v6" : "v4", *text, v6 ? 6 : 4);
            real_definition src{};
            std::memcpy(src.addr, a->bytes.data(), 16);
            uint32_t k = key;
            if (bpf_map_update_elem(s.pckt_srcs, &k, &src, BPF_ANY) != 0) return errno_fail(fmt::format("pckt_srcs[{}]", key));
        }
    }

    auto now = read_held(s.vip_map, s.reals);
    if (!now) return tl::unexpected(now.error());

    // Reals: every address a VIP or a server id names gets an index, kept if it has one.
    std::set<address> wanted;
    for (const auto& v : cfg.vips)
        for (const auto& r : v.reals) {
            auto a = parse_address(r.address);
            if (!a) return tl::unexpected(with_context(a.error(), "vip " + v.name() + " real"));
            wanted.insert(*a);
        }
    for (const auto& [id, text] : cfg.server_ids) {
        auto a = parse_address(text);
        if (!a) return tl::unexpected(with_context(a.error(), fmt::format("server id {}", id)));
        wanted.insert(*a);
    }
    std::set<uint32_t> used;
    for (const auto& [a, i] : now->reals) used.insert(i);
    std::map<address, uint32_t> index = now->reals;
    uint32_t next_free = 1;
    for (const address& a : wanted) {
        if (index.count(a)) continue;
        while (used.count(next_free)) ++next_free;
        if (next_free >= max_reals) return fail(ENOSPC, "more than {} reals", max_reals - 1);
        real_definition r{};
        std::memcpy(r.addr, a.bytes.data(), 16);
        r.flags = a.v6 ? real_f_ipv6 : 0;
        if (bpf_map_update_elem(s.reals, &next_free, &r, BPF_ANY) != 0) return errno_fail("reals[" + std::to_string(next_free) + "]");
        index[a] = next_free;
        used.insert(next_free);
        ++report.reals_added;
    }

    // VIPs: the ring first, then the VIP, so the program never meets a VIP with an empty ring.
    std::set<uint32_t> vip_nums;
    for (const auto& [k, m] : now->vips) vip_nums.insert(m.vip_num);
    std::vector<uint32_t> current(katran_ring_size);
    for (const auto& v : cfg.vips) {
        auto key = vip_key(v);
        if (!key) return tl::unexpected(key.error());
        auto it = std::find_if(now->vips.begin(), now->vips.end(), [&](const auto& e) { return same_key(e.first, *key); });
        vip_meta meta{v.flags, 0};
        bool fresh = it == now->vips.end();
        if (fresh) {
            while (vip_nums.count(meta.vip_num)) ++meta.vip_num;
            if (meta.vip_num >= max_vips) return fail(ENOSPC, "vip {}: more than {} VIPs", v.name(), max_vips);
            vip_nums.insert(meta.vip_num);
        } else {
            meta.vip_num = it->second.vip_num;
        }
        std::vector<maglev_endpoint> eps;
        for (const auto& r : v.reals) {
            auto a = parse_address(r.address);
            eps.push_back({index.at(*a), a->text(), r.weight});
        }
        auto table = maglev_table(eps);
        std::vector<uint32_t> keys, values;
        for (uint32_t i = 0; i < katran_ring_size; ++i) {
            uint32_t k = meta.vip_num * katran_ring_size + i;
            if (bpf_map_lookup_elem(s.ch_rings, &k, &current[i]) != 0) return errno_fail(fmt::format("ch_rings[{}]", k));
            if (current[i] != table[i]) {
                keys.push_back(k);
                values.push_back(table[i]);
            }
        }
        if (!keys.empty()) {
            // As KatranLb: one MAP_UPDATE_BATCH where the probe found batches; else (or if the
            // batch is refused) element by element.
            uint32_t count = uint32_t(keys.size());
            if (!s.batches_supported() || bpf_map_update_batch(s.ch_rings, keys.data(), values.data(), &count, nullptr) != 0) {
                for (size_t i = 0; i < keys.size(); ++i)
                    if (bpf_map_update_elem(s.ch_rings, &keys[i], &values[i], BPF_ANY) != 0)
                        return errno_fail(fmt::format("vip {}: ch_rings[{}]", v.name(), keys[i]));
            }
            report.ring_slots_written += keys.size();
        }
        if (fresh || it->second.flags != v.flags) {
            if (bpf_map_update_elem(s.vip_map, &*key, &meta, BPF_ANY) != 0) return errno_fail("vip_map: " + v.name());
            ++(fresh ? report.vips_added : report.vips_changed);
        }
    }
    // VIPs the configuration no longer has.
    for (const auto& [k, m] : now->vips) {
        bool kept = false;
        for (const auto& v : cfg.vips)
            if (auto key = vip_key(v); key && same_key(*key, k)) kept = true;
        if (kept) continue;
        vip_definition gone = k;
        if (bpf_map_delete_elem(s.vip_map, &gone) != 0 && errno != ENOENT) return errno_fail("vip_map delete");
        ++report.vips_removed;
    }
    // Server ids, then the reals nothing names any more.
    for (const auto& [id, text] : cfg.server_ids) {
        uint32_t real = index.at(*parse_address(text));
        uint32_t key = id, one = 1;
        if (bpf_map_update_elem(s.server_id_map, &key, &real, BPF_ANY) != 0) return errno_fail(fmt::format("server_id_map[{}]", id));
        if (bpf_map_update_elem(s.ids_ledger, &key, &one, BPF_ANY) != 0)
            return errno_fail(fmt::format("server id {}: the ledger ({} ids at most)", id, ids_ledger_entries));
    }
    std::vector<uint32_t> dropped;
    uint32_t at = 0, next = 0;
    for (bool first = true; bpf_map_get_next_key(s.ids_ledger, first ? nullptr : &at, &next) == 0; first = false) {
        at = next;
        if (!cfg.server_ids.count(at)) dropped.push_back(at);
    }
    for (uint32_t id : dropped) {
        uint32_t none = 0;
        int r = s.server_ids_hashed ? bpf_map_delete_elem(s.server_id_map, &id) : bpf_map_update_elem(s.server_id_map, &id, &none, BPF_ANY);
        if (r != 0 && errno != ENOENT) return errno_fail(fmt::format("clear server_id_map[{}]", id));
        bpf_map_delete_elem(s.ids_ledger, &id);
        ++report.server_ids_removed;
    }
    std::set<uint32_t> gone;
    for (const auto& [a, i] : now->reals)
        if (!wanted.count(a)) gone.insert(i);
    if (!gone.empty()) {
        auto purged = s.purge_lru(gone);
        if (!purged) return tl::unexpected(purged.error());
        report.lru_entries_purged = *purged;
    }
    for (const auto& [a, i] : now->reals) {
        if (wanted.count(a)) continue;
        real_definition none{};
        uint32_t k = i;
        if (bpf_map_update_elem(s.reals, &k, &none, BPF_ANY) != 0) return errno_fail(fmt::format("reals[{}]", i));
        ++report.reals_removed;
    }
    return report;
}

result<void> balancer::attach(const lb_config& cfg) {
    if (!cfg.root_array.empty()) {
        int root = bpf_obj_get(cfg.root_array.c_str());
        if (root < 0) return errno_fail("xdp_root's array " + cfg.root_array);
        int r = bpf_map_update_elem(root, &cfg.root_index, &_s->prog, BPF_ANY);
        int e = errno;
        close(root);
        if (r != 0) return fail(e, "{}[{}]: {}", cfg.root_array, cfg.root_index, strerror(e));
        return {};
    }
    if (cfg.interface.empty()) return fail(EINVAL, "nothing to attach to: set `interface:` (standalone) or `shared:` (xdp_root)");
    int ifindex = int(if_nametoindex(cfg.interface.c_str()));
    if (!ifindex) return errno_fail("interface " + cfg.interface);
    uint32_t flags = cfg.xdp_mode == "skb" ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
    if (int err = bpf_xdp_attach(ifindex, _s->prog, flags, nullptr); err != 0)
        return fail(-err, "attach to {} ({} mode): {}", cfg.interface, cfg.xdp_mode, strerror(-err));
    return {};
}

result<void> balancer::detach(const lb_config& cfg) {
    if (!cfg.root_array.empty()) {
        int root = bpf_obj_get(cfg.root_array.c_str());
        if (root < 0) return errno_fail("xdp_root's array " + cfg.root_array);
        int r = bpf_map_delete_elem(root, &cfg.root_index);
        int e = errno;
        close(root);
        if (r != 0 && e != ENOENT) return fail(e, "{}[{}]: {}", cfg.root_array, cfg.root_index, strerror(e));
        return {};
    }
    int ifindex = int(if_nametoindex(cfg.interface.c_str()));
    if (!ifindex) return errno_fail("interface " + cfg.interface);
    uint32_t flags = cfg.xdp_mode == "skb" ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
    if (int err = bpf_xdp_detach(ifindex, flags, nullptr); err != 0) return fail(-err, "detach from {}: {}", cfg.interface, strerror(-err));
    return {};
}

result<void> balancer::unpin(const lb_config& cfg) {
    if (cfg.pin_dir.empty()) return {};
    std::error_code ec;
    // The program and every map libbpf pinned: katran-port's and the object's others.
    for (const auto& e : std::filesystem::directory_iterator(cfg.pin_dir, ec)) std::filesystem::remove(e.path(), ec);
    std::filesystem::remove(cfg.pin_dir, ec);
    return {};
}

namespace {

result<counters> percpu_sum(int fd, uint32_t key, uint32_t ncpu, const char* what) {
    std::vector<lb_stats> per(ncpu);
    if (bpf_map_lookup_elem(fd, &key, per.data()) != 0) return errno_fail(fmt::format("{}[{}]", what, key));
    counters c;
    for (const auto& p : per) c.packets += p.v1, c.bytes += p.v2;
    return c;
}

}  // namespace

result<counters> balancer::vip_stats(const vip_spec& vip) const {
    auto key = vip_key(vip);
    if (!key) return tl::unexpected(key.error());
    vip_meta meta{};
    if (bpf_map_lookup_elem(_s->vip_map, &*key, &meta) != 0) return fail(ENOENT, "vip {} is not programmed", vip.name());
    return percpu_sum(_s->stats, meta.vip_num, _s->ncpu, "stats");
}

uint32_t balancer::real_index(const std::string& text) const {
    auto a = parse_address(text);
    if (!a || a->zero()) return 0;  // an all-zero address marks a free index
    for (uint32_t i = 1; i < max_reals; ++i) {
        real_definition r{};
        if (bpf_map_lookup_elem(_s->reals, &i, &r) != 0) return 0;
        if (std::memcmp(r.addr, a->bytes.data(), 16) == 0 && bool(r.flags & real_f_ipv6) == a->v6) return i;
    }
    return 0;
}

result<counters> balancer::real_stats(const std::string& text) const {
    uint32_t i = real_index(text);
    if (!i) return fail(ENOENT, "real {} is not programmed", text);
    return percpu_sum(_s->reals_stats, i, _s->ncpu, "reals_stats");
}

}  // namespace xdprt::katran
