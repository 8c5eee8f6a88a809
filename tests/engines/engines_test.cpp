// Engine behaviour beyond the conformance data: faults, call frames, tail calls, linkage.
// Every case runs on the interpreter and, when built, the JIT.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "isa/isa.h"
#include "runner.h"
#include "vm/vm.h"
#ifdef XDPRT_HAVE_JIT
#include "jit/jit.h"
#endif

namespace xdprt::vm {
namespace {

using conformance::engine;

std::vector<isa::insn> asm_or_die(std::string_view text) {
    auto p = isa::assemble(text);
    EXPECT_TRUE(p) << p.error().message;
    return p ? *p : std::vector<isa::insn>{};
}

// Runs `prog` on `e`; the JIT image is kept alive in `keep` so tail-call targets stay valid.
result<uint64_t> run_on(engine e, program& prog, uint64_t r1, uint64_t r2, std::span<const region> regions = {}) {
    if (e == engine::interpreter) return interpret(prog, r1, r2, regions);
#ifdef XDPRT_HAVE_JIT
    auto c = jit::compile(prog);
    if (!c) return tl::unexpected(c.error());
    return c->run(r1, r2);
#else
    return fail(ENOTSUP, "no JIT");
#endif
}

class Engines : public testing::TestWithParam<engine> {};

TEST_P(Engines, LocalCallsKeepCalleeSavedRegistersAndOwnStack) {
    // main stores 7 on its stack, calls f, which writes its own stack and clobbers r6.
    linkage link;
    auto insns = asm_or_die(R"(
        mov %r6, 11
        stdw [%r10-8], 7
        mov %r1, 5
        call local f
        ldxdw %r1, [%r10-8]
        add %r0, %r1
        add %r0, %r6
        exit
    f:
        stdw [%r10-8], 1000
        mov %r6, 99
        mov %r0, %r1
        mul %r0, 2
        exit
    )");
    auto prog = load("calls", insns, link);
    ASSERT_TRUE(prog) << prog.error().message;
    auto r = run_on(GetParam(), *prog, 0, 0);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, 10u + 7u + 11u);
}

TEST_P(Engines, HelpersComeFromTheLinkage) {
    linkage link;
    link.helpers[7] = [](uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e) -> uint64_t {
        return a * 10000 + b * 1000 + c * 100 + d * 10 + e;
    };
    auto insns = asm_or_die("mov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall 7\nexit\n");
    auto prog = load("helper", insns, link);
    ASSERT_TRUE(prog) << prog.error().message;
    auto r = run_on(GetParam(), *prog, 0, 0);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, 12345u);
}

TEST_P(Engines, PseudoLoadsAreResolvedThroughTheLinkage) {
    static uint64_t value = 0x1122334455667788ull;
    linkage link;
    link.resolve_pseudo = [](uint8_t src, int32_t imm, int32_t) -> result<uint64_t> {
        if (src == isa::op::pseudo_map_value && imm == 3) return reinterpret_cast<uint64_t>(&value);
        return fail(EBADF, "no map {}", imm);
    };
    link.static_regions.push_back({reinterpret_cast<uint64_t>(&value), sizeof(value), false});
    std::vector<isa::insn> insns = {{0x18, 1, isa::op::pseudo_map_value, 0, 3}, {}, {0x79, 0, 1, 0, 0}, {0x95}};
    auto prog = load("pseudo", insns, link);
    ASSERT_TRUE(prog) << prog.error().message;
    auto r = run_on(GetParam(), *prog, 0, 0);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, value);

    insns[0].imm = 4;
    auto bad = load("pseudo", insns, link);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message, "prog 'pseudo': insn 0: no map 4");
}

TEST(Engines, PseudoLoadWithoutMapsIsRejected) {
    linkage link;
    std::vector<isa::insn> insns = {{0x18, 1, isa::op::pseudo_map_fd, 0, 3}, {}, {0x95}};
    auto prog = load("nomaps", insns, link);
    ASSERT_FALSE(prog);
    EXPECT_EQ(prog.error().message,
              "prog 'nomaps': insn 0: lddw with pseudo source 1 but the program is linked against no maps");
}

// Tail calls: program k tail-calls program k+1 of a chain through the linkage; each adds 1 to a
// counter in its context. The kernel allows 33 tail calls per invocation.
struct chain {
    std::vector<program> progs;
#ifdef XDPRT_HAVE_JIT
    std::vector<jit::compiled_program> images;
#endif
};
chain* current_chain = nullptr;

const program* chain_target(uint64_t, uint64_t index) {
    return index < current_chain->progs.size() ? &current_chain->progs[index] : nullptr;
}

TEST_P(Engines, TailCallsStopAfter33) {
    linkage link;
    link.tail_call_target = chain_target;
    chain c;
    current_chain = &c;
    // ctx: u64 counter at [r1+0], u64 index at [r1+8].
    auto insns = asm_or_die(R"(
        mov %r6, %r1
        ldxdw %r0, [%r6]
        add %r0, 1
        stxdw [%r6], %r0
        ldxdw %r3, [%r6+8]
        add %r3, 1
        stxdw [%r6+8], %r3
        mov %r1, %r6
        mov %r2, 0
        call 12
        mov %r0, 1000
        exit
    )");
    c.progs.reserve(50);
    for (int k = 0; k < 50; ++k) {
        auto p = load(fmt::format("tail{}", k), insns, link);
        ASSERT_TRUE(p) << p.error().message;
        c.progs.push_back(std::move(*p));
    }
#ifdef XDPRT_HAVE_JIT
    if (GetParam() == engine::jit) {
        for (auto& p : c.progs) {
            auto img = jit::compile(p);
            ASSERT_TRUE(img) << img.error().message;
            p.native = img->entry();
            c.images.push_back(std::move(*img));
        }
    }
#endif
    uint64_t ctx[2] = {0, 0};
    const region regions[] = {{reinterpret_cast<uint64_t>(ctx), sizeof(ctx), true}};
    auto r = run_on(GetParam(), c.progs[0], reinterpret_cast<uint64_t>(ctx), 0, regions);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, 1000u);
    EXPECT_EQ(ctx[0], 34u);  // the first program plus 33 tail calls
    current_chain = nullptr;
}

INSTANTIATE_TEST_SUITE_P(All, Engines, testing::ValuesIn(conformance::available_engines()),
                         [](const auto& info) { return std::string(conformance::to_string(info.param)); });

// Interpreter-only: faults are errors naming the program and the pc.
TEST(Interpreter, OutOfBoundsAccessNamesThePc) {
    linkage link;
    auto insns = asm_or_die("mov %r0, 0\nldxw %r0, [%r1+4]\nexit\n");
    auto prog = load("oob", insns, link);
    ASSERT_TRUE(prog);
    uint32_t mem[1] = {5};
    const region regions[] = {{reinterpret_cast<uint64_t>(mem), sizeof(mem), true}};
    auto ok = interpret(*prog, reinterpret_cast<uint64_t>(mem) - 4, 0, regions);
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(*ok, 5u);
    auto r = interpret(*prog, reinterpret_cast<uint64_t>(mem), 0, regions);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().message.starts_with("prog 'oob': insn 1: out-of-bounds load of 4 bytes at 0x"))
        << r.error().message;
}

TEST(Interpreter, ReadOnlyRegionsRefuseStores) {
    linkage link;
    auto insns = asm_or_die("stw [%r1], 1\nmov %r0, 0\nexit\n");
    auto prog = load("ro", insns, link);
    ASSERT_TRUE(prog);
    uint32_t mem[1] = {5};
    const region regions[] = {{reinterpret_cast<uint64_t>(mem), sizeof(mem), false}};
    auto r = interpret(*prog, reinterpret_cast<uint64_t>(mem), 0, regions);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("out-of-bounds store of 4 bytes"), std::string::npos);
    EXPECT_EQ(mem[0], 5u);
}

TEST(Interpreter, CallDepthIsLimitedToEightFrames) {
    linkage link;
    auto insns = asm_or_die("call local f\nexit\nf:\nmov %r0, 1\ncall local f\nexit\n");  // f recurses forever
    auto prog = load("deep", insns, link);
    ASSERT_TRUE(prog) << prog.error().message;
    auto r = interpret(*prog, 0, 0);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "prog 'deep': insn 3: call depth exceeds 8 frames");
}

TEST(Engines, UnlinkedHelperIsRefusedAtLoad) {
    linkage link;
    auto insns = asm_or_die("call 69\nexit\n");
    auto prog = load("nohelper", insns, link);
    ASSERT_FALSE(prog);
    EXPECT_EQ(prog.error().message, "prog 'nohelper': insn 0: unsupported helper 69 (bpf_fib_lookup): unknown func bpf_fib_lookup#69");
}

TEST(Interpreter, HelperUnknownToTheCheckerFaultsAtRunTime) {
    // An embedder that accepts any id at load (helper_known always true) still gets a clean fault.
    linkage link;
    load_options opts;
    opts.check.helper_known = [](int32_t, const void*) { return true; };
    auto insns = asm_or_die("call 9\nexit\n");
    auto prog = load("nohelper", insns, link, opts);
    ASSERT_TRUE(prog);
    auto r = interpret(*prog, 0, 0);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "prog 'nohelper': insn 0: call of helper 9 which is not linked");
}

#ifdef XDPRT_HAVE_JIT
TEST(Jit, ItsImageIsTheCodeThatRuns) {
    // What bpf_prog_info's jited_prog_len/insns report: the linked code, which is what runs (the
    // entry point lies inside it) and ends in a return.
    linkage link;
    auto prog = load("image", asm_or_die("mov %r0, 42\nexit"), link);
    ASSERT_TRUE(prog) << prog.error().message;
    auto c = jit::compile(*prog);
    ASSERT_TRUE(c) << c.error().message;
    auto code = c->code();
    ASSERT_FALSE(code.empty());
    EXPECT_EQ(c->run(0, 0), 42u);
    std::vector<uint8_t> copy(code.begin(), code.end());
    EXPECT_NE(std::find(copy.begin(), copy.end(), uint8_t(0xc3)), copy.end()) << "no ret in the image";
    // The entry point's bytes are in the image (other functions may come before it).
    const auto* entry = reinterpret_cast<const uint8_t*>(c->entry());
    const size_t n = std::min<size_t>(copy.size(), 4);
    EXPECT_NE(std::search(copy.begin(), copy.end(), entry, entry + n), copy.end())
        << "the image does not hold the code at the entry point (" << copy.size() << " bytes)";
    EXPECT_TRUE(jit::compiled_program{}.code().empty());
}
#endif

}  // namespace
}  // namespace xdprt::vm
