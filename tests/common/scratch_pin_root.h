// A pin root for servers made by tests: a fresh directory on /dev/shm (a tmpfs, so the server
// mounts nothing), one per test process, removed when the process exits.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace xdprt::testing_support {

inline const std::filesystem::path& scratch_pin_root() {
    static const std::filesystem::path root = [] {
        std::string tmpl = "/dev/shm/xdprt-test-pins-XXXXXX";
        if (!mkdtemp(tmpl.data())) std::abort();
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(scratch_pin_root(), ec);
        });
        return std::filesystem::path(tmpl);
    }();
    return root;
}

}  // namespace xdprt::testing_support
