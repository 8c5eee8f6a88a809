#include "maps/qsbr.h"

#include <cerrno>
#include <thread>

namespace xdprt::maps {

qsbr& qsbr::process() {
    static qsbr domain;
    return domain;
}

result<qsbr::reader> qsbr::attach() {
    for (slot& s : _slots) {
        uint64_t expected = unused_mark;
        if (s.seen.compare_exchange_strong(expected, offline_mark)) return reader(this, &s.seen);
    }
    return fail(EBUSY, "all {} map reader slots are taken", max_readers);
}

qsbr::reader::~reader() {
    if (_d) _slot->store(unused_mark, std::memory_order_release);
}

bool qsbr::safe(uint64_t tag) const noexcept {
    for (const slot& s : _slots) {
        uint64_t seen = s.seen.load(std::memory_order_seq_cst);
        if (seen > offline_mark && seen < tag) return false;
    }
    return true;
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

}  // namespace xdprt::maps
