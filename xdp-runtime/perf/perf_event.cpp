// BPF output perf events: the file layout, the producer, the consumer-side checks (perf_event.h).
#include "perf/perf_event.h"

#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>

namespace xdprt::perf {

namespace {

constexpr off_t state_offset = off_t(1 + max_data_pages) * page_bytes;
constexpr uint32_t unmapped = UINT32_MAX;  // data_pages before the first mmap

// The kernel's struct perf_event_mmap_page, whose offsets libbpf and perf rely on.
static_assert(offsetof(perf_event_mmap_page, data_head) == data_head_offset);
static_assert(offsetof(perf_event_mmap_page, data_tail) == data_tail_offset);

struct state {
    static constexpr uint64_t magic_value = 0x7665707472706478;  // "xdprtpev"
    static constexpr uint32_t layout_value = 1;
    uint64_t magic;
    uint32_t layout;
    uint32_t cpu;
    uint64_t id;
    uint64_t sample_type;
    std::atomic<uint32_t> data_pages;  // unmapped, then fixed by the first mmap
    std::atomic<uint32_t> overwrite;   // first mmap without PROT_WRITE: the tail is not respected
    std::atomic<uint32_t> enabled;
    std::atomic<uint32_t> lock;        // producers only
    uint64_t head;                     // under lock: the next record's position
    uint64_t lost;                     // under lock: lost since the last PERF_RECORD_LOST
    std::atomic<uint64_t> lost_samples;
};
static_assert(sizeof(state) <= page_bytes);

// The kernel's lost_event (perf_output_begin); sample_id_all adds nothing for sample_type RAW.
struct lost_record {
    perf_event_header header;
    uint64_t id;
    uint64_t lost;
};
static_assert(sizeof(lost_record) == 24);

// mmap through the raw system call: an mmap interposer (control/inprocess.cpp) must not see the
// runtime's own mappings of event files, which it would judge as a consumer's.
void* map_raw(size_t len, off_t offset, int fd) {
    long r = syscall(SYS_mmap, nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, offset);
    return r == -1 ? MAP_FAILED : reinterpret_cast<void*>(r);
}

// The state page of event `fd`, mapped for the duration of one consumer-side call.
class state_mapping {
public:
    explicit state_mapping(int fd) : _p(map_raw(page_bytes, state_offset, fd)) {}
    ~state_mapping() {
        if (_p != MAP_FAILED) munmap(_p, page_bytes);
    }
    state_mapping(const state_mapping&) = delete;
    state_mapping& operator=(const state_mapping&) = delete;
    state* get() const { return _p == MAP_FAILED ? nullptr : static_cast<state*>(_p); }

private:
    void* _p;
};

class spin_guard {
public:
    explicit spin_guard(std::atomic<uint32_t>& l) noexcept : _l(l) {
        for (;;) {
            uint32_t expected = 0;
            if (_l.compare_exchange_weak(expected, 1, std::memory_order_acquire)) return;
            while (_l.load(std::memory_order_relaxed) != 0) __builtin_ia32_pause();
        }
    }
    ~spin_guard() { _l.store(0, std::memory_order_release); }
    spin_guard(const spin_guard&) = delete;
    spin_guard& operator=(const spin_guard&) = delete;

private:
    std::atomic<uint32_t>& _l;
};

}  // namespace

result<std::unique_ptr<event>> event::create(int fd, const event_config& c) {
    if (ftruncate(fd, off_t(file_bytes)) != 0) return fail(errno, "perf event file: {}", strerror(errno));
    void* p = map_raw(file_bytes, 0, fd);
    if (p == MAP_FAILED) return fail(ENOMEM, "perf event file of {} bytes: mmap: {}", file_bytes, strerror(errno));
    std::unique_ptr<event> e(new event());
    e->_base = static_cast<std::byte*>(p);
    auto* s = new (e->_base + state_offset) state{};
    s->layout = state::layout_value;
    s->cpu = c.cpu;
    s->id = c.id;
    s->sample_type = c.sample_type;
    s->data_pages.store(unmapped, std::memory_order_relaxed);
    s->enabled.store(c.enabled ? 1 : 0, std::memory_order_relaxed);
    // Last: is_event() recognizes the file only once it is whole.
    std::atomic_ref<uint64_t>(s->magic).store(state::magic_value, std::memory_order_release);
    return e;
}

event::~event() {
    if (_base) munmap(_base, file_bytes);
}

uint64_t event::lost_samples() const noexcept {
    return reinterpret_cast<const state*>(_base + state_offset)->lost_samples.load(std::memory_order_relaxed);
}

long event::output(uint32_t cpu, std::span<const std::byte> meta, const void* ctx, uint32_t ctx_size) noexcept {
    auto& s = *reinterpret_cast<state*>(_base + state_offset);
    // __bpf_perf_event_output: event->oncpu is -1 while disabled, else the event's CPU.
    if (!s.enabled.load(std::memory_order_relaxed) || s.cpu != cpu) return -EOPNOTSUPP;
    uint32_t pages = s.data_pages.load(std::memory_order_acquire);
    // No ring (never mapped, or mapped without data pages: the kernel's paused ring): dropped
    // without being counted, as perf_output_begin does.
    if (pages == unmapped || pages == 0) return -ENOSPC;
    bool raw = s.sample_type & PERF_SAMPLE_RAW;
    uint64_t raw_bytes = meta.size() + uint64_t(ctx_size);
    // perf_prepare_sample: the u32 size and the data, rounded up to 8 bytes together.
    uint64_t body = raw ? ((raw_bytes + 4 + 7) & ~uint64_t(7)) : 0;
    uint64_t record = sizeof(perf_event_header) + body;
    // The header's size is a u16; XDP frames (at most a page) and stack data never get there.
    if (record > UINT16_MAX) return -E2BIG;

    auto* user = reinterpret_cast<perf_event_mmap_page*>(_base);
    std::byte* data = _base + page_bytes;
    uint64_t size = uint64_t(pages) * page_bytes;
    spin_guard g(s.lock);
    uint64_t need = record + (s.lost ? sizeof(lost_record) : 0);
    uint64_t head = s.head;
    if (!s.overwrite.load(std::memory_order_relaxed)) {
        uint64_t tail = std::atomic_ref<__u64>(user->data_tail).load(std::memory_order_acquire);
        // ring_buffer_has_space: CIRC_SPACE keeps one byte free.
        if (((tail - (head + 1)) & (size - 1)) < need) {
            ++s.lost;
            s.lost_samples.fetch_add(1, std::memory_order_relaxed);
            return -ENOSPC;
        }
    }
    uint64_t pos = head;
    auto put = [&](const void* src, size_t n) {
        size_t at = size_t(pos & (size - 1));
        size_t first = std::min<size_t>(n, size_t(size) - at);
        if (src) {
            std::memcpy(data + at, src, first);
            std::memcpy(data, static_cast<const std::byte*>(src) + first, n - first);
        } else {
            std::memset(data + at, 0, first);
            std::memset(data, 0, n - first);
        }
        pos += n;
    };
    if (s.lost) {
        lost_record l{{PERF_RECORD_LOST, 0, uint16_t(sizeof(lost_record))}, s.id, s.lost};
        put(&l, sizeof l);
        s.lost = 0;
    }
    perf_event_header h{PERF_RECORD_SAMPLE, PERF_RECORD_MISC_KERNEL, uint16_t(record)};
    put(&h, sizeof h);
    if (raw) {
        uint32_t raw_size = uint32_t(body - 4);
        put(&raw_size, 4);
        put(meta.data(), meta.size());
        put(ctx, ctx_size);
        put(nullptr, body - 4 - raw_bytes);
    }
    s.head = head + need;
    // perf_output_put_handle: the records are visible before the head that covers them.
    std::atomic_ref<__u64>(user->data_head).store(s.head, std::memory_order_release);
    return 0;
}

bool is_event(int fd) {
    int saved = errno;
    struct stat st;
    uint64_t magic = 0;
    bool yes = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && size_t(st.st_size) == file_bytes &&
               pread(fd, &magic, sizeof magic, state_offset) == ssize_t(sizeof magic) && magic == state::magic_value;
    errno = saved;
    return yes;
}

result<void> prepare_mmap(int fd, size_t len, int prot, int flags, off_t offset) {
    // perf_mmap: a shared mapping; offset 0 is the user page and the data (other offsets are the
    // AUX area, which a BPF output event never has).
    if ((flags & MAP_TYPE) != MAP_SHARED && (flags & MAP_TYPE) != MAP_SHARED_VALIDATE)
        return fail(EINVAL, "perf event: a ring is mapped MAP_SHARED");
    if (offset != 0) return fail(EINVAL, "perf event: no AUX area at offset {}", offset);
    size_t total = (len + page_bytes - 1) / page_bytes;
    if (total == 0) return {};  // mmap refuses a zero length itself
    size_t n = total - 1;
    if (n != 0 && !std::has_single_bit(n)) return fail(EINVAL, "perf event: {} data pages is not a power of 2", n);
    if (n > max_data_pages) return fail(EPERM, "perf event: {} data pages above xdprt's limit of {}", n, max_data_pages);
    state_mapping m(fd);
    state* s = m.get();
    if (!s) return fail(errno, "perf event: mapping its state: {}", strerror(errno));
    uint32_t expected = unmapped;
    if (!s->data_pages.compare_exchange_strong(expected, uint32_t(n), std::memory_order_acq_rel)) {
        if (expected != n) return fail(EINVAL, "perf event: mapped with {} data pages before, not {}", expected, n);
        return {};
    }
    s->overwrite.store((prot & PROT_WRITE) ? 0 : 1, std::memory_order_relaxed);
    // perf_event_init_userpage.
    perf_event_mmap_page fields{};
    fields.cap_bit0_is_deprecated = 1;
    fields.size = offsetof(perf_event_mmap_page, __reserved);
    if (pwrite(fd, &fields.capabilities, sizeof fields.capabilities, offsetof(perf_event_mmap_page, capabilities)) < 0 ||
        pwrite(fd, &fields.size, sizeof fields.size, offsetof(perf_event_mmap_page, size)) < 0)
        return fail(errno, "perf event: user page: {}", strerror(errno));
    uint64_t geometry[2] = {page_bytes, uint64_t(n) * page_bytes};  // data_offset, data_size
    if (pwrite(fd, geometry, sizeof geometry, offsetof(perf_event_mmap_page, data_offset)) < 0)
        return fail(errno, "perf event: user page: {}", strerror(errno));
    return {};
}

result<void> set_enabled(int fd, bool enabled) {
    state_mapping m(fd);
    if (!m.get()) return fail(errno, "perf event: mapping its state: {}", strerror(errno));
    m.get()->enabled.store(enabled ? 1 : 0, std::memory_order_release);
    return {};
}

result<uint64_t> id_of(int fd) {
    uint64_t id;
    if (pread(fd, &id, sizeof id, state_offset + off_t(offsetof(state, id))) != ssize_t(sizeof id))
        return fail(EBADF, "perf event: reading its id: {}", strerror(errno));
    return id;
}

}  // namespace xdprt::perf
