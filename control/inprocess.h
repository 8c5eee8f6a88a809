// Real libbpf against the server, in this process (DESIGN.md invariant 2).
//
// libbpf issues bpf() through libc's syscall(); this module defines syscall() for the executable
// (link it whole), sends SYS_bpf to the server chosen with route_to(), and passes every other
// call, and bpf() while no server is chosen, to libc's syscall() with all six arguments.
// SYS_perf_event_open of a BPF output event goes to the server too (server::perf_event_open), and
// so that libbpf's perf_buffer works on the events it returns, this module also interposes mmap
// (a consumer's first mapping sizes the ring), ioctl (PERF_EVENT_IOC_ENABLE/DISABLE/ID on xdprt
// events only) and epoll_ctl (ring buffers and perf events wake through an eventfd,
// ring_wakeup.h). Everything else passes to libc untouched.
//
// Thread affinity: route_to() from any thread; calls made while it changes go to either target.
#pragma once

namespace xdprt::control {

class server;

namespace inprocess {

// Sends this process's bpf() calls to `s` (null: to the kernel). Returns the previous target.
server* route_to(server* s);

// Routes to `s` for a scope.
class scoped_route {
public:
    explicit scoped_route(server* s) : _previous(route_to(s)) {}
    ~scoped_route() { route_to(_previous); }
    scoped_route(const scoped_route&) = delete;
    scoped_route& operator=(const scoped_route&) = delete;

private:
    server* _previous;
};

}  // namespace inprocess
}  // namespace xdprt::control
