#include "xdp_harness.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "elf/elf.h"

namespace xdprt::tools {

result<low_memory> low_memory::map(size_t bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (p == MAP_FAILED) return fail(errno, "mmap of {} bytes below 2 GiB: {}", bytes, std::strerror(errno));
    return low_memory(static_cast<uint8_t*>(p), bytes);
}

low_memory::~low_memory() {
    if (_p) munmap(_p, _n);
}

void packet_slot::reset(std::span<const uint8_t> bytes) const {
    std::memcpy(frame, bytes.data(), bytes.size());
    md->data = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(frame));
    md->data_end = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(frame + bytes.size()));
    md->data_meta = md->data;
    md->ingress_ifindex = 1;
    md->rx_queue_index = 0;
    md->egress_ifindex = 0;
}

result<packet_set> packet_set::create(std::vector<std::vector<uint8_t>> frames) {
    auto mem = low_memory::map(frames.size() * slot_size + 4096);
    if (!mem) return tl::unexpected(mem.error());
    packet_set set(std::move(*mem));
    set._frames = std::move(frames);
    for (size_t k = 0; k < set._frames.size(); ++k) {
        if (set._frames[k].size() > slot_size - headroom - 64)
            return fail(EINVAL, "frame {} is {} bytes, more than a slot holds", k, set._frames[k].size());
        uint8_t* base = set._mem.data() + k * slot_size;
        set._slots.push_back({reinterpret_cast<xdp_md*>(base), base + 64 + headroom});
        set.reset(k);
    }
    return set;
}

result<std::unique_ptr<loaded_program>> load_program(const std::filesystem::path& path, std::string_view name) {
    auto obj = elf::read_object_file(path);
    if (!obj) return tl::unexpected(obj.error());
    const elf::program* chosen = nullptr;
    for (auto& p : obj->programs)
        if (name.empty() ? obj->programs.size() == 1 : p.name == name) chosen = &p;
    if (!chosen) return fail(ENOENT, "{}: no program '{}' ({} programs in the object)", path.string(), name, obj->programs.size());

    auto lp = std::make_unique<loaded_program>();
    auto prog = vm::load(chosen->name, chosen->insns, lp->link);
    if (!prog) return tl::unexpected(with_context(prog.error(), path.string()));
    lp->prog = std::move(*prog);
#ifdef XDPRT_HAVE_JIT
    auto image = jit::compile(lp->prog);
    if (!image) return tl::unexpected(with_context(image.error(), path.string()));
    lp->image = std::move(*image);
    lp->prog.native = lp->image.entry();
#endif
    return lp;
}

namespace {

std::vector<uint8_t> eth(uint16_t proto) {
    std::vector<uint8_t> f = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
    f.push_back(static_cast<uint8_t>(proto >> 8));
    f.push_back(static_cast<uint8_t>(proto));
    return f;
}

void append(std::vector<uint8_t>& f, std::initializer_list<uint8_t> b) { f.insert(f.end(), b); }

std::vector<uint8_t> ipv4(uint8_t proto, uint8_t ihl_words, size_t payload) {
    auto f = eth(0x0800);
    const size_t total = ihl_words * 4 + payload;
    append(f, {static_cast<uint8_t>(0x40 | ihl_words), 0, static_cast<uint8_t>(total >> 8), static_cast<uint8_t>(total),
               0, 1, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2});
    for (int k = 5; k < ihl_words; ++k) append(f, {1, 1, 1, 1});  // NOP options
    for (size_t k = 0; k < payload; ++k) f.push_back(static_cast<uint8_t>(k * 7));
    return f;
}

}  // namespace

std::vector<std::string> demo_frame_names() {
    return {"udp/ipv4", "udp/ipv4 with options", "tcp/ipv4", "udp/ipv4 1400 B", "ipv6", "arp",
            "runt (10 B)", "truncated ipv4", "ipv4 ihl < 5", "truncated udp"};
}

std::vector<std::vector<uint8_t>> demo_frames() {
    std::vector<std::vector<uint8_t>> v;
    v.push_back(ipv4(17, 5, 8 + 32));
    v.push_back(ipv4(17, 8, 8 + 32));
    v.push_back(ipv4(6, 5, 20 + 32));
    v.push_back(ipv4(17, 5, 1400));
    auto v6 = eth(0x86dd);
    v6.resize(14 + 40 + 8, 0x60);
    v.push_back(v6);
    auto arp = eth(0x0806);
    arp.resize(14 + 28, 0x01);
    v.push_back(arp);
    v.push_back(std::vector<uint8_t>(10, 0xaa));
    auto trunc = ipv4(17, 5, 0);
    trunc.resize(14 + 10);
    v.push_back(trunc);
    auto bad_ihl = ipv4(17, 5, 8 + 32);
    bad_ihl[14] = 0x43;
    v.push_back(bad_ihl);
    auto trunc_udp = ipv4(17, 5, 4);
    v.push_back(trunc_udp);
    for (size_t k = 0; k < 6; ++k)
        if (v[k].size() < 60) v[k].resize(60, 0);  // Ethernet minimum for the valid frames
    return v;
}

std::string_view action_name(uint64_t action) {
    switch (action) {
    case XDP_ABORTED: return "ABORTED";
    case XDP_DROP: return "DROP";
    case XDP_PASS: return "PASS";
    case XDP_TX: return "TX";
    case XDP_REDIRECT: return "REDIRECT";
    default: return "unknown";
    }
}

}  // namespace xdprt::tools
