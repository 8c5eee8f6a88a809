// Replays every saved fuzzer reproducer, then a deterministic sweep of generated programs, on the
// interpreter and the JIT. Runs in every build (the libFuzzer target needs clang).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "diff_program.h"
#include "replay_inputs.h"

namespace xdprt::fuzz {
namespace {

namespace fs = std::filesystem;

TEST(DifferentialFuzz, SavedReproducersAgree) {
    const fs::path dir = XDPRT_FUZZ_REGRESSIONS_DIR;
    ASSERT_TRUE(fs::is_directory(dir)) << dir;
    for_each_saved_input(dir, [](const fs::path& path, const std::vector<uint8_t>& bytes) {
        auto outcome = run_differential(bytes);
        EXPECT_FALSE(outcome.differs) << path << "\n" << outcome.report;
    });
}

TEST(DifferentialFuzz, GeneratedProgramsAgree) {
    uint64_t x = 0x243f6a8885a308d3ull;
    for (int round = 0; round < 300; ++round) {
        std::vector<uint8_t> bytes(64 + round * 4);
        xorshift_fill(x, bytes);
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
