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

}  // namespace xdprt::tools
