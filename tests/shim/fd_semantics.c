// Object fds of the appliance behave as the kernel's in a client process (suite shim runs this
// through `xdprt with`, and against the kernel): dup, dup2, close of the original, fork (the child
// uses the inherited fd), exec with an inherited fd, mmap of a BPF_F_MMAPABLE array (the mapping
// and bpf() see the same values), a ring buffer read with libbpf's ring_buffer (mmap and epoll),
// a kernel perf event refusing a program that uses the map, an fd number freed (close, the raw
// close syscall, close_range) and reused naming the new map, and a hash map written by a forked
// child. Prints one line per check; exit status 1 on a failure.
//
// usage: fd_semantics                     (the parent run)
//        fd_semantics --exec FD           (the image exec'd with FD inherited)
//        fd_semantics --hammer PIN SECS   (rewrites 4 KiB values of the pinned hash map PIN:
//                                          1000 times, then on for at most SECS seconds and 10M
//                                          updates; a writer the suite kills mid-write)
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void check(const char *what, int ok) {
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    failures += !ok;
}

static int records, record_ok;
static int on_record(void *ctx, void *data, size_t size) {
    (void)ctx;
    uint64_t v = 0;
    if (size == 8) memcpy(&v, data, 8);
    records++;
    record_ok = size == 8 && v == 0x1122334455667788ull;
    return 0;
}

static uint64_t value_at(int fd, uint32_t key) {
    uint64_t v = 0;
    if (bpf_map_lookup_elem(fd, &key, &v)) return UINT64_MAX;
    return v;
}

static int hammer(const char *pin, int seconds) {
    int fd = bpf_obj_get(pin);
    if (fd < 0) {
        perror(pin);
        return 1;
    }
    static uint64_t value[512];
    time_t end = time(NULL) + seconds;
    for (uint64_t n = 0; n < 10000000 && (n < 1000 || time(NULL) < end); ++n) {
        uint32_t key = (uint32_t)(n % 16);
        value[0] = n;
        if (bpf_map_update_elem(fd, &key, value, BPF_ANY) != 0) {
            perror("update");
            return 1;
        }
    }
    return 0;
}

// Closes `fd` one of three ways, then creates a hash map, which takes the lowest free number.
static int close_and_recreate(int fd, int how) {
    if (how == 0) close(fd);
    else if (how == 1) syscall(SYS_close, fd);
    else syscall(SYS_close_range, fd, fd, 0);
    return bpf_map_create(BPF_MAP_TYPE_HASH, "fdsem_reuse", 4, 8, 8, NULL);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--exec")) {
        int fd = atoi(argv[2]);
        check("exec: the inherited fd still names the map", value_at(fd, 1) == 42);
        return failures ? 1 : 0;
    }
    if (argc == 4 && !strcmp(argv[1], "--hammer")) return hammer(argv[2], atoi(argv[3]));

    // An fd number freed and taken again names the new map, however it was closed.
    const char *ways[] = {"close", "the close syscall", "close_range"};
    int reuse = bpf_map_create(BPF_MAP_TYPE_HASH, "fdsem_reuse", 4, 8, 8, NULL);
    for (int how = 0; how < 3 && reuse >= 0; ++how) {
        uint32_t k0 = 0;
        uint64_t mine = 1000 + how;
        int ok = bpf_map_update_elem(reuse, &k0, &mine, BPF_ANY) == 0 && value_at(reuse, 0) == mine;
        int again = close_and_recreate(reuse, how);
        char what[96];
        snprintf(what, sizeof what, "a number freed by %s and reused names the new map", ways[how]);
        check(what, ok && again == reuse && value_at(again, 0) == UINT64_MAX && errno == ENOENT);
        reuse = again;
    }
    close(reuse);

    // A hash map written by a forked child (a connection of its own) and by its parent.
    int hash = bpf_map_create(BPF_MAP_TYPE_HASH, "fdsem_hash", 4, 8, 64, NULL);
    pid_t writer_child = fork();
    if (writer_child == 0) {
        int ok = 1;
        for (uint32_t k = 0; k < 32; ++k) {
            uint64_t v = 500 + k;
            ok &= bpf_map_update_elem(hash, &k, &v, BPF_ANY) == 0;
        }
        uint32_t gone = 7;
        ok &= bpf_map_delete_elem(hash, &gone) == 0;
        _exit(ok ? 0 : 1);
    }
    int hash_status = 0;
    waitpid(writer_child, &hash_status, 0);
    uint32_t walked = 0, at = 0, next = 0;
    for (const uint32_t *k = NULL; bpf_map_get_next_key(hash, k, &next) == 0; k = &at, at = next) ++walked;
    check("fork: a child's hash updates and delete reach the parent",
          WIFEXITED(hash_status) && WEXITSTATUS(hash_status) == 0 && value_at(hash, 31) == 531 &&
          value_at(hash, 7) == UINT64_MAX && walked == 31);
    close(hash);

    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "fdsem", 4, 8, 512, &opts);
    check("create an mmapable array", fd >= 0);
    if (fd < 0) return 1;
    uint32_t key = 1;
    uint64_t v = 42;
    check("update through the fd", bpf_map_update_elem(fd, &key, &v, BPF_ANY) == 0);

    int copy = dup(fd);
    close(fd);
    check("dup, then close the original: the copy still works", value_at(copy, 1) == 42);
    int high = dup2(copy, 100);
    check("dup2 to fd 100 works", high == 100 && value_at(100, 1) == 42);

    uint64_t *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, copy, 0);
    check("mmap of the array", mem != MAP_FAILED);
    if (mem != MAP_FAILED) {
        check("the mapping shows what bpf() wrote", mem[1] == 42);
        mem[2] = 7;
        check("bpf() shows what the mapping wrote", value_at(copy, 2) == 7);
        munmap(mem, 4096);
    }

    pid_t child = fork();
    if (child == 0) {
        uint64_t nine = 9;
        uint32_t k = 3;
        int ok = value_at(copy, 1) == 42 && bpf_map_update_elem(copy, &k, &nine, BPF_ANY) == 0;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    check("fork: the child looks up and updates through the inherited fd", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    check("the parent sees the child's update", value_at(copy, 3) == 9);

    child = fork();
    if (child == 0) {
        char arg[16];
        snprintf(arg, sizeof arg, "%d", high);  // fd 100 is not close-on-exec (dup2 clears it)
        execl("/proc/self/exe", argv[0], "--exec", arg, (char *)NULL);
        _exit(127);
    }
    waitpid(child, &status, 0);
    check("exec: a new image uses the inherited fd", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    // A tracing-side hook given a program that uses the map: refused (the kernel: not a perf
    // event program; through the shim: the program is the appliance's, which says so).
    struct bpf_insn insns[] = {
        {BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, copy},
        {0, 0, 0, 0, 0},
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    int prog = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "uses_map", "GPL", insns, 4, NULL);
    struct perf_event_attr pa = {.type = PERF_TYPE_SOFTWARE, .size = sizeof pa, .config = PERF_COUNT_SW_CPU_CLOCK,
                                 .sample_period = 1000000, .disabled = 1};
    int ev = (int)syscall(SYS_perf_event_open, &pa, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    check("a program using the map cannot run on a kernel perf event",
          prog >= 0 && ev >= 0 && ioctl(ev, PERF_EVENT_IOC_SET_BPF, prog) < 0 && errno == EINVAL);
    close(ev);
    close(prog);

    // A ring buffer: a program run (BPF_PROG_TEST_RUN) writes a record, libbpf's ring_buffer
    // (mmap of the ring, epoll on its fd) receives it.
    int ring = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "fdsem_ring", 0, 0, 4096 * 4, NULL);
    check("create a ring buffer", ring >= 0);
    struct bpf_insn out[] = {
        {BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, 0, 0, 0x55667788},
        {0, 0, 0, 0, 0x11223344},
        {BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_1, -8, 0},
        {BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, ring},
        {0, 0, 0, 0, 0},
        {BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0},
        {BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -8},
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, 8},
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, 0},
        {BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_ringbuf_output},
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    int writer = bpf_prog_load(BPF_PROG_TYPE_XDP, "ring_writer", "GPL", out, sizeof out / sizeof out[0], NULL);
    check("load a program that writes the ring", writer >= 0);
    struct ring_buffer *rb = ring >= 0 ? ring_buffer__new(ring, on_record, NULL, NULL) : NULL;
    check("libbpf's ring_buffer on it (mmap, epoll)", rb != NULL);
    unsigned char frame[64] = {0};
    LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame, .data_size_in = sizeof frame, .repeat = 1);
    check("run the writer", writer >= 0 && bpf_prog_test_run_opts(writer, &run) == 0 && run.retval == XDP_PASS);
    int polled = rb ? ring_buffer__poll(rb, 2000) : -1;
    check("ring_buffer__poll wakes up with the record, byte for byte", polled == 1 && records == 1 && record_ok);
    ring_buffer__free(rb);
    close(writer);
    close(ring);
    close(high);
    close(copy);
    return failures ? 1 : 0;
}
