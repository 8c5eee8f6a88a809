// Map creation, the type registry, and what every type shares.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "maps/types.h"

namespace xdprt::maps {

namespace {

constexpr size_t page_bytes = 4096;

struct type_entry {
    uint32_t type;
    const char* name;
    const ops* table;
};

// Every type the kernel knows, by name; the ones xdprt implements carry their ops.
const type_entry type_table[] = {
    {BPF_MAP_TYPE_UNSPEC, "unspec", nullptr},
    {BPF_MAP_TYPE_HASH, "hash", &hash_ops},
    {BPF_MAP_TYPE_ARRAY, "array", &array_ops},
    {BPF_MAP_TYPE_PROG_ARRAY, "prog_array", &prog_array_ops},
    {BPF_MAP_TYPE_PERF_EVENT_ARRAY, "perf_event_array", &perf_event_array_ops},
    {BPF_MAP_TYPE_PERCPU_HASH, "percpu_hash", &percpu_hash_ops},
    {BPF_MAP_TYPE_PERCPU_ARRAY, "percpu_array", &percpu_array_ops},
    {BPF_MAP_TYPE_STACK_TRACE, "stack_trace", nullptr},
    {BPF_MAP_TYPE_CGROUP_ARRAY, "cgroup_array", nullptr},
    {BPF_MAP_TYPE_LRU_HASH, "lru_hash", &lru_hash_ops},
    {BPF_MAP_TYPE_LRU_PERCPU_HASH, "lru_percpu_hash", &lru_percpu_hash_ops},
    {BPF_MAP_TYPE_LPM_TRIE, "lpm_trie", &lpm_trie_ops},
    {BPF_MAP_TYPE_ARRAY_OF_MAPS, "array_of_maps", &array_of_maps_ops},
    {BPF_MAP_TYPE_HASH_OF_MAPS, "hash_of_maps", &hash_of_maps_ops},
    {BPF_MAP_TYPE_DEVMAP, "devmap", &devmap_ops},
    {BPF_MAP_TYPE_SOCKMAP, "sockmap", nullptr},
    {BPF_MAP_TYPE_CPUMAP, "cpumap", &cpumap_ops},
    {BPF_MAP_TYPE_XSKMAP, "xskmap", &xskmap_ops},
    {BPF_MAP_TYPE_SOCKHASH, "sockhash", nullptr},
    {BPF_MAP_TYPE_CGROUP_STORAGE, "cgroup_storage", nullptr},
    {BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, "reuseport_sockarray", nullptr},
    {BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE, "percpu_cgroup_storage", nullptr},
    {BPF_MAP_TYPE_QUEUE, "queue", &queue_ops},
    {BPF_MAP_TYPE_STACK, "stack", &stack_ops},
    {BPF_MAP_TYPE_SK_STORAGE, "sk_storage", nullptr},
    {BPF_MAP_TYPE_DEVMAP_HASH, "devmap_hash", &devmap_hash_ops},
    {BPF_MAP_TYPE_STRUCT_OPS, "struct_ops", nullptr},
    {BPF_MAP_TYPE_RINGBUF, "ringbuf", &ringbuf_ops},
    {BPF_MAP_TYPE_INODE_STORAGE, "inode_storage", nullptr},
    {BPF_MAP_TYPE_TASK_STORAGE, "task_storage", nullptr},
    {BPF_MAP_TYPE_BLOOM_FILTER, "bloom_filter", &bloom_filter_ops},
    {BPF_MAP_TYPE_USER_RINGBUF, "user_ringbuf", nullptr},
};

// Live maps' memory ranges, by start address.
struct memory_registry {
    std::shared_mutex lock;
    std::map<uint64_t, std::pair<uint64_t, bool>> ranges;  // start -> (size, read-only for programs)
};
// Never destroyed: maps owned by objects with static storage (a server held in a static) are
// destroyed at exit, possibly after a function-local static registry would have been.
memory_registry& registry() {
    static memory_registry* r = new memory_registry;
    return *r;
}

}  // namespace

uint32_t read_possible_cpus() {
    // "0-1", "0-3,8-11": the count is the highest id + 1, as libbpf_num_possible_cpus() computes it.
    std::ifstream f("/sys/devices/system/cpu/possible");
    std::string s;
    if (!(f >> s)) return std::max(1u, std::thread::hardware_concurrency());
    uint32_t highest = 0, cur = 0;
    for (char c : s) {
        if (c >= '0' && c <= '9') cur = cur * 10 + uint32_t(c - '0');
        else { highest = std::max(highest, cur); cur = 0; }
    }
    return std::max(highest, cur) + 1;
}

bool in_map_memory(uint64_t addr, uint64_t size, bool write) {
    memory_registry& r = registry();
    std::shared_lock g(r.lock);
    auto it = r.ranges.upper_bound(addr);
    if (it == r.ranges.begin()) return false;
    --it;
    return addr + size <= it->first + it->second.first && addr + size >= addr && !(write && it->second.second);
}

namespace {

// True when process `pid` (of this pid namespace) has exited: gone, or a zombie.
bool process_gone(pid_t pid) {
    if (pid <= 0) return false;
    if (kill(pid, 0) != 0) return errno == ESRCH;
    char path[32], stat[512];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT;
    ssize_t n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n <= 0) return false;
    stat[n] = 0;
    const char* after = std::strrchr(stat, ')');  // the name may hold spaces and parentheses
    return after && after[1] == ' ' && (after[2] == 'Z' || after[2] == 'X');
}

}  // namespace

writer_guard::writer_guard(map_header& h) noexcept : _h(h) {
    for (;;) {
        uint32_t expected = 0;
        if (h.writer_lock.compare_exchange_weak(expected, in_process_writer, std::memory_order_acquire)) break;
        while (h.writer_lock.load(std::memory_order_relaxed) != 0) __builtin_ia32_pause();
    }
    _held = true;
}

writer_guard::writer_guard(const map& m, lock_wait w) noexcept : _h(m.header()) {
    using clock = std::chrono::steady_clock;
    const uint32_t owner = m.writer_owner();
    clock::time_point waiting_since{};
    for (uint64_t spins = 0;; ++spins) {
        uint32_t holder = 0;
        if (_h.writer_lock.compare_exchange_weak(holder, owner, std::memory_order_acquire)) {
            _held = true;
            return;
        }
        __builtin_ia32_pause();
        if (holder == 0 || (spins & 1023) != 1023) continue;
        // A long wait: rare, so a clock read (and, for a client holder, a syscall) is fine here.
        bool client = holder & client_writer;
        if (!client && !m.foreign()) continue;  // this process's own writers finish
        if (client && !m.foreign() && process_gone(pid_t(holder & ~client_writer))) {
            _h.writer_lock.compare_exchange_strong(holder, 0, std::memory_order_relaxed);
            continue;
        }
        const auto now = clock::now();
        if (waiting_since == clock::time_point{}) waiting_since = now;
        const auto budget = m.foreign() ? std::chrono::milliseconds(100)
                            : w == lock_wait::program ? std::chrono::microseconds(50)
                                                      : std::chrono::microseconds(1'000'000);
        if (now - waiting_since >= budget) {
            _holder = holder;
            return;
        }
    }
}

bool release_writer(map& m, uint32_t owner) {
    uint32_t held = owner;
    return owner != in_process_writer && m.header().writer_lock.compare_exchange_strong(held, 0, std::memory_order_release);
}

const ops* ops_for(uint32_t type) {
    for (const auto& t : type_table)
        if (t.type == type) return t.table;
    return nullptr;
}

const char* type_name(uint32_t type) {
    for (const auto& t : type_table)
        if (t.type == type) return t.name;
    return "unknown";
}

bool holds_fds(uint32_t type) {
    switch (type) {
    case BPF_MAP_TYPE_PROG_ARRAY: case BPF_MAP_TYPE_PERF_EVENT_ARRAY: case BPF_MAP_TYPE_ARRAY_OF_MAPS:
    case BPF_MAP_TYPE_HASH_OF_MAPS: case BPF_MAP_TYPE_DEVMAP: case BPF_MAP_TYPE_DEVMAP_HASH:
    case BPF_MAP_TYPE_CPUMAP: case BPF_MAP_TYPE_XSKMAP:
        return true;
    default:
        return false;
    }
}

void clear_objects(map& m) {
    if (!holds_fds(m.type())) return;
    if (m.type() == BPF_MAP_TYPE_HASH_OF_MAPS || m.type() == BPF_MAP_TYPE_DEVMAP_HASH) {
        std::vector<std::byte> key(m.spec().key_size);
        while (m.ops().next_key(m, nullptr, key.data())) (void)m.ops().remove(m, key.data());
        return;
    }
    fd_array_clear(m);
}

bool next_element(map& m, uint64_t& cursor, void* scratch, void** key, void** value) noexcept {
    switch (m.type()) {
    case BPF_MAP_TYPE_ARRAY: case BPF_MAP_TYPE_PERCPU_ARRAY:
        return array_next_element(m, cursor, scratch, key, value);
    case BPF_MAP_TYPE_HASH: case BPF_MAP_TYPE_PERCPU_HASH: case BPF_MAP_TYPE_LRU_HASH: case BPF_MAP_TYPE_LRU_PERCPU_HASH:
        return hash_next_element(m, cursor, key, value);
    default:
        return false;
    }
}

size_t map::user_value_size() const {
    if (is_percpu(_spec.type)) return round8(_spec.value_size) * possible_cpus();
    return _spec.value_size;
}

map::~map() {
    if (_base) {
        std::unique_lock g(registry().lock);
        registry().ranges.erase(reinterpret_cast<uint64_t>(_base));
    }
    if (_base) munmap(_base, _bytes);
    if (_memfd >= 0) close(_memfd);
}

spec map_header::shape() const {
    spec s;
    s.type = type;
    s.key_size = key_size;
    s.value_size = value_size;
    s.max_entries = max_entries;
    s.flags = flags;
    s.extra = extra;
    s.spin_lock_off = spin_lock_off;
    s.name.assign(name, strnlen(name, sizeof name));
    return s;
}

result<void> map::map_memory(int fd, size_t bytes) {
    _memfd = fd;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) return fail(ENOMEM, "map of {} bytes: mmap: {}", bytes, strerror(errno));
    _base = static_cast<std::byte*>(p);
    _bytes = bytes;
    return {};
}

static void register_memory(const map& m) {
    std::unique_lock g(registry().lock);
    registry().ranges[reinterpret_cast<uint64_t>(m.base())] = {m.header().data_bytes,
                                                               (m.spec().flags & BPF_F_RDONLY_PROG) != 0};
}

result<void> check(const spec& s) {
    const ops* table = ops_for(s.type);
    if (!table) return fail(EINVAL, "map type {} ({}) is not supported", s.type, type_name(s.type));
    if (s.type != BPF_MAP_TYPE_BLOOM_FILTER && s.extra != 0) return fail(EINVAL, "map_extra is for bloom filters only");
    if ((s.flags & BPF_F_RDONLY) && (s.flags & BPF_F_WRONLY)) return fail(EINVAL, "map flags: both RDONLY and WRONLY");
    if ((s.flags & BPF_F_NUMA_NODE) && s.numa_node != 0) return fail(EINVAL, "numa_node {}: no such node", s.numa_node);
    if (auto ok = table->check(s); !ok) return tl::unexpected(ok.error());
    if (s.spin_lock_off >= 0) {
        // map_check_btf: a bpf_spin_lock only in HASH and ARRAY values (of the types xdprt has),
        // never with program access restricted, and inside the value.
        if (s.flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG))
            return fail(EACCES, "a value with a bpf_spin_lock needs program read and write access");
        if (s.type != BPF_MAP_TYPE_HASH && s.type != BPF_MAP_TYPE_ARRAY)
            return fail(EOPNOTSUPP, "{}: values cannot hold a bpf_spin_lock", type_name(s.type));
        if (s.spin_lock_off % 4 != 0 || uint64_t(s.spin_lock_off) + 4 > s.value_size)
            return fail(EINVAL, "bpf_spin_lock at offset {} of a {}-byte value", s.spin_lock_off, s.value_size);
    }
    return {};
}

result<std::unique_ptr<map>> create(const spec& s, int dir_fd) {
    if (auto ok = check(s); !ok) return tl::unexpected(ok.error());
    const ops* table = ops_for(s.type);
    size_t data = (table->data_bytes(s) + page_bytes - 1) & ~(page_bytes - 1);
    size_t total = data + page_bytes;
    std::unique_ptr<map> m(new map());
    m->_spec = s;
    m->bind_ops(table);
    std::string memfd_name = "xdprt-map:" + (s.name.empty() ? std::string(type_name(s.type)) : s.name);
    int fd = dir_fd >= 0 ? openat(dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)
                         : memfd_create(memfd_name.c_str(), MFD_CLOEXEC);
    if (fd < 0) return fail(errno, "map file: {}", strerror(errno));
    m->_memfd = fd;
    if (ftruncate(fd, off_t(total)) != 0) return fail(ENOMEM, "map of {} bytes: {}", total, strerror(errno));
    if (auto ok = m->map_memory(fd, total); !ok) return tl::unexpected(ok.error());
    m->_header = new (m->_base + data) map_header{};
    map_header& h = *m->_header;
    h.magic = map_header::magic_value;
    h.layout_version = map_header::layout;
    h.type = s.type;
    h.key_size = s.key_size;
    h.value_size = s.value_size;
    h.max_entries = s.max_entries;
    h.flags = s.flags;
    h.extra = s.extra;
    h.data_bytes = data;
    h.spin_lock_off = s.spin_lock_off;
    std::strncpy(h.name, s.name.c_str(), sizeof h.name - 1);
    if (auto ok = table->init(*m); !ok) return tl::unexpected(ok.error());
    register_memory(*m);
    return m;
}

result<std::unique_ptr<map>> adopt(int fd) {
    std::unique_ptr<map> m(new map());
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return fail(errno, "fstat: {}", strerror(errno));
    }
    size_t bytes = size_t(st.st_size);
    if (bytes < 2 * page_bytes || bytes % page_bytes != 0) {
        close(fd);
        return fail(EINVAL, "{} bytes: not an xdprt map", bytes);
    }
    if (auto ok = m->map_memory(fd, bytes); !ok) return tl::unexpected(ok.error());
    auto* h = reinterpret_cast<map_header*>(m->_base + bytes - page_bytes);
    if (!h->valid(bytes)) return fail(EINVAL, "no xdprt map header of layout {}", map_header::layout);
    m->_header = h;
    m->_spec = h->shape();
    const spec& s = m->_spec;
    m->bind_ops(ops_for(s.type));
    if (!m->_ops || m->_ops->data_bytes(s) > h->data_bytes)
        return fail(EINVAL, "map '{}': type {} with this shape does not fit its file", s.name, s.type);
    h->writer_lock.store(0, std::memory_order_relaxed);
    if (holds_fds(s.type)) {
        // The objects died with the process that put them there: start empty.
        if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, off_t(h->data_bytes)) != 0)
            std::memset(m->_base, 0, h->data_bytes);
        std::memset(h->type_state, 0, sizeof h->type_state);
        if (auto ok = m->_ops->init(*m); !ok) return tl::unexpected(ok.error());
    }
    register_memory(*m);
    return m;
}

bool next_devmap_entry(map& m, uint64_t& cursor, uint32_t* key, uint32_t* ifindex) noexcept {
    if (m.type() == BPF_MAP_TYPE_DEVMAP) {
        for (; cursor < m.spec().max_entries; ++cursor) {
            uint32_t k = uint32_t(cursor);
            if (auto* v = static_cast<const uint32_t*>(m.ops().lookup(m, &k))) {
                *key = k;
                *ifindex = v[0];
                ++cursor;
                return true;
            }
        }
        return false;
    }
    if (m.type() != BPF_MAP_TYPE_DEVMAP_HASH) return false;
    void *k, *v;
    if (!hash_next_element(m, cursor, &k, &v)) return false;
    std::memcpy(key, k, 4);
    std::memcpy(ifindex, v, 4);
    return true;
}

void* entry_program(map& m, uint32_t key) noexcept {
    switch (m.type()) {
    case BPF_MAP_TYPE_DEVMAP:
    case BPF_MAP_TYPE_CPUMAP:
        return object_at(m, key);
    case BPF_MAP_TYPE_DEVMAP_HASH: {
        // hash.cpp's object-holding value: {u32 ifindex, u32 prog id, u64 object pointer}.
        auto* v = static_cast<const uint8_t*>(m.ops().lookup(m, &key));
        if (!v) return nullptr;
        void* p;
        std::memcpy(&p, v + 8, sizeof p);
        return p;
    }
    default:
        return nullptr;
    }
}

}  // namespace xdprt::maps
