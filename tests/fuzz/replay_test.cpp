// Replays every saved fuzzer reproducer, then a deterministic sweep of generated programs, on the
// interpreter and the JIT. Runs in every build (the libFuzzer target needs clang).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "diff_program.h"

namespace xdprt::fuzz {
namespace {

namespace fs = std::filesystem;

TEST(DifferentialFuzz, SavedReproducersAgree) {
    const fs::path dir = XDPRT_FUZZ_REGRESSIONS_DIR;
    ASSERT_TRUE(fs::is_directory(dir)) << dir;
    size_t n = 0;
    for (auto& e : fs::directory_iterator(dir)) {
        if (!e.is_regular_file() || e.path().filename() == "README.md") continue;
        std::ifstream in(e.path(), std::ios::binary);
        std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto outcome = run_differential(bytes);
        EXPECT_FALSE(outcome.differs) << e.path() << "\n" << outcome.report;
        ++n;
    }
    std::printf("replayed %zu saved reproducers\n", n);
}

TEST(DifferentialFuzz, GeneratedProgramsAgree) {
    uint64_t x = 0x243f6a8885a308d3ull;
    for (int round = 0; round < 300; ++round) {
        std::vector<uint8_t> bytes(64 + round * 4);
        for (auto& b : bytes) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b = static_cast<uint8_t>(x);
        }
        auto outcome = run_differential(bytes);
        if (outcome.differs) {
            auto small = minimize(generate_program(bytes), bytes);
            FAIL() << "round " << round << "\n" << outcome.report << "\nminimized:\n"
                   << run_program_differential(small, bytes).report;
        }
    }
}

}  // namespace
}  // namespace xdprt::fuzz
