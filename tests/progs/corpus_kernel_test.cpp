// The corpus on the kernel: every entry loads through libbpf, runs over the whole packet set with
// BPF_PROG_TEST_RUN, and shows the behaviour its program promises (checks in corpus_expect.cpp).
// Then the property the xdprt-vs-kernel comparison stands on: two fresh loads over the same packets
// give identical return codes, output frames and map snapshots.
// Skipped, with the reason, when not root or when BPF_PROG_TEST_RUN does not work here.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "corpus.h"
#include "corpus_expect.h"
#include "packets.h"

namespace xdprt::corpus {
namespace {

const std::string progs_dir = XDPRT_PROGS_DIR;

class CorpusKernel : public testing::TestWithParam<const entry*> {
protected:
    void SetUp() override {
        if (!kernel_unavailable().empty()) GTEST_SKIP() << kernel_unavailable();
        if (auto why = missing_object(*GetParam()); !why.empty()) GTEST_SKIP() << why;
        // BPF_PROG_TEST_RUN runs on the calling CPU; per-CPU map slots must land in the same place.
        auto pinned = pin_to_cpu(0);
        ASSERT_TRUE(pinned) << pinned.error().message;
    }
};

TEST_P(CorpusKernel, BehavesAsDocumented) {
    const entry& e = *GetParam();
    auto o = run_all(e, progs_dir);
    ASSERT_TRUE(o) << o.error().message;
    const auto& set = packets();
    ASSERT_EQ(o->runs.size(), set.size());
    for (size_t i = 0; i < set.size(); i++) {
        const run_result& r = o->runs[i];
        if (set[i].bytes.size() < 14) {
            // The kernel refuses frames shorter than an Ethernet header before the program runs.
            EXPECT_EQ(r.error, EINVAL) << set[i].name;
            continue;
        }
        EXPECT_EQ(r.error, 0) << set[i].name << ": " << std::strerror(r.error);
        EXPECT_LE(r.retval, 4u) << set[i].name;
    }
    check_expectations(e, *o);
}

TEST_P(CorpusKernel, TwoFreshLoadsAgree) {
    const entry& e = *GetParam();
    auto a = run_all(e, progs_dir);
    ASSERT_TRUE(a) << a.error().message;
    auto b = run_all(e, progs_dir);
    ASSERT_TRUE(b) << b.error().message;
    const auto& set = packets();
    for (size_t i = 0; i < set.size(); i++) EXPECT_EQ(a->runs[i], b->runs[i]) << set[i].name;
    EXPECT_EQ(a->snap, b->snap) << diff(a->snap, b->snap);
}

std::vector<const entry*> all_entries() {
    std::vector<const entry*> v;
    for (const entry& e : entries()) v.push_back(&e);
    return v;
}

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusKernel, testing::ValuesIn(all_entries()),
                         [](const testing::TestParamInfo<const entry*>& i) { return test_name_of(*i.param); });

TEST(CorpusPackets, SetIsLargeAndNamesAreUnique) {
    const auto& set = packets();
    EXPECT_GE(set.size(), 40u);
    for (size_t i = 0; i < set.size(); i++)
        for (size_t j = i + 1; j < set.size(); j++) EXPECT_NE(set[i].name, set[j].name);
}

TEST(CorpusPackets, ValidIpv4HeadersHaveCorrectChecksums) {
    int checked = 0;
    for (const packet& p : packets()) {
        const frame_view v = inspect(p.bytes);
        if (!v.ipv4_ok || p.name == "ipv4_bad_csum") continue;
        EXPECT_EQ(inet_checksum(std::span(p.bytes).subspan(v.l3, v.ihl * 4)), 0) << p.name;
        checked++;
    }
    EXPECT_GE(checked, 40);
}

TEST(CorpusTable, EveryEntryNamesAnObjectAndAProgram) {
    for (const entry& e : entries()) {
        EXPECT_FALSE(e.object.empty()) << e.name;
        EXPECT_FALSE(e.prog.empty()) << e.name;
        EXPECT_EQ(find_entry(e.name), &e);
    }
    EXPECT_GE(entries().size(), 24u);
}

}  // namespace
}  // namespace xdprt::corpus
