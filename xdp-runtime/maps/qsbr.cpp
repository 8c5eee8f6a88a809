#include "maps/qsbr.h"

#include <cerrno>
#include <thread>

namespace xdprt::maps {

qsbr& qsbr::process() {
    static qsbr domain;
    return domain;
}

result<qsbr::reader> qsbr::attach() {
    for (size_t i = 0; i < max_readers; ++i) {
        uint64_t expected = unused_mark;
        if (!_slots[i].seen.compare_exchange_strong(expected, offline_mark)) continue;
        // Before the reader can go online, so a scan that could miss it sees it offline.
        for (size_t used = _slots_used.load(); used < i + 1 && !_slots_used.compare_exchange_weak(used, i + 1);) {
        }
        return reader(this, &_slots[i].seen);
    }
    return fail(EBUSY, "all {} map reader slots are taken", max_readers);
}

qsbr::reader::~reader() {
    if (_d) _slot->store(unused_mark, std::memory_order_release);
}

uint64_t qsbr::horizon() const noexcept {
    uint64_t h = UINT64_MAX;
    const size_t used = _slots_used.load(std::memory_order_seq_cst);
    for (size_t i = 0; i < used; ++i) {
        uint64_t seen = _slots[i].seen.load(std::memory_order_seq_cst);
        if (seen > offline_mark && seen < h) h = seen;
    }
    return h;
}

void qsbr::defer(std::function<void()> fn) {
    uint64_t tag = retire();
    std::lock_guard g(_deferred_lock);
    _deferred.emplace_back(tag, std::move(fn));
}

void qsbr::poll() {
    std::vector<std::function<void()>> ready;
    {
        std::lock_guard g(_deferred_lock);
        auto keep = _deferred.begin();
        for (auto& d : _deferred) {
            if (safe(d.first)) ready.push_back(std::move(d.second));
            else *keep++ = std::move(d);
        }
        _deferred.erase(keep, _deferred.end());
    }
    for (auto& fn : ready) fn();
}

void qsbr::synchronize() {
    uint64_t tag = retire();
    while (!safe(tag)) std::this_thread::yield();
}

bool qsbr::synchronize_for(std::chrono::nanoseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    uint64_t tag = retire();
    while (!safe(tag)) {
        if (std::chrono::steady_clock::now() >= until) return false;
        std::this_thread::yield();
    }
    return true;
}

}  // namespace xdprt::maps
