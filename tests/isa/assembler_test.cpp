// Assembler and disassembler, checked against every program in shared/conformance.
#include <gtest/gtest.h>

#include <cstring>

#include "data_file.h"
#include "runner.h"

namespace xdprt::isa {
namespace {

namespace fs = std::filesystem;
using conformance::conformance_root;
using conformance::list_data_files;

bool same_bytes(const std::vector<insn>& a, const std::vector<insn>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(insn)) == 0;
}

// Every file that has an `-- asm` section.
std::vector<fs::path> asm_files() {
    std::vector<fs::path> out;
    const fs::path root = conformance_root();
    for (auto sub : {"bpf_conformance/tests", "ubpf/tests"})
        for (auto& f : list_data_files(root / sub, true)) out.push_back(f);
    return out;
}

TEST(Assembler, MatchesRawEncodings) {
    const fs::path root = conformance_root();
    const char* files[] = {"bpf_conformance/tests/lddw.data", "ubpf/tests/alu.data", "ubpf/tests/alu64.data",
                           "ubpf/tests/jmp.data",             "ubpf/tests/ldx.data", "ubpf/tests/st.data",
                           "ubpf/tests/stx.data"};
    for (const char* name : files) {
        auto f = conformance::parse_data_file(root / name);
        ASSERT_TRUE(f) << f.error().message;
        ASSERT_TRUE(f->asm_text && f->raw) << name;
        auto p = assemble(*f->asm_text);
        ASSERT_TRUE(p) << name << ": " << p.error().message;
        EXPECT_TRUE(same_bytes(*p, *f->raw)) << name << ":\n" << disassemble(*p) << "vs\n" << disassemble(*f->raw);
    }
}

TEST(Assembler, AssemblesEveryConformanceProgram) {
    size_t n = 0;
    for (auto& path : asm_files()) {
        auto f = conformance::parse_data_file(path);
        ASSERT_TRUE(f) << f.error().message;
        if (!f->asm_text || f->error) continue;  // files with -- error may test the assembler
        auto p = assemble(*f->asm_text);
        EXPECT_TRUE(p) << path << ": " << (p ? "" : p.error().message);
        ++n;
    }
    EXPECT_GE(n, 313u + 40u);
}

TEST(Disassembler, RoundTripsEveryConformanceProgram) {
    size_t n = 0;
    for (auto& path : asm_files()) {
        auto f = conformance::parse_data_file(path);
        ASSERT_TRUE(f) << f.error().message;
        auto p = conformance::program_of(*f);
        if (!p || !check(*p, {.cpu_version = 4, .allow_callx = true})) continue;  // malformed on purpose
        const std::string text = disassemble(*p);
        auto again = assemble(text);
        ASSERT_TRUE(again) << path << ": " << again.error().message << "\n" << text;
        EXPECT_TRUE(same_bytes(*p, *again)) << path << "\n" << text;
        ++n;
    }
    EXPECT_GE(n, 313u + 40u);
}

TEST(Assembler, RejectsMalformedText) {
    const fs::path neg = conformance_root() / "bpf_conformance/negative";
    for (auto name : {"invalid_imm32_dec_range", "invalid_imm32_hex_range", "invalid_label", "invalid_lock",
                      "invalid_lock2", "invalid_mnemonic", "invalid_offset", "invalid_offset_range",
                      "invalid_operand_count", "invalid_register"}) {
        auto f = conformance::parse_data_file(neg / (std::string(name) + ".data"));
        ASSERT_TRUE(f) << name << ": " << f.error().message;
        ASSERT_TRUE(f->asm_text) << name;
        auto p = assemble(*f->asm_text);
        EXPECT_FALSE(p) << name << " assembled";
        if (!p) {
            EXPECT_NE(p.error().message.find("line "), std::string::npos) << p.error().message;
        }
    }
}

TEST(Assembler, ErrorsNameTheLine) {
    auto p = assemble("mov %r0, 1\n  ldxq %r0, [%r1]\nexit\n");
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().message, "line 2: 'ldxq': unknown mnemonic");
}

TEST(Assembler, RejectsDuplicateLabel) {
    auto p = assemble("a:\nmov %r0, 1\na:\nexit\n");
    ASSERT_FALSE(p);
    EXPECT_NE(p.error().message.find("duplicate label 'a'"), std::string::npos) << p.error().message;
}

TEST(Assembler, RejectsEmptyProgram) {
    EXPECT_FALSE(assemble("  # nothing\n\n"));
}

TEST(Assembler, EncodesVariantsInOffAndImm) {
    auto p = assemble("sdiv32 %r1, 3\nsmod %r1, %r2\nmovsx1664 %r1, %r2\nbe16 %r3\nbswap64 %r3\n"
                      "lock fetch add32 [%r10-8], %r1\nlock cmpxchg [%r10-8], %r2\nja32 +1\ncall local -2\nexit\n");
    ASSERT_TRUE(p) << p.error().message;
    const auto& v = *p;
    EXPECT_EQ(v[0].code, 0x34);
    EXPECT_EQ(v[0].off, 1);
    EXPECT_EQ(v[1].code, 0x9f);
    EXPECT_EQ(v[1].off, 1);
    EXPECT_EQ(v[2].code, 0xbf);
    EXPECT_EQ(v[2].off, 16);
    EXPECT_EQ(v[3].code, 0xdc);
    EXPECT_EQ(v[3].imm, 16);
    EXPECT_EQ(v[4].code, 0xd7);
    EXPECT_EQ(v[4].imm, 64);
    EXPECT_EQ(v[5].code, 0xc3);
    EXPECT_EQ(v[5].imm, 0x01);
    EXPECT_EQ(v[6].code, 0xdb);
    EXPECT_EQ(v[6].imm, 0xf1);
    EXPECT_EQ(v[7].code, 0x06);
    EXPECT_EQ(v[7].imm, 1);
    EXPECT_EQ(v[8].src, 1);
    EXPECT_EQ(v[8].imm, -2);
    EXPECT_EQ(disassemble_one(v[5]), "lock fetch add32 [%r10-8], %r1");
    EXPECT_EQ(disassemble_one(v[2]), "movsx1664 %r1, %r2");
}

TEST(InstructionTable, ClassifiesVersions) {
    EXPECT_EQ(info(0x07).k, kind::alu);
    EXPECT_EQ(info(0x87).k, kind::neg);
    EXPECT_EQ(info(0x8f).k, kind::invalid);  // neg has no register form
    EXPECT_EQ(info(0xad).cpu, 2);            // jlt
    EXPECT_EQ(info(0x16).cpu, 3);            // jeq32
    EXPECT_EQ(info(0xd7).cpu, 4);            // bswap
    EXPECT_EQ(info(0x91).cpu, 4);            // ldxsb
    EXPECT_EQ(info(0x99).k, kind::invalid);  // no ldxsdw
    EXPECT_EQ(info(0xdb).cpu, 3);            // atomics
    EXPECT_EQ(helper_name(1), "bpf_map_lookup_elem");
    EXPECT_EQ(helper_name(69), "bpf_fib_lookup");
    EXPECT_EQ(helper_name(100000), "");
}

}  // namespace
}  // namespace xdprt::isa
