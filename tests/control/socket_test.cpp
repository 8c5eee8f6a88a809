// The control socket's admission (suite control): root is served; with a group configured, a
// client whose primary or supplementary group it is is served; anyone else gets one EPERM reply
// that says why (the socket file's mode is opened here so that the check reached is
// SO_PEERCRED's, not the file's). Clients are forked children that drop to uid 65534. And a
// client gone while it held a map's writer lock (writing through the map's shared memory) leaves
// no map locked.
#include <grp.h>
#include <linux/bpf.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/socket.h"
#include "control/wire.h"
#include "maps/map.h"
#include "scratch_pin_root.h"

namespace xdprt::control {
namespace {

constexpr uid_t nobody = 65534;
constexpr gid_t other_group = 65534, control_group = 4242;

// A hello as a child with the given identity: 0 when served, the errno when refused; the
// reply's text in `why`. -1 when the child could not connect or got no reply.
int hello_as(const std::string& path, gid_t gid, std::vector<gid_t> groups, std::string& why) {
    int pipefd[2];
    if (pipe(pipefd) != 0) return -1;
    pid_t child = fork();
    if (child == 0) {
        close(pipefd[0]);
        if (setgroups(groups.size(), groups.data()) != 0 || setgid(gid) != 0 || setuid(nobody) != 0) _exit(2);
        int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        wire::request rq;
        rq.call = uint16_t(wire::call::hello);
        wire::reply rep;
        if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) _exit(10 + errno);
        (void)send(s, &rq, sizeof rq, MSG_NOSIGNAL);  // a refused client's reply is there already
        ssize_t got = recv(s, &rep, sizeof rep, 0);
        if (got != ssize_t(sizeof rep)) _exit(got < 0 ? 20 + errno : 100 + int(got % 100));
        (void)!write(pipefd[1], &rep, sizeof rep);
        _exit(0);
    }
    close(pipefd[1]);
    wire::reply rep;
    ssize_t n = read(pipefd[0], &rep, sizeof rep);
    close(pipefd[0]);
    int status = 0;
    waitpid(child, &status, 0);
    if (n != ssize_t(sizeof rep)) {
        why = "the client could not ask (exit " + std::to_string(WEXITSTATUS(status)) + ")";
        return -1;
    }
    why.assign(rep.text, strnlen(rep.text, sizeof rep.text));
    return rep.result < 0 ? int(-rep.result) : 0;
}

class ControlSocket : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "needs root: clients drop to another uid";
        server_options o;
        o.pin_root = testing_support::scratch_pin_root();
        auto s = server::create(o);
        ASSERT_TRUE(s) << s.error().message;
        _server = std::move(*s);
    }
    std::unique_ptr<control_socket> open(std::optional<gid_t> group) {
        // A directory the dropped clients can reach (the pin root's is the server's alone).
        if (_dir.empty()) {
            std::string tmpl = "/tmp/xdprt-socket-test-XXXXXX";
            if (!mkdtemp(tmpl.data())) return nullptr;
            chmod(tmpl.c_str(), 0755);
            _dir = tmpl;
        }
        _path = _dir + "/control.sock";
        auto cs = control_socket::create(*_server, {_path, group});
        EXPECT_TRUE(cs) << (cs ? "" : cs.error().message);
        if (!cs) return nullptr;
        chmod(_path.c_str(), 0666);  // past the file's mode: what is left to refuse is SO_PEERCRED's
        return std::move(*cs);
    }
    void TearDown() override {
        if (!_dir.empty()) {
            unlink(_path.c_str());
            rmdir(_dir.c_str());
        }
    }
    std::unique_ptr<server> _server;
    std::string _dir, _path;
};

TEST_F(ControlSocket, RootAloneWithoutAGroup) {
    auto cs = open(std::nullopt);
    ASSERT_TRUE(cs);
    std::string why;
    EXPECT_EQ(hello_as(_path, other_group, {}, why), EPERM);
    EXPECT_NE(why.find("uid 65534 is not root"), std::string::npos) << why;
    EXPECT_EQ(cs->stats().refused_peers, 1u);
}

TEST_F(ControlSocket, TheGroupPrimaryOrSupplementary) {
    auto cs = open(control_group);
    ASSERT_TRUE(cs);
    std::string why;
    EXPECT_EQ(hello_as(_path, control_group, {}, why), 0) << why;
    EXPECT_EQ(hello_as(_path, other_group, {control_group}, why), 0) << why;
    EXPECT_EQ(hello_as(_path, other_group, {}, why), EPERM);
    EXPECT_NE(why.find("neither root nor in group 4242"), std::string::npos) << why;
    EXPECT_EQ(cs->stats().refused_peers, 1u);
}

TEST_F(ControlSocket, ALiveSocketIsNotTakenOverAStaleOneIs) {
    auto cs = open(std::nullopt);
    ASSERT_TRUE(cs);
    auto second = control_socket::create(*_server, {_path, std::nullopt});
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, EADDRINUSE);
    cs.reset();  // removes its file; a stale one (a crashed appliance's) is replaced
    int stale = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, _path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(bind(stale, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    close(stale);
    auto third = control_socket::create(*_server, {_path, std::nullopt});
    EXPECT_TRUE(third) << third.error().message;
}

TEST_F(ControlSocket, AClientGoneMidWriteLeavesNoMapLocked) {
    auto cs = open(std::nullopt);
    ASSERT_TRUE(cs);
    union bpf_attr a{};
    a.map_type = BPF_MAP_TYPE_HASH;
    a.key_size = 4;
    a.value_size = 8;
    a.max_entries = 4;
    long map_fd = _server->bpf(BPF_MAP_CREATE, uint64_t(&a), sizeof a);
    ASSERT_GE(map_fd, 0) << _server->last_error();
    struct stat st;
    ASSERT_EQ(fstat(int(map_fd), &st), 0);
    void* mem = mmap(nullptr, size_t(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, int(map_fd), 0);
    ASSERT_NE(mem, MAP_FAILED);
    auto* header = reinterpret_cast<maps::map_header*>(static_cast<std::byte*>(mem) + st.st_size - 4096);

    // A client says hello and is given its writer token; then it "dies" holding the lock.
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, _path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    wire::request rq;
    rq.call = uint16_t(wire::call::hello);
    wire::reply rep;
    ASSERT_EQ(send(s, &rq, sizeof rq, MSG_NOSIGNAL), ssize_t(sizeof rq));
    ASSERT_EQ(recv(s, &rep, sizeof rep, 0), ssize_t(sizeof rep));
    const uint32_t token = uint32_t(rep.result);
    EXPECT_EQ(token, maps::client_writer | uint32_t(getpid())) << "a client writes as client_writer | its pid";
    header->writer_lock.store(token);
    close(s);

    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (header->writer_lock.load() != 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(header->writer_lock.load(), 0u) << "the lock of a client that is gone was not taken back";
    uint32_t key = 1;
    uint64_t value = 2;
    union bpf_attr u{};
    u.map_fd = uint32_t(map_fd);
    u.key = uint64_t(&key);
    u.value = uint64_t(&value);
    if (header->writer_lock.load() == 0) {
        EXPECT_EQ(_server->bpf(BPF_MAP_UPDATE_ELEM, uint64_t(&u), sizeof u), 0) << _server->last_error();
    }
    munmap(mem, size_t(st.st_size));
    close(int(map_fd));
}

}  // namespace
}  // namespace xdprt::control
