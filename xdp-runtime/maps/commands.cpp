// The bpf() map commands (map.h): the generic part of kernel/bpf/syscall.c's map_lookup_elem,
// map_update_elem, map_delete_elem, map_get_next_key, map_lookup_and_delete_elem and map_freeze,
// in the kernel's order of checks, in front of each type's syscall-side op. And view, the
// window other processes open on a map's memfd.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maps/types.h"

namespace xdprt::maps {

namespace {

constexpr size_t page_bytes = 4096;

// What a map's fd allows: BPF_F_RDONLY / BPF_F_WRONLY at creation, and MAP_FREEZE, which takes
// away syscall writes (programs still write, as in the kernel). The server may later hold
// per-fd permissions (MAP_GET_FD_BY_ID with open_flags); the creating fd's are the map's.
bool can_read(const map& m) { return !(m.spec().flags & BPF_F_WRONLY); }
bool can_write(const map& m) {
    return !(m.spec().flags & BPF_F_RDONLY) && !m.header().frozen.load(std::memory_order_acquire);
}
bool has_lock(const map& m) { return m.spec().spin_lock_off >= 0; }
bool keyless(const map& m) { return m.spec().key_size == 0; }

// __bpf_copy_key: a keyless type takes no key; a keyed one needs a readable one.
result<void> check_key(const map& m, const void* key) {
    if (keyless(m) && key) return fail(EINVAL, "{} has no keys: pass a null key", type_name(m.type()));
    if (!keyless(m) && !key) return fail(EFAULT, "null key");
    return {};
}

result<void> not_permitted(const map& m, const char* what) {
    return fail(EPERM, "{}: map is {}", what,
                m.header().frozen.load(std::memory_order_relaxed) ? "frozen" : "not open for that");
}

}  // namespace

result<void> lookup_elem(map& m, const void* key, void* value, uint64_t flags) {
    if (flags & ~uint64_t(BPF_F_LOCK)) return fail(EINVAL, "lookup flags {:#x}", flags);
    if (!can_read(m)) return not_permitted(m, "lookup");
    if ((flags & BPF_F_LOCK) && !has_lock(m)) return fail(EINVAL, "BPF_F_LOCK: the value has no bpf_spin_lock");
    if (auto ok = check_key(m, key); !ok) return ok;
    return m.ops().copy_out(m, key, value, flags);
}

result<void> update_elem(map& m, const void* key, const void* value, uint64_t flags) {
    if (!can_write(m)) return not_permitted(m, "update");
    if ((flags & BPF_F_LOCK) && !has_lock(m)) return fail(EINVAL, "BPF_F_LOCK: the value has no bpf_spin_lock");
    if (auto ok = check_key(m, key); !ok) return ok;
    return m.ops().store(m, key, value, flags);
}

result<void> update_object(map& m, const void* key, held_object obj, uint64_t flags) {
    if (!can_write(m)) return not_permitted(m, "update");
    if (flags & BPF_F_LOCK) return fail(EINVAL, "BPF_F_LOCK: the value has no bpf_spin_lock");
    if (auto ok = check_key(m, key); !ok) return ok;
    if (!m.ops().store_object) return fail(EINVAL, "{} does not hold objects", type_name(m.type()));
    return m.ops().store_object(m, key, std::move(obj), flags);
}

result<void> delete_elem(map& m, const void* key) {
    if (!can_write(m)) return not_permitted(m, "delete");
    if (auto ok = check_key(m, key); !ok) return ok;
    return m.ops().remove(m, key);
}

result<void> get_next_key(map& m, const void* key, void* next) {
    if (!can_read(m)) return not_permitted(m, "get_next_key");
    if (key && keyless(m)) return fail(EINVAL, "{} has no keys: pass a null key", type_name(m.type()));
    return m.ops().next_key(m, key, next);
}

result<void> lookup_and_delete_elem(map& m, const void* key, void* value, uint64_t flags) {
    if (flags & ~uint64_t(BPF_F_LOCK)) return fail(EINVAL, "lookup_and_delete flags {:#x}", flags);
    if (!can_read(m) || !can_write(m)) return not_permitted(m, "lookup_and_delete");
    if (flags && (m.type() == BPF_MAP_TYPE_QUEUE || m.type() == BPF_MAP_TYPE_STACK))
        return fail(EINVAL, "{}: pop takes no flags", type_name(m.type()));
    if ((flags & BPF_F_LOCK) && !has_lock(m)) return fail(EINVAL, "BPF_F_LOCK: the value has no bpf_spin_lock");
    if (auto ok = check_key(m, key); !ok) return ok;
    if (!m.ops().lookup_and_delete) return fail(enotsupp, "{}: no lookup_and_delete", type_name(m.type()));
    return m.ops().lookup_and_delete(m, key, value, flags);
}

result<void> freeze(map& m) {
    // Checked on 6.18: a value with special fields cannot be frozen (ENOTSUPP), a map created
    // BPF_F_RDONLY answers EINVAL, a second freeze EPERM (the map is no longer writable).
    if (has_lock(m)) return fail(enotsupp, "a map whose value holds a bpf_spin_lock cannot be frozen");
    if (m.spec().flags & BPF_F_RDONLY) return fail(EINVAL, "map is read-only");
    uint32_t was = 0;
    if (!m.header().frozen.compare_exchange_strong(was, 1, std::memory_order_acq_rel))
        return fail(EPERM, "map is already frozen");
    return {};
}

result<view> view::open(int memfd) { return open_window(memfd, false); }
result<view> view::open_writable(int memfd) { return open_window(memfd, true); }

result<void> view::writes_as(uint32_t owner, bool arrays, const char* what) const {
    const uint32_t t = _map->type();
    if (_map->read_only() || !(is_value_hash(t) || (arrays && (t == BPF_MAP_TYPE_ARRAY || t == BPF_MAP_TYPE_PERCPU_ARRAY))))
        return fail(EOPNOTSUPP, "{}: no {} through a window", type_name(t), what);
    if (!(owner & client_writer)) return fail(EINVAL, "a window writes as a client (client_writer | pid), not as {:#x}", owner);
    _map->_writer_owner = owner;
    return {};
}

// A lock the window waited too long for: the appliance can tell whether its holder died.
result<void> view::for_the_appliance(result<void> r) {
    if (!r && r.error().code == EBUSY) return fail(EAGAIN, "{}; the appliance serves it", r.error().message);
    return r;
}

result<void> view::update(const void* key, const void* value, uint64_t flags, uint32_t owner) const {
    if (auto ok = writes_as(owner, true, "updates"); !ok) return ok;
    if (flags & BPF_F_LOCK) return fail(EOPNOTSUPP, "BPF_F_LOCK updates are the appliance's to serve");
    auto r = update_elem(*_map, key, value, flags);
    if (!r && r.error().code == ENOMEM && is_value_hash(_map->type()))
        return fail(EAGAIN, "every spare element waits for the appliance to reclaim it");
    return for_the_appliance(std::move(r));
}

result<void> view::erase(const void* key, uint32_t owner) const {
    if (auto ok = writes_as(owner, false, "deletes"); !ok) return ok;
    return for_the_appliance(delete_elem(*_map, key));
}

result<void> view::next_key(const void* key, void* next, uint32_t owner) const {
    if (auto ok = writes_as(owner, false, "get_next_key"); !ok) return ok;
    return for_the_appliance(get_next_key(*_map, key, next));
}

result<view> view::open_window(int memfd, bool writable) {
    struct stat st;
    if (fstat(memfd, &st) != 0) return fail(errno, "fstat: {}", strerror(errno));
    if (st.st_size < off_t(page_bytes) || st.st_size % page_bytes != 0)
        return fail(EINVAL, "{} bytes: not an xdprt map", st.st_size);
    size_t bytes = size_t(st.st_size);
    std::unique_ptr<map> m(new map());
    m->_read_only = !writable;
    m->_foreign = true;
    m->_memfd = fcntl(memfd, F_DUPFD_CLOEXEC, 0);
    if (m->_memfd < 0) return fail(errno, "dup: {}", strerror(errno));
    void* p = mmap(nullptr, bytes, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED | MAP_NORESERVE, m->_memfd, 0);
    if (p == MAP_FAILED) return fail(ENOMEM, "mmap of {} bytes: {}", bytes, strerror(errno));
    m->_base = static_cast<std::byte*>(p);
    m->_bytes = bytes;
    const auto* h = reinterpret_cast<map_header*>(m->_base + bytes - page_bytes);
    if (!h->valid(bytes)) return fail(EINVAL, "no xdprt map header of layout {}", map_header::layout);
    m->_header = const_cast<map_header*>(h);
    m->_spec = h->shape();
    m->bind_ops(ops_for(h->type));
    if (!m->_ops) return fail(EINVAL, "map type {} unknown", h->type);
    view v;
    v._map = std::move(m);
    return v;
}

result<void> view::copy_out(const void* key, void* value) const {
    switch (_map->type()) {
    case BPF_MAP_TYPE_ARRAY: case BPF_MAP_TYPE_PERCPU_ARRAY: case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_PERCPU_HASH: case BPF_MAP_TYPE_LRU_HASH: case BPF_MAP_TYPE_LRU_PERCPU_HASH:
        return _map->ops().copy_out(*_map, key, value, 0);
    default:
        return fail(EOPNOTSUPP, "{}: no lock-free copies from another process", type_name(_map->type()));
    }
}

}  // namespace xdprt::maps
