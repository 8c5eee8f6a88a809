// libxdprt-preload.so: unmodified loaders against the appliance (DESIGN.md section 5).
// `xdprt with -- CMD` preloads it; XDPRT_SOCKET names the control socket (default
// /run/xdprt/control.sock).
//
// bpf(): every tool issues it through libc's syscall(), which this library defines. A call goes
// to the appliance (over the control socket, wire.h) or to the kernel:
// - on an object fd (element commands, test runs, info, pins, links): to whoever made the fd.
//   Appliance fds are files of its store (their st_dev, from the hello); kernel fds are not.
// - MAP_CREATE, BTF_LOAD, OBJ_GET, the id walks (GET_NEXT_ID, GET_FD_BY_ID): the appliance.
// - PROG_LOAD: XDP programs, and programs that use an appliance map or BTF (loaders' feature
//   probes, which must see what the maps they made can do), to the appliance; every other program
//   type to the kernel.
// - anything else (cgroup attach, iterators, stats, ...): the kernel.
// perf_event_open is the kernel's. epoll on an appliance ring buffer (libbpf's ring_buffer) waits
// on an eventfd that a watcher keeps readable while the ring holds data (ring_wakeup.h), as
// in process.
//
// Element operations on ARRAY, PERCPU_ARRAY and the value-holding hash maps are served here,
// from the map's shared memory, without a round trip (maps::view): lookups (lock-free copies,
// validated against concurrent writers), updates, hash deletes and GET_NEXT_KEY. Hash writes take
// the map's writer lock as this connection's token from the hello, so the appliance takes the
// lock back if this process dies holding it, and leave what they unlink for the appliance to
// reclaim; when every spare element is waiting for that, the update goes to the appliance. A view
// of a map fd is kept until the client closes that fd (so closing still releases the map).
// BPF_F_LOCK, the other flags of lookups, and every other type go to the appliance.
//
// rtnetlink: on NETLINK_ROUTE sockets, RTM_NEWLINK / RTM_SETLINK carrying IFLA_XDP for an
// interface the appliance serves (its ports' twins) is answered by the appliance (attach,
// replace, detach, with the kernel's errnos and an extack message); what the kernel answers,
// link dumps and single GETLINKs, has IFLA_XDP of the appliance's interfaces replaced by the
// appliance's (mode and program id). Everything else on those sockets passes untouched.
//
// bpffs: the appliance's pins are files under its pin root; /sys/fs/bpf/... in statfs, stat,
// mkdir, rmdir, unlink, remove, rename, open and opendir is that pin root, and statfs there says
// BPF_FS_MAGIC.
//
// With no appliance listening, one line says so and bpf() fails with ENOSYS, as on a kernel
// without the bpf syscall; a refused client (not root, not in the group) gets EPERM. After a
// fork the child connects anew (the server reads the memory of the process that connected).
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/close_range.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "control/ring_wakeup.h"
#include "control/wire.h"
#include "maps/map.h"

namespace {

namespace wire = xdprt::control::wire;

constexpr char bpffs[] = "/sys/fs/bpf";

struct connection {
    std::mutex lock;
    int sock = -1;
    pid_t pid = 0;        // the process that connected
    bool refused = false;  // the appliance said no (EPERM), or none listens (ENOSYS): said once
    int refusal = 0;
    std::atomic<uint64_t> store_dev{0};  // read without the lock by element reads
    std::atomic<uint32_t> writer_token{0};  // the hello's: what map writes here hold the lock as
                                            // (0 in a forked child until it connects anew)
    std::string pin_root;
};
// Never destroyed: close() and bpf() may come from other libraries' destructors at exit.
connection& conn() {
    static auto* c = new connection;
    return *c;
}

template <class F>
F next(const char* name) {
    return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

long kernel_syscall(long n, long a, long b, long c, long d, long e, long f) {
    static auto real = next<long (*)(long, ...)>("syscall");
    return real(n, a, b, c, d, e, f);
}

const char* socket_path() {
    const char* p = getenv("XDPRT_SOCKET");
    return p && *p ? p : "/run/xdprt/control.sock";
}

// One exchange; `fd_out` gets the fd riding on the reply. False when the connection broke.
bool exchange(int sock, const wire::request& rq, wire::reply& rep, int& fd_out, bool cloexec = true) {
    fd_out = -1;
    if (send(sock, &rq, sizeof rq, MSG_NOSIGNAL) != ssize_t(sizeof rq)) return false;
    iovec iov{&rep, sizeof rep};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do n = recvmsg(sock, &msg, cloexec ? MSG_CMSG_CLOEXEC : 0);
    while (n < 0 && errno == EINTR);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) std::memcpy(&fd_out, CMSG_DATA(c), sizeof(int));
    if (n != ssize_t(sizeof rep) || rep.magic != wire::magic) {
        if (fd_out >= 0) close(fd_out);
        fd_out = -1;
        return false;
    }
    return true;
}

// Connected to the appliance (with its hello), or the errno a call gets without one. Locked.
int ensure_connected(connection& c) {
    pid_t me = getpid();
    if (c.sock >= 0 && c.pid == me) return 0;
    if (c.sock >= 0) close(c.sock);  // a forked child: the parent's connection reads the parent
    c.sock = -1;
    if (c.refused) return c.refusal;
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path(), sizeof addr.sun_path - 1);
    if (s < 0 || connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int e = errno;
        if (s >= 0) close(s);
        c.refused = true;
        if (e == EACCES || e == EPERM) {
            fprintf(stderr, "xdprt: no permission to use the appliance at %s (%s): bpf() fails with EPERM\n", socket_path(), strerror(e));
            c.refusal = EPERM;
        } else {
            fprintf(stderr, "xdprt: no appliance at %s (%s): bpf() fails with ENOSYS; start one with `xdprt run`\n",
                    socket_path(), strerror(e));
            c.refusal = ENOSYS;
        }
        return c.refusal;
    }
    wire::request rq;
    rq.call = uint16_t(wire::call::hello);
    wire::reply rep;
    int fd;
    if (!exchange(s, rq, rep, fd) || rep.result < 0) {
        bool said = rep.magic == wire::magic && rep.text[0];
        fprintf(stderr, "%s\n", said ? rep.text : "xdprt: the appliance closed the control socket");
        close(s);
        c.refused = true;
        c.refusal = rep.magic == wire::magic && rep.result < 0 ? int(-rep.result) : ENOSYS;
        return c.refusal;
    }
    c.sock = s;
    c.pid = me;
    c.store_dev.store(rep.store_dev, std::memory_order_release);
    c.writer_token.store(uint32_t(rep.result), std::memory_order_release);
    rep.text[sizeof rep.text - 1] = 0;
    c.pin_root = rep.text;
    return 0;
}

// Reads our own memory without faulting on a bad pointer (the call then gets EFAULT from
// whoever serves it).
bool peek(const void* addr, void* out, size_t n) {
    iovec local{out, n}, remote{const_cast<void*>(addr), n};
    return addr && process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == ssize_t(n);
}

bool is_appliance_fd(const connection& c, int fd) {
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_dev == c.store_dev.load(std::memory_order_relaxed);
}

bool attr_fd_is_ours(const connection& c, const void* attr, size_t off) {
    int32_t fd;
    return peek(static_cast<const char*>(attr) + off, &fd, sizeof fd) && is_appliance_fd(c, fd);
}

// A PROG_LOAD for the appliance: XDP, or using an appliance map or BTF.
bool prog_load_is_ours(const connection& c, const void* attr, unsigned size) {
    union bpf_attr a;
    std::memset(&a, 0, sizeof a);
    if (!peek(attr, &a, std::min<size_t>(size, sizeof a))) return true;  // the appliance answers EFAULT
    if (a.prog_type == BPF_PROG_TYPE_XDP) return true;
    if (size > offsetof(union bpf_attr, prog_btf_fd) && a.prog_btf_fd && is_appliance_fd(c, int(a.prog_btf_fd))) return true;
    if (a.insn_cnt > 1'000'000) return false;
    std::string insns(size_t(a.insn_cnt) * sizeof(bpf_insn), '\0');
    if (!peek(reinterpret_cast<const void*>(uintptr_t(a.insns)), insns.data(), insns.size())) return false;
    for (uint32_t k = 0; k < a.insn_cnt; ++k) {
        bpf_insn i;
        std::memcpy(&i, insns.data() + k * sizeof i, sizeof i);
        bool map_ref = i.code == (BPF_LD | BPF_DW | BPF_IMM) && (i.src_reg == BPF_PSEUDO_MAP_FD || i.src_reg == BPF_PSEUDO_MAP_VALUE);
        if (map_ref && is_appliance_fd(c, i.imm)) return true;
    }
    return false;
}

bool to_appliance(const connection& c, int cmd, const void* attr, unsigned size) {
    switch (cmd) {
    case BPF_MAP_CREATE: case BPF_BTF_LOAD: case BPF_OBJ_GET:
    case BPF_PROG_GET_NEXT_ID: case BPF_MAP_GET_NEXT_ID: case BPF_BTF_GET_NEXT_ID: case BPF_LINK_GET_NEXT_ID:
    case BPF_PROG_GET_FD_BY_ID: case BPF_MAP_GET_FD_BY_ID: case BPF_BTF_GET_FD_BY_ID: case BPF_LINK_GET_FD_BY_ID:
        return true;
    case BPF_PROG_LOAD:
        return prog_load_is_ours(c, attr, size);
    case BPF_MAP_LOOKUP_ELEM: case BPF_MAP_UPDATE_ELEM: case BPF_MAP_DELETE_ELEM: case BPF_MAP_GET_NEXT_KEY:
    case BPF_MAP_LOOKUP_AND_DELETE_ELEM: case BPF_MAP_FREEZE:
        return attr_fd_is_ours(c, attr, offsetof(union bpf_attr, map_fd));
    case BPF_MAP_LOOKUP_BATCH: case BPF_MAP_LOOKUP_AND_DELETE_BATCH: case BPF_MAP_UPDATE_BATCH: case BPF_MAP_DELETE_BATCH:
        return attr_fd_is_ours(c, attr, offsetof(union bpf_attr, batch.map_fd));
    case BPF_PROG_TEST_RUN:
        return attr_fd_is_ours(c, attr, offsetof(union bpf_attr, test.prog_fd));
    case BPF_OBJ_GET_INFO_BY_FD:
        return attr_fd_is_ours(c, attr, offsetof(union bpf_attr, info.bpf_fd));
    case BPF_OBJ_PIN:
        return attr_fd_is_ours(c, attr, offsetof(union bpf_attr, bpf_fd));
    case BPF_PROG_BIND_MAP:
        return attr_fd_is_ours(c, attr, offsetof(union bpf_attr, prog_bind_map.prog_fd));
    case BPF_LINK_CREATE:
        return attr_fd_is_ours(c, attr, offsetof(union bpf_attr, link_create.prog_fd));
    case BPF_LINK_UPDATE: case BPF_LINK_DETACH:
        return attr_fd_is_ours(c, attr, offsetof(union bpf_attr, link_update.link_fd));
    default:
        return false;
    }
}

// ---- element reads from shared memory ------------------------------------------------------

// A view per map fd number, trusted without a syscall: every way this process closes or
// replaces an fd (close, dup2, dup3, close_range, closefrom, and those through syscall()) drops
// the views of the numbers it frees, and every fd bpf() returns starts with none.
struct cached_view {
    std::unique_ptr<xdprt::maps::view> v;
};
std::mutex view_lock;
std::map<int, cached_view>& views() {
    static auto* m = new std::map<int, cached_view>;  // never destroyed, as conn()
    return *m;
}

// fork: no thread of the parent holds view_lock in the child, and the child writes maps with a
// token of its own (none until it connects anew: its writes go to the appliance till then).
[[maybe_unused]] const int fork_hooks = pthread_atfork([] { view_lock.lock(); }, [] { view_lock.unlock(); }, [] {
    view_lock.unlock();
    conn().writer_token.store(0, std::memory_order_relaxed);
});

using xdprt::maps::is_value_hash;
bool is_array(uint32_t t) { return t == BPF_MAP_TYPE_ARRAY || t == BPF_MAP_TYPE_PERCPU_ARRAY; }

// MAP_LOOKUP_ELEM (no flags), MAP_UPDATE_ELEM, MAP_DELETE_ELEM and MAP_GET_NEXT_KEY on an
// appliance array or value hash, served from its memory: the syscall's result, or nothing for a
// call the appliance (or the kernel) must serve.
// The attr, key and value are used where the caller has them, as a library's arguments are: a
// null one is EFAULT, as from the kernel; one that points nowhere faults in the caller.
std::optional<long> local_element_op(long cmd, long attr, long size) {
    size_t need;  // the attr fields the command reads; a shorter attr is the appliance's to refuse
    switch (cmd) {
    case BPF_MAP_LOOKUP_ELEM: case BPF_MAP_UPDATE_ELEM: need = offsetof(union bpf_attr, flags) + 8; break;
    case BPF_MAP_GET_NEXT_KEY: need = offsetof(union bpf_attr, next_key) + 8; break;
    case BPF_MAP_DELETE_ELEM: need = offsetof(union bpf_attr, key) + 8; break;
    default: return std::nullopt;
    }
    if (!attr || size_t(size) < need) return std::nullopt;
    const auto& a = *reinterpret_cast<const union bpf_attr*>(attr);
    if (cmd == BPF_MAP_LOOKUP_ELEM && a.flags) return std::nullopt;
    connection& c = conn();
    const uint64_t store = c.store_dev.load(std::memory_order_acquire);  // set at the first connection
    if (!store) return std::nullopt;
    int fd = int(a.map_fd);
    std::lock_guard g(view_lock);
    auto it = views().find(fd);
    if (it == views().end()) {
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != store) return std::nullopt;
        auto v = xdprt::maps::view::open_writable(fd);  // an fd open read-only gets a read-only view
        if (!v) v = xdprt::maps::view::open(fd);
        if (!v) return std::nullopt;
        it = views().emplace(fd, cached_view{std::make_unique<xdprt::maps::view>(std::move(*v))}).first;
    }
    const xdprt::maps::view& v = *it->second.v;
    const auto& sp = v.spec();
    if (!is_array(sp.type) && !is_value_hash(sp.type)) return std::nullopt;
    const void* key = reinterpret_cast<const void*>(uintptr_t(a.key));
    // The kernel's errno where the window answers; nothing (the appliance serves it) where it
    // cannot: a read-only fd, BPF_F_LOCK, no spare element.
    auto answer = [](const xdprt::result<void>& r) -> std::optional<long> {
        if (r) return 0;
        if (r.error().code == EOPNOTSUPP || r.error().code == EAGAIN) return std::nullopt;
        return -long(r.error().code);
    };
    const uint32_t token = c.writer_token.load(std::memory_order_acquire);
    switch (cmd) {
    case BPF_MAP_UPDATE_ELEM:
        if (!v.writable() || !token) return std::nullopt;
        if (!a.key || !a.value) return -EFAULT;
        return answer(v.update(key, reinterpret_cast<const void*>(uintptr_t(a.value)), a.flags, token));
    case BPF_MAP_DELETE_ELEM:
        if (!is_value_hash(sp.type) || !v.writable() || !token) return std::nullopt;
        if (!a.key) return -EFAULT;
        return answer(v.erase(key, token));
    case BPF_MAP_GET_NEXT_KEY: {
        if (sp.flags & BPF_F_WRONLY) return std::nullopt;
        void* next = reinterpret_cast<void*>(uintptr_t(a.next_key));
        // As map_get_next_key: the type's answer first, then the copy to next_key (EFAULT).
        if (is_value_hash(sp.type)) {
            if (!v.writable() || !token) return std::nullopt;  // the walk takes the writer lock
            std::vector<std::byte> found(sp.key_size);
            auto r = answer(v.next_key(a.key ? key : nullptr, found.data(), token));
            if (r && *r == 0) {
                if (!next) return -EFAULT;
                std::memcpy(next, found.data(), found.size());
            }
            return r;
        }
        // array_map_get_next_key: no key or one past the end starts over; the last has none.
        uint32_t index = UINT32_MAX;
        if (a.key) std::memcpy(&index, key, 4);
        if (a.key && index == sp.max_entries - 1) return -ENOENT;
        if (!next) return -EFAULT;
        uint32_t n = index >= sp.max_entries ? 0 : index + 1;
        std::memcpy(next, &n, 4);
        return 0;
    }
    default: {  // BPF_MAP_LOOKUP_ELEM
        if (sp.flags & BPF_F_WRONLY) return std::nullopt;
        if (!a.key || !a.value) return -EFAULT;
        auto r = v.copy_out(key, reinterpret_cast<void*>(uintptr_t(a.value)));
        if (!r) return r.error().code == ENOENT ? std::optional<long>(-ENOENT) : std::nullopt;
        return 0;
    }
    }
}

// Runs `op`, which closes or replaces the fds [lo, hi], then drops the views cached for them, with
// view_lock held throughout: no element operation in between can cache a file that is going. The
// views' own fds close after the lock is released (their close comes back here).
template <class Op>
auto replacing_fds(long lo, long hi, Op op) {
    std::vector<std::unique_ptr<xdprt::maps::view>> gone;
    std::lock_guard g(view_lock);
    auto r = op();
    for (auto it = views().lower_bound(int(std::clamp<long>(lo, 0, INT_MAX))); it != views().end() && it->first <= hi;) {
        gone.push_back(std::move(it->second.v));
        it = views().erase(it);
    }
    // `g` unlocks before `gone` closes anything: locals go in reverse order of declaration.
    return r;
}
void forget_view(int fd) {
    replacing_fds(fd, fd, [] { return 0; });
}

long shim_bpf(long cmd, long attr, long size) {
    if (auto r = local_element_op(cmd, attr, size)) {
        if (*r < 0) {
            errno = int(-*r);
            return -1;
        }
        return *r;
    }
    connection& c = conn();
    std::lock_guard g(c.lock);
    if (int e = ensure_connected(c)) {
        errno = e;
        return -1;
    }
    if (!to_appliance(c, int(cmd), reinterpret_cast<const void*>(attr), unsigned(size)))
        return kernel_syscall(SYS_bpf, cmd, attr, size, 0, 0, 0);
    wire::request rq;
    rq.call = uint16_t(wire::call::bpf);
    rq.args[0] = cmd;
    rq.args[1] = attr;
    rq.args[2] = int64_t(uint32_t(size));
    wire::reply rep;
    int fd;
    if (!exchange(c.sock, rq, rep, fd)) {
        fprintf(stderr, "xdprt: the appliance went away (control socket %s)\n", socket_path());
        close(c.sock);
        c.sock = -1;
        errno = ENOSYS;
        return -1;
    }
    if (rep.flags & wire::to_kernel) return kernel_syscall(SYS_bpf, cmd, attr, size, 0, 0, 0);
    if (rep.result < 0) {
        // Attaching is where a program the appliance cannot run meets a hook: always said.
        // Other refusals are often a loader's feature probes: said with XDPRT_DEBUG.
        if ((cmd == BPF_LINK_CREATE || getenv("XDPRT_DEBUG")) && rep.text[0])
            fprintf(stderr, "xdprt: %.*s\n", int(sizeof rep.text), rep.text);
        errno = int(-rep.result);
        return -1;
    }
    if (rep.flags & wire::carries_fd) {
        forget_view(fd);  // a number freed behind our back (a raw syscall) has no view of its old file
        return fd;
    }
    return long(rep.result);
}

// The pin root's path for a path under /sys/fs/bpf (empty when `path` is elsewhere or no
// appliance answers).
std::string mapped(const char* path) {
    if (!path || std::strncmp(path, bpffs, sizeof bpffs - 1) != 0) return {};
    char after = path[sizeof bpffs - 1];
    if (after != 0 && after != '/') return {};
    connection& c = conn();
    std::lock_guard g(c.lock);
    if (ensure_connected(c)) return {};
    return c.pin_root + (path + sizeof bpffs - 1);
}

// The fd N of "/proc/self/DIR/N" (or /proc/<our pid>/DIR/N, /proc/thread-self/DIR/N), else -1.
int own_proc_fd(const char* path, const char* dir = "fd/") {
    if (!path || std::strncmp(path, "/proc/", 6) != 0) return -1;
    const char* rest = path + 6;
    char pid[32];
    snprintf(pid, sizeof pid, "%d/", int(getpid()));
    for (const char* who : {"self/", "thread-self/", static_cast<const char*>(pid)}) {
        size_t n = std::strlen(who);
        if (std::strncmp(rest, who, n) == 0) {
            rest += n;
            break;
        }
    }
    size_t n = std::strlen(dir);
    if (std::strncmp(rest, dir, n) != 0) return -1;
    char* end = nullptr;
    long fd = std::strtol(rest + n, &end, 10);
    return end != rest + n && *end == 0 && fd >= 0 && fd < INT32_MAX ? int(fd) : -1;
}

// /proc/self/fdinfo/N of an appliance fd: the file's generic lines (pos, flags, mnt_id, ino),
// then the kernel's lines for such an object (map_type, ..., memlock, map_id), in a memfd
// positioned at 0; -1 for any other path.
int appliance_fdinfo(const char* path, int flags) {
    int fd = own_proc_fd(path, "fdinfo/");
    if (fd < 0) return -1;
    std::string extra;
    {
        connection& c = conn();
        std::lock_guard g(c.lock);
        if (ensure_connected(c) || !is_appliance_fd(c, fd)) return -1;
        wire::request rq;
        rq.call = uint16_t(wire::call::fdinfo);
        rq.args[0] = fd;
        wire::reply rep;
        int passed;
        if (!exchange(c.sock, rq, rep, passed) || rep.result < 0) return -1;
        rep.text[sizeof rep.text - 1] = 0;
        extra = rep.text;
    }
    static auto real_open = next<int (*)(const char*, int, ...)>("open");
    std::string text;
    if (int real = real_open(path, O_RDONLY | O_CLOEXEC); real >= 0) {
        char buf[1024];
        ssize_t n = read(real, buf, sizeof buf);
        ::close(real);
        std::string generic(buf, size_t(std::max<ssize_t>(n, 0)));
        for (const char* key : {"pos:", "flags:", "mnt_id:", "ino:"}) {
            size_t at = generic.find(key);
            if (at != std::string::npos) text += generic.substr(at, generic.find('\n', at) - at + 1);
        }
    }
    text += extra;
    int m = memfd_create("fdinfo", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
    if (m < 0) return -1;
    if (write(m, text.data(), text.size()) != ssize_t(text.size()) || lseek(m, 0, SEEK_SET) != 0) {
        ::close(m);
        return -1;
    }
    return m;
}

// readlink of an appliance fd in /proc: the kernel's name for such an object
// ("anon_inode:bpf-map", ...), which tools read to tell maps from programs. False for other fds.
bool appliance_fd_link(int fd, std::string& out) {
    connection& c = conn();
    std::lock_guard g(c.lock);
    if (ensure_connected(c) || !is_appliance_fd(c, fd)) return false;
    wire::request rq;
    rq.call = uint16_t(wire::call::fd_kind);
    rq.args[0] = fd;
    wire::reply rep;
    int passed;
    if (!exchange(c.sock, rq, rep, passed) || rep.result < 0) return false;
    rep.text[sizeof rep.text - 1] = 0;
    out = std::string("anon_inode:") + rep.text;
    return true;
}

// `path`, or its place under the pin root.
struct path_arg {
    explicit path_arg(const char* p) : original(p), m(mapped(p)) {}
    const char* get() const { return m.empty() ? original : m.c_str(); }
    bool is_bpffs() const { return !m.empty(); }
    const char* original;
    std::string m;
};

// ---- rtnetlink ----------------------------------------------------------------------------

// A NETLINK_ROUTE socket of the process: what its next receives return, oldest first.
struct route_socket {
    std::deque<std::string> pending;  // datagrams: the appliance's answers, patched kernel ones
};
std::mutex route_lock;
std::map<int, route_socket>& route_sockets() {
    static auto* m = new std::map<int, route_socket>;  // never destroyed, as conn()
    return *m;
}
bool is_route_socket(int fd) {
    std::lock_guard g(route_lock);
    return route_sockets().count(fd) > 0;
}

struct served_if {
    uint32_t prog_id = 0;
    uint8_t attached = 0;
};
// The appliance's interfaces and what is attached to each (empty without an appliance).
std::map<uint32_t, served_if> xdp_reports() {
    std::map<uint32_t, served_if> out;
    connection& c = conn();
    std::lock_guard g(c.lock);
    if (ensure_connected(c)) return out;
    wire::request rq;
    rq.call = uint16_t(wire::call::xdp_reports);
    wire::reply rep;
    int fd;
    if (!exchange(c.sock, rq, rep, fd) || rep.result < 0) return out;
    rep.text[sizeof rep.text - 1] = 0;
    const char* p = rep.text;
    unsigned ifindex, prog, attached;
    int used = 0;
    while (sscanf(p, "%u %u %u;%n", &ifindex, &prog, &attached, &used) == 3 && used > 0) {
        out[ifindex] = {prog, uint8_t(attached)};
        p += used;
    }
    return out;
}

void put_attr(std::string& out, uint16_t type, const void* data, size_t len) {
    rtattr a{uint16_t(RTA_LENGTH(len)), type};
    out.append(reinterpret_cast<const char*>(&a), sizeof a);
    out.append(static_cast<const char*>(data), len);
    out.append(RTA_ALIGN(a.rta_len) - a.rta_len, '\0');
}

// IFLA_XDP as the kernel's rtnl_xdp_fill writes it.
std::string xdp_attr(const served_if& s) {
    std::string inner;
    put_attr(inner, IFLA_XDP_ATTACHED, &s.attached, 1);
    if (s.attached != XDP_ATTACHED_NONE) {
        put_attr(inner, IFLA_XDP_PROG_ID, &s.prog_id, 4);
        put_attr(inner, s.attached == XDP_ATTACHED_SKB ? IFLA_XDP_SKB_PROG_ID : IFLA_XDP_DRV_PROG_ID, &s.prog_id, 4);
    }
    std::string out;
    put_attr(out, IFLA_XDP | NLA_F_NESTED, inner.data(), inner.size());
    return out;
}

// A kernel datagram with the appliance's IFLA_XDP in its RTM_NEWLINK messages for the
// appliance's interfaces (answers to GETLINK, single or dump).
std::string patch_links(const char* data, size_t len) {
    bool any = false;
    size_t scan = len;  // NLMSG_NEXT counts it down
    for (auto* h = reinterpret_cast<const nlmsghdr*>(data); NLMSG_OK(h, scan); h = NLMSG_NEXT(h, scan)) any |= h->nlmsg_type == RTM_NEWLINK;
    if (!any) return {};
    auto served = xdp_reports();
    if (served.empty()) return {};
    std::string out;
    size_t left = len;
    for (auto* h = reinterpret_cast<const nlmsghdr*>(data); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
        size_t start = out.size();
        auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
        auto it = h->nlmsg_type == RTM_NEWLINK && h->nlmsg_len >= NLMSG_LENGTH(sizeof *ifi) ? served.find(uint32_t(ifi->ifi_index)) : served.end();
        if (it == served.end()) {
            out.append(reinterpret_cast<const char*>(h), NLMSG_ALIGN(h->nlmsg_len));
            continue;
        }
        out.append(reinterpret_cast<const char*>(h), NLMSG_LENGTH(sizeof *ifi));
        int alen = int(h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi));
        for (auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(ifi) + NLMSG_ALIGN(sizeof *ifi)); RTA_OK(a, alen);
             a = RTA_NEXT(a, alen))
            if ((a->rta_type & NLA_TYPE_MASK) != IFLA_XDP) out.append(reinterpret_cast<const char*>(a), RTA_ALIGN(a->rta_len));
        out += xdp_attr(it->second);
        reinterpret_cast<nlmsghdr*>(out.data() + start)->nlmsg_len = uint32_t(out.size() - start);
    }
    return out;
}

// The appliance's answer to an IFLA_XDP request: NLMSG_ERROR with the errno (0: the ack),
// the request's header, and the reason as extack.
std::string nl_answer(int fd, const nlmsghdr& req, long result, const char* why) {
    sockaddr_nl self{};
    socklen_t slen = sizeof self;
    getsockname(fd, reinterpret_cast<sockaddr*>(&self), &slen);
    nlmsgerr err{};
    err.error = int(result);
    err.msg = req;
    nlmsghdr h{};
    h.nlmsg_type = NLMSG_ERROR;
    h.nlmsg_flags = NLM_F_CAPPED;
    h.nlmsg_seq = req.nlmsg_seq;
    h.nlmsg_pid = self.nl_pid;
    std::string body(reinterpret_cast<const char*>(&err), sizeof err);
    if (result < 0 && why && *why) {
        h.nlmsg_flags |= NLM_F_ACK_TLVS;
        put_attr(body, NLMSGERR_ATTR_MSG, why, std::strlen(why) + 1);
    }
    h.nlmsg_len = uint32_t(NLMSG_HDRLEN + body.size());
    std::string out(reinterpret_cast<const char*>(&h), NLMSG_HDRLEN);
    return out + body;
}

// An IFLA_XDP request for an appliance interface, answered by the appliance; false for anything
// else (the kernel's).
bool serve_xdp_request(int fd, const std::string& msg) {
    if (msg.size() < NLMSG_LENGTH(sizeof(ifinfomsg))) return false;
    auto* h = reinterpret_cast<const nlmsghdr*>(msg.data());
    if ((h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_SETLINK) || h->nlmsg_len > msg.size() ||
        h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg)))
        return false;
    auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
    uint32_t ifindex = uint32_t(ifi->ifi_index);
    const rtattr* xdp = nullptr;
    int alen = int(h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi));
    for (auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(ifi) + NLMSG_ALIGN(sizeof *ifi)); RTA_OK(a, alen);
         a = RTA_NEXT(a, alen)) {
        uint16_t type = a->rta_type & NLA_TYPE_MASK;
        if (type == IFLA_XDP) xdp = a;
        if (type == IFLA_IFNAME && !ifindex) {
            std::string name(static_cast<const char*>(RTA_DATA(a)), RTA_PAYLOAD(a));
            ifindex = if_nametoindex(name.c_str());
        }
    }
    if (!xdp || !ifindex || !xdp_reports().count(ifindex)) return false;
    int32_t prog_fd = -1, expected_fd = -1;
    uint32_t flags = 0;
    bool attached_attr = false;
    int xlen = int(RTA_PAYLOAD(xdp));
    for (auto* a = static_cast<const rtattr*>(RTA_DATA(xdp)); RTA_OK(a, xlen); a = RTA_NEXT(a, xlen)) {
        switch (a->rta_type & NLA_TYPE_MASK) {
        case IFLA_XDP_FD: std::memcpy(&prog_fd, RTA_DATA(a), 4); break;
        case IFLA_XDP_FLAGS: std::memcpy(&flags, RTA_DATA(a), 4); break;
        case IFLA_XDP_EXPECTED_FD: std::memcpy(&expected_fd, RTA_DATA(a), 4); break;
        case IFLA_XDP_ATTACHED: attached_attr = true; break;
        default: break;
        }
    }
    long result;
    std::string why;
    if (attached_attr) {
        result = -EINVAL;  // do_setlink: IFLA_XDP_ATTACHED is the kernel's to report, not to set
        why = "IFLA_XDP_ATTACHED cannot be set";
    } else {
        connection& c = conn();
        std::lock_guard g(c.lock);
        wire::request rq;
        rq.call = uint16_t(wire::call::xdp_set);
        rq.args[0] = ifindex;
        rq.args[1] = prog_fd;
        rq.args[2] = flags;
        rq.args[3] = expected_fd;
        wire::reply rep;
        int passed;
        if (ensure_connected(c) || !exchange(c.sock, rq, rep, passed)) {
            result = -ENODEV;
            why = "xdprt: the appliance went away";
        } else {
            result = long(rep.result);
            rep.text[sizeof rep.text - 1] = 0;
            why = rep.text;
        }
    }
    // The kernel acks when asked (NLM_F_ACK) and always reports an error.
    if (result < 0 || (h->nlmsg_flags & NLM_F_ACK)) {
        std::lock_guard g(route_lock);
        route_sockets()[fd].pending.push_back(nl_answer(fd, *h, result, why.c_str()));
    }
    return true;
}

std::string gather(const msghdr* msg) {
    std::string out;
    for (size_t k = 0; k < msg->msg_iovlen; ++k) out.append(static_cast<const char*>(msg->msg_iov[k].iov_base), msg->msg_iov[k].iov_len);
    return out;
}

// One receive on a route socket: the next pending datagram, or the kernel's next (patched). As
// recvmsg: MSG_PEEK leaves it, MSG_TRUNC returns its whole length, a short buffer truncates.
ssize_t route_recv(int fd, msghdr* msg, int flags) {
    static auto real = next<ssize_t (*)(int, msghdr*, int)>("recvmsg");
    std::string d;
    {
        std::lock_guard g(route_lock);
        auto& q = route_sockets()[fd].pending;
        if (!q.empty()) d = q.front();
    }
    size_t room = 0;
    for (size_t k = 0; k < msg->msg_iovlen; ++k) room += msg->msg_iov[k].iov_len;
    if (d.empty()) {
        // The caller's size: the kernel sizes dump datagrams by the largest buffer its reader
        // offered. A peek (iproute2 asks the size first, then takes it) may take 32 KiB.
        size_t want = (flags & MSG_PEEK) || room == 0 ? std::max<size_t>(room, 32768) : room;
        std::string buf(want, '\0');
        iovec iov{buf.data(), buf.size()};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_name = msg->msg_name;
        m.msg_namelen = msg->msg_namelen;
        ssize_t n = real(fd, &m, flags & ~(MSG_PEEK | MSG_TRUNC));
        if (n < 0) return n;
        msg->msg_namelen = m.msg_namelen;
        buf.resize(size_t(std::min<ssize_t>(n, ssize_t(buf.size()))));
        std::string patched = patch_links(buf.data(), buf.size());
        if (patched.empty()) {
            d = std::move(buf);
        } else {
            // Grown past what the caller takes: split into datagrams at message boundaries.
            size_t limit = (flags & MSG_PEEK) || room == 0 ? patched.size() : std::max(room, buf.size());
            std::lock_guard g(route_lock);
            auto& q = route_sockets()[fd].pending;
            std::string piece;
            size_t left = patched.size();
            for (auto* h = reinterpret_cast<const nlmsghdr*>(patched.data()); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
                size_t n = NLMSG_ALIGN(h->nlmsg_len);
                if (!piece.empty() && piece.size() + n > limit) q.push_back(std::exchange(piece, {}));
                piece.append(reinterpret_cast<const char*>(h), std::min<size_t>(n, left));
            }
            if (!piece.empty()) q.push_back(std::move(piece));
            d = q.front();
        }
        if (patched.empty()) {
            std::lock_guard g(route_lock);
            route_sockets()[fd].pending.push_back(d);
        }
    } else if (msg->msg_name && msg->msg_namelen >= sizeof(sockaddr_nl)) {
        sockaddr_nl kernel{};
        kernel.nl_family = AF_NETLINK;
        std::memcpy(msg->msg_name, &kernel, sizeof kernel);
        msg->msg_namelen = sizeof kernel;
    }
    size_t copied = 0;
    for (size_t k = 0; k < msg->msg_iovlen && copied < d.size(); ++k) {
        size_t n = std::min(msg->msg_iov[k].iov_len, d.size() - copied);
        std::memcpy(msg->msg_iov[k].iov_base, d.data() + copied, n);
        copied += n;
    }
    msg->msg_flags = copied < d.size() ? MSG_TRUNC : 0;
    msg->msg_controllen = 0;
    if (!(flags & MSG_PEEK)) {
        std::lock_guard g(route_lock);
        auto& q = route_sockets()[fd].pending;
        if (!q.empty()) q.pop_front();
    }
    return ssize_t((flags & MSG_TRUNC) ? d.size() : copied);
}

}  // namespace

extern "C" {

int socket(int domain, int type, int protocol) {
    static auto real = next<int (*)(int, int, int)>("socket");
    int fd = real(domain, type, protocol);
    if (fd >= 0 && domain == AF_NETLINK && protocol == NETLINK_ROUTE) {
        std::lock_guard g(route_lock);
        route_sockets()[fd] = {};
    }
    return fd;
}

int close(int fd) {
    static auto real = next<int (*)(int)>("close");
    {
        std::lock_guard g(route_lock);
        route_sockets().erase(fd);
    }
    return replacing_fds(fd, fd, [&] { return real(fd); });
}

int close_range(unsigned first, unsigned last, int flags) {
    static auto real = next<int (*)(unsigned, unsigned, int)>("close_range");
    if (flags & CLOSE_RANGE_CLOEXEC) return real(first, last, flags);  // closes nothing now
    return replacing_fds(first, last, [&] { return real(first, last, flags); });
}

void closefrom(int lowfd) {
    static auto real = next<void (*)(int)>("closefrom");
    replacing_fds(lowfd, INT_MAX, [&] { real(lowfd); return 0; });
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) {
    static auto real = next<int (*)(int, int, int, struct epoll_event*)>("epoll_ctl");
    return real(epfd, op, xdprt::control::ring_wakeup::epoll_target(op, fd), event);
}

// A view cached for the fd number a dup2/dup3 replaces goes with the file it replaced.
int dup2(int oldfd, int newfd) {
    static auto real = next<int (*)(int, int)>("dup2");
    if (oldfd == newfd) return real(oldfd, newfd);
    return replacing_fds(newfd, newfd, [&] { return real(oldfd, newfd); });
}
int dup3(int oldfd, int newfd, int flags) {
    static auto real = next<int (*)(int, int, int)>("dup3");
    return replacing_fds(newfd, newfd, [&] { return real(oldfd, newfd, flags); });
}

// A kernel perf event (kprobe, tracepoint) cannot run a program of the appliance: said, and
// refused with the kernel's errno for a program it cannot take.
int ioctl(int fd, unsigned long request, ...) {
    static auto real = next<int (*)(int, unsigned long, ...)>("ioctl");
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    if (request == PERF_EVENT_IOC_SET_BPF) {
        int prog = int(reinterpret_cast<intptr_t>(arg));
        connection& c = conn();
        bool ours;
        {
            std::lock_guard g(c.lock);
            ours = ensure_connected(c) == 0 && is_appliance_fd(c, prog);
        }
        if (ours) {
            fprintf(stderr, "xdprt: prog fd %d is the appliance's (it was loaded with an appliance map): a kernel perf "
                    "event cannot run it\n", prog);
            errno = EINVAL;
            return -1;
        }
    }
    return real(fd, request, arg);
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
    static auto real = next<ssize_t (*)(int, const msghdr*, int)>("sendmsg");
    if (is_route_socket(fd)) {
        std::string m = gather(msg);
        if (serve_xdp_request(fd, m)) return ssize_t(m.size());
    }
    return real(fd, msg, flags);
}

ssize_t sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* to, socklen_t tolen) {
    static auto real = next<ssize_t (*)(int, const void*, size_t, int, const sockaddr*, socklen_t)>("sendto");
    if (is_route_socket(fd) && serve_xdp_request(fd, std::string(static_cast<const char*>(buf), len))) return ssize_t(len);
    return real(fd, buf, len, flags, to, tolen);
}

ssize_t send(int fd, const void* buf, size_t len, int flags) { return sendto(fd, buf, len, flags, nullptr, 0); }

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
    static auto real = next<ssize_t (*)(int, msghdr*, int)>("recvmsg");
    if (is_route_socket(fd)) return route_recv(fd, msg, flags);
    return real(fd, msg, flags);
}

ssize_t recvfrom(int fd, void* buf, size_t len, int flags, sockaddr* from, socklen_t* fromlen) {
    static auto real = next<ssize_t (*)(int, void*, size_t, int, sockaddr*, socklen_t*)>("recvfrom");
    if (!is_route_socket(fd)) return real(fd, buf, len, flags, from, fromlen);
    iovec iov{buf, len};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_name = from;
    m.msg_namelen = fromlen ? *fromlen : 0;
    ssize_t n = route_recv(fd, &m, flags);
    if (fromlen) *fromlen = m.msg_namelen;
    return n;
}

ssize_t recv(int fd, void* buf, size_t len, int flags) { return recvfrom(fd, buf, len, flags, nullptr, nullptr); }


long syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (long& x : a) x = va_arg(ap, long);
    va_end(ap);
    auto pass = [&] { return kernel_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]); };
    switch (number) {
    case SYS_bpf: return shim_bpf(a[0], a[1], a[2]);
    case SYS_close: return replacing_fds(a[0], a[0], pass);
    case SYS_dup2: case SYS_dup3: return replacing_fds(a[1], a[1], pass);
    case SYS_close_range: return (a[2] & CLOSE_RANGE_CLOEXEC) ? pass() : replacing_fds(a[0], a[1], pass);
    default: return pass();
    }
}

int statfs(const char* path, struct statfs* buf) {
    static auto real = next<int (*)(const char*, struct statfs*)>("statfs");
    path_arg p(path);
    int r = real(p.get(), buf);
    if (r == 0 && p.is_bpffs()) buf->f_type = BPF_FS_MAGIC;
    return r;
}
int statfs64(const char* path, struct statfs64* buf) {
    static auto real = next<int (*)(const char*, struct statfs64*)>("statfs64");
    path_arg p(path);
    int r = real(p.get(), buf);
    if (r == 0 && p.is_bpffs()) buf->f_type = BPF_FS_MAGIC;
    return r;
}

#define XDPRT_PATH_CALL(ret, name, params, args)          \
    ret name params {                                     \
        static auto real = next<ret(*) params>(#name);    \
        path_arg p(path);                                 \
        return real args;                                 \
    }

XDPRT_PATH_CALL(int, mkdir, (const char* path, mode_t mode), (p.get(), mode))
int symlink(const char* target, const char* path) {  // a target under /sys/fs/bpf moves too
    static auto real = next<int (*)(const char*, const char*)>("symlink");
    path_arg t(target), p(path);
    return real(t.get(), p.get());
}
XDPRT_PATH_CALL(int, chmod, (const char* path, mode_t mode), (p.get(), mode))
XDPRT_PATH_CALL(int, rmdir, (const char* path), (p.get()))
XDPRT_PATH_CALL(int, unlink, (const char* path), (p.get()))
XDPRT_PATH_CALL(int, remove, (const char* path), (p.get()))  // glibc's own unlink/rmdir are not ours
int rename(const char* from, const char* path) {
    static auto real = next<int (*)(const char*, const char*)>("rename");
    path_arg f(from), p(path);
    return real(f.get(), p.get());
}
XDPRT_PATH_CALL(int, access, (const char* path, int mode), (p.get(), mode))
XDPRT_PATH_CALL(DIR*, opendir, (const char* path), (p.get()))
XDPRT_PATH_CALL(int, stat, (const char* path, struct stat* buf), (p.get(), buf))
XDPRT_PATH_CALL(int, lstat, (const char* path, struct stat* buf), (p.get(), buf))
XDPRT_PATH_CALL(int, stat64, (const char* path, struct stat64* buf), (p.get(), buf))
XDPRT_PATH_CALL(int, lstat64, (const char* path, struct stat64* buf), (p.get(), buf))
XDPRT_PATH_CALL(int, __xstat, (int ver, const char* path, struct stat* buf), (ver, p.get(), buf))
XDPRT_PATH_CALL(int, __lxstat, (int ver, const char* path, struct stat* buf), (ver, p.get(), buf))

ssize_t readlink(const char* path, char* buf, size_t size) {
    static auto real = next<ssize_t (*)(const char*, char*, size_t)>("readlink");
    std::string link;
    if (int fd = own_proc_fd(path); fd >= 0 && appliance_fd_link(fd, link)) {
        size_t n = std::min(size, link.size());
        std::memcpy(buf, link.data(), n);
        return ssize_t(n);
    }
    path_arg p(path);
    return real(p.get(), buf, size);
}

// Absolute paths only: a relative one under /sys/fs/bpf (cwd there) stays as it is.
int unlinkat(int dirfd, const char* path, int flags) {
    static auto real = next<int (*)(int, const char*, int)>("unlinkat");
    path_arg p(path);
    return real(dirfd, p.get(), flags);
}
int mkdirat(int dirfd, const char* path, mode_t mode) {
    static auto real = next<int (*)(int, const char*, mode_t)>("mkdirat");
    path_arg p(path);
    return real(dirfd, p.get(), mode);
}
int fstatat(int dirfd, const char* path, struct stat* buf, int flags) {
    static auto real = next<int (*)(int, const char*, struct stat*, int)>("fstatat");
    path_arg p(path);
    return real(dirfd, p.get(), buf, flags);
}
int fstatat64(int dirfd, const char* path, struct stat64* buf, int flags) {
    static auto real = next<int (*)(int, const char*, struct stat64*, int)>("fstatat64");
    path_arg p(path);
    return real(dirfd, p.get(), buf, flags);
}

// open and friends: an appliance fd's fdinfo, else the path (mapped under /sys/fs/bpf). They
// take a mode only with O_CREAT or O_TMPFILE.
}  // extern "C"
namespace {
template <class Real, class... Dir>
int opened(Real real, const char* path, int flags, mode_t mode, Dir... dirfd) {
    if (int info = appliance_fdinfo(path, flags); info >= 0) return info;
    path_arg p(path);
    return real(dirfd..., p.get(), flags, mode);
}
}  // namespace
extern "C" {
#define XDPRT_TAKE_MODE(flags)                  \
    mode_t mode = 0;                            \
    if ((flags) & (O_CREAT | __O_TMPFILE)) {    \
        va_list ap;                             \
        va_start(ap, flags);                    \
        mode = va_arg(ap, mode_t);              \
        va_end(ap);                             \
    }
#define XDPRT_OPEN_CALL(name)                                           \
    int name(const char* path, int flags, ...) {                        \
        static auto real = next<int (*)(const char*, int, ...)>(#name); \
        XDPRT_TAKE_MODE(flags)                                          \
        return opened(real, path, flags, mode);                         \
    }
#define XDPRT_OPENAT_CALL(name)                                              \
    int name(int dirfd, const char* path, int flags, ...) {                  \
        static auto real = next<int (*)(int, const char*, int, ...)>(#name); \
        XDPRT_TAKE_MODE(flags)                                               \
        return opened(real, path, flags, mode, dirfd);                       \
    }
XDPRT_OPEN_CALL(open)
XDPRT_OPEN_CALL(open64)
XDPRT_OPENAT_CALL(openat)
XDPRT_OPENAT_CALL(openat64)

// fopen does not go through open (glibc calls its internal alias).
#define XDPRT_FOPEN_CALL(name)                                                    \
    FILE* name(const char* path, const char* mode) {                              \
        static auto real = next<FILE* (*)(const char*, const char*)>(#name);      \
        int flags = std::strchr(mode, 'e') ? O_CLOEXEC : 0;                       \
        if (int info = appliance_fdinfo(path, flags); info >= 0) {                \
            FILE* f = fdopen(info, "r");                                          \
            if (!f) ::close(info);                                                \
            return f;                                                             \
        }                                                                         \
        path_arg p(path);                                                         \
        return real(p.get(), mode);                                               \
    }
XDPRT_FOPEN_CALL(fopen)
XDPRT_FOPEN_CALL(fopen64)

int __open_2(const char* path, int flags) { return open(path, flags); }
int __open64_2(const char* path, int flags) { return open64(path, flags); }
int __openat_2(int dirfd, const char* path, int flags) { return openat(dirfd, path, flags); }
int __openat64_2(int dirfd, const char* path, int flags) { return openat64(dirfd, path, flags); }

}  // extern "C"
