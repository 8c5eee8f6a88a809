// xdprt LLVM JIT: bytecode -> LLVM IR -> native code through ORC LLJIT (LLVM 19).
//
// The JIT compiles a loaded vm::program against its linkage table: helper calls become direct calls
// to the addresses in linkage::helpers, ld_imm64 values are constants. It knows no maps or helpers
// itself (DESIGN.md section 3, STYLE.md rule 14). Every bpf function becomes one LLVM function with
// its own 512-byte stack frame, registers become SSA values, so r6-r9 survive calls by construction.
//
// Code memory is mapped read-write while it is written and flipped to read-execute before it runs
// (LLJIT's memory manager); it is never writable and executable at once.
//
// Semantics are the interpreter's (RFC 9669), except where checks belong to the verifier: the JIT
// does not check memory accesses or the call depth (the verifier bounds both before a program
// reaches here), and a callx whose register names no helper returns 0 from the call and sets
// run_state::faulted instead of stopping the program.
//
// Calls:
//   - `call N` calls linkage::helpers[N] directly; a helper the linkage does not provide is a
//     compile error naming the instruction and the helper.
//   - bpf_tail_call (`call 12`, or callx with 12 in the register, when linkage::tail_call_target
//     is set): if tail_call_target(r2, r3) gives a program with native code and fewer than
//     isa::max_tail_calls were made in this run, run_state::tail_calls is incremented and the
//     current function returns native(r1, 0, rs). Compilers emit tail calls only in the main
//     function, where that is the program's result; in a subprogram it returns from that
//     subprogram only. Otherwise the call falls through with r0 = (uint64_t)-ENOENT, as in the
//     interpreter. A target without native code is not taken: every program of a prog array must
//     be compiled by the same engine.
//   - local calls: r1-r5 are arguments, r0 the result; r1-r5 keep their values in the caller.
//   - entry(r1, r2, rs): rs must not be null (tail calls and callx faults record there).
//
// Thread affinity: compile() may run on any thread; the compiled code may run on many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "base/result.h"
#include "vm/vm.h"

namespace xdprt::jit {

enum class opt_level : uint8_t { o0, o1, o2, o3 };

struct options {
    opt_level opt = opt_level::o2;
};

// Owns the native code of one program; freeing it frees the code. Move-only.
class compiled_program {
public:
    compiled_program();
    compiled_program(compiled_program&&) noexcept;
    compiled_program& operator=(compiled_program&&) noexcept;
    ~compiled_program();

    vm::native_fn entry() const noexcept { return _entry; }
    // The native code as linked (its executable sections), what bpf_prog_info's
    // jited_prog_len/jited_prog_insns report; empty for a default-constructed program.
    std::span<const uint8_t> code() const noexcept;

    // Runs the program once with a fresh run_state.
    uint64_t run(uint64_t r1, uint64_t r2) const noexcept {
        vm::run_state rs;
        return _entry(r1, r2, &rs);
    }

    struct impl;

private:
    friend result<compiled_program> compile(const vm::program&, const options&);
    std::unique_ptr<impl> _impl;
    vm::native_fn _entry = nullptr;
};

// Compiles `prog`; the linkage it points to must outlive the result. Errors name the program and,
// where one is at fault, the instruction.
[[nodiscard]] result<compiled_program> compile(const vm::program& prog, const options& opts = {});

}  // namespace xdprt::jit
