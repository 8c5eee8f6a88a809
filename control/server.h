// The bpf() server: the kernel's bpf(2) command set over xdprt's maps, programs and BTF
// (DESIGN.md 2, 5). One implementation, reached in process (inprocess.h: libbpf's syscall() is
// routed here) and, with the preload shim, from other processes.
//
// Kernel-exact: attr of any size up to a page (non-zero bytes past what a command reads are
// refused, E2BIG past the union, EINVAL inside it), the kernel's errno per invalid case, verifier
// text in log_buf. Object handles are real fds (a map's fd shares its memfd's inode, programs,
// BTF and links have a memfd each); objects are found by inode, so dup/fork/fd passing work.
// Client memory (keys, values, insns, log buffers) is reached with process_vm_readv/writev, so a
// bad pointer is EFAULT, never a crash, in process or not.
//
// Thread affinity: bpf() calls are serialized by the server; programs it loaded may run on any
// thread (a worker registers as a qsbr reader).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace xdprt::isa {
struct insn;
}
namespace xdprt::maps {
struct spec;
struct xsk_binding;
}
namespace xdprt::vm {
struct program;
}

namespace xdprt::control {

enum class engine { interpreter, jit };

// How programs are checked before they run (DESIGN.md invariant 5).
enum class verify_mode {
    builtin,  // server_options::builtin_verifier must accept it
    kernel,   // a shadow load into the kernel against same-shaped maps must succeed
    off,      // nothing: only with `unsafe`
};

// What a builtin verifier is asked (the hook the verifier plugs into): the program as the client
// loaded it, before any rewriting, and the maps its ld_imm64 map references name.
struct verify_request {
    std::string_view name;
    uint32_t prog_type = 0, expected_attach_type = 0, prog_flags = 0;
    std::span<const isa::insn> insns;  // PSEUDO_MAP_FD / MAP_VALUE immediates are client fds
    std::function<const maps::spec*(int32_t fd)> map;  // null for an fd that names no map
    uint32_t log_level = 0;
};
// Accepts (writing what it wants the client's log_buf to show into `log`) or refuses with the
// errno and the reason, naming the instruction, as the kernel's verifier does.
using verifier_fn = std::function<result<void>(const verify_request&, std::string& log)>;

struct server_options {
    // Where objects live: every map, program, BTF and link is an unnamed file of this directory
    // (a map's file is its memory), and a pin is a hard link to it here, so pinned maps and their
    // contents survive a restart of the server. It must be a tmpfs; when it is not, a root server
    // mounts one there (as bpffs is mounted on /sys/fs/bpf), anyone else gets an error.
    std::filesystem::path pin_root = "/run/xdprt/bpffs";
    // The bpffs path clients pin under: `bpf_obj_pin(fd, "/sys/fs/bpf/x")` makes pin_root/x.
    std::filesystem::path client_bpffs = "/sys/fs/bpf";
    engine default_engine = engine::jit;              // interpreter when built without LLVM
    verify_mode verify = verify_mode::kernel;
    verifier_fn builtin_verifier;  // for verify_mode::builtin
    bool unsafe = false;  // allows verify_mode::off
};

class server {
public:
    [[nodiscard]] static result<std::unique_ptr<server>> create(server_options opts);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // One bpf(2) call from process `pid` (0: this process): attr lives in that process's memory
    // at `attr_addr`, `size` bytes as passed. Returns what bpf() returns, or -errno. For another
    // process, `pidfd` is its pidfd: the fds the command names are that process's, and the
    // server takes duplicates of them through it (pidfd_getfd); an fd the command returns
    // (returns_fd) is then this process's, for the caller to pass on (SCM_RIGHTS) and close.
    long bpf(int cmd, uint64_t attr_addr, uint32_t size, pid_t pid = 0, int pidfd = -1);
    // Whether a successful `cmd` returns a new fd.
    static bool returns_fd(int cmd);
    // What the fd `fd` of process `pid` (pidfd `pidfd`; 0 and -1: this process) is, as the
    // kernel names it in /proc/PID/fd: "bpf-map", "bpf-prog", "bpf-btf" ("btf" in the kernel's
    // anon inode name), "bpf-link"; empty for anything else.
    std::string kind_of(int fd, pid_t pid = 0, int pidfd = -1);
    // The lines the kernel's /proc/PID/fdinfo/FD shows for such an fd past the generic ones
    // (map_type, key_size, ..., memlock, map_id, frozen; prog_type, prog_tag, prog_id, ...);
    // empty for anything else.
    std::string fdinfo(int fd, pid_t pid = 0, int pidfd = -1);

    // perf_event_open(2) from process `pid` (0: this process) for the events xdprt serves: BPF
    // output events (PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT) of one CPU (pid -1), the ones a
    // PERF_EVENT_ARRAY takes (perf_commands.cpp). Returns the new fd or -errno, or nothing for any
    // other event, which is the kernel's to serve.
    std::optional<long> perf_event_open(uint64_t attr_addr, int pid, int cpu, int group_fd, unsigned long flags,
                                        pid_t client = 0, int client_pidfd = -1);

    const server_options& options() const;

    // A client (process `pid`) whose connection carried writer token `token` is gone: every map
    // writer lock it still holds is taken back (it was killed mid-write through a map's shared
    // memory), with a line on stderr naming the map.
    void release_writer(uint32_t token, pid_t pid);

    // The message of the last failed command: what and where, for logs and tests.
    const std::string& last_error() const;

    // Live objects, after releasing those nothing refers to any more (count() reaps first).
    struct object_counts {
        size_t maps = 0, progs = 0, btfs = 0, links = 0, perf_events = 0;
    };
    object_counts count();

    // Object release. An object lives while a client holds an fd of it (in any process, through
    // dup, fork, SCM_RIGHTS or an mmap), while it is pinned, and while another live object or an
    // attachment refers to it, as in the kernel. The server learns that a client's last fd of an
    // object closed from inotify (each fd it hands out is a fresh open file description of the
    // object's file, and closing the last reference to one raises IN_CLOSE). reap() processes
    // those events and releases what is no longer referenced; bpf() and count() call it, and an
    // event loop calls it when notify_fd() is readable.
    void reap();
    int notify_fd() const;

    // The interfaces XDP programs attach to (the dataplane's ports and af_xdp interfaces):
    // LINK_CREATE on any other ifindex is refused. Served until withdrawn; withdrawing detaches.
    void serve_interface(uint32_t ifindex, std::string name);
    void withdraw_interface(uint32_t ifindex);
    // The id of the program attached to `ifindex`, 0 when none.
    uint32_t attached_prog_id(uint32_t ifindex);

    // Netlink's XDP attach (RTM_SETLINK / RTM_NEWLINK with IFLA_XDP, the kernel's
    // dev_xdp_attach), with its checks and errnos: `prog_fd` -1 detaches; with
    // XDP_FLAGS_REPLACE, `expected_fd` (-1: none) must name the program attached now. The fds
    // are process `pid`'s (pidfd as in bpf()). Returns 0 or -errno (last_error says why).
    long xdp_set(uint32_t ifindex, int prog_fd, uint32_t flags, int expected_fd, pid_t pid = 0, int pidfd = -1);
    // What netlink reports of the served interfaces (IFLA_XDP): the program's id and its mode
    // (XDP_ATTACHED_DRV or XDP_ATTACHED_SKB; XDP_ATTACHED_NONE and id 0 without one).
    struct xdp_report {
        uint32_t ifindex = 0, prog_id = 0;
        uint8_t attached = 0;
    };
    std::vector<xdp_report> xdp_reports();

    // An XDP program as the dataplane runs it: `owner` keeps it (and the maps it uses) alive.
    struct runnable_prog {
        const vm::program* prog = nullptr;  // null: nothing attached
        std::shared_ptr<const void> owner;
        std::string name;
        uint32_t id = 0;
        std::vector<uint32_t> map_types;    // of the maps it uses (BPF_MAP_TYPE_*)
    };
    // Told whenever the program attached to a served interface changes (prog null: detached), under
    // the server's lock, on the thread running the command (or reap()). An error refuses an attach
    // or replace, and the command fails with it; a detach cannot be refused.
    using xdp_listener = std::function<result<void>(uint32_t ifindex, const runnable_prog& p)>;
    void set_xdp_listener(xdp_listener fn);
    // XSKMAP updates: the fd (of this process) of an AF_XDP socket entering an XSKMAP goes to the
    // binder (the dataplane's bind_xsk), whose answer the element holds while it is in the map;
    // its refusal fails the update. Without a binder such updates are refused (EOPNOTSUPP).
    using xsk_binder = std::function<result<std::shared_ptr<const maps::xsk_binding>>(int fd)>;
    void set_xsk_binder(xsk_binder fn);
    // The runnable program behind a program fd of this process (EINVAL: not an XDP program here).
    [[nodiscard]] result<runnable_prog> runnable(int prog_fd);

    struct impl;

private:
    explicit server(std::unique_ptr<impl> i);
    std::unique_ptr<impl> _impl;
};

}  // namespace xdprt::control
