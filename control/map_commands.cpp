// MAP_CREATE, element commands, batches and MAP_FREEZE, with the kernel's order of checks.
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "control/objects.h"

namespace xdprt::control {

namespace {

bool is_map_in_map(uint32_t t) { return t == BPF_MAP_TYPE_ARRAY_OF_MAPS || t == BPF_MAP_TYPE_HASH_OF_MAPS; }

}  // namespace

long server::impl::map_create(union bpf_attr& a, const client_memory&) {
    auto name = object_name(a.map_name);
    if (!name) return refuse(name.error());
    if (a.map_ifindex) return refuse(EINVAL, "map '{}': offload to ifindex {} is not supported", *name, a.map_ifindex);
    if (a.btf_vmlinux_value_type_id) return refuse(EINVAL, "map '{}': btf_vmlinux_value_type_id is for struct_ops", *name);
    maps::spec s;
    s.type = a.map_type;
    s.key_size = a.key_size;
    s.value_size = a.value_size;
    s.max_entries = a.max_entries;
    s.flags = a.map_flags;
    s.extra = a.map_extra;
    s.numa_node = (a.map_flags & BPF_F_NUMA_NODE) ? a.numa_node : 0;
    s.name = *name;
    object_ref btf_obj, inner;
    if (a.btf_key_type_id || a.btf_value_type_id) {
        auto b = from_fd(int(a.btf_fd), obj_kind::btf);
        if (!b) return refuse(with_context(b.error(), fmt::format("map '{}': btf_fd", *name)));
        btf_obj = *b;
        if (!a.btf_value_type_id || a.btf_value_type_id > btf_obj->btf->type_count() || a.btf_key_type_id > btf_obj->btf->type_count())
            return refuse(EINVAL, "map '{}': btf type ids {}/{} out of range", *name, a.btf_key_type_id, a.btf_value_type_id);
        s.spin_lock_off = btf_obj->btf->spin_lock_offset(a.btf_value_type_id);
    }
    if (is_map_in_map(s.type)) {
        auto in = from_fd(int(a.inner_map_fd), obj_kind::map);
        if (!in) return refuse(with_context(in.error(), fmt::format("map '{}': inner_map_fd", *name)));
        uint32_t it = (*in)->map->type();
        if (is_map_in_map(it) || it == BPF_MAP_TYPE_PROG_ARRAY || it == BPF_MAP_TYPE_RINGBUF || maps::holds_fds(it))
            return refuse(EINVAL, "map '{}': a {} cannot be an inner map", *name, maps::type_name(it));
        inner = *in;
        s.inner = inner->map.get();
    }
    auto m = maps::create(s, store_fd);
    if (!m) return refuse(with_context(m.error(), fmt::format("map '{}'", *name)));
    int handle = (*m)->memfd();
    auto o = add(obj_kind::map, *name, handle);
    if (!o) return refuse(o.error());
    (*o)->map = std::move(*m);
    (*o)->map->id = (*o)->id;
    (*o)->btf_key_type_id = a.btf_key_type_id;
    (*o)->btf_value_type_id = a.btf_value_type_id;
    (*o)->map_btf = btf_obj;
    (*o)->inner_template = inner;
    return new_fd(*o);
}

// The kernel's bpf_map_meta_equal: an inner map must match the template's shape.
static result<void> matches_template(const maps::map& inner, const maps::map& tmpl) {
    const maps::spec& a = inner.spec();
    const maps::spec& b = tmpl.spec();
    bool sized = !(b.flags & BPF_F_INNER_MAP);
    if (a.type != b.type || a.key_size != b.key_size || a.value_size != b.value_size ||
        (a.flags & ~uint32_t(BPF_F_INNER_MAP)) != (b.flags & ~uint32_t(BPF_F_INNER_MAP)) || (sized && a.max_entries != b.max_entries))
        return fail(EINVAL, "inner map '{}' does not match the outer map's template", a.name);
    return {};
}

// The object a fd-valued map's element refers to, from the value userspace passed.
static result<maps::held_object> resolve_value(server::impl& s, const maps::map& m, const uint8_t* value) {
    uint32_t fd;
    std::memcpy(&fd, value, 4);
    maps::held_object h;
    switch (m.type()) {
    case BPF_MAP_TYPE_PROG_ARRAY: {
        auto p = s.from_fd(int(fd), obj_kind::prog);
        if (!p) return tl::unexpected(p.error());
        if (!(*p)->prog->runnable) return fail(EINVAL, "prog '{}' is not an XDP program", (*p)->name);
        h.ptr = &(*p)->prog->program;
        h.id = (*p)->id;
        h.ref = *p;
        return h;
    }
    case BPF_MAP_TYPE_ARRAY_OF_MAPS: case BPF_MAP_TYPE_HASH_OF_MAPS: {
        auto in = s.from_fd(int(fd), obj_kind::map);
        if (!in) return tl::unexpected(in.error());
        if (!m.spec().inner) return fail(EINVAL, "map '{}' was reopened after a restart: its inner-map template is gone", m.spec().name);
        if (auto ok = matches_template(*(*in)->map, *m.spec().inner); !ok) return tl::unexpected(ok.error());
        h.ptr = (*in)->map.get();
        h.id = (*in)->id;
        h.ref = *in;
        return h;
    }
    case BPF_MAP_TYPE_DEVMAP: case BPF_MAP_TYPE_DEVMAP_HASH: case BPF_MAP_TYPE_CPUMAP: {
        bool cpumap = m.type() == BPF_MAP_TYPE_CPUMAP;
        uint32_t first = fd;  // ifindex, or qsize for a cpumap
        int32_t prog_fd = 0;
        if (m.spec().value_size == 8) std::memcpy(&prog_fd, value + 4, 4);
        if (cpumap && first > 16384) return fail(EOVERFLOW, "cpumap: qsize {} above 16384", first);
        if (!cpumap && first == 0) {
            if (prog_fd > 0) return fail(EINVAL, "devmap: a program needs an ifindex");
            return h;
        }
        if (!cpumap && !if_indextoname(first, std::array<char, IF_NAMESIZE>{}.data()))
            return fail(EINVAL, "devmap: no interface with ifindex {}", first);
        h.extra = first;
        if (prog_fd > 0) {
            auto p = s.from_fd(prog_fd, obj_kind::prog);
            if (!p) return fail(EINVAL, "{}: prog fd {}: {}", maps::type_name(m.type()), prog_fd, p.error().message);
            uint32_t want = cpumap ? BPF_XDP_CPUMAP : BPF_XDP_DEVMAP;
            if (!(*p)->prog->runnable || (*p)->prog->expected_attach_type != want)
                return fail(EINVAL, "prog '{}' was not loaded for a {}", (*p)->name, maps::type_name(m.type()));
            h.ptr = &(*p)->prog->program;
            h.id = (*p)->id;
            h.ref = *p;
        }
        return h;
    }
    case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
        return fail(EBADF, "fd {} is not a perf event (xdprt has no perf events yet)", fd);
    case BPF_MAP_TYPE_XSKMAP:
        return fail(EOPNOTSUPP, "xskmap: AF_XDP sockets are bound through the dataplane, which is not running");
    default:
        return fail(EINVAL, "{} holds no objects", maps::type_name(m.type()));
    }
}

long server::impl::map_elem(int cmd, union bpf_attr& a, const client_memory& mem) {
    // map_lookup_elem and map_lookup_and_delete_elem check flags before the fd.
    if ((cmd == BPF_MAP_LOOKUP_ELEM || cmd == BPF_MAP_LOOKUP_AND_DELETE_ELEM) && (a.flags & ~uint64_t(BPF_F_LOCK)))
        return refuse(EINVAL, "flags {:#x}", uint64_t(a.flags));
    auto o = from_fd(int(a.map_fd), obj_kind::map);
    if (!o) return refuse(o.error());
    maps::map& m = *(*o)->map;
    const maps::spec& s = m.spec();
    auto ctx = [&](error e) { return refuse(with_context(std::move(e), fmt::format("map '{}'", s.name))); };
    if (maps::holds_fds(s.type)) dirty = true;  // an entry's object may have lost its last reference

    // __bpf_copy_key: keyless types must get a null key (maps:: refuses a non-null one before
    // reading it), GET_NEXT_KEY takes a null key as "the first".
    std::vector<uint8_t> key;
    const void* kp = nullptr;
    size_t vsize = m.user_value_size();
    std::vector<uint8_t> value(vsize);
    bool value_read = false;  // UPDATE_ELEM reads key and value in one call
    static const uint8_t keyless_marker = 0;
    if (s.key_size == 0) {
        if (a.key) kp = &keyless_marker;
    } else if (cmd == BPF_MAP_UPDATE_ELEM) {
        key.resize(s.key_size);
        if (auto ok = mem.read_two(a.key, key.data(), key.size(), a.value, value.data(), vsize); !ok) return ctx(ok.error());
        kp = key.data();
        value_read = true;
    } else if (a.key || cmd != BPF_MAP_GET_NEXT_KEY) {
        auto k = mem.read_vec(a.key, s.key_size);
        if (!k) return ctx(k.error());
        key = std::move(*k);
        kp = key.data();
    }

    switch (cmd) {
    case BPF_MAP_LOOKUP_ELEM: {
        bool tests_value = s.type == BPF_MAP_TYPE_BLOOM_FILTER;  // the value is the question
        if (tests_value)
            if (auto ok = mem.read(a.value, value.data(), vsize); !ok) return ctx(ok.error());
        if (auto ok = maps::lookup_elem(m, kp, value.data(), a.flags); !ok) return ctx(ok.error());
        if (!tests_value)
            if (auto ok = mem.write(a.value, value.data(), vsize); !ok) return ctx(ok.error());
        return 0;
    }
    case BPF_MAP_UPDATE_ELEM: {
        if (!value_read)
            if (auto ok = mem.read(a.value, value.data(), vsize); !ok) return ctx(ok.error());
        if (maps::holds_fds(s.type)) {
            auto h = resolve_value(*this, m, value.data());
            if (!h) return ctx(h.error());
            if (auto ok = maps::update_object(m, kp, std::move(*h), a.flags); !ok) return ctx(ok.error());
            return 0;
        }
        if (auto ok = maps::update_elem(m, kp, value.data(), a.flags); !ok) return ctx(ok.error());
        return 0;
    }
    case BPF_MAP_DELETE_ELEM:
        if (auto ok = maps::delete_elem(m, kp); !ok) return ctx(ok.error());
        return 0;
    case BPF_MAP_GET_NEXT_KEY: {
        std::vector<uint8_t> next(s.key_size);
        if (auto ok = maps::get_next_key(m, kp, next.data()); !ok) return ctx(ok.error());
        if (auto ok = mem.write(a.next_key, next.data(), next.size()); !ok) return ctx(ok.error());
        return 0;
    }
    case BPF_MAP_LOOKUP_AND_DELETE_ELEM: {
        if (auto ok = maps::lookup_and_delete_elem(m, kp, value.data(), a.flags); !ok) return ctx(ok.error());
        if (auto ok = mem.write(a.value, value.data(), vsize); !ok) return ctx(ok.error());
        return 0;
    }
    default:
        return refuse(EINVAL, "not an element command");
    }
}

long server::impl::map_freeze(union bpf_attr& a) {
    auto o = from_fd(int(a.map_fd), obj_kind::map);
    if (!o) return refuse(o.error());
    if (auto ok = maps::freeze(*(*o)->map); !ok)
        return refuse(with_context(ok.error(), fmt::format("map '{}'", (*o)->name)));
    return 0;
}

// Batches: the element operations over arrays of keys and values, as generic_map_*_batch do.
// The cursor (in_batch / out_batch) is a key: the last one returned.
long server::impl::map_batch(int cmd, union bpf_attr& a, uint64_t attr_addr, const client_memory& mem) {
    auto o = from_fd(int(a.batch.map_fd), obj_kind::map);
    if (!o) return refuse(o.error());
    maps::map& m = *(*o)->map;
    const maps::spec& s = m.spec();
    auto ctx = [&](error e) { return refuse(with_context(std::move(e), fmt::format("map '{}'", s.name))); };
    if (maps::holds_fds(s.type)) dirty = true;
    if (a.batch.elem_flags & ~uint64_t(BPF_F_LOCK)) return ctx(error{EINVAL, "elem_flags"});
    if (a.batch.flags) return ctx(error{EINVAL, "flags"});
    if ((a.batch.elem_flags & BPF_F_LOCK) && s.spin_lock_off < 0) return ctx(error{EINVAL, "BPF_F_LOCK without a bpf_spin_lock"});
    size_t ks = s.key_size, vs = m.user_value_size();
    uint32_t max = a.batch.count;
    uint32_t done = 0;
    auto report = [&](long r) {
        (void)mem.write(attr_addr + offsetof(union bpf_attr, batch.count), &done, 4);
        return r;
    };
    if (cmd == BPF_MAP_UPDATE_BATCH || cmd == BPF_MAP_DELETE_BATCH) {
        auto keys = mem.read_vec(a.batch.keys, ks * max);
        if (!keys) return report(ctx(keys.error()));
        std::vector<uint8_t> values;
        if (cmd == BPF_MAP_UPDATE_BATCH) {
            auto v = mem.read_vec(a.batch.values, vs * max);
            if (!v) return report(ctx(v.error()));
            values = std::move(*v);
        }
        for (; done < max; ++done) {
            const uint8_t* k = keys->data() + ks * done;
            result<void> ok;
            if (cmd == BPF_MAP_DELETE_BATCH) {
                ok = maps::delete_elem(m, k);
            } else if (maps::holds_fds(s.type)) {
                auto h = resolve_value(*this, m, values.data() + vs * done);
                ok = h ? maps::update_object(m, k, std::move(*h), a.batch.elem_flags) : tl::unexpected(h.error());
            } else {
                ok = maps::update_elem(m, k, values.data() + vs * done, a.batch.elem_flags);
            }
            if (!ok) return report(ctx(ok.error()));
        }
        return report(0);
    }
    // Lookups walk keys from the cursor.
    if (!m.ops().next_key || !m.ops().copy_out) return ctx(error{EINVAL, "batch lookup is not supported"});
    bool del = cmd == BPF_MAP_LOOKUP_AND_DELETE_BATCH;
    if (s.flags & BPF_F_WRONLY) return ctx(error{EPERM, "write-only"});
    bool writable = !(s.flags & BPF_F_RDONLY) && !m.header().frozen.load(std::memory_order_acquire);
    if (del && !writable) return ctx(error{EPERM, "read-only or frozen"});
    if (max == 0) return ctx(error{EINVAL, "count 0"});
    std::vector<uint8_t> cursor(ks);
    bool from_start = a.batch.in_batch == 0;
    if (!from_start) {
        if (auto ok = mem.read(a.batch.in_batch, cursor.data(), ks); !ok) return ctx(ok.error());
    }
    std::vector<uint8_t> keys, values, next(ks), value(vs);
    std::vector<std::vector<uint8_t>> to_delete;
    long status = 0;
    while (done < max) {
        auto ok = m.ops().next_key(m, from_start ? nullptr : cursor.data(), next.data());
        if (!ok) {
            status = -ENOENT;
            break;
        }
        from_start = false;
        cursor = next;
        if (!m.ops().copy_out(m, next.data(), value.data(), a.batch.elem_flags)) continue;  // deleted meanwhile
        keys.insert(keys.end(), next.begin(), next.end());
        values.insert(values.end(), value.begin(), value.end());
        if (del) to_delete.push_back(next);
        ++done;
    }
    for (auto& k : to_delete) (void)m.ops().remove(m, k.data());
    if (auto ok = mem.write(a.batch.keys, keys.data(), keys.size()); !ok) return report(ctx(ok.error()));
    if (auto ok = mem.write(a.batch.values, values.data(), values.size()); !ok) return report(ctx(ok.error()));
    if (done) (void)mem.write(a.batch.out_batch, cursor.data(), ks);
    if (status < 0) {
        report(0);
        return refuse(ENOENT, "map '{}': end of map after {} elements", s.name, done);
    }
    return report(0);
}

}  // namespace xdprt::control
