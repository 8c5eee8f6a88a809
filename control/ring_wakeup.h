// Wakeups for ring buffer and perf buffer consumers (libbpf's ring_buffer__poll and
// perf_buffer__poll, DESIGN.md invariant 7).
//
// A kernel RINGBUF fd polls readable while the ring holds unconsumed data, and so does a perf
// event fd (for libbpf's events, wakeup_events 1: after every sample). An xdprt ringbuf or perf
// event is a plain file whose producers (workers) make no syscalls, so a consumer's epoll
// registration of the fd is redirected to an eventfd that a watcher thread keeps readable while the ring's
// producer position is ahead of its consumer position (checked every millisecond with two
// preads of the consumer's own fd, so the watcher holds no reference that would keep the map
// alive). Wakeup latency is at most about a millisecond. For perf events, wakeup_events and
// watermark are read as "wake while not empty", which covers every setting (a wakeup earlier
// than asked; the consumer reads what is there).
//
// Thread affinity: any thread.
#pragma once

namespace xdprt::control::ring_wakeup {

// The eventfd to register in place of `fd` when it is an xdprt RINGBUF map or perf event, else -1 (errno
// untouched). Registering the same fd again gives the same eventfd.
int substitute(int fd);

// The eventfd registered for `fd`, or -1 when there is none.
int registered(int fd);

// What an interposed epoll_ctl(op, fd) registers: the eventfd standing in for an xdprt ring or
// perf event, else `fd` itself.
int epoll_target(int op, int fd);

}  // namespace xdprt::control::ring_wakeup
