// xdprt run -c FILE: the appliance (DESIGN.md section 4), and xdprt stats, which reads what a
// running appliance publishes.
//
// The stats file: rewritten once a second (write to a temporary, rename), one line per port and
// counter: `PORT IFINDEX COUNTER PACKETS BYTES PACKETS_PER_S BYTES_PER_S`, after a first line
// `xdprt-stats 1 UNIX_TIME_NS`; the port's totals under its name, each RX queue's under
// `PORT:qN`. Plain text, so a shell can read it too.
#include "run.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "appliance/config.h"
#include "control/inprocess.h"
#include "control/socket.h"

namespace xdprt::tools {

namespace {

// libbpf's messages, demoted one level: warnings are shown, debug text is not.
int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
    if (level == LIBBPF_DEBUG) return 0;
    std::fputs("xdprt: ", stderr);  // libbpf's lines start with "libbpf: " themselves
    return std::vfprintf(stderr, format, args);
}

struct loaded {
    bpf_object* object = nullptr;
    int link = -1;
};

// Loads the port's program with libbpf (into the in-process server) and attaches it: a bpf_link
// on the port's ifindex, as an XDP application would, or directly for a port without a twin.
result<loaded> load_and_attach(appliance::appliance& app, size_t port, const appliance::program_config& pc) {
    auto where = [&](int code, std::string what) { return fail(code, "{}: {}: {}", pc.where, pc.object, what); };
    // Closed on every failure below; released to the caller once attached.
    std::unique_ptr<bpf_object, void (*)(bpf_object*)> object(bpf_object__open_file(pc.object.c_str(), nullptr),
                                                              bpf_object__close);
    if (!object) {
        int e = errno;
        char why[128];
        libbpf_strerror(e, why, sizeof why);  // libbpf's own codes (4001: not an ELF object) too
        return where(e, fmt::format("cannot open: {}", why));
    }
    if (bpf_object__load(object.get()) != 0) {
        int e = errno;
        std::string why = app.server().last_error();
        return where(e, fmt::format("load failed: {}", why.empty() ? std::strerror(e) : why));
    }
    bpf_program* prog = nullptr;
    if (pc.name.empty()) {
        bpf_program* p;
        bpf_object__for_each_program(p, object.get())
            if (bpf_program__type(p) == BPF_PROG_TYPE_XDP) {
                prog = p;
                break;
            }
    } else {
        prog = bpf_object__find_program_by_name(object.get(), pc.name.c_str());
    }
    if (!prog) return where(ENOENT, pc.name.empty() ? "no XDP program in the object" : fmt::format("no program '{}'", pc.name));
    loaded l;
    const auto& info = app.dataplane().ports()[port];
    if (info.ifindex) {
        l.link = bpf_link_create(bpf_program__fd(prog), int(info.ifindex), BPF_XDP, nullptr);
        if (l.link < 0) return where(errno, fmt::format("attach to '{}': {}", info.name, app.server().last_error()));
    } else {
        auto r = app.server().runnable(bpf_program__fd(prog));
        if (!r) return where(r.error().code, r.error().message);
        if (auto ok = app.dataplane().attach(port, {r->prog, r->owner, r->name}); !ok) return where(ok.error().code, ok.error().message);
    }
    l.object = object.release();
    return l;
}

struct snapshot {
    std::chrono::steady_clock::time_point at;
    std::vector<dataplane::port_stats> ports;
};

void write_stats(const std::string& file, const snapshot& now, const snapshot& before) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(file).parent_path(), ec);
    double secs = std::chrono::duration<double>(now.at - before.at).count();
    std::string out = fmt::format("xdprt-stats 1 {}\n", std::chrono::system_clock::now().time_since_epoch().count());
    auto lines = [&](const std::string& name, uint32_t ifindex, const uint64_t* packets, const uint64_t* bytes,
                     const uint64_t* packets_before, const uint64_t* bytes_before) {
        for (size_t c = 0; c < size_t(dataplane::counter::count_); ++c) {
            uint64_t dp = packets_before ? packets[c] - packets_before[c] : 0;
            uint64_t db = bytes_before ? bytes[c] - bytes_before[c] : 0;
            out += fmt::format("{} {} {} {} {} {:.0f} {:.0f}\n", name, ifindex, dataplane::counter_names[c], packets[c], bytes[c],
                               secs > 0 ? dp / secs : 0.0, secs > 0 ? db / secs : 0.0);
        }
    };
    for (size_t k = 0; k < now.ports.size(); ++k) {
        const auto& p = now.ports[k];
        const auto* b = before.ports.size() > k ? &before.ports[k] : nullptr;
        lines(p.name, p.ifindex, p.packets, p.bytes, b ? b->packets : nullptr, b ? b->bytes : nullptr);
        out += fmt::format("{} {} twin_rx {} 0 0 0\n", p.name, p.ifindex, p.twin_rx);
        for (size_t q = 0; q < p.queues.size(); ++q) {  // per queue: PORT:qN
            bool had = b && b->queues.size() > q;
            lines(fmt::format("{}:q{}", p.name, q), p.ifindex, p.queues[q].packets, p.queues[q].bytes,
                  had ? b->queues[q].packets : nullptr, had ? b->queues[q].bytes : nullptr);
        }
    }
    std::string tmp = file + ".tmp";
    {
        std::ofstream f(tmp, std::ios::trunc);
        f << out;
    }
    std::filesystem::rename(tmp, file, ec);
}

void print_summary(const snapshot& s, double secs) {
    fmt::print("\n{:<12} {:>8}", "port", "ifindex");
    for (auto* n : dataplane::counter_names) fmt::print(" {:>14}", n);
    fmt::print("\n");
    for (auto& p : s.ports) {
        fmt::print("{:<12} {:>8}", p.name, p.ifindex);
        for (uint64_t v : p.packets) fmt::print(" {:>14}", v);
        fmt::print("\n");
    }
    fmt::print("({:.1f} s)\n", secs);
}

}  // namespace

int run(const run_args& args) {
    auto cfg = appliance::load_config(args.config);
    if (!cfg) {
        fmt::print(stderr, "xdprt run: {}\n", cfg.error().message);
        return 1;
    }
    // SIGINT and SIGTERM are taken by sigtimedwait below; blocked before any thread starts so the
    // EAL's and the workers' threads inherit the mask.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    auto app = appliance::appliance::create(cfg->options);
    if (!app) {
        fmt::print(stderr, "xdprt run: {}: {}\n", args.config, app.error().message);
        return 1;
    }
    control::inprocess::route_to(&(*app)->server());
    libbpf_set_print(libbpf_print);
    std::vector<loaded> programs;
    int status = 0;
    for (size_t k = 0; k < cfg->programs.size() && !status; ++k) {
        if (!cfg->programs[k]) continue;
        auto l = load_and_attach(**app, k, *cfg->programs[k]);
        if (!l) {
            fmt::print(stderr, "xdprt run: {}\n", l.error().message);
            status = 1;
            break;
        }
        fmt::print("xdprt: port '{}': prog from {} attached\n", cfg->options.dataplane.ports[k].name, cfg->programs[k]->object);
        programs.push_back(*l);
    }
    if (!status) {
        if (auto ok = (*app)->dataplane().start(); !ok) {
            fmt::print(stderr, "xdprt run: {}\n", ok.error().message);
            status = 1;
        }
    }
    std::unique_ptr<control::control_socket> control_socket;
    if (!status) {
        auto cs = control::control_socket::create((*app)->server(), cfg->control);
        if (!cs) {
            fmt::print(stderr, "xdprt run: {}\n", cs.error().message);
            status = 1;
        } else {
            control_socket = std::move(*cs);
            fmt::print("xdprt: loaders reach the appliance at {} (xdprt with -- CMD)\n", cfg->control.path.string());
        }
    }
    if (!status) {
        for (auto& p : (*app)->dataplane().ports())
            fmt::print("xdprt: port '{}' up (ethdev {}, twin ifindex {})\n", p.name, p.ethdev, p.ifindex);
        fmt::print("xdprt: running; stats in {}; Ctrl-C stops\n", cfg->stats_file);
        std::fflush(stdout);
        const auto start = std::chrono::steady_clock::now();
        snapshot before{start, (*app)->dataplane().stats()};
        for (;;) {
            timespec one_second{1, 0};
            int sig = sigtimedwait(&stop_signals, nullptr, &one_second);
            snapshot now{std::chrono::steady_clock::now(), (*app)->dataplane().stats()};
            write_stats(cfg->stats_file, now, before);
            before = now;
            (*app)->server().reap();
            if (sig > 0) break;
            if (args.duration_s && now.at - start >= std::chrono::seconds(args.duration_s)) break;
        }
        (*app)->dataplane().stop();
        print_summary(before, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    control_socket.reset();
    for (auto& p : programs) {
        if (p.link >= 0) close(p.link);
        bpf_object__close(p.object);
    }
    // This process's bpf() goes to the kernel again before the ports close: the af_xdp PMD's
    // libxdp detaches its kernel program with bpf() calls of its own.
    control::inprocess::route_to(nullptr);
    app->reset();
    std::error_code ec;
    std::filesystem::remove(cfg->stats_file, ec);
    return status;
}

int stats(const stats_args& args) {
    std::ifstream f(args.file);
    std::string magic;
    int version = 0;
    uint64_t when = 0;
    if (!f || !(f >> magic >> version >> when) || magic != "xdprt-stats" || version != 1) {
        fmt::print(stderr, "xdprt stats: {}: no stats of a running appliance (is `xdprt run` up? see its stats_file)\n", args.file);
        return 1;
    }
    struct row {
        std::string port, counter;
        uint32_t ifindex;
        uint64_t packets, bytes;
        double pps, bps;
    };
    std::vector<row> rows;
    row r;
    while (f >> r.port >> r.ifindex >> r.counter >> r.packets >> r.bytes >> r.pps >> r.bps) rows.push_back(r);
    if (args.json) {
        fmt::print("{{\"time_ns\": {}, \"ports\": {{", when);
        std::string cur;
        for (size_t k = 0; k < rows.size(); ++k) {
            const row& x = rows[k];
            if (x.port != cur) {
                fmt::print("{}\"{}\": {{\"ifindex\": {}", cur.empty() ? "" : "}, ", x.port, x.ifindex);
                cur = x.port;
            }
            fmt::print(", \"{}\": {{\"packets\": {}, \"bytes\": {}, \"pps\": {:.0f}, \"bps\": {:.0f}}}", x.counter, x.packets, x.bytes,
                       x.pps, x.bps * 8);
        }
        fmt::print("{}}}}}\n", cur.empty() ? "" : "}");
        return 0;
    }
    fmt::print("{:<12} {:<15} {:>14} {:>16} {:>12} {:>12}\n", "port", "counter", "packets", "bytes", "pps", "Mbit/s");
    for (auto& x : rows)
        if (x.packets || x.counter == "rx")
            fmt::print("{:<12} {:<15} {:>14} {:>16} {:>12.0f} {:>12.1f}\n", x.port, x.counter, x.packets, x.bytes, x.pps, x.bps * 8 / 1e6);
    return 0;
}

// The shim: XDPRT_PRELOAD if set, else the one beside this build, else the installed one.
int with(const with_args& args) {
    std::string lib;
    if (const char* p = getenv("XDPRT_PRELOAD"); p && *p) lib = p;
    for (const char* candidate : {XDPRT_PRELOAD_BUILD, XDPRT_PRELOAD_INSTALLED})
        if (lib.empty() && access(candidate, R_OK) == 0) lib = candidate;
    if (lib.empty()) {
        fmt::print(stderr, "xdprt with: no libxdprt-preload.so (looked for {} and {}; set XDPRT_PRELOAD)\n",
                   XDPRT_PRELOAD_BUILD, XDPRT_PRELOAD_INSTALLED);
        return 1;
    }
    if (const char* old = getenv("LD_PRELOAD"); old && *old) lib += std::string(":") + old;
    setenv("LD_PRELOAD", lib.c_str(), 1);
    if (!args.socket.empty()) setenv("XDPRT_SOCKET", args.socket.c_str(), 1);
    execvp(args.argv[0], args.argv);
    fmt::print(stderr, "xdprt with: {}: {}\n", args.argv[0], std::strerror(errno));
    return 127;
}

}  // namespace xdprt::tools
