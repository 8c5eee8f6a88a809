// XDP links (suite control): LINK_CREATE, LINK_UPDATE, LINK_DETACH, link info and ids, run as one
// script against the kernel (generic XDP on the loopback device of a network namespace this test
// makes for itself) and against the server serving that ifindex: the results must be identical.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <sched.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/inprocess.h"
#include "control/server.h"
#include "scratch_pin_root.h"

namespace xdprt::control {
namespace {

constexpr int lo = 1;  // the loopback device of a fresh network namespace

long err(long r) { return r < 0 ? (errno ? -errno : r) : r; }

int load_pass(const char* name, int ret = XDP_PASS) {
    const bpf_insn insns[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = ret},
        {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
    };
    bpf_prog_load_opts o{};
    o.sz = sizeof o;
    o.expected_attach_type = BPF_XDP;
    return bpf_prog_load(BPF_PROG_TYPE_XDP, name, "GPL", insns, 2, &o);
}

uint32_t prog_id(int fd) {
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

// Each step's result; ids are recorded relative to the programs' own ids (they differ by side).
std::vector<long> link_script() {
    std::vector<long> out;
    int a = load_pass("pass_a"), b = load_pass("pass_b", XDP_DROP);
    out.push_back(a >= 0 && b >= 0);
    bpf_link_create_opts none{};
    none.sz = sizeof none;
    auto create = [&](int prog, int ifindex, uint32_t flags, bpf_attach_type type = BPF_XDP) {
        bpf_link_create_opts o{};
        o.sz = sizeof o;
        o.flags = flags;
        errno = 0;
        return bpf_link_create(prog, ifindex, type, &o);
    };
    int link = create(a, lo, 0);
    out.push_back(link >= 0 ? 0 : -errno);
    out.push_back(err(create(b, lo, 0)));                                        // EBUSY
    out.push_back(err(create(b, lo, XDP_FLAGS_SKB_MODE | XDP_FLAGS_DRV_MODE)));  // EINVAL
    out.push_back(err(create(b, lo, XDP_FLAGS_REPLACE)));                        // EINVAL
    out.push_back(err(create(b, lo, 1u << 10)));                                 // EINVAL
    out.push_back(err(create(b, 9999, 0)));                                      // EINVAL: no device
    out.push_back(err(create(b, lo, 0, BPF_CGROUP_INET_INGRESS)));               // EINVAL: type
    out.push_back(err(create(link, lo, 0)));                                     // EINVAL: not a prog
    bpf_link_info info{};
    uint32_t len = sizeof info;
    out.push_back(err(bpf_obj_get_info_by_fd(link, &info, &len)));
    out.push_back(info.type);
    out.push_back(info.prog_id == prog_id(a));
    out.push_back(info.xdp.ifindex);
    uint32_t next = 0;
    out.push_back(err(bpf_link_get_next_id(0, &next)));
    out.push_back(next == info.id);
    int again = bpf_link_get_fd_by_id(info.id);
    out.push_back(again >= 0);
    close(again);

    bpf_link_update_opts replace{};
    replace.sz = sizeof replace;
    replace.flags = BPF_F_REPLACE;
    replace.old_prog_fd = b;  // not the link's program
    out.push_back(err(bpf_link_update(link, b, &replace)));  // EPERM
    bpf_link_update_opts stray{};
    stray.sz = sizeof stray;
    stray.old_prog_fd = a;
    out.push_back(err(bpf_link_update(link, b, &stray)));     // EINVAL: old fd without the flag
    out.push_back(err(bpf_link_update(link, b, nullptr)));
    len = sizeof info;
    bpf_obj_get_info_by_fd(link, &info, &len);
    out.push_back(info.prog_id == prog_id(b));
    replace.old_prog_fd = b;
    out.push_back(err(bpf_link_update(link, a, &replace)));
    out.push_back(err(bpf_link_update(a, b, nullptr)));       // EINVAL: not a link

    out.push_back(err(bpf_link_detach(link)));
    len = sizeof info;
    bpf_obj_get_info_by_fd(link, &info, &len);
    out.push_back(info.xdp.ifindex);
    out.push_back(err(bpf_link_update(link, b, nullptr)));    // ENOLINK
    int second = create(b, lo, 0);                            // the device is free again
    out.push_back(second >= 0 ? 0 : -errno);
    close(second);
    close(link);
    int third = create(a, lo, 0);  // closing the last fd of a link detached it
    out.push_back(third >= 0 ? 0 : -errno);
    close(third);
    close(a);
    close(b);
    return out;
}

TEST(Links, XdpLinksBehaveAsInTheKernel) {
    if (geteuid() != 0) GTEST_SKIP() << "not root: no kernel XDP links to compare with";
    if (unshare(CLONE_NEWNET) != 0) GTEST_SKIP() << "cannot make a network namespace: " << strerror(errno);
    std::vector<long> kernel = link_script();

    server_options o;
    o.pin_root = testing_support::scratch_pin_root();
    auto s = server::create(o);
    ASSERT_TRUE(s) << s.error().message;
    (*s)->serve_interface(lo, "lo");
    std::vector<long> ours;
    {
        inprocess::scoped_route r(s->get());
        ours = link_script();
    }
    ASSERT_EQ(kernel.size(), ours.size());
    std::string shown;
    for (long v : kernel) shown += std::to_string(v) + " ";
    RecordProperty("kernel", shown);
    EXPECT_EQ(kernel[1], 0) << "the kernel refused the first link: " << shown;
    for (size_t k = 0; k < kernel.size(); ++k) EXPECT_EQ(ours[k], kernel[k]) << "step " << k << ": " << (*s)->last_error();
    auto left = (*s)->count();
    EXPECT_EQ(left.links + left.progs, 0u);
    EXPECT_EQ((*s)->attached_prog_id(lo), 0u);
}

TEST(Links, TheAttachmentFollowsTheLinkAndWithdrawingTheInterfaceDetaches) {
    server_options o;
    o.pin_root = testing_support::scratch_pin_root();
    auto s = server::create(o);
    ASSERT_TRUE(s) << s.error().message;
    (*s)->serve_interface(7, "port0");
    inprocess::scoped_route r(s->get());
    int a = load_pass("pass_a");
    ASSERT_GE(a, 0) << (*s)->last_error();
    int link = bpf_link_create(a, 7, BPF_XDP, nullptr);
    ASSERT_GE(link, 0) << (*s)->last_error();
    EXPECT_EQ((*s)->attached_prog_id(7), prog_id(a));
    close(a);
    EXPECT_EQ((*s)->count().progs, 1u) << "the link holds its program";
    (*s)->withdraw_interface(7);
    EXPECT_EQ((*s)->attached_prog_id(7), 0u);
    bpf_link_info info{};
    uint32_t len = sizeof info;
    ASSERT_EQ(bpf_obj_get_info_by_fd(link, &info, &len), 0);
    EXPECT_EQ(info.xdp.ifindex, 0u);
    close(link);
    auto left = (*s)->count();
    EXPECT_EQ(left.links + left.progs, 0u);
}

}  // namespace
}  // namespace xdprt::control
