// Map benchmark programs over a ARRAY (bench_map.bpf.h).
#define BENCH_MAP_TYPE BPF_MAP_TYPE_ARRAY
#include "bench_map.bpf.h"
