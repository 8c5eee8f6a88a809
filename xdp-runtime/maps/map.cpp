// Map creation, the type registry, and what every type shares.
#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "maps/types.h"

namespace xdprt::maps {

namespace {

constexpr size_t page_bytes = 4096;

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
memory_registry& registry() {
    static memory_registry r;
    return r;
}

}  // namespace

bool in_map_memory(uint64_t addr, uint64_t size, bool write) {
    memory_registry& r = registry();
    std::shared_lock g(r.lock);
    auto it = r.ranges.upper_bound(addr);
    if (it == r.ranges.begin()) return false;
    --it;
    return addr + size <= it->first + it->second.first && addr + size >= addr && !(write && it->second.second);
}

uint32_t possible_cpus() {
    static const uint32_t n = read_possible_cpus();
    return n;
}

writer_guard::writer_guard(map_header& h) noexcept : _h(h) {
    for (;;) {
        uint32_t expected = 0;
        if (h.writer_lock.compare_exchange_weak(expected, 1, std::memory_order_acquire)) return;
        while (h.writer_lock.load(std::memory_order_relaxed) != 0) __builtin_ia32_pause();
    }
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

bool is_percpu(uint32_t type) {
    return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
           type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
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

result<std::unique_ptr<map>> create(const spec& s) {
    if (auto ok = check(s); !ok) return tl::unexpected(ok.error());
    const ops* table = ops_for(s.type);
    size_t data = (table->data_bytes(s) + page_bytes - 1) & ~(page_bytes - 1);
    size_t total = data + page_bytes;
    std::unique_ptr<map> m(new map());
    m->_spec = s;
    m->_ops = table;
    std::string memfd_name = "xdprt-map:" + (s.name.empty() ? std::string(type_name(s.type)) : s.name);
    m->_memfd = memfd_create(memfd_name.c_str(), MFD_CLOEXEC);
    if (m->_memfd < 0) return fail(errno, "memfd_create: {}", strerror(errno));
    if (ftruncate(m->_memfd, off_t(total)) != 0) return fail(ENOMEM, "map of {} bytes: {}", total, strerror(errno));
    void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, m->_memfd, 0);
    if (p == MAP_FAILED) return fail(ENOMEM, "map of {} bytes: mmap: {}", total, strerror(errno));
    m->_base = static_cast<std::byte*>(p);
    m->_bytes = total;
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
    if (auto ok = table->init(*m); !ok) return tl::unexpected(ok.error());
    {
        std::unique_lock g(registry().lock);
        registry().ranges[reinterpret_cast<uint64_t>(m->_base)] = {data, (s.flags & BPF_F_RDONLY_PROG) != 0};
    }
    return m;
}

}  // namespace xdprt::maps
