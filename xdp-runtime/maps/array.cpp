// ARRAY and PERCPU_ARRAY: values at index * stride from offset 0 (per-CPU: a block of
// possible_cpus() slots per index). Updates copy in place, as the kernel's array does: a reader may
// see a value mid-update unless the value has a bpf_spin_lock and both sides use it.
#include "maps/types.h"

namespace xdprt::maps {

namespace {

constexpr uint32_t array_flags = BPF_F_NUMA_NODE | BPF_F_MMAPABLE | access_mask | BPF_F_PRESERVE_ELEMS | BPF_F_INNER_MAP;

uint32_t index_of(const void* key) {
    uint32_t i;
    std::memcpy(&i, key, 4);
    return i;
}

size_t entry_bytes(const map& m) { return m.value_stride() * (is_percpu(m.type()) ? possible_cpus() : 1); }
std::byte* entry(const map& m, uint32_t i) { return m.base() + size_t(i) * entry_bytes(m); }

}  // namespace

// The kernel's array_map_alloc_check, shared with the fd arrays.
result<void> check_array(const spec& s) {
    bool percpu = s.type == BPF_MAP_TYPE_PERCPU_ARRAY;
    if (s.max_entries == 0 || s.key_size != 4 || s.value_size == 0 || (s.flags & ~array_flags) ||
        !access_ok(s.flags) || (percpu && (s.flags & BPF_F_NUMA_NODE)))
        return fail(EINVAL, "array: key_size must be 4, value_size and max_entries non-zero, flags known");
    if (s.type != BPF_MAP_TYPE_ARRAY && (s.flags & (BPF_F_MMAPABLE | BPF_F_INNER_MAP)))
        return fail(EINVAL, "{}: MMAPABLE and INNER_MAP are for ARRAY only", type_name(s.type));
    if (s.type != BPF_MAP_TYPE_PERF_EVENT_ARRAY && (s.flags & BPF_F_PRESERVE_ELEMS))
        return fail(EINVAL, "{}: PRESERVE_ELEMS is for PERF_EVENT_ARRAY only", type_name(s.type));
    if (s.value_size > uint32_t(INT32_MAX)) return fail(E2BIG, "array: value_size {} too large", s.value_size);
    if (percpu && round8(s.value_size) > pcpu_min_unit_size)
        return fail(E2BIG, "percpu_array: value_size {} above {}", s.value_size, pcpu_min_unit_size);
    return {};
}

namespace {

size_t array_bytes(const spec& s) {
    size_t per = round8(s.value_size) * (s.type == BPF_MAP_TYPE_PERCPU_ARRAY ? possible_cpus() : 1);
    return per * s.max_entries;
}

result<void> array_init(map&) { return {}; }

void* array_lookup(map& m, const void* key) noexcept {
    uint32_t i = index_of(key);
    if (i >= m.spec().max_entries) return nullptr;
    std::byte* e = entry(m, i);
    if (is_percpu(m.type())) e += size_t(this_cpu) * m.value_stride();
    return e;
}

long array_update(map& m, const void* key, const void* value, uint64_t flags) noexcept {
    if (!update_flags_ok(flags)) return -EINVAL;
    uint32_t i = index_of(key);
    if (i >= m.spec().max_entries) return -E2BIG;
    if ((flags & ~uint64_t(BPF_F_LOCK)) == BPF_NOEXIST) return -EEXIST;
    if ((flags & BPF_F_LOCK) && m.spec().spin_lock_off < 0) return -EINVAL;
    std::byte* e = entry(m, i);
    if (is_percpu(m.type())) e += size_t(this_cpu) * m.value_stride();
    copy_value_in(m, e, value, flags);
    return 0;
}

long array_erase(map&, const void*) noexcept { return -EINVAL; }

result<void> array_copy_out(map& m, const void* key, void* value, uint64_t flags) {
    uint32_t i = index_of(key);
    if (i >= m.spec().max_entries) return fail(ENOENT, "index {} beyond max_entries {}", i, m.spec().max_entries);
    if (is_percpu(m.type())) copy_percpu_out(static_cast<std::byte*>(value), entry(m, i), m.value_stride(), m.spec().value_size);
    else copy_value_out(m, value, entry(m, i), flags);
    return {};
}

result<void> array_store(map& m, const void* key, const void* value, uint64_t flags) {
    // array_map_update_elem / bpf_percpu_array_update: per-CPU values take no BPF_F_LOCK.
    if (is_percpu(m.type()) ? flags > BPF_EXIST : !update_flags_ok(flags)) return fail(EINVAL, "update flags {:#x}", flags);
    uint32_t i = index_of(key);
    if (i >= m.spec().max_entries) return fail(E2BIG, "index {} beyond max_entries {}", i, m.spec().max_entries);
    if ((flags & ~uint64_t(BPF_F_LOCK)) == BPF_NOEXIST) return fail(EEXIST, "array elements always exist");
    if (is_percpu(m.type())) copy_percpu_in(entry(m, i), static_cast<const std::byte*>(value), m.value_stride(), m.spec().value_size);
    else copy_value_in(m, entry(m, i), value, flags);
    return {};
}

result<void> array_remove(map&, const void*) { return fail(EINVAL, "array elements cannot be deleted"); }

}  // namespace

// The kernel's array_map_get_next_key, shared with the fd arrays.
result<void> array_next_key(map& m, const void* key, void* next) {
    uint32_t i = key ? index_of(key) : m.spec().max_entries;
    uint32_t n;
    if (i >= m.spec().max_entries) n = 0;
    else if (i == m.spec().max_entries - 1) return fail(ENOENT, "last index");
    else n = i + 1;
    std::memcpy(next, &n, 4);
    return {};
}

void copy_value_in(const map& m, std::byte* slot, const void* value, uint64_t flags) {
    int32_t lock = m.spec().spin_lock_off;
    const auto* v = static_cast<const std::byte*>(value);
    size_t n = m.spec().value_size;
    if (lock < 0) {
        std::memcpy(slot, v, n);
        return;
    }
    auto& word = *reinterpret_cast<std::atomic<uint32_t>*>(slot + lock);
    if (flags & BPF_F_LOCK)
        for (uint32_t z = 0; !word.compare_exchange_weak(z, 1, std::memory_order_acquire); z = 0) __builtin_ia32_pause();
    std::memcpy(slot, v, size_t(lock));
    std::memcpy(slot + lock + 4, v + lock + 4, n - size_t(lock) - 4);
    if (flags & BPF_F_LOCK) word.store(0, std::memory_order_release);
}

void init_value(const map& m, std::byte* slot, const void* value) {
    std::memcpy(slot, value, m.spec().value_size);
    if (m.spec().spin_lock_off >= 0) std::memset(slot + m.spec().spin_lock_off, 0, 4);
}

void copy_value_out(const map& m, void* value, const std::byte* slot, uint64_t flags) {
    int32_t lock = m.spec().spin_lock_off;
    auto* v = static_cast<std::byte*>(value);
    size_t n = m.spec().value_size;
    if (lock < 0) {
        std::memcpy(v, slot, n);
        return;
    }
    auto& word = *reinterpret_cast<std::atomic<uint32_t>*>(const_cast<std::byte*>(slot) + lock);
    if (flags & BPF_F_LOCK)
        for (uint32_t z = 0; !word.compare_exchange_weak(z, 1, std::memory_order_acquire); z = 0) __builtin_ia32_pause();
    // Around the lock word, never through it: other threads CAS it while this copy runs, and
    // the kernel never shows it.
    std::memcpy(v, slot, size_t(lock));
    std::memset(v + lock, 0, 4);
    std::memcpy(v + lock + 4, slot + lock + 4, n - size_t(lock) - 4);
    if (flags & BPF_F_LOCK) word.store(0, std::memory_order_release);
}

bool array_next_element(map& m, uint64_t& cursor, void* scratch, void** key, void** value) noexcept {
    if (cursor >= m.spec().max_entries) return false;
    uint32_t i = uint32_t(cursor++);
    std::memcpy(scratch, &i, 4);
    *key = scratch;
    *value = array_lookup(m, scratch);
    return true;
}

const ops array_ops = {
    .name = "array",
    .check = check_array,
    .data_bytes = array_bytes,
    .init = array_init,
    .lookup = array_lookup,
    .update = array_update,
    .erase = array_erase,
    .push = nullptr, .pop = nullptr, .peek = nullptr,
    .copy_out = array_copy_out,
    .store = array_store,
    .remove = array_remove,
    .next_key = array_next_key,
    .lookup_and_delete = nullptr,
    .store_object = nullptr,
};

const ops percpu_array_ops = [] {
    ops o = array_ops;
    o.name = "percpu_array";
    return o;
}();

}  // namespace xdprt::maps
