// Malformed bytecode is rejected at load with the pc and the reason, never run.
#include <gtest/gtest.h>

#include <bit>
#include <cstring>

#include "isa/isa.h"

namespace xdprt::isa {
namespace {

struct bad_case {
    const char* description;
    std::vector<insn> prog;
    const char* message;  // expected error text
};

constexpr insn exit_insn{0x95, 0, 0, 0, 0};
constexpr insn mov_r0_0{0xb7, 0, 0, 0, 0};

bool only_helper_1(int32_t id, const void*) { return id == 1; }

TEST(Check, RejectsMalformedBytecode) {
    const bad_case cases[] = {
        {"empty program", {}, "empty program"},
        {"unknown opcode", {{0xff, 0, 0, 0, 0}, exit_insn}, "insn 0: unknown opcode 0xff"},
        {"bad dst register", {{0xb7, 11, 0, 0, 0}, exit_insn}, "insn 0: invalid destination register r11"},
        {"bad src register", {{0xbf, 0, 12, 0, 0}, exit_insn}, "insn 0: invalid source register r12"},
        {"write to r10", {{0xb7, 10, 0, 0, 1}, exit_insn}, "insn 0: 'mov' writes r10, the read-only frame pointer"},
        {"alu imm with src", {{0x07, 0, 1, 0, 1}, exit_insn}, "insn 0: 'add' uses reserved field src"},
        {"alu reg with imm", {{0x0f, 0, 1, 0, 1}, exit_insn}, "insn 0: 'add' uses reserved field imm"},
        {"alu with off", {{0x07, 0, 0, 3, 1}, exit_insn}, "insn 0: 'add' uses reserved field off"},
        {"endian width", {{0xdc, 0, 0, 0, 48}, exit_insn}, "insn 0: invalid endian immediate 48"},
        {"exit with imm", {mov_r0_0, {0x95, 0, 0, 0, 1}}, "insn 1: 'exit' uses reserved field imm"},
        {"ja with dst", {{0x05, 1, 0, 0, 0}, exit_insn}, "insn 0: 'ja' uses reserved field dst"},
        {"lddw missing second half", {mov_r0_0, {0x18, 0, 0, 0, 1}}, "insn 1: incomplete lddw: the second slot is missing"},
        {"lddw bad second half", {{0x18, 0, 0, 0, 1}, exit_insn, exit_insn}, "insn 1: invalid lddw second half"},
        {"jump out of range", {{0x05, 0, 0, 5, 0}, exit_insn}, "insn 0: jump out of bounds to 6"},
        {"jump backwards out of range", {{0x05, 0, 0, -3, 0}, exit_insn}, "insn 0: jump out of bounds to -2"},
        {"jump into lddw", {{0x05, 0, 0, 1, 0}, {0x18, 0, 0, 0, 1}, {0, 0, 0, 0, 0}, exit_insn},
         "insn 0: jump to middle of lddw at 2"},
        {"self loop", {{0x05, 0, 0, -1, 0}, exit_insn}, "insn 0: infinite loop"},
        {"falls off the end", {mov_r0_0}, "insn 0: function at 0 does not end with exit or an unconditional jump"},
        {"unknown helper", {{0x85, 0, 0, 0, 1000}, exit_insn}, "insn 0: call to unknown helper 1000: invalid func unknown#1000"},
        {"unsupported helper", {{0x85, 0, 0, 0, 69}, exit_insn}, "insn 0: unsupported helper 69 (bpf_fib_lookup): unknown func bpf_fib_lookup#69"},
        {"kfunc", {{0x85, 0, 2, 0, 1}, exit_insn}, "insn 0: kfunc calls are not supported (call runtime 1)"},
        {"callx not accepted", {{0x8d, 1, 0, 0, 0}, exit_insn},
         "insn 0: callx (call by register) is not part of the accepted ISA"},
        {"local call out of range", {{0x85, 0, 1, 0, 9}, exit_insn}, "insn 0: jump out of bounds to 10"},
        {"jump across functions", {{0x85, 0, 1, 0, 1}, exit_insn, {0x05, 0, 0, -3, 0}},
         "insn 2: jump out of bounds of its function [2, 3) to 0"},
        {"subprogram falls into the next", {mov_r0_0, {0x85, 0, 1, 0, 0}, exit_insn},
         "insn 1: function at 0 does not end with exit or an unconditional jump"},
        {"bad atomic op", {{0xdb, 10, 1, -8, 0x10}, exit_insn}, "insn 0: invalid atomic operation 0x10"},
        {"ldxdw with imm", {{0x79, 0, 1, 0, 4}, exit_insn}, "insn 0: 'ldxdw' uses reserved field imm"},
        {"movsx32 by 32", {{0xbc, 0, 1, 32, 0}, exit_insn}, "insn 0: 'movsx3232' uses reserved field off"},
    };
    check_options opts;
    opts.helper_known = only_helper_1;
    for (const auto& c : cases) {
        auto r = check(c.prog, opts);
        ASSERT_FALSE(r) << c.description << " was accepted";
        EXPECT_EQ(r.error().message, c.message) << c.description;
        EXPECT_EQ(r.error().code, EINVAL) << c.description;
    }
}

TEST(Check, RejectsNewerIsaThanAllowed) {
    check_options opts;
    opts.cpu_version = 3;
    auto r = check(std::vector<insn>{{0xd7, 0, 0, 0, 16}, exit_insn}, opts);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "insn 0: 'bswap16' needs ISA v4, the program is limited to v3");
}

TEST(Check, FindsFunctions) {
    // main: call f1; call f2; exit.  f1: exit.  f2: exit.
    std::vector<insn> p = {{0x85, 0, 1, 0, 2}, {0x85, 0, 1, 0, 2}, exit_insn, exit_insn, exit_insn};
    auto r = check(p);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->func_starts, (std::vector<uint32_t>{0, 3, 4}));
}

TEST(Check, RandomBytesNeverCrash) {
    // Deterministic garbage: every outcome is an error value or a layout, never a crash.
    uint64_t x = 0x9e3779b97f4a7c15ull;
    size_t accepted = 0;
    for (int round = 0; round < 20000; ++round) {
        std::vector<insn> p(1 + round % 16);
        for (auto& i : p) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            i = std::bit_cast<insn>(x);
        }
        if (check(p)) ++accepted;
    }
    EXPECT_LT(accepted, 20000u);
}

}  // namespace
}  // namespace xdprt::isa
