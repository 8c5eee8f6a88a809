// Reader for the `.data` test files of bpf_conformance and uBPF (shared/conformance/README.md
// section 2), and the runner contract of its section 6: r1 = writable copy of `mem`, r2 = its
// length, 512-byte stack, full 64-bit r0 compared.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "isa/isa.h"

namespace xdprt::conformance {

struct data_file {
    std::filesystem::path path;
    std::optional<std::string> asm_text;
    std::optional<std::vector<isa::insn>> raw;
    std::vector<uint8_t> mem;
    std::optional<uint64_t> result;
    std::optional<std::string> error;          // expected load/assembly failure (text may be empty)
    std::optional<std::string> error_pattern;  // expected run-time fault
    std::optional<std::string> no_jit;         // reason the JIT is not expected to pass
};

// Parses a file. Unknown section names are an error ("unsupported section"), never skipped.
[[nodiscard]] result<data_file> parse_data_file(const std::filesystem::path& path);

// The program of a test: `raw` when present, else the assembled `asm`.
[[nodiscard]] result<std::vector<isa::insn>> program_of(const data_file& f);

// Every *.data file below `dir`, sorted.
std::vector<std::filesystem::path> list_data_files(const std::filesystem::path& dir, bool recursive);

// Helpers 0-5 as the data assumes them (README section 6).
uint64_t helper_pack(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);
uint64_t helper_memfrob(uint64_t r1, uint64_t r2, uint64_t, uint64_t, uint64_t);
uint64_t helper_nop(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t helper_sqrti(uint64_t r1, uint64_t, uint64_t, uint64_t, uint64_t);
uint64_t helper_strcmp(uint64_t r1, uint64_t r2, uint64_t, uint64_t, uint64_t);
uint64_t helper_identity(uint64_t r1, uint64_t, uint64_t, uint64_t, uint64_t);

}  // namespace xdprt::conformance
