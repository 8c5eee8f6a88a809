// The appliance's YAML configuration (DESIGN.md section 5): parsed into plain structs with
// defaults, then validated in a separate step. Errors carry `file:line:col` and the key path
// (`demo.yaml:14:9: ports[1].rx_queues: expected an integer, got 'four'`); unknown keys are
// errors. See configs/ for commented examples.
//
// Thread affinity: pure functions.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "appliance/appliance.h"
#include "control/socket.h"
#include "base/result.h"

namespace xdprt::appliance {

// The XDP program a port starts with, loaded from a clang-compiled object by libbpf.
struct program_config {
    std::string object;   // path to the .bpf.o (relative paths: to the config file's folder)
    std::string name;     // the program's function name; empty: the object's first XDP program
    std::string where;    // file:line:col of the entry, for errors at load
};

struct config {
    std::string file;  // where it was read from
    // EAL
    std::string lcores = "0-1";       // -l: the main lcore (control thread) first, then workers
    uint32_t memory_mb = 512;         // -m
    bool hugepages = false;           // false: --no-huge --no-shconf (runs anywhere)
    std::vector<std::string> eal_args;  // appended as given
    // Dataplane, server
    ::xdprt::appliance::options options;  // ports, workers, burst, mbufs, pin root, verify mode
    std::vector<std::optional<program_config>> programs;  // per port
    std::string stats_file = "/run/xdprt/stats.json";     // written once a second by `xdprt run`
    control::socket_options control;  // where loaders reach the appliance (`xdprt with`)
};

// Reads and validates `path`.
[[nodiscard]] result<config> load_config(const std::filesystem::path& path);
// The same from text (`name` stands for the file in messages).
[[nodiscard]] result<config> parse_config(const std::string& text, const std::string& name);

}  // namespace xdprt::appliance
