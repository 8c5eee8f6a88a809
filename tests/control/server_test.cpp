// The bpf() server against the kernel, both driven by real libbpf in this process: the same calls
// must give the same results, errnos included.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/inprocess.h"
#include "control/server.h"
#include "isa/isa.h"
#include "maps/map.h"
#include "scratch_pin_root.h"
#include "test_run_opts.h"
#include "xdp_harness.h"

namespace xdprt::control {
namespace {

std::string progs_dir() { return XDPRT_PROGS_DIR; }

// Runs `fn` against the kernel (null) or a server, returning its results.
template <class Fn>
auto against(server* s, Fn fn) {
    inprocess::scoped_route route(s);
    return fn();
}

long err(long r) { return r < 0 ? -errno : r; }

std::unique_ptr<server> make_server(engine e) {
    server_options o;
    o.default_engine = e;
    o.pin_root = testing_support::scratch_pin_root();
    auto s = server::create(o);
    EXPECT_TRUE(s.has_value()) << s.error().message;
    return std::move(*s);
}

bool have_kernel_bpf() {
    if (geteuid() != 0) return false;
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, nullptr, 4, 4, 1, nullptr);
    if (fd < 0) return false;
    close(fd);
    return true;
}

#define REQUIRE_KERNEL_BPF() \
    if (!have_kernel_bpf()) GTEST_SKIP() << "the kernel refuses bpf() here (not root?): no oracle to compare with"

// A table of element operations whose results (value or -errno) must match the kernel's.
std::vector<long> element_script() {
    std::vector<long> out;
    auto hash = bpf_map_create(BPF_MAP_TYPE_HASH, "h", 4, 8, 2, nullptr);
    out.push_back(hash >= 0 ? 0 : -errno);
    uint32_t k1 = 1, k2 = 2, k3 = 3, k9 = 9;
    uint64_t v = 42, got = 0;
    out.push_back(err(bpf_map_update_elem(hash, &k1, &v, BPF_NOEXIST)));
    out.push_back(err(bpf_map_update_elem(hash, &k1, &v, BPF_NOEXIST)));  // EEXIST
    out.push_back(err(bpf_map_update_elem(hash, &k9, &v, BPF_EXIST)));    // ENOENT
    out.push_back(err(bpf_map_update_elem(hash, &k2, &v, BPF_ANY)));
    out.push_back(err(bpf_map_update_elem(hash, &k3, &v, BPF_ANY)));      // E2BIG: full
    out.push_back(err(bpf_map_update_elem(hash, &k1, &v, 7)));            // EINVAL: flags
    v = 43;
    out.push_back(err(bpf_map_update_elem(hash, &k1, &v, BPF_EXIST)));
    out.push_back(err(bpf_map_lookup_elem(hash, &k1, &got)));
    out.push_back(long(got));
    out.push_back(err(bpf_map_lookup_elem(hash, &k9, &got)));             // ENOENT
    out.push_back(err(bpf_map_lookup_elem_flags(hash, &k1, &got, 8)));    // EINVAL
    out.push_back(err(bpf_map_delete_elem(hash, &k9)));                   // ENOENT
    uint32_t next = 0, seen = 0;
    for (uint32_t* cur = nullptr; bpf_map_get_next_key(hash, cur, &next) == 0; cur = &k9, k9 = next) ++seen;
    out.push_back(seen);
    out.push_back(err(bpf_map_delete_elem(hash, &k1)));
    out.push_back(err(bpf_map_lookup_and_delete_elem(hash, &k2, &got)));
    out.push_back(long(got));
    out.push_back(err(bpf_map_get_next_key(hash, nullptr, &next)));       // ENOENT: empty

    auto array = bpf_map_create(BPF_MAP_TYPE_ARRAY, "a", 4, 8, 4, nullptr);
    uint32_t i5 = 5, i3 = 3;
    out.push_back(err(bpf_map_update_elem(array, &i5, &v, BPF_ANY)));     // E2BIG
    out.push_back(err(bpf_map_update_elem(array, &i3, &v, BPF_NOEXIST))); // EEXIST
    out.push_back(err(bpf_map_update_elem(array, &i3, &v, BPF_ANY)));
    out.push_back(err(bpf_map_lookup_elem(array, &i5, &got)));            // ENOENT
    out.push_back(err(bpf_map_delete_elem(array, &i3)));                  // EINVAL
    out.push_back(err(bpf_map_get_next_key(array, &i3, &next)));          // ENOENT: last
    out.push_back(err(bpf_map_get_next_key(array, &i5, &next)));
    out.push_back(next);
    out.push_back(err(bpf_map_lookup_and_delete_elem(array, &i3, &got))); // ENOTSUPP
    out.push_back(err(bpf_map_freeze(array)));
    out.push_back(err(bpf_map_update_elem(array, &i3, &v, BPF_ANY)));     // EPERM: frozen
    out.push_back(err(bpf_map_freeze(array)));                            // EBUSY
    out.push_back(err(bpf_map_lookup_elem(9999, &i3, &got)));             // EBADF

    // Options set field by field: LIBBPF_OPTS trips clang's missing-designated-initializer warning.
    bpf_map_create_opts extra{};
    extra.sz = sizeof extra;
    extra.map_extra = 1;
    out.push_back(err(bpf_map_create(BPF_MAP_TYPE_ARRAY, "x", 8, 8, 4, nullptr)));  // key_size
    out.push_back(err(bpf_map_create(BPF_MAP_TYPE_HASH, "x", 4, 8, 0, nullptr)));   // max_entries
    out.push_back(err(bpf_map_create(BPF_MAP_TYPE_HASH, "x", 4, 8, 4, &extra)));    // map_extra
    out.push_back(err(bpf_map_create(bpf_map_type(99), "x", 4, 8, 4, nullptr)));    // type
    bpf_map_create_opts lru_noprealloc{};
    lru_noprealloc.sz = sizeof lru_noprealloc;
    lru_noprealloc.map_flags = BPF_F_NO_PREALLOC;
    out.push_back(err(bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "x", 4, 8, 4, &lru_noprealloc)));
    out.push_back(err(bpf_map_create(BPF_MAP_TYPE_ARRAY, "bad-name", 4, 8, 4, nullptr)));
    close(hash);
    close(array);
    return out;
}

// The builtin verifier's hook: it sees the program as loaded and the maps it names, its refusal
// reaches the client with its errno and its text in log_buf, and an accepted program runs.
TEST(Server, TheBuiltinVerifierHookDecides) {
    std::vector<std::string> seen;
    server_options o;
    o.pin_root = testing_support::scratch_pin_root();
    o.verify = verify_mode::builtin;
    o.builtin_verifier = [&](const verify_request& r, std::string& log) -> result<void> {
        std::string maps;
        for (const isa::insn& i : r.insns)
            if (i.code == (BPF_LD | BPF_IMM | BPF_DW) && i.src == BPF_PSEUDO_MAP_FD)
                if (const maps::spec* m = r.map(i.imm)) maps += m->name;
        if (r.name == "refused" || r.name == "accepted")  // libbpf also loads probes of its own
            seen.push_back(std::string(r.name) + ":" + std::to_string(r.insns.size()) + ":" + maps);
        log = "checked by the test verifier\n";
        if (r.name == "refused") return fail(EACCES, "insn 1: R0 !read_ok");
        return {};
    };
    auto s = server::create(o);
    ASSERT_TRUE(s) << s.error().message;
    inprocess::scoped_route route(s->get());
    int map = bpf_map_create(BPF_MAP_TYPE_ARRAY, "named", 4, 8, 1, nullptr);
    ASSERT_GE(map, 0);
    const bpf_insn with_map[] = {
        {.code = BPF_LD | BPF_IMM | BPF_DW, .dst_reg = BPF_REG_1, .src_reg = BPF_PSEUDO_MAP_FD, .off = 0, .imm = map},
        {.code = 0, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = XDP_TX},
        {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
    };
    char log[256] = {};
    bpf_prog_load_opts lo{};
    lo.sz = sizeof lo;
    lo.log_buf = log;
    lo.log_size = sizeof log;
    lo.log_level = 1;
    int refused = bpf_prog_load(BPF_PROG_TYPE_XDP, "refused", "GPL", with_map + 2, 2, &lo);
    EXPECT_EQ(refused, -EACCES);
    EXPECT_NE(std::string(log).find("R0 !read_ok"), std::string::npos) << log;
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "accepted", "GPL", with_map, 4, &lo);
    ASSERT_GE(fd, 0) << (*s)->last_error();
    EXPECT_EQ(std::string(log), "checked by the test verifier\n");
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0], "refused:2:");
    EXPECT_EQ(seen[1], "accepted:4:named");
    uint8_t frame[64] = {};
    bpf_test_run_opts t{};
    t.sz = sizeof t;
    t.data_in = frame;
    t.data_size_in = sizeof frame;
    ASSERT_EQ(bpf_prog_test_run_opts(fd, &t), 0);
    EXPECT_EQ(t.retval, uint32_t(XDP_TX));
    close(fd);
    close(map);

    server_options none;
    none.pin_root = testing_support::scratch_pin_root();
    none.verify = verify_mode::builtin;
    EXPECT_FALSE(server::create(none)) << "builtin without a verifier is refused at start";
}

// With `verify: kernel` the shadow load logs nothing unless the client asked for a log (a
// logging verifier costs several times the verification on a large program); a refusal is
// verified again with a log of the server's own, so last_error still names the reason.
TEST(Server, KernelVerifierRefusalNamesTheReasonWithoutAClientLog) {
    server_options o;
    o.pin_root = testing_support::scratch_pin_root();
    o.verify = verify_mode::kernel;
    auto s = server::create(o);
    ASSERT_TRUE(s) << s.error().message;
    inprocess::scoped_route route(s->get());
    const bpf_insn reads_r0[] = {
        {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},  // r0 never written
    };
    int refused = bpf_prog_load(BPF_PROG_TYPE_XDP, "unsafe", "GPL", reads_r0, 1, nullptr);
    EXPECT_EQ(refused, -EACCES);
    EXPECT_NE((*s)->last_error().find("R0 !read_ok"), std::string::npos) << (*s)->last_error();
    const bpf_insn safe[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = XDP_PASS},
        {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
    };
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "safe", "GPL", safe, 2, nullptr);
    ASSERT_GE(fd, 0) << (*s)->last_error();
    close(fd);
}

// libbpf's public feature probes (each a real MAP_CREATE or PROG_LOAD) answer as on the kernel
// for the map types and XDP helpers xdprt implements.
TEST(Server, LibbpfProbesAnswerAsOnTheKernel) {
    REQUIRE_KERNEL_BPF();
    auto s = make_server(engine::interpreter);
    const bpf_map_type types[] = {
        BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PROG_ARRAY, BPF_MAP_TYPE_PERF_EVENT_ARRAY,
        BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH,
        BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS, BPF_MAP_TYPE_DEVMAP,
        BPF_MAP_TYPE_CPUMAP, BPF_MAP_TYPE_XSKMAP, BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK, BPF_MAP_TYPE_DEVMAP_HASH,
        BPF_MAP_TYPE_RINGBUF, BPF_MAP_TYPE_BLOOM_FILTER,
    };
    const bpf_func_id xdp_helpers[] = {
        BPF_FUNC_map_lookup_elem, BPF_FUNC_map_update_elem, BPF_FUNC_map_delete_elem, BPF_FUNC_map_push_elem,
        BPF_FUNC_map_pop_elem, BPF_FUNC_map_peek_elem, BPF_FUNC_tail_call, BPF_FUNC_ktime_get_ns,
        BPF_FUNC_ktime_get_boot_ns, BPF_FUNC_ktime_get_coarse_ns, BPF_FUNC_jiffies64, BPF_FUNC_get_prandom_u32,
        BPF_FUNC_get_smp_processor_id, BPF_FUNC_get_numa_node_id, BPF_FUNC_xdp_adjust_head, BPF_FUNC_xdp_adjust_tail,
        BPF_FUNC_xdp_adjust_meta, BPF_FUNC_xdp_load_bytes, BPF_FUNC_xdp_store_bytes, BPF_FUNC_xdp_get_buff_len,
        BPF_FUNC_csum_diff, BPF_FUNC_redirect, BPF_FUNC_redirect_map, BPF_FUNC_perf_event_output,
        BPF_FUNC_ringbuf_output, BPF_FUNC_ringbuf_reserve, BPF_FUNC_ringbuf_submit, BPF_FUNC_ringbuf_discard,
        BPF_FUNC_ringbuf_query, BPF_FUNC_trace_printk, BPF_FUNC_loop, BPF_FUNC_for_each_map_elem,
        BPF_FUNC_spin_lock, BPF_FUNC_spin_unlock,
    };
    auto probe_all = [&] {
        std::vector<int> r;
        r.push_back(libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, nullptr));
        for (auto t : types) r.push_back(libbpf_probe_bpf_map_type(t, nullptr));
        for (auto h : xdp_helpers) r.push_back(libbpf_probe_bpf_helper(BPF_PROG_TYPE_XDP, h, nullptr));
        return r;
    };
    auto kernel = against(nullptr, probe_all);
    auto ours = against(s.get(), probe_all);
    ASSERT_EQ(kernel.size(), ours.size());
    for (size_t k = 0; k < kernel.size(); ++k) {
        EXPECT_EQ(kernel[k], 1) << "probe " << k << " on the kernel";
        EXPECT_EQ(ours[k], kernel[k]) << "probe " << k << ": " << s->last_error();
    }
    // A helper xdprt refuses is refused at load, as the kernel refuses one a type may not call.
    EXPECT_EQ(against(s.get(), [] { return libbpf_probe_bpf_helper(BPF_PROG_TYPE_XDP, BPF_FUNC_fib_lookup, nullptr); }), 0)
        << s->last_error();
}

TEST(Server, ElementCommandsMatchTheKernel) {
    REQUIRE_KERNEL_BPF();
    auto s = make_server(engine::interpreter);
    auto kernel = against(nullptr, element_script);
    auto ours = against(s.get(), element_script);
    ASSERT_EQ(kernel.size(), ours.size());
    for (size_t k = 0; k < kernel.size(); ++k) EXPECT_EQ(ours[k], kernel[k]) << "step " << k << ": " << s->last_error();
}

struct run_result {
    std::vector<uint32_t> retvals;
    std::vector<std::vector<uint8_t>> outputs;
    std::map<std::string, std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>>> maps;
    std::string error;
};

// Loads `object` through libbpf, runs its first program over the demo frames, dumps every map.
run_result load_and_run(const std::string& object) {
    run_result r;
    bpf_object* obj = bpf_object__open_file(object.c_str(), nullptr);
    if (!obj) return r.error = "open: " + std::to_string(errno), r;
    if (int e = bpf_object__load(obj)) {
        r.error = "load: " + std::to_string(e);
        bpf_object__close(obj);
        return r;
    }
    bpf_program* prog = bpf_object__next_program(obj, nullptr);
    int fd = bpf_program__fd(prog);
    for (const auto& frame : tools::demo_frames()) {
        std::vector<uint8_t> out(4096);
        bpf_test_run_opts opts = testing_support::test_run_opts(frame, out);
        int e = bpf_prog_test_run_opts(fd, &opts);
        r.retvals.push_back(e ? uint32_t(1000 - errno) : opts.retval);
        out.resize(e ? 0 : opts.data_size_out);
        r.outputs.push_back(out);
    }
    bpf_map* m;
    bpf_object__for_each_map(m, obj) {
        auto& dump = r.maps[bpf_map__name(m)];
        std::vector<uint8_t> key(bpf_map__key_size(m)), next(key.size()), value(bpf_map__value_size(m));
        bool first = true;
        while (bpf_map_get_next_key(bpf_map__fd(m), first ? nullptr : key.data(), next.data()) == 0) {
            first = false;
            key = next;
            if (bpf_map_lookup_elem(bpf_map__fd(m), key.data(), value.data()) == 0) dump.emplace_back(key, value);
        }
        std::sort(dump.begin(), dump.end());
    }
    bpf_object__close(obj);
    return r;
}

class ObjectTest : public ::testing::TestWithParam<std::tuple<std::string, engine>> {};

TEST_P(ObjectTest, RunsLikeTheKernel) {
    REQUIRE_KERNEL_BPF();
    auto [name, e] = GetParam();
    std::string path = progs_dir() + "/" + name + ".bpf.o";
    auto s = make_server(e);
    run_result kernel = against(nullptr, [&] { return load_and_run(path); });
    ASSERT_EQ(kernel.error, "");
    run_result ours = against(s.get(), [&] { return load_and_run(path); });
    ASSERT_EQ(ours.error, "") << s->last_error();
    EXPECT_EQ(ours.retvals, kernel.retvals);
    EXPECT_EQ(ours.outputs, kernel.outputs);
    EXPECT_EQ(ours.maps, kernel.maps);
}

INSTANTIATE_TEST_SUITE_P(Programs, ObjectTest,
                         ::testing::Combine(::testing::Values("xdp_drop", "xdp_swap_mac", "xdp_loop", "xdp_calls", "xdp_count"),
                                            ::testing::Values(engine::interpreter, engine::jit)),
                         [](const auto& info) {
                             return std::get<0>(info.param) + (std::get<1>(info.param) == engine::jit ? "_Jit" : "_Interpreter");
                         });

}  // namespace
}  // namespace xdprt::control
