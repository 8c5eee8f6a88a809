// Running XDP programs of ours over packets on every engine, for the demo and the benchmarks.
//
// Interim context layout (until the load-time xdp_md rewrite of DESIGN.md 2.1 lands with the bpf()
// server): programs read the 32-bit UAPI fields of struct xdp_md, so packets live in memory mapped
// below 2 GiB (MAP_32BIT) where a 32-bit `data` is the packet's real address. The rewrite removes
// this constraint; nothing outside tools/ and bench/ depends on it.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "vm/vm.h"
#ifdef XDPRT_HAVE_JIT
#include "jit/jit.h"
#endif

namespace xdprt::tools {

// Memory below 2 GiB for packets and their xdp_md. Move-only owner of the mapping.
class low_memory {
public:
    [[nodiscard]] static result<low_memory> map(size_t bytes);
    low_memory(low_memory&& o) noexcept : _p(o._p), _n(o._n) { o._p = nullptr; }
    low_memory& operator=(low_memory&&) = delete;
    ~low_memory();
    uint8_t* data() const { return _p; }
    size_t size() const { return _n; }

private:
    low_memory(uint8_t* p, size_t n) : _p(p), _n(n) {}
    uint8_t* _p;
    size_t _n;
};

inline constexpr size_t headroom = 256;  // XDP_PACKET_HEADROOM
inline constexpr size_t slot_size = 2048;

// One packet slot: [xdp_md][headroom][frame]. The frame is copied in from `bytes` by reset().
struct packet_slot {
    xdp_md* md;
    uint8_t* frame;
    void reset(std::span<const uint8_t> bytes) const;
};

// `count` slots in low memory.
class packet_set {
public:
    [[nodiscard]] static result<packet_set> create(std::vector<std::vector<uint8_t>> frames);
    size_t size() const { return _frames.size(); }
    const packet_slot& slot(size_t k) const { return _slots[k]; }
    void reset(size_t k) const { _slots[k].reset(_frames[k]); }
    const std::vector<uint8_t>& original(size_t k) const { return _frames[k]; }
    // All slots, for the interpreter's access checks.
    vm::region region() const { return {reinterpret_cast<uint64_t>(_mem.data()), _mem.size(), true}; }

private:
    packet_set(low_memory mem) : _mem(std::move(mem)) {}
    low_memory _mem;
    std::vector<std::vector<uint8_t>> _frames;
    std::vector<packet_slot> _slots;
};

// A program of ours loaded on every engine the build has.
struct loaded_program {
    vm::linkage link;
    vm::program prog;
#ifdef XDPRT_HAVE_JIT
    jit::compiled_program image;
#endif
};

// Reads `path`, picks the program named `name` (or the only one), loads it for every engine.
[[nodiscard]] result<std::unique_ptr<loaded_program>> load_program(const std::filesystem::path& path,
                                                                   std::string_view name = {});

// The built-in demo traffic: valid UDP and TCP over IPv4, IPv4 with options, IPv6, ARP, and the bad
// cases a dataplane meets (runts, truncated headers, a bad IHL).
std::vector<std::vector<uint8_t>> demo_frames();
std::vector<std::string> demo_frame_names();

std::string_view action_name(uint64_t action);

}  // namespace xdprt::tools
