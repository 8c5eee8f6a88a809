// Arrays whose values are objects: PROG_ARRAY, ARRAY_OF_MAPS, PERF_EVENT_ARRAY, DEVMAP, CPUMAP,
// XSKMAP. Shared memory holds what userspace may see per index (an id, a bpf_devmap_val, a
// bpf_cpumap_val); this process holds the objects themselves: the pointer programs get and the
// reference that keeps the object alive. A replaced object is released only after every reader's
// quiescent point, so a program that looked it up (or tail-called into it) finishes with it intact.
#include <net/if.h>
#include <sys/mman.h>

#include <fstream>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "maps/qsbr.h"
#include "maps/types.h"

namespace xdprt::maps {

result<void> check_array(const spec& s);
result<void> array_next_key(map& m, const void* key, void* next);

namespace {

constexpr uint32_t cpumap_max_qsize = 16384;  // cpu_map_update_elem's sanity limit

// The kernel's NR_CPUS (CPUMAP's max_entries bound): a build option, published as kernel_max + 1.
uint32_t nr_cpus() {
    static const uint32_t n = [] {
        std::ifstream f("/sys/devices/system/cpu/kernel_max");
        uint32_t highest = 0;
        return f >> highest ? highest + 1 : 8192u;
    }();
    return n;
}
constexpr uint32_t dev_flags = BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY;

// The pointers programs read, one per index, in an anonymous shared mapping: zero pages cost
// nothing until an index is set, so a large max_entries (the kernel takes 2^32 - 1) reserves
// address space, not memory (shared, so it does not count against RLIMIT_DATA either).
class pointer_slots {
public:
    explicit pointer_slots(uint32_t n) : _bytes(std::max<size_t>(size_t(n) * sizeof(std::atomic<void*>), 1)) {
        void* p = mmap(nullptr, _bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        _slots = p == MAP_FAILED ? nullptr : static_cast<std::atomic<void*>*>(p);
    }
    ~pointer_slots() {
        if (_slots) munmap(_slots, _bytes);
    }
    pointer_slots(const pointer_slots&) = delete;
    pointer_slots& operator=(const pointer_slots&) = delete;
    bool ok() const { return _slots != nullptr; }
    std::atomic<void*>& operator[](uint32_t i) const { return _slots[i]; }

private:
    size_t _bytes;
    std::atomic<void*>* _slots = nullptr;
};

struct fd_slots {
    explicit fd_slots(uint32_t n) : ptrs(n) {}
    pointer_slots ptrs;                                  // read by programs
    std::unordered_map<uint32_t, held_object> held;      // writers only (under the map's writer lock)
};

fd_slots& slots(const map& m) { return m.local<fd_slots>(); }

uint32_t index_of(const void* key) {
    uint32_t i;
    std::memcpy(&i, key, 4);
    return i;
}

// Shared value per index: 4 bytes (an id), or 8 for DEVMAP/CPUMAP (first word, prog id).
size_t shared_stride(const spec& s) {
    return (s.type == BPF_MAP_TYPE_DEVMAP || s.type == BPF_MAP_TYPE_CPUMAP) ? 8 : 4;
}
uint32_t* shared_entry(const map& m, uint32_t i) {
    return reinterpret_cast<uint32_t*>(m.base() + size_t(i) * shared_stride(m.spec()));
}

result<void> check_fd_array(const spec& s) {
    if (s.value_size != 4 || (s.flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)))
        return fail(EINVAL, "{}: value_size must be 4 (an fd)", type_name(s.type));
    if (auto ok = check_array(s); !ok) return ok;
    if (s.type == BPF_MAP_TYPE_ARRAY_OF_MAPS && !s.inner) return fail(EBADF, "array_of_maps: no inner map fd");
    return {};
}

result<void> check_devmap(const spec& s) {
    if (s.max_entries == 0 || s.key_size != 4 || (s.value_size != 4 && s.value_size != 8) || (s.flags & ~dev_flags))
        return fail(EINVAL, "devmap: key_size 4, value_size 4 or 8, max_entries non-zero");
    return {};
}

result<void> check_cpumap(const spec& s) {
    if (s.key_size != 4 || (s.value_size != 4 && s.value_size != 8) || s.max_entries == 0 || (s.flags & ~BPF_F_NUMA_NODE))
        return fail(EINVAL, "cpumap: key_size 4, value_size 4 or 8, max_entries non-zero");
    if (s.max_entries > nr_cpus()) return fail(E2BIG, "cpumap: max_entries {} above NR_CPUS {}", s.max_entries, nr_cpus());
    return {};
}

result<void> check_xskmap(const spec& s) {
    if (s.max_entries == 0 || s.key_size != 4 || s.value_size != 4 || (s.flags & ~dev_flags))
        return fail(EINVAL, "xskmap: key_size 4, value_size 4, max_entries non-zero");
    return {};
}

size_t fd_array_bytes(const spec& s) { return shared_stride(s) * s.max_entries; }

result<void> fd_array_init(map& m) {
    auto st = std::make_shared<fd_slots>(m.spec().max_entries);
    if (!st->ptrs.ok()) return fail(ENOMEM, "{}: {} entries: mmap: {}", type_name(m.type()), m.spec().max_entries, strerror(errno));
    m.set_local(std::move(st));
    return {};
}

// Puts `obj` (or nothing) at index i; the previous object is released after a grace period.
void replace(map& m, uint32_t i, held_object obj) {
    fd_slots& st = slots(m);
    uint32_t* shared = shared_entry(m, i);
    if (shared_stride(m.spec()) == 8) {
        shared[0] = obj.ptr || obj.extra ? obj.extra : 0;
        shared[1] = obj.id;
    } else {
        shared[0] = obj.id;
    }
    st.ptrs[i].store(obj.ptr, std::memory_order_release);
    held_object old;
    if (auto it = st.held.find(i); it != st.held.end()) {
        old = std::move(it->second);
        st.held.erase(it);
    }
    if (obj.ptr || obj.ref || obj.id || obj.extra) st.held.emplace(i, std::move(obj));
    if (old.ref) qsbr::process().defer([ref = std::move(old.ref)] {});
}

bool present(const map& m, uint32_t i) {
    if (m.type() == BPF_MAP_TYPE_DEVMAP || m.type() == BPF_MAP_TYPE_CPUMAP) return shared_entry(m, i)[0] != 0;
    return slots(m).ptrs[i].load(std::memory_order_acquire) != nullptr;
}

void* fd_array_lookup(map& m, const void* key) noexcept {
    uint32_t i = index_of(key);
    if (i >= m.spec().max_entries) return nullptr;
    switch (m.type()) {
    case BPF_MAP_TYPE_DEVMAP:
    case BPF_MAP_TYPE_CPUMAP:  // programs read the bpf_devmap_val / bpf_cpumap_val
        return present(m, i) ? shared_entry(m, i) : nullptr;
    case BPF_MAP_TYPE_ARRAY_OF_MAPS:
    case BPF_MAP_TYPE_XSKMAP:
        return slots(m).ptrs[i].load(std::memory_order_acquire);
    default:
        return nullptr;
    }
}

long no_update(map&, const void*, const void*, uint64_t) noexcept { return -EOPNOTSUPP; }
long no_erase(map&, const void*) noexcept { return -EOPNOTSUPP; }

result<void> fd_array_copy_out(map& m, const void* key, void* value, uint64_t) {
    uint32_t i = index_of(key);
    switch (m.type()) {
    case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
        return fail(enotsupp, "perf_event_array elements cannot be read from userspace");
    case BPF_MAP_TYPE_XSKMAP:
        return fail(EOPNOTSUPP, "xskmap elements cannot be read from userspace");
    default:
        break;
    }
    if (i >= m.spec().max_entries || !present(m, i)) return fail(ENOENT, "index {}: no element", i);
    std::memcpy(value, shared_entry(m, i), m.spec().value_size);
    return {};
}

result<void> fd_array_store(map&, const void*, const void*, uint64_t) {
    return fail(EINVAL, "fd maps take objects: the server resolves the fd first");
}

result<void> fd_array_store_object(map& m, const void* key, held_object obj, uint64_t flags) {
    uint32_t i = index_of(key);
    bool dev = m.type() == BPF_MAP_TYPE_DEVMAP || m.type() == BPF_MAP_TYPE_CPUMAP;
    bool xsk = m.type() == BPF_MAP_TYPE_XSKMAP;
    if (dev || xsk ? flags > BPF_EXIST : flags != BPF_ANY) return fail(EINVAL, "update flags {:#x}", flags);
    if (i >= m.spec().max_entries) return fail(E2BIG, "index {} beyond max_entries {}", i, m.spec().max_entries);
    if (dev && flags == BPF_NOEXIST) return fail(EEXIST, "{} elements always exist", type_name(m.type()));
    if (m.type() == BPF_MAP_TYPE_CPUMAP) {
        if (obj.extra > cpumap_max_qsize) return fail(EOVERFLOW, "cpumap: qsize {} above {}", obj.extra, cpumap_max_qsize);
        if (i >= possible_cpus()) return fail(ENODEV, "cpumap: cpu {} is not possible", i);
    }
    writer_guard g(m.header());
    if (xsk) {  // xsk_map_update_elem: the same socket (its id) again is no change; then the flags
        auto now = slots(m).held.find(i);
        if (now != slots(m).held.end() && now->second.id == obj.id) return {};
        if (now != slots(m).held.end() && flags == BPF_NOEXIST) return fail(EEXIST, "index {}: an element exists", i);
        if (now == slots(m).held.end() && flags == BPF_EXIST) return fail(ENOENT, "index {}: no element", i);
    }
    replace(m, i, std::move(obj));
    return {};
}

result<void> fd_array_remove(map& m, const void* key) {
    uint32_t i = index_of(key);
    // DEVMAP, CPUMAP and XSKMAP clear a slot whether or not it was set, and answer EINVAL beyond
    // the end; the fd arrays answer E2BIG and ENOENT.
    bool clears = m.type() == BPF_MAP_TYPE_DEVMAP || m.type() == BPF_MAP_TYPE_CPUMAP || m.type() == BPF_MAP_TYPE_XSKMAP;
    if (i >= m.spec().max_entries)
        return fail(clears ? EINVAL : E2BIG, "index {} beyond max_entries {}", i, m.spec().max_entries);
    writer_guard g(m.header());
    if (!clears && !present(m, i)) return fail(ENOENT, "index {}: no element", i);
    replace(m, i, {});
    return {};
}

constexpr ops fd_array_base = {
    .name = "prog_array",
    .check = check_fd_array,
    .data_bytes = fd_array_bytes,
    .init = fd_array_init,
    .lookup = fd_array_lookup,
    .update = no_update,
    .erase = no_erase,
    .push = nullptr, .pop = nullptr, .peek = nullptr,
    .copy_out = fd_array_copy_out,
    .store = fd_array_store,
    .remove = fd_array_remove,
    .next_key = array_next_key,
    .lookup_and_delete = nullptr,
    .store_object = fd_array_store_object,
};

constexpr ops with(ops o, const char* name, result<void> (*check)(const spec&)) {
    o.name = name;
    o.check = check;
    return o;
}

}  // namespace

// The object at `index` of an fd array (a tail call target, an inner map), or null.
void* object_at(const map& m, uint32_t index) noexcept {
    if (index >= m.spec().max_entries) return nullptr;
    return slots(m).ptrs[index].load(std::memory_order_acquire);
}

void fd_array_clear(map& m) {
    std::vector<uint32_t> present;
    for (const auto& [i, obj] : slots(m).held) present.push_back(i);
    for (uint32_t i : present) (void)fd_array_remove(m, &i);
}

const ops prog_array_ops = fd_array_base;
const ops array_of_maps_ops = with(fd_array_base, "array_of_maps", check_fd_array);
const ops perf_event_array_ops = with(fd_array_base, "perf_event_array", check_fd_array);
const ops devmap_ops = with(fd_array_base, "devmap", check_devmap);
const ops cpumap_ops = with(fd_array_base, "cpumap", check_cpumap);
const ops xskmap_ops = with(fd_array_base, "xskmap", check_xskmap);

}  // namespace xdprt::maps
