// Map benchmark programs over a LPM_TRIE (bench_map.bpf.h).
#define BENCH_LPM
#define BENCH_MAP_TYPE BPF_MAP_TYPE_LPM_TRIE
#include "bench_map.bpf.h"
