// Map benchmark programs over a HASH (bench_map.bpf.h).
#define BENCH_MAP_TYPE BPF_MAP_TYPE_HASH
#include "bench_map.bpf.h"
