// Every shared/conformance `.data` file is one test, run on every engine this build has.
//
// bpf_conformance/tests: all 313 must pass on the interpreter and the JIT; there are no exclusions.
// bpf_conformance/negative and ubpf/tests: the expected verdict is PASS unless the table below
// says otherwise, with the reason beside it.
#include <gtest/gtest.h>

#include <map>

#include "runner.h"

namespace xdprt::conformance {
namespace {

namespace fs = std::filesystem;

struct expectation {
    verdict expected = verdict::pass;
    int cpu_version = 4;
    std::string_view reason;
};

// Files (relative to shared/conformance) whose verdict is not PASS on every engine, and why.
const std::map<std::string, expectation, std::less<>>& exceptions() {
    static const std::map<std::string, expectation, std::less<>> table = {
        // Runner self-tests of bpf_conformance: a correct runner reports these as failures.
        {"bpf_conformance/negative/error.data",
         {verdict::fail, 4, "runner self-test: a valid program with an expected error must be reported FAIL"}},
        {"bpf_conformance/negative/incorrect_return_value_high_bits.data",
         {verdict::fail, 4, "runner self-test: the expected r0 is deliberately wrong"}},
        // Assembler error tests that carry a -- result: the file cannot be assembled, so the runner
        // reports ERROR for it (tests/isa checks the assembler's messages).
        {"bpf_conformance/negative/invalid_imm32_dec_range.data", {verdict::error, 4, "assembler error test"}},
        {"bpf_conformance/negative/invalid_imm32_hex_range.data", {verdict::error, 4, "assembler error test"}},
        {"bpf_conformance/negative/invalid_label.data", {verdict::error, 4, "assembler error test"}},
        {"bpf_conformance/negative/invalid_mnemonic.data", {verdict::error, 4, "assembler error test"}},
        {"bpf_conformance/negative/invalid_offset.data", {verdict::error, 4, "assembler error test"}},
        {"bpf_conformance/negative/invalid_offset_range.data", {verdict::error, 4, "assembler error test"}},
        {"bpf_conformance/negative/invalid_operand_count.data", {verdict::error, 4, "assembler error test"}},
        {"bpf_conformance/negative/invalid_unknown_directive.data",
         {verdict::error, 4, "an unknown section is reported as an error, never skipped"}},
        // No program at all: the runner reports an ERROR for the file, it does not crash.
        {"bpf_conformance/negative/empty_instructions.data", {verdict::error, 4, "no program in the file"}},
        // uBPF API behaviour that is not eBPF semantics.
        {"ubpf/tests/extensions/call_unwind.data",
         {verdict::fail, 4, "uBPF extension: helper 5 returning 0 stops the program; not kernel semantics, "
                            "xdprt continues and returns 2"}},
        {"ubpf/tests/reload.data",
         {verdict::fail, 4, "tests uBPF's ubpf_load_code() called twice on one VM; xdprt has no such state, "
                            "the program runs"}},
        {"ubpf/tests/errors/err-too-many-instructions.data",
         {verdict::fail, 4, "uBPF's limit is 65,536 instructions; xdprt follows the kernel "
                            "(BPF_COMPLEXITY_LIMIT_INSNS, 1,000,000), so 65,537 load and run"}},
        // Opcode 0x06 is ja32 in ISA v4: the file is only an error for a v3 loader, so run it as one.
        {"ubpf/tests/errors/err-unknown-opcode.data",
         {verdict::pass, 3, "0x06 is ja32 (v4); rejected when the loader is limited to v3"}},
    };
    return table;
}

struct param {
    fs::path file;
    std::string rel;
    engine e;
};

void PrintTo(const param& p, std::ostream* os) { *os << p.rel << " on the " << to_string(p.e); }

std::string test_name(const testing::TestParamInfo<param>& info) {
    std::string s = info.param.rel;
    for (std::string_view prefix : {"bpf_conformance/tests/", "bpf_conformance/", "ubpf/tests/"})
        if (s.starts_with(prefix)) {
            s = s.substr(prefix.size());
            break;
        }
    if (s.ends_with(".data")) s.resize(s.size() - 5);
    for (char& c : s)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return s + "_" + std::string(to_string(info.param.e));
}

std::vector<param> params_for(std::string_view sub, bool recursive) {
    std::vector<param> out;
    const fs::path root = conformance_root();
    for (auto& f : list_data_files(root / sub, recursive))
        for (engine e : available_engines())
            out.push_back({f, fs::relative(f, root).generic_string(), e});
    return out;
}

class Conformance : public testing::TestWithParam<param> {};

TEST_P(Conformance, Verdict) {
    const param& p = GetParam();
    expectation exp;
    if (auto it = exceptions().find(p.rel); it != exceptions().end()) exp = it->second;
    run_options opts;
    opts.cpu_version = exp.cpu_version;
    const judgement j = judge(p.file, p.e, opts);
    if (j.v == verdict::skip) GTEST_SKIP() << j.why;
    EXPECT_EQ(to_string(j.v), to_string(exp.expected))
        << p.rel << " on the " << to_string(p.e) << ": " << j.why
        << (exp.reason.empty() ? "" : "\n(expected because: " + std::string(exp.reason) + ")");
}

INSTANTIATE_TEST_SUITE_P(BpfConformance, Conformance, testing::ValuesIn(params_for("bpf_conformance/tests", false)),
                         test_name);
INSTANTIATE_TEST_SUITE_P(BpfConformanceNegative, Conformance,
                         testing::ValuesIn(params_for("bpf_conformance/negative", false)), test_name);
INSTANTIATE_TEST_SUITE_P(Ubpf, Conformance, testing::ValuesIn(params_for("ubpf/tests", true)), test_name);

// The suite is complete: a missing or moved data folder fails here instead of passing vacuously.
TEST(ConformanceData, AllFilesPresent) {
    const fs::path root = conformance_root();
    EXPECT_EQ(list_data_files(root / "bpf_conformance/tests", false).size(), 313u) << root;
    EXPECT_EQ(list_data_files(root / "bpf_conformance/negative", false).size(), 60u) << root;
    EXPECT_EQ(list_data_files(root / "ubpf/tests", true).size(), 77u) << root;
}

// Every positive test runs on every engine without a skip: no silent exclusions.
TEST(ConformanceData, NoPositiveTestIsSkipped) {
    for (auto& f : list_data_files(conformance_root() / "bpf_conformance/tests", false))
        for (engine e : available_engines()) {
            auto j = judge(f, e);
            EXPECT_NE(to_string(j.v), "SKIP") << f << " " << to_string(e) << ": " << j.why;
        }
}

}  // namespace
}  // namespace xdprt::conformance
