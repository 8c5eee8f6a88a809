// Replays every saved reproducer of the attr fuzzer, then a deterministic sweep of inputs, against
// a fresh server each; the server must keep serving. Runs in every build (the fuzzer needs clang).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <linux/bpf.h>
#include <sys/resource.h>
#include <unistd.h>

#include "attr_fuzz.h"
#include "control/server.h"
#include "scratch_pin_root.h"
#include "replay_inputs.h"

// A reproducer that makes the server allocate without bound must fail here, not exhaust the
// machine: ASan builds cap single allocations, others cap the data segment.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XDPRT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(XDPRT_ASAN)
extern "C" const char* __asan_default_options() { return "max_allocation_size_mb=4096"; }
#else
static const bool data_capped = [] {
    rlimit r{8ull << 30, 8ull << 30};
    return setrlimit(RLIMIT_DATA, &r) == 0;
}();
#endif

namespace xdprt::fuzz {
namespace {

namespace fs = std::filesystem;

TEST(AttrFuzz, SavedReproducersKeepTheServerServing) {
    const fs::path dir = XDPRT_ATTR_REGRESSIONS_DIR;
    ASSERT_TRUE(fs::is_directory(dir)) << dir;
    for_each_saved_input(dir, [](const fs::path& path, const std::vector<uint8_t>& bytes) {
        auto outcome = run_attr_input(bytes);
        EXPECT_TRUE(outcome.serving) << path << ": " << outcome.report;
    });
}

TEST(AttrFuzz, GeneratedInputsKeepTheServerServing) {
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 2000; ++round) {
        std::vector<uint8_t> bytes(32 + round % 512);
        xorshift_fill(x, bytes);
        auto outcome = run_attr_input(bytes);
        ASSERT_TRUE(outcome.serving) << "round " << round << ": " << outcome.report;
    }
}

// The mutations start from BTF the server accepts whole (and, as root, the kernel too).
TEST(AttrFuzz, SeedBtfLoads) {
    control::server_options o;
    o.pin_root = testing_support::scratch_pin_root();
    o.verify = geteuid() == 0 ? control::verify_mode::kernel : control::verify_mode::off;
    o.unsafe = true;
    auto s = control::server::create(o);
    ASSERT_TRUE(s.has_value()) << s.error().message;
    auto blob = seed_btf();
    union bpf_attr a{};
    a.btf = reinterpret_cast<uint64_t>(blob.data());
    a.btf_size = uint32_t(blob.size());
    long fd = (*s)->bpf(BPF_BTF_LOAD, reinterpret_cast<uint64_t>(&a), sizeof a);
    ASSERT_GE(fd, 0) << (*s)->last_error();
    close(int(fd));
}

}  // namespace
}  // namespace xdprt::fuzz
