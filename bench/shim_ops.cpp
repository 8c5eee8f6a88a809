// bpf() element operations and program load + attach, as a client process makes them: the
// same binary is run against the kernel and, under `xdprt with`, against the appliance
// (bench/shim_ops.sh runs both and prints them side by side). Element operations through the
// shim are served from the map's shared memory in the client (no round trip to the appliance).
//
//   XDPRT_BENCH_IF=IFNAME shim_ops [--benchmark_*]   (IFNAME: where BM_LoadAttachDetach attaches)
#include <benchmark/benchmark.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

constexpr uint32_t entries = 1024;

int make_map(bpf_map_type type, uint32_t value_size) {
    int fd = bpf_map_create(type, "bench", 4, value_size, entries, nullptr);
    if (fd < 0) return fd;
    std::vector<uint8_t> value(size_t(value_size) * (type == BPF_MAP_TYPE_PERCPU_ARRAY ? libbpf_num_possible_cpus() : 1), 1);
    for (uint32_t k = 0; k < entries; ++k) bpf_map_update_elem(fd, &k, value.data(), BPF_ANY);
    return fd;
}

void element_op(benchmark::State& state, bpf_map_type type, bool update) {
    int fd = make_map(type, 8);
    if (fd < 0) {
        state.SkipWithError("map create failed");
        return;
    }
    std::vector<uint64_t> value(type == BPF_MAP_TYPE_PERCPU_ARRAY ? size_t(libbpf_num_possible_cpus()) : 1, 7);
    uint32_t key = 0;
    for (auto _ : state) {
        int r = update ? bpf_map_update_elem(fd, &key, value.data(), BPF_ANY) : bpf_map_lookup_elem(fd, &key, value.data());
        if (r != 0) {
            state.SkipWithError(update ? "update failed" : "lookup failed");
            break;
        }
        key = (key + 1) % entries;
    }
    close(fd);
}

void BM_ArrayLookup(benchmark::State& s) { element_op(s, BPF_MAP_TYPE_ARRAY, false); }
void BM_PercpuArrayLookup(benchmark::State& s) { element_op(s, BPF_MAP_TYPE_PERCPU_ARRAY, false); }
void BM_HashLookup(benchmark::State& s) { element_op(s, BPF_MAP_TYPE_HASH, false); }
void BM_ArrayUpdate(benchmark::State& s) { element_op(s, BPF_MAP_TYPE_ARRAY, true); }
void BM_HashUpdate(benchmark::State& s) { element_op(s, BPF_MAP_TYPE_HASH, true); }

void BM_LruHashUpdate(benchmark::State& s) { element_op(s, BPF_MAP_TYPE_LRU_HASH, true); }

// A delete and an insert of the same key: two operations per iteration.
void BM_HashDeleteInsert(benchmark::State& state) {
    int fd = make_map(BPF_MAP_TYPE_HASH, 8);
    uint64_t value = 7;
    uint32_t key = 0;
    for (auto _ : state) {
        if (bpf_map_delete_elem(fd, &key) != 0 || bpf_map_update_elem(fd, &key, &value, BPF_NOEXIST) != 0) {
            state.SkipWithError("delete or insert failed");
            break;
        }
        key = (key + 1) % entries;
    }
    close(fd);
}

void BM_HashGetNextKey(benchmark::State& state) {
    int fd = make_map(BPF_MAP_TYPE_HASH, 8);
    uint32_t key = 0, next = 0;
    const uint32_t* at = nullptr;
    for (auto _ : state) {
        if (bpf_map_get_next_key(fd, at, &next) == 0) {
            key = next;
            at = &key;
        } else {
            at = nullptr;  // the end of the walk: start over
        }
    }
    close(fd);
}

void BM_ArrayGetNextKey(benchmark::State& state) {
    int fd = make_map(BPF_MAP_TYPE_ARRAY, 8);
    uint32_t key = 0, next = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(bpf_map_get_next_key(fd, &key, &next));
        key = next % (entries - 1);
    }
    close(fd);
}

// Open, load (verified; JIT-compiled on the appliance), attach by netlink, detach, close.
void BM_LoadAttachDetach(benchmark::State& state) {
    const char* ifname = getenv("XDPRT_BENCH_IF");
    int ifindex = ifname ? int(if_nametoindex(ifname)) : 0;
    if (!ifindex) {
        state.SkipWithError("XDPRT_BENCH_IF names no interface");
        return;
    }
    for (auto _ : state) {
        bpf_object* obj = bpf_object__open_file(XDPRT_PROGS_DIR "/xdp_drop.bpf.o", nullptr);
        if (!obj || bpf_object__load(obj)) {
            state.SkipWithError("load failed");
            break;
        }
        int fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "xdp_drop"));
        if (bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE, nullptr) || bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, nullptr)) {
            bpf_object__close(obj);
            state.SkipWithError("attach failed");
            break;
        }
        bpf_object__close(obj);
    }
}

}  // namespace

BENCHMARK(BM_ArrayLookup);
BENCHMARK(BM_PercpuArrayLookup);
BENCHMARK(BM_HashLookup);
BENCHMARK(BM_ArrayGetNextKey);
BENCHMARK(BM_ArrayUpdate);
BENCHMARK(BM_HashUpdate);
BENCHMARK(BM_LruHashUpdate);
BENCHMARK(BM_HashDeleteInsert);
BENCHMARK(BM_HashGetNextKey);
BENCHMARK(BM_LoadAttachDetach)->Iterations(20)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
