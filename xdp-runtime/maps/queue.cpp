// QUEUE and STACK (kernel/bpf/queue_stack_maps.c): a ring of max_entries + 1 value slots from
// offset 0, head and tail indices in the header. The spare slot tells full from empty.
//
// Every operation, peek included, holds the map's writer lock, as the kernel holds its spinlock:
// a value is copied out, never handed out by pointer, and a concurrent pop could overwrite the
// slot a peek is copying. There is no lock-free reader, so a view (other process) cannot read it.
//
// Userspace reaches these through the keyless commands: UPDATE_ELEM with a null key pushes
// (BPF_EXIST: overwrite the oldest when full), LOOKUP_ELEM peeks, LOOKUP_AND_DELETE_ELEM pops.
#include "maps/types.h"

namespace xdprt::maps {

namespace {

constexpr uint32_t queue_flags = BPF_F_NUMA_NODE | access_mask;

enum state_slot { s_head, s_tail, s_slots };

// A view of the ring; every member is read and written under the writer lock.
struct ring {
    map& m;
    uint64_t& head;  // next slot to push into
    uint64_t& tail;  // oldest value (QUEUE pops here)
    uint64_t slots;  // max_entries + 1

    explicit ring(map& mm)
        : m(mm), head(mm.header().type_state[s_head]), tail(mm.header().type_state[s_tail]),
          slots(mm.header().type_state[s_slots]) {}

    std::byte* at(uint64_t i) const { return m.base() + i * m.spec().value_size; }
    uint64_t next(uint64_t i) const { return i + 1 == slots ? 0 : i + 1; }
    bool empty() const { return head == tail; }
    bool full() const { return next(head) == tail; }
};

result<void> queue_check(const spec& s) {
    if (s.max_entries == 0 || s.key_size != 0 || s.value_size == 0 || (s.flags & ~queue_flags) || !access_ok(s.flags))
        return fail(EINVAL, "{}: key_size must be 0, value_size and max_entries non-zero, flags known", type_name(s.type));
    if (s.value_size > kmalloc_max_size) return fail(E2BIG, "{}: value_size {} too large", type_name(s.type), s.value_size);
    return {};
}

size_t queue_bytes(const spec& s) { return (uint64_t(s.max_entries) + 1) * s.value_size; }

result<void> queue_init(map& m) {
    m.header().type_state[s_slots] = uint64_t(m.spec().max_entries) + 1;
    return {};
}

long queue_push(map& m, const void* value, uint64_t flags) noexcept {
    // BPF_EXIST makes room by dropping the oldest value; NOEXIST means nothing here.
    if ((flags & BPF_NOEXIST) || flags > BPF_EXIST) return -EINVAL;
    writer_guard g(m.header());
    ring r(m);
    if (r.full()) {
        if (flags != BPF_EXIST) return -E2BIG;
        r.tail = r.next(r.tail);
    }
    std::memcpy(r.at(r.head), value, m.spec().value_size);
    r.head = r.next(r.head);
    return 0;
}

// Copies the value pop would take; with `remove`, takes it. Empty: the value is zeroed, ENOENT.
long queue_take(map& m, void* value, bool remove) noexcept {
    writer_guard g(m.header());
    ring r(m);
    if (r.empty()) {
        std::memset(value, 0, m.spec().value_size);
        return -ENOENT;
    }
    uint64_t i;
    if (m.type() == BPF_MAP_TYPE_QUEUE) {
        i = r.tail;
        if (remove) r.tail = r.next(r.tail);
    } else {
        i = r.head == 0 ? r.slots - 1 : r.head - 1;
        if (remove) r.head = i;
    }
    std::memcpy(value, r.at(i), m.spec().value_size);
    return 0;
}

long queue_pop(map& m, void* value) noexcept { return queue_take(m, value, true); }
long queue_peek(map& m, void* value) noexcept { return queue_take(m, value, false); }

// What queue_stack_maps.c answers for the keyed operations.
void* queue_lookup(map&, const void*) noexcept { return nullptr; }
long queue_update(map&, const void*, const void*, uint64_t) noexcept { return -EINVAL; }
long queue_erase(map&, const void*) noexcept { return -EINVAL; }

result<void> as_result(long r, const char* what) {
    if (r == -ENOENT) return fail(ENOENT, "{}: empty", what);
    if (r == -E2BIG) return fail(E2BIG, "{}: full (BPF_EXIST overwrites the oldest)", what);
    if (r < 0) return fail(int(-r), "{}: flags", what);
    return {};
}

result<void> queue_copy_out(map& m, const void*, void* value, uint64_t) { return as_result(queue_peek(m, value), "peek"); }
result<void> queue_store(map& m, const void*, const void* value, uint64_t flags) {
    return as_result(queue_push(m, value, flags), "push");
}
result<void> queue_lookup_and_delete(map& m, const void*, void* value, uint64_t) {
    return as_result(queue_pop(m, value), "pop");
}
result<void> queue_remove(map& m, const void*) {
    return fail(EINVAL, "{}: no keys to delete (pop with LOOKUP_AND_DELETE_ELEM)", type_name(m.type()));
}
result<void> queue_next_key(map& m, const void*, void*) { return fail(EINVAL, "{}: no keys", type_name(m.type())); }

}  // namespace

const ops queue_ops = {
    .name = "queue",
    .check = queue_check,
    .data_bytes = queue_bytes,
    .init = queue_init,
    .lookup = queue_lookup,
    .update = queue_update,
    .erase = queue_erase,
    .push = queue_push,
    .pop = queue_pop,
    .peek = queue_peek,
    .copy_out = queue_copy_out,
    .store = queue_store,
    .remove = queue_remove,
    .next_key = queue_next_key,
    .lookup_and_delete = queue_lookup_and_delete,
    .store_object = nullptr,
};

const ops stack_ops = [] {
    ops o = queue_ops;
    o.name = "stack";
    return o;
}();

}  // namespace xdprt::maps
