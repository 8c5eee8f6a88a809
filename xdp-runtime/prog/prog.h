// xdprt program types: what the kernel's verifier does to a program of a type before it runs,
// minus the safety proof (verifier/ is its own module): the context rewrite and helper inlining.
//
// XDP (DESIGN.md invariant 1): programs read the 32-bit UAPI `struct xdp_md`; at run time r1 points
// to our native xdp_buff. Every load through the context is rewritten into a load of the native
// field, one instruction for one, as the kernel's convert_ctx_access does, so jump offsets hold.
// Which register holds the context is found by a dataflow pass over every function (moves, spills
// to and fills from the stack, arguments of local calls and callbacks). A context access the kernel
// refuses (a write, a size other than 4, an offset beyond xdp_md, egress_ifindex outside a devmap
// program, a modified context pointer, a register that is the context on one path only) is
// refused here with the instruction and the kernel's wording.
//
// Callbacks: bpf_loop and bpf_for_each_map_elem take a BPF function. Their calls are replaced by a
// local call to a trampoline appended to the program, which loops and calls the callback as a
// bpf-to-bpf call (as the kernel inlines bpf_loop), so every engine runs callbacks with no support
// of its own. The callback must be a known function at the call (an ld_imm64 of BPF_PSEUDO_FUNC
// reaching r2 on every path), as the kernel's verifier requires.
//
// Thread affinity: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "isa/isa.h"

namespace xdprt::prog {

// What r1 of an XDP program points to at run time. Filled by the dataplane per packet and by
// PROG_TEST_RUN; helpers adjust data, data_end and data_meta in place.
struct xdp_buff {
    uint8_t* data;
    uint8_t* data_end;
    uint8_t* data_meta;        // == data when there is no metadata
    uint8_t* data_hard_start;  // start of the headroom
    uint8_t* data_hard_end;    // the highest data_end may grow to (tailroom kept free)
    uint32_t ingress_ifindex;
    uint32_t rx_queue_index;
    uint32_t egress_ifindex;   // devmap programs only
    uint32_t flags;
};

// Helper ids xdprt adds for its trampolines, beyond the kernel's.
inline constexpr int32_t helper_map_iterate = 250;  // (map, cursor*, key**, value**, key_scratch*) -> 1 | 0

struct xdp_options {
    bool devmap = false;  // expected_attach_type BPF_XDP_DEVMAP: egress_ifindex is readable
};

// Rewrites `insns` (already structurally checked by isa::check) for the XDP program type: context
// accesses, bpf_loop / bpf_for_each_map_elem calls (trampolines appended), BPF_PSEUDO_FUNC loads
// (to the callback's pc). Errors read "insn N: reason".
[[nodiscard]] result<std::vector<isa::insn>> fixup_xdp(std::span<const isa::insn> insns, const xdp_options& opts = {});

}  // namespace xdprt::prog
