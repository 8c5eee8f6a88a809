// An ordinary libbpf application, run unmodified against the kernel or, through the shim
// (`xdprt with -- port_filter ...`), against the appliance. It opens the object (libbpf creates
// the maps), loads it, blocks the UDP ports it is given, then attaches twice: with
// bpf_xdp_attach (netlink) and with a bpf_link. Each time it waits until the program has seen
// `--packets` frames (or `--seconds` passed), reads the per-CPU counters, sums them over the
// possible CPUs and detaches. One line per attachment:
//
//   attach=netlink passed=P dropped=D
//   attach=link passed=P dropped=D
//
// usage: port_filter IFNAME OBJECT PORT... [--packets N] [--seconds S]
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int verdict_totals(int map, int ncpus, unsigned long long out[2]) {
    unsigned long long values[ncpus];
    for (__u32 k = 0; k < 2; ++k) {
        if (bpf_map_lookup_elem(map, &k, values)) return -errno;
        out[k] = 0;
        for (int c = 0; c < ncpus; ++c) out[k] += values[c];
    }
    return 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

// Waits for `packets` more frames than `base` counted, or `seconds`; prints the phase's counts.
static int phase(const char *how, int map, int ncpus, unsigned long long packets, double seconds) {
    unsigned long long base[2], cur[2];
    int err = verdict_totals(map, ncpus, base);
    if (err) return err;
    double end = now() + seconds;
    do {
        usleep(20000);
        if ((err = verdict_totals(map, ncpus, cur))) return err;
    } while (cur[0] + cur[1] - base[0] - base[1] < packets && now() < end);
    printf("attach=%s passed=%llu dropped=%llu\n", how, cur[0] - base[0], cur[1] - base[1]);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    unsigned long long packets = 20;
    double seconds = 10;
    const char *ifname = NULL, *path = NULL;
    int ports[16], nports = 0;
    for (int k = 1; k < argc; ++k) {
        if (!strcmp(argv[k], "--packets") && k + 1 < argc) packets = strtoull(argv[++k], NULL, 10);
        else if (!strcmp(argv[k], "--seconds") && k + 1 < argc) seconds = atof(argv[++k]);
        else if (!ifname) ifname = argv[k];
        else if (!path) path = argv[k];
        else if (nports < 16) ports[nports++] = atoi(argv[k]);
    }
    if (!ifname || !path) {
        fprintf(stderr, "usage: port_filter IFNAME OBJECT PORT... [--packets N] [--seconds S]\n");
        return 2;
    }
    int ifindex = (int)if_nametoindex(ifname);
    if (!ifindex) {
        fprintf(stderr, "port_filter: no interface %s\n", ifname);
        return 1;
    }
    struct bpf_object *obj = bpf_object__open_file(path, NULL);
    if (!obj) {
        fprintf(stderr, "port_filter: open %s: %s\n", path, strerror(errno));
        return 1;
    }
    int err = bpf_object__load(obj);
    if (err) {
        fprintf(stderr, "port_filter: load %s: %s\n", path, strerror(-err));
        return 1;
    }
    struct bpf_program *prog = bpf_object__find_program_by_name(obj, "port_filter");
    int blocked = bpf_object__find_map_fd_by_name(obj, "blocked");
    int verdicts = bpf_object__find_map_fd_by_name(obj, "verdicts");
    int ncpus = libbpf_num_possible_cpus();
    if (!prog || blocked < 0 || verdicts < 0 || ncpus <= 0) {
        fprintf(stderr, "port_filter: %s lacks the program or its maps\n", path);
        return 1;
    }
    for (int k = 0; k < nports; ++k) {
        __u16 port = (__u16)ports[k];
        __u8 one = 1;
        if (bpf_map_update_elem(blocked, &port, &one, BPF_ANY)) {
            fprintf(stderr, "port_filter: block port %d: %s\n", ports[k], strerror(errno));
            return 1;
        }
    }
    int status = 0;
    // netlink: bpf_xdp_attach / bpf_xdp_detach
    err = bpf_xdp_attach(ifindex, bpf_program__fd(prog), XDP_FLAGS_DRV_MODE, NULL);
    if (err) {
        fprintf(stderr, "port_filter: bpf_xdp_attach on %s: %s\n", ifname, strerror(-err));
        return 1;
    }
    __u32 attached = 0;
    if (bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &attached) || !attached) {
        fprintf(stderr, "port_filter: %s reports no attached program\n", ifname);
        status = 1;
    }
    if (phase("netlink", verdicts, ncpus, packets, seconds)) status = 1;
    if ((err = bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL))) {
        fprintf(stderr, "port_filter: bpf_xdp_detach: %s\n", strerror(-err));
        status = 1;
    }
    // bpf_link: detached when destroyed
    struct bpf_link *link = bpf_program__attach_xdp(prog, ifindex);
    if (!link) {
        fprintf(stderr, "port_filter: bpf_program__attach_xdp on %s: %s\n", ifname, strerror(errno));
        return 1;
    }
    if (phase("link", verdicts, ncpus, packets, seconds)) status = 1;
    bpf_link__destroy(link);
    bpf_object__close(obj);
    return status;
}
