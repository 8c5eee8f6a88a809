// Differential fuzzing of the engines: random but well-formed programs, run on the interpreter (the
// oracle) and the JIT, comparing r0 and the memory the program could write.
//
// The generator only makes programs that are safe without a verifier, because the JIT does not
// check memory: r1 (the 64-byte input buffer) and r10 are never written, memory is only reached as
// [r1 + off] or [r10 - off] with in-bounds, naturally aligned offsets, jumps only go forward (so
// every program terminates) and every other register is set before the first instruction. Within
// those limits it uses every instruction of ISA v4: all ALU ops in both widths (with the div/mod
// and shift corner cases), movsx, byte swaps, ld_imm64, loads (also sign-extending), stores,
// atomics, every conditional jump in both widths and operand forms, ja/ja32, helper calls and
// local calls.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "isa/isa.h"

namespace xdprt::fuzz {

inline constexpr size_t mem_size = 64;

std::vector<isa::insn> generate_program(std::span<const uint8_t> data);

struct diff_outcome {
    bool differs = false;
    std::string report;  // disassembly and both results when they differ, or why nothing ran
};

// Runs `insns` on both engines with the input buffer made from `data`.
diff_outcome run_program_differential(const std::vector<isa::insn>& insns, std::span<const uint8_t> data);

// Replaces instructions by no-ops while the engines still disagree: the smallest program found.
std::vector<isa::insn> minimize(std::vector<isa::insn> insns, std::span<const uint8_t> data);

// Runs `data`'s program on the interpreter and the JIT (when built) and compares.
diff_outcome run_differential(std::span<const uint8_t> data);

}  // namespace xdprt::fuzz
