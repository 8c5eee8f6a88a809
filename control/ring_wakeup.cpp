#include "control/ring_wakeup.h"

#include <linux/bpf.h>
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

namespace xdprt::control::ring_wakeup {

namespace {

constexpr off_t page = 4096;  // consumer_pos at 0, producer_pos at one page (maps/ringbuf.cpp)

struct watched {
    ino_t inode;
    int event_fd;
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

bool is_xdprt_ringbuf(int fd, ino_t& inode) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 4 * page || st.st_size % page) return false;
    maps::map_header h;
    if (pread(fd, &h, sizeof h, st.st_size - page) != ssize_t(sizeof h)) return false;
    inode = st.st_ino;
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
                if (fstat(it->first, &st) != 0 || st.st_ino != r.inode || pread(it->first, &cons, 8, 0) != 8 ||
                    pread(it->first, &prod, 8, page) != 8) {
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
    ino_t inode;
    int saved = errno;
    bool ring = is_xdprt_ringbuf(fd, inode);
    errno = saved;
    if (!ring) return -1;
    watcher& w = state();
    std::lock_guard g(w.lock);
    auto it = w.by_fd.find(fd);
    if (it != w.by_fd.end() && it->second.inode == inode) return it->second.event_fd;
    if (it != w.by_fd.end()) {
        close(it->second.event_fd);
        w.by_fd.erase(it);
    }
    int e = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (e < 0) return -1;
    w.by_fd[fd] = watched{inode, e};
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

}  // namespace xdprt::control::ring_wakeup
