#include "control/ring_wakeup.h"

#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>

#include "maps/map.h"
#include "perf/perf_event.h"

namespace xdprt::control::ring_wakeup {

namespace {

constexpr off_t page = 4096;  // consumer_pos at 0, producer_pos at one page (maps/ringbuf.cpp)

struct watched {
    ino_t inode;
    int event_fd;
    off_t consumer_off, producer_off;  // where the two positions are in the file
    bool signaled = false;
};

struct watcher {
    std::mutex lock;
    std::map<int, watched> by_fd;  // the consumer's map fd
    bool running = false;
};

watcher& state() {
    static auto* w = new watcher();  // never destroyed: the thread may outlive static destructors
    return *w;
}

// An xdprt RINGBUF map (consumer_pos at 0, producer_pos one page in: maps/ringbuf.cpp) or perf
// event (data_tail and data_head in the user page: perf/perf_event.h): where to read them.
bool probe(int fd, watched& w) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    w.inode = st.st_ino;
    if (perf::is_event(fd)) {
        w.consumer_off = perf::data_tail_offset;
        w.producer_off = perf::data_head_offset;
        return true;
    }
    if (st.st_size < 4 * page || st.st_size % page) return false;
    maps::map_header h;
    if (pread(fd, &h, sizeof h, st.st_size - page) != ssize_t(sizeof h)) return false;
    w.consumer_off = 0;
    w.producer_off = page;
    return h.valid(size_t(st.st_size)) && h.type == BPF_MAP_TYPE_RINGBUF;
}

void run() {
    watcher& w = state();
    for (;;) {
        {
            std::lock_guard g(w.lock);
            for (auto it = w.by_fd.begin(); it != w.by_fd.end();) {
                watched& r = it->second;
                struct stat st;
                uint64_t cons = 0, prod = 0;
                // The consumer closed or reused its fd: the registration is gone with it.
                if (fstat(it->first, &st) != 0 || st.st_ino != r.inode || pread(it->first, &cons, 8, r.consumer_off) != 8 ||
                    pread(it->first, &prod, 8, r.producer_off) != 8) {
                    close(r.event_fd);
                    it = w.by_fd.erase(it);
                    continue;
                }
                if (prod != cons && !r.signaled) {
                    uint64_t one = 1;
                    r.signaled = write(r.event_fd, &one, 8) == 8;
                } else if (prod == cons && r.signaled) {
                    uint64_t v;
                    r.signaled = read(r.event_fd, &v, 8) != 8;
                }
                ++it;
            }
            if (w.by_fd.empty()) {
                w.running = false;
                return;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

}  // namespace

int substitute(int fd) {
    watched probed{};
    int saved = errno;
    bool ring = probe(fd, probed);
    errno = saved;
    if (!ring) return -1;
    watcher& w = state();
    std::lock_guard g(w.lock);
    auto it = w.by_fd.find(fd);
    if (it != w.by_fd.end() && it->second.inode == probed.inode) return it->second.event_fd;
    if (it != w.by_fd.end()) {
        close(it->second.event_fd);
        w.by_fd.erase(it);
    }
    int e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (e < 0) return -1;
    probed.event_fd = e;
    w.by_fd[fd] = probed;
    if (!w.running) {
        w.running = true;
        std::thread(run).detach();
    }
    return e;
}

int registered(int fd) {
    watcher& w = state();
    std::lock_guard g(w.lock);
    auto it = w.by_fd.find(fd);
    return it == w.by_fd.end() ? -1 : it->second.event_fd;
}

int epoll_target(int op, int fd) {
    int e = op == EPOLL_CTL_DEL ? registered(fd) : substitute(fd);
    return e >= 0 ? e : fd;
}

}  // namespace xdprt::control::ring_wakeup
