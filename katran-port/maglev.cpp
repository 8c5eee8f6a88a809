#include "maglev.h"

#include <algorithm>

namespace xdprt::katran {

namespace {

// 64-bit FNV-1a over the key, finished with a multiply-xorshift mix; `seed` makes independent
// hash functions.
uint64_t hash64(const std::string& key, uint64_t seed) {
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

}  // namespace

std::vector<uint32_t> maglev_table(const std::vector<maglev_endpoint>& endpoints, uint32_t size) {
    std::vector<uint32_t> table(size, 0);
    struct turn_state {
        const maglev_endpoint* ep;
        uint64_t order;
        uint64_t offset, skip, next = 0;
    };
    std::vector<turn_state> turns;
    for (const auto& ep : endpoints) {
        if (ep.weight == 0) continue;
        turns.push_back({&ep, hash64(ep.key, 0x6d61676c6576ull), hash64(ep.key, 1) % size, hash64(ep.key, 2) % (size - 1) + 1});
    }
    if (turns.empty()) return table;
    std::sort(turns.begin(), turns.end(), [](const turn_state& a, const turn_state& b) {
        return a.order != b.order ? a.order < b.order : a.ep->id < b.ep->id;
    });
    std::vector<bool> taken(size, false);
    uint32_t filled = 0;
    for (;;) {
        for (auto& t : turns) {
            for (uint32_t w = 0; w < t.ep->weight; ++w) {
                uint64_t slot = (t.offset + t.next * t.skip) % size;
                while (taken[slot]) slot = (t.offset + ++t.next * t.skip) % size;
                taken[slot] = true;
                table[slot] = t.ep->id;
                ++t.next;
                if (++filled == size) return table;
            }
        }
    }
}

}  // namespace xdprt::katran
