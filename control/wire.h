// The control socket's messages (socket.h serves them, preload.cpp sends them). A Unix
// SOCK_SEQPACKET socket: one request, one reply, each one message of a fixed size.
//
// A request names a call the way the client made it: the command and the address of its attr in
// the client's memory. The server reads and writes that memory itself (process_vm_readv/writev on
// the peer's pid, from SO_PEERCRED) and takes duplicates of the fds the call names through the
// peer's pidfd, so nothing in the message depends on what the call is. An fd the call returns
// rides on the reply (SCM_RIGHTS); `result` is then the server's number, which the client
// replaces with the one it received.
#pragma once

#include <cstdint>

namespace xdprt::control::wire {

inline constexpr uint32_t magic = 0x52504458;  // "XDPR"
inline constexpr uint16_t version = 1;

enum class call : uint16_t {
    hello = 1,            // answered with the server's store device, pin root and, in result,
                          // what the client's map writes through shared memory hold writer
                          // locks as (maps::client_writer | its pid as the server sees it)
    bpf = 2,              // args: cmd, attr address, size
    perf_event_open = 3,  // args: attr address, pid, cpu, group_fd, flags
    fd_kind = 4,          // args: fd; answered with its anon inode name ("bpf-map", ...) in text
    xdp_set = 5,          // args: ifindex, prog fd (-1: detach), flags, expected fd (-1: none)
    xdp_reports = 6,      // answered in text: "IFINDEX PROG_ID ATTACHED;" per served interface
    fdinfo = 7,           // args: fd; answered with the bpf lines of its /proc fdinfo in text
};

struct request {
    uint32_t magic = wire::magic;
    uint16_t version = wire::version;
    uint16_t call = 0;
    int64_t args[6] = {};
};

enum reply_flags : uint16_t {
    carries_fd = 1,  // an fd rides on the reply
    to_kernel = 2,   // not the appliance's to serve: make the call to the kernel
};

struct reply {
    uint32_t magic = wire::magic;
    uint16_t version = wire::version;
    uint16_t flags = 0;
    int64_t result = 0;      // what the call returns, or -errno
    uint64_t store_dev = 0;  // hello: st_dev of the server's object files
    char text[480] = {};     // hello: the pin root; fd_kind: the name; a failed call: the reason
};

}  // namespace xdprt::control::wire
