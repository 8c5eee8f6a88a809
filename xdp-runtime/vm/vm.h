// xdprt engines' common ground: a loaded program, what it is linked against, and the interpreter.
//
// The interpreter is the reference semantics (RFC 9669): every other engine is tested against it.
// It checks every memory access against the regions the embedder registered and reports a fault
// with the pc instead of touching memory it was not given. The JIT (jit/jit.h) runs the same
// program objects against the same linkage.
//
// Thread affinity: a program and its linkage are immutable once loaded and may be run from any
// number of threads at once; each run has its own run_state and stack.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "isa/isa.h"

namespace xdprt::vm {

// A helper takes r1..r5 and returns r0, like the kernel's BPF_CALL_5 functions.
using helper_fn = uint64_t (*)(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);

inline constexpr int32_t tail_call_helper_id = 12;  // bpf_tail_call
inline constexpr size_t max_helper_id = 256;

struct program;
struct run_state;

// Native code of a program: r1 and r2 at entry, r0 returned.
using native_fn = uint64_t (*)(uint64_t r1, uint64_t r2, run_state* rs);

// A memory range a program may access, [start, start + size).
struct region {
    uint64_t start = 0;
    uint64_t size = 0;
    bool writable = true;
};

// What a program is linked against; filled by the loader before the program is compiled, then only
// read. The engines know no maps or helpers beyond this table (DESIGN.md section 3).
struct linkage {
    std::array<helper_fn, max_helper_id> helpers{};  // by helper id; null: not provided
    // bpf_tail_call(ctx, map, index) continues with this program, or falls through when it is null.
    const program* (*tail_call_target)(uint64_t map, uint64_t index) = nullptr;
    // The value of an ld_imm64 with a pseudo source (a map's address, a map value's address).
    std::function<result<uint64_t>(uint8_t src, int32_t imm, int32_t next_imm)> resolve_pseudo;
    // Memory every run may touch besides its stack and per-run regions (map arenas, global data).
    std::vector<region> static_regions;
    // Map lookups compiled without the helper (JIT only; the interpreter calls the helper, with
    // the same results). When helper 1 (map_lookup_elem) is called with an r1 set by an ld_imm64
    // earlier in the same basic block, the JIT asks about that value:
    //   - inline_array: an array whose element i (the u32 key) is at base + i * stride
    //     (+ run_state::cpu * per_cpu_stride for a per-CPU array) for i < max_entries, null
    //     beyond: the lookup becomes a bounds check and an address;
    //   - direct_lookup: the address of a function with the calling convention of
    //     uint64_t fn(uint64_t map, uint64_t key) (a map type's lookup, which takes a map& and a
    //     key pointer), called in place of the helper, which would reach it through the map's ops.
    // Either may be empty, or answer nothing (0) for a value: the helper is called.
    struct inline_array_map {
        uint64_t base = 0;
        uint32_t max_entries = 0;
        uint64_t stride = 0;
        uint64_t per_cpu_stride = 0;  // 0: not per-CPU
    };
    std::function<std::optional<inline_array_map>(uint64_t map)> inline_array;
    std::function<const void*(uint64_t map)> direct_lookup;
    // Memory a program reaches at run time without naming it (inner maps of a map-in-map):
    // consulted by the interpreter after the regions. Null: none.
    bool (*dynamic_memory)(uint64_t addr, uint64_t size, bool write) = nullptr;

    // The check options that accept exactly the helpers this linkage provides (the default of load()).
    isa::check_options helper_check() const;
};

// Per run (one packet, one event): counters the kernel keeps per invocation.
struct run_state {
    uint32_t tail_calls = 0;
    bool faulted = false;  // the JIT met a callx with no helper behind it
    // The runtime CPU id the run's helpers see (maps::this_cpu): the slot of per-CPU maps the JIT
    // reaches inline (linkage::inline_array's per_cpu_stride). Whoever runs a program sets it.
    uint32_t cpu = 0;
};

// A program ready to run: checked bytecode, pseudo ld_imm64 values resolved.
struct program {
    std::string name;
    std::vector<isa::insn> insns;  // ld_imm64 pseudo sources already resolved to plain constants
    isa::program_layout layout;
    const linkage* link = nullptr;
    native_fn native = nullptr;    // set once a JIT or AOT image exists (used by tail calls)
};

struct load_options {
    isa::check_options check;
};

// Checks the bytecode (isa::check) and resolves ld_imm64 pseudo sources through the linkage.
// Errors read "prog 'NAME': insn PC: reason".
[[nodiscard]] result<program> load(std::string name, std::span<const isa::insn> insns, const linkage& link,
                                   const load_options& opts = {});

// The interpreter. `regions` are the per-run memory ranges (packet, context) besides the stack and
// the linkage's static regions. A fault (out-of-bounds access, unknown callx target, call depth)
// is an error naming the pc.
[[nodiscard]] result<uint64_t> interpret(const program& prog, uint64_t r1, uint64_t r2,
                                         std::span<const region> regions = {});

}  // namespace xdprt::vm
