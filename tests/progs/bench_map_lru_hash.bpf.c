// Map benchmark programs over a LRU_HASH (bench_map.bpf.h).
#define BENCH_MAP_TYPE BPF_MAP_TYPE_LRU_HASH
#include "bench_map.bpf.h"
