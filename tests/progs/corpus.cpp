// Loading, running and snapshotting corpus programs through libbpf. The entry table and the setup
// hooks are in corpus_entries.cpp.
#include "corpus.h"
#include "packets.h"
#include "test_run_opts.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

namespace xdprt::corpus {

owned_fd& owned_fd::operator=(owned_fd&& o) noexcept {
    if (this != &o) {
        if (_fd >= 0) ::close(_fd);
        _fd = std::exchange(o._fd, -1);
    }
    return *this;
}

owned_fd::~owned_fd() {
    if (_fd >= 0) ::close(_fd);
}

loaded_object::loaded_object(loaded_object&& o) noexcept
    : obj(std::exchange(o.obj, nullptr)), prog_fd(std::exchange(o.prog_fd, -1)), keep(std::move(o.keep)) {}

loaded_object& loaded_object::operator=(loaded_object&& o) noexcept {
    if (this != &o) {
        if (obj) bpf_object__close(obj);
        obj = std::exchange(o.obj, nullptr);
        prog_fd = std::exchange(o.prog_fd, -1);
        keep = std::move(o.keep);
    }
    return *this;
}

loaded_object::~loaded_object() {
    if (obj) bpf_object__close(obj);  // before `keep` goes: the object may still refer to those fds
}

namespace {

// libbpf's messages (the verifier log among them) for the load in progress, so that a failure can
// quote its tail. libbpf_set_print is process-wide; loads are not run concurrently here.
std::string* libbpf_log = nullptr;

int capture_print(enum libbpf_print_level level, const char* format, va_list args) {
    if (!libbpf_log || level == LIBBPF_DEBUG) return 0;
    char buf[1024];
    int n = vsnprintf(buf, sizeof(buf), format, args);
    libbpf_log->append(buf, n < 0 ? 0 : std::min<size_t>(n, sizeof(buf) - 1));
    return n;
}

// The last `lines` lines of `log`, for error messages.
std::string tail(const std::string& log, int lines) {
    size_t end = log.size();
    if (end > 0 && log[end - 1] == '\n') end--;
    size_t pos = end;
    for (int i = 0; i < lines; i++) {
        if (pos == 0) return log;
        size_t nl = log.rfind('\n', pos - 1);
        if (nl == std::string::npos) return log;
        pos = nl;
    }
    return log.substr(pos + 1);
}

struct log_capture {
    std::string text;
    libbpf_print_fn_t old;
    log_capture() : old(libbpf_set_print(capture_print)) { libbpf_log = &text; }
    ~log_capture() {
        libbpf_log = nullptr;
        libbpf_set_print(old);
    }
};

}  // namespace

const std::string& kernel_unavailable() {
    static const std::string reason = []() -> std::string {
        if (geteuid() != 0) return "not root: loading XDP programs and BPF_PROG_TEST_RUN need CAP_BPF/CAP_SYS_ADMIN";
        const bpf_insn pass[] = {
            {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = XDP_PASS},
            {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
        };
        owned_fd prog(bpf_prog_load(BPF_PROG_TYPE_XDP, "probe", "GPL", pass, 2, nullptr));
        if (prog.get() < 0) return std::string("cannot load an XDP program: ") + std::strerror(errno);
        run_result r = run(prog.get(), find_packet("ipv4_udp_dns")->bytes);
        if (r.error) return std::string("BPF_PROG_TEST_RUN for XDP fails: ") + std::strerror(r.error);
        return "";
    }();
    return reason;
}

std::string test_name_of(const entry& e) {
    std::string n;
    bool up = true;
    for (char c : e.name) {
        if (c == '_') {
            up = true;
            continue;
        }
        n += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
        up = false;
    }
    return n;
}

std::string missing_object(const entry& e) {
    if (!e.object.starts_with('/') || access(std::string(e.object).c_str(), R_OK) == 0) return "";
    return fmt::format("{} is not installed (Debian packages libxdp1 and xdp-tests; ./scripts/test installs them)", e.object);
}

result<loaded_object> open_and_load(const entry& e, const std::string& dir) {
    const std::string path = e.object.starts_with('/') ? std::string(e.object) : dir + "/" + std::string(e.object);
    log_capture log;
    loaded_object lo;
    lo.obj = bpf_object__open_file(path.c_str(), nullptr);
    if (!lo.obj) return fail(errno, "{}: open {}: {}", e.name, path, std::strerror(errno));
    if (e.prepare) {
        if (auto r = e.prepare(lo.obj, lo.keep); !r) return tl::unexpected(with_context(r.error(), fmt::format("{}: prepare", e.name)));
    }
    if (int err = bpf_object__load(lo.obj); err) {
        return fail(-err, "{}: load {}: {}\n{}", e.name, e.object, std::strerror(-err), tail(log.text, 12));
    }
    bpf_program* prog = bpf_object__find_program_by_name(lo.obj, std::string(e.prog).c_str());
    if (!prog) return fail(ENOENT, "{}: no program '{}' in {}", e.name, e.prog, e.object);
    lo.prog_fd = bpf_program__fd(prog);
    if (e.setup) {
        if (auto r = e.setup(lo.obj, lo.keep); !r) return tl::unexpected(with_context(r.error(), fmt::format("{}: setup", e.name)));
    }
    return lo;
}

run_result run(int prog_fd, std::span<const uint8_t> packet) {
    // Room for every growth the programs can do: adjust_head into the 256-byte headroom and
    // adjust_tail up to the end of the 4 KiB test page.
    std::vector<uint8_t> out(8192);
    bpf_test_run_opts opts = testing_support::test_run_opts(packet, out);
    run_result r;
    if (int err = bpf_prog_test_run_opts(prog_fd, &opts); err) {
        r.error = -err;
        return r;
    }
    r.retval = opts.retval;
    out.resize(opts.data_size_out);
    r.output = std::move(out);
    return r;
}

namespace {

using bytes = std::vector<uint8_t>;

size_t round8(size_t n) { return (n + 7) / 8 * 8; }

bool is_percpu(uint32_t type) {
    return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
           type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

struct map_shape {
    uint32_t type, key_size, value_size;
};

// Key/value pairs of a map whose values user space can read with lookup, iterated by get_next_key.
// Entries that vanish or are empty slots (ENOENT: DEVMAP, CPUMAP, PROG_ARRAY) are skipped.
result<std::vector<std::pair<bytes, bytes>>> dump_plain(int fd, const map_shape& m) {
    const size_t vsize = is_percpu(m.type) ? round8(m.value_size) * possible_cpus() : m.value_size;
    std::vector<std::pair<bytes, bytes>> out;
    bytes key(m.key_size), next(m.key_size), value(vsize);
    const void* prev = nullptr;
    for (size_t guard = 0; guard < (1u << 20); guard++) {
        if (bpf_map_get_next_key(fd, prev, next.data())) {
            if (errno == ENOENT) return out;
            return fail(errno, "get_next_key: {}", std::strerror(errno));
        }
        key = next;
        prev = key.data();
        if (bpf_map_lookup_elem(fd, key.data(), value.data())) {
            if (errno == ENOENT) continue;
            return fail(errno, "lookup: {}", std::strerror(errno));
        }
        out.emplace_back(key, value);
    }
    return fail(ELOOP, "get_next_key does not end");
}

void put_bytes(bytes& out, const bytes& b) {
    const uint32_t n = static_cast<uint32_t>(b.size());
    out.insert(out.end(), reinterpret_cast<const uint8_t*>(&n), reinterpret_cast<const uint8_t*>(&n) + 4);
    out.insert(out.end(), b.begin(), b.end());
}

// A map of maps: for each key, the inner map's contents (sorted) serialised as length-prefixed
// key, value, key, value...
result<std::vector<std::pair<bytes, bytes>>> dump_map_of_maps(int fd, const map_shape& m) {
    auto ids = dump_plain(fd, m);
    if (!ids) return ids;
    std::vector<std::pair<bytes, bytes>> out;
    for (auto& [key, id_bytes] : *ids) {
        uint32_t id = 0;
        std::memcpy(&id, id_bytes.data(), sizeof(id));
        owned_fd inner(bpf_map_get_fd_by_id(id));
        if (inner.get() < 0) return fail(errno, "inner map id {}: {}", id, std::strerror(errno));
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(inner.get(), &info, &len)) return fail(errno, "inner map info: {}", std::strerror(errno));
        auto contents = dump_plain(inner.get(), {info.type, info.key_size, info.value_size});
        if (!contents) return tl::unexpected(with_context(contents.error(), fmt::format("inner map id {}", id)));
        std::sort(contents->begin(), contents->end());
        bytes flat;
        for (auto& [k, v] : *contents) {
            put_bytes(flat, k);
            put_bytes(flat, v);
        }
        out.emplace_back(key, std::move(flat));
    }
    return out;
}

result<std::vector<std::pair<bytes, bytes>>> dump_pop(int fd, const map_shape& m) {
    std::vector<std::pair<bytes, bytes>> out;
    bytes value(m.value_size);
    for (size_t guard = 0; guard < (1u << 20); guard++) {
        if (bpf_map_lookup_and_delete_elem(fd, nullptr, value.data())) {
            if (errno == ENOENT) return out;
            return fail(errno, "pop: {}", std::strerror(errno));
        }
        out.emplace_back(bytes{}, value);
    }
    return fail(ELOOP, "pop does not end");
}

int collect_record(void* ctx, void* data, size_t size) {
    auto* out = static_cast<std::vector<std::pair<bytes, bytes>>*>(ctx);
    const auto* p = static_cast<const uint8_t*>(data);
    out->emplace_back(bytes{}, bytes(p, p + size));
    return 0;
}

result<std::vector<std::pair<bytes, bytes>>> dump_ringbuf(int fd) {
    std::vector<std::pair<bytes, bytes>> out;
    ring_buffer* rb = ring_buffer__new(fd, collect_record, &out, nullptr);
    if (!rb) return fail(errno, "ring_buffer__new: {}", std::strerror(errno));
    int n = ring_buffer__consume(rb);
    ring_buffer__free(rb);
    if (n < 0) return fail(-n, "ring_buffer__consume: {}", std::strerror(-n));
    return out;
}

result<std::vector<std::pair<bytes, bytes>>> dump_bloom(int fd, const map_shape& m, const entry* e) {
    std::vector<std::pair<bytes, bytes>> out;
    if (!e || !e->bloom_probes) return out;
    for (bytes probe : e->bloom_probes()) {
        probe.resize(m.value_size);
        int err = bpf_map_lookup_elem(fd, nullptr, probe.data());
        if (err && errno != ENOENT) return fail(errno, "bloom lookup: {}", std::strerror(errno));
        out.emplace_back(probe, bytes{static_cast<uint8_t>(err ? 0 : 1)});
    }
    return out;
}

std::string hex(const bytes& b, size_t max = 48) {
    std::string s;
    for (size_t i = 0; i < b.size() && i < max; i++) s += fmt::format("{:02x}", b[i]);
    if (b.size() > max) s += fmt::format("...({} bytes)", b.size());
    return s;
}

}  // namespace

result<snapshot> snapshot_maps(bpf_object* obj, const entry* e) {
    snapshot snap;
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
        map_dump d;
        d.name = bpf_map__name(map);
        d.type = bpf_map__type(map);
        const int fd = bpf_map__fd(map);
        const map_shape shape{d.type, bpf_map__key_size(map), bpf_map__value_size(map)};
        result<std::vector<std::pair<bytes, bytes>>> r = std::vector<std::pair<bytes, bytes>>{};
        bool sort = true;
        switch (d.type) {
        case BPF_MAP_TYPE_ARRAY_OF_MAPS:
        case BPF_MAP_TYPE_HASH_OF_MAPS: r = dump_map_of_maps(fd, shape); break;
        case BPF_MAP_TYPE_PROG_ARRAY:
            r = dump_plain(fd, shape);
            if (r)
                for (auto& kv : *r) kv.second = bytes{1};
            d.note = "values: 1 = a program is installed (prog ids differ between loads)";
            break;
        case BPF_MAP_TYPE_QUEUE:
        case BPF_MAP_TYPE_STACK:
            r = dump_pop(fd, shape);
            sort = false;
            d.note = "popped in order (the map is empty afterwards)";
            break;
        case BPF_MAP_TYPE_RINGBUF:
            r = dump_ringbuf(fd);
            sort = false;
            d.note = "submitted records in order (consumed)";
            break;
        case BPF_MAP_TYPE_BLOOM_FILTER:
            r = dump_bloom(fd, shape, e);
            sort = false;
            d.note = "probed values: 1 = maybe present, 0 = absent";
            break;
        case BPF_MAP_TYPE_PERF_EVENT_ARRAY: d.note = "not dumped: holds perf event fds"; break;
        case BPF_MAP_TYPE_XSKMAP: d.note = "not dumped: user space cannot read XSKMAP entries (EOPNOTSUPP)"; break;
        default: r = dump_plain(fd, shape); break;
        }
        if (!r) return tl::unexpected(with_context(r.error(), fmt::format("map '{}'", d.name)));
        d.entries = std::move(*r);
        if (sort) std::sort(d.entries.begin(), d.entries.end());
        snap.push_back(std::move(d));
    }
    return snap;
}

result<outcome> run_all(const entry& e, const std::string& dir) {
    auto lo = open_and_load(e, dir);
    if (!lo) return tl::unexpected(lo.error());
    outcome o;
    for (const packet& p : packets()) o.runs.push_back(run(lo->prog_fd, p.bytes));
    auto snap = snapshot_maps(lo->obj, &e);
    if (!snap) return tl::unexpected(with_context(snap.error(), std::string(e.name)));
    o.snap = std::move(*snap);
    return o;
}

std::string diff(const snapshot& a, const snapshot& b) {
    std::string out;
    if (a.size() != b.size()) out += fmt::format("map count: {} vs {}\n", a.size(), b.size());
    for (size_t i = 0; i < std::min(a.size(), b.size()); i++) {
        const map_dump &x = a[i], &y = b[i];
        if (x == y) continue;
        if (x.name != y.name || x.type != y.type) {
            out += fmt::format("map {}: '{}' type {} vs '{}' type {}\n", i, x.name, x.type, y.name, y.type);
            continue;
        }
        if (x.entries.size() != y.entries.size())
            out += fmt::format("map '{}': {} vs {} entries\n", x.name, x.entries.size(), y.entries.size());
        for (size_t j = 0, shown = 0; j < std::min(x.entries.size(), y.entries.size()) && shown < 8; j++) {
            if (x.entries[j] == y.entries[j]) continue;
            out += fmt::format("map '{}' entry {}: {} => {}  vs  {} => {}\n", x.name, j, hex(x.entries[j].first),
                               hex(x.entries[j].second), hex(y.entries[j].first), hex(y.entries[j].second));
            shown++;
        }
        if (x.note != y.note) out += fmt::format("map '{}': note '{}' vs '{}'\n", x.name, x.note, y.note);
    }
    return out;
}

result<void> pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set)) return fail(errno, "sched_setaffinity(cpu {}): {}", cpu, std::strerror(errno));
    return {};
}

int possible_cpus() {
    static const int n = libbpf_num_possible_cpus();
    return n;
}

}  // namespace xdprt::corpus
