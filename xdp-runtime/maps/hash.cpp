// HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH, HASH_OF_MAPS, DEVMAP_HASH: one chained hash table.
//
// Memory (offsets from the map's base):
//   [0]              buckets: n_buckets chain heads (a power of two >= max_entries)
//   [elems_offset]   n_elems fixed-size elements: elem header, key (rounded to 8), value(s)
// A chain link is (index << 1), or a "nulls" end marker (bucket << 1 | 1) naming the bucket whose
// chain it ends, as the kernel's hlist_nulls: a lock-free reader that ends on another bucket's
// marker was moved by a concurrent reuse and restarts.
//
// Writers (program updates, syscalls, and clients writing through a view) hold the map's writer
// lock. Readers never lock:
//   - programs (lookup): the element stays valid until the program's thread passes a quiescent
//     point, because unlinked elements wait on the retired list for qsbr::safe().
//   - userspace copies (copy_out): validated by the element's sequence counter (odd while it is
//     rewritten) and the nulls marker, so they are safe from any process without registering.
// An update of an existing key links a new element in the old one's place (readers see the old or
// the new value, never a mix), except per-CPU values and BPF_F_LOCK updates, which are copied in
// place as the kernel does.
//
// Reclamation across processes: a writer in another process (maps::view, the preload shim) cannot
// tell when the appliance's readers are done with what it unlinks, so it retires elements with
// the pending tag and never reclaims. The appliance's writer stamps pending elements with an epoch
// of its own when reclaim() meets them (the unlink happened before: the writer lock orders them),
// and they are reused once its readers have passed a quiescent point after that.
//
// Capacity: max_entries live elements, as the kernel counts them; the pool has slack beyond that for
// elements waiting out a grace period. LRU types evict with a CLOCK sweep over the pool when full:
// program lookups set a reference bit (only if clear, so hot entries cost no write), the sweep
// clears set bits and evicts the first element found clear, an approximation of least recently
// used like the kernel's (which is per-CPU-list based and also approximate). When every spare
// element is still in a grace period (a reader stalled), an insert or replace answers ENOMEM
// and evicts nothing: the kernel reuses elements at once, xdprt keeps returned pointers valid.
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "maps/qsbr.h"
#include "maps/types.h"

namespace xdprt::maps {

namespace {

constexpr uint32_t hash_flags = BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | access_mask | BPF_F_ZERO_SEED;
constexpr uint32_t no_elem = 0;  // list heads: index + 1, 0 for none
constexpr uint32_t max_htab_entries = 1u << 27;
constexpr uint64_t pending_tag = UINT64_MAX;  // retired by another process: not yet stamped

enum elem_state : uint8_t { state_free, state_live, state_retired };

struct elem {
    std::atomic<uint32_t> next;  // chain link
    uint32_t hash;
    std::atomic<uint32_t> seq;   // odd while the element is written
    std::atomic<uint8_t> ref;    // LRU reference bit
    uint8_t state;
    uint16_t unused;
    uint64_t retired_tag;        // qsbr tag while retired
    uint32_t list_next;          // free / retired list link (index + 1)
    uint32_t unused2;
};
static_assert(sizeof(elem) == 32);

// type_state slots in the header.
enum state_slot { s_count, s_free, s_retired_head, s_retired_tail, s_clock, s_buckets, s_elems, s_seed,
                  s_elem_size, s_key_bytes, s_elems_offset, s_fresh };

bool is_lru(uint32_t t) { return t == BPF_MAP_TYPE_LRU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH; }
bool is_pcpu(uint32_t t) { return t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH; }
bool holds_objects(uint32_t t) { return t == BPF_MAP_TYPE_HASH_OF_MAPS || t == BPF_MAP_TYPE_DEVMAP_HASH; }

uint64_t pow2_at_least(uint64_t n) {
    uint64_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

// Stored value bytes per element.
size_t value_bytes(const spec& s) {
    if (holds_objects(s.type)) return 16;  // {u32 id or ifindex, u32 prog id, u64 object pointer}
    return round8(s.value_size) * (is_pcpu(s.type) ? possible_cpus() : 1);
}
size_t n_elems_for(const spec& s) { return size_t(s.max_entries) + 256 + s.max_entries / 8; }
size_t elem_bytes_for(const spec& s) { return sizeof(elem) + round8(s.key_size) + value_bytes(s); }
// One bucket per entry, rounded up to a power of two, as the kernel sizes them, but at most
// max_htab_entries: every bucket head is written at creation (its end marker), so DEVMAP_HASH's
// 2^31 entries would otherwise touch 8 GiB before the first element. Longer chains in a map that
// holds more than 2^27 elements are the price.
size_t buckets_for(const spec& s) { return std::min<size_t>(pow2_at_least(s.max_entries), max_htab_entries); }
size_t elems_offset_for(const spec& s) { return (buckets_for(s) * 4 + 63) & ~size_t(63); }

inline uint64_t load64(const std::byte* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}
inline uint64_t load32(const std::byte* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Key equality without a call to memcmp (keys are short: Katran's flow key is 40 bytes), in
// 8-byte words, the last one overlapping the previous when the size is not a multiple of 8.
// Inlined with a constant size (the lookups specialized per key size), it unrolls.
[[gnu::always_inline]] inline bool same_key(const std::byte* stored, const void* key, size_t n) {
    const auto* k = static_cast<const std::byte*>(key);
    if (n >= 8) {
        uint64_t diff = 0;
        size_t i = 0;
        for (; i + 8 <= n; i += 8) diff |= load64(stored + i) ^ load64(k + i);
        if (i < n) diff |= load64(stored + n - 8) ^ load64(k + n - 8);
        return diff == 0;
    }
    if (n >= 4) return ((load32(stored) ^ load32(k)) | (load32(stored + n - 4) ^ load32(k + n - 4))) == 0;
    for (size_t i = 0; i < n; ++i)
        if (stored[i] != k[i]) return false;
    return true;
}

// 64 x 64 -> 128-bit product, its halves xored: the hash's mixing step.
inline uint64_t mul_fold(uint64_t a, uint64_t b) {
    unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
    return uint64_t(p) ^ uint64_t(p >> 64);
}

// The bucket hash of an n-byte key under the map's seed. The key is taken 16 bytes at a time
// (the last block overlapping the previous one when n is not a multiple of 16; a map's key size
// is fixed); each block's two words, xored with seed-derived secrets that differ per block, are
// multiplied into 128 bits and folded; the blocks' products are xored, and one more multiply
// mixes the result. The blocks' multiplies are independent of each other, so a 40-byte key costs
// little more than an 8-byte one (a chain of multiplies over the words cost 3x as much).
[[gnu::always_inline]] inline uint32_t hash_key(const std::byte* p, size_t n, uint64_t seed) {
    constexpr uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull, k2 = 0x8ebc6af09c88c6e3ull,
                       k3 = 0x589965cc75374cc3ull;
    const uint64_t sa = seed ^ k0, sb = seed ^ k1;
    uint64_t h;
    if (n <= 16) {
        uint64_t a = 0, b = 0;
        if (n >= 8) a = load64(p), b = load64(p + n - 8);
        else if (n >= 4) a = load32(p), b = load32(p + n - 4);
        else if (n) a = uint64_t(p[0]) << 16 | uint64_t(p[n / 2]) << 8 | uint64_t(p[n - 1]);
        h = mul_fold(a ^ sa, b ^ sb);
    } else {
        h = 0;
        size_t i = 0, j = 0;
        for (; i + 16 < n; i += 16, ++j) h ^= mul_fold(load64(p + i) ^ (sa + j * k2), load64(p + i + 8) ^ (sb + j * k3));
        h ^= mul_fold(load64(p + n - 16) ^ (sa + j * k2), load64(p + n - 8) ^ (sb + j * k3));
    }
    h = mul_fold(h ^ k2, k3 ^ n);
    return uint32_t(h ^ (h >> 32));
}

// A view of one table, cached per call from the header.
struct table {
    map& m;
    map_header& h;
    std::atomic<uint32_t>* buckets;
    std::byte* elems;
    uint64_t n_buckets, n_elems, elem_size, key_bytes, seed;

    explicit table(map& mm)
        : m(mm), h(mm.header()), buckets(reinterpret_cast<std::atomic<uint32_t>*>(mm.base())),
          elems(mm.base() + h.type_state[s_elems_offset]), n_buckets(h.type_state[s_buckets]),
          n_elems(h.type_state[s_elems]), elem_size(h.type_state[s_elem_size]),
          key_bytes(h.type_state[s_key_bytes]), seed(h.type_state[s_seed]) {}

    elem& at(uint32_t i) const { return *reinterpret_cast<elem*>(elems + size_t(i) * elem_size); }
    uint32_t index(const elem& e) const { return uint32_t((reinterpret_cast<const std::byte*>(&e) - elems) / elem_size); }
    std::byte* key(elem& e) const { return reinterpret_cast<std::byte*>(&e + 1); }
    std::byte* value(elem& e) const { return key(e) + key_bytes; }
    uint32_t key_size() const { return m.spec().key_size; }

    uint32_t hash(const void* k) const { return hash_key(static_cast<const std::byte*>(k), key_size(), seed); }
    std::atomic<uint32_t>& bucket(uint32_t hash) const { return buckets[hash & (n_buckets - 1)]; }
    static bool is_end(uint32_t link) { return link & 1; }
    uint32_t end_marker(uint32_t hash) const { return uint32_t((hash & (n_buckets - 1)) << 1 | 1); }

    // Program-side lookup: no lock, no write (QSBR keeps what it returns valid). `n` is the key
    // size, a constant where the lookup is specialized for it.
    [[gnu::always_inline]] elem* find(const void* k, uint32_t hash, size_t n) const {
        for (uint32_t l = bucket(hash).load(std::memory_order_acquire); !is_end(l);) {
            elem& e = at(l >> 1);
            if (e.hash == hash && same_key(key(e), k, n)) return &e;
            l = e.next.load(std::memory_order_acquire);
        }
        return nullptr;
    }
    elem* find(const void* k, uint32_t hash) const { return find(k, hash, key_size()); }

    // Writer-side lookup: also the link that points at the element.
    elem* find_linked(const void* k, uint32_t hash, std::atomic<uint32_t>** link) const {
        std::atomic<uint32_t>* at_link = &bucket(hash);
        for (uint32_t l = at_link->load(std::memory_order_relaxed); !is_end(l);) {
            elem& e = at(l >> 1);
            if (e.hash == hash && same_key(key(e), k, key_size())) {
                *link = at_link;
                return &e;
            }
            at_link = &e.next;
            l = e.next.load(std::memory_order_relaxed);
        }
        return nullptr;
    }

    std::atomic<uint64_t>& count() const { return *reinterpret_cast<std::atomic<uint64_t>*>(&h.type_state[s_count]); }

    // Moves retired elements whose grace period ended to the free list. Writer lock held. Not in
    // another process (foreign), whose QSBR domain does not know the appliance's readers.
    void reclaim() {
        if (m.foreign()) return;
        uint64_t safe_to = qsbr::process().horizon();  // one slot scan for the whole list
        while (uint32_t r = uint32_t(h.type_state[s_retired_head])) {
            elem& e = at(r - 1);
            if (e.retired_tag == pending_tag) {
                stamp_pending(e);
                safe_to = qsbr::process().horizon();
            }
            if (e.retired_tag > safe_to) break;
            h.type_state[s_retired_head] = e.list_next;
            if (e.list_next == no_elem) h.type_state[s_retired_tail] = no_elem;
            e.state = state_free;
            e.list_next = uint32_t(h.type_state[s_free]);
            h.type_state[s_free] = r;
        }
    }

    elem* alloc() {
        if (h.type_state[s_free] == no_elem) reclaim();
        uint32_t f = uint32_t(h.type_state[s_free]);
        if (f == no_elem) return nullptr;
        elem& e = at(f - 1);
        h.type_state[s_free] = e.list_next;
        return &e;
    }

    // Gives `first` and every pending element after it on the retired list one epoch of this
    // process: they were unlinked before this writer took the lock.
    void stamp_pending(elem& first) {
        const uint64_t stamp = qsbr::process().retire();
        for (elem* e = &first;; e = &at(e->list_next - 1)) {
            if (e->retired_tag == pending_tag) e->retired_tag = stamp;
            if (e->list_next == no_elem) break;
        }
    }

    void retire(elem& e) {
        e.state = state_retired;
        e.retired_tag = m.foreign() ? pending_tag : qsbr::process().retire();
        e.list_next = no_elem;
        uint32_t self = index(e) + 1;
        if (uint32_t t = uint32_t(h.type_state[s_retired_tail])) at(t - 1).list_next = self;
        else h.type_state[s_retired_head] = self;
        h.type_state[s_retired_tail] = self;
    }

    // Unlinks `e` (reached through `link`) and retires it. Writer lock held.
    void unlink(elem& e, std::atomic<uint32_t>* link) {
        link->store(e.next.load(std::memory_order_relaxed), std::memory_order_release);
        count().fetch_sub(1, std::memory_order_relaxed);
        retire(e);
    }

    // Fills a fresh element (seq makes concurrent userspace copies of a reused element retry).
    void fill(elem& e, const void* k, uint32_t hash) {
        // odd: being written. Plain load and store, no locked RMW: only writers, serialized by
        // the writer lock, change seq.
        e.seq.store(e.seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        e.hash = hash;
        std::memcpy(key(e), k, key_size());
        e.ref.store(0, std::memory_order_relaxed);
        e.state = state_live;
    }
    void publish(elem& e) { e.seq.store(e.seq.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

    // LRU: evicts one element found by the CLOCK sweep. Writer lock held.
    bool evict_one() {
        uint64_t hand = h.type_state[s_clock];
        for (uint64_t step = 0; step < 2 * n_elems; ++step, hand = (hand + 1) % n_elems) {
            elem& e = at(uint32_t(hand));
            if (e.state != state_live) continue;
            if (e.ref.load(std::memory_order_relaxed)) {
                e.ref.store(0, std::memory_order_relaxed);
                continue;
            }
            std::atomic<uint32_t>* link = nullptr;
            if (find_linked(key(e), e.hash, &link) != &e) continue;
            unlink(e, link);
            h.type_state[s_clock] = (hand + 1) % n_elems;
            return true;
        }
        return false;
    }
};

// A syscall-side writer that gave up on the lock (writer_guard): who holds it.
result<void> busy(const writer_guard& g) {
    if (g.holder() & client_writer)
        return fail(EBUSY, "the map's writer lock is held by process {}, which does not let go", g.holder() & ~client_writer);
    return fail(EBUSY, "the map's writer lock is held by the appliance");
}

struct held_refs {
    std::mutex lock;
    std::unordered_map<uint32_t, std::shared_ptr<void>> by_elem;  // element index -> reference
};

result<void> hash_check(const spec& s) {
    bool lru = is_lru(s.type), percpu = is_pcpu(s.type);
    if ((s.flags & ~hash_flags) || !access_ok(s.flags))
        return fail(EINVAL, "{}: unknown flags {:#x}", type_name(s.type), s.flags);
    if (!lru && (s.flags & BPF_F_NO_COMMON_LRU)) return fail(EINVAL, "{}: NO_COMMON_LRU is for LRU maps", type_name(s.type));
    if (lru && (s.flags & BPF_F_NO_PREALLOC)) return fail(enotsupp, "{}: LRU maps are always preallocated", type_name(s.type));
    if ((s.flags & BPF_F_NUMA_NODE) && (percpu || (s.flags & BPF_F_NO_COMMON_LRU)))
        return fail(EINVAL, "{}: NUMA_NODE with per-CPU storage", type_name(s.type));
    if (s.max_entries == 0 || s.key_size == 0 || s.value_size == 0)
        return fail(EINVAL, "{}: key_size, value_size and max_entries must be non-zero", type_name(s.type));
    // htab_map_alloc_check on 6.18: only key and value together are bounded (a kmalloc'ed
    // element with its 48-byte header); checked against the running kernel.
    if (uint64_t(s.key_size) + s.value_size >= kmalloc_max_size - 48)
        return fail(E2BIG, "{}: key and value together too large", type_name(s.type));
    if (percpu && round8(s.value_size) > pcpu_min_unit_size)
        return fail(E2BIG, "{}: value_size {} above {}", type_name(s.type), s.value_size, pcpu_min_unit_size);
    if (s.type == BPF_MAP_TYPE_HASH_OF_MAPS) {
        if (s.value_size != 4) return fail(EINVAL, "hash_of_maps: value_size must be 4 (an fd)");
        if (!s.inner) return fail(EBADF, "hash_of_maps: no inner map fd");
    }
    if (s.type == BPF_MAP_TYPE_DEVMAP_HASH) {
        if (s.key_size != 4 || (s.value_size != 4 && s.value_size != 8) ||
            (s.flags & ~uint32_t(BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY)))
            return fail(EINVAL, "devmap_hash: key_size 4, value_size 4 or 8");
    }
    if (s.type == BPF_MAP_TYPE_DEVMAP_HASH) {
        if (s.max_entries > (1u << 31)) return fail(EINVAL, "devmap_hash: max_entries {} too large", s.max_entries);
    } else if (s.max_entries > max_htab_entries) {
        // htab_map_alloc: the bucket array (16-byte buckets) must stay below 4 GiB.
        return fail(E2BIG, "{}: max_entries {} above {}", type_name(s.type), s.max_entries, max_htab_entries);
    }
    if (n_elems_for(s) >= (1ull << 31)) return fail(E2BIG, "{}: max_entries {} too large", type_name(s.type), s.max_entries);
    return {};
}

size_t hash_bytes(const spec& s) { return elems_offset_for(s) + n_elems_for(s) * elem_bytes_for(s); }

result<void> hash_init(map& m) {
    const spec& s = m.spec();
    map_header& h = m.header();
    h.type_state[s_buckets] = buckets_for(s);
    h.type_state[s_elems] = n_elems_for(s);
    h.type_state[s_elem_size] = elem_bytes_for(s);
    h.type_state[s_key_bytes] = round8(s.key_size);
    h.type_state[s_elems_offset] = elems_offset_for(s);
    uint64_t seed = 0;
    if (!(s.flags & BPF_F_ZERO_SEED)) seed = (uint64_t(std::random_device{}()) << 32) | std::random_device{}();
    h.type_state[s_seed] = seed;
    table t(m);
    for (uint64_t b = 0; b < t.n_buckets; ++b) t.buckets[b].store(uint32_t(b << 1 | 1), std::memory_order_relaxed);
    // The free list is built lazily in index order: a fresh element is one never handed out, so
    // pages of a huge map are touched only as it fills.
    h.type_state[s_free] = no_elem;
    h.type_state[s_clock] = 0;
    h.type_state[s_fresh] = 0;  // next never-used element
    if (holds_objects(s.type)) m.set_local(std::make_shared<held_refs>());
    return {};
}

elem* take(table& t) {
    if (elem* e = t.alloc()) return e;
    uint64_t& fresh = t.h.type_state[s_fresh];
    if (fresh < t.n_elems) return &t.at(uint32_t(fresh++));
    return nullptr;
}

std::byte* this_cpu_value(table& t, elem& e) {
    std::byte* v = t.value(e);
    if (is_pcpu(t.m.type())) v += size_t(this_cpu) * round8(t.m.spec().value_size);
    return v;
}

// The one insert/replace path. `write` fills a fresh element's value; `write_in_place` updates a
// live one where the kernel does so (per-CPU, BPF_F_LOCK). Writer lock held. Returns 0 or -errno.
template <class Write, class InPlace>
long upsert(table& t, const void* key, uint64_t flags, Write write, InPlace write_in_place) {
    uint64_t f = flags & ~uint64_t(BPF_F_LOCK);
    if (!update_flags_ok(flags)) return -EINVAL;
    uint32_t hash = t.hash(key);
    std::atomic<uint32_t>* link = nullptr;
    elem* old = t.find_linked(key, hash, &link);
    if (old && f == BPF_NOEXIST) return -EEXIST;
    if (!old && f == BPF_EXIST) return -ENOENT;
    const spec& s = t.m.spec();
    if (old && (is_pcpu(s.type) || (flags & BPF_F_LOCK))) {
        write_in_place(*old);
        return 0;
    }
    bool full = !old && t.count().load(std::memory_order_relaxed) >= s.max_entries;
    if (full && !is_lru(s.type)) return -E2BIG;
    // Everything spare may still be in a grace period. Evicting a live element would not help
    // (it waits out the same grace period), so LRU maps evict only to stay within max_entries,
    // once a spare element is in hand.
    elem* e = take(t);
    if (!e) return -ENOMEM;
    if (full) t.evict_one();  // cannot fail: the map holds max_entries live elements
    t.fill(*e, key, hash);
    write(*e);
    t.publish(*e);
    if (old) {
        e->next.store(old->next.load(std::memory_order_relaxed), std::memory_order_relaxed);
        link->store(t.index(*e) << 1, std::memory_order_release);
        t.retire(*old);
    } else {
        std::atomic<uint32_t>& b = t.bucket(hash);
        e->next.store(b.load(std::memory_order_relaxed), std::memory_order_relaxed);
        b.store(t.index(*e) << 1, std::memory_order_release);
        t.count().fetch_add(1, std::memory_order_relaxed);
    }
    return 0;
}

// The program-side lookup; KeySize 0: the map's, read from its header, else that constant (the
// lookups choose_lookup() picks for common key sizes).
template <uint32_t KeySize>
void* hash_lookup_sized(map& m, const void* key) noexcept {
    table t(m);
    const size_t n = KeySize ? KeySize : t.key_size();
    elem* e = t.find(key, hash_key(static_cast<const std::byte*>(key), n, t.seed), n);
    if (!e) return nullptr;
    if (is_lru(m.type()) && !e->ref.load(std::memory_order_relaxed)) e->ref.store(1, std::memory_order_relaxed);
    if (m.type() == BPF_MAP_TYPE_HASH_OF_MAPS) {
        void* p;
        std::memcpy(&p, t.value(*e) + 8, sizeof p);
        return p;
    }
    return this_cpu_value(t, *e);
}

void* hash_lookup(map& m, const void* key) noexcept { return hash_lookup_sized<0>(m, key); }

long hash_update(map& m, const void* key, const void* value, uint64_t flags) noexcept {
    if (holds_objects(m.type())) return -EOPNOTSUPP;
    if ((flags & BPF_F_LOCK) && m.spec().spin_lock_off < 0) return -EINVAL;
    table t(m);
    writer_guard g(t.m, lock_wait::program);
    if (!g.held()) return -EBUSY;
    auto write = [&](elem& e) {
        std::byte* v = t.value(e);
        if (is_pcpu(m.type())) {
            std::memset(v, 0, value_bytes(m.spec()));  // other CPUs start at zero, as in the kernel
            v += size_t(this_cpu) * round8(m.spec().value_size);
        }
        init_value(m, v, value);
    };
    auto in_place = [&](elem& e) {
        copy_value_in(m, this_cpu_value(t, e), value, flags);
    };
    return upsert(t, key, flags, write, in_place);
}

void release_held(map& m, table& t, elem& e) {
    if (!holds_objects(m.type())) return;
    auto& refs = m.local<held_refs>();
    std::lock_guard g(refs.lock);
    auto it = refs.by_elem.find(t.index(e));
    if (it == refs.by_elem.end()) return;
    qsbr::process().defer([ref = std::move(it->second)] {});
    refs.by_elem.erase(it);
}

long erase_locked(map& m, table& t, const void* key) {
    std::atomic<uint32_t>* link = nullptr;
    elem* e = t.find_linked(key, t.hash(key), &link);
    if (!e) return -ENOENT;
    // Unlinked first: the object's release waits for the readers' quiescent points after the
    // unlink, so no reader can find it once they have passed one (the other order let a reader
    // look it up after its grace period had begun, and use it after it was freed).
    t.unlink(*e, link);
    release_held(m, t, *e);
    return 0;
}

long hash_erase(map& m, const void* key) noexcept {
    table t(m);
    writer_guard g(t.m, lock_wait::program);
    if (!g.held()) return -EBUSY;
    return erase_locked(m, t, key);
}

// A value as userspace sees it: every CPU's slot, the object's id, or the value with its lock
// word hidden (taken with BPF_F_LOCK).
void copy_elem_out(table& t, elem& e, void* out, uint64_t flags) {
    const spec& s = t.m.spec();
    if (is_pcpu(s.type)) copy_percpu_out(static_cast<std::byte*>(out), t.value(e), round8(s.value_size), s.value_size);
    else if (holds_objects(s.type)) std::memcpy(out, t.value(e), s.value_size);
    else copy_value_out(t.m, out, t.value(e), flags);
}

// Userspace copy without the lock: retries while the element is rewritten under it.
// Returns ENOENT, or EAGAIN for a view that cannot fall back to the lock.
long copy_stable(table& t, const void* key, void* out, uint64_t flags) {
    uint32_t hash = t.hash(key);
    const spec& s = t.m.spec();
    for (int attempt = 0; attempt < 1000; ++attempt) {
        bool retry = false;
        uint64_t steps = 0;
        uint32_t l = t.bucket(hash).load(std::memory_order_acquire);
        for (; !t.is_end(l) && steps++ <= t.n_elems; l = t.at(l >> 1).next.load(std::memory_order_acquire)) {
            elem& e = t.at(l >> 1);
            uint32_t s1 = e.seq.load(std::memory_order_acquire);
            if (s1 & 1) { retry = true; break; }
            if (e.hash != hash || !same_key(t.key(e), key, s.key_size)) continue;
            copy_elem_out(t, e, out, flags);
            std::atomic_thread_fence(std::memory_order_acquire);
            if (e.seq.load(std::memory_order_relaxed) != s1) { retry = true; break; }
            return 0;
        }
        if (!retry && t.is_end(l) && l == t.end_marker(hash)) return -ENOENT;
        std::this_thread::yield();
    }
    // A writer kept rewriting the chain: fall back to reading under the lock.
    if (t.m.read_only()) return -EAGAIN;
    writer_guard g(t.m);
    if (!g.held()) return -EBUSY;
    elem* e = t.find(key, hash);
    if (!e) return -ENOENT;
    copy_elem_out(t, *e, out, flags);
    return 0;
}

result<void> hash_copy_out(map& m, const void* key, void* value, uint64_t flags) {
    table t(m);
    if (long r = copy_stable(t, key, value, flags); r == -ENOENT) return fail(ENOENT, "no such key");
    else if (r == -EBUSY) return fail(EBUSY, "the map's writer lock is held and not let go");
    else if (r < 0) return fail(int(-r), "the key's chain kept changing");
    return {};
}

result<void> hash_store(map& m, const void* key, const void* value, uint64_t flags) {
    if (holds_objects(m.type())) return fail(EINVAL, "fd maps take objects: the server resolves the fd first");
    if ((flags & BPF_F_LOCK) && m.spec().spin_lock_off < 0) return fail(EINVAL, "BPF_F_LOCK on a value without a bpf_spin_lock");
    table t(m);
    auto write = [&](elem& e) {
        if (is_pcpu(m.type())) copy_percpu_in(t.value(e), static_cast<const std::byte*>(value), round8(m.spec().value_size), m.spec().value_size);
        else init_value(m, t.value(e), value);
    };
    auto in_place = [&](elem& e) {
        if (is_pcpu(m.type())) copy_percpu_in(t.value(e), static_cast<const std::byte*>(value), round8(m.spec().value_size), m.spec().value_size);
        else copy_value_in(m, t.value(e), value, flags);
    };
    long r;
    {
        writer_guard g(t.m);
        if (!g.held()) return busy(g);
        r = upsert(t, key, flags, write, in_place);
    }
    // Every spare element was waiting out a grace period (replaced and deleted elements, perhaps
    // many from a client writing through a view): a syscall may wait for one, briefly (a reader
    // stuck in a program keeps the ENOMEM); a program may not wait. Not under the writer lock: a
    // program waiting for it would never reach its quiescent point.
    if (r == -ENOMEM && !m.foreign() && qsbr::process().synchronize_for(std::chrono::milliseconds(50))) {
        writer_guard g(t.m);
        if (!g.held()) return busy(g);
        r = upsert(t, key, flags, write, in_place);
    }
    if (r < 0) return fail(int(-r), "update: {}", strerror(int(-r)));
    return {};
}

result<void> hash_store_object(map& m, const void* key, held_object obj, uint64_t flags) {
    if (flags > BPF_EXIST) return fail(EINVAL, "update flags {:#x}", flags);
    // __dev_map_hash_update_elem honours NOEXIST but not EXIST: a missing key is inserted.
    if (m.type() == BPF_MAP_TYPE_DEVMAP_HASH && flags == BPF_EXIST) flags = BPF_ANY;
    table t(m);
    writer_guard g(t.m);
    if (!g.held()) return busy(g);
    elem* written = nullptr;
    auto write = [&](elem& e) {
        uint32_t v[2] = {m.type() == BPF_MAP_TYPE_DEVMAP_HASH ? obj.extra : obj.id,
                         m.type() == BPF_MAP_TYPE_DEVMAP_HASH ? obj.id : 0};
        std::memcpy(t.value(e), v, 8);
        std::memcpy(t.value(e) + 8, &obj.ptr, sizeof obj.ptr);
        written = &e;
    };
    auto in_place = [](elem&) {};
    // The replaced element's reference goes with it, once the update has succeeded: a failed
    // update leaves the old element, which programs still reach, holding its object.
    std::atomic<uint32_t>* link = nullptr;
    elem* old = t.find_linked(key, t.hash(key), &link);
    if (long r = upsert(t, key, flags, write, in_place); r < 0) return fail(int(-r), "update: {}", strerror(int(-r)));
    if (old) release_held(m, t, *old);
    auto& refs = m.local<held_refs>();
    std::lock_guard lg(refs.lock);
    refs.by_elem[t.index(*written)] = std::move(obj.ref);
    return {};
}

result<void> hash_remove(map& m, const void* key) {
    table t(m);
    writer_guard g(t.m);
    if (!g.held()) return busy(g);
    if (erase_locked(m, t, key) < 0) return fail(ENOENT, "no such key");
    return {};
}

// The kernel's order: the key's successor in its chain, else the first key of the next non-empty
// bucket; a missing key restarts from the first bucket.
result<void> hash_next_key(map& m, const void* key, void* next) {
    table t(m);
    writer_guard g(t.m);
    if (!g.held()) return busy(g);
    uint64_t b = 0;
    if (key) {
        uint32_t hash = t.hash(key);
        if (elem* e = t.find(key, hash)) {
            uint32_t l = e->next.load(std::memory_order_relaxed);
            if (!t.is_end(l)) {
                std::memcpy(next, t.key(t.at(l >> 1)), t.key_size());
                return {};
            }
            b = (hash & (t.n_buckets - 1)) + 1;
        }
    }
    for (; b < t.n_buckets; ++b) {
        uint32_t l = t.buckets[b].load(std::memory_order_relaxed);
        if (!t.is_end(l)) {
            std::memcpy(next, t.key(t.at(l >> 1)), t.key_size());
            return {};
        }
    }
    return fail(ENOENT, "no more keys");
}

result<void> hash_lookup_and_delete(map& m, const void* key, void* value, uint64_t flags) {
    if ((flags & BPF_F_LOCK) && (is_pcpu(m.type()) || m.spec().spin_lock_off < 0))
        return fail(EINVAL, "BPF_F_LOCK on a value without a bpf_spin_lock");
    table t(m);
    writer_guard g(t.m);
    if (!g.held()) return busy(g);
    std::atomic<uint32_t>* link = nullptr;
    elem* e = t.find_linked(key, t.hash(key), &link);
    if (!e) return fail(ENOENT, "no such key");
    copy_elem_out(t, *e, value, flags);
    t.unlink(*e, link);
    return {};
}

constexpr ops hash_base = {
    .name = "hash",
    .check = hash_check,
    .data_bytes = hash_bytes,
    .init = hash_init,
    .lookup = hash_lookup,
    .update = hash_update,
    .erase = hash_erase,
    .push = nullptr, .pop = nullptr, .peek = nullptr,
    .copy_out = hash_copy_out,
    .store = hash_store,
    .remove = hash_remove,
    .next_key = hash_next_key,
    .lookup_and_delete = hash_lookup_and_delete,
    .store_object = nullptr,
};

constexpr ops named(ops o, const char* name) {
    o.name = name;
    return o;
}
constexpr ops with_objects(ops o, const char* name) {
    o.name = name;
    o.store_object = hash_store_object;
    o.lookup_and_delete = nullptr;
    return o;
}

}  // namespace

// Walks the element pool in index order: live elements only, lock-free like lookups.
bool hash_next_element(map& m, uint64_t& cursor, void** key, void** value) noexcept {
    table t(m);
    uint64_t used = t.h.type_state[s_fresh];
    for (; cursor < used; ++cursor) {
        elem& e = t.at(uint32_t(cursor));
        if (e.state != state_live) continue;
        ++cursor;
        *key = t.key(e);
        *value = this_cpu_value(t, e);
        return true;
    }
    return false;
}

lookup_fn choose_lookup(const map& m) {
    if (m.ops().lookup != hash_lookup) return m.ops().lookup;
    switch (m.spec().key_size) {
    case 4: return hash_lookup_sized<4>;
    case 8: return hash_lookup_sized<8>;
    case 12: return hash_lookup_sized<12>;
    case 16: return hash_lookup_sized<16>;
    case 20: return hash_lookup_sized<20>;  // Katran's vip_map
    case 24: return hash_lookup_sized<24>;
    case 32: return hash_lookup_sized<32>;
    case 36: return hash_lookup_sized<36>;
    case 40: return hash_lookup_sized<40>;  // Katran's flow key (LRUs)
    default: return hash_lookup;
    }
}

const ops hash_ops = hash_base;
const ops percpu_hash_ops = named(hash_base, "percpu_hash");
const ops lru_hash_ops = named(hash_base, "lru_hash");
const ops lru_percpu_hash_ops = named(hash_base, "lru_percpu_hash");
const ops hash_of_maps_ops = with_objects(hash_base, "hash_of_maps");
const ops devmap_hash_ops = with_objects(hash_base, "devmap_hash");

}  // namespace xdprt::maps
