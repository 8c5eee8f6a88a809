// katran-port's YAML (katran-port/README.md): every key checked, unknown keys refused, each error
// naming the file and the key.
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <set>

#include "balancer.h"

namespace xdprt::katran {

namespace {

struct reader {
    std::string file;

    result<void> only(const YAML::Node& n, const std::string& where, std::initializer_list<const char*> keys) const {
        if (!n.IsMap()) return fail(EINVAL, "{}: {}: expected a mapping", file, where);
        std::set<std::string> allowed(keys.begin(), keys.end());
        for (const auto& kv : n) {
            auto k = kv.first.as<std::string>();
            if (!allowed.count(k)) return fail(EINVAL, "{}: {}: unknown key '{}'", file, where, k);
        }
        return {};
    }

    template <class T>
    result<T> get(const YAML::Node& n, const std::string& where) const {
        try {
            return n.as<T>();
        } catch (const YAML::Exception&) {
            return fail(EINVAL, "{}: {}: '{}' is not valid here", file, where, YAML::Dump(n));
        }
    }
};

result<std::array<uint8_t, 6>> parse_mac(const std::string& text, const std::string& where) {
    std::array<unsigned, 6> b{};
    char tail = 0;
    if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
        return fail(EINVAL, "{}: '{}' is not a MAC address (aa:bb:cc:dd:ee:ff)", where, text);
    std::array<uint8_t, 6> out{};
    for (int i = 0; i < 6; ++i) {
        if (b[i] > 255) return fail(EINVAL, "{}: '{}' is not a MAC address", where, text);
        out[i] = uint8_t(b[i]);
    }
    return out;
}

}  // namespace

result<lb_config> load_config(const std::string& path) {
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::Exception& e) {
        return fail(EINVAL, "{}: {}", path, e.what());
    }
    reader r{path};
    if (auto ok = r.only(root, "top level", {"object", "pin_dir", "interface", "xdp_mode", "shared", "gateway_mac",
                                             "forwarding_cores", "lru_size", "vips", "server_ids",
                                             "encap_sources"});
        !ok)
        return tl::unexpected(ok.error());
    lb_config cfg;
    auto str = [&](const char* key, std::string& out) -> result<void> {
        if (!root[key]) return {};
        auto v = r.get<std::string>(root[key], key);
        if (!v) return tl::unexpected(v.error());
        out = *v;
        return {};
    };
    for (auto [key, out] : {std::pair{"object", &cfg.object}, {"pin_dir", &cfg.pin_dir}, {"interface", &cfg.interface},
                            {"xdp_mode", &cfg.xdp_mode}})
        if (auto ok = str(key, *out); !ok) return tl::unexpected(ok.error());
    if (cfg.xdp_mode != "native" && cfg.xdp_mode != "skb")
        return fail(EINVAL, "{}: xdp_mode: '{}' (native or skb)", path, cfg.xdp_mode);
    if (auto s = root["shared"]) {
        if (auto ok = r.only(s, "shared", {"root_array", "index"}); !ok) return tl::unexpected(ok.error());
        auto a = r.get<std::string>(s["root_array"], "shared.root_array");
        if (!a) return tl::unexpected(a.error());
        cfg.root_array = *a;
        if (s["index"]) {
            auto i = r.get<uint32_t>(s["index"], "shared.index");
            if (!i) return tl::unexpected(i.error());
            cfg.root_index = *i;
        }
    }
    if (auto m = root["gateway_mac"]) {
        auto text = r.get<std::string>(m, "gateway_mac");
        if (!text) return tl::unexpected(text.error());
        auto mac = parse_mac(*text, path + ": gateway_mac");
        if (!mac) return tl::unexpected(mac.error());
        cfg.gateway_mac = *mac;
    }
    if (auto c = root["forwarding_cores"]) {
        auto v = r.get<std::vector<uint32_t>>(c, "forwarding_cores");
        if (!v) return tl::unexpected(v.error());
        cfg.cores = *v;
    }
    if (auto l = root["lru_size"]) {
        auto v = r.get<uint32_t>(l, "lru_size");
        if (!v) return tl::unexpected(v.error());
        if (*v == 0) return fail(EINVAL, "{}: lru_size: must be at least 1", path);
        cfg.lru_size = *v;
    }
    if (auto vips = root["vips"]) {
        if (!vips.IsSequence()) return fail(EINVAL, "{}: vips: expected a list", path);
        for (size_t i = 0; i < vips.size(); ++i) {
            const auto& n = vips[i];
            std::string where = fmt::format("vips[{}]", i);
            if (auto ok = r.only(n, where, {"address", "port", "proto", "flags", "reals"}); !ok) return tl::unexpected(ok.error());
            vip_spec v;
            auto addr = r.get<std::string>(n["address"], where + ".address");
            auto port = r.get<uint16_t>(n["port"], where + ".port");
            if (!addr) return tl::unexpected(addr.error());
            if (!port) return tl::unexpected(port.error());
            v.address = *addr;
            v.port = *port;
            std::string proto = n["proto"] ? n["proto"].as<std::string>("") : "tcp";
            if (proto == "tcp") v.proto = 6;
            else if (proto == "udp") v.proto = 17;
            else return fail(EINVAL, "{}: {}.proto: '{}' (tcp or udp)", path, where, proto);
            if (auto f = n["flags"]) {
                auto names = r.get<std::vector<std::string>>(f, where + ".flags");
                if (!names) return tl::unexpected(names.error());
                for (const auto& name : *names) {
                    bool known = false;
                    for (const auto& [fname, bit] : vip_flag_names)
                        if (name == fname) v.flags |= bit, known = true;
                    if (!known) return fail(EINVAL, "{}: {}.flags: unknown flag '{}'", path, where, name);
                }
            }
            if (auto reals = n["reals"]) {
                if (!reals.IsSequence()) return fail(EINVAL, "{}: {}.reals: expected a list", path, where);
                for (size_t k = 0; k < reals.size(); ++k) {
                    std::string rw = fmt::format("{}.reals[{}]", where, k);
                    if (auto ok = r.only(reals[k], rw, {"address", "weight"}); !ok) return tl::unexpected(ok.error());
                    real_spec rs;
                    auto ra = r.get<std::string>(reals[k]["address"], rw + ".address");
                    if (!ra) return tl::unexpected(ra.error());
                    rs.address = *ra;
                    if (reals[k]["weight"]) {
                        auto w = r.get<uint32_t>(reals[k]["weight"], rw + ".weight");
                        if (!w) return tl::unexpected(w.error());
                        rs.weight = *w;
                    }
                    v.reals.push_back(rs);
                }
            }
            cfg.vips.push_back(std::move(v));
        }
    }
    if (auto e = root["encap_sources"]) {
        if (auto ok = r.only(e, "encap_sources", {"v4", "v6"}); !ok) return tl::unexpected(ok.error());
        for (auto [key, out] : {std::pair{"v4", &cfg.encap_source_v4}, {"v6", &cfg.encap_source_v6}}) {
            if (!e[key]) continue;
            auto v = r.get<std::string>(e[key], std::string("encap_sources.") + key);
            if (!v) return tl::unexpected(v.error());
            *out = *v;
        }
    }
    if (auto ids = root["server_ids"]) {
        if (!ids.IsMap()) return fail(EINVAL, "{}: server_ids: expected a mapping of id: real address", path);
        for (const auto& kv : ids) {
            auto id = r.get<uint32_t>(kv.first, "server_ids key");
            auto addr = r.get<std::string>(kv.second, "server_ids value");
            if (!id) return tl::unexpected(id.error());
            if (!addr) return tl::unexpected(addr.error());
            if (*id == 0 || *id >= (1u << 24)) return fail(EINVAL, "{}: server_ids: id {} outside 1..2^24-1", path, *id);
            cfg.server_ids[*id] = *addr;
        }
    }
    return cfg;
}

}  // namespace xdprt::katran
