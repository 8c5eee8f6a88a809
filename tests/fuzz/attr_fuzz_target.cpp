// libFuzzer entry: bpf() attrs and BTF blobs against a server in this process (attr_fuzz.h). A
// server that stops serving aborts, so libFuzzer saves the input (run_fuzzer.sh points
// -artifact_prefix at tests/fuzz/attr_regressions/, which attr_replay_test runs).
#include <cstdio>
#include <cstdlib>

#include "attr_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto outcome = xdprt::fuzz::run_attr_input({data, size});
    if (!outcome.serving) {
        std::fprintf(stderr, "xdprt attr fuzz: the server stopped serving: %s\n", outcome.report.c_str());
        std::abort();
    }
    return 0;
}
