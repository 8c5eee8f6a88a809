// The differential test (suite progs): every corpus entry runs through real libbpf on the kernel
// and on xdprt's bpf() server in this process, with the interpreter and with the JIT, over the
// whole packet set. Return codes, output frames and the final contents of every map must be
// identical. Skipped, with the reason, where the kernel cannot serve as the oracle.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "control/inprocess.h"
#include "control/server.h"
#include "corpus.h"
#include "packets.h"
#include "scratch_pin_root.h"

namespace xdprt::corpus {
namespace {

const std::string progs_dir = XDPRT_PROGS_DIR;

using control::engine;

struct param {
    const entry* e;
    engine eng;
};

class CorpusXdprt : public testing::TestWithParam<param> {
protected:
    void SetUp() override {
        if (!kernel_unavailable().empty()) GTEST_SKIP() << kernel_unavailable();
        if (auto why = missing_object(*GetParam().e); !why.empty()) GTEST_SKIP() << why;
        // Both sides run on CPU 0, so per-CPU slots and bpf_get_smp_processor_id agree.
        auto pinned = pin_to_cpu(0);
        ASSERT_TRUE(pinned) << pinned.error().message;
    }
};

TEST_P(CorpusXdprt, SameAsTheKernel) {
    const entry& e = *GetParam().e;
    auto kernel = run_all(e, progs_dir);
    ASSERT_TRUE(kernel) << "kernel: " << kernel.error().message;

    control::server_options opts;
    opts.default_engine = GetParam().eng;
    opts.pin_root = testing_support::scratch_pin_root();
    auto s = control::server::create(opts);
    ASSERT_TRUE(s) << s.error().message;
    result<outcome> ours = [&] {
        control::inprocess::scoped_route route(s->get());
        return run_all(e, progs_dir);
    }();
    ASSERT_TRUE(ours) << "xdprt: " << ours.error().message << " (server: " << (*s)->last_error() << ")";

    const auto& set = packets();
    ASSERT_EQ(ours->runs.size(), kernel->runs.size());
    size_t different = 0;
    for (size_t i = 0; i < set.size(); i++) {
        const run_result& k = kernel->runs[i];
        const run_result& x = ours->runs[i];
        if (x == k) continue;
        if (++different > 5) continue;  // the first few are enough to see what differs
        ADD_FAILURE() << set[i].name << ": kernel error " << k.error << " retval " << k.retval << " "
                      << k.output.size() << " bytes; xdprt error " << x.error << " retval " << x.retval << " "
                      << x.output.size() << " bytes"
                      << (k.output.size() == x.output.size() ? " (same length, different bytes)" : "");
    }
    EXPECT_EQ(different, 0u) << "packets with a different outcome";
    EXPECT_EQ(ours->snap, kernel->snap) << diff(kernel->snap, ours->snap);
    // Every object of the run was released when libbpf closed it.
    auto left = (*s)->count();
    EXPECT_EQ(left.maps + left.progs + left.btfs + left.links, 0u)
        << left.maps << " maps, " << left.progs << " progs, " << left.btfs << " btfs left";
}

std::vector<param> all_params() {
    std::vector<param> v;
    for (const entry& e : entries()) {
        v.push_back({&e, engine::interpreter});
        v.push_back({&e, engine::jit});
    }
    return v;
}

std::string test_name(const testing::TestParamInfo<param>& i) {
    return test_name_of(*i.param.e) + (i.param.eng == engine::jit ? "Jit" : "Interpreter");
}

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusXdprt, testing::ValuesIn(all_params()), test_name);

}  // namespace
}  // namespace xdprt::corpus
