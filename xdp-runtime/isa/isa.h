// xdprt instruction set: the one instruction table (STYLE.md rule 15) and what is built on it.
//
// RFC 9669 ("BPF Instruction Set Architecture"), all of v1-v4. The table below maps an opcode byte to
// what the instruction is; fields that select a variant inside one opcode (off for sdiv/smod and movsx,
// imm for byte swaps, atomics and ja32, src for calls and ld_imm64) are decoded by describe().
// The assembler, disassembler, bytecode checker, interpreter and JIT all read this table.
//
// Thread affinity: everything here is pure and may be called from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace xdprt::isa {

// The wire format of one instruction, identical to the kernel's struct bpf_insn (RFC 9669 section 3).
struct insn {
    uint8_t code = 0;
    uint8_t dst : 4 = 0;
    uint8_t src : 4 = 0;
    int16_t off = 0;
    int32_t imm = 0;
};
static_assert(sizeof(insn) == 8);

// Opcode fields (RFC 9669 sections 3 to 5).
namespace op {
// classes
inline constexpr uint8_t ld = 0x00, ldx = 0x01, st = 0x02, stx = 0x03, alu = 0x04, jmp = 0x05,
                         jmp32 = 0x06, alu64 = 0x07;
// source
inline constexpr uint8_t k = 0x00, x = 0x08;
// arithmetic
inline constexpr uint8_t add = 0x00, sub = 0x10, mul = 0x20, div = 0x30, or_ = 0x40, and_ = 0x50,
                         lsh = 0x60, rsh = 0x70, neg = 0x80, mod = 0x90, xor_ = 0xa0, mov = 0xb0,
                         arsh = 0xc0, end = 0xd0;
// jumps
inline constexpr uint8_t ja = 0x00, jeq = 0x10, jgt = 0x20, jge = 0x30, jset = 0x40, jne = 0x50,
                         jsgt = 0x60, jsge = 0x70, call = 0x80, exit = 0x90, jlt = 0xa0, jle = 0xb0,
                         jslt = 0xc0, jsle = 0xd0;
// memory sizes and modes
inline constexpr uint8_t w = 0x00, h = 0x08, b = 0x10, dw = 0x18;
inline constexpr uint8_t imm = 0x00, abs = 0x20, ind = 0x40, mem = 0x60, memsx = 0x80, atomic = 0xc0;
// atomic operations (imm of an atomic instruction)
inline constexpr int32_t fetch = 0x01, xchg = 0xe0 | fetch, cmpxchg = 0xf0 | fetch;
// src of ld_imm64 (pseudo sources, as the kernel names them) and of call
inline constexpr uint8_t pseudo_map_fd = 1, pseudo_map_value = 2, pseudo_btf_id = 3, pseudo_func = 4,
                         pseudo_map_idx = 5, pseudo_map_idx_value = 6;
inline constexpr uint8_t call_helper = 0, call_local = 1, call_kfunc = 2;

constexpr uint8_t cls(uint8_t code) { return code & 0x07; }
constexpr uint8_t alu_op(uint8_t code) { return code & 0xf0; }
constexpr uint8_t size(uint8_t code) { return code & 0x18; }
constexpr uint8_t mode(uint8_t code) { return code & 0xe0; }
constexpr bool is_reg_src(uint8_t code) { return (code & 0x08) != 0; }
}  // namespace op

inline constexpr int max_reg = 10;           // r0..r10, r10 is the read-only frame pointer
inline constexpr int stack_size = 512;        // bytes of stack per frame
inline constexpr int max_call_depth = 8;      // frames, as the kernel (MAX_CALL_FRAMES)
inline constexpr int max_tail_calls = 33;     // as the kernel (MAX_TAIL_CALL_CNT)
inline constexpr size_t max_insns = 1000000;  // BPF_COMPLEXITY_LIMIT_INSNS for a privileged loader

// What an opcode byte means.
enum class kind : uint8_t {
    invalid,
    alu,        // add..arsh, mov, movsx (off), sdiv/smod (off): dst op= src|imm
    neg,        // dst = -dst
    endian,     // le/be (class alu): imm = 16/32/64
    bswap,      // unconditional swap (class alu64, v4): imm = 16/32/64
    ld_imm64,   // two slots, src = pseudo source
    load,       // dst = *(size *)(src + off)
    load_sx,    // sign-extending load (v4)
    store_imm,  // *(size *)(dst + off) = imm
    store_reg,  // *(size *)(dst + off) = src
    atomic,     // imm selects add/or/and/xor(+fetch), xchg, cmpxchg
    ja,         // pc += off
    ja32,       // pc += imm (v4 "gotol", class jmp32)
    jcond,      // if (dst op src|imm) pc += off
    call,       // src selects helper / local / kfunc
    callx,      // call the helper whose id is in dst (bpf_conformance's callx group)
    exit,
};

struct opcode_info {
    kind k = kind::invalid;
    uint8_t cpu = 0;       // the first ISA version (1 to 4) that has it
    bool is64 = false;     // ALU64 / JMP class (64-bit operation)
    bool reg_src = false;  // operand is a register (BPF_X)
    uint8_t bytes = 0;     // access size of a memory instruction
    std::string_view name; // base mnemonic: "add", "jeq", "ldxw"; variants come from describe()
};

namespace detail {
constexpr std::array<opcode_info, 256> make_opcode_table() {
    std::array<opcode_info, 256> t{};
    constexpr std::string_view alu_names[16] = {"add", "sub", "mul", "div", "or",  "and", "lsh", "rsh",
                                                "neg", "mod", "xor", "mov", "arsh", "",   "",    ""};
    for (uint8_t cls : {op::alu, op::alu64}) {
        const bool is64 = cls == op::alu64;
        for (int o = 0; o < 13; ++o) {
            for (uint8_t src : {op::k, op::x}) {
                const uint8_t code = static_cast<uint8_t>(o << 4) | src | cls;
                if (o == 8) {  // neg: only the K form exists
                    if (src == op::k) t[code] = {kind::neg, 1, is64, false, 0, "neg"};
                    continue;
                }
                t[code] = {kind::alu, 1, is64, src == op::x, 0, alu_names[o]};
            }
        }
    }
    t[op::alu | op::end | op::k] = {kind::endian, 1, false, false, 0, "le"};
    t[op::alu | op::end | op::x] = {kind::endian, 1, false, true, 0, "be"};  // BPF_X: to big-endian
    t[op::alu64 | op::end | op::k] = {kind::bswap, 4, true, false, 0, "bswap"};

    t[op::ld | op::imm | op::dw] = {kind::ld_imm64, 1, true, false, 8, "lddw"};
    constexpr uint8_t sizes[4] = {op::b, op::h, op::w, op::dw};
    constexpr uint8_t bytes[4] = {1, 2, 4, 8};
    constexpr std::string_view ldx_names[4] = {"ldxb", "ldxh", "ldxw", "ldxdw"};
    constexpr std::string_view ldxs_names[4] = {"ldxsb", "ldxsh", "ldxsw", ""};
    constexpr std::string_view st_names[4] = {"stb", "sth", "stw", "stdw"};
    constexpr std::string_view stx_names[4] = {"stxb", "stxh", "stxw", "stxdw"};
    for (int i = 0; i < 4; ++i) {
        t[op::ldx | op::mem | sizes[i]] = {kind::load, 1, true, true, bytes[i], ldx_names[i]};
        if (i < 3) t[op::ldx | op::memsx | sizes[i]] = {kind::load_sx, 4, true, true, bytes[i], ldxs_names[i]};
        t[op::st | op::mem | sizes[i]] = {kind::store_imm, 1, true, false, bytes[i], st_names[i]};
        t[op::stx | op::mem | sizes[i]] = {kind::store_reg, 1, true, true, bytes[i], stx_names[i]};
    }
    t[op::stx | op::atomic | op::w] = {kind::atomic, 3, false, true, 4, "lock"};
    t[op::stx | op::atomic | op::dw] = {kind::atomic, 3, true, true, 8, "lock"};

    constexpr std::string_view jmp_names[16] = {"ja",   "jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge",
                                                "call", "exit", "jlt", "jle", "jslt", "jsle", "",    ""};
    for (uint8_t cls : {op::jmp, op::jmp32}) {
        const bool is64 = cls == op::jmp;
        for (int o = 0; o < 14; ++o) {
            if (o == 0 || o == 8 || o == 9) continue;
            const uint8_t cpu = o >= 0xa ? 2 : 1;
            for (uint8_t src : {op::k, op::x}) {
                const uint8_t code = static_cast<uint8_t>(o << 4) | src | cls;
                t[code] = {kind::jcond, static_cast<uint8_t>(is64 ? cpu : 3), is64, src == op::x, 0, jmp_names[o]};
            }
        }
    }
    t[op::jmp | op::ja] = {kind::ja, 1, true, false, 0, "ja"};
    t[op::jmp32 | op::ja] = {kind::ja32, 4, false, false, 0, "ja32"};
    t[op::jmp | op::call] = {kind::call, 1, true, false, 0, "call"};
    t[op::jmp | op::call | op::x] = {kind::callx, 1, true, true, 0, "call"};
    t[op::jmp | op::exit] = {kind::exit, 1, true, false, 0, "exit"};
    return t;
}
}  // namespace detail

inline constexpr std::array<opcode_info, 256> opcode_table = detail::make_opcode_table();

constexpr const opcode_info& info(uint8_t code) { return opcode_table[code]; }

// The full name of one instruction, variants included: "sdiv32", "movsx1664", "be16", "lock fetch add".
[[nodiscard]] std::string mnemonic(const insn& i);

// The name of a helper id, as in linux/bpf.h ("bpf_map_lookup_elem"), or "" when unknown.
[[nodiscard]] std::string_view helper_name(int32_t id);

// ---- text form ------------------------------------------------------------------------------

// Assembles the conformance syntax (shared/conformance/README.md section 3). Errors name the line.
[[nodiscard]] result<std::vector<insn>> assemble(std::string_view text);

// One instruction in the same syntax; `next` is the second slot of an ld_imm64 (ignored otherwise).
[[nodiscard]] std::string disassemble_one(const insn& i, const insn* next = nullptr);

// A whole program, one instruction per line, reassembling to the same bytes.
[[nodiscard]] std::string disassemble(std::span<const insn> prog);

// ---- structural check -------------------------------------------------------------------------

// The instruction set versions and groups an embedder accepts.
struct check_options {
    int cpu_version = 4;
    bool allow_callx = false;  // bpf_conformance's callx group; the kernel has no such instruction
    // Returns true when `id` names a helper the embedder provides. Null: any id is accepted.
    bool (*helper_known)(int32_t id, const void* cookie) = nullptr;
    const void* helper_cookie = nullptr;
};

// The function boundaries found by check(): entry pcs, the main program first, sorted.
struct program_layout {
    std::vector<uint32_t> func_starts;
};

// Rejects what is malformed regardless of the program's types and values: unknown opcodes, bad
// registers, reserved fields set, jumps out of range or into an ld_imm64, an ld_imm64 missing its
// second half, calls of unknown helpers or local functions outside the program, functions that can
// fall off their end, trivial infinite loops. Errors read "insn PC: reason".
[[nodiscard]] result<program_layout> check(std::span<const insn> prog, const check_options& opts = {});

// Little-endian bytes <-> instructions (the host is little-endian; see meson.build).
[[nodiscard]] result<std::vector<insn>> from_bytes(std::span<const uint8_t> bytes);

}  // namespace xdprt::isa
