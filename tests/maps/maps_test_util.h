// Shared by the maps tests: building specs, reading errnos, walking keys with get_next_key.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "maps/map.h"
#include "maps/qsbr.h"

namespace xdprt::maps::testing {

inline spec make_spec(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t max_entries, uint32_t flags = 0) {
    spec s;
    s.type = type;
    s.key_size = key_size;
    s.value_size = value_size;
    s.max_entries = max_entries;
    s.flags = flags;
    return s;
}

// The errno of a result, 0 for success.
template <class T>
int code(const result<T>& r) {
    return r ? 0 : r.error().code;
}

inline int create_errno(const spec& s) { return code(create(s)); }

inline std::unique_ptr<map> must_create(const spec& s) {
    auto m = create(s);
    EXPECT_TRUE(m.has_value()) << (m ? "" : m.error().message);
    return m ? std::move(*m) : nullptr;
}

// Every key get_next_key visits from the start, in its order (stops after `limit` steps, so a
// cycle fails the test instead of hanging it).
template <class K>
std::vector<K> walk_keys(map& m, size_t limit = 1u << 20) {
    std::vector<K> keys;
    K k{}, next{};
    const K* cur = nullptr;
    while (keys.size() < limit) {
        auto r = get_next_key(m, cur, &next);
        if (!r) {
            EXPECT_EQ(r.error().code, ENOENT) << r.error().message;
            break;
        }
        keys.push_back(next);
        k = next;
        cur = &k;
    }
    return keys;
}

// ThreadSanitizer shadows every touched byte several times over: resident sizes mean little.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool rss_meaningful = false;
#else
inline constexpr bool rss_meaningful = true;
#endif
#else
inline constexpr bool rss_meaningful = true;
#endif

// Resident memory of this process, to check that a huge map costs only what it touches.
inline size_t rss_bytes() {
    std::ifstream f("/proc/self/statm");
    size_t total = 0, resident = 0;
    f >> total >> resident;
    return resident * 4096;
}

// A program thread's view of QSBR for a test: online for the scope.
struct program_thread {
    qsbr::reader reader = std::move(*qsbr::process().attach());
    program_thread() { reader.online(); }
    ~program_thread() { reader.offline(); }
};

// True when process `pid` has exited and waits to be reaped.
inline bool is_zombie(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(f, line);
    auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

}  // namespace xdprt::maps::testing
