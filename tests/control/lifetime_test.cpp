// Object lifetime and pins (suite control): objects live while a client holds a file of them
// (an fd, a dup, a forked child's copy, an mmap), while pinned, and while another object refers
// to them; a pinned map and its contents survive a restart of the server process.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "control/inprocess.h"
#include "control/server.h"
#include "scratch_pin_root.h"

namespace xdprt::control {
namespace {

const std::string progs_dir = XDPRT_PROGS_DIR;

size_t total(const server::object_counts& c) { return c.maps + c.progs + c.btfs + c.links; }

std::unique_ptr<server> make_server(const std::filesystem::path& root = testing_support::scratch_pin_root()) {
    server_options o;
    o.pin_root = root;
    o.default_engine = engine::interpreter;
    auto s = server::create(o);
    EXPECT_TRUE(s) << s.error().message;
    return s ? std::move(*s) : nullptr;
}

class Lifetime : public testing::Test {
protected:
    void SetUp() override {
        s = make_server();
        ASSERT_TRUE(s);
        route.emplace(s.get());
    }
    std::unique_ptr<server> s;
    std::optional<inprocess::scoped_route> route;
};

TEST_F(Lifetime, CloseReleasesAMap) {
    int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "h", 4, 8, 16, nullptr);
    ASSERT_GE(fd, 0) << s->last_error();
    EXPECT_EQ(s->count().maps, 1u);
    close(fd);
    EXPECT_EQ(s->count().maps, 0u);
}

TEST_F(Lifetime, DupAndForkKeepItUntilTheLastCopyGoes) {
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "a", 4, 8, 4, nullptr);
    ASSERT_GE(fd, 0) << s->last_error();
    int copy = dup(fd);
    close(fd);
    EXPECT_EQ(s->count().maps, 1u) << "a dup holds it";
    pid_t child = fork();
    if (child == 0) {
        pause();  // holds the inherited fd until killed
        _exit(0);
    }
    ASSERT_GT(child, 0);
    close(copy);
    EXPECT_EQ(s->count().maps, 1u) << "the child's inherited fd holds it";
    kill(child, SIGKILL);
    int status;
    waitpid(child, &status, 0);
    EXPECT_EQ(s->count().maps, 0u) << "the killed client's fd was its last reference";
}

TEST_F(Lifetime, AnMmapKeepsAMapAlive) {
    bpf_map_create_opts o{};
    o.sz = sizeof o;
    o.map_flags = BPF_F_MMAPABLE;
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "m", 4, 8, 512, &o);
    ASSERT_GE(fd, 0) << s->last_error();
    void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ASSERT_NE(p, MAP_FAILED);
    static_cast<uint64_t*>(p)[3] = 77;
    close(fd);
    EXPECT_EQ(s->count().maps, 1u);
    munmap(p, 4096);
    EXPECT_EQ(s->count().maps, 0u);
}

TEST_F(Lifetime, ProgramsHoldTheirMapsAndTailCallCyclesAreBroken) {
    bpf_object* obj = bpf_object__open_file((progs_dir + "/xdp_tail_calls.bpf.o").c_str(), nullptr);
    ASSERT_TRUE(obj);
    ASSERT_EQ(bpf_object__load(obj), 0) << s->last_error();
    int table = bpf_object__find_map_fd_by_name(obj, "jmp_table");
    int slot = 0;
    bpf_program* p;
    bpf_object__for_each_program(p, obj) {
        if (std::string(bpf_program__name(p)) == "xdp_tail_entry") continue;
        int fd = bpf_program__fd(p);
        ASSERT_EQ(bpf_map_update_elem(table, &slot, &fd, BPF_ANY), 0) << s->last_error();
        ++slot;
    }
    // Keep only the entry program's fd: the maps live on through it, the table's programs
    // through the table.
    int entry = dup(bpf_program__fd(bpf_object__find_program_by_name(obj, "xdp_tail_entry")));
    bpf_object__close(obj);
    auto live = s->count();
    EXPECT_EQ(live.progs, 1u + 0u) << "the table lost its last user reference with the object: emptied as in the kernel";
    EXPECT_EQ(live.maps, 2u);
    close(entry);
    EXPECT_EQ(total(s->count()), 0u);
}

TEST_F(Lifetime, APinHoldsAnObjectUntilItsFileIsRemoved) {
    int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "pinned", 4, 8, 16, nullptr);
    ASSERT_GE(fd, 0);
    uint32_t k = 1;
    uint64_t v = 99;
    ASSERT_EQ(bpf_map_update_elem(fd, &k, &v, BPF_ANY), 0);
    ASSERT_EQ(bpf_obj_pin(fd, "/sys/fs/bpf/lifetime_map"), 0) << s->last_error();
    // libbpf returns -errno.
    EXPECT_EQ(bpf_obj_pin(fd, "/sys/fs/bpf/lifetime_map"), -EEXIST);
    EXPECT_EQ(bpf_obj_pin(fd, "/tmp/not_bpffs"), -EPERM);
    EXPECT_EQ(bpf_obj_pin(fd, "/sys/fs/bpf/no_such_dir/x"), -ENOENT);
    close(fd);
    EXPECT_EQ(s->count().maps, 1u) << "pinned";
    int again = bpf_obj_get("/sys/fs/bpf/lifetime_map");
    ASSERT_GE(again, 0) << s->last_error();
    uint64_t got = 0;
    EXPECT_EQ(bpf_map_lookup_elem(again, &k, &got), 0);
    EXPECT_EQ(got, 99u);
    EXPECT_EQ(bpf_obj_get("/sys/fs/bpf/no_such_pin"), -ENOENT);
    close(again);
    std::filesystem::remove(testing_support::scratch_pin_root() / "lifetime_map");
    EXPECT_EQ(s->count().maps, 0u) << "unpinned and closed";
}

// The restart test: a child process runs a server, fills and pins a map and a program, and
// exits; a new server in this process finds the map with its contents.
TEST(Pins, APinnedMapSurvivesARestartOfTheServerProcess) {
    std::filesystem::path root = testing_support::scratch_pin_root() / "restart";
    std::filesystem::create_directories(root);
    pid_t child = fork();
    if (child == 0) {
        auto s = make_server(root);
        if (!s) _exit(2);
        inprocess::scoped_route r(s.get());
        int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "survivor", 4, 8, 1024, nullptr);
        for (uint32_t k = 0; k < 500; ++k) {
            uint64_t v = uint64_t(k) * 3;
            if (bpf_map_update_elem(fd, &k, &v, BPF_NOEXIST) != 0) _exit(3);
        }
        int arr = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "counters", 4, 8, 4, nullptr);
        std::vector<uint64_t> per_cpu(size_t(libbpf_num_possible_cpus()), 5);
        uint32_t two = 2;
        if (bpf_map_update_elem(arr, &two, per_cpu.data(), BPF_ANY) != 0) _exit(4);
        const bpf_insn pass[] = {
            {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = XDP_PASS},
            {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
        };
        int prog = bpf_prog_load(BPF_PROG_TYPE_XDP, "pass", "GPL", pass, 2, nullptr);
        if (fd < 0 || arr < 0 || prog < 0 || bpf_obj_pin(fd, "/sys/fs/bpf/survivor") != 0 ||
            bpf_obj_pin(arr, "/sys/fs/bpf/counters") != 0 || bpf_obj_pin(prog, "/sys/fs/bpf/pass") != 0)
            _exit(5);
        _exit(0);  // no cleanup: the process just ends
    }
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;

    auto s = make_server(root);
    ASSERT_TRUE(s);
    inprocess::scoped_route r(s.get());
    int fd = bpf_obj_get("/sys/fs/bpf/survivor");
    ASSERT_GE(fd, 0) << s->last_error();
    bpf_map_info info{};
    uint32_t len = sizeof info;
    ASSERT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0) << s->last_error();
    EXPECT_EQ(info.type, uint32_t(BPF_MAP_TYPE_HASH));
    EXPECT_EQ(info.max_entries, 1024u);
    EXPECT_STREQ(info.name, "survivor");
    size_t found = 0;
    for (uint32_t k = 0; k < 600; ++k) {
        uint64_t v = 0;
        if (bpf_map_lookup_elem(fd, &k, &v) == 0) {
            ++found;
            EXPECT_EQ(v, uint64_t(k) * 3);
        }
    }
    EXPECT_EQ(found, 500u);
    uint32_t k = 1000;
    uint64_t v = 1;
    EXPECT_EQ(bpf_map_update_elem(fd, &k, &v, BPF_NOEXIST), 0) << "the reopened map takes writes";

    int arr = bpf_obj_get("/sys/fs/bpf/counters");
    ASSERT_GE(arr, 0) << s->last_error();
    std::vector<uint64_t> per_cpu(size_t(libbpf_num_possible_cpus()), 0);
    uint32_t two = 2;
    ASSERT_EQ(bpf_map_lookup_elem(arr, &two, per_cpu.data()), 0);
    for (uint64_t c : per_cpu) EXPECT_EQ(c, 5u);

    EXPECT_EQ(bpf_obj_get("/sys/fs/bpf/pass"), -ENOENT) << "programs are not kept across restarts";
    EXPECT_NE(s->last_error().find("load it again"), std::string::npos) << s->last_error();
    close(fd);
    close(arr);
    EXPECT_EQ(s->count().maps, 2u) << "still pinned";
}

}  // namespace
}  // namespace xdprt::control
