// Runs one conformance `.data` file on one engine and judges it the way bpf_conformance's runner
// does, with one difference: a test that expects an error but runs is a failure.
#pragma once

#include <string>

#include "data_file.h"

namespace xdprt::conformance {

enum class engine { interpreter, jit };
enum class verdict { pass, fail, error, skip };

std::string_view to_string(engine e);
std::string_view to_string(verdict v);

struct judgement {
    verdict v = verdict::error;
    std::string why;
};

struct run_options {
    int cpu_version = 4;
};

// Engines this build has (the JIT only when LLVM 19 was found).
std::vector<engine> available_engines();

judgement judge(const std::filesystem::path& file, engine e, const run_options& opts = {});

// Where shared/conformance is: $XDPRT_CONFORMANCE_DIR, else the path meson configured.
std::filesystem::path conformance_root();

}  // namespace xdprt::conformance
