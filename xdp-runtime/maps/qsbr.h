// Quiescent-state-based reclamation for map memory (DESIGN.md invariant 4).
//
// Readers (workers, any thread running programs) never lock: they announce a quiescent point when
// they hold no map pointer (workers once per burst) and go offline while idle. A writer that unlinks
// memory tags it with retire(); the memory may be reused once safe(tag) holds, i.e. every online
// reader has announced a quiescent point since the unlink.
//
// Scope: one domain per process. Readers in other processes never keep pointers into maps: they
// copy values under each element's sequence counter (see hash.cpp), which makes reuse harmless to
// them.
//
// Thread affinity: reader slots belong to one thread each; retire/safe/defer/poll from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "base/result.h"

namespace xdprt::maps {

class qsbr {
public:
    static constexpr size_t max_readers = 128;

    // The domain of this process.
    static qsbr& process();

    // A registered reader: one per thread that runs programs. Offline when created. Move-only.
    class reader {
    public:
        reader() = default;
        reader(reader&& o) noexcept : _d(o._d), _slot(o._slot) { o._d = nullptr; }
        reader& operator=(reader&&) = delete;
        ~reader();
        void online() noexcept { quiescent(); }
        void quiescent() noexcept { _slot->store(_d->_epoch.load(std::memory_order_seq_cst), std::memory_order_seq_cst); }
        void offline() noexcept { _slot->store(offline_mark, std::memory_order_release); }
        explicit operator bool() const { return _d != nullptr; }

    private:
        friend class qsbr;
        reader(qsbr* d, std::atomic<uint64_t>* slot) : _d(d), _slot(slot) {}
        qsbr* _d = nullptr;
        std::atomic<uint64_t>* _slot = nullptr;
    };

    // Takes a reader slot; EBUSY when all max_readers are taken.
    [[nodiscard]] result<reader> attach();

    // Holds `r` online for a scope (a test run on the control thread).
    class online_scope {
    public:
        explicit online_scope(reader& r) : _r(r) { _r.online(); }
        ~online_scope() { _r.offline(); }
        online_scope(const online_scope&) = delete;
        online_scope& operator=(const online_scope&) = delete;

    private:
        reader& _r;
    };

    // Call after unlinking: the tag to keep with the unlinked memory.
    uint64_t retire() noexcept { return _epoch.fetch_add(1, std::memory_order_seq_cst) + 1; }
    // True when every online reader passed a quiescent point after the retire() that gave `tag`.
    bool safe(uint64_t tag) const noexcept { return tag <= horizon(); }
    // Every tag at or below this is safe (the oldest epoch an online reader has announced): one
    // scan of the reader slots for a whole list of retired memory, which is in tag order.
    uint64_t horizon() const noexcept;
    // Runs `fn` once safe(retire()) holds; poll() runs what became safe. Not for the hot path.
    void defer(std::function<void()> fn);
    void poll();
    // Waits (bounded by the readers' progress) until everything retired so far is safe.
    void synchronize();
    // The same, for at most `limit`: false when a reader did not pass a quiescent point in time.
    bool synchronize_for(std::chrono::nanoseconds limit);

private:
    static constexpr uint64_t unused_mark = 0, offline_mark = 1;
    struct alignas(64) slot {
        std::atomic<uint64_t> seen{unused_mark};
    };
    std::atomic<uint64_t> _epoch{2};
    std::array<slot, max_readers> _slots;
    std::atomic<size_t> _slots_used{0};  // slots at or past this were never attached: not scanned
    std::mutex _deferred_lock;
    std::vector<std::pair<uint64_t, std::function<void()>>> _deferred;
};

}  // namespace xdprt::maps
