// The bpf() entry: attr size and tail checks, the command table, objects and their fds, ids,
// info, pins.
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <set>

#include "control/objects.h"
#include "maps/qsbr.h"

namespace xdprt::control {

namespace {

constexpr uint32_t page_bytes = 4096;

#define XDPRT_END_OF(field) (offsetof(union bpf_attr, field) + sizeof(((union bpf_attr*)nullptr)->field))

// Where each command's attr ends in the 6.18 union (the kernel's CMD_LAST_FIELD); bytes past it, up
// to kernel_attr_bytes, must be zero.
struct command {
    int cmd;
    const char* name;
    size_t attr_end;
};
const command commands[] = {
    {BPF_MAP_CREATE, "BPF_MAP_CREATE", attr_off::map_create_end},
    {BPF_MAP_LOOKUP_ELEM, "BPF_MAP_LOOKUP_ELEM", XDPRT_END_OF(flags)},
    {BPF_MAP_UPDATE_ELEM, "BPF_MAP_UPDATE_ELEM", XDPRT_END_OF(flags)},
    {BPF_MAP_DELETE_ELEM, "BPF_MAP_DELETE_ELEM", XDPRT_END_OF(key)},
    {BPF_MAP_GET_NEXT_KEY, "BPF_MAP_GET_NEXT_KEY", XDPRT_END_OF(next_key)},
    {BPF_PROG_LOAD, "BPF_PROG_LOAD", attr_off::prog_load_end},
    {BPF_OBJ_PIN, "BPF_OBJ_PIN", attr_off::obj_end},
    {BPF_OBJ_GET, "BPF_OBJ_GET", attr_off::obj_end},
    {BPF_PROG_TEST_RUN, "BPF_PROG_TEST_RUN", XDPRT_END_OF(test.batch_size)},
    {BPF_PROG_GET_NEXT_ID, "BPF_PROG_GET_NEXT_ID", XDPRT_END_OF(next_id)},
    {BPF_MAP_GET_NEXT_ID, "BPF_MAP_GET_NEXT_ID", XDPRT_END_OF(next_id)},
    {BPF_PROG_GET_FD_BY_ID, "BPF_PROG_GET_FD_BY_ID", XDPRT_END_OF(prog_id)},
    {BPF_MAP_GET_FD_BY_ID, "BPF_MAP_GET_FD_BY_ID", XDPRT_END_OF(open_flags)},
    {BPF_OBJ_GET_INFO_BY_FD, "BPF_OBJ_GET_INFO_BY_FD", XDPRT_END_OF(info.info)},
    {BPF_BTF_LOAD, "BPF_BTF_LOAD", attr_off::btf_load_end},
    {BPF_BTF_GET_FD_BY_ID, "BPF_BTF_GET_FD_BY_ID", attr_off::btf_get_fd_by_id_end},
    {BPF_MAP_LOOKUP_AND_DELETE_ELEM, "BPF_MAP_LOOKUP_AND_DELETE_ELEM", XDPRT_END_OF(flags)},
    {BPF_MAP_FREEZE, "BPF_MAP_FREEZE", XDPRT_END_OF(map_fd)},
    {BPF_BTF_GET_NEXT_ID, "BPF_BTF_GET_NEXT_ID", XDPRT_END_OF(next_id)},
    {BPF_MAP_LOOKUP_BATCH, "BPF_MAP_LOOKUP_BATCH", XDPRT_END_OF(batch.flags)},
    {BPF_MAP_LOOKUP_AND_DELETE_BATCH, "BPF_MAP_LOOKUP_AND_DELETE_BATCH", XDPRT_END_OF(batch.flags)},
    {BPF_MAP_UPDATE_BATCH, "BPF_MAP_UPDATE_BATCH", XDPRT_END_OF(batch.flags)},
    {BPF_MAP_DELETE_BATCH, "BPF_MAP_DELETE_BATCH", XDPRT_END_OF(batch.flags)},
    {BPF_LINK_GET_FD_BY_ID, "BPF_LINK_GET_FD_BY_ID", XDPRT_END_OF(link_id)},
    {BPF_LINK_GET_NEXT_ID, "BPF_LINK_GET_NEXT_ID", XDPRT_END_OF(next_id)},
    {BPF_ENABLE_STATS, "BPF_ENABLE_STATS", XDPRT_END_OF(enable_stats.type)},
    {BPF_LINK_CREATE, "BPF_LINK_CREATE", XDPRT_END_OF(link_create)},
    {BPF_LINK_UPDATE, "BPF_LINK_UPDATE", XDPRT_END_OF(link_update.old_prog_fd)},
    {BPF_LINK_DETACH, "BPF_LINK_DETACH", XDPRT_END_OF(link_detach.link_fd)},
    {BPF_PROG_BIND_MAP, "BPF_PROG_BIND_MAP", XDPRT_END_OF(prog_bind_map.flags)},
};

bool is_element_command(int cmd) {
    switch (cmd) {
    case BPF_MAP_LOOKUP_ELEM: case BPF_MAP_UPDATE_ELEM: case BPF_MAP_DELETE_ELEM: case BPF_MAP_GET_NEXT_KEY:
    case BPF_MAP_LOOKUP_AND_DELETE_ELEM: case BPF_MAP_LOOKUP_BATCH: case BPF_MAP_LOOKUP_AND_DELETE_BATCH:
    case BPF_MAP_UPDATE_BATCH: case BPF_MAP_DELETE_BATCH:
        return true;
    default:
        return false;
    }
}

// The kernel's commands xdprt does not serve, by name, for the refusal's message.
const char* unserved_command_name(int cmd) {
    switch (cmd) {
    case 8: return "BPF_PROG_ATTACH";
    case 9: return "BPF_PROG_DETACH";
    case 16: return "BPF_PROG_QUERY";
    case 17: return "BPF_RAW_TRACEPOINT_OPEN";
    case 20: return "BPF_TASK_FD_QUERY";
    case 33: return "BPF_ITER_CREATE";
    case 36: return "BPF_TOKEN_CREATE";
    case 37: return "BPF_PROG_STREAM_READ_BY_FD";
    default: return "an unknown bpf command";
    }
}

const command* find_command(int cmd) {
    for (const command& c : commands)
        if (c.cmd == cmd) return &c;
    return nullptr;
}

}  // namespace

// ---- client memory -------------------------------------------------------------------------

result<void> client_memory::read(uint64_t addr, void* out, size_t n) const {
    if (n == 0) return {};
    if (addr == 0) return fail(EFAULT, "null pointer for {} bytes", n);
    iovec local{out, n}, remote{reinterpret_cast<void*>(addr), n};
    ssize_t got = process_vm_readv(pid ? pid : getpid(), &local, 1, &remote, 1, 0);
    if (got != ssize_t(n)) return fail(EFAULT, "cannot read {} bytes at {:#x}", n, addr);
    return {};
}

result<void> client_memory::read_two(uint64_t addr1, void* out1, size_t n1, uint64_t addr2, void* out2, size_t n2) const {
    if (n1 == 0 || n2 == 0) {
        if (auto ok = read(addr1, out1, n1); !ok) return ok;
        return read(addr2, out2, n2);
    }
    if (addr1 == 0) return fail(EFAULT, "null pointer for {} bytes", n1);
    if (addr2 == 0) return fail(EFAULT, "null pointer for {} bytes", n2);
    iovec local[2] = {{out1, n1}, {out2, n2}};
    iovec remote[2] = {{reinterpret_cast<void*>(addr1), n1}, {reinterpret_cast<void*>(addr2), n2}};
    ssize_t got = process_vm_readv(pid ? pid : getpid(), local, 2, remote, 2, 0);
    if (got == ssize_t(n1 + n2)) return {};
    if (got < ssize_t(n1)) return fail(EFAULT, "cannot read {} bytes at {:#x}", n1, addr1);
    return fail(EFAULT, "cannot read {} bytes at {:#x}", n2, addr2);
}

result<void> client_memory::write(uint64_t addr, const void* in, size_t n) const {
    if (n == 0) return {};
    if (addr == 0) return fail(EFAULT, "null pointer for {} bytes", n);
    iovec local{const_cast<void*>(in), n}, remote{reinterpret_cast<void*>(addr), n};
    ssize_t put = process_vm_writev(pid ? pid : getpid(), &local, 1, &remote, 1, 0);
    if (put != ssize_t(n)) return fail(EFAULT, "cannot write {} bytes at {:#x}", n, addr);
    return {};
}

result<std::vector<uint8_t>> client_memory::read_vec(uint64_t addr, size_t n) const {
    std::vector<uint8_t> v(n);
    if (auto ok = read(addr, v.data(), n); !ok) return tl::unexpected(ok.error());
    return v;
}

result<std::string> client_memory::read_string(uint64_t addr, size_t max) const {
    std::string s;
    char c;
    for (size_t k = 0; k < max; ++k) {
        if (auto ok = read(addr + k, &c, 1); !ok) return tl::unexpected(ok.error());
        if (c == 0) return s;
        s.push_back(c);
    }
    return fail(ENAMETOOLONG, "string at {:#x} longer than {}", addr, max);
}

result<void> load_log::check() const {
    // bpf_verifier_log_attr_valid (6.4 on): a buffer and its size go together, a buffer needs a
    // level, the level has only BPF_LOG_LEVEL1|2|STATS|FIXED, the size stays below 1 GiB.
    if ((buf != 0) != (size != 0) || (buf && !level) || (level & ~15u) || size > (UINT32_MAX >> 2))
        return fail(EINVAL, "log_buf, log_size and log_level go together");
    return {};
}

void load_log::flush(const client_memory& mem) const {
    if (true_size_out) *true_size_out = kernel_true_size ? *kernel_true_size : level ? uint32_t(text.size() + 1) : 0;
    if (!buf || !size) return;
    size_t n = std::min<size_t>(text.size(), size - 1);
    (void)mem.write(buf, text.data(), n);
    char nul = 0;
    (void)mem.write(buf + n, &nul, 1);
}

// ---- objects -------------------------------------------------------------------------------

result<std::string> object_name(const char (&raw)[BPF_OBJ_NAME_LEN]) {
    std::string name;
    for (size_t k = 0; k < BPF_OBJ_NAME_LEN; ++k) {
        char c = raw[k];
        if (c == 0) return name;
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.')
            return fail(EINVAL, "object name: invalid character {:#x}", uint8_t(c));
        name.push_back(c);
    }
    return fail(EINVAL, "object name: not NUL-terminated within {} bytes", BPF_OBJ_NAME_LEN);
}

result<void> server::impl::no_token(int fd) const {
    auto l = local(fd);
    struct stat st;
    if (!l || fstat(l->get(), &st) != 0) return fail(EBADF, "token fd {} is not open", fd);
    return fail(EINVAL, "fd {} is not a BPF token (xdprt has none)", fd);
}

server::impl::client_fd::~client_fd() {
    if (_owned && _fd >= 0) close(_fd);
}

result<server::impl::client_fd> server::impl::local(int fd) const {
    if (fd < 0) return fail(EBADF, "fd {} is not open", fd);
    if (client_pidfd < 0) return client_fd(fd, false);
    long l = ::syscall(SYS_pidfd_getfd, client_pidfd, fd, 0);
    if (l < 0) return fail(errno == EBADF ? EBADF : errno, "the client's fd {}: {}", fd, strerror(errno));
    return client_fd(int(l), true);
}

object::~object() {
    if (handle >= 0 && !map) close(handle);  // a map's handle is its memory's file, closed by the map
}

bool object::pinned() const {
    struct stat st;
    return fstat(handle, &st) == 0 && st.st_nlink > 0;
}

namespace {
std::string self_fd_path(int fd) { return fmt::format("/proc/self/fd/{}", fd); }
}  // namespace

result<int> server::impl::new_file(const char* what) {
    int fd = openat(store_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return fail(errno, "{}: no file in {}: {}", what, opts.pin_root.string(), strerror(errno));
    return fd;
}

result<object_ref> server::impl::add(obj_kind kind, std::string name, int handle_fd) {
    // Takes the handle: on failure it is closed here (a map's belongs to its map).
    auto drop = [&] { if (kind != obj_kind::map) close(handle_fd); };
    struct stat st;
    if (fstat(handle_fd, &st) != 0) return drop(), fail(errno, "fstat: {}", strerror(errno));
    auto o = std::make_shared<object>();
    o->kind = kind;
    o->handle = handle_fd;
    o->inode = st.st_ino;
    o->name = std::move(name);
    o->watch = inotify_add_watch(notify, self_fd_path(handle_fd).c_str(), IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_ATTRIB);
    if (o->watch < 0)
        return o->handle = -1, drop(), fail(errno == ENOSPC ? ENOMEM : errno, "inotify watch of a new object: {} (see fs.inotify.max_user_watches)",
                    strerror(errno));
    if (kind != obj_kind::perf_event) {
        uint32_t& next = next_id[int(kind)];
        o->id = next++;
        by_id[int(kind)][o->id] = o;
    }
    by_inode[o->inode] = o;
    by_watch[o->watch] = o->inode;
    return o;
}

result<object_ref> server::impl::from_fd(int fd, obj_kind kind) const {
    const char* what[] = {"map", "prog", "btf", "link"};
    auto o = from_any_fd(fd);
    if (!o) return o;
    if ((*o)->kind != kind) return fail(EINVAL, "fd {} is not a {}", fd, what[int(kind)]);
    return o;
}

result<object_ref> server::impl::from_any_fd(int fd) const {
    auto l = local(fd);
    struct stat st;
    if (!l || fstat(l->get(), &st) != 0) return fail(EBADF, "fd {} is not open", fd);
    auto it = by_inode.find(st.st_ino);
    if (it == by_inode.end() || it->second->kind == obj_kind::perf_event)
        return fail(EINVAL, "fd {} is not a bpf object of xdprt", fd);
    return it->second;
}

result<object_ref> server::impl::perf_event_from_fd(int fd) const {
    auto l = local(fd);
    struct stat st;
    if (!l || fstat(l->get(), &st) != 0) return fail(EBADF, "fd {} is not open", fd);
    auto it = by_inode.find(st.st_ino);
    if (it == by_inode.end() || it->second->kind != obj_kind::perf_event)
        return fail(EBADF, "fd {} is not a perf event", fd);
    return it->second;
}

// A new open file description of the object's file: its closing is an event of its own.
long server::impl::new_fd(const object_ref& o) {
    int fd = open(self_fd_path(o->handle).c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return refuse(errno, "reopening object {}: {}", o->id, strerror(errno));
    ++o->client_files;
    o->user_cleared = false;
    return fd;
}

// ---- release -------------------------------------------------------------------------------

void server::impl::reap() {
    alignas(inotify_event) char buf[4096];
    for (;;) {
        ssize_t n = read(notify, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t at = 0; at < n;) {
            const auto* ev = reinterpret_cast<const inotify_event*>(buf + at);
            at += ssize_t(sizeof *ev + ev->len);
            if (ev->mask & IN_Q_OVERFLOW) {
                // Lost closes: the objects concerned stay until the server restarts. Said once.
                if (!overflow_reported) fmt::print(stderr, "xdprt: inotify queue overflowed: some released objects stay allocated\n");
                overflow_reported = true;
                continue;
            }
            dirty = true;
            if (!(ev->mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE))) continue;
            auto w = by_watch.find(ev->wd);
            if (w == by_watch.end()) continue;
            auto it = by_inode.find(w->second);
            if (it != by_inode.end() && it->second->client_files) --it->second->client_files;
        }
    }
    if (!dirty) return;
    dirty = false;
    bool cleared = false;
    for (bool changed = true; changed;) {
        changed = false;
        // Entries removed from object-holding maps let go of their objects after a grace period.
        maps::qsbr::process().poll();
        for (auto it = by_inode.begin(); it != by_inode.end();) {
            object& o = *it->second;
            bool user = o.client_files || o.pinned();
            // As the kernel empties a PROG_ARRAY whose last user reference (fd or pin) went: that
            // breaks the cycles programs and their tail-call tables make.
            if (!user && o.kind == obj_kind::map && o.map->type() == BPF_MAP_TYPE_PROG_ARRAY && !o.user_cleared) {
                maps::clear_objects(*o.map);
                o.user_cleared = true;
                changed = cleared = true;
            }
            // Referenced by nothing but this table's indexes (perf events have no id).
            long indexes = o.kind == obj_kind::perf_event ? 1 : 2;
            if (!user && it->second.use_count() == indexes) {
                if (o.link) detach(*o.link);  // a link's attachment ends with the link
                inotify_rm_watch(notify, o.watch);
                by_watch.erase(o.watch);
                if (o.kind != obj_kind::perf_event) by_id[int(o.kind)].erase(o.id);
                it = by_inode.erase(it);
                changed = true;
                continue;
            }
            ++it;
        }
    }
    // A worker may still hold what was cleared: look again on the next call.
    dirty = cleared;
}

server::impl::~impl() {
    // Objects refer to each other (a program and the tail-call table it is in): empty every
    // object-holding map so that the tables below free everything.
    for (auto& [ino, o] : by_inode)
        if (o->kind == obj_kind::map) maps::clear_objects(*o->map);
    maps::qsbr::process().poll();
    for (auto& ids : by_id) ids.clear();
    by_inode.clear();
    if (notify >= 0) close(notify);
    if (store_fd >= 0) close(store_fd);
}

// ---- the entry -----------------------------------------------------------------------------

server::server(std::unique_ptr<impl> i) : _impl(std::move(i)) {}
server::~server() = default;

result<std::unique_ptr<server>> server::create(server_options opts) {
    if (opts.verify == verify_mode::off && !opts.unsafe)
        return fail(EINVAL, "verify: off runs unverified programs: it needs the explicit unsafe flag");
    if (opts.verify == verify_mode::builtin && !opts.builtin_verifier)
        return fail(EINVAL, "verify: builtin: no builtin verifier in this build (use verify: kernel)");
#ifndef XDPRT_HAVE_JIT
    opts.default_engine = engine::interpreter;
#endif
    auto i = std::make_unique<impl>();
    i->opts = std::move(opts);
    const std::filesystem::path& root = i->opts.pin_root;
    std::error_code ec;
    std::filesystem::create_directories(root, ec);
    if (ec) return fail(ec.value(), "pin root {}: {}", root.string(), ec.message());
    struct statfs fs;
    if (statfs(root.c_str(), &fs) != 0) return fail(errno, "pin root {}: {}", root.string(), strerror(errno));
    if (fs.f_type != TMPFS_MAGIC && fs.f_type != RAMFS_MAGIC) {
        // Maps are memory: their files must not be written back to a disk.
        if (mount("xdprt-bpffs", root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") != 0)
            return fail(errno, "pin root {} is not a tmpfs and mounting one there failed: {}", root.string(), strerror(errno));
    }
    i->store_fd = open(root.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (i->store_fd < 0) return fail(errno, "pin root {}: {}", root.string(), strerror(errno));
    i->notify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (i->notify < 0) return fail(errno, "inotify: {}", strerror(errno));
    return std::unique_ptr<server>(new server(std::move(i)));
}

const std::string& server::last_error() const { return _impl->last_error; }

void server::reap() {
    std::lock_guard g(_impl->lock);
    _impl->reap();
}

int server::notify_fd() const { return _impl->notify; }

server::object_counts server::count() {
    std::lock_guard g(_impl->lock);
    _impl->dirty = true;
    _impl->reap();
    size_t perf_events = 0;
    for (const auto& [ino, o] : _impl->by_inode) perf_events += o->kind == obj_kind::perf_event;
    return {_impl->by_id[0].size(), _impl->by_id[1].size(), _impl->by_id[2].size(), _impl->by_id[3].size(), perf_events};
}

const server_options& server::options() const { return _impl->opts; }

void server::release_writer(uint32_t token, pid_t pid) {
    std::lock_guard g(_impl->lock);
    for (const auto& [id, o] : _impl->by_id[0])
        if (o->map && maps::release_writer(*o->map, token))
            fmt::print(stderr, "xdprt: map {} '{}': took its writer lock back from process {}, gone mid-write\n", id, o->name, pid);
}

result<object_ref> server::impl::client_object(int fd, int pidfd) {
    serving as(*this, pidfd);
    return from_any_fd(fd);
}

std::string server::fdinfo(int fd, pid_t, int pidfd) {
    std::lock_guard g(_impl->lock);
    auto o = _impl->client_object(fd, pidfd);
    if (!o) return {};
    const object& ob = **o;
    auto pages = [](uint64_t bytes) { return (bytes + 4095) / 4096 * 4096; };
    switch (ob.kind) {
    case obj_kind::map: {
        const maps::spec& sp = ob.map->spec();
        struct stat st{};
        fstat(ob.handle, &st);
        return fmt::format("map_type:\t{}\nkey_size:\t{}\nvalue_size:\t{}\nmax_entries:\t{}\nmap_flags:\t{:#x}\n"
                           "map_extra:\t{:#x}\nmemlock:\t{}\nmap_id:\t{}\nfrozen:\t{}\n",
                           sp.type, sp.key_size, sp.value_size, sp.max_entries, sp.flags, sp.extra, pages(uint64_t(st.st_size)),
                           ob.id, ob.map->header().frozen.load(std::memory_order_relaxed) ? 1 : 0);
    }
    case obj_kind::prog: {
        const loaded_prog& p = *ob.prog;
        std::string tag;
        for (uint8_t b : p.tag) tag += fmt::format("{:02x}", b);
        return fmt::format("prog_type:\t{}\nprog_jited:\t{}\nprog_tag:\t{}\nmemlock:\t{}\nprog_id:\t{}\nrun_time_ns:\t0\n"
                           "run_cnt:\t0\nrecursion_misses:\t0\nverified_insns:\t{}\n",
                           p.type, p.native ? 1 : 0, tag, pages(p.insns.size() * 8), ob.id, p.insns.size());
    }
    case obj_kind::btf:
        return fmt::format("btf_id:\t{}\n", ob.id);
    case obj_kind::link:
        return fmt::format("link_type:\txdp\nlink_id:\t{}\nprog_tag:\t\nprog_id:\t{}\nifindex:\t{}\n", ob.id,
                           ob.link->prog ? ob.link->prog->id : 0, ob.link->ifindex);
    default:
        return {};
    }
}

std::string server::kind_of(int fd, pid_t, int pidfd) {
    std::lock_guard g(_impl->lock);
    auto o = _impl->client_object(fd, pidfd);
    if (!o) return {};
    switch ((*o)->kind) {
    case obj_kind::map: return "bpf-map";
    case obj_kind::prog: return "bpf-prog";
    case obj_kind::btf: return "btf";
    case obj_kind::link: return "bpf_link";
    default: return {};
    }
}

bool server::returns_fd(int cmd) {
    switch (cmd) {
    case BPF_MAP_CREATE: case BPF_PROG_LOAD: case BPF_BTF_LOAD: case BPF_OBJ_GET: case BPF_LINK_CREATE:
    case BPF_PROG_GET_FD_BY_ID: case BPF_MAP_GET_FD_BY_ID: case BPF_BTF_GET_FD_BY_ID: case BPF_LINK_GET_FD_BY_ID:
        return true;
    default:
        return false;
    }
}

long server::bpf(int cmd, uint64_t attr_addr, uint32_t size, pid_t pid, int pidfd) {
    std::lock_guard g(_impl->lock);
    _impl->last_error.clear();
    client_memory mem{pid};
    impl::serving as(*_impl, pidfd);
    // bpf_check_uarg_tail_zero: at most a page; bytes past the kernel's union must be zero.
    if (size > page_bytes) return _impl->refuse(E2BIG, "attr size {} above a page", size);
    attr_buffer buf;
    std::memset(&buf, 0, sizeof buf);
    if (size > sizeof buf) {
        auto tail = mem.read_vec(attr_addr + sizeof buf, size - sizeof buf);
        if (!tail) return _impl->refuse(tail.error());
        for (uint8_t b : *tail)
            if (b) return _impl->refuse(E2BIG, "attr: non-zero bytes past the {} this kernel ABI knows", sizeof buf);
    }
    uint32_t known = std::min<uint32_t>(size, sizeof buf);
    if (auto ok = mem.read(attr_addr, &buf, known); !ok) return _impl->refuse(ok.error());
    const command* c = find_command(cmd);
    if (!c) return _impl->refuse(EINVAL, "{} ({}) is not supported by xdprt", unserved_command_name(cmd), cmd);
    const auto* bytes = reinterpret_cast<const uint8_t*>(&buf);
    for (size_t k = c->attr_end; k < sizeof buf; ++k)
        if (bytes[k]) return _impl->refuse(EINVAL, "{}: non-zero attr byte at offset {} past the command's fields", c->name, k);
    _impl->reap();
    _impl->log_true_size = 0;
    long r = _impl->dispatch(cmd, buf.a, attr_addr, size, mem);
    // The kernel writes log_true_size back whenever the caller's attr reaches it, success or not.
    if ((cmd == BPF_PROG_LOAD && size >= attr_off::log_true_size + 4) ||
        (cmd == BPF_BTF_LOAD && size >= attr_off::btf_log_true_size + 4)) {
        size_t off = cmd == BPF_PROG_LOAD ? attr_off::log_true_size : attr_off::btf_log_true_size;
        if (auto ok = mem.write(attr_addr + off, &_impl->log_true_size, 4); !ok && r >= 0) r = _impl->refuse(ok.error());
    }
    if (r < 0 && !_impl->last_error.empty()) _impl->last_error = fmt::format("{}: {}", c->name, _impl->last_error);
    if (!is_element_command(cmd)) _impl->dirty = true;  // anything else may have dropped a reference
    maps::qsbr::process().poll();
    return r;
}

std::optional<long> server::perf_event_open(uint64_t attr_addr, int pid, int cpu, int group_fd, unsigned long flags,
                                            pid_t client, int client_pidfd) {
    std::lock_guard g(_impl->lock);
    _impl->last_error.clear();
    impl::serving as(*_impl, client_pidfd);
    _impl->reap();
    auto r = _impl->perf_event_open(attr_addr, pid, cpu, group_fd, flags, client_memory{client});
    if (r && *r < 0 && !_impl->last_error.empty()) _impl->last_error = fmt::format("perf_event_open: {}", _impl->last_error);
    return r;
}

long server::impl::dispatch(int cmd, union bpf_attr& a, uint64_t attr_addr, uint32_t, const client_memory& mem) {
    switch (cmd) {
    case BPF_MAP_CREATE: return map_create(a, mem);
    case BPF_MAP_LOOKUP_ELEM: case BPF_MAP_UPDATE_ELEM: case BPF_MAP_DELETE_ELEM: case BPF_MAP_GET_NEXT_KEY:
    case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
        return map_elem(cmd, a, mem);
    case BPF_MAP_FREEZE: return map_freeze(a);
    case BPF_MAP_LOOKUP_BATCH: case BPF_MAP_LOOKUP_AND_DELETE_BATCH: case BPF_MAP_UPDATE_BATCH: case BPF_MAP_DELETE_BATCH:
        return map_batch(cmd, a, attr_addr, mem);
    case BPF_PROG_LOAD: return prog_load(a, mem);
    case BPF_PROG_TEST_RUN: return prog_test_run(a, attr_addr, mem);
    case BPF_BTF_LOAD: return btf_load(a, mem);
    case BPF_PROG_GET_NEXT_ID: case BPF_MAP_GET_NEXT_ID: case BPF_BTF_GET_NEXT_ID: case BPF_LINK_GET_NEXT_ID:
        return get_next_id(cmd, a, attr_addr, mem);
    case BPF_PROG_GET_FD_BY_ID: case BPF_MAP_GET_FD_BY_ID: case BPF_BTF_GET_FD_BY_ID: case BPF_LINK_GET_FD_BY_ID:
        return get_fd_by_id(cmd, a);
    case BPF_OBJ_GET_INFO_BY_FD: return obj_get_info(a, attr_addr, mem);
    case BPF_OBJ_PIN: return obj_pin(a, mem);
    case BPF_OBJ_GET: return obj_get(a, mem);
    case BPF_PROG_BIND_MAP: return prog_bind_map(a);
    case BPF_LINK_CREATE: return link_create(a);
    case BPF_LINK_UPDATE: return link_update(a);
    case BPF_LINK_DETACH: return link_detach(a);
    case BPF_ENABLE_STATS:
        if (a.enable_stats.type != BPF_STATS_RUN_TIME) return refuse(EINVAL, "unknown stats type {}", a.enable_stats.type);
        {
            // xdprt always counts run time; the fd only has to exist, as the kernel's does.
            int fd = memfd_create("xdprt-stats", MFD_CLOEXEC);
            if (fd < 0) return refuse(errno, "memfd_create: {}", strerror(errno));
            return fd;
        }
    default:
        return refuse(EINVAL, "bpf command {} is not supported by xdprt", cmd);
    }
}

// ---- ids -----------------------------------------------------------------------------------

namespace {
obj_kind kind_of_id_cmd(int cmd) {
    switch (cmd) {
    case BPF_PROG_GET_NEXT_ID: case BPF_PROG_GET_FD_BY_ID: return obj_kind::prog;
    case BPF_MAP_GET_NEXT_ID: case BPF_MAP_GET_FD_BY_ID: return obj_kind::map;
    case BPF_BTF_GET_NEXT_ID: case BPF_BTF_GET_FD_BY_ID: return obj_kind::btf;
    default: return obj_kind::link;
    }
}
}  // namespace

long server::impl::get_next_id(int cmd, union bpf_attr& a, uint64_t attr_addr, const client_memory& mem) {
    if (a.start_id >= uint32_t(INT32_MAX)) return refuse(EINVAL, "start_id {} at or above INT_MAX", a.start_id);
    auto& ids = by_id[int(kind_of_id_cmd(cmd))];
    auto it = ids.upper_bound(a.start_id);
    if (it == ids.end()) return refuse(ENOENT, "no id after {}", a.start_id);
    uint32_t next = it->first;
    if (auto ok = mem.write(attr_addr + offsetof(union bpf_attr, next_id), &next, 4); !ok) return refuse(ok.error());
    return 0;
}

long server::impl::get_fd_by_id(int cmd, union bpf_attr& a) {
    obj_kind k = kind_of_id_cmd(cmd);
    if (k == obj_kind::map && ((a.open_flags & ~uint32_t(BPF_F_RDONLY | BPF_F_WRONLY)) ||
                               (a.open_flags & BPF_F_RDONLY && a.open_flags & BPF_F_WRONLY)))
        return refuse(EINVAL, "open_flags {:#x}", a.open_flags);
    if (k == obj_kind::btf) {
        if (a.open_flags & ~f_token_fd) return refuse(EINVAL, "open_flags {:#x}", a.open_flags);
        if (a.open_flags & f_token_fd)
            if (auto ok = no_token(attr_field<int32_t>(a, attr_off::fd_by_id_token_fd)); !ok) return refuse(ok.error());
    }
    auto& ids = by_id[int(k)];
    uint32_t id = k == obj_kind::prog ? a.prog_id : k == obj_kind::map ? a.map_id : k == obj_kind::btf ? a.btf_id : a.link_id;
    auto it = ids.find(id);
    if (it == ids.end()) return refuse(ENOENT, "no object with id {}", id);
    return new_fd(it->second);
}

long server::impl::prog_bind_map(union bpf_attr& a) {
    if (a.prog_bind_map.flags) return refuse(EINVAL, "prog_bind_map: flags {:#x}", a.prog_bind_map.flags);
    auto p = from_fd(int(a.prog_bind_map.prog_fd), obj_kind::prog);
    if (!p) return refuse(p.error());
    auto m = from_fd(int(a.prog_bind_map.map_fd), obj_kind::map);
    if (!m) return refuse(m.error());
    auto& used = (*p)->prog->used_maps;
    if (std::find(used.begin(), used.end(), *m) == used.end()) used.push_back(*m);
    return 0;
}

// ---- pins ----------------------------------------------------------------------------------

// A pin is a hard link to the object's file under pin_root. Clients name it by its bpffs path
// (client_bpffs, e.g. /sys/fs/bpf/x) or by its path under pin_root; relative paths are relative
// to the client's cwd, or with BPF_F_PATH_FD to the directory path_fd names.
result<std::filesystem::path> server::impl::pin_path(const union bpf_attr& a, const client_memory& mem) const {
    namespace fs = std::filesystem;
    auto name = mem.read_string(a.pathname, PATH_MAX);
    if (!name) return tl::unexpected(name.error());
    if (name->empty()) return fail(ENOENT, "empty path");
    fs::path p(*name);
    if (p.is_relative()) {
        std::string proc = mem.pid ? fmt::format("/proc/{}", mem.pid) : "/proc/self";
        std::string base = (a.file_flags & f_path_fd) ? fmt::format("{}/fd/{}", proc, attr_field<int32_t>(a, attr_off::path_fd))
                                                      : proc + "/cwd";
        std::error_code ec;
        fs::path dir = fs::read_symlink(base, ec);
        if (ec) return fail(EBADF, "{}: {}", base, ec.message());
        p = dir / p;
    }
    p = p.lexically_normal();
    for (const fs::path& root : {opts.client_bpffs, opts.pin_root}) {
        fs::path rel = p.lexically_relative(root);
        if (!rel.empty() && *rel.begin() != "..") return opts.pin_root / rel;
    }
    return fail(EPERM, "{} is not in a bpf file system (xdprt pins live under {})", p.string(), opts.client_bpffs.string());
}

long server::impl::obj_pin(union bpf_attr& a, const client_memory& mem) {
    if (a.file_flags & ~f_path_fd) return refuse(EINVAL, "pin: file_flags {:#x}", a.file_flags);
    if (!(a.file_flags & f_path_fd) && attr_field<uint32_t>(a, attr_off::path_fd))
        return refuse(EINVAL, "pin: path_fd without BPF_F_PATH_FD");
    auto o = from_any_fd(int(a.bpf_fd));
    if (!o) return refuse(o.error());
    auto path = pin_path(a, mem);
    if (!path) return refuse(path.error());
    if (linkat(AT_FDCWD, self_fd_path((*o)->handle).c_str(), AT_FDCWD, path->c_str(), AT_SYMLINK_FOLLOW) != 0)
        return refuse(errno, "pin {}: {}", path->string(), strerror(errno));
    (*o)->user_cleared = false;
    return 0;
}

long server::impl::obj_get(union bpf_attr& a, const client_memory& mem) {
    uint32_t modes = a.file_flags & (BPF_F_RDONLY | BPF_F_WRONLY);
    if (a.bpf_fd || (a.file_flags & ~uint32_t(BPF_F_RDONLY | BPF_F_WRONLY | f_path_fd)))
        return refuse(EINVAL, "get: bpf_fd {} file_flags {:#x}", a.bpf_fd, a.file_flags);
    if (!(a.file_flags & f_path_fd) && attr_field<uint32_t>(a, attr_off::path_fd))
        return refuse(EINVAL, "get: path_fd without BPF_F_PATH_FD");
    if (modes == (BPF_F_RDONLY | BPF_F_WRONLY)) return refuse(EINVAL, "get: RDONLY and WRONLY");
    auto path = pin_path(a, mem);
    if (!path) return refuse(path.error());
    // The client's fd is a new open file description of the pinned file.
    int fd = open(path->c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return refuse(errno, "{}: {}", path->string(), strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return refuse(EACCES, "{} is not a pinned object", path->string());
    }
    if (auto it = by_inode.find(st.st_ino); it != by_inode.end()) {
        ++it->second->client_files;
        it->second->user_cleared = false;
        return fd;
    }
    // Pinned by an earlier run of the server: maps come back with their contents.
    int own = open(path->c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (own < 0) {
        close(fd);
        return refuse(errno, "{}: {}", path->string(), strerror(errno));
    }
    auto m = maps::adopt(own);
    if (!m) {
        close(fd);
        return refuse(ENOENT, "{} was pinned by an earlier run of the server and is not a map: programs, BTF and "
                              "links do not survive a restart, load it again ({})", path->string(), m.error().message);
    }
    int handle = (*m)->memfd();
    std::string name = (*m)->spec().name;
    auto o = add(obj_kind::map, name, handle);
    if (!o) {
        close(fd);
        return refuse(o.error());
    }
    (*o)->map = std::move(*m);
    (*o)->map->id = (*o)->id;
    ++(*o)->client_files;
    return fd;
}

}  // namespace xdprt::control
