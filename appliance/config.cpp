#include "appliance/config.h"

#include <grp.h>

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace xdprt::appliance {

namespace {

// A node with where it is: every error names file:line:col and the key path.
struct at {
    const YAML::Node node;  // a handle, by value: iterator proxies do not outlive their expression
    std::string path;
    const std::string& file;

    error err(std::string_view what) const {
        auto m = node.Mark();  // a node that is not in the text (an empty file) has no mark: 1:1
        return error{EINVAL, fmt::format("{}:{}:{}: {}: {}", file, std::max(m.line, 0) + 1, std::max(m.column, 0) + 1, path.empty() ? "(top)" : path, what)};
    }
    at child(const YAML::Node& n, std::string_view key) const {
        return at{n, path.empty() ? std::string(key) : fmt::format("{}.{}", path, key), file};
    }
};

std::string scalar_text(const YAML::Node& n) { return n.IsScalar() ? n.Scalar() : n.IsMap() ? "a map" : n.IsSequence() ? "a list" : "nothing"; }

// Unknown keys are errors: each map's keys are checked against what the struct has.
result<void> only_keys(const at& a, std::initializer_list<std::string_view> keys) {
    if (!a.node.IsMap()) return tl::unexpected(a.err(fmt::format("expected a map, got {}", scalar_text(a.node))));
    for (auto it = a.node.begin(); it != a.node.end(); ++it) {
        std::string k = it->first.as<std::string>("");
        if (std::find(keys.begin(), keys.end(), k) == keys.end())
            return tl::unexpected(at{it->first, a.path, a.file}.err(fmt::format("unknown key '{}' (known: {})", k, fmt::join(keys, ", "))));
    }
    return {};
}

template <class T>
result<void> integer(const at& a, T& out, uint64_t lo, uint64_t hi) {
    if (!a.node.IsScalar()) return tl::unexpected(a.err(fmt::format("expected an integer, got {}", scalar_text(a.node))));
    const std::string& s = a.node.Scalar();
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, 0);
    if (s.empty() || *end || errno || s[0] == '-') return tl::unexpected(a.err(fmt::format("expected an integer, got '{}'", s)));
    if (v < lo || v > hi) return tl::unexpected(a.err(fmt::format("{} is out of range [{}, {}]", v, lo, hi)));
    out = T(v);
    return {};
}

result<void> boolean(const at& a, bool& out) {
    if (!a.node.IsScalar()) return tl::unexpected(a.err(fmt::format("expected true or false, got {}", scalar_text(a.node))));
    const std::string& s = a.node.Scalar();
    if (s == "true" || s == "yes" || s == "on") out = true;
    else if (s == "false" || s == "no" || s == "off") out = false;
    else return tl::unexpected(a.err(fmt::format("expected true or false, got '{}'", s)));
    return {};
}

result<void> string(const at& a, std::string& out) {
    if (!a.node.IsScalar()) return tl::unexpected(a.err(fmt::format("expected a string, got {}", scalar_text(a.node))));
    out = a.node.Scalar();
    return {};
}

template <class E>
result<void> one_of(const at& a, E& out, std::initializer_list<std::pair<std::string_view, E>> choices) {
    std::string s;
    // `kind: null` reads as YAML's null: taken as the word where "null" is a choice.
    if (a.node.IsNull())
        for (auto& [n, v] : choices)
            if (n == "null") {
                out = v;
                return {};
            }
    if (auto ok = string(a, s); !ok) return ok;
    std::vector<std::string_view> names;
    for (auto& [n, v] : choices) {
        if (n == s) {
            out = v;
            return {};
        }
        names.push_back(n);
    }
    return tl::unexpected(a.err(fmt::format("'{}' is not one of {}", s, fmt::join(names, ", "))));
}

#define XDPRT_TRY(expr)                                          \
    do {                                                         \
        if (auto _ok = (expr); !_ok) return tl::unexpected(_ok.error()); \
    } while (0)

result<void> parse_port(const at& a, dataplane::port_spec& p, std::optional<program_config>& prog) {
    XDPRT_TRY(only_keys(a, {"name", "kind", "device", "rx_pcap", "tx_pcap", "devargs", "rx_queues", "rx_desc", "tx_desc",
                            "twin", "promiscuous", "program"}));
    if (!a.node["name"]) return tl::unexpected(a.err("a port needs a name"));
    if (!a.node["kind"]) return tl::unexpected(a.err("a port needs a kind (pci, af_xdp, tap, ring, null, pcap, memif)"));
    for (auto it = a.node.begin(); it != a.node.end(); ++it) {
        std::string k = it->first.as<std::string>();
        at v = a.child(it->second, k);
        if (k == "name") XDPRT_TRY(string(v, p.name));
        else if (k == "kind")
            XDPRT_TRY(one_of(v, p.kind, {{"pci", dataplane::port_kind::pci}, {"af_xdp", dataplane::port_kind::af_xdp},
                                         {"tap", dataplane::port_kind::tap}, {"ring", dataplane::port_kind::ring},
                                         {"null", dataplane::port_kind::null}, {"pcap", dataplane::port_kind::pcap},
                                         {"memif", dataplane::port_kind::memif}}));
        else if (k == "device") XDPRT_TRY(string(v, p.device));
        else if (k == "rx_pcap") XDPRT_TRY(string(v, p.rx_pcap));
        else if (k == "tx_pcap") XDPRT_TRY(string(v, p.tx_pcap));
        else if (k == "devargs") XDPRT_TRY(string(v, p.devargs));
        else if (k == "rx_queues") XDPRT_TRY(integer(v, p.rx_queues, 1, 64));
        else if (k == "rx_desc") XDPRT_TRY(integer(v, p.rx_desc, 64, 16384));
        else if (k == "tx_desc") XDPRT_TRY(integer(v, p.tx_desc, 64, 16384));
        else if (k == "twin") XDPRT_TRY(boolean(v, p.twin));
        else if (k == "promiscuous") XDPRT_TRY(boolean(v, p.promiscuous));
        else if (k == "program") {
            XDPRT_TRY(only_keys(v, {"object", "name"}));
            if (!v.node["object"]) return tl::unexpected(v.err("a program needs an object (a .bpf.o file)"));
            program_config pc;
            XDPRT_TRY(string(v.child(v.node["object"], "object"), pc.object));
            if (v.node["name"]) XDPRT_TRY(string(v.child(v.node["name"], "name"), pc.name));
            auto m = v.node.Mark();
            pc.where = fmt::format("{}:{}:{}: {}", a.file, m.line + 1, m.column + 1, v.path);
            prog = pc;
        }
    }
    return {};
}

result<void> parse_worker(const at& a, dataplane::worker_spec& w) {
    XDPRT_TRY(only_keys(a, {"lcore", "queues"}));
    if (!a.node["lcore"]) return tl::unexpected(a.err("a worker needs an lcore"));
    XDPRT_TRY(integer(a.child(a.node["lcore"], "lcore"), w.lcore, 0, 127));
    if (const YAML::Node& q = a.node["queues"]) {
        at qs = a.child(q, "queues");
        if (!q.IsSequence()) return tl::unexpected(qs.err(fmt::format("expected a list, got {}", scalar_text(q))));
        for (size_t k = 0; k < q.size(); ++k) {
            at e{q[k], fmt::format("{}[{}]", qs.path, k), a.file};
            XDPRT_TRY(only_keys(e, {"port", "queue"}));
            dataplane::worker_spec::queue wq;
            if (!e.node["port"]) return tl::unexpected(e.err("needs a port"));
            XDPRT_TRY(string(e.child(e.node["port"], "port"), wq.port));
            if (e.node["queue"]) XDPRT_TRY(integer(e.child(e.node["queue"], "queue"), wq.rx_queue, 0, 63));
            w.queues.push_back(wq);
        }
    }
    return {};
}

result<config> parse(const YAML::Node& root, const std::string& file) {
    config c;
    c.file = file;
    at top{root, "", file};
    if (!root || root.IsNull()) return tl::unexpected(top.err("the file is empty"));
    XDPRT_TRY(only_keys(top, {"eal", "dataplane", "server", "control", "ports", "workers", "stats_file"}));
    if (const YAML::Node& e = root["eal"]) {
        at ea = top.child(e, "eal");
        XDPRT_TRY(only_keys(ea, {"lcores", "memory_mb", "hugepages", "args"}));
        if (e["lcores"]) XDPRT_TRY(string(ea.child(e["lcores"], "lcores"), c.lcores));
        if (e["memory_mb"]) XDPRT_TRY(integer(ea.child(e["memory_mb"], "memory_mb"), c.memory_mb, 64, 1 << 20));
        if (e["hugepages"]) XDPRT_TRY(boolean(ea.child(e["hugepages"], "hugepages"), c.hugepages));
        if (const YAML::Node& args = e["args"]) {
            at aa = ea.child(args, "args");
            if (!args.IsSequence()) return tl::unexpected(aa.err("expected a list of strings"));
            for (size_t k = 0; k < args.size(); ++k) {
                std::string s;
                XDPRT_TRY(string(at{args[k], fmt::format("{}[{}]", aa.path, k), file}, s));
                c.eal_args.push_back(s);
            }
        }
    }
    if (const YAML::Node& d = root["dataplane"]) {
        at da = top.child(d, "dataplane");
        XDPRT_TRY(only_keys(da, {"burst", "mbufs"}));
        if (d["burst"]) XDPRT_TRY(integer(da.child(d["burst"], "burst"), c.options.dataplane.burst, 1, dataplane::max_burst));
        if (d["mbufs"]) XDPRT_TRY(integer(da.child(d["mbufs"], "mbufs"), c.options.dataplane.mbufs, 1024, 1u << 24));
    }
    if (const YAML::Node& s = root["server"]) {
        at sa = top.child(s, "server");
        XDPRT_TRY(only_keys(sa, {"pin_root", "verify", "unsafe", "engine"}));
        std::string pin;
        if (s["pin_root"]) {
            XDPRT_TRY(string(sa.child(s["pin_root"], "pin_root"), pin));
            c.options.server.pin_root = pin;
        }
        if (s["verify"])
            XDPRT_TRY(one_of(sa.child(s["verify"], "verify"), c.options.server.verify,
                             {{"kernel", control::verify_mode::kernel}, {"builtin", control::verify_mode::builtin},
                              {"off", control::verify_mode::off}}));
        if (s["unsafe"]) XDPRT_TRY(boolean(sa.child(s["unsafe"], "unsafe"), c.options.server.unsafe));
        if (s["engine"])
            XDPRT_TRY(one_of(sa.child(s["engine"], "engine"), c.options.server.default_engine,
                             {{"jit", control::engine::jit}, {"interpreter", control::engine::interpreter}}));
        if (c.options.server.verify == control::verify_mode::off && !c.options.server.unsafe)
            return tl::unexpected(sa.child(s["verify"], "verify").err("'off' runs unverified programs: it needs 'unsafe: true' beside it"));
        if (c.options.server.verify == control::verify_mode::builtin)
            return tl::unexpected(sa.child(s["verify"], "verify").err("the builtin verifier is not part of this build yet: use 'kernel'"));
    }
    if (const YAML::Node& k = root["control"]) {
        at ka = top.child(k, "control");
        XDPRT_TRY(only_keys(ka, {"socket", "group"}));
        if (k["socket"]) {
            std::string path;
            XDPRT_TRY(string(ka.child(k["socket"], "socket"), path));
            c.control.path = path;
        }
        if (k["group"]) {
            std::string name;
            at ga = ka.child(k["group"], "group");
            XDPRT_TRY(string(ga, name));
            group* g = getgrnam(name.c_str());
            if (!g) return tl::unexpected(ga.err(fmt::format("no group '{}' on this host", name)));
            c.control.group = g->gr_gid;
        }
    }
    if (root["stats_file"]) XDPRT_TRY(string(top.child(root["stats_file"], "stats_file"), c.stats_file));
    const YAML::Node& ports = root["ports"];
    if (!ports) return tl::unexpected(top.err("no 'ports': the appliance needs at least one port"));
    at pa = top.child(ports, "ports");
    if (!ports.IsSequence() || ports.size() == 0) return tl::unexpected(pa.err("expected a non-empty list of ports"));
    std::set<std::string> names;
    for (size_t k = 0; k < ports.size(); ++k) {
        at p{ports[k], fmt::format("ports[{}]", k), file};
        dataplane::port_spec spec;
        std::optional<program_config> prog;
        XDPRT_TRY(parse_port(p, spec, prog));
        // Validation: what a kind needs.
        using K = dataplane::port_kind;
        if ((spec.kind == K::pci || spec.kind == K::af_xdp) && spec.device.empty())
            return tl::unexpected(p.err(fmt::format("a {} port needs a device ({})", dataplane::port_kind_name(spec.kind),
                                                    spec.kind == K::pci ? "its PCI address" : "the kernel interface")));
        if (spec.kind == K::pcap && (spec.rx_pcap.empty() || spec.tx_pcap.empty()))
            return tl::unexpected(p.err("a pcap port needs rx_pcap (the capture read) and tx_pcap (the capture written)"));
        if (spec.kind == K::af_xdp && spec.device == spec.name && spec.twin)
            return tl::unexpected(p.err(fmt::format("the twin takes the port's name, and '{}' is the kernel interface af_xdp reads: name the port otherwise", spec.name)));
        if (spec.name.empty() || spec.name.size() > 15) return tl::unexpected(p.err("a name of 1 to 15 characters (it names the kernel twin)"));
        if (!names.insert(spec.name).second) return tl::unexpected(p.err(fmt::format("port '{}' is named twice", spec.name)));
        c.options.dataplane.ports.push_back(spec);
        c.programs.push_back(prog);
    }
    if (const YAML::Node& ws = root["workers"]) {
        at wa = top.child(ws, "workers");
        if (!ws.IsSequence()) return tl::unexpected(wa.err("expected a list of workers"));
        for (size_t k = 0; k < ws.size(); ++k) {
            at w{ws[k], fmt::format("workers[{}]", k), file};
            dataplane::worker_spec spec;
            XDPRT_TRY(parse_worker(w, spec));
            for (auto& q : spec.queues)
                if (!names.count(q.port)) return tl::unexpected(w.err(fmt::format("no port '{}'", q.port)));
            c.options.dataplane.workers.push_back(spec);
        }
    }
    c.options.dataplane.eal_args = {"-l", c.lcores, "-m", std::to_string(c.memory_mb), "--no-pci"};
    bool any_pci = false;
    for (auto& p : c.options.dataplane.ports) any_pci |= p.kind == dataplane::port_kind::pci;
    if (any_pci) c.options.dataplane.eal_args.pop_back();
    if (!c.hugepages) {
        c.options.dataplane.eal_args.push_back("--no-huge");
        c.options.dataplane.eal_args.push_back("--no-shconf");
    }
    c.options.dataplane.eal_args.insert(c.options.dataplane.eal_args.end(), c.eal_args.begin(), c.eal_args.end());
    return c;
}

#undef XDPRT_TRY

}  // namespace

result<config> parse_config(const std::string& text, const std::string& name) {
    // yaml-cpp throws: converted here, at the module's edge.
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        return fail(EINVAL, "{}:{}:{}: {}", name, e.mark.line + 1, e.mark.column + 1, e.msg);
    }
    try {
        return parse(root, name);
    } catch (const YAML::Exception& e) {
        return fail(EINVAL, "{}:{}:{}: {}", name, e.mark.line + 1, e.mark.column + 1, e.msg);
    }
}

result<config> load_config(const std::filesystem::path& path) {
    std::ifstream f(path);
    if (!f) return fail(ENOENT, "{}: cannot read the file", path.string());
    std::stringstream ss;
    ss << f.rdbuf();
    auto c = parse_config(ss.str(), path.string());
    if (!c) return c;
    // Program objects are found beside the config file.
    for (auto& p : c->programs)
        if (p && std::filesystem::path(p->object).is_relative()) p->object = (path.parent_path() / p->object).string();
    return c;
}

}  // namespace xdprt::appliance
