#include "control/inprocess.h"

#include <dlfcn.h>
#include <linux/perf_event.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstring>

#include "control/ring_wakeup.h"
#include "control/server.h"
#include "perf/perf_event.h"

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
    auto answer = [](long r) {
        if (r < 0) {
            errno = int(-r);
            return -1L;
        }
        return r;
    };
    if (number == SYS_bpf) {
        if (auto* s = xdprt::control::inprocess::target.load(std::memory_order_acquire))
            return answer(s->bpf(int(a[0]), uint64_t(a[1]), uint32_t(a[2])));
    } else if (number == SYS_perf_event_open) {
        // BPF output events of one CPU are the server's (control/perf_commands.cpp); others the kernel's.
        if (auto* s = xdprt::control::inprocess::target.load(std::memory_order_acquire))
            if (auto r = s->perf_event_open(uint64_t(a[0]), int(a[1]), int(a[2]), int(a[3]), static_cast<unsigned long>(a[4])))
                return answer(*r);
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
    return real(epfd, op, xdprt::control::ring_wakeup::epoll_target(op, fd), event);
}

// A consumer's mmap of an xdprt perf event fixes its ring's size, as the kernel's perf_mmap does:
// perf::prepare_mmap checks the mapping and tells the producers (perf/perf_event.h). Every other
// mapping passes through; the check costs one fstat per file mapping. glibc's own mappings
// (malloc, the loader) do not come through here, and dlsym does not map memory.
namespace {
using mmap_fn = void* (*)(void*, size_t, int, int, int, off_t);
void* interposed_mmap(void* addr, size_t len, int prot, int flags, int fd, off_t offset) {
    static const auto real = reinterpret_cast<mmap_fn>(dlsym(RTLD_NEXT, "mmap"));
    if (fd >= 0 && !(flags & MAP_ANONYMOUS) && xdprt::perf::is_event(fd)) {
        if (auto ok = xdprt::perf::prepare_mmap(fd, len, prot, flags, offset); !ok) {
            errno = ok.error().code;
            return MAP_FAILED;
        }
    }
    return real(addr, len, prot, flags, fd, offset);
}
}  // namespace

// Both names, by their symbols: <sys/mman.h> under _FILE_OFFSET_BITS=64 renames mmap to mmap64,
// and callers built either way must arrive here.
extern "C" void* xdprt_mmap(void*, size_t, int, int, int, off_t) __asm__("mmap");
extern "C" void* xdprt_mmap64(void*, size_t, int, int, int, off_t) __asm__("mmap64");
extern "C" void* xdprt_mmap(void* addr, size_t len, int prot, int flags, int fd, off_t offset) {
    return interposed_mmap(addr, len, prot, flags, fd, offset);
}
extern "C" void* xdprt_mmap64(void* addr, size_t len, int prot, int flags, int fd, off_t offset) {
    return interposed_mmap(addr, len, prot, flags, fd, offset);
}

// libbpf enables and disables its perf buffer's events with ioctl; on an xdprt event the
// perf ioctls it and perf tools use most are answered here (ENABLE, DISABLE, ID; the
// PERF_IOC_FLAG_GROUP argument changes nothing for an event alone in its group). Other perf
// ioctls on such an fd fail with ENOTTY, as every ioctl on a plain file does.
extern "C" int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    using ioctl_fn = int (*)(int, unsigned long, ...);
    static const auto real = reinterpret_cast<ioctl_fn>(dlsym(RTLD_NEXT, "ioctl"));
    bool perf_request = request == PERF_EVENT_IOC_ENABLE || request == PERF_EVENT_IOC_DISABLE || request == PERF_EVENT_IOC_ID;
    if (!perf_request || !xdprt::perf::is_event(fd)) return real(fd, request, arg);
    xdprt::result<void> ok;
    if (request == PERF_EVENT_IOC_ID) {
        auto id = xdprt::perf::id_of(fd);
        if (id && !arg) ok = xdprt::fail(EFAULT, "PERF_EVENT_IOC_ID: null pointer");
        else if (id) std::memcpy(arg, &*id, sizeof *id);
        else ok = tl::unexpected(id.error());
    } else {
        ok = xdprt::perf::set_enabled(fd, request == PERF_EVENT_IOC_ENABLE);
    }
    if (!ok) {
        errno = ok.error().code;
        return -1;
    }
    return 0;
}
