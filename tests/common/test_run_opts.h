// BPF_PROG_TEST_RUN options for one run of a frame, its output into a buffer: set field by field,
// since LIBBPF_OPTS trips clang's missing-designated-field-initializers warning in C++.
#pragma once

#include <bpf/bpf.h>

#include <cstdint>
#include <span>

namespace xdprt::testing_support {

inline bpf_test_run_opts test_run_opts(std::span<const uint8_t> in, std::span<uint8_t> out) {
    bpf_test_run_opts o{};
    o.sz = sizeof o;
    o.data_in = in.data();
    o.data_out = out.data();
    o.data_size_in = uint32_t(in.size());
    o.data_size_out = uint32_t(out.size());
    o.repeat = 1;
    return o;
}

}  // namespace xdprt::testing_support
