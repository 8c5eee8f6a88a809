#include "control/socket.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "control/wire.h"
#include "maps/map.h"

namespace xdprt::control {

namespace {

struct peer {
    int fd = -1;
    pid_t pid = 0;
    int pidfd = -1;
    uint32_t token = 0;    // what its map writes hold writer locks as (maps::writer_guard)
    bool refused = false;  // told why at once; closed once what it sent is read (else unix
                           // sockets reset the connection, and the reason is lost)
};

void copy_text(char (&out)[sizeof(wire::reply::text)], std::string_view text) {
    size_t n = std::min(text.size(), sizeof out - 1);
    std::memcpy(out, text.data(), n);
    out[n] = 0;
}

// One reply, with `fd` riding on it when it is not negative. False when the peer is gone.
bool send_reply(int sock, const wire::reply& r, int fd = -1) {
    iovec iov{const_cast<wire::reply*>(&r), sizeof r};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (fd >= 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) == ssize_t(sizeof r);
}

wire::reply error_reply(int code, std::string_view why) {
    wire::reply r;
    r.result = -code;
    copy_text(r.text, why);
    return r;
}

}  // namespace

struct control_socket::impl {
    server& srv;
    socket_options opts;
    int listen_fd = -1, stop_fd = -1, ep = -1;
    dev_t store_dev = 0;
    std::unordered_map<int, peer> peers;
    std::atomic<uint64_t> calls{0}, refused{0}, malformed{0};
    std::jthread thread;

    impl(server& s, socket_options o) : srv(s), opts(std::move(o)) {}
    ~impl() {
        if (stop_fd >= 0) {
            uint64_t one = 1;
            (void)!write(stop_fd, &one, sizeof one);
        }
        if (thread.joinable()) thread.join();
        for (auto& [fd, p] : peers) drop(p);
        for (int fd : {listen_fd, stop_fd, ep})
            if (fd >= 0) close(fd);
        if (listen_fd >= 0) unlink(opts.path.c_str());
    }

    // Closes a connection after reading what the peer sent: closing with unread messages resets
    // it, and the peer would lose the reply it has not read yet.
    void drop(peer& p) {
        char sink[sizeof(wire::request)];
        while (recv(p.fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
        }
        if (p.pidfd >= 0) close(p.pidfd);
        close(p.fd);
        // A peer killed while writing a map through its shared memory held the map's writer lock.
        if (p.token) srv.release_writer(p.token, p.pid);
    }

    // SO_PEERCRED: root, or in the configured group (primary or supplementary).
    result<void> admit(int fd, pid_t& pid) const {
        ucred cred{};
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return fail(errno, "SO_PEERCRED: {}", strerror(errno));
        pid = cred.pid;
        if (cred.uid == 0) return {};
        if (opts.group) {
            if (cred.gid == *opts.group) return {};
            std::vector<gid_t> groups(64);
            socklen_t glen = socklen_t(groups.size() * sizeof(gid_t));
            if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
                groups.resize(glen / sizeof(gid_t));
                if (std::find(groups.begin(), groups.end(), *opts.group) != groups.end()) return {};
            }
            return fail(EPERM, "xdprt: uid {} is neither root nor in group {} (the appliance's control group)", cred.uid, *opts.group);
        }
        return fail(EPERM, "xdprt: uid {} is not root (the appliance admits root only)", cred.uid);
    }

    void accept_all() {
        for (;;) {
            int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0) return;
            peer p{fd};
            if (auto ok = admit(fd, p.pid); !ok) {
                ++refused;
                p.refused = true;
                (void)send_reply(fd, error_reply(ok.error().code, ok.error().message));
            } else {
                p.pidfd = int(::syscall(SYS_pidfd_open, p.pid, 0));
                p.token = maps::client_writer | uint32_t(p.pid);
            }
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.fd = fd;
            if ((!p.refused && p.pidfd < 0) || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
                drop(p);
                continue;
            }
            peers[fd] = p;
        }
    }

    // Serves one message of `p`; false to close the connection.
    bool serve(peer& p) {
        if (p.refused) return false;  // drop() reads what it sent
        wire::request rq;
        ssize_t n = recv(p.fd, &rq, sizeof rq, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) return errno == EAGAIN || errno == EINTR;
        if (n == 0) return false;
        if (size_t(n) != sizeof rq || rq.magic != wire::magic || rq.version != wire::version) {
            ++malformed;
            (void)send_reply(p.fd, error_reply(EINVAL, fmt::format("xdprt: malformed request ({} bytes; a request is {} bytes of "
                                                                   "version {})", n, sizeof rq, wire::version)));
            return false;
        }
        ++calls;
        switch (wire::call(rq.call)) {
        case wire::call::hello: {
            wire::reply r;
            r.result = p.token;
            r.store_dev = store_dev;
            copy_text(r.text, srv.options().pin_root.string());
            return send_reply(p.fd, r);
        }
        case wire::call::bpf: {
            if (rq.args[2] < 0 || rq.args[2] > UINT32_MAX) return send_reply(p.fd, error_reply(EINVAL, "attr size out of range"));
            int cmd = int(rq.args[0]);
            long r = srv.bpf(cmd, uint64_t(rq.args[1]), uint32_t(rq.args[2]), p.pid, p.pidfd);
            return answer(p, r, r >= 0 && server::returns_fd(cmd));
        }
        case wire::call::fd_kind:
        case wire::call::fdinfo: {
            int fd = int(rq.args[0]);
            std::string text = wire::call(rq.call) == wire::call::fd_kind ? srv.kind_of(fd, p.pid, p.pidfd)
                                                                           : srv.fdinfo(fd, p.pid, p.pidfd);
            wire::reply r;
            r.result = text.empty() ? -EINVAL : 0;
            copy_text(r.text, text);
            return send_reply(p.fd, r);
        }
        case wire::call::xdp_set: {
            if (rq.args[0] < 0 || rq.args[0] > UINT32_MAX || rq.args[2] < 0 || rq.args[2] > UINT32_MAX)
                return send_reply(p.fd, error_reply(EINVAL, "ifindex or flags out of range"));
            long r = srv.xdp_set(uint32_t(rq.args[0]), int(rq.args[1]), uint32_t(rq.args[2]), int(rq.args[3]), p.pid, p.pidfd);
            return answer(p, r, false);
        }
        case wire::call::xdp_reports: {
            wire::reply r;
            std::string text;
            for (const auto& x : srv.xdp_reports()) text += fmt::format("{} {} {};", x.ifindex, x.prog_id, x.attached);
            if (text.size() >= sizeof r.text) return send_reply(p.fd, error_reply(E2BIG, "too many interfaces to report"));
            copy_text(r.text, text);
            return send_reply(p.fd, r);
        }
        case wire::call::perf_event_open: {
            auto r = srv.perf_event_open(uint64_t(rq.args[0]), int(rq.args[1]), int(rq.args[2]), int(rq.args[3]),
                                         (unsigned long)rq.args[4], p.pid, p.pidfd);
            if (!r) {
                wire::reply k;
                k.flags = wire::to_kernel;
                return send_reply(p.fd, k);
            }
            return answer(p, *r, *r >= 0);
        }
        }
        ++malformed;
        (void)send_reply(p.fd, error_reply(EINVAL, fmt::format("xdprt: unknown call {}", rq.call)));
        return false;
    }

    // The call's result; a new fd of ours rides on the reply and is closed here.
    bool answer(peer& p, long r, bool is_fd) {
        wire::reply rep;
        rep.result = r;
        if (r < 0) copy_text(rep.text, srv.last_error());
        if (!is_fd) return send_reply(p.fd, rep);
        rep.flags = wire::carries_fd;
        bool sent = send_reply(p.fd, rep, int(r));
        close(int(r));  // the client's copy is the object's reference now (or, unsent, it is released)
        return sent;
    }

    void loop() {
        epoll_event events[32];
        for (;;) {
            int n = epoll_wait(ep, events, 32, -1);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return;
            for (int k = 0; k < n; ++k) {
                int fd = events[k].data.fd;
                if (fd == stop_fd) return;
                if (fd == listen_fd) {
                    accept_all();
                    continue;
                }
                auto it = peers.find(fd);
                if (it == peers.end()) continue;
                bool keep = (events[k].events & EPOLLIN) && serve(it->second);
                if (!keep) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
                    drop(it->second);
                    peers.erase(it);
                }
            }
        }
    }
};

result<std::unique_ptr<control_socket>> control_socket::create(server& s, socket_options opts) {
    auto i = std::make_unique<impl>(s, std::move(opts));
    const auto& path = i->opts.path;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.native().size() >= sizeof addr.sun_path)
        return fail(EINVAL, "control socket path '{}': 1 to {} characters", path.string(), sizeof addr.sun_path - 1);
    std::memcpy(addr.sun_path, path.c_str(), path.native().size());
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (std::filesystem::exists(path, ec)) {
        // Live (another appliance answers) or stale (one that died left it).
        int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        if (probe >= 0) close(probe);
        if (live) return fail(EADDRINUSE, "control socket {}: another appliance serves it", path.string());
        unlink(path.c_str());
    }
    i->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (i->listen_fd < 0) return fail(errno, "control socket: {}", strerror(errno));
    if (bind(i->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int e = errno;
        close(i->listen_fd);
        i->listen_fd = -1;
        return fail(e, "control socket {}: bind: {}", path.string(), strerror(e));
    }
    if (i->opts.group) {
        if (chown(path.c_str(), uid_t(-1), *i->opts.group) != 0 || chmod(path.c_str(), 0660) != 0)
            return fail(errno, "control socket {}: group {}: {}", path.string(), *i->opts.group, strerror(errno));
    } else if (chmod(path.c_str(), 0600) != 0) {
        return fail(errno, "control socket {}: chmod: {}", path.string(), strerror(errno));
    }
    if (listen(i->listen_fd, 64) != 0) return fail(errno, "control socket {}: listen: {}", path.string(), strerror(errno));
    struct stat st;
    if (stat(i->srv.options().pin_root.c_str(), &st) != 0)
        return fail(errno, "pin root {}: {}", i->srv.options().pin_root.string(), strerror(errno));
    i->store_dev = st.st_dev;
    i->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    i->ep = epoll_create1(EPOLL_CLOEXEC);
    if (i->stop_fd < 0 || i->ep < 0) return fail(errno, "control socket: {}", strerror(errno));
    for (int fd : {i->listen_fd, i->stop_fd}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (epoll_ctl(i->ep, EPOLL_CTL_ADD, fd, &ev) != 0) return fail(errno, "control socket: epoll: {}", strerror(errno));
    }
    impl* self = i.get();
    i->thread = std::jthread([self] { self->loop(); });
    return std::unique_ptr<control_socket>(new control_socket(std::move(i)));
}

control_socket::control_socket(std::unique_ptr<impl> i) : _impl(std::move(i)) {}
control_socket::~control_socket() = default;

control_socket::counts control_socket::stats() const {
    return {_impl->calls.load(), _impl->refused.load(), _impl->malformed.load()};
}

}  // namespace xdprt::control
