// Private to control/: the object table of the server and the client memory it works on.
#pragma once

#include <linux/bpf.h>
#include <sys/types.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/kernel_bpf.h"
#include "control/btf.h"
#include "control/server.h"
#include "maps/map.h"
#include "perf/perf_event.h"
#include "vm/vm.h"
#ifdef XDPRT_HAVE_JIT
#include "jit/jit.h"
#endif

namespace xdprt::control {

// Perf events (BPF output events, perf_commands.cpp) are not bpf objects: they have no id, and only
// PERF_EVENT_ARRAY updates take them.
enum class obj_kind { map, prog, btf, link, perf_event };

inline constexpr int maps_enotsupp = 524;  // the kernel's ENOTSUPP, returned by bpf() as is

// The union bpf_attr of the kernel xdprt answers for (6.18): 168 bytes, where Debian 12's
// <linux/bpf.h> (6.1) declares 144. The server reads attrs into a buffer of the larger size and
// reaches the fields the header does not name by offset.
inline constexpr size_t kernel_attr_bytes = sizeof(union bpf_attr) > 168 ? sizeof(union bpf_attr) : 168;
namespace attr_off {
inline constexpr size_t map_value_type_btf_obj_fd = 72, map_token_fd = 76, excl_prog_hash = 80,
                        excl_prog_hash_size = 88, map_create_end = 92;
inline constexpr size_t log_true_size = 140, prog_token_fd = 144, fd_array_cnt = 148, signature = 152,
                        signature_size = 160, keyring_id = 164, prog_load_end = 168;
inline constexpr size_t btf_log_true_size = 28, btf_flags = 32, btf_token_fd = 36, btf_load_end = 40;
inline constexpr size_t path_fd = 16, obj_end = 20;
inline constexpr size_t fd_by_id_token_fd = 12, btf_get_fd_by_id_end = 16;
}  // namespace attr_off
inline constexpr uint32_t f_token_fd = 1u << 16;              // BPF_F_TOKEN_FD (map, prog, BTF flags)
inline constexpr uint32_t f_xdp_dev_bound_only = 1u << 6;     // BPF_F_XDP_DEV_BOUND_ONLY
inline constexpr uint32_t f_test_reg_invariants = 1u << 7;    // BPF_F_TEST_REG_INVARIANTS
inline constexpr uint32_t f_path_fd = 1u << 14;               // BPF_F_PATH_FD (OBJ_PIN, OBJ_GET)

// An attr as the server holds it: the header's union, then the bytes newer kernels added.
struct attr_buffer {
    union bpf_attr a;
    uint8_t newer[kernel_attr_bytes - sizeof(union bpf_attr)];
};
static_assert(offsetof(attr_buffer, a) == 0 && sizeof(attr_buffer) == kernel_attr_bytes);

// A field of the 6.18 attr by offset; `a` must be the `a` of an attr_buffer.
template <class T>
T attr_field(const union bpf_attr& a, size_t off) {
    T v;
    std::memcpy(&v, reinterpret_cast<const uint8_t*>(&a) + off, sizeof v);
    return v;
}


// bpf_obj_name_cpy: letters, digits, '_' and '.', NUL-terminated within BPF_OBJ_NAME_LEN (EINVAL).
[[nodiscard]] result<std::string> object_name(const char (&raw)[BPF_OBJ_NAME_LEN]);

struct object;
using object_ref = std::shared_ptr<object>;

struct loaded_prog {
    uint32_t type = 0;
    uint32_t expected_attach_type = 0;
    uint32_t flags = 0;
    bool runnable = false;  // an XDP program; other types are kept only to answer loaders' probes
    std::array<uint8_t, 8> tag{};
    uint64_t load_time_ns = 0;
    std::vector<isa::insn> insns;  // as the client passed them (jited/xlated info is built from these)
    vm::linkage link;
    vm::program program;
#ifdef XDPRT_HAVE_JIT
    jit::compiled_program image;
#endif
    vm::native_fn native = nullptr;
    std::vector<object_ref> used_maps;
    object_ref btf;
    uint32_t func_info_rec_size = 0, line_info_rec_size = 0;
    std::vector<uint8_t> func_info, line_info;
};

struct link_state {
    uint32_t type = 0;         // BPF_LINK_TYPE_XDP
    uint32_t ifindex = 0;      // 0 once detached
    uint32_t attach_flags = 0;
    object_ref prog;
};

// The XDP program attached to an interface the appliance serves: through a link (which owns
// the attachment: closing its last fd detaches) or directly (netlink, through the shim).
struct xdp_attachment {
    object_ref prog;
    uint32_t link_id = 0;  // 0: not a link
    uint32_t mode = 0;     // XDP_FLAGS_SKB_MODE or XDP_FLAGS_DRV_MODE
};

struct object {
    obj_kind kind;
    uint32_t id = 0;
    int handle = -1;  // the server's fd of the object's file (a map's memory, else empty)
    ino_t inode = 0;
    int watch = -1;              // inotify watch of the file
    uint32_t client_files = 0;   // open file descriptions handed to clients and not yet closed
    bool user_cleared = false;   // a PROG_ARRAY emptied when its last user reference went
    bool pinned() const;         // linked into the pin root
    std::string name;
    std::unique_ptr<maps::map> map;
    std::unique_ptr<loaded_prog> prog;
    std::unique_ptr<control::btf> btf;
    std::unique_ptr<link_state> link;
    std::unique_ptr<perf::event> perf;
    // map extras
    uint32_t btf_key_type_id = 0, btf_value_type_id = 0, map_ifindex = 0;
    object_ref map_btf;
    object_ref inner_template;
    ~object();
};

// The caller's memory: process_vm_readv/writev on `pid` (0: this process), so bad addresses are
// EFAULT rather than a crash.
struct client_memory {
    pid_t pid = 0;
    [[nodiscard]] result<void> read(uint64_t addr, void* out, size_t n) const;
    // Two regions in one process_vm_readv (each call costs ~1 us here, whatever its size).
    [[nodiscard]] result<void> read_two(uint64_t addr1, void* out1, size_t n1, uint64_t addr2, void* out2, size_t n2) const;
    [[nodiscard]] result<void> write(uint64_t addr, const void* in, size_t n) const;
    [[nodiscard]] result<std::vector<uint8_t>> read_vec(uint64_t addr, size_t n) const;
    [[nodiscard]] result<std::string> read_string(uint64_t addr, size_t max) const;
};

// The log a PROG_LOAD / BTF_LOAD fills as the kernel does (log_level, log_buf, log_size).
struct load_log {
    uint32_t level = 0;
    uint64_t buf = 0;
    uint32_t size = 0;
    std::string text;
    // log_true_size (6.4+): the bytes the whole log needs, its NUL included; 0 without a log.
    // Where the kernel wrote the log (`verify: kernel`), its own count, set before flush().
    std::optional<uint32_t> kernel_true_size;
    uint32_t* true_size_out = nullptr;  // set by flush(), written back to the attr by bpf()
    // The kernel's log attribute checks: EINVAL for a buffer without size or level and the reverse.
    [[nodiscard]] result<void> check() const;
    void flush(const client_memory& mem) const;
};

}  // namespace xdprt::control

namespace xdprt::control {

struct server::impl {
    server_options opts;
    int store_fd = -1;   // pin_root, where object files are created
    int notify = -1;     // inotify: client files closing
    mutable std::mutex lock;  // one command at a time
    std::map<ino_t, object_ref> by_inode;
    std::map<int, ino_t> by_watch;  // inotify watch -> object
    bool dirty = false;              // a reference may have gone: reap() walks the table
    bool overflow_reported = false;
    std::map<uint32_t, std::string> interfaces;    // ifindex -> name: what XDP programs attach to
    std::map<uint32_t, xdp_attachment> xdp;         // by ifindex
    server::xdp_listener xdp_listener;               // the dataplane, told of attachment changes
    server::xsk_binder xsk_binder;                   // the dataplane, given AF_XDP sockets
    std::map<uint32_t, object_ref> by_id[4];  // per obj_kind with ids (not perf_event)
    uint32_t next_id[4] = {1, 1, 1, 1};
    uint64_t next_perf_id = 1;                // PERF_EVENT_IOC_ID of perf events
    std::string last_error;
    uint32_t log_true_size = 0;  // of the last PROG_LOAD / BTF_LOAD, written back to its attr
    int client_pidfd = -1;       // of the process whose command runs, when it is another (socket.h)

    // The server's fd for the client's fd `fd` while a command runs: the same number in
    // process; for another process a duplicate taken through its pidfd (pidfd_getfd), closed
    // when this goes. EBADF when the client has no such fd.
    class client_fd {
    public:
        client_fd(int fd, bool owned) : _fd(fd), _owned(owned) {}
        client_fd(client_fd&& o) noexcept : _fd(std::exchange(o._fd, -1)), _owned(std::exchange(o._owned, false)) {}
        client_fd& operator=(client_fd&&) = delete;
        ~client_fd();
        int get() const { return _fd; }

    private:
        int _fd;
        bool _owned;
    };
    [[nodiscard]] result<client_fd> local(int fd) const;
    // For a scope: the fds commands name are those of the process with `pidfd` (-1: this one).
    class serving {
    public:
        serving(impl& i, int pidfd) : _i(i) { _i.client_pidfd = pidfd; }
        ~serving() { _i.client_pidfd = -1; }
        serving(const serving&) = delete;
        serving& operator=(const serving&) = delete;

    private:
        impl& _i;
    };
    // The object behind fd `fd` of the process with `pidfd` (-1: this one), outside a command.
    [[nodiscard]] result<object_ref> client_object(int fd, int pidfd);

    // Objects.
    [[nodiscard]] result<object_ref> add(obj_kind kind, std::string name, int handle_fd);
    [[nodiscard]] result<object_ref> from_fd(int fd, obj_kind kind) const;
    [[nodiscard]] result<object_ref> from_any_fd(int fd) const;  // a bpf object: never a perf event
    [[nodiscard]] result<object_ref> perf_event_from_fd(int fd) const;
    [[nodiscard]] long new_fd(const object_ref& o);  // a fresh O_CLOEXEC fd of the object for the caller
    [[nodiscard]] result<int> new_file(const char* what);  // an unnamed file in the store, for a handle
    void reap();
    ~impl();
    // A client's pin path, resolved: the file under pin_root, or EPERM outside the bpffs.
    [[nodiscard]] result<std::filesystem::path> pin_path(const union bpf_attr& a, const client_memory& mem) const;

    // Commands (attr already copied and checked for its tail).
    long dispatch(int cmd, union bpf_attr& a, uint64_t attr_addr, uint32_t size, const client_memory& mem);
    long map_create(union bpf_attr& a, const client_memory& mem);
    long map_elem(int cmd, union bpf_attr& a, const client_memory& mem);
    long map_batch(int cmd, union bpf_attr& a, uint64_t attr_addr, const client_memory& mem);
    long map_freeze(union bpf_attr& a);
    long prog_load(union bpf_attr& a, const client_memory& mem);
    long prog_test_run(union bpf_attr& a, uint64_t attr_addr, const client_memory& mem);
    long btf_load(union bpf_attr& a, const client_memory& mem);
    long get_next_id(int cmd, union bpf_attr& a, uint64_t attr_addr, const client_memory& mem);
    long get_fd_by_id(int cmd, union bpf_attr& a);
    long obj_get_info(union bpf_attr& a, uint64_t attr_addr, const client_memory& mem);
    long obj_pin(union bpf_attr& a, const client_memory& mem);
    long obj_get(union bpf_attr& a, const client_memory& mem);
    long prog_bind_map(union bpf_attr& a);
    // bpf_token_get_from_fd: xdprt has no BPF tokens, so an open fd is never one (EINVAL).
    [[nodiscard]] result<void> no_token(int fd) const;
    long link_create(union bpf_attr& a);
    long link_update(union bpf_attr& a);
    long link_detach(union bpf_attr& a);
    long xdp_set(uint32_t ifindex, int prog_fd, uint32_t flags, int expected_fd);
    std::optional<long> perf_event_open(uint64_t attr_addr, int pid, int cpu, int group_fd, unsigned long flags,
                                        const client_memory& mem);
    void detach(link_state& l);
    // Tells the listener that `ifindex` now runs `prog` (null: nothing); its refusal, for attaches.
    [[nodiscard]] result<void> publish_xdp(uint32_t ifindex, const object_ref& prog);

    // Fails a command: records the message, returns -code.
    long refuse(const error& e) {
        last_error = e.message;
        return -long(e.code);
    }
    template <class... Args>
    long refuse(int code, fmt::format_string<Args...> f, Args&&... args) {
        return refuse(error{code, fmt::format(f, std::forward<Args>(args)...)});
    }
};

}  // namespace xdprt::control
