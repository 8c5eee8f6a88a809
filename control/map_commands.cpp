// MAP_CREATE, element commands, batches and MAP_FREEZE, with the kernel's order of checks.
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <linux/btf.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "control/objects.h"

namespace xdprt::control {

namespace {

bool is_map_in_map(uint32_t t) { return t == BPF_MAP_TYPE_ARRAY_OF_MAPS || t == BPF_MAP_TYPE_HASH_OF_MAPS; }

}  // namespace

// map_check_btf: the key and value types must have the map's sizes (a keyless BTF key only
// where the type allows one), then the type's own rule. ENOTSUPP for types that take no BTF.
static result<void> check_map_btf(const maps::spec& s, const btf& b, uint32_t key_id, uint32_t value_id) {
    uint32_t t = s.type;
    bool no_btf = t == BPF_MAP_TYPE_DEVMAP || t == BPF_MAP_TYPE_DEVMAP_HASH || t == BPF_MAP_TYPE_CPUMAP ||
                  t == BPF_MAP_TYPE_XSKMAP || t == BPF_MAP_TYPE_PERF_EVENT_ARRAY;
    bool array_like = t == BPF_MAP_TYPE_ARRAY || t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PROG_ARRAY;
    bool own_check = no_btf || array_like || t == BPF_MAP_TYPE_BLOOM_FILTER || t == BPF_MAP_TYPE_LPM_TRIE;
    if (key_id && (key_id > b.type_count() || !b.type_size(key_id) || b.type_size(key_id) != s.key_size))
        return fail(EINVAL, "btf key type {} does not have key_size {}", key_id, s.key_size);
    if (!key_id && !own_check) return fail(EINVAL, "{} needs a btf key type", maps::type_name(t));
    if (value_id > b.type_count() || !b.type_size(value_id) || b.type_size(value_id) != s.value_size)
        return fail(EINVAL, "btf value type {} does not have value_size {}", value_id, s.value_size);
    if (no_btf) return fail(maps_enotsupp, "{} takes no btf", maps::type_name(t));
    uint32_t key_kind = key_id ? b.resolved_kind(key_id) : 0;
    if (array_like) {
        if (!key_id) {
            if (t != BPF_MAP_TYPE_ARRAY || s.max_entries != 1 || b.resolved_kind(value_id) != BTF_KIND_DATASEC)
                return fail(EINVAL, "a keyless btf array is a global data section");
        } else if (key_kind != BTF_KIND_INT || b.type_size(key_id) != 4) {
            return fail(EINVAL, "an array key is a 32-bit int");
        }
    }
    if (t == BPF_MAP_TYPE_BLOOM_FILTER && key_id) return fail(EINVAL, "bloom filters have no key type");
    if (t == BPF_MAP_TYPE_LPM_TRIE && key_kind != BTF_KIND_STRUCT) return fail(EINVAL, "an lpm_trie key is a struct");
    return {};
}

// In map_create's order: the attr, the type's checks, offload and token, the name, BTF, the
// exclusive-program hash; allocation last (the kernel allocates before the name, which only
// matters when memory runs out).
long server::impl::map_create(union bpf_attr& a, const client_memory& mem) {
    bool token = a.map_flags & f_token_fd;
    if (a.btf_vmlinux_value_type_id) {
        if (a.map_type != BPF_MAP_TYPE_STRUCT_OPS || a.btf_key_type_id || a.btf_value_type_id)
            return refuse(EINVAL, "btf_vmlinux_value_type_id is for struct_ops maps alone");
    } else if (a.btf_key_type_id && !a.btf_value_type_id) {
        return refuse(EINVAL, "btf key type without a value type");
    }
    maps::spec s;
    s.type = a.map_type;
    s.key_size = a.key_size;
    s.value_size = a.value_size;
    s.max_entries = a.max_entries;
    s.flags = a.map_flags & ~f_token_fd;
    s.extra = a.map_extra;
    s.numa_node = (a.map_flags & BPF_F_NUMA_NODE) ? a.numa_node : 0;
    object_ref btf_obj, inner;
    if (is_map_in_map(s.type)) {
        // bpf_map_meta_alloc runs in the type's alloc: after the shape checks, before the name.
        if (auto ok = maps::check(s); !ok && ok.error().code != EBADF)  // EBADF: no inner map yet
            return refuse(ok.error());
        auto in = from_fd(int(a.inner_map_fd), obj_kind::map);
        if (!in) return refuse(with_context(in.error(), "inner_map_fd"));
        uint32_t it = (*in)->map->type();
        if (is_map_in_map(it) || it == BPF_MAP_TYPE_PROG_ARRAY || it == BPF_MAP_TYPE_RINGBUF || maps::holds_fds(it))
            return refuse(EINVAL, "a {} cannot be an inner map", maps::type_name(it));
        inner = *in;
        s.inner = inner->map.get();
    }
    if (auto ok = maps::check(s); !ok) return refuse(ok.error());
    if (a.map_ifindex) {
        // bpf_map_offload_map_alloc: HASH and ARRAY only, on a device that offloads; none here does.
        if (s.type != BPF_MAP_TYPE_HASH && s.type != BPF_MAP_TYPE_ARRAY) return refuse(EINVAL, "offload of a {}", maps::type_name(s.type));
        if (!if_indextoname(a.map_ifindex, std::array<char, IF_NAMESIZE>{}.data()))
            return refuse(EINVAL, "offload: no interface with ifindex {}", a.map_ifindex);
        return refuse(EOPNOTSUPP, "offload to ifindex {}: no device offloads maps here", a.map_ifindex);
    }
    if (token)
        if (auto ok = no_token(attr_field<int32_t>(a, attr_off::map_token_fd)); !ok) return refuse(ok.error());
    auto name = object_name(a.map_name);
    if (!name) return refuse(name.error());
    s.name = *name;
    auto ctx = [&](error e) { return refuse(with_context(std::move(e), fmt::format("map '{}'", *name))); };
    if (a.btf_key_type_id || a.btf_value_type_id) {
        auto b = from_fd(int(a.btf_fd), obj_kind::btf);
        if (!b) return ctx(with_context(b.error(), "btf_fd"));
        btf_obj = *b;
        if (auto ok = check_map_btf(s, *btf_obj->btf, a.btf_key_type_id, a.btf_value_type_id); !ok) return ctx(ok.error());
        s.spin_lock_off = btf_obj->btf->spin_lock_offset(a.btf_value_type_id);
    }
    uint64_t excl_hash = attr_field<uint64_t>(a, attr_off::excl_prog_hash);
    uint32_t excl_hash_size = attr_field<uint32_t>(a, attr_off::excl_prog_hash_size);
    if (excl_hash) {
        if (excl_hash_size != 32) return ctx(error{EINVAL, fmt::format("excl_prog_hash_size {}", excl_hash_size)});
        std::array<uint8_t, 32> sha;
        if (auto ok = mem.read(excl_hash, sha.data(), sha.size()); !ok) return ctx(ok.error());
        return ctx(error{EOPNOTSUPP, "maps exclusive to one program (excl_prog_hash) are not supported"});
    } else if (excl_hash_size) {
        return ctx(error{EINVAL, "excl_prog_hash_size without excl_prog_hash"});
    }
    auto m = maps::create(s, store_fd);
    if (!m) return ctx(m.error());
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
    case BPF_MAP_TYPE_PERF_EVENT_ARRAY: {
        // perf_event_fd_array_get_ptr: EBADF for an fd that is no perf event. A perf event of the
        // kernel (any event xdprt does not serve, perf_commands.cpp) is one its programs cannot
        // write: EOPNOTSUPP, the kernel's answer for events it cannot read locally.
        auto ev = s.perf_event_from_fd(int(fd));
        if (!ev) {
            std::error_code ec;
            auto l = s.local(int(fd));
            auto target = std::filesystem::read_symlink(fmt::format("/proc/self/fd/{}", l ? l->get() : -1), ec);
            if (!ec && target == "anon_inode:[perf_event]")
                return fail(EOPNOTSUPP, "fd {} is a kernel perf event: xdprt programs write only the BPF output events "
                                        "it opens (perf_event_open with pid -1 and a cpu)", fd);
            return tl::unexpected(ev.error());
        }
        h.ptr = (*ev)->perf.get();
        h.ref = *ev;
        return h;
    }
    case BPF_MAP_TYPE_XSKMAP: {
        if (!s.xsk_binder)
            return fail(EOPNOTSUPP, "xskmap: frames reach AF_XDP sockets through the dataplane, which is not running here");
        auto l = s.local(int(fd));
        struct stat st;
        if (!l || fstat(l->get(), &st) != 0) return fail(EBADF, "fd {} is not open", int(fd));
        auto b = s.xsk_binder(l->get());
        if (!b) return tl::unexpected(b.error());
        h.ptr = const_cast<maps::xsk_binding*>(b->get());
        h.id = uint32_t(st.st_ino);  // which socket: the same one again is no change
        h.ref = std::const_pointer_cast<maps::xsk_binding>(std::move(*b));
        return h;
    }
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

    // The fd's access, then BPF_F_LOCK, before any user memory is read (map_lookup_elem & co.).
    bool readable = !(s.flags & BPF_F_WRONLY);
    bool writable = !(s.flags & BPF_F_RDONLY) && !m.header().frozen.load(std::memory_order_acquire);
    bool reads = cmd == BPF_MAP_LOOKUP_ELEM || cmd == BPF_MAP_GET_NEXT_KEY || cmd == BPF_MAP_LOOKUP_AND_DELETE_ELEM;
    bool writes = cmd == BPF_MAP_UPDATE_ELEM || cmd == BPF_MAP_DELETE_ELEM || cmd == BPF_MAP_LOOKUP_AND_DELETE_ELEM;
    if ((reads && !readable) || (writes && !writable)) return ctx(error{EPERM, "the map is not open for that, or frozen"});
    if (cmd == BPF_MAP_LOOKUP_AND_DELETE_ELEM && a.flags && (s.type == BPF_MAP_TYPE_QUEUE || s.type == BPF_MAP_TYPE_STACK))
        return ctx(error{EINVAL, "pop takes no flags"});
    bool takes_flags = cmd == BPF_MAP_LOOKUP_ELEM || cmd == BPF_MAP_UPDATE_ELEM || cmd == BPF_MAP_LOOKUP_AND_DELETE_ELEM;
    if (takes_flags && (a.flags & BPF_F_LOCK) && s.spin_lock_off < 0) return ctx(error{EINVAL, "BPF_F_LOCK without a bpf_spin_lock"});

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

// Batches: the element operations over arrays of keys and values, as bpf_map_do_batch and the
// types' batch ops (generic_map_*_batch, htab's own lookups) do. The cursor (in_batch /
// out_batch) is a key: the last one returned.
namespace {
enum class batch_kind { none, generic, htab };
batch_kind batch_support(uint32_t type, int cmd) {
    bool hash = type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_HASH ||
                type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_HASH_OF_MAPS;
    bool array = type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_ARRAY_OF_MAPS;
    bool lpm = type == BPF_MAP_TYPE_LPM_TRIE;
    switch (cmd) {
    case BPF_MAP_LOOKUP_BATCH: return hash ? batch_kind::htab : (array || lpm) ? batch_kind::generic : batch_kind::none;
    case BPF_MAP_LOOKUP_AND_DELETE_BATCH: return hash ? batch_kind::htab : batch_kind::none;
    case BPF_MAP_UPDATE_BATCH: return (hash || array || lpm) ? batch_kind::generic : batch_kind::none;
    default: return (hash || lpm) ? batch_kind::generic : batch_kind::none;
    }
}
}  // namespace

long server::impl::map_batch(int cmd, union bpf_attr& a, uint64_t attr_addr, const client_memory& mem) {
    auto o = from_fd(int(a.batch.map_fd), obj_kind::map);
    if (!o) return refuse(o.error());
    maps::map& m = *(*o)->map;
    const maps::spec& s = m.spec();
    auto ctx = [&](error e) { return refuse(with_context(std::move(e), fmt::format("map '{}'", s.name))); };
    if (maps::holds_fds(s.type)) dirty = true;
    bool reads = cmd == BPF_MAP_LOOKUP_BATCH || cmd == BPF_MAP_LOOKUP_AND_DELETE_BATCH;
    bool writes = cmd != BPF_MAP_LOOKUP_BATCH;
    bool writable = !(s.flags & BPF_F_RDONLY) && !m.header().frozen.load(std::memory_order_acquire);
    if ((reads && (s.flags & BPF_F_WRONLY)) || (writes && !writable)) return ctx(error{EPERM, "the map is not open for that, or frozen"});
    batch_kind kind = batch_support(s.type, cmd);
    if (kind == batch_kind::none) return ctx(error{maps_enotsupp, fmt::format("{} has no such batch operation", maps::type_name(s.type))});
    if (a.batch.elem_flags & ~uint64_t(BPF_F_LOCK)) return ctx(error{EINVAL, "elem_flags"});
    if ((a.batch.elem_flags & BPF_F_LOCK) && s.spin_lock_off < 0) return ctx(error{EINVAL, "BPF_F_LOCK without a bpf_spin_lock"});
    if (kind == batch_kind::htab && a.batch.flags) return ctx(error{EINVAL, "flags"});
    uint32_t max = a.batch.count;
    if (max == 0) return 0;
    uint32_t done = 0;
    auto put_count = [&] { return mem.write(attr_addr + offsetof(union bpf_attr, batch.count), &done, 4); };
    if (auto ok = put_count(); !ok) return ctx(ok.error());
    size_t ks = s.key_size, vs = m.user_value_size();
    if (cmd == BPF_MAP_UPDATE_BATCH || cmd == BPF_MAP_DELETE_BATCH) {
        // The kernel copies one element at a time, so a fault stops the batch where it is. All
        // keys and values are read at once (two reads for a whole Maglev ring); only when that
        // faults are elements read one by one, to stop exactly where the kernel would.
        // (Batches above 64 MiB go element by element too, rather than allocate their size.)
        bool upd = cmd == BPF_MAP_UPDATE_BATCH;
        constexpr uint64_t bulk_limit = 64u << 20;
        bool bulk = (uint64_t(ks) + (upd ? vs : 0)) * max <= bulk_limit;
        result<std::vector<uint8_t>> all_keys, all_values;
        if (bulk) all_keys = mem.read_vec(a.batch.keys, ks * max);
        if (bulk && all_keys && upd) all_values = mem.read_vec(a.batch.values, vs * max);
        bulk = bulk && all_keys && all_values;
        std::vector<uint8_t> key_buf(bulk ? 0 : ks), value_buf(bulk ? 0 : vs);
        result<void> ok;
        for (; done < max; ++done) {
            uint8_t* key = bulk ? all_keys->data() + size_t(done) * ks : key_buf.data();
            uint8_t* value = bulk && upd ? all_values->data() + size_t(done) * vs : value_buf.data();
            if (!bulk) {
                ok = mem.read(a.batch.keys + uint64_t(done) * ks, key, ks);
                if (ok && upd) ok = mem.read(a.batch.values + uint64_t(done) * vs, value, vs);
                if (!ok) break;
            }
            if (!upd) {
                ok = maps::delete_elem(m, key);
            } else if (maps::holds_fds(s.type)) {
                auto h = resolve_value(*this, m, value);
                ok = h ? maps::update_object(m, key, std::move(*h), a.batch.elem_flags) : tl::unexpected(h.error());
            } else {
                ok = maps::update_elem(m, key, value, a.batch.elem_flags);
            }
            if (!ok) break;
        }
        if (auto put = put_count(); !put) return ctx(put.error());
        if (!ok) return ctx(ok.error());
        return 0;
    }
    auto report = [&](long r) {
        (void)put_count();
        return r;
    };
    // Lookups walk keys from the cursor.
    if (!m.ops().next_key || !m.ops().copy_out) return ctx(error{maps_enotsupp, "batch lookup is not supported"});
    bool del = cmd == BPF_MAP_LOOKUP_AND_DELETE_BATCH;
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
