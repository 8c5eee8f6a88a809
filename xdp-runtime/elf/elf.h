// xdprt's own reader of clang-compiled BPF objects (ELF64, little-endian, EM_BPF, ET_REL).
//
// It extracts each program (a function symbol in an executable section) with the bpf-to-bpf
// functions it calls from `.text` appended and its local calls relocated, so the runtime core can run
// an object without libbpf (`xdprt exec`, the demo, the benchmarks). Objects that reference maps or
// global data are refused with the symbol's name: those load through libbpf and the bpf() server.
// Every offset and size in the file is bounds-checked; a malformed file is an error naming the
// section or entry, never a crash.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "isa/isa.h"

namespace xdprt::elf {

struct program {
    std::string name;     // the function symbol
    std::string section;  // "xdp", "xdp/foo", ...
    std::vector<isa::insn> insns;
};

struct object {
    std::string license;
    std::vector<program> programs;
};

[[nodiscard]] result<object> read_object(std::span<const uint8_t> bytes);
[[nodiscard]] result<object> read_object_file(const std::filesystem::path& path);

}  // namespace xdprt::elf
