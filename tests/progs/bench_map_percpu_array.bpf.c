// Map benchmark programs over a PERCPU_ARRAY (bench_map.bpf.h).
#define BENCH_MAP_TYPE BPF_MAP_TYPE_PERCPU_ARRAY
#include "bench_map.bpf.h"
