// Map helpers, tail calls, spin locks, and the element iterator of the for_each trampoline.
#include <cerrno>
#include <cstring>

#include "helpers/internal.h"
#include "prog/prog.h"

namespace xdprt::helpers {

namespace {

maps::map& as_map(uint64_t r) { return *reinterpret_cast<maps::map*>(r); }
void* ptr(uint64_t r) { return reinterpret_cast<void*>(r); }

}  // namespace

uint64_t map_lookup_elem(uint64_t map, uint64_t key, uint64_t, uint64_t, uint64_t) {
    maps::map& m = as_map(map);
    auto fn = m.lookup();
    return fn ? reinterpret_cast<uint64_t>(fn(m, ptr(key))) : 0;
}

uint64_t map_update_elem(uint64_t map, uint64_t key, uint64_t value, uint64_t flags, uint64_t) {
    maps::map& m = as_map(map);
    auto fn = m.ops().update;
    return uint64_t(fn ? fn(m, ptr(key), ptr(value), flags) : -EOPNOTSUPP);
}

uint64_t map_delete_elem(uint64_t map, uint64_t key, uint64_t, uint64_t, uint64_t) {
    maps::map& m = as_map(map);
    auto fn = m.ops().erase;
    return uint64_t(fn ? fn(m, ptr(key)) : -EOPNOTSUPP);
}

uint64_t map_push_elem(uint64_t map, uint64_t value, uint64_t flags, uint64_t, uint64_t) {
    maps::map& m = as_map(map);
    auto fn = m.ops().push;
    return uint64_t(fn ? fn(m, ptr(value), flags) : -EOPNOTSUPP);
}

uint64_t map_pop_elem(uint64_t map, uint64_t value, uint64_t, uint64_t, uint64_t) {
    maps::map& m = as_map(map);
    auto fn = m.ops().pop;
    return uint64_t(fn ? fn(m, ptr(value)) : -EOPNOTSUPP);
}

uint64_t map_peek_elem(uint64_t map, uint64_t value, uint64_t, uint64_t, uint64_t) {
    maps::map& m = as_map(map);
    auto fn = m.ops().peek;
    return uint64_t(fn ? fn(m, ptr(value)) : -EOPNOTSUPP);
}

// bpf_spin_lock: a 4-byte word inside a map value. Programs hold it only briefly (the verifier
// forbids calls and exits while it is held), so spinning is right.
uint64_t spin_lock(uint64_t lock, uint64_t, uint64_t, uint64_t, uint64_t) {
    auto& word = *reinterpret_cast<std::atomic<uint32_t>*>(lock);
    for (uint32_t z = 0; !word.compare_exchange_weak(z, 1, std::memory_order_acquire); z = 0)
        while (word.load(std::memory_order_relaxed)) __builtin_ia32_pause();
    return 0;
}

uint64_t spin_unlock(uint64_t lock, uint64_t, uint64_t, uint64_t, uint64_t) {
    reinterpret_cast<std::atomic<uint32_t>*>(lock)->store(0, std::memory_order_release);
    return 0;
}

// The for_each trampoline's iterator (prog::helper_map_iterate): the next element at or after
// *cursor; an array's key (its index) is written to `scratch`.
uint64_t map_iterate(uint64_t map, uint64_t cursor, uint64_t key_out, uint64_t value_out, uint64_t scratch) {
    void* key = nullptr;
    void* value = nullptr;
    if (!maps::next_element(as_map(map), *reinterpret_cast<uint64_t*>(cursor), ptr(scratch), &key, &value)) return 0;
    std::memcpy(ptr(key_out), &key, sizeof key);
    std::memcpy(ptr(value_out), &value, sizeof value);
    return 1;
}

// bpf_ringbuf_*: records in the RINGBUF map's shared memory (maps/ringbuf.cpp); consumers poll,
// so the wakeup flags change nothing.
uint64_t ringbuf_output(uint64_t map, uint64_t data, uint64_t size, uint64_t flags, uint64_t) {
    return uint64_t(maps::ringbuf_output(as_map(map), ptr(data), size, flags));
}

uint64_t ringbuf_reserve(uint64_t map, uint64_t size, uint64_t flags, uint64_t, uint64_t) {
    return reinterpret_cast<uint64_t>(maps::ringbuf_reserve(as_map(map), size, flags));
}

uint64_t ringbuf_submit(uint64_t sample, uint64_t flags, uint64_t, uint64_t, uint64_t) {
    maps::ringbuf_submit(ptr(sample), flags);
    return 0;
}

uint64_t ringbuf_discard(uint64_t sample, uint64_t flags, uint64_t, uint64_t, uint64_t) {
    maps::ringbuf_discard(ptr(sample), flags);
    return 0;
}

uint64_t ringbuf_query(uint64_t map, uint64_t flags, uint64_t, uint64_t, uint64_t) {
    return maps::ringbuf_query(as_map(map), flags);
}

const vm::program* tail_call_target(uint64_t map, uint64_t index) {
    maps::map& m = as_map(map);
    if (m.type() != BPF_MAP_TYPE_PROG_ARRAY || index > UINT32_MAX) return nullptr;
    return static_cast<const vm::program*>(maps::object_at(m, uint32_t(index)));
}

}  // namespace xdprt::helpers
