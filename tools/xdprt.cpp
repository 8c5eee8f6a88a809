// xdprt, the command line. Subcommands come from one table that also prints --help.
//
//   xdprt demo [--prog FILE] [--packets N]   run an XDP program of ours over the built-in traffic
//                                            on every engine: per-action counts and ns per packet
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "xdp_harness.h"
#ifdef XDPRT_HAVE_DATAPLANE
#include "run.h"
#endif

namespace xdprt::tools {
namespace {

struct demo_args {
    std::string prog = XDPRT_PROGS_DIR "/xdp_swap_mac.bpf.o";
    uint64_t packets = 2'000'000;
};

struct engine_result {
    std::string name;
    std::map<std::string_view, uint64_t> actions;
    double ns_per_packet = 0;
    std::vector<uint64_t> first_actions;
    std::vector<std::vector<uint8_t>> first_outputs;
};

// Runs `packets` packets round-robin over the set through `run`, which returns the action.
template <class Run>
engine_result run_engine(std::string name, const packet_set& set, uint64_t packets, Run&& run) {
    engine_result r;
    r.name = std::move(name);
    for (size_t k = 0; k < set.size(); ++k) {  // one clean pass to compare the engines' outputs
        set.reset(k);
        r.first_actions.push_back(run(set.slot(k)));
        const auto& s = set.slot(k);
        r.first_outputs.emplace_back(s.frame, s.frame + set.original(k).size());
        set.reset(k);
    }
    std::vector<uint64_t> counts(8, 0);
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t n = 0; n < packets;) {
        for (size_t k = 0; k < set.size() && n < packets; ++k, ++n) {
            const uint64_t a = run(set.slot(k));
            ++counts[a < 7 ? a : 7];
        }
    }
    const auto t1 = std::chrono::steady_clock::now();
    r.ns_per_packet = std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(packets);
    for (uint64_t a = 0; a < 8; ++a)
        if (counts[a]) r.actions[action_name(a)] += counts[a];
    return r;
}

int demo(const demo_args& args) {
    auto lp = load_program(args.prog);
    if (!lp) {
        fmt::print(stderr, "xdprt demo: {}\n", lp.error().message);
        return 1;
    }
    auto set = packet_set::create(demo_frames());
    if (!set) {
        fmt::print(stderr, "xdprt demo: {}\n", set.error().message);
        return 1;
    }
    const auto names = demo_frame_names();
    fmt::print("xdprt demo: program '{}' ({} instructions) from {}\n", (*lp)->prog.name, (*lp)->prog.insns.size(), args.prog);
    fmt::print("traffic: {} built-in frames, {} packets per engine\n\n", set->size(), args.packets);

    std::vector<engine_result> results;
    const vm::region region = set->region();
    results.push_back(run_engine("interpreter", *set, args.packets / 10 + 1, [&](const packet_slot& s) -> uint64_t {
        auto r = vm::interpret((*lp)->prog, reinterpret_cast<uint64_t>(s.md), 0, {&region, 1});
        return r ? *r : uint64_t{XDP_ABORTED};  // a fault aborts the packet, as XDP_ABORTED does
    }));
#ifdef XDPRT_HAVE_JIT
    results.push_back(run_engine("jit", *set, args.packets, [&](const packet_slot& s) -> uint64_t {
        return (*lp)->image.run(reinterpret_cast<uint64_t>(s.md), 0);
    }));
#else
    fmt::print("(JIT not built: LLVM 19 was not found)\n");
#endif

    fmt::print("{:<24} {:>10}", "frame", "size");
    for (auto& r : results) fmt::print(" {:>12}", r.name);
    fmt::print("\n");
    bool agree = true;
    for (size_t k = 0; k < set->size(); ++k) {
        fmt::print("{:<24} {:>10}", names[k], set->original(k).size());
        for (auto& r : results) {
            fmt::print(" {:>12}", action_name(r.first_actions[k]));
            if (r.first_actions[k] != results[0].first_actions[k] || r.first_outputs[k] != results[0].first_outputs[k])
                agree = false;
        }
        fmt::print("\n");
    }
    fmt::print("\n{:<12} {:>12} {:>10}  actions\n", "engine", "packets", "ns/packet");
    for (auto& r : results) {
        uint64_t total = 0;
        std::string acts;
        for (auto& [a, n] : r.actions) {
            total += n;
            acts += fmt::format("{}={} ", a, n);
        }
        fmt::print("{:<12} {:>12} {:>10.1f}  {}\n", r.name, total, r.ns_per_packet, acts);
    }
    if (results.size() > 1)
        fmt::print("\njit vs interpreter: {:.1f}x faster per packet\n", results[0].ns_per_packet / results[1].ns_per_packet);
    fmt::print("engines agree on every frame's action and output bytes: {}\n", agree ? "yes" : "NO");
    return agree ? 0 : 2;
}

struct subcommand {
    std::string_view name;
    std::string_view usage;
    std::string_view help;
};
constexpr subcommand subcommands[] = {
    {"run", "run -c FILE.yaml [--duration S]", "run the appliance: ports, workers, programs from the config; Ctrl-C stops"},
    {"stats", "stats [--json] [--file F]", "per port and action: packets, bytes, rates of a running appliance"},
    {"with", "with [--socket PATH] -- CMD [ARGS]", "run an unmodified loader (bpftool, ip, xdp-loader, ...) against the appliance"},
    {"demo", "demo [--prog FILE.bpf.o] [--packets N]",
     "run an XDP program over the built-in traffic on every engine; per-action counts and ns per packet"},
};

void usage(FILE* out) {
    fmt::print(out, "usage: xdprt <command> [options]\n\ncommands:\n");
    for (auto& c : subcommands) fmt::print(out, "  {:<40} {}\n", c.usage, c.help);
}


// Walks the "--option value" pairs after a subcommand: `take(option, value)` returns an error
// message, or nothing. Returns the exit status when parsing ends the command (--help: 0, an
// error: 1, said as "xdprt CMD: ..."), else nothing.
template <class Take>
std::optional<int> parse_pairs(std::string_view cmd, int argc, char** argv, Take&& take) {
    for (int k = 2; k < argc; ++k) {
        const std::string_view opt = argv[k];
        if (opt == "--help") {
            usage(stdout);
            return 0;
        }
        if (k + 1 >= argc) {
            fmt::print(stderr, "xdprt {}: {} needs a value\n", cmd, opt);
            return 1;
        }
        if (std::string why = take(opt, argv[++k]); !why.empty()) {
            fmt::print(stderr, "xdprt {}: {}\n", cmd, why);
            return 1;
        }
    }
    return std::nullopt;
}

// A whole number from 1 to `max`, or nothing.
std::optional<uint64_t> count_arg(const char* v, uint64_t max) {
    char* end = nullptr;
    uint64_t n = std::strtoull(v, &end, 10);
    if (!end || *end || n == 0 || n > max) return std::nullopt;
    return n;
}

}  // namespace
}  // namespace xdprt::tools

int main(int argc, char** argv) {
    using namespace xdprt::tools;
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    const std::string_view cmd = argv[1];
    if (cmd == "demo") {
        demo_args a;
        auto end = parse_pairs(cmd, argc, argv, [&](std::string_view opt, const char* v) -> std::string {
            if (opt == "--prog") {
                a.prog = v;
            } else if (opt == "--packets") {
                auto n = count_arg(v, 1'000'000'000);
                if (!n) return fmt::format("--packets: expected a count from 1 to 1e9, got '{}'", v);
                a.packets = *n;
            } else {
                return fmt::format("unknown option '{}'", opt);
            }
            return {};
        });
        return end ? *end : demo(a);
    }
#ifdef XDPRT_HAVE_DATAPLANE
    if (cmd == "run") {
        run_args a;
        auto end = parse_pairs(cmd, argc, argv, [&](std::string_view opt, const char* v) -> std::string {
            if (opt == "-c" || opt == "--config") {
                a.config = v;
            } else if (opt == "--duration") {
                auto n = count_arg(v, 365ull * 86400);
                if (!n) return fmt::format("--duration: expected seconds, got '{}'", v);
                a.duration_s = *n;
            } else {
                return fmt::format("unknown option '{}'", opt);
            }
            return {};
        });
        if (end) return *end;
        if (a.config.empty()) {
            fmt::print(stderr, "xdprt run: -c FILE.yaml is required\n");
            return 1;
        }
        return run(a);
    }
    if (cmd == "with") {
        with_args a;
        int k = 2;
        for (; k < argc && std::strcmp(argv[k], "--") != 0; ++k) {
            if (std::strcmp(argv[k], "--socket") == 0 && k + 1 < argc) {
                a.socket = argv[++k];
            } else {
                fmt::print(stderr, "xdprt with: unknown option '{}' (the command goes after --)\n", argv[k]);
                return 1;
            }
        }
        if (k + 1 >= argc) {
            fmt::print(stderr, "xdprt with: no command: xdprt with -- CMD [ARGS]\n");
            return 1;
        }
        a.argv = argv + k + 1;
        return with(a);
    }
    if (cmd == "stats") {
        stats_args a;
        for (int k = 2; k < argc; ++k) {
            const std::string_view opt = argv[k];
            if (opt == "--json") {
                a.json = true;
            } else if (opt == "--file" && k + 1 < argc) {
                a.file = argv[++k];
            } else {
                fmt::print(stderr, "xdprt stats: unknown option '{}'\n", opt);
                return 1;
            }
        }
        return stats(a);
    }
#endif
    fmt::print(stderr, "xdprt: unknown command '{}'\n", cmd);
    usage(stderr);
    return 1;
}
