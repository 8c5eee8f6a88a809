// Map benchmark programs over a LRU_PERCPU_HASH (bench_map.bpf.h).
#define BENCH_MAP_TYPE BPF_MAP_TYPE_LRU_PERCPU_HASH
#include "bench_map.bpf.h"
