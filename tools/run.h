// xdprt run and xdprt stats (run.cpp).
#pragma once

#include <cstdint>
#include <string>

namespace xdprt::tools {

struct run_args {
    std::string config;
    uint64_t duration_s = 0;  // 0: until SIGINT or SIGTERM
};
int run(const run_args& args);

struct stats_args {
    std::string file = "/run/xdprt/stats.json";
    bool json = false;
};
int stats(const stats_args& args);

struct with_args {
    std::string socket;     // empty: the shim's default (/run/xdprt/control.sock)
    char** argv = nullptr;  // the command, null-terminated
};
// Execs the command with the preload shim (libxdprt-preload.so) and XDPRT_SOCKET set; returns
// only on failure.
int with(const with_args& args);

}  // namespace xdprt::tools
