// log_true_size (PROG_LOAD) and btf_log_true_size (BTF_LOAD), which 6.4+ kernels write back when
// the caller's attr reaches them: the same value from the kernel and from the server, for a
// program the verifier refuses, one it accepts, a log buffer too small, no log, and an attr too
// short to hold the field (then nothing is written).
#include <bpf/bpf.h>
#include <linux/btf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "control/inprocess.h"
#include "control/server.h"
#include "scratch_pin_root.h"

namespace xdprt::control {
namespace {

constexpr size_t attr_bytes = 168;  // the 6.18 union
constexpr size_t log_true_size_off = 140, btf_log_true_size_off = 28;
constexpr uint32_t untouched = 0xdeadbeef;

struct outcome {
    long ret;
    uint32_t true_size;
    bool operator==(const outcome&) const = default;
};

// A program reading the packet with (safe) or without (unsafe) a bounds check.
std::vector<bpf_insn> prog(bool safe) {
    std::vector<bpf_insn> p = {
        {BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0},  // data
        {BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, 4, 0},  // data_end
        {BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0},
        {BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, 21},
        {BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 1, 0},
        {BPF_LDX | BPF_MEM | BPF_B, BPF_REG_0, BPF_REG_2, 20, 0},
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    if (!safe) p.erase(p.begin() + 4);  // no bounds check before the load
    return p;
}

outcome load(bool safe, uint32_t log_level, uint32_t log_size, uint32_t size) {
    auto insns = prog(safe);
    std::array<uint8_t, attr_bytes> buf{};
    auto& a = *reinterpret_cast<union bpf_attr*>(buf.data());
    static const char license[] = "GPL";
    std::vector<char> log(log_size ? log_size : 1);
    a.prog_type = BPF_PROG_TYPE_XDP;
    a.insn_cnt = uint32_t(insns.size());
    a.insns = reinterpret_cast<uint64_t>(insns.data());
    a.license = reinterpret_cast<uint64_t>(license);
    a.log_level = log_level;
    a.log_size = log_size;
    a.log_buf = log_size ? reinterpret_cast<uint64_t>(log.data()) : 0;
    std::memcpy(buf.data() + log_true_size_off, &untouched, 4);
    long r = syscall(SYS_bpf, BPF_PROG_LOAD, buf.data(), size);
    if (r >= 0) close(int(r));
    uint32_t t;
    std::memcpy(&t, buf.data() + log_true_size_off, 4);
    return {r < 0 ? -errno : 0, t};
}

outcome load_btf(uint32_t log_level, uint32_t log_size) {
    const char strings[] = "\0int";
    const uint32_t types[] = {1, BTF_KIND_INT << 24, 4, 32};
    btf_header h{};
    h.magic = BTF_MAGIC;
    h.version = BTF_VERSION;
    h.hdr_len = sizeof h;
    h.type_len = sizeof types;
    h.str_off = sizeof types;
    h.str_len = sizeof strings;
    std::vector<uint8_t> blob(sizeof h + sizeof types + sizeof strings);
    std::memcpy(blob.data(), &h, sizeof h);
    std::memcpy(blob.data() + sizeof h, types, sizeof types);
    std::memcpy(blob.data() + sizeof h + sizeof types, strings, sizeof strings);
    std::array<uint8_t, attr_bytes> buf{};
    auto& a = *reinterpret_cast<union bpf_attr*>(buf.data());
    std::vector<char> log(log_size ? log_size : 1);
    a.btf = reinterpret_cast<uint64_t>(blob.data());
    a.btf_size = uint32_t(blob.size());
    a.btf_log_level = log_level;
    a.btf_log_size = log_size;
    a.btf_log_buf = log_size ? reinterpret_cast<uint64_t>(log.data()) : 0;
    std::memcpy(buf.data() + btf_log_true_size_off, &untouched, 4);
    long r = syscall(SYS_bpf, BPF_BTF_LOAD, buf.data(), 40u);
    if (r >= 0) close(int(r));
    uint32_t t;
    std::memcpy(&t, buf.data() + btf_log_true_size_off, 4);
    return {r < 0 ? -errno : 0, t};
}

std::vector<outcome> script() {
    return {
        load(false, 1, 65536, attr_bytes),  // refused, whole log
        load(false, 1, 64, attr_bytes),     // refused, log cut short
        load(true, 1, 65536, attr_bytes),   // accepted, with a log
        load(true, 0, 0, attr_bytes),       // accepted, no log: 0
        load(false, 1, 65536, 140),         // attr ends before the field: untouched
        load_btf(1, 65536),
        load_btf(0, 0),
    };
}

TEST(LogTrueSize, MatchesTheKernel) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: the kernel is the reference";
    auto kernel = script();
    server_options o;
    o.pin_root = testing_support::scratch_pin_root();
    auto s = server::create(o);
    ASSERT_TRUE(s) << s.error().message;
    inprocess::route_to(s->get());
    auto ours = script();
    inprocess::route_to(nullptr);
    ASSERT_EQ(kernel.size(), ours.size());
    for (size_t k = 0; k < kernel.size(); ++k) {
        EXPECT_EQ(kernel[k].ret, ours[k].ret) << "step " << k;
        EXPECT_EQ(kernel[k].true_size, ours[k].true_size) << "step " << k;
    }
    EXPECT_GT(kernel[0].true_size, 64u);      // the whole log's size, not the buffer's
    EXPECT_EQ(kernel[4].true_size, untouched);
}

}  // namespace
}  // namespace xdprt::control
