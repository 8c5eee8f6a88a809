// XDP packet helpers (the kernel's net/core/filter.c semantics), redirects, csum_diff, event
// output, and the XDP helper table.
#include <linux/if_ether.h>

#include <cerrno>
#include <cstring>

#include "helpers/internal.h"
#include "perf/perf_event.h"
#include "prog/prog.h"

namespace xdprt::helpers {

namespace {

using prog::xdp_buff;

xdp_buff& ctx_of(uint64_t r) { return *reinterpret_cast<xdp_buff*>(r); }

uint64_t xdp_adjust_head(uint64_t ctx, uint64_t delta, uint64_t, uint64_t, uint64_t) {
    xdp_buff& x = ctx_of(ctx);
    int32_t off = int32_t(delta);
    uint8_t* frame_end = x.data_hard_start + xdp_frame_bytes;
    uint8_t* data = x.data + off;
    if (data < frame_end || data > x.data_end - ETH_HLEN) return uint64_t(-EINVAL);
    size_t metalen = size_t(x.data - x.data_meta);
    if (metalen) std::memmove(x.data_meta + off, x.data_meta, metalen);
    x.data_meta += off;
    x.data = data;
    return 0;
}

uint64_t xdp_adjust_meta(uint64_t ctx, uint64_t delta, uint64_t, uint64_t, uint64_t) {
    xdp_buff& x = ctx_of(ctx);
    uint8_t* frame_end = x.data_hard_start + xdp_frame_bytes;
    uint8_t* meta = x.data_meta + int32_t(delta);
    if (meta < frame_end || meta > x.data) return uint64_t(-EINVAL);
    size_t metalen = size_t(x.data - meta);
    if ((metalen & 3) || metalen > 32) return uint64_t(-EACCES);
    x.data_meta = meta;
    return 0;
}

uint64_t xdp_adjust_tail(uint64_t ctx, uint64_t offset, uint64_t, uint64_t, uint64_t) {
    xdp_buff& x = ctx_of(ctx);
    int32_t off = int32_t(offset);
    uint8_t* data_end = x.data_end + off;
    if (data_end > x.data_hard_end || data_end < x.data + ETH_HLEN) return uint64_t(-EINVAL);
    if (off > 0) std::memset(x.data_end, 0, size_t(off));
    x.data_end = data_end;
    return 0;
}

uint64_t xdp_get_buff_len(uint64_t ctx, uint64_t, uint64_t, uint64_t, uint64_t) {
    xdp_buff& x = ctx_of(ctx);
    return uint64_t(x.data_end - x.data);
}

// bpf_xdp_pointer's checks: offsets and lengths above 0xffff fault, beyond the frame are invalid.
long bytes_at(xdp_buff& x, uint64_t offset, uint64_t len, uint8_t** p) {
    uint32_t off = uint32_t(offset), n = uint32_t(len);
    if (off > 0xffff || n > 0xffff) return -EFAULT;
    if (uint64_t(off) + n > uint64_t(x.data_end - x.data)) return -EINVAL;
    *p = x.data + off;
    return 0;
}

uint64_t xdp_load_bytes(uint64_t ctx, uint64_t offset, uint64_t buf, uint64_t len, uint64_t) {
    uint8_t* p;
    if (long r = bytes_at(ctx_of(ctx), offset, len, &p); r < 0) return uint64_t(r);
    std::memcpy(reinterpret_cast<void*>(buf), p, uint32_t(len));
    return 0;
}

uint64_t xdp_store_bytes(uint64_t ctx, uint64_t offset, uint64_t buf, uint64_t len, uint64_t) {
    uint8_t* p;
    if (long r = bytes_at(ctx_of(ctx), offset, len, &p); r < 0) return uint64_t(r);
    std::memmove(p, reinterpret_cast<const void*>(buf), uint32_t(len));
    return 0;
}

uint64_t redirect(uint64_t ifindex, uint64_t flags, uint64_t, uint64_t, uint64_t) {
    if (flags) return XDP_ABORTED;
    last_redirect = {nullptr, 0, uint32_t(ifindex), 0};
    return XDP_REDIRECT;
}

uint64_t redirect_map(uint64_t map, uint64_t key, uint64_t flags, uint64_t, uint64_t) {
    constexpr uint64_t action_mask = XDP_ABORTED | XDP_DROP | XDP_PASS | XDP_TX;
    auto& m = *reinterpret_cast<maps::map*>(map);
    bool devmap = m.type() == BPF_MAP_TYPE_DEVMAP || m.type() == BPF_MAP_TYPE_DEVMAP_HASH;
    uint64_t allowed = action_mask | (devmap ? uint64_t(BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS) : 0);
    if (flags & ~allowed) return XDP_ABORTED;
    uint32_t k = uint32_t(key);
    bool found = m.ops().lookup && m.ops().lookup(m, &k) != nullptr;
    if (!found && !(flags & BPF_F_BROADCAST)) {
        last_redirect = {};
        return flags & action_mask;
    }
    last_redirect = {&m, k, 0, flags & (BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS)};
    return XDP_REDIRECT;
}

// bpf_csum_diff: the one's complement sum of ~from and to, 32-bit words, plus seed, folded to 32
// bits as x86's csum_partial does.
uint64_t csum_diff(uint64_t from, uint64_t from_size, uint64_t to, uint64_t to_size, uint64_t seed) {
    uint32_t fs = uint32_t(from_size), ts = uint32_t(to_size);
    if (((fs | ts) & 3) || uint64_t(fs) + ts > 512) return uint64_t(-EINVAL);
    uint64_t sum = uint32_t(seed);
    for (uint32_t k = 0; k < fs; k += 4) {
        uint32_t w;
        std::memcpy(&w, reinterpret_cast<const uint8_t*>(from) + k, 4);
        sum += uint32_t(~w);
    }
    for (uint32_t k = 0; k < ts; k += 4) {
        uint32_t w;
        std::memcpy(&w, reinterpret_cast<const uint8_t*>(to) + k, 4);
        sum += w;
    }
    while (sum >> 32) sum = (sum & 0xffffffff) + (sum >> 32);
    return sum;
}

// bpf_perf_event_output for XDP (bpf_xdp_event_output, then bpf_event_output and
// __bpf_perf_event_output): flags are an index (or BPF_F_CURRENT_CPU, the runtime CPU id) and in
// their upper 32 bits how many packet bytes to append to the record; the slot must hold a perf
// event that counts this CPU and is enabled (the kernel's event->oncpu check: -EOPNOTSUPP).
// PERF_EVENT_ARRAY slots only ever hold BPF output events (the server refuses any other fd), so
// the kernel's -EINVAL for another event type cannot arise.
uint64_t perf_event_output(uint64_t ctx, uint64_t map, uint64_t flags, uint64_t data, uint64_t size) {
    if (flags & ~(BPF_F_CTXLEN_MASK | BPF_F_INDEX_MASK)) return uint64_t(-EINVAL);
    xdp_buff& x = ctx_of(ctx);
    uint64_t ctx_len = (flags & BPF_F_CTXLEN_MASK) >> 32;
    if (ctx_len > uint64_t(x.data_end - x.data)) return uint64_t(-EFAULT);
    auto& m = *reinterpret_cast<maps::map*>(map);
    uint64_t index = flags & BPF_F_INDEX_MASK;
    if (index == BPF_F_CURRENT_CPU) index = maps::this_cpu;
    if (index >= m.spec().max_entries) return uint64_t(-E2BIG);
    auto* ev = static_cast<perf::event*>(maps::object_at(m, uint32_t(index)));
    if (!ev) return uint64_t(-ENOENT);
    return uint64_t(ev->output(maps::this_cpu, {reinterpret_cast<const std::byte*>(data), size}, x.data, uint32_t(ctx_len)));
}

}  // namespace

void link_xdp(vm::linkage& link) {
    auto& h = link.helpers;
    h[1] = map_lookup_elem;
    h[2] = map_update_elem;
    h[3] = map_delete_elem;
    h[5] = ktime_get_ns;
    h[6] = trace_printk;
    h[7] = get_prandom_u32;
    h[8] = get_smp_processor_id;
    h[23] = redirect;
    h[25] = perf_event_output;
    h[28] = csum_diff;
    h[42] = get_numa_node_id;
    h[44] = xdp_adjust_head;
    h[51] = redirect_map;
    h[54] = xdp_adjust_meta;
    h[65] = xdp_adjust_tail;
    h[87] = map_push_elem;
    h[88] = map_pop_elem;
    h[89] = map_peek_elem;
    h[93] = spin_lock;
    h[94] = spin_unlock;
    h[118] = jiffies64;
    h[125] = ktime_get_boot_ns;
    h[130] = ringbuf_output;
    h[131] = ringbuf_reserve;
    h[132] = ringbuf_submit;
    h[133] = ringbuf_discard;
    h[134] = ringbuf_query;
    h[160] = ktime_get_coarse_ns;
    h[188] = xdp_get_buff_len;
    h[189] = xdp_load_bytes;
    h[190] = xdp_store_bytes;
    h[prog::helper_map_iterate] = map_iterate;
    link.tail_call_target = tail_call_target;
}

}  // namespace xdprt::helpers
