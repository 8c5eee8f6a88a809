// BPF output perf events (perf_event_open with PERF_TYPE_SOFTWARE / PERF_COUNT_SW_BPF_OUTPUT), the
// objects a PERF_EVENT_ARRAY holds and bpf_perf_event_output writes into (kernel/events/core.c,
// kernel/events/ring_buffer.c, kernel/trace/bpf_trace.c).
//
// An event is one file (an unnamed file of the server's store), laid out so that a consumer that
// mmaps it as it would a kernel perf event fd finds the kernel's ring:
//   [0, 4K)                   the user page: struct perf_event_mmap_page (data_head, data_tail,
//                             data_offset = 4K, data_size), exactly the kernel's fields
//   [4K, 4K + 2^n pages)      the data pages: records at data_head & (data_size - 1), wrapping
//   [4K + max_data, +4K)      xdprt's state page (cpu, enabled, ring size, lost counts, the
//                             producers' lock); consumers never map it
// The file is sparse: it is sized once for the largest ring (max_data_pages) and pages cost
// memory only once written.
//
// Ring size. The kernel learns the ring's size from the first mmap of the event (perf_mmap); so
// does xdprt: whatever mmaps an event fd (the in-process interposer of mmap, control/inprocess.cpp,
// and later the preload shim) calls prepare_mmap() first. It applies perf_mmap's checks (a shared
// mapping at offset 0 of 1 + 2^n pages, the same n as any earlier mapping) and publishes n in the
// state page, where producers read it. Until then the event has no ring, and output fails with
// -ENOSPC, as the kernel's does for an event nobody mapped. The alternative, a size fixed at
// perf_event_open, would not match libbpf, which reads records at mmap_size it chose itself.
//
// Producers (bpf_perf_event_output) take a spin lock in the state page, so several threads (the
// control thread's PROG_TEST_RUN, which runs as sched_getcpu(), and a worker with the same CPU id)
// may write one ring safely; consumers never take it. A record is written, then data_head is
// published with release ordering; data_tail is read with acquire ordering, so a consumer in
// another thread or process sees whole records and its freed space is only reused after it has
// read it. Records follow perf_output_sample for sample_type PERF_SAMPLE_RAW: a perf_event_header
// (PERF_RECORD_SAMPLE, misc PERF_RECORD_MISC_KERNEL, as the kernel's caller regs give), a u32 size,
// the raw bytes, zero padding up to 8 bytes (the size counts the padding, as in the kernel, which
// leaves the padding unwritten: zero on a fresh ring). A full ring drops the sample, counts it
// lost and returns -ENOSPC; the next sample that fits is preceded by a PERF_RECORD_LOST with the
// count, as perf_output_begin does. The ring's free space is computed as the kernel's CIRC_SPACE
// (one byte always stays free), so the same samples are lost as on the kernel.
//
// Thread affinity: create() and the consumer-side functions from any thread; output() from any
// thread, lock-free for consumers, no allocation or syscall.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "base/result.h"

namespace xdprt::perf {

inline constexpr size_t page_bytes = 4096;
// The largest ring, in data pages (256 MiB). The kernel's bound is the mlock limit
// (perf_event_mlock_kb) unless CAP_IPC_LOCK; past this one mmap gets EPERM, as past that one.
inline constexpr uint32_t max_data_pages = 1u << 16;
inline constexpr size_t file_bytes = (2 + size_t(max_data_pages)) * page_bytes;

// What perf_event_open asked for, as far as the producer needs it.
struct event_config {
    uint32_t cpu = 0;          // the runtime CPU id the event counts on
    uint64_t id = 0;           // PERF_EVENT_IOC_ID, and the id field of PERF_RECORD_LOST
    bool enabled = true;       // !attr.disabled
    uint64_t sample_type = 0;  // 0 or PERF_SAMPLE_RAW
};

class event {
public:
    // Formats `fd` (an empty regular file, e.g. an O_TMPFILE on a tmpfs) as a fresh event and maps
    // it. The mapping keeps the file alive; `fd` stays the caller's.
    [[nodiscard]] static result<std::unique_ptr<event>> create(int fd, const event_config& c);
    ~event();
    event(const event&) = delete;
    event& operator=(const event&) = delete;

    // bpf_perf_event_output's write of one sample: `meta` then `ctx_size` bytes of `ctx`, as one
    // raw record, from CPU `cpu`. 0, -EOPNOTSUPP (disabled, or the event counts another CPU: the
    // kernel's event->oncpu check), -ENOSPC (no ring mapped, or full: counted lost).
    long output(uint32_t cpu, std::span<const std::byte> meta, const void* ctx, uint32_t ctx_size) noexcept;

    // The total of samples lost (the kernel's event->lost_samples).
    uint64_t lost_samples() const noexcept;

private:
    event() = default;
    std::byte* _base = nullptr;
};

// Consumer side: on any fd, in any process that holds one (only the file is shared).

// True when `fd` is an xdprt perf event. errno is left as it was.
bool is_event(int fd);

// perf_mmap's checks for mapping `len` bytes of event `fd` at `offset` with `prot` and `flags`
// (EINVAL: not MAP_SHARED, not at offset 0, not 1 + 2^n pages, or another n than the first
// mapping's; EPERM: above max_data_pages), then the first mapping fixes the ring (n, and overwrite
// mode when mapped without PROT_WRITE, as the kernel decides) and fills the user page's
// data_offset and data_size. The caller then maps the fd itself.
[[nodiscard]] result<void> prepare_mmap(int fd, size_t len, int prot, int flags, off_t offset);

// PERF_EVENT_IOC_ENABLE / DISABLE: a disabled event takes no samples (output: -EOPNOTSUPP).
[[nodiscard]] result<void> set_enabled(int fd, bool enabled);
// PERF_EVENT_IOC_ID.
[[nodiscard]] result<uint64_t> id_of(int fd);

// The user page's data_head and data_tail offsets in the file, for a watcher that preads them.
inline constexpr off_t data_head_offset = 1024, data_tail_offset = 1032;

}  // namespace xdprt::perf
