// What the replay tests feed their fuzz targets: the saved reproducers of a folder, and a
// deterministic sweep of pseudo-random inputs.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

namespace xdprt::fuzz {

// Calls fn(path, bytes) for every saved input in `dir` (README.md aside); returns how many.
template <class Fn>
size_t for_each_saved_input(const std::filesystem::path& dir, Fn fn) {
    size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator(dir)) {
        if (!e.is_regular_file() || e.path().filename() == "README.md") continue;
        std::ifstream in(e.path(), std::ios::binary);
        std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        fn(e.path(), bytes);
        ++n;
    }
    std::printf("replayed %zu saved reproducers\n", n);
    return n;
}

// Fills `bytes` from a xorshift64 state: the same seed, the same inputs, on every machine.
inline void xorshift_fill(uint64_t& x, std::vector<uint8_t>& bytes) {
    for (auto& b : bytes) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b = static_cast<uint8_t>(x);
    }
}

}  // namespace xdprt::fuzz
