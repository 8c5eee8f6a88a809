// A pin root for servers made by tests: a fresh directory on /dev/shm (a tmpfs, so the server
// mounts nothing), one per test process, removed when the process exits.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace xdprt::testing_support {

inline const std::filesystem::path& scratch_pin_root() {
    // Never destroyed: the exit handler below runs after function-local statics are destroyed.
    static const auto* root = [] {
        std::string tmpl = "/dev/shm/xdprt-test-pins-XXXXXX";
        if (!mkdtemp(tmpl.data())) std::abort();
        auto* p = new std::filesystem::path(tmpl);
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(scratch_pin_root(), ec);
        });
        return p;
    }();
    return *root;
}

}  // namespace xdprt::testing_support
