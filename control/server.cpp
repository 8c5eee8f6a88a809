// The bpf() entry: attr size and tail checks, the command table, objects and their fds, ids,
// info, pins.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
    {BPF_PROG_BIND_MAP, "BPF_PROG_BIND_MAP", XDPRT_END_OF(prog_bind_map.flags)},
};

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

result<void> no_token(int fd) {
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return fail(EBADF, "token fd {} is not open", fd);
    return fail(EINVAL, "fd {} is not a BPF token (xdprt has none)", fd);
}

object::~object() {
    if (handle >= 0 && !map) close(handle);  // a map's handle is its memfd, closed by the map
}

result<object_ref> server::impl::add(obj_kind kind, std::string name, int handle_fd) {
    struct stat st;
    if (fstat(handle_fd, &st) != 0) return fail(errno, "fstat: {}", strerror(errno));
    auto o = std::make_shared<object>();
    o->kind = kind;
    o->handle = handle_fd;
    o->inode = st.st_ino;
    o->name = std::move(name);
    uint32_t& next = next_id[int(kind)];
    o->id = next++;
    by_inode[o->inode] = o;
    by_id[int(kind)][o->id] = o;
    return o;
}

result<object_ref> server::impl::from_fd(int fd, obj_kind kind) const {
    const char* what[] = {"map", "prog", "btf", "link"};
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return fail(EBADF, "fd {} is not open", fd);
    auto it = by_inode.find(st.st_ino);
    if (it == by_inode.end()) return fail(EINVAL, "fd {} is not a bpf object of xdprt", fd);
    if (it->second->kind != kind) return fail(EINVAL, "fd {} is not a {}", fd, what[int(kind)]);
    return it->second;
}

long server::impl::new_fd(const object_ref& o) {
    int fd = fcntl(o->handle, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return refuse(errno, "dup: {}", strerror(errno));
    return fd;
}

// ---- the entry -----------------------------------------------------------------------------

server::server(std::unique_ptr<impl> i) : _impl(std::move(i)) {}
server::~server() = default;

result<std::unique_ptr<server>> server::create(server_options opts) {
    if (opts.verify == verify_mode::off && !opts.unsafe)
        return fail(EINVAL, "verify: off runs unverified programs: it needs the explicit unsafe flag");
#ifndef XDPRT_HAVE_JIT
    opts.default_engine = engine::interpreter;
#endif
    auto i = std::make_unique<impl>();
    i->opts = std::move(opts);
    return std::unique_ptr<server>(new server(std::move(i)));
}

const std::string& server::last_error() const { return _impl->last_error; }

server::object_counts server::count() const {
    std::lock_guard g(_impl->lock);
    return {_impl->by_id[0].size(), _impl->by_id[1].size(), _impl->by_id[2].size(), _impl->by_id[3].size()};
}

long server::bpf(int cmd, uint64_t attr_addr, uint32_t size, pid_t pid) {
    std::lock_guard g(_impl->lock);
    _impl->last_error.clear();
    client_memory mem{pid};
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
    if (!c) return _impl->refuse(EINVAL, "bpf command {} is not supported by xdprt", cmd);
    const auto* bytes = reinterpret_cast<const uint8_t*>(&buf);
    for (size_t k = c->attr_end; k < sizeof buf; ++k)
        if (bytes[k]) return _impl->refuse(EINVAL, "{}: non-zero attr byte at offset {} past the command's fields", c->name, k);
    long r = _impl->dispatch(cmd, buf.a, attr_addr, size, mem);
    if (r < 0 && !_impl->last_error.empty()) _impl->last_error = fmt::format("{}: {}", c->name, _impl->last_error);
    maps::qsbr::process().poll();
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

// bpf_obj_pin / bpf_obj_get check their flags, then the path; xdprt stops after the flags.
long server::impl::obj_pin(union bpf_attr& a, const client_memory&) {
    if (a.file_flags & ~f_path_fd) return refuse(EINVAL, "file_flags {:#x}", a.file_flags);
    if (!(a.file_flags & f_path_fd) && attr_field<uint32_t>(a, attr_off::path_fd))
        return refuse(EINVAL, "path_fd without BPF_F_PATH_FD");
    return refuse(EOPNOTSUPP, "pinning is not implemented in xdprt yet");
}

long server::impl::obj_get(union bpf_attr& a, const client_memory&) {
    if (a.bpf_fd || (a.file_flags & ~uint32_t(BPF_F_RDONLY | BPF_F_WRONLY | f_path_fd)))
        return refuse(EINVAL, "bpf_fd {} file_flags {:#x}", a.bpf_fd, a.file_flags);
    if (!(a.file_flags & f_path_fd) && attr_field<uint32_t>(a, attr_off::path_fd))
        return refuse(EINVAL, "path_fd without BPF_F_PATH_FD");
    return refuse(EOPNOTSUPP, "pinning is not implemented in xdprt yet");
}

}  // namespace xdprt::control
