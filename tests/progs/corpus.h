// The corpus: clang-compiled XDP programs with the map contents they expect, loaded and run through
// libbpf, and a comparable snapshot of every map afterwards.
//
// Everything here goes through plain libbpf calls (bpf_object__open_file/load, bpf_map_*_elem,
// bpf_map_create, bpf_prog_test_run_opts, ring_buffer__*), so the same code drives the kernel or, with
// libc's syscall() interposed in the test binary, xdprt's userspace bpf() server.
//
// Determinism: a run's retval, output bytes and final snapshot depend only on the program and the
// packets, provided per-CPU map slots are compared on the same CPU: callers pin the thread to one
// CPU (pin_to_cpu) before loading, because BPF_PROG_TEST_RUN runs the program on the calling CPU.
// Thread affinity: none; a loaded_object belongs to one thread at a time.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

struct bpf_object;

namespace xdprt::corpus {

// A file descriptor with one owner; closed on destruction.
class owned_fd {
public:
    owned_fd() = default;
    explicit owned_fd(int fd) : _fd(fd) {}
    owned_fd(owned_fd&& o) noexcept : _fd(std::exchange(o._fd, -1)) {}
    owned_fd& operator=(owned_fd&& o) noexcept;
    owned_fd(const owned_fd&) = delete;
    owned_fd& operator=(const owned_fd&) = delete;
    ~owned_fd();
    int get() const { return _fd; }

private:
    int _fd = -1;
};

// Hooks get the object and a list for descriptors that must live as long as it (inner-map
// templates, inner maps the hook created).
using hook = result<void> (*)(bpf_object* obj, std::vector<owned_fd>& keep);

struct entry {
    std::string_view name;     // unique; also the GoogleTest parameter name
    std::string_view object;   // file name in the programs directory, e.g. "xdp_firewall.bpf.o", or an
                               // absolute path (objects installed by Debian packages)
    std::string_view prog;     // the program BPF_PROG_TEST_RUN runs
    hook prepare = nullptr;    // after open, before load (inner-map templates, .rodata)
    hook setup = nullptr;      // after load (map contents)
    std::string_view notes;    // what setup installs, what the kernel does with it
    // Values whose membership the snapshot records for each BLOOM_FILTER map (as value bytes).
    std::vector<std::vector<uint8_t>> (*bloom_probes)() = nullptr;
};

std::span<const entry> entries();

// Why `e` cannot run here ("" when it can): an installed object that is not installed.
std::string missing_object(const entry& e);
const entry* find_entry(std::string_view name);

// A loaded object; closing it unloads programs and maps (unless pinned elsewhere).
struct loaded_object {
    loaded_object() = default;
    loaded_object(loaded_object&& o) noexcept;
    loaded_object& operator=(loaded_object&& o) noexcept;
    loaded_object(const loaded_object&) = delete;
    loaded_object& operator=(const loaded_object&) = delete;
    ~loaded_object();

    bpf_object* obj = nullptr;
    int prog_fd = -1;
    std::vector<owned_fd> keep;  // from the hooks
};

// Opens `dir`/entry.object, runs prepare, loads, runs setup. Errors name the entry and the step,
// with the verifier log's last lines for a refused program.
[[nodiscard]] result<loaded_object> open_and_load(const entry& e, const std::string& dir);

// One BPF_PROG_TEST_RUN (repeat 1). `error` is the errno of a refused run (for example EINVAL for a
// frame shorter than 14 bytes), in which case retval and output are empty; it is part of what a
// differential comparison compares.
struct run_result {
    int error = 0;
    uint32_t retval = 0;
    std::vector<uint8_t> output;
    bool operator==(const run_result&) const = default;
};
[[nodiscard]] run_result run(int prog_fd, std::span<const uint8_t> packet);

// The contents of one map as seen from user space.
struct map_dump {
    std::string name;
    uint32_t type = 0;
    // Key and value bytes, sorted by key (hash iteration order depends on a random seed), except for
    // QUEUE/STACK (pop order, keys empty) and RINGBUF (record order, keys empty). Per-CPU values hold
    // every possible CPU's slot, each rounded up to 8 bytes. Maps of maps hold, per key, the inner
    // map's own dump flattened as "key|value" pairs (inner map ids differ between loads).
    // PROG_ARRAY values are replaced by one byte 1 (prog ids differ between loads). BLOOM_FILTER
    // entries are the probed values with value byte 1 (maybe present) or 0 (absent).
    std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> entries;
    std::string note;  // why a map could not be dumped or was dumped partially
    bool operator==(const map_dump&) const = default;
};

using snapshot = std::vector<map_dump>;

// Dumps every map of `obj`, in the object's map order. Destructive for QUEUE, STACK (popped) and
// RINGBUF (consumed): take it once, at the end.
[[nodiscard]] result<snapshot> snapshot_maps(bpf_object* obj, const entry* e = nullptr);

// Everything one load produces over a packet list: per-packet results, then the final snapshot.
struct outcome {
    std::vector<run_result> runs;
    snapshot snap;
};

// Loads `e` fresh from `dir`, runs every packet of packets() in order, snapshots the maps.
[[nodiscard]] result<outcome> run_all(const entry& e, const std::string& dir);

// A readable listing of the differences between two snapshots ("" when equal).
std::string diff(const snapshot& a, const snapshot& b);

// Pins the calling thread to `cpu` (per-CPU map slots then land in the same place every run).
[[nodiscard]] result<void> pin_to_cpu(int cpu);

// Why the kernel cannot serve as the oracle here ("" when it can): checked once per process, by
// loading a two-instruction XDP program and test-running it (run as the kernel, with no route to
// xdprt set). A missing object file then fails the tests instead of skipping them.
const std::string& kernel_unavailable();

// An entry's name as a GoogleTest parameter name: PascalCase, no underscores.
std::string test_name_of(const entry& e);

// The number of possible CPUs libbpf sizes per-CPU values for.
int possible_cpus();

}  // namespace xdprt::corpus
