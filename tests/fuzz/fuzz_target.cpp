// libFuzzer entry: interpreter vs JIT on generated programs. A difference aborts, so libFuzzer saves
// the input (scripts/test points -artifact_prefix at tests/fuzz/regressions/, which replay_test runs).
#include <cstdio>
#include <cstdlib>

#include "diff_program.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto outcome = xdprt::fuzz::run_differential({data, size});
    if (outcome.differs) {
        std::fprintf(stderr, "xdprt differential fuzz: engines differ\n%s\n", outcome.report.c_str());
        std::abort();
    }
    return 0;
}
