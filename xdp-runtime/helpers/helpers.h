// xdprt helpers: the kernel's BPF helper functions, by id, for each program type (DESIGN.md 3).
//
// link_xdp() fills a linkage with every helper an XDP program may call here; any other id is left
// empty, so loading a program that calls it fails with "unsupported helper N (name)". Helpers take
// and return raw u64 registers like the kernel's BPF_CALL_x functions and return its values and
// -errnos; arguments are trusted as the verifier (or the kernel's, with `verify: kernel`) proved
// them. Map arguments are maps::map pointers (what ld_imm64 of a map resolves to); the context is
// a prog::xdp_buff.
//
// Per-run state the kernel keeps per CPU (the redirect target) is per thread here: the worker that
// ran the program reads it after an XDP_REDIRECT.
//
// Thread affinity: helpers run on the program's thread; set_trace_sink from the control thread
// before programs run.
#pragma once

#include <cstdint>
#include <string_view>

#include "maps/map.h"
#include "vm/vm.h"

namespace xdprt::helpers {

// Where the last XDP_REDIRECT of this thread points (bpf_redirect / bpf_redirect_map).
struct redirect_target {
    const maps::map* map = nullptr;  // null: bpf_redirect to `ifindex`
    uint32_t index = 0;              // the map key
    uint32_t ifindex = 0;
    uint64_t flags = 0;              // BPF_F_BROADCAST, BPF_F_EXCLUDE_INGRESS
};
inline thread_local redirect_target last_redirect;

// Fills `link` with the XDP helper set and tail calls through PROG_ARRAY maps, whose elements
// must be vm::program pointers.
void link_xdp(vm::linkage& link);

// bpf_trace_printk output: one formatted line per call, rate-limited by the caller of the sink.
using trace_sink = void (*)(std::string_view line);
void set_trace_sink(trace_sink sink);

// The kernel's sizeof(struct xdp_frame): adjust_head/meta keep this much of the headroom free.
inline constexpr uint32_t xdp_frame_bytes = 40;
// The kernel's XDP_PACKET_HEADROOM and the tailroom it keeps for skb_shared_info.
inline constexpr uint32_t xdp_headroom = 256;
inline constexpr uint32_t xdp_tailroom = 320;

}  // namespace xdprt::helpers
