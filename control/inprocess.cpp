#include "control/inprocess.h"

#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdint>

#include "control/ring_wakeup.h"
#include "control/server.h"

namespace xdprt::control::inprocess {

namespace {
std::atomic<server*> target{nullptr};
}

server* route_to(server* s) { return target.exchange(s); }

}  // namespace xdprt::control::inprocess

extern "C" long syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (long& x : a) x = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_bpf) {
        if (auto* s = xdprt::control::inprocess::target.load(std::memory_order_acquire)) {
            long r = s->bpf(int(a[0]), uint64_t(a[1]), uint32_t(a[2]));
            if (r < 0) {
                errno = int(-r);
                return -1;
            }
            return r;
        }
    }
    using syscall_fn = long (*)(long, ...);
    static const auto real = reinterpret_cast<syscall_fn>(dlsym(RTLD_NEXT, "syscall"));
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

// libbpf's ring_buffer__add registers the ringbuf map fd with epoll; an xdprt ring registers the
// eventfd ring_wakeup keeps for it (control/ring_wakeup.h).
extern "C" int epoll_ctl(int epfd, int op, int fd, struct epoll_event* event) {
    using epoll_ctl_fn = int (*)(int, int, int, struct epoll_event*);
    static const auto real = reinterpret_cast<epoll_ctl_fn>(dlsym(RTLD_NEXT, "epoll_ctl"));
    int target = fd;
    if (op == EPOLL_CTL_DEL) {
        if (int e = xdprt::control::ring_wakeup::registered(fd); e >= 0) target = e;
    } else if (int e = xdprt::control::ring_wakeup::substitute(fd); e >= 0) {
        target = e;
    }
    return real(epfd, op, target, event);
}
