// Counts heap allocations, for benchmarks that report allocations per operation. Replaces the
// global operator new/delete: include it in exactly one translation unit of a binary.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace xdprt::bench {
inline std::atomic<uint64_t> allocations{0};
}  // namespace xdprt::bench

// The replaced operators pair malloc with free by design; GCC cannot see that they are a pair.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t n) {
    xdprt::bench::allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop
