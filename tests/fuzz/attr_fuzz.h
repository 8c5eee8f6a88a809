// Fuzzing of the bpf() server's attribute handling: MAP_CREATE, PROG_LOAD and BTF_LOAD attrs, and
// BTF blobs made from a seed of real BTF plus mutations, decoded from the fuzzer's bytes and sent
// to a fresh server in this process. The server runs with `verify: off` (unsafe), so nothing goes
// to the kernel; programs are loaded, never run. Every pointer in an attr either points at a
// buffer at least as large as its size field says, or at an address that is never mapped, so the
// server may only fail with an errno; after each input it must still create and use an ARRAY.
//
// Thread affinity: one caller at a time (the server is process-local and fresh per input).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace xdprt::fuzz {

struct attr_outcome {
    bool serving = true;  // false: the server failed the plain command after the input
    std::string report;   // what failed, for the crash report
};

// Decodes `data` into one to three commands, runs them, then checks the server still serves.
attr_outcome run_attr_input(std::span<const uint8_t> data);

// The seed the BTF mutations start from: ints, a pointer, an array, structs (one holding a
// bpf_spin_lock), a typedef, const, an enum, a float, a function with its prototype, and a
// variable in a DATASEC. The kernel accepts it as it is.
std::vector<uint8_t> seed_btf();

}  // namespace xdprt::fuzz
