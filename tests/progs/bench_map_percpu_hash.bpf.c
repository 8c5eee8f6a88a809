// Map benchmark programs over a PERCPU_HASH (bench_map.bpf.h).
#define BENCH_MAP_TYPE BPF_MAP_TYPE_PERCPU_HASH
#include "bench_map.bpf.h"
