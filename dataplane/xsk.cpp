// AF_XDP sockets of local applications: where XSKMAP redirects go (dataplane.h, bind_xsk).
//
// The socket stays the kernel's: the application binds it in copy mode to queue q of a port's
// kernel twin (a multi-queue TAP device) and maps its rings as with any NIC. When the first
// socket enters an XSKMAP, the dataplane creates a kernel XSKMAP with a slot per socket and gives
// every twin a kernel XDP program of ours; each socket is put in its slot. A worker delivers a
// frame the port's program redirected to a socket by writing it, behind 4 bytes naming the slot,
// to the ingress port's twin on the frame's own RX queue q: the kernel runs our program on it
// (native XDP on tun; rx_queue_index q), which strips the slot and redirects the frame into that
// slot's socket. The kernel then applies its own rule, as for a frame from a NIC: the socket must
// be bound to this twin and queue, or the frame is dropped; it copies the frame into the
// application's UMEM. The twin's queues below the port's RX queue count carry only these frames
// (PASS and the twin service use the queues after them); the program passes every other queue's
// frames to the stack. What the application sends leaves the twin on queue q; the twin service
// reads every twin queue and transmits through the port.
//
// The dataplane learns a socket's queue from the kernel (a program reading the slot's
// bpf_xdp_sock.queue_id through BPF_PROG_TEST_RUN) and checks it per frame, counting a redirect
// to a socket of another queue as redirect_error. Which interface the socket is bound to it does
// not need to know (the kernel's sock_diag for AF_XDP is often not built): a socket bound to
// another interface never receives a frame, as in the kernel.
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include <fmt/format.h>

#include "base/kernel_bpf.h"
#include "dataplane/internal.h"

namespace xdprt::dataplane {

inline constexpr uint32_t xsk_slots = 1024;  // AF_XDP sockets in XSKMAPs at once

struct xsk_registry {
    std::mutex lock;
    int map = -1;    // kernel XSKMAP: a slot per socket
    int query = -1;  // kernel program: the queue of a slot's socket
    std::vector<uint32_t> free_slots;
    std::unordered_map<ino_t, std::weak_ptr<const maps::xsk_binding>> by_socket;
    ~xsk_registry() {
        for (int fd : {query, map})
            if (fd >= 0) close(fd);
    }
};

namespace {

error kernel_error(long r, std::string_view what) { return error{int(-r), fmt::format("{}: {}", what, std::strerror(int(-r)))}; }

bpf_insn op(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) { return {code, dst, src, off, imm}; }
// ld_imm64 of a map fd: two instructions.
void load_map(std::vector<bpf_insn>& p, uint8_t dst, int fd) {
    p.push_back(op(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd));
    p.push_back(op(0, 0, 0, 0, 0));
}

result<int> load_program(const std::vector<bpf_insn>& insns, const char* name) {
    static const char license[] = "GPL";
    union bpf_attr a{};
    a.prog_type = BPF_PROG_TYPE_XDP;
    a.insns = reinterpret_cast<uint64_t>(insns.data());
    a.insn_cnt = uint32_t(insns.size());
    a.license = reinterpret_cast<uint64_t>(license);
    std::strncpy(a.prog_name, name, sizeof a.prog_name - 1);
    long fd = kernel_bpf(BPF_PROG_LOAD, &a, sizeof a);
    if (fd < 0) return tl::unexpected(kernel_error(fd, fmt::format("loading the kernel program {}", name)));
    return int(fd);
}

// A twin's program. Frames on queues below `xsk_queues` start with a u32 slot:
//   if (ctx->rx_queue_index >= xsk_queues) return XDP_PASS;
//   slot = *(u32 *)data; bpf_xdp_adjust_head(ctx, 4);
//   return bpf_redirect_map(xsks, slot, XDP_DROP);
result<int> load_twin_program(int map_fd, uint32_t xsk_queues) {
    std::vector<bpf_insn> p = {
        op(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_1, 0, 0),
        op(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, int16_t(offsetof(xdp_md, rx_queue_index)), 0),
        op(BPF_JMP | BPF_JGE | BPF_K, BPF_REG_2, 0, 18, int32_t(xsk_queues)),  // -> pass
        op(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_6, int16_t(offsetof(xdp_md, data)), 0),
        op(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_6, int16_t(offsetof(xdp_md, data_end)), 0),
        op(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0),
        op(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, 4),
        op(BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 11, 0),  // -> drop
        op(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_7, BPF_REG_2, 0, 0),
        op(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_6, 0, 0),
        op(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_2, 0, 0, 4),
        op(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_xdp_adjust_head),
        op(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 6, 0),  // -> drop
    };
    load_map(p, BPF_REG_1, map_fd);
    p.push_back(op(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_7, 0, 0));
    p.push_back(op(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, XDP_DROP));
    p.push_back(op(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_redirect_map));
    p.push_back(op(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    p.push_back(op(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_DROP));  // drop
    p.push_back(op(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    p.push_back(op(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS));  // pass
    p.push_back(op(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    return load_program(p, "xdprt_xsk_twin");
}

// Run through BPF_PROG_TEST_RUN on a frame starting with a u32 slot: 1 + the queue of that
// slot's socket, 0 for an empty slot.
result<int> load_query_program(int map_fd) {
    std::vector<bpf_insn> p = {
        op(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, int16_t(offsetof(xdp_md, data)), 0),
        op(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, int16_t(offsetof(xdp_md, data_end)), 0),
        op(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0),
        op(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, 4),
        op(BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 11, 0),  // -> miss
        op(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_2, 0, 0),
        op(BPF_STX | BPF_MEM | BPF_W, BPF_REG_10, BPF_REG_2, -4, 0),
        op(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0),
        op(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4),
    };
    load_map(p, BPF_REG_1, map_fd);
    p.push_back(op(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem));
    p.push_back(op(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 3, 0));  // -> miss
    p.push_back(op(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_0, BPF_REG_0, int16_t(offsetof(bpf_xdp_sock, queue_id)), 0));
    p.push_back(op(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_0, 0, 0, 1));
    p.push_back(op(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    p.push_back(op(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0));  // miss
    p.push_back(op(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    return load_program(p, "xdprt_xsk_query");
}

// The kernel side, made once: the XSKMAP, the query program, each twin's program and link.
result<void> open_kernel_side(dataplane::impl& dp, xsk_registry& r) {
    union bpf_attr a{};
    a.map_type = BPF_MAP_TYPE_XSKMAP;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = xsk_slots;
    std::strncpy(a.map_name, "xdprt_xsks", sizeof a.map_name - 1);
    long map = kernel_bpf(BPF_MAP_CREATE, &a, sizeof a);
    if (map < 0) return tl::unexpected(kernel_error(map, "creating the kernel XSKMAP"));
    r.map = int(map);
    auto q = load_query_program(r.map);
    if (!q) return tl::unexpected(q.error());
    r.query = *q;
    for (uint32_t s = xsk_slots; s-- > 0;) r.free_slots.push_back(s);
    for (auto& ps : dp.ports) {
        if (ps->twin == no_ethdev) continue;
        auto prog = load_twin_program(r.map, ps->twin_pass_queue);
        if (!prog) return tl::unexpected(prog.error());
        ps->xsk.prog = *prog;
        union bpf_attr l{};
        l.link_create.prog_fd = uint32_t(ps->xsk.prog);
        l.link_create.target_ifindex = ps->ifindex;
        l.link_create.attach_type = BPF_XDP;
        long link = kernel_bpf(BPF_LINK_CREATE, &l, sizeof l);
        if (link < 0) return tl::unexpected(kernel_error(link, fmt::format("attaching the AF_XDP program to twin '{}'", ps->spec.name)));
        ps->xsk.link = int(link);
    }
    return {};
}

// The queue the socket in `slot` is bound to (0 for one not bound, as the kernel keeps it).
result<uint32_t> queue_of(const xsk_registry& r, uint32_t slot) {
    std::array<uint8_t, 64> frame{};
    std::memcpy(frame.data(), &slot, 4);
    union bpf_attr t{};
    t.test.prog_fd = uint32_t(r.query);
    t.test.data_in = reinterpret_cast<uint64_t>(frame.data());
    t.test.data_size_in = uint32_t(frame.size());
    t.test.repeat = 1;
    if (long rc = kernel_bpf(BPF_PROG_TEST_RUN, &t, sizeof t); rc < 0)
        return tl::unexpected(kernel_error(rc, "asking the kernel for the socket's queue"));
    if (!t.test.retval) return fail(ENOENT, "the socket left its slot");
    return t.test.retval - 1;
}

long set_slot(const xsk_registry& r, uint32_t slot, int fd) {
    union bpf_attr u{};
    u.map_fd = uint32_t(r.map);
    u.key = reinterpret_cast<uint64_t>(&slot);
    if (fd < 0) return kernel_bpf(BPF_MAP_DELETE_ELEM, &u, sizeof u);
    u.value = reinterpret_cast<uint64_t>(&fd);
    u.flags = BPF_ANY;
    return kernel_bpf(BPF_MAP_UPDATE_ELEM, &u, sizeof u);
}

}  // namespace

void close_xsk(port_state& ps) {
    for (int* fd : {&ps.xsk.link, &ps.xsk.prog}) {
        if (*fd >= 0) close(*fd);
        *fd = -1;
    }
}

result<std::shared_ptr<const maps::xsk_binding>> dataplane::bind_xsk(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return fail(EBADF, "fd {} is not open", fd);
    if (!S_ISSOCK(st.st_mode)) return fail(ENOTSOCK, "fd {} is no socket", fd);
    int domain = 0;
    socklen_t len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_XDP)
        return fail(EOPNOTSUPP, "fd {} is no AF_XDP socket", fd);
    if (!_impl->xsks) _impl->xsks = std::make_shared<xsk_registry>();
    std::shared_ptr<xsk_registry> reg = _impl->xsks;
    std::lock_guard lock(reg->lock);
    if (reg->map < 0)
        if (auto ok = open_kernel_side(*_impl, *reg); !ok) return tl::unexpected(ok.error());
    // The socket's slot: the one it has while any element holds it, else a free one. (A slot
    // whose socket died and whose inode a new socket took holds the new one only if it is bound
    // to the same queue; else the new socket gets its own.)
    std::shared_ptr<const maps::xsk_binding> held;
    if (auto it = reg->by_socket.find(st.st_ino); it != reg->by_socket.end()) held = it->second.lock();
    if (held) {
        if (long r = set_slot(*reg, held->slot, fd); r < 0) return tl::unexpected(kernel_error(r, "the kernel XSKMAP"));
        auto queue = queue_of(*reg, held->slot);
        if (!queue) return tl::unexpected(queue.error());
        if (*queue == held->queue) return held;
        (void)set_slot(*reg, held->slot, -1);
    }
    if (reg->free_slots.empty()) return fail(ENOSPC, "{} AF_XDP sockets are in XSKMAPs already", xsk_slots);
    uint32_t slot = reg->free_slots.back();
    if (long r = set_slot(*reg, slot, fd); r < 0) return tl::unexpected(kernel_error(r, "the kernel XSKMAP"));
    auto queue = queue_of(*reg, slot);
    if (!queue) {
        (void)set_slot(*reg, slot, -1);
        return tl::unexpected(queue.error());
    }
    reg->free_slots.pop_back();
    // The slot goes back (and the kernel lets go of the socket) with the last element holding it.
    std::weak_ptr<xsk_registry> weak = reg;
    auto* b = new maps::xsk_binding{slot, *queue};
    std::shared_ptr<const maps::xsk_binding> binding(b, [weak, ino = st.st_ino](const maps::xsk_binding* b) {
        if (auto reg = weak.lock()) {
            std::lock_guard lock(reg->lock);
            auto it = reg->by_socket.find(ino);
            if (it != reg->by_socket.end() && it->second.expired()) reg->by_socket.erase(it);
            if (reg->map >= 0) (void)set_slot(*reg, b->slot, -1);
            reg->free_slots.push_back(b->slot);
        }
        delete b;
    });
    reg->by_socket[st.st_ino] = binding;
    return binding;
}

}  // namespace xdprt::dataplane
