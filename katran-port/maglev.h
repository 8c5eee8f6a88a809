// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016, section 3.4): our implementation of its lookup table population, with
// weights.
//
// Each endpoint has a preference list over the table's M slots (M prime): slot(j) = (offset + j *
// skip) mod M, with offset = h1 mod M and skip = h2 mod (M - 1) + 1 from two independent hashes of
// the endpoint's identity (its address), so the list depends on the endpoint alone, not on the
// others. Endpoints take turns claiming their next preferred free slot until the table is full;
// an endpoint of weight w takes w turns per round (weight 0: none). Turns go in the order of the
// endpoints' hashes, so the table does not depend on the order a configuration lists them in.
//
// Churn: removing an endpoint frees its slots, which the others claim from their unchanged lists;
// few other slots move (the paper's figure 10; maglev_test measures it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace xdprt::katran {

struct maglev_endpoint {
    uint32_t id = 0;      // what the table holds (Katran: the real's index, from 1)
    std::string key;      // its identity, hashed for its preference list (the real's address)
    uint32_t weight = 1;
};

// Katran's ring size: a prime, RING_SIZE in balancer_consts.h.
inline constexpr uint32_t katran_ring_size = 65537;

// The table of `size` slots (a prime); every slot 0 when no endpoint has a weight.
std::vector<uint32_t> maglev_table(const std::vector<maglev_endpoint>& endpoints, uint32_t size = katran_ring_size);

}  // namespace xdprt::katran
