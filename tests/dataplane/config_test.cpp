// The YAML config (suite dataplane): defaults, and each bad input named with file:line:col and
// its key path.
#include <filesystem>

#include <gtest/gtest.h>

#include "appliance/config.h"

namespace xdprt::appliance {
namespace {

TEST(Config, MinimalConfigGetsDefaults) {
    auto c = parse_config("ports:\n  - name: p0\n    kind: null\n", "t.yaml");
    ASSERT_TRUE(c) << c.error().message;
    ASSERT_EQ(c->options.dataplane.ports.size(), 1u);
    EXPECT_EQ(c->options.dataplane.ports[0].kind, dataplane::port_kind::null);
    EXPECT_EQ(c->options.dataplane.ports[0].rx_queues, 1);
    EXPECT_TRUE(c->options.dataplane.ports[0].twin);
    EXPECT_EQ(c->options.dataplane.burst, 32u);
    EXPECT_EQ(c->options.server.verify, control::verify_mode::kernel);
    const auto& eal = c->options.dataplane.eal_args;
    EXPECT_NE(std::find(eal.begin(), eal.end(), "--no-huge"), eal.end());
    EXPECT_NE(std::find(eal.begin(), eal.end(), "0-1"), eal.end());
    EXPECT_FALSE(c->programs[0].has_value());
}

TEST(Config, FullConfigIsRead) {
    auto c = parse_config(R"(eal:
  lcores: "0-2"
  memory_mb: 1024
  hugepages: true
  args: ["--log-level=5"]
dataplane:
  burst: 64
server:
  verify: off
  unsafe: true
ports:
  - name: lb0
    kind: af_xdp
    device: veth1
    rx_queues: 2
    program:
      object: lb.bpf.o
      name: xdp_lb
workers:
  - lcore: 1
    queues: [{port: lb0, queue: 0}]
  - lcore: 2
    queues: [{port: lb0, queue: 1}]
)",
                          "full.yaml");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->options.dataplane.burst, 64u);
    EXPECT_EQ(c->options.server.verify, control::verify_mode::off);
    EXPECT_EQ(c->options.dataplane.ports[0].rx_queues, 2);
    ASSERT_TRUE(c->programs[0].has_value());
    EXPECT_EQ(c->programs[0]->name, "xdp_lb");
    EXPECT_EQ(c->options.dataplane.workers.size(), 2u);
    EXPECT_EQ(c->options.dataplane.workers[1].queues[0].rx_queue, 1);
    const auto& eal = c->options.dataplane.eal_args;
    EXPECT_EQ(std::find(eal.begin(), eal.end(), "--no-huge"), eal.end());
    EXPECT_NE(std::find(eal.begin(), eal.end(), "--log-level=5"), eal.end());
}

// The examples in configs/ stay valid.
TEST(Config, EveryExampleParses) {
    size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator(XDPRT_CONFIGS_DIR)) {
        if (e.path().extension() != ".yaml") continue;
        auto c = load_config(e.path());
        EXPECT_TRUE(c) << e.path() << ": " << (c ? "" : c.error().message);
        ++n;
    }
    EXPECT_GE(n, 5u);
}

struct bad_case {
    const char* description;
    const char* yaml;
    const char* message;  // the whole error must contain this
};

class BadConfig : public ::testing::TestWithParam<bad_case> {};

TEST_P(BadConfig, IsRefusedWithWhereAndWhat) {
    auto c = parse_config(GetParam().yaml, "bad.yaml");
    ASSERT_FALSE(c) << GetParam().description;
    EXPECT_NE(c.error().message.find(GetParam().message), std::string::npos) << c.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadConfig,
    ::testing::Values(
        bad_case{"empty file", "", "bad.yaml:1:1: (top): the file is empty"},
        bad_case{"broken YAML", "ports: [\n", "bad.yaml:2:1:"},
        bad_case{"unknown top key", "portz: []\n", "bad.yaml:1:1: (top): unknown key 'portz'"},
        bad_case{"no ports", "eal: {lcores: \"0-1\"}\n", "no 'ports'"},
        bad_case{"integer expected", "ports:\n  - name: p0\n    kind: ring\n    rx_queues: four\n",
                 "bad.yaml:4:16: ports[0].rx_queues: expected an integer, got 'four'"},
        bad_case{"out of range", "ports:\n  - name: p0\n    kind: ring\n    rx_queues: 100\n", "ports[0].rx_queues: 100 is out of range"},
        bad_case{"unknown port key", "ports:\n  - name: p0\n    kind: ring\n    queues: 2\n", "bad.yaml:4:5: ports[0]: unknown key 'queues'"},
        bad_case{"unknown kind", "ports:\n  - name: p0\n    kind: dpdk\n", "ports[0].kind: 'dpdk' is not one of pci, af_xdp"},
        bad_case{"af_xdp without device", "ports:\n  - name: p0\n    kind: af_xdp\n", "a af_xdp port needs a device"},
        bad_case{"pcap without files", "ports:\n  - name: p0\n    kind: pcap\n", "a pcap port needs rx_pcap"},
        bad_case{"name twice", "ports:\n  - {name: p0, kind: ring}\n  - {name: p0, kind: ring}\n", "port 'p0' is named twice"},
        bad_case{"long name", "ports:\n  - {name: abcdefghijklmnop, kind: ring}\n", "1 to 15 characters"},
        bad_case{"program without object", "ports:\n  - name: p0\n    kind: ring\n    program: {name: x}\n",
                 "ports[0].program: a program needs an object"},
        bad_case{"worker on a missing port", "ports:\n  - {name: p0, kind: ring}\nworkers:\n  - lcore: 1\n    queues: [{port: p9}]\n",
                 "workers[0]: no port 'p9'"},
        bad_case{"verify off without unsafe", "server: {verify: off}\nports:\n  - {name: p0, kind: ring}\n",
                 "server.verify: 'off' runs unverified programs"},
        bad_case{"bool expected", "ports:\n  - {name: p0, kind: ring, twin: maybe}\n", "ports[0].twin: expected true or false, got 'maybe'"},
        bad_case{"af_xdp port named as its interface", "ports:\n  - {name: eth0, kind: af_xdp, device: eth0}\n",
                 "name the port otherwise"}));

}  // namespace
}  // namespace xdprt::appliance
