// Helpers whose values differ from run to run, used so that nothing time-, CPU- or random-dependent
// reaches the outputs: only checks that always hold are counted (two successive reads of each clock
// are monotonic, boot time >= monotonic time, jiffies are non-zero, the CPU id is < 4096, the NUMA
// node < 1024, a random number ORed with 1 is non-zero), plus bpf_printk returning a positive length.
// A frame is passed if every check held, aborted otherwise.
// Exercises: ktime_get_ns, ktime_get_boot_ns, ktime_get_coarse_ns, jiffies64, get_prandom_u32,
// get_smp_processor_id, get_numa_node_id, trace_printk (bpf_printk).
#include "xdp_common.bpf.h"

enum env_check { EC_MONO, EC_BOOT, EC_COARSE, EC_BOOT_GE_MONO, EC_JIFFIES, EC_CPU, EC_NUMA, EC_RANDOM, EC_PRINTK, EC_MAX };

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, EC_MAX);
    __type(key, __u32);
    __type(value, __u64);  // frames for which the check held
} env_checks SEC(".maps");

SEC("xdp") int xdp_env(struct xdp_md *ctx) {
    __u64 mono1 = bpf_ktime_get_ns();
    __u64 boot1 = bpf_ktime_get_boot_ns();
    __u64 coarse1 = bpf_ktime_get_coarse_ns();
    __u64 j1 = bpf_jiffies64();
    __u64 mono2 = bpf_ktime_get_ns();
    __u64 boot2 = bpf_ktime_get_boot_ns();
    __u64 coarse2 = bpf_ktime_get_coarse_ns();
    __u32 cpu = bpf_get_smp_processor_id();
    __u32 numa = bpf_get_numa_node_id();
    __u32 rnd = bpf_get_prandom_u32();
    long printed = bpf_printk("xdp_env: frame of %u bytes", (__u32)(ctx->data_end - ctx->data));

    int ok[EC_MAX] = {
        [EC_MONO] = mono2 >= mono1,
        [EC_BOOT] = boot2 >= boot1,
        [EC_COARSE] = coarse2 >= coarse1,
        [EC_BOOT_GE_MONO] = boot1 >= mono1,
        [EC_JIFFIES] = j1 != 0,
        [EC_CPU] = cpu < 4096,
        [EC_NUMA] = numa < 1024,
        [EC_RANDOM] = (rnd | 1) != 0,
        [EC_PRINTK] = printed > 0,
    };
    int all = 1;
    for (int i = 0; i < EC_MAX; i++) {
        if (ok[i])
            count(&env_checks, i, 1);
        else
            all = 0;
    }
    return all ? XDP_PASS : XDP_ABORTED;
}

char _license[] SEC("license") = "GPL";
