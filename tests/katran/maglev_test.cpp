// katran-port's Maglev table population (suite katran-maglev, no Katran object needed): a full
// table, shares that follow the weights, independence from listing order, and the churn the
// paper promises when an endpoint goes or comes.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "maglev.h"

namespace xdprt::katran {
namespace {

std::vector<maglev_endpoint> endpoints(uint32_t n, uint32_t weight = 1) {
    std::vector<maglev_endpoint> out;
    for (uint32_t i = 1; i <= n; ++i) out.push_back({i, "10.200." + std::to_string(i / 256) + "." + std::to_string(i % 256), weight});
    return out;
}

std::map<uint32_t, size_t> shares(const std::vector<uint32_t>& t) {
    std::map<uint32_t, size_t> s;
    for (uint32_t id : t) ++s[id];
    return s;
}

size_t changed(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
    size_t n = 0;
    for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
    return n;
}

TEST(Maglev, FillsEverySlotEvenlyAmongEqualWeights) {
    auto t = maglev_table(endpoints(10));
    ASSERT_EQ(t.size(), katran_ring_size);
    auto s = shares(t);
    ASSERT_EQ(s.size(), 10u) << "a slot left empty, or an endpoint with none";
    for (auto [id, n] : s) {
        EXPECT_NE(id, 0u);
        EXPECT_NEAR(double(n), katran_ring_size / 10.0, katran_ring_size * 0.01) << "endpoint " << id;
    }
}

TEST(Maglev, SharesFollowWeights) {
    auto eps = endpoints(3);
    eps[2].weight = 2;
    eps[1].weight = 0;
    auto s = shares(maglev_table(eps));
    EXPECT_EQ(s.count(2), 0u) << "weight 0 takes no slot";
    EXPECT_NEAR(double(s[3]) / s[1], 2.0, 0.02);
    EXPECT_EQ(maglev_table({}), std::vector<uint32_t>(katran_ring_size, 0)) << "no endpoint: every slot 0";
}

TEST(Maglev, TheListingOrderDoesNotMatter) {
    auto eps = endpoints(7);
    auto t = maglev_table(eps);
    std::reverse(eps.begin(), eps.end());
    EXPECT_EQ(maglev_table(eps), t);
}

TEST(Maglev, RemovingOrAddingAnEndpointMovesLittleElse) {
    for (uint32_t n : {3u, 10u, 100u}) {
        auto eps = endpoints(n);
        auto before = maglev_table(eps);
        auto gone = eps.back();
        eps.pop_back();
        auto after = maglev_table(eps);
        size_t own = 0, others = 0;
        for (size_t i = 0; i < before.size(); ++i) {
            if (before[i] == gone.id) ++own;
            else others += before[i] != after[i];
        }
        EXPECT_EQ(std::count(after.begin(), after.end(), gone.id), 0) << n;
        // The paper's figure 10: a few percent at most of the others' slots move.
        EXPECT_LT(double(others), 0.02 * katran_ring_size) << n << " endpoints: " << others << " of others' slots moved";
        printf("  %u endpoints, one removed: its %zu slots move, and %zu others (%.2f%%)\n", n, own, others,
               100.0 * others / katran_ring_size);
        // Adding it back restores the table exactly (the table is a function of the set).
        eps.push_back(gone);
        EXPECT_EQ(changed(maglev_table(eps), before), 0u);
    }
}

}  // namespace
}  // namespace xdprt::katran
