// xdprt maps: the kernel's BPF map types in shared memory, behind one ops table (DESIGN.md 2.4, 3).
//
// Memory. Every map's bytes live in one memfd: the type's data from offset 0 (so an MMAPABLE
// array's values are at offset 0, where libbpf mmaps them), then, in the last page, a map_header
// naming the type and shape. Everything inside is addressed by offsets, never pointers, so another
// process that maps the memfd reads the same map. Untouched pages cost nothing: a 33.5M-entry array
// or an 8M-entry LRU takes memory only as it fills.
//
// Two faces per map type:
//   - program side (the helpers): lookup returns a pointer into the map that stays valid until the
//     program returns (QSBR, qsbr.h); update/erase/push/pop/peek return the kernel's 0 or -errno.
//     noexcept, no allocation, no lock for lookups.
//   - syscall side (the bpf() server): values are copied; per-CPU values carry every CPU's slot,
//     each rounded up to 8 bytes, possible_cpus() of them, as libbpf expects.
// Writers of one map are serialized by a lock in its header; readers never lock.
//
// Fd-valued maps (PROG_ARRAY, ARRAY_OF_MAPS, HASH_OF_MAPS, DEVMAP(_HASH), CPUMAP, XSKMAP,
// PERF_EVENT_ARRAY) hold objects of this process (programs, maps, perf events, sockets): userspace sees their
// ids, programs their pointers. The server resolves fds to held_object before calling in.
//
// Errors are the kernel's errnos for the same request (map creation: its map_alloc_check).
#pragma once

#include <linux/bpf.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "base/result.h"

namespace xdprt::maps {

class map;

// The host's possible CPU count (/sys/devices/system/cpu/possible): per-CPU maps have one slot per
// runtime CPU id below it, and userspace per-CPU values have that many slots. Read once (inline:
// programs' per-CPU lookups use it per packet).
uint32_t read_possible_cpus();
inline uint32_t possible_cpus() {
    static const uint32_t n = read_possible_cpus();
    return n;
}

// The runtime CPU id of this thread (bpf_get_smp_processor_id, the per-CPU slot programs see).
// Workers set it once; everything else runs as CPU 0.
inline thread_local uint32_t this_cpu = 0;

// What MAP_CREATE asks for.
struct spec {
    uint32_t type = 0;         // enum bpf_map_type
    uint32_t key_size = 0;
    uint32_t value_size = 0;
    uint32_t max_entries = 0;
    uint32_t flags = 0;        // BPF_F_*
    uint64_t extra = 0;        // map_extra: BLOOM_FILTER's hash count
    uint32_t numa_node = 0;
    std::string name;
    const map* inner = nullptr;  // ARRAY_OF_MAPS / HASH_OF_MAPS: the template every inner map matches
    int32_t spin_lock_off = -1;  // offset of a struct bpf_spin_lock in the value (from BTF), or -1
};

// An object a fd-valued map refers to: what programs get, what userspace gets, and the reference
// that keeps it alive while the map holds it.
struct held_object {
    void* ptr = nullptr;          // map* for maps of maps, vm::program-like object for PROG_ARRAY, ...
    uint32_t id = 0;              // returned by userspace lookups of PROG_ARRAY and maps of maps;
                                  // XSKMAP: the socket's inode (which socket it is)
    std::shared_ptr<void> ref;
    uint32_t extra = 0;           // DEVMAP: ifindex; CPUMAP: qsize
};

// What an XSKMAP element points at (its held_object's ptr): the AF_XDP socket as the dataplane
// reaches it (dataplane::bind_xsk). The kernel delivers a redirected frame only to a socket bound
// to the frame's own interface and RX queue.
struct xsk_binding {
    uint32_t slot = 0;   // the socket's slot in the dataplane's kernel XSKMAP
    uint32_t queue = 0;  // the queue it is bound to
};

struct ops;

// Shared by every type: the last page of the memfd.
struct map_header {
    static constexpr uint64_t magic_value = 0x70616d7472706478;  // "xdprtmap"
    static constexpr uint32_t layout = 4;                         // bumped when any layout changes (4: the hash)
    uint64_t magic;
    uint32_t layout_version;
    uint32_t type, key_size, value_size, max_entries, flags;
    uint64_t extra;
    uint64_t data_bytes;               // offset of this header
    std::atomic<uint32_t> writer_lock;  // serializes writers, in every process
    std::atomic<uint32_t> frozen;       // MAP_FREEZE: no more writes from userspace
    int32_t spin_lock_off;              // spec::spin_lock_off, for readers that only have the memfd
    uint32_t unused;
    uint64_t type_state[16];            // the type's own counters and list heads
    char name[16];                      // spec::name, NUL-padded (a pinned map reopened after a restart)

    // True for the header of an xdprt map of this layout, found in the last page of a file of
    // `file_bytes` bytes.
    bool valid(size_t file_bytes) const {
        return magic == magic_value && layout_version == layout && data_bytes + 4096 == file_bytes;
    }
    // The map's shape as created (inner map template and NUMA node are not kept).
    maps::spec shape() const;
};

// Who holds a map's writer lock: this process's threads hold it as in_process_writer; a client
// writing through a view (the preload shim) holds it as client_writer | its pid in the
// appliance's pid namespace (the hello tells it), so the appliance can tell when the holder has
// died and take the lock back.
inline constexpr uint32_t in_process_writer = 1;
inline constexpr uint32_t client_writer = 0x80000000;

// How long a writer waits for a lock a client holds (a client may be stopped, or killed
// mid-write): programs briefly, then EBUSY (as the kernel's htab_lock_bucket can answer);
// syscalls up to a second, then EBUSY naming the holder. A holder of this process is always
// waited for (its sections are short). In the appliance (a map that is not foreign), a client
// holder that has died is replaced at once.
enum class lock_wait { program, syscall };

// Serializes writers of one map (across threads and processes).
class writer_guard {
public:
    // Waits for the lock without limit: for maps only this process writes (queues, LPM tries,
    // fd arrays, ring buffers).
    explicit writer_guard(map_header& h) noexcept;
    // Waits as `w` says, as m.writer_owner(); check held() (a view waits for anyone at most
    // 100 ms: the appliance then serves the write).
    explicit writer_guard(const map& m, lock_wait w = lock_wait::syscall) noexcept;
    ~writer_guard() {
        if (_held) _h.writer_lock.store(0, std::memory_order_release);
    }
    writer_guard(const writer_guard&) = delete;
    writer_guard& operator=(const writer_guard&) = delete;
    bool held() const { return _held; }
    // The holder when it was given up (client_writer | pid, or in_process_writer).
    uint32_t holder() const { return _holder; }

private:
    map_header& _h;
    bool _held = false;
    uint32_t _holder = 0;
};

using lookup_fn = void* (*)(map& m, const void* key) noexcept;
// The program-side lookup of `m` (map::lookup() caches it): ops().lookup, or, for the hash types,
// one specialized for the map's key size.
lookup_fn choose_lookup(const map& m);

// One map: its memory, its ops, its identity. Created by create(); not copyable or movable (programs
// hold its address).
class map {
public:
    ~map();
    map(const map&) = delete;
    map& operator=(const map&) = delete;

    const maps::spec& spec() const { return _spec; }
    uint32_t type() const { return _spec.type; }
    const maps::ops& ops() const { return *_ops; }
    // The program-side lookup (the helper and the JIT's direct calls): ops().lookup, or one
    // specialized for the key size (choose_lookup).
    lookup_fn lookup() const { return _lookup; }
    int memfd() const { return _memfd; }
    std::byte* base() const { return _base; }
    size_t bytes() const { return _bytes; }
    map_header& header() const { return *_header; }
    // True for a view (mapped read-only from another process's memfd): no op may write.
    bool read_only() const { return _read_only; }
    // True for a view: another process (the appliance) created the map and reclaims its memory;
    // this one's QSBR domain does not know that process's readers.
    bool foreign() const { return _foreign; }
    // What this map's writers store in the writer lock (writer_guard).
    uint32_t writer_owner() const { return _writer_owner; }
    // Size of one value as userspace passes it (per-CPU: every CPU's slot).
    size_t user_value_size() const;
    // Bytes per value slot in memory (value_size rounded up to 8 for arrays and per-CPU types).
    size_t value_stride() const { return (size_t(_spec.value_size) + 7) & ~size_t(7); }

    uint32_t id = 0;  // assigned by the object table

    // Type state in process memory (fd-valued maps' objects), owned by the type's file.
    template <class T>
    T& local() const { return *static_cast<T*>(_local.get()); }
    void set_local(std::shared_ptr<void> state) { _local = std::move(state); }

private:
    friend result<std::unique_ptr<map>> create(const maps::spec&, int);
    friend result<std::unique_ptr<map>> adopt(int);
    friend class view;
    result<void> map_memory(int fd, size_t bytes);
    // The type's ops and the lookup chosen for this map's shape (_spec set first).
    void bind_ops(const maps::ops* o) {
        _ops = o;
        _lookup = o ? choose_lookup(*this) : nullptr;
    }
    map() = default;
    maps::spec _spec;
    const maps::ops* _ops = nullptr;
    lookup_fn _lookup = nullptr;
    int _memfd = -1;
    std::byte* _base = nullptr;
    size_t _bytes = 0;
    map_header* _header = nullptr;
    bool _read_only = false;
    bool _foreign = false;
    uint32_t _writer_owner = in_process_writer;
    std::shared_ptr<void> _local;
};

// The ops table: one per map type (STYLE.md rule 18). Program-side entries may be null where the
// kernel has no such operation for the type; the helpers then return its -errno (EOPNOTSUPP or
// EINVAL, as the kernel's verifier would have refused the call).
struct ops {
    const char* name;  // "hash", "lru_hash", ...

    // Creation: bytes of data for `s` (after check() passed), then initialization of fresh memory.
    result<void> (*check)(const spec& s);
    size_t (*data_bytes)(const spec& s);
    result<void> (*init)(map& m);

    // Program side.
    void* (*lookup)(map& m, const void* key) noexcept;
    long (*update)(map& m, const void* key, const void* value, uint64_t flags) noexcept;
    long (*erase)(map& m, const void* key) noexcept;
    long (*push)(map& m, const void* value, uint64_t flags) noexcept;
    long (*pop)(map& m, void* value) noexcept;
    long (*peek)(map& m, void* value) noexcept;

    // Syscall side: values as userspace sees them (user_value_size()). The commands below run the
    // kernel's generic checks first, so these see valid flags and a key only where the type has
    // keys. Keyless types route as the kernel's syscall.c does: QUEUE/STACK copy_out = peek,
    // store = push, lookup_and_delete = pop; BLOOM_FILTER copy_out tests the value it is given.
    result<void> (*copy_out)(map& m, const void* key, void* value, uint64_t flags);
    result<void> (*store)(map& m, const void* key, const void* value, uint64_t flags);
    result<void> (*remove)(map& m, const void* key);
    result<void> (*next_key)(map& m, const void* key, void* next);  // key null: the first key
    result<void> (*lookup_and_delete)(map& m, const void* key, void* value, uint64_t flags);

    // Fd-valued maps: store an already resolved object (the server turned the fd into it).
    result<void> (*store_object)(map& m, const void* key, held_object obj, uint64_t flags);
};

// Creates a map in a fresh memfd, or, with `dir_fd`, in an unnamed file of that directory
// (O_TMPFILE; a tmpfs), which a pin later links into the file system. Errors are the kernel's
// MAP_CREATE errnos.
[[nodiscard]] result<std::unique_ptr<map>> create(const spec& s, int dir_fd = -1);

// Takes over a map a previous process created (a pinned file reopened after a restart): the
// header gives the shape and the contents stay. Maps holding objects (prog arrays, maps of maps,
// devmaps, cpumaps, xskmaps) come back empty: what they referred to died with that process. The
// writer lock is reset, so no other process may still write the map. Takes ownership of `fd`.
// Errors: EINVAL when `fd` holds no xdprt map of this layout.
[[nodiscard]] result<std::unique_ptr<map>> adopt(int fd);
// What create() refuses before it allocates: the kernel's map_create checks up to the type's
// map_alloc_check (extra, flags, NUMA node, type, shape, value special fields).
[[nodiscard]] result<void> check(const spec& s);

// The bpf() map commands, as kernel/bpf/syscall.c runs them: its generic checks in its order
// (flags, the map's BPF_F_RDONLY/WRONLY and MAP_FREEZE -> EPERM, BPF_F_LOCK without a lock ->
// EINVAL, a key given to a keyless type -> EINVAL), then the type's op (missing -> the kernel's
// errno for that command). Control thread or any thread; never from programs.
[[nodiscard]] result<void> lookup_elem(map& m, const void* key, void* value, uint64_t flags);
[[nodiscard]] result<void> update_elem(map& m, const void* key, const void* value, uint64_t flags);
// UPDATE_ELEM on an fd-valued map, the fd already resolved by the server.
[[nodiscard]] result<void> update_object(map& m, const void* key, held_object obj, uint64_t flags);
[[nodiscard]] result<void> delete_elem(map& m, const void* key);
[[nodiscard]] result<void> get_next_key(map& m, const void* key, void* next);
[[nodiscard]] result<void> lookup_and_delete_elem(map& m, const void* key, void* value, uint64_t flags);
[[nodiscard]] result<void> freeze(map& m);

// A window on a map another process (the appliance) created, through its memfd: a tracing agent,
// a monitoring tool, the preload shim. The header gives the shape. It needs no QSBR
// registration: hash.cpp validates its copies by sequence counters.
//   - Reads (copy_out): lock-free, as lookup_elem does, for ARRAY, PERCPU_ARRAY and the
//     value-holding hash types (others: EOPNOTSUPP). open() maps the memfd PROT_READ, so such a
//     view never writes shared memory.
//   - Writes (open_writable): arrays are updated in place, as the kernel's array update does; the
//     value-holding hash types take the map's writer lock as `owner` and link, unlink and evict
//     as the appliance does, but leave what they unlink for the appliance to reclaim, once its
//     readers have passed a quiescent point (hash.cpp). When every spare element waits for that,
//     an update answers EAGAIN: the appliance must serve it. BPF_F_LOCK updates are left to the
//     appliance too (a client killed holding a value's bpf_spin_lock would stop the programs that
//     take it: EOPNOTSUPP). `owner` (client_writer | the caller's pid in the appliance's pid
//     namespace) is how the appliance knows whose lock it is; a lock held for over 100 ms also
//     answers EAGAIN.
class view {
public:
    // Errors: EINVAL when the memfd holds no xdprt map of a known layout.
    [[nodiscard]] static result<view> open(int memfd);
    // Needs an fd open for writing.
    [[nodiscard]] static result<view> open_writable(int memfd);
    bool writable() const { return !_map->read_only(); }
    const maps::spec& spec() const { return _map->spec(); }
    size_t user_value_size() const { return _map->user_value_size(); }
    // EAGAIN when writers kept rewriting the key's chain for the whole retry budget.
    [[nodiscard]] result<void> copy_out(const void* key, void* value) const;
    // update_elem, delete_elem and get_next_key with their generic checks (frozen, RDONLY:
    // EPERM). EOPNOTSUPP for types or flags a window does not serve, and on a read-only view.
    // get_next_key serves the hash types (an array's successor needs no map).
    [[nodiscard]] result<void> update(const void* key, const void* value, uint64_t flags, uint32_t owner) const;
    [[nodiscard]] result<void> erase(const void* key, uint32_t owner) const;
    [[nodiscard]] result<void> next_key(const void* key, void* next, uint32_t owner) const;

private:
    [[nodiscard]] static result<view> open_window(int memfd, bool writable);
    // EOPNOTSUPP unless this window may write (`what`: the command) a map of its type as `owner`
    // (arrays too with `arrays`); otherwise records `owner` as its writer.
    [[nodiscard]] result<void> writes_as(uint32_t owner, bool arrays, const char* what) const;
    [[nodiscard]] static result<void> for_the_appliance(result<void> r);
    std::unique_ptr<map> _map;
};

// Takes the writer lock of `m` back from `owner` (client_writer | pid) if it still holds it: the
// client died mid-write (the control socket calls it when a client's connection ends). What it was writing is lost (a per-CPU value may be half written; an
// element it had taken stays unused); every link is one store, so readers never meet a broken
// chain. True when the lock was taken back.
bool release_writer(map& m, uint32_t owner);

// The ops of a type, null when xdprt does not implement it.
const ops* ops_for(uint32_t type);

const char* type_name(uint32_t type);

// The object at `index` of an fd-valued array (a PROG_ARRAY's program for bpf_tail_call), or null.
// Program side: lock-free, valid until the caller's next quiescent point.
void* object_at(const map& m, uint32_t index) noexcept;
// The program of a DEVMAP, DEVMAP_HASH or CPUMAP entry (bpf_devmap_val / bpf_cpumap_val's
// bpf_prog), or null: valid until the caller's next quiescent point, like a lookup's value.
void* entry_program(map& m, uint32_t key) noexcept;
// A DEVMAP's or DEVMAP_HASH's entries in map order (bpf_redirect_map's BPF_F_BROADCAST): the
// entry at or after `cursor` (advanced past it), its key and its ifindex. False at the end.
bool next_devmap_entry(map& m, uint64_t& cursor, uint32_t* key, uint32_t* ifindex) noexcept;

// bpf_for_each_map_elem's walk: the element at or after `cursor` (advanced past it), its key and
// this CPU's value. An array's key is its index, written to `scratch` (4 bytes). False at the end
// and for types the kernel does not iterate.
bool next_element(map& m, uint64_t& cursor, void* scratch, void** key, void** value) noexcept;

// True when [addr, addr + size) lies inside the memory of a live map of this process (the
// interpreter's check for inner maps reached at run time). Takes a shared lock: not for the JIT path.
bool in_map_memory(uint64_t addr, uint64_t size, bool write);

// RINGBUF, program side (bpf_ringbuf_*; ringbuf.cpp). Producers may run on any number of threads
// and processes: reserve serializes on the map's writer lock like the kernel's spinlock, submit
// and discard publish without it. Wakeup flags are accepted and ignored: consumers poll
// (ringbuf_query / the producer position), since a wakeup from a worker would be a syscall per
// packet.
void* ringbuf_reserve(map& m, uint64_t size, uint64_t flags) noexcept;  // null when full or bad
void ringbuf_submit(void* sample, uint64_t flags) noexcept;
void ringbuf_discard(void* sample, uint64_t flags) noexcept;
long ringbuf_output(map& m, const void* data, uint64_t size, uint64_t flags) noexcept;  // 0, -EAGAIN, -EINVAL
uint64_t ringbuf_query(map& m, uint64_t flag) noexcept;  // BPF_RB_AVAIL_DATA, RING_SIZE, CONS_POS, PROD_POS
// Consumer (one at a time per ring, like libbpf's ring_buffer__consume): calls `fn` for every
// submitted record in order, skips discarded ones, stops at the first still reserved. Returns
// how many records it passed to `fn`.
size_t ringbuf_consume(map& m, const std::function<void(std::span<const std::byte>)>& fn);

// Empties a map that holds objects (fd-valued types), in time proportional to what it holds,
// not to max_entries. Control thread; the objects go after a grace period.
void clear_objects(map& m);

// True for the fd-valued types (userspace passes fds as values).
bool holds_fds(uint32_t type);
// The hash types that hold plain values (not objects): what a view reads and writes.
constexpr bool is_value_hash(uint32_t type) {
    return type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_HASH ||
           type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}
constexpr bool is_percpu(uint32_t type) {
    return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

}  // namespace xdprt::maps
