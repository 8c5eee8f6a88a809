// xdprt LLVM JIT: bytecode -> LLVM IR -> native code through ORC LLJIT (LLVM 19).
//
// This is the only translation unit that includes LLVM (its ORC headers cost 10-15 s of compile
// time each), so the IR builder lives here too. The shape of the generated code:
//
//   - every bpf function (layout.func_starts) is one internal LLVM function
//       i64 f<N>(i64 r1, i64 r2, i64 r3, i64 r4, i64 r5, ptr rs)
//     with allocas for r0..r9 (mem2reg/SROA turn them into SSA values at O1+) and its own
//     `alloca [512 x i8], align 8` stack; r10 is ptrtoint(stack + 512) and never written.
//     Because r6-r9 are locals of each function they survive local calls with no saving code.
//   - the exported `xdprt_entry` is the vm::native_fn: i64(i64 r1, i64 r2, ptr rs), calling f0
//     with r3-r5 = 0. It carries 8 bytes of zero prefix data: clang's -fsanitize=function reads
//     the 8 bytes in front of a function called through a pointer, and JIT code may begin a page.
//   - basic blocks begin at every function start, jump target and instruction after a jump or
//     exit; every block ends in a branch, a return, or `unreachable` where control cannot go on.
//   - memory is accessed through inttoptr of the 64-bit address, unchecked (jit.h: the verifier
//     makes programs safe). Accesses whose base register is r10 with an in-frame offset use a GEP
//     on the stack alloca instead, so LLVM can see them as stack traffic and forward or drop them.
//   - helpers are called at their addresses from the linkage (constants in the code); the helper
//     table and the linkage are referenced by address, which is why the linkage must outlive the
//     compiled program.
//
// Every LLVM error is converted to xdprt::error at this file's edge; nothing here throws.
//
// Compile time (tests/engines/jit_smoke_test.cpp prints it; 2 vCPU EPYC VM, 2,500 instructions):
// a parser-shaped program (bounds checks, header loads, map lookups, atomics) takes ~12 ms at O0,
// ~65 ms at O1 and ~85 ms at O2/O3; straight-line arithmetic with divisions, the worst case for
// LLVM's value-range passes, ~11 / 125 / 165 / 165 ms. About half of O2 is the default
// pipeline (mostly InstCombine), half is instruction selection and register allocation. The
// default per-module pipelines are kept rather than a hand-picked pass list: the code they give
// is the reason to JIT with LLVM at all, and O0/O1 exist for loaders that need speed of loading.
#include "jit/jit.h"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <mutex>
#include <utility>

#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/JITLink/JITLink.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ObjectLinkingLayer.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

namespace xdprt::jit {

static_assert(sizeof(void*) == 8, "the generated code assumes 64-bit pointers");
constexpr int32_t map_lookup_helper_id = 1;  // BPF_FUNC_map_lookup_elem
static_assert(sizeof(bool) == 1, "run_state::faulted is stored as one byte");

struct compiled_program::impl {
    // Owns the code memory: destroying the LLJIT ends its session and unmaps the code.
    std::unique_ptr<llvm::orc::LLJIT> jit;
    std::vector<uint8_t> code;  // the executable sections as linked (what jited_prog_insns shows)
};

namespace {

// Copies the executable sections of what JITLink links, after fixups, as they are in memory:
// the program's native code as the kernel reports a JIT image (jited_prog_len/insns).
class code_recorder final : public llvm::orc::ObjectLinkingLayer::Plugin {
public:
    explicit code_recorder(std::vector<uint8_t>& out) : _out(out) {}
    void modifyPassConfig(llvm::orc::MaterializationResponsibility&, llvm::jitlink::LinkGraph&,
                          llvm::jitlink::PassConfiguration& config) override {
        config.PostFixupPasses.push_back([this](llvm::jitlink::LinkGraph& g) {
            for (auto& section : g.sections()) {
                if (!(unsigned(section.getMemProt()) & unsigned(llvm::orc::MemProt::Exec))) continue;
                for (auto* block : section.blocks()) {
                    if (block->isZeroFill()) continue;
                    auto bytes = block->getContent();
                    _out.insert(_out.end(), reinterpret_cast<const uint8_t*>(bytes.data()),
                                reinterpret_cast<const uint8_t*>(bytes.data()) + bytes.size());
                }
            }
            return llvm::Error::success();
        });
    }
    llvm::Error notifyFailed(llvm::orc::MaterializationResponsibility&) override { return llvm::Error::success(); }
    llvm::Error notifyRemovingResources(llvm::orc::JITDylib&, llvm::orc::ResourceKey) override { return llvm::Error::success(); }
    void notifyTransferringResources(llvm::orc::JITDylib&, llvm::orc::ResourceKey, llvm::orc::ResourceKey) override {}

private:
    std::vector<uint8_t>& _out;
};

}  // namespace

compiled_program::compiled_program() = default;
compiled_program::compiled_program(compiled_program&& other) noexcept
    : _impl(std::move(other._impl)), _entry(std::exchange(other._entry, nullptr)) {}
compiled_program& compiled_program::operator=(compiled_program&& other) noexcept {
    _impl = std::move(other._impl);
    _entry = std::exchange(other._entry, nullptr);
    return *this;
}
compiled_program::~compiled_program() = default;

std::span<const uint8_t> compiled_program::code() const noexcept {
    if (!_impl) return {};
    return _impl->code;
}

namespace {

using isa::kind;
namespace op = isa::op;

constexpr const char* entry_symbol = "xdprt_entry";

// r0 after a bpf_tail_call that fell through (no program at that index, or the 33-call limit hit).
// The kernel leaves r0 unspecified there; the interpreter returns the same value.
constexpr uint64_t tail_call_fallthrough_r0 = static_cast<uint64_t>(-static_cast<int64_t>(ENOENT));

// Called by the generated code for `call 12` (bpf_tail_call). Returns the native code to continue
// with, having counted the call, or null when the call falls through. The program behind the
// index must have native code (vm::program::native) for the call to be taken.
vm::native_fn resolve_tail_call(const vm::linkage* link, uint64_t map, uint64_t index,
                                vm::run_state* rs) noexcept {
    if (rs->tail_calls >= static_cast<uint32_t>(isa::max_tail_calls)) return nullptr;
    const vm::program* next = link->tail_call_target(map, index);
    if (next == nullptr || next->native == nullptr) return nullptr;
    ++rs->tail_calls;
    return next->native;
}

template <class... Args>
[[nodiscard]] unexpected_error insn_fail(uint32_t pc, int code, fmt::format_string<Args...> format,
                                         Args&&... args) {
    return fail(code, "insn {}: {}", pc, fmt::format(format, std::forward<Args>(args)...));
}

// A register an instruction writes: r0..r9 (r10, the frame pointer, is read-only).
[[nodiscard]] result<void> check_dst_reg(uint32_t pc, uint8_t reg) {
    if (reg == isa::max_reg) return insn_fail(pc, EINVAL, "r10 is read-only");
    if (reg > isa::max_reg) return insn_fail(pc, EINVAL, "bad register r{}", reg);
    return {};
}

[[nodiscard]] std::string helper_label(int32_t id) {
    const std::string_view name = isa::helper_name(id);
    return name.empty() ? fmt::format("helper {}", id) : fmt::format("helper {} ({})", id, name);
}

// Builds the module for one program. One instance per compile; not reusable.
class ir_builder {
public:
    ir_builder(const vm::program& prog, llvm::LLVMContext& ctx, llvm::Module& mod)
        : _prog(prog), _ctx(ctx), _mod(mod), _b(ctx), _i8(llvm::Type::getInt8Ty(ctx)),
          _i16(llvm::Type::getInt16Ty(ctx)), _i32(llvm::Type::getInt32Ty(ctx)),
          _i64(llvm::Type::getInt64Ty(ctx)), _ptr(llvm::PointerType::get(ctx, 0)) {
        _bpf_fn_ty = llvm::FunctionType::get(_i64, {_i64, _i64, _i64, _i64, _i64, _ptr}, false);
        _helper_ty = llvm::FunctionType::get(_i64, {_i64, _i64, _i64, _i64, _i64}, false);
        _native_ty = llvm::FunctionType::get(_i64, {_i64, _i64, _ptr}, false);
        _resolve_ty = llvm::FunctionType::get(_ptr, {_ptr, _i64, _i64, _ptr}, false);
    }

    // Defines one function per bpf function and the exported entry. Errors read "insn PC: ...".
    [[nodiscard]] result<void> build();

private:
    // The bpf function being emitted.
    struct frame {
        llvm::Function* fn = nullptr;
        std::array<llvm::AllocaInst*, isa::max_reg> regs{};  // r0..r9
        llvm::Value* stack = nullptr;                        // [512 x i8]
        llvm::Value* fp = nullptr;                           // r10, the address one past the stack
        uint32_t begin = 0, end = 0;                         // [begin, end) in prog.insns
        std::vector<llvm::BasicBlock*> blocks;               // by pc - begin; null: no block starts there
        // Registers an ld_imm64 set earlier in the current basic block, with the value it set
        // (for map lookups the linkage compiles without the helper).
        std::array<std::optional<uint64_t>, isa::max_reg> known{};
    };

    [[nodiscard]] result<void> build_function(size_t index);
    [[nodiscard]] result<void> find_blocks(frame& f);
    [[nodiscard]] result<void> emit(frame& f, uint32_t pc);
    [[nodiscard]] result<void> emit_alu(frame& f, uint32_t pc, const isa::insn& in, const isa::opcode_info& oi);
    [[nodiscard]] result<void> emit_atomic(frame& f, uint32_t pc, const isa::insn& in, const isa::opcode_info& oi);
    [[nodiscard]] result<void> emit_call(frame& f, uint32_t pc, const isa::insn& in);
    // map_lookup_elem on the map at `map` (an ld_imm64 value), as the linkage allows
    // (inline_array, direct_lookup); false when it allows neither and the helper must be called.
    bool emit_known_lookup(frame& f, uint64_t map);
    void emit_tail_call(frame& f);
    void emit_callx(frame& f, uint8_t reg);
    llvm::Value* emit_div_mod(uint8_t o, bool is_signed, llvm::Value* a, llvm::Value* b);
    void define_entry();

    // Registers. r10 reads as the frame pointer; callers make sure r10 is never a destination.
    llvm::Value* get(frame& f, uint8_t reg) {
        return reg == isa::max_reg ? f.fp : _b.CreateLoad(_i64, f.regs[reg]);
    }
    void set(frame& f, uint8_t reg, llvm::Value* v) {
        _b.CreateStore(v, f.regs[reg]);
        if (reg < f.known.size()) f.known[reg].reset();
    }

    // The address `reg + off` as a pointer for an access of `bytes` bytes.
    llvm::Value* address(frame& f, uint8_t reg, int16_t off, unsigned bytes) {
        const int64_t in_frame = int64_t{isa::stack_size} + off;
        if (reg == isa::max_reg && in_frame >= 0 && in_frame + bytes <= isa::stack_size)
            return _b.CreateConstInBoundsGEP1_64(_i8, f.stack, static_cast<uint64_t>(in_frame));
        llvm::Value* base = get(f, reg);
        if (off != 0) base = _b.CreateAdd(base, const64(static_cast<uint64_t>(int64_t{off})));
        return _b.CreateIntToPtr(base, _ptr);
    }

    llvm::IntegerType* int_type(unsigned bytes) const {
        switch (bytes) {
        case 1: return _i8;
        case 2: return _i16;
        case 4: return _i32;
        default: return _i64;
        }
    }
    llvm::ConstantInt* const64(uint64_t v) { return llvm::ConstantInt::get(_i64, v); }
    llvm::ConstantInt* const32(uint32_t v) { return llvm::ConstantInt::get(_i32, v); }
    llvm::Constant* const_ptr(const void* p) {
        return llvm::ConstantExpr::getIntToPtr(const64(reinterpret_cast<uintptr_t>(p)), _ptr);
    }
    llvm::BasicBlock* new_block() { return llvm::BasicBlock::Create(_ctx, "", _fn_being_built); }

    // The block of a jump target; find_blocks() made sure there is one.
    llvm::BasicBlock* block_at(frame& f, uint32_t pc) { return f.blocks[pc - f.begin]; }

    // Index of the function starting exactly at pc, or -1.
    int function_at(uint32_t pc) const {
        const auto& starts = _starts;
        auto it = std::lower_bound(starts.begin(), starts.end(), pc);
        return it != starts.end() && *it == pc ? static_cast<int>(it - starts.begin()) : -1;
    }

    const vm::program& _prog;
    llvm::LLVMContext& _ctx;
    llvm::Module& _mod;
    llvm::IRBuilder<> _b;
    llvm::IntegerType *_i8, *_i16, *_i32, *_i64;
    llvm::PointerType* _ptr;
    llvm::FunctionType *_bpf_fn_ty = nullptr, *_helper_ty = nullptr, *_native_ty = nullptr,
                       *_resolve_ty = nullptr;
    std::vector<uint32_t> _starts;            // function entry pcs, sorted, main first
    std::vector<llvm::Function*> _functions;  // by index into _starts
    std::vector<bool> _second_slot;           // pc is the second half of an ld_imm64
    llvm::Function* _fn_being_built = nullptr;
};

result<void> ir_builder::build() {
    const auto& insns = _prog.insns;
    if (insns.empty()) return fail(EINVAL, "empty program");
    if (insns.size() > isa::max_insns) return fail(E2BIG, "{} instructions, more than {}", insns.size(), isa::max_insns);

    _starts = _prog.layout.func_starts;
    if (_starts.empty()) _starts.push_back(0);
    if (_starts.front() != 0 || !std::is_sorted(_starts.begin(), _starts.end()) ||
        std::adjacent_find(_starts.begin(), _starts.end()) != _starts.end() || _starts.back() >= insns.size())
        return fail(EINVAL, "bad program layout (function starts must be sorted, unique, begin at 0)");

    _second_slot.assign(insns.size(), false);
    for (uint32_t pc = 0; pc < insns.size(); ++pc) {
        if (isa::info(insns[pc].code).k != kind::ld_imm64) continue;
        if (pc + 1 >= insns.size() || function_at(pc + 1) >= 0)
            return insn_fail(pc, EINVAL, "ld_imm64 without its second slot");
        _second_slot[pc + 1] = true;
        ++pc;
    }

    // Declare all functions first: calls may go forward.
    _functions.reserve(_starts.size());
    for (size_t i = 0; i < _starts.size(); ++i) {
        auto* fn = llvm::Function::Create(_bpf_fn_ty, llvm::GlobalValue::InternalLinkage,
                                          fmt::format("f{}", _starts[i]), _mod);
        fn->setDoesNotThrow();
        _functions.push_back(fn);
    }
    for (size_t i = 0; i < _starts.size(); ++i)
        if (auto r = build_function(i); !r) return r;
    define_entry();
    return {};
}

void ir_builder::define_entry() {
    auto* fn = llvm::Function::Create(_native_ty, llvm::GlobalValue::ExternalLinkage, entry_symbol, _mod);
    fn->setDoesNotThrow();
    fn->setPrefixData(llvm::ConstantInt::get(_i64, 0));  // see the file comment (-fsanitize=function)
    _b.SetInsertPoint(llvm::BasicBlock::Create(_ctx, "", fn));
    llvm::Value* zero = const64(0);
    auto* call = _b.CreateCall(_bpf_fn_ty, _functions[0],
                               {fn->getArg(0), fn->getArg(1), zero, zero, zero, fn->getArg(2)});
    call->setDoesNotThrow();
    _b.CreateRet(call);
}

result<void> ir_builder::find_blocks(frame& f) {
    const auto& insns = _prog.insns;
    f.blocks.assign(f.end - f.begin, nullptr);
    auto mark = [&](uint32_t pc) {
        if (!f.blocks[pc - f.begin]) f.blocks[pc - f.begin] = new_block();
    };
    auto mark_target = [&](uint32_t pc, int64_t target) -> result<void> {
        if (target < f.begin || target >= f.end)
            return insn_fail(pc, EINVAL, "jump to {} leaves its function [{}, {})", target, f.begin, f.end);
        if (_second_slot[static_cast<size_t>(target)])
            return insn_fail(pc, EINVAL, "jump into the middle of an ld_imm64 at {}", target - 1);
        mark(static_cast<uint32_t>(target));
        return {};
    };
    mark(f.begin);
    for (uint32_t pc = f.begin; pc < f.end; ++pc) {
        if (_second_slot[pc]) continue;
        const isa::insn& in = insns[pc];
        const kind k = isa::info(in.code).k;
        int64_t target = 0;
        if (k == kind::ja || k == kind::jcond) target = int64_t{pc} + 1 + in.off;
        else if (k == kind::ja32) target = int64_t{pc} + 1 + in.imm;
        else if (k != kind::exit) continue;
        if (k != kind::exit)
            if (auto r = mark_target(pc, target); !r) return r;
        if (pc + 1 < f.end) mark(pc + 1);
    }
    return {};
}

result<void> ir_builder::build_function(size_t index) {
    frame f;
    f.fn = _functions[index];
    f.begin = _starts[index];
    f.end = index + 1 < _starts.size() ? _starts[index + 1] : static_cast<uint32_t>(_prog.insns.size());
    _fn_being_built = f.fn;

    auto* entry = llvm::BasicBlock::Create(_ctx, "", f.fn);
    if (auto r = find_blocks(f); !r) return r;

    // The entry block holds every alloca, so mem2reg and SROA can promote them.
    _b.SetInsertPoint(entry);
    f.stack = _b.CreateAlloca(llvm::ArrayType::get(_i8, isa::stack_size));
    llvm::cast<llvm::AllocaInst>(f.stack)->setAlignment(llvm::Align(8));
    for (auto& reg : f.regs) reg = _b.CreateAlloca(_i64);
    // r0 and r6-r9 start at 0 rather than undef: a program the verifier did not see may read them,
    // and branching on undef would be undefined behaviour in the generated code.
    for (uint8_t r = 0; r < isa::max_reg; ++r)
        set(f, r, r >= 1 && r <= 5 ? static_cast<llvm::Value*>(f.fn->getArg(r - 1)) : const64(0));
    f.fp = _b.CreatePtrToInt(_b.CreateConstInBoundsGEP1_64(_i8, f.stack, isa::stack_size), _i64);
    _b.CreateBr(f.blocks[0]);

    for (uint32_t pc = f.begin; pc < f.end; ++pc) {
        if (_second_slot[pc]) continue;
        if (llvm::BasicBlock* bb = f.blocks[pc - f.begin]) {
            if (!_b.GetInsertBlock()->getTerminator()) _b.CreateBr(bb);
            _b.SetInsertPoint(bb);
            f.known = {};  // other paths join here
        }
        if (auto r = emit(f, pc); !r) return r;
    }
    // Control cannot fall off a function's end (isa::check), so whatever block is still open there
    // is unreachable.
    if (!_b.GetInsertBlock()->getTerminator()) _b.CreateUnreachable();
    return {};
}

result<void> ir_builder::emit(frame& f, uint32_t pc) {
    const isa::insn& in = _prog.insns[pc];
    const isa::opcode_info& oi = isa::info(in.code);
    auto check_dst = [&]() { return check_dst_reg(pc, in.dst); };
    auto check_reg = [&](uint8_t reg) -> result<void> {
        if (reg > isa::max_reg) return insn_fail(pc, EINVAL, "bad register r{}", reg);
        return {};
    };

    switch (oi.k) {
    case kind::invalid: return insn_fail(pc, EINVAL, "unknown opcode {:#04x}", in.code);

    case kind::alu: return emit_alu(f, pc, in, oi);

    case kind::neg: {
        if (auto r = check_dst(); !r) return r;
        llvm::Value* v = get(f, in.dst);
        if (oi.is64) v = _b.CreateNeg(v);
        else v = _b.CreateZExt(_b.CreateNeg(_b.CreateTrunc(v, _i32)), _i64);
        set(f, in.dst, v);
        return {};
    }

    case kind::endian:
    case kind::bswap: {
        if (auto r = check_dst(); !r) return r;
        if (in.imm != 16 && in.imm != 32 && in.imm != 64)
            return insn_fail(pc, EINVAL, "byte swap width {} (must be 16, 32 or 64)", in.imm);
        // The host is little-endian: le* truncates, be* and bswap* swap, then truncate.
        const bool swap = oi.k == kind::bswap || op::is_reg_src(in.code);
        llvm::Value* v = get(f, in.dst);
        llvm::IntegerType* t = int_type(static_cast<unsigned>(in.imm) / 8);
        if (t != _i64) v = _b.CreateTrunc(v, t);
        if (swap) v = _b.CreateUnaryIntrinsic(llvm::Intrinsic::bswap, v);
        if (t != _i64) v = _b.CreateZExt(v, _i64);
        set(f, in.dst, v);
        return {};
    }

    case kind::ld_imm64: {
        if (auto r = check_dst(); !r) return r;
        // Pseudo sources were resolved by vm::load: whatever src says, the value is a constant.
        const isa::insn& next = _prog.insns[pc + 1];
        const uint64_t v = uint64_t{static_cast<uint32_t>(in.imm)} | uint64_t{static_cast<uint32_t>(next.imm)} << 32;
        set(f, in.dst, const64(v));
        f.known[in.dst] = v;
        return {};
    }

    case kind::load:
    case kind::load_sx: {
        if (auto r = check_dst(); !r) return r;
        if (auto r = check_reg(in.src); !r) return r;
        llvm::IntegerType* t = int_type(oi.bytes);
        llvm::LoadInst* v = _b.CreateLoad(t, address(f, in.src, in.off, oi.bytes));
        v->setAlignment(llvm::Align(1));  // the ISA does not promise alignment; x86 and arm64 don't mind
        llvm::Value* wide = v;
        if (t != _i64) wide = oi.k == kind::load_sx ? _b.CreateSExt(v, _i64) : _b.CreateZExt(v, _i64);
        set(f, in.dst, wide);
        return {};
    }

    case kind::store_imm:
    case kind::store_reg: {
        if (auto r = check_reg(in.dst); !r) return r;
        llvm::IntegerType* t = int_type(oi.bytes);
        llvm::Value* v;
        if (oi.k == kind::store_reg) {
            if (auto r = check_reg(in.src); !r) return r;
            v = get(f, in.src);
            if (t != _i64) v = _b.CreateTrunc(v, t);
        } else {
            v = llvm::ConstantInt::get(t, static_cast<uint64_t>(int64_t{in.imm}) & t->getBitMask());
        }
        _b.CreateStore(v, address(f, in.dst, in.off, oi.bytes))->setAlignment(llvm::Align(1));
        return {};
    }

    case kind::atomic: return emit_atomic(f, pc, in, oi);

    case kind::ja:
        _b.CreateBr(block_at(f, static_cast<uint32_t>(int64_t{pc} + 1 + in.off)));
        return {};
    case kind::ja32:
        _b.CreateBr(block_at(f, static_cast<uint32_t>(int64_t{pc} + 1 + in.imm)));
        return {};

    case kind::jcond: {
        if (auto r = check_reg(in.dst); !r) return r;
        llvm::Value* a = get(f, in.dst);
        llvm::Value* b;
        if (oi.reg_src) {
            if (auto r = check_reg(in.src); !r) return r;
            b = get(f, in.src);
        } else {
            b = const64(static_cast<uint64_t>(int64_t{in.imm}));  // sign-extended (RFC 9669 4.)
        }
        if (!oi.is64) {  // JMP32 compares the low 32 bits
            a = _b.CreateTrunc(a, _i32);
            b = _b.CreateTrunc(b, _i32);
        }
        using pred = llvm::CmpInst::Predicate;
        llvm::Value* cond = nullptr;
        switch (op::alu_op(in.code)) {
        case op::jeq: cond = _b.CreateICmp(pred::ICMP_EQ, a, b); break;
        case op::jgt: cond = _b.CreateICmp(pred::ICMP_UGT, a, b); break;
        case op::jge: cond = _b.CreateICmp(pred::ICMP_UGE, a, b); break;
        case op::jset: cond = _b.CreateICmpNE(_b.CreateAnd(a, b), llvm::ConstantInt::get(a->getType(), 0)); break;
        case op::jne: cond = _b.CreateICmp(pred::ICMP_NE, a, b); break;
        case op::jsgt: cond = _b.CreateICmp(pred::ICMP_SGT, a, b); break;
        case op::jsge: cond = _b.CreateICmp(pred::ICMP_SGE, a, b); break;
        case op::jlt: cond = _b.CreateICmp(pred::ICMP_ULT, a, b); break;
        case op::jle: cond = _b.CreateICmp(pred::ICMP_ULE, a, b); break;
        case op::jslt: cond = _b.CreateICmp(pred::ICMP_SLT, a, b); break;
        case op::jsle: cond = _b.CreateICmp(pred::ICMP_SLE, a, b); break;
        default: return insn_fail(pc, EINVAL, "unknown jump {:#04x}", in.code);
        }
        _b.CreateCondBr(cond, block_at(f, static_cast<uint32_t>(int64_t{pc} + 1 + in.off)), block_at(f, pc + 1));
        return {};
    }

    case kind::call: return emit_call(f, pc, in);

    case kind::callx:
        if (auto r = check_reg(in.dst); !r) return r;
        if (_prog.link == nullptr) return insn_fail(pc, EINVAL, "callx without a linkage");
        emit_callx(f, in.dst);
        return {};

    case kind::exit: _b.CreateRet(get(f, 0)); return {};
    }
    return insn_fail(pc, EINVAL, "unhandled opcode {:#04x}", in.code);
}

// Division and modulo without LLVM's undefined cases (divisor 0; INT_MIN / -1 when signed), RFC
// 9669 section 4.1: x / 0 = 0, x % 0 = x, INT_MIN / -1 = INT_MIN, INT_MIN % -1 = 0. With an
// immediate divisor the selects fold away.
llvm::Value* ir_builder::emit_div_mod(uint8_t o, bool is_signed, llvm::Value* a, llvm::Value* b) {
    llvm::Type* t = a->getType();
    llvm::Value* zero = llvm::ConstantInt::get(t, 0);
    llvm::Value* one = llvm::ConstantInt::get(t, 1);
    llvm::Value* b_zero = _b.CreateICmpEQ(b, zero);
    if (!is_signed) {
        llvm::Value* safe = _b.CreateSelect(b_zero, one, b);
        if (o == op::div) return _b.CreateSelect(b_zero, zero, _b.CreateUDiv(a, safe));
        return _b.CreateSelect(b_zero, a, _b.CreateURem(a, safe));
    }
    llvm::Value* b_minus_one = _b.CreateICmpEQ(b, llvm::ConstantInt::getSigned(t, -1));
    llvm::Value* safe = _b.CreateSelect(_b.CreateOr(b_zero, b_minus_one), one, b);
    if (o == op::div) {
        // x / -1 is -x, which wraps for INT_MIN as the ISA wants.
        llvm::Value* q = _b.CreateSelect(b_minus_one, _b.CreateNeg(a), _b.CreateSDiv(a, safe));
        return _b.CreateSelect(b_zero, zero, q);
    }
    llvm::Value* r = _b.CreateSelect(b_minus_one, zero, _b.CreateSRem(a, safe));
    return _b.CreateSelect(b_zero, a, r);
}

result<void> ir_builder::emit_alu(frame& f, uint32_t pc, const isa::insn& in, const isa::opcode_info& oi) {
    if (auto r = check_dst_reg(pc, in.dst); !r) return r;
    const uint8_t o = op::alu_op(in.code);
    llvm::IntegerType* t = oi.is64 ? _i64 : _i32;
    const unsigned bits = t->getBitWidth();

    llvm::Value* src;
    if (oi.reg_src) {
        if (in.src > isa::max_reg) return insn_fail(pc, EINVAL, "bad register r{}", in.src);
        src = get(f, in.src);
        if (!oi.is64) src = _b.CreateTrunc(src, _i32);
    } else {
        // imm is sign-extended to 64 bits for ALU64 and used as is for ALU (RFC 9669 section 4.1).
        src = llvm::ConstantInt::get(t, static_cast<uint64_t>(int64_t{in.imm}) & t->getBitMask());
    }

    const bool signed_div = (o == op::div || o == op::mod) && in.off == 1;
    const bool movsx = o == op::mov && in.off != 0;
    if (in.off != 0 && !signed_div && !movsx)
        return insn_fail(pc, EINVAL, "offset {} of {} must be 0", in.off, isa::mnemonic(in));

    llvm::Value* v = nullptr;
    if (o == op::mov) {
        if (movsx) {
            if (!oi.reg_src || (in.off != 8 && in.off != 16 && (in.off != 32 || !oi.is64)))
                return insn_fail(pc, EINVAL, "bad sign-extending move (offset {})", in.off);
            v = _b.CreateSExt(_b.CreateTrunc(src, int_type(static_cast<unsigned>(in.off) / 8)), t);
        } else {
            v = src;
        }
    } else {
        llvm::Value* a = get(f, in.dst);
        if (!oi.is64) a = _b.CreateTrunc(a, _i32);
        auto shift_count = [&] { return _b.CreateAnd(src, llvm::ConstantInt::get(t, bits - 1)); };
        switch (o) {
        case op::add: v = _b.CreateAdd(a, src); break;
        case op::sub: v = _b.CreateSub(a, src); break;
        case op::mul: v = _b.CreateMul(a, src); break;
        case op::or_: v = _b.CreateOr(a, src); break;
        case op::and_: v = _b.CreateAnd(a, src); break;
        case op::xor_: v = _b.CreateXor(a, src); break;
        case op::lsh: v = _b.CreateShl(a, shift_count()); break;
        case op::rsh: v = _b.CreateLShr(a, shift_count()); break;
        case op::arsh: v = _b.CreateAShr(a, shift_count()); break;
        case op::div:
        case op::mod:
            if (in.off != 0 && in.off != 1) return insn_fail(pc, EINVAL, "bad division offset {}", in.off);
            v = emit_div_mod(o, signed_div, a, src);
            break;
        default: return insn_fail(pc, EINVAL, "unknown ALU operation {:#04x}", in.code);
        }
    }
    set(f, in.dst, oi.is64 ? v : _b.CreateZExt(v, _i64));
    return {};
}

result<void> ir_builder::emit_atomic(frame& f, uint32_t pc, const isa::insn& in, const isa::opcode_info& oi) {
    if (in.dst > isa::max_reg || in.src > isa::max_reg)
        return insn_fail(pc, EINVAL, "bad register r{}", std::max(in.dst, in.src));
    llvm::IntegerType* t = int_type(oi.bytes);
    // Atomics need natural alignment (a misaligned atomicrmw becomes a libatomic call); the
    // verifier rejects misaligned atomic accesses, as the kernel's does.
    const llvm::Align align(oi.bytes);
    constexpr auto seq_cst = llvm::AtomicOrdering::SequentiallyConsistent;
    if (in.imm & op::fetch && in.imm != op::cmpxchg)  // fetching into src: src is written
        if (auto r = check_dst_reg(pc, in.src); !r) return r;
    llvm::Value* ptr = address(f, in.dst, in.off, oi.bytes);
    llvm::Value* val = get(f, in.src);
    if (t != _i64) val = _b.CreateTrunc(val, t);
    auto widen = [&](llvm::Value* v) { return t == _i64 ? v : _b.CreateZExt(v, _i64); };

    if (in.imm == op::cmpxchg) {
        llvm::Value* expected = get(f, 0);
        if (t != _i64) expected = _b.CreateTrunc(expected, t);
        auto* x = _b.CreateAtomicCmpXchg(ptr, expected, val, align, seq_cst, seq_cst);
        set(f, 0, widen(_b.CreateExtractValue(x, 0)));  // r0 = old value, whether or not it matched
        return {};
    }
    llvm::AtomicRMWInst::BinOp bin;
    switch (in.imm & ~op::fetch) {
    case op::add: bin = llvm::AtomicRMWInst::Add; break;
    case op::or_: bin = llvm::AtomicRMWInst::Or; break;
    case op::and_: bin = llvm::AtomicRMWInst::And; break;
    case op::xor_: bin = llvm::AtomicRMWInst::Xor; break;
    case op::xchg & ~op::fetch:
        if (in.imm != op::xchg) return insn_fail(pc, EINVAL, "unknown atomic operation {:#x}", in.imm);
        bin = llvm::AtomicRMWInst::Xchg;
        break;
    default: return insn_fail(pc, EINVAL, "unknown atomic operation {:#x}", in.imm);
    }
    llvm::Value* old = _b.CreateAtomicRMW(bin, ptr, val, align, seq_cst);
    if (in.imm & op::fetch) set(f, in.src, widen(old));
    return {};
}

bool ir_builder::emit_known_lookup(frame& f, uint64_t map) {
    const vm::linkage& link = *_prog.link;
    if (link.inline_array) {
        if (auto a = link.inline_array(map)) {
            // r0 = key < max_entries ? base + key * stride : 0, without a branch.
            llvm::LoadInst* key = _b.CreateLoad(_i32, _b.CreateIntToPtr(get(f, 2), _ptr));
            key->setAlignment(llvm::Align(1));
            llvm::Value* index = _b.CreateZExt(key, _i64);
            llvm::Value* addr = _b.CreateAdd(const64(a->base), _b.CreateMul(index, const64(a->stride)));
            if (a->per_cpu_stride) {
                llvm::LoadInst* cpu = _b.CreateLoad(_i32, _b.CreateConstInBoundsGEP1_64(_i8, f.fn->getArg(5), offsetof(vm::run_state, cpu)));
                addr = _b.CreateAdd(addr, _b.CreateMul(_b.CreateZExt(cpu, _i64), const64(a->per_cpu_stride)));
            }
            llvm::Value* in_bounds = _b.CreateICmpULT(key, llvm::ConstantInt::get(_i32, a->max_entries));
            set(f, 0, _b.CreateSelect(in_bounds, addr, const64(0)));
            return true;
        }
    }
    if (link.direct_lookup) {
        if (const void* fn = link.direct_lookup(map)) {
            auto* ty = llvm::FunctionType::get(_i64, {_i64, _i64}, false);
            auto* call = _b.CreateCall(ty, const_ptr(fn), {get(f, 1), get(f, 2)});
            call->setDoesNotThrow();
            set(f, 0, call);
            return true;
        }
    }
    return false;
}

result<void> ir_builder::emit_call(frame& f, uint32_t pc, const isa::insn& in) {
    switch (in.src) {
    case op::call_helper: {
        if (_prog.link == nullptr) return insn_fail(pc, EINVAL, "helper call without a linkage");
        if (in.imm < 0 || static_cast<size_t>(in.imm) >= vm::max_helper_id)
            return insn_fail(pc, EINVAL, "unknown helper {}", in.imm);
        // bpf_tail_call goes through tail_call_target; a linkage without one may still provide
        // helper 12 as a plain function (as the interpreter does).
        if (in.imm == vm::tail_call_helper_id && _prog.link->tail_call_target != nullptr) {
            emit_tail_call(f);
            return {};
        }
        vm::helper_fn fn = _prog.link->helpers[static_cast<size_t>(in.imm)];
        if (fn == nullptr)
            return insn_fail(pc, EINVAL, "call of {}, which the linkage does not provide", helper_label(in.imm));
        if (in.imm == map_lookup_helper_id && f.known[1] && emit_known_lookup(f, *f.known[1])) return {};
        auto* call = _b.CreateCall(_helper_ty, const_ptr(reinterpret_cast<const void*>(fn)),
                                   {get(f, 1), get(f, 2), get(f, 3), get(f, 4), get(f, 5)});
        call->setDoesNotThrow();
        set(f, 0, call);
        return {};
    }
    case op::call_local: {
        const int64_t target = int64_t{pc} + 1 + in.imm;
        const int index = target >= 0 && target < static_cast<int64_t>(_prog.insns.size())
                              ? function_at(static_cast<uint32_t>(target))
                              : -1;
        if (index < 0) return insn_fail(pc, EINVAL, "local call to {}, where no function begins", target);
        auto* call = _b.CreateCall(_bpf_fn_ty, _functions[static_cast<size_t>(index)],
                                   {get(f, 1), get(f, 2), get(f, 3), get(f, 4), get(f, 5), f.fn->getArg(5)});
        call->setDoesNotThrow();
        set(f, 0, call);  // r1-r5 keep their values, as in the interpreter; the verifier forbids reading them
        return {};
    }
    case op::call_kfunc: return insn_fail(pc, EOPNOTSUPP, "kfunc calls are not supported");
    default: return insn_fail(pc, EINVAL, "bad call source {}", in.src);
    }
}

// bpf_tail_call(ctx = r1, map = r2, index = r3): when taken, the callee's r0 is returned from the
// current function. Compilers only emit tail calls in the main function, where that means from the
// whole program; in a subprogram it returns from the subprogram only (documented in jit.h).
void ir_builder::emit_tail_call(frame& f) {
    llvm::Value* rs = f.fn->getArg(5);
    auto* next = _b.CreateCall(_resolve_ty, const_ptr(reinterpret_cast<const void*>(&resolve_tail_call)),
                               {const_ptr(_prog.link), get(f, 2), get(f, 3), rs});
    next->setDoesNotThrow();
    llvm::BasicBlock* taken = new_block();
    llvm::BasicBlock* fallthrough = new_block();
    _b.CreateCondBr(_b.CreateIsNull(next), fallthrough, taken);

    _b.SetInsertPoint(taken);
    auto* r0 = _b.CreateCall(_native_ty, next, {get(f, 1), const64(0), rs});
    r0->setDoesNotThrow();
    _b.CreateRet(r0);

    _b.SetInsertPoint(fallthrough);
    set(f, 0, const64(tail_call_fallthrough_r0));
}

// callx: the register holds a helper id, looked up at run time in the linkage's table. Id 12 is
// bpf_tail_call when the linkage has a tail call target, as for `call 12`.
void ir_builder::emit_callx(frame& f, uint8_t reg) {
    llvm::Value* id = get(f, reg);
    llvm::BasicBlock* lookup = new_block();
    llvm::BasicBlock* call = new_block();
    llvm::BasicBlock* fault = new_block();
    llvm::BasicBlock* done = new_block();
    if (_prog.link->tail_call_target != nullptr) {
        llvm::BasicBlock* tail_call = new_block();
        llvm::BasicBlock* helper = new_block();
        _b.CreateCondBr(_b.CreateICmpEQ(id, const64(vm::tail_call_helper_id)), tail_call, helper);
        _b.SetInsertPoint(tail_call);
        emit_tail_call(f);
        _b.CreateBr(done);
        _b.SetInsertPoint(helper);
    }
    _b.CreateCondBr(_b.CreateICmpULT(id, const64(vm::max_helper_id)), lookup, fault);

    _b.SetInsertPoint(lookup);
    llvm::Value* slot = _b.CreateInBoundsGEP(_ptr, const_ptr(_prog.link->helpers.data()), id);
    llvm::Value* fn = _b.CreateLoad(_ptr, slot);
    _b.CreateCondBr(_b.CreateIsNull(fn), fault, call);

    _b.SetInsertPoint(call);
    auto* r0 = _b.CreateCall(_helper_ty, fn, {get(f, 1), get(f, 2), get(f, 3), get(f, 4), get(f, 5)});
    r0->setDoesNotThrow();
    set(f, 0, r0);
    _b.CreateBr(done);

    _b.SetInsertPoint(fault);
    llvm::Value* faulted =
        _b.CreateConstInBoundsGEP1_64(_i8, f.fn->getArg(5), offsetof(vm::run_state, faulted));
    _b.CreateStore(llvm::ConstantInt::get(_i8, 1), faulted);
    set(f, 0, const64(0));
    _b.CreateBr(done);

    _b.SetInsertPoint(done);
}

llvm::CodeGenOptLevel codegen_level(opt_level level) {
    switch (level) {
    case opt_level::o0: return llvm::CodeGenOptLevel::None;
    case opt_level::o1: return llvm::CodeGenOptLevel::Less;
    case opt_level::o2: return llvm::CodeGenOptLevel::Default;
    case opt_level::o3: return llvm::CodeGenOptLevel::Aggressive;
    }
    return llvm::CodeGenOptLevel::Default;
}

// Runs the new pass manager's default pipeline for `level` over the module.
void optimize(llvm::Module& mod, llvm::TargetMachine& tm, opt_level level) {
    // Declared in this order so that they are destroyed in the right one (they refer to each other).
    llvm::LoopAnalysisManager lam;
    llvm::FunctionAnalysisManager fam;
    llvm::CGSCCAnalysisManager cgam;
    llvm::ModuleAnalysisManager mam;
    llvm::PassBuilder pb(&tm);
    pb.registerModuleAnalyses(mam);
    pb.registerCGSCCAnalyses(cgam);
    pb.registerFunctionAnalyses(fam);
    pb.registerLoopAnalyses(lam);
    pb.crossRegisterProxies(lam, fam, cgam, mam);
    llvm::ModulePassManager mpm;
    switch (level) {
    case opt_level::o0: mpm = pb.buildO0DefaultPipeline(llvm::OptimizationLevel::O0); break;
    case opt_level::o1: mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O1); break;
    case opt_level::o2: mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O2); break;
    case opt_level::o3: mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3); break;
    }
    mpm.run(mod, mam);
}

// LLVM's native target registration is process-wide and not thread-safe: once per process.
[[nodiscard]] bool init_native_target() {
    static std::once_flag once;
    static bool ok = false;
    std::call_once(once, [] {
        ok = !llvm::InitializeNativeTarget() && !llvm::InitializeNativeTargetAsmPrinter();
    });
    return ok;
}

}  // namespace

result<compiled_program> compile(const vm::program& prog, const options& opts) {
    const std::string where = fmt::format("prog '{}'", prog.name);
    auto jit_fail = [&](std::string message) {
        return unexpected_error(error{EINVAL, fmt::format("{}: jit: {}", where, message)});
    };
    if (!init_native_target()) return jit_fail("LLVM has no native target for this host");

    // The host's CPU and its features (detectHost() fills both), so the code uses what it runs on.
    auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
    if (!jtmb) return jit_fail(llvm::toString(jtmb.takeError()));
    jtmb->setCodeGenOptLevel(codegen_level(opts.opt));
    auto tm = jtmb->createTargetMachine();
    if (!tm) return jit_fail(llvm::toString(tm.takeError()));

    auto ctx = std::make_unique<llvm::LLVMContext>();
    auto mod = std::make_unique<llvm::Module>(prog.name, *ctx);
    mod->setDataLayout((*tm)->createDataLayout());
    mod->setTargetTriple((*tm)->getTargetTriple().str());

    ir_builder builder(prog, *ctx, *mod);
    if (auto built = builder.build(); !built) return tl::unexpected(with_context(std::move(built.error()), where));

    std::string broken;
    llvm::raw_string_ostream broken_os(broken);
    if (llvm::verifyModule(*mod, &broken_os)) return jit_fail(fmt::format("internal error: bad IR: {}", broken));

    optimize(*mod, **tm, opts.opt);

    // One LLJIT per program: its memory manager (JITLink's in-process one) writes code into
    // read-write pages and flips them to read-execute before lookup returns; never W+X. No
    // platform (no static initializers to run), which also keeps creation cheap. Process symbols
    // stay linked so that libcalls LLVM may introduce (memset, memcpy) resolve.
    auto jit = llvm::orc::LLJITBuilder()
                   .setJITTargetMachineBuilder(std::move(*jtmb))
                   .setPlatformSetUp(llvm::orc::setUpInactivePlatform)
                   .create();
    if (!jit) return jit_fail(llvm::toString(jit.takeError()));
    auto impl = std::make_unique<compiled_program::impl>();
    if (auto* linker = llvm::dyn_cast<llvm::orc::ObjectLinkingLayer>(&(*jit)->getObjLinkingLayer()))
        linker->addPlugin(std::make_unique<code_recorder>(impl->code));

    if (auto err = (*jit)->addIRModule(llvm::orc::ThreadSafeModule(std::move(mod), std::move(ctx))))
        return jit_fail(llvm::toString(std::move(err)));
    auto addr = (*jit)->lookup(entry_symbol);
    if (!addr) return jit_fail(llvm::toString(addr.takeError()));

    compiled_program out;
    out._impl = std::move(impl);
    out._impl->jit = std::move(*jit);
    out._entry = addr->toPtr<vm::native_fn>();
    return out;
}

}  // namespace xdprt::jit
