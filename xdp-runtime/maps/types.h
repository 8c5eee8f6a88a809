// Private to maps/: each type's ops table and the helpers the types share.
#pragma once

#include <cerrno>
#include <cstring>

#include "maps/map.h"

namespace xdprt::maps {

inline constexpr int enotsupp = 524;  // the kernel's ENOTSUPP, which bpf() returns as is
inline constexpr uint32_t kmalloc_max_size = 1u << 22;
inline constexpr uint32_t pcpu_min_unit_size = 32768;
inline constexpr uint32_t access_mask = BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;

// bpf_map_flags_access_ok: a program cannot be both read-only and write-only.
inline bool access_ok(uint32_t flags) {
    return (flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)) != (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG);
}

inline size_t round8(size_t n) { return (n + 7) & ~size_t(7); }

// Per-CPU values: userspace slots are rounded to 8 bytes, one per possible CPU.
inline void copy_percpu_out(std::byte* user, const std::byte* slots, size_t stride, uint32_t value_size) {
    uint32_t n = possible_cpus();
    for (uint32_t c = 0; c < n; ++c) {
        std::memcpy(user + c * round8(value_size), slots + c * stride, value_size);
        std::memset(user + c * round8(value_size) + value_size, 0, round8(value_size) - value_size);
    }
}
inline void copy_percpu_in(std::byte* slots, const std::byte* user, size_t stride, uint32_t value_size) {
    uint32_t n = possible_cpus();
    for (uint32_t c = 0; c < n; ++c) std::memcpy(slots + c * stride, user + c * round8(value_size), value_size);
}

// Update flags of element writes: ANY, NOEXIST, EXIST, plus BPF_F_LOCK where the value has a lock.
inline bool update_flags_ok(uint64_t flags) { return (flags & ~uint64_t(BPF_F_LOCK)) <= BPF_EXIST; }

// Copies a value into or out of a slot without exposing its bpf_spin_lock word; BPF_F_LOCK takes it.
void copy_value_in(const map& m, std::byte* slot, const void* value, uint64_t flags);
void copy_value_out(const map& m, void* value, const std::byte* slot, uint64_t flags);
// Fills a slot no one else sees yet: the value with its bpf_spin_lock word cleared, as the
// kernel initializes special fields (a lock word copied from the caller could start locked).
void init_value(const map& m, std::byte* slot, const void* value);

bool array_next_element(map& m, uint64_t& cursor, void* scratch, void** key, void** value) noexcept;
bool hash_next_element(map& m, uint64_t& cursor, void** key, void** value) noexcept;

extern const ops array_ops, percpu_array_ops;
extern const ops prog_array_ops, array_of_maps_ops, perf_event_array_ops, devmap_ops, cpumap_ops, xskmap_ops;
extern const ops hash_ops, percpu_hash_ops, lru_hash_ops, lru_percpu_hash_ops, hash_of_maps_ops, devmap_hash_ops;
void fd_array_clear(map& m);  // every index that holds an object, emptied
extern const ops queue_ops, stack_ops, bloom_filter_ops, lpm_trie_ops, ringbuf_ops;

}  // namespace xdprt::maps
