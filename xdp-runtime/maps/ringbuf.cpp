// RINGBUF (kernel/bpf/ringbuf.c): a multi-producer, single-consumer byte ring, laid out in the
// memfd as libbpf expects from a kernel ringbuf fd it mmaps:
//   [0, 4K)            consumer page: consumer_pos (u64), written by the consumer
//   [4K, 8K)           producer page: producer_pos (u64), then this file's pending_pos and size
//   [8K, 8K + N)       data: records at 8-byte aligned positions (position & (N - 1))
//   [8K + N, 8K + 2N)  overflow: the continuation of the one record that crosses the end
//   then the map_header page.
// A record is the kernel's 8-byte header {u32 len (BPF_RINGBUF_BUSY_BIT while reserved,
// BPF_RINGBUF_DISCARD_BIT when discarded), u32 pg_off} and the sample, padded to 8 bytes.
//
// Wrapping. The kernel maps the data pages twice in a row, so a record that crosses the end
// reads as one contiguous run (and libbpf maps 4K + 2N bytes from offset 4K to get the same). A
// memfd cannot alias its own pages, so the file carries that second copy instead: a record is
// always written contiguously from its position, running into the overflow area past the end,
// and on submit the overflowing bytes are also copied to the start of the data area. Readers
// that read contiguously (libbpf, ringbuf_consume, any process mapping the memfd) and readers
// that wrap by mask both see the whole record. The copy happens once per lap of the ring; the
// next record starts after the wrapped bytes, so nothing else lives there until it is consumed.
// This keeps one plain mapping of the memfd per process, the same as every other map type.
//
// Concurrency, as in the kernel: reserve takes the map's writer lock (the kernel's spinlock) to
// advance producer_pos; submit/discard publish the header with one atomic exchange, no lock.
// pending_pos (the oldest record still reserved) keeps a producer from reusing space a consumer
// skipped past while a record there is still being written (the kernel's fix of 6.10).
//
// Trust: submit finds the ring from the record header's pg_off, as the kernel does. Any
// process holding the memfd can write the consumer page and data; they are trusted (the
// kernel maps the data read-only to consumers, a memfd cannot).
#include <bit>

#include "maps/types.h"

namespace xdprt::maps {

namespace {

constexpr size_t page = 4096;
constexpr size_t data_offset = 2 * page;
constexpr uint64_t hdr_bytes = BPF_RINGBUF_HDR_SZ;
constexpr uint64_t max_record = UINT32_MAX / 4;  // RINGBUF_MAX_RECORD_SZ
constexpr uint32_t flag_bits = BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT;

struct consumer_page {
    std::atomic<uint64_t> consumer_pos;
};

struct producer_page {
    std::atomic<uint64_t> producer_pos;  // libbpf reads this word only
    uint64_t pending_pos;                // writer lock
    uint64_t size;                       // N, for submit, which has only the record
};

struct record_header {
    std::atomic<uint32_t> len;
    uint32_t pg_off;  // pages from the start of the memfd to this header's page
};
static_assert(sizeof(record_header) == hdr_bytes);

// A view of one ring from its first byte.
struct ring {
    std::byte* base;

    consumer_page& cons() const { return *reinterpret_cast<consumer_page*>(base); }
    producer_page& prod() const { return *reinterpret_cast<producer_page*>(base + page); }
    std::byte* data() const { return base + data_offset; }
    uint64_t size() const { return prod().size; }
    uint64_t mask() const { return size() - 1; }
    record_header& at(uint64_t pos) const { return *reinterpret_cast<record_header*>(data() + (pos & mask())); }
};

uint64_t record_bytes(uint64_t sample) { return (sample + hdr_bytes + 7) & ~uint64_t(7); }

// ringbuf_map_alloc's checks.
result<void> ringbuf_check(const spec& s) {
    if (s.flags & ~uint32_t(BPF_F_NUMA_NODE)) return fail(EINVAL, "ringbuf: flags {:#x}", s.flags);
    if (s.key_size || s.value_size || !std::has_single_bit(s.max_entries) || s.max_entries % page)
        return fail(EINVAL, "ringbuf: key_size and value_size 0, max_entries a power of 2 multiple of {}", page);
    return {};
}

size_t ringbuf_bytes(const spec& s) { return data_offset + 2 * size_t(s.max_entries); }

result<void> ringbuf_init(map& m) {
    new (m.base()) consumer_page{};
    new (m.base() + page) producer_page{{0}, 0, m.spec().max_entries};
    return {};
}

void* reserve(map& m, uint64_t size) noexcept {
    if (size > max_record) return nullptr;
    uint64_t len = record_bytes(size);
    ring r{m.base()};
    if (len > r.size()) return nullptr;
    uint64_t cons = r.cons().consumer_pos.load(std::memory_order_acquire);
    writer_guard g(m.header());
    producer_page& p = r.prod();
    uint64_t prod = p.producer_pos.load(std::memory_order_relaxed), pend = p.pending_pos;
    // Advance pending_pos over records already submitted or discarded.
    while (pend < prod) {
        uint32_t l = r.at(pend).len.load(std::memory_order_acquire);
        if (l & BPF_RINGBUF_BUSY_BIT) break;
        pend += record_bytes(l & ~uint32_t(BPF_RINGBUF_DISCARD_BIT));
    }
    p.pending_pos = pend;
    // Neither the consumer's unread data nor a record still being written may be overrun.
    uint64_t next = prod + len;
    if (next - cons > r.mask() || next - pend > r.mask()) return nullptr;
    record_header& h = r.at(prod);
    h.pg_off = uint32_t((reinterpret_cast<std::byte*>(&h) - m.base()) / page);
    h.len.store(uint32_t(size) | BPF_RINGBUF_BUSY_BIT, std::memory_order_relaxed);
    p.producer_pos.store(next, std::memory_order_release);  // pairs with the consumer's acquire
    return &h + 1;
}

void commit(void* sample, bool discard) noexcept {
    auto* h = static_cast<record_header*>(sample) - 1;
    auto* hb = reinterpret_cast<std::byte*>(h);
    ring r{reinterpret_cast<std::byte*>(reinterpret_cast<uintptr_t>(hb) & ~uintptr_t(page - 1)) - size_t(h->pg_off) * page};
    uint32_t size = h->len.load(std::memory_order_relaxed) & ~uint32_t(flag_bits);
    if (!discard) {
        // The part that ran past the end of the data area goes to its start as well.
        uint64_t end = uint64_t(hb - r.data()) + hdr_bytes + size;
        if (end > r.size()) std::memcpy(r.data(), r.data() + r.size(), end - r.size());
    }
    h->len.exchange(size | (discard ? uint32_t(BPF_RINGBUF_DISCARD_BIT) : 0u), std::memory_order_acq_rel);
}

// What ringbuf.c answers for the element operations: ENOTSUPP.
void* ringbuf_lookup(map&, const void*) noexcept { return nullptr; }
long ringbuf_update(map&, const void*, const void*, uint64_t) noexcept { return -enotsupp; }
long ringbuf_erase(map&, const void*) noexcept { return -enotsupp; }
result<void> ringbuf_copy_out(map&, const void*, void*, uint64_t) { return fail(enotsupp, "ringbuf: no elements"); }
result<void> ringbuf_store(map&, const void*, const void*, uint64_t) { return fail(enotsupp, "ringbuf: no elements"); }
result<void> ringbuf_remove(map&, const void*) { return fail(enotsupp, "ringbuf: no elements"); }
result<void> ringbuf_next_key(map&, const void*, void*) { return fail(enotsupp, "ringbuf: no keys"); }

}  // namespace

void* ringbuf_reserve(map& m, uint64_t size, uint64_t flags) noexcept {
    if (flags) return nullptr;
    return reserve(m, size);
}

void ringbuf_submit(void* sample, uint64_t) noexcept { commit(sample, false); }
void ringbuf_discard(void* sample, uint64_t) noexcept { commit(sample, true); }

long ringbuf_output(map& m, const void* data, uint64_t size, uint64_t flags) noexcept {
    if (flags & ~uint64_t(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) return -EINVAL;
    void* rec = reserve(m, size);
    if (!rec) return -EAGAIN;
    std::memcpy(rec, data, size);
    commit(rec, false);
    return 0;
}

uint64_t ringbuf_query(map& m, uint64_t flag) noexcept {
    ring r{m.base()};
    switch (flag) {
    case BPF_RB_AVAIL_DATA:
        return r.prod().producer_pos.load(std::memory_order_acquire) - r.cons().consumer_pos.load(std::memory_order_acquire);
    case BPF_RB_RING_SIZE: return r.size();
    case BPF_RB_CONS_POS: return r.cons().consumer_pos.load(std::memory_order_acquire);
    case BPF_RB_PROD_POS: return r.prod().producer_pos.load(std::memory_order_acquire);
    default: return 0;
    }
}

size_t ringbuf_consume(map& m, const std::function<void(std::span<const std::byte>)>& fn) {
    // libbpf's ringbuf_process_ring: stop at the first record still reserved; release each
    // record's space as soon as it is read.
    ring r{m.base()};
    uint64_t cons = r.cons().consumer_pos.load(std::memory_order_acquire);
    size_t n = 0;
    for (bool progress = true; progress;) {
        progress = false;
        uint64_t prod = r.prod().producer_pos.load(std::memory_order_acquire);
        while (cons < prod) {
            record_header& h = r.at(cons);
            uint32_t l = h.len.load(std::memory_order_acquire);
            if (l & BPF_RINGBUF_BUSY_BIT) return n;
            uint32_t size = l & ~uint32_t(flag_bits);
            if (!(l & BPF_RINGBUF_DISCARD_BIT)) {
                fn({reinterpret_cast<const std::byte*>(&h + 1), size});
                ++n;
            }
            cons += record_bytes(size);
            r.cons().consumer_pos.store(cons, std::memory_order_release);
            progress = true;
        }
    }
    return n;
}

const ops ringbuf_ops = {
    .name = "ringbuf",
    .check = ringbuf_check,
    .data_bytes = ringbuf_bytes,
    .init = ringbuf_init,
    .lookup = ringbuf_lookup,
    .update = ringbuf_update,
    .erase = ringbuf_erase,
    .push = nullptr, .pop = nullptr, .peek = nullptr,
    .copy_out = ringbuf_copy_out,
    .store = ringbuf_store,
    .remove = ringbuf_remove,
    .next_key = ringbuf_next_key,
    .lookup_and_delete = nullptr,
    .store_object = nullptr,
};

}  // namespace xdprt::maps
