// Invalid bpf() attributes, issued as raw syscall(SYS_bpf, cmd, &attr, size) against the kernel
// and against a fresh server in this process (the interposer routes the call): every row must get
// the kernel's errno (STYLE.md rule 12). A row builds its attr with the helper objects it needs
// (maps, BTF, programs, a non-bpf fd) on whichever side is active; the objects die with the row.
#include <bpf/bpf.h>
#include <linux/btf.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/inprocess.h"
#include "control/server.h"
#include "scratch_pin_root.h"

namespace xdprt::control {
namespace {

// Offsets of the 6.18 union bpf_attr fields that Debian 12's <linux/bpf.h> (6.1) does not name.
constexpr size_t kernel_attr_bytes = 168;  // sizeof(union bpf_attr) on 6.18
constexpr size_t off_map_token_fd = 76, off_excl_prog_hash = 80, off_excl_prog_hash_size = 88;
constexpr size_t off_prog_token_fd = 144, off_fd_array_cnt = 148, off_signature = 152, off_signature_size = 160;
constexpr size_t off_btf_flags = 32, off_btf_token_fd = 36;
constexpr uint32_t f_token_fd = 1u << 16;  // BPF_F_TOKEN_FD
constexpr int closed_fd = 9999;

bool have_kernel_bpf() {
    if (geteuid() != 0) return false;
    int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, nullptr, 4, 4, 1, nullptr);
    if (fd < 0) return false;
    close(fd);
    return true;
}

long sys_bpf(int cmd, void* attr, uint32_t size) { return syscall(SYS_bpf, cmd, attr, size); }

// BTF with [1] int (4 bytes) and [2] struct pair { int a; int b; } (8 bytes).
std::vector<uint8_t> btf_blob() {
    const char strings[] = "\0int\0pair\0a\0b";  // offsets: int 1, pair 5, a 10, b 12
    std::vector<uint32_t> types = {
        1, BTF_KIND_INT << 24, 4, 32,                              // int
        5, (BTF_KIND_STRUCT << 24) | 2, 8, 10, 1, 0, 12, 1, 32,    // struct pair
    };
    btf_header h{};
    h.magic = BTF_MAGIC;
    h.version = BTF_VERSION;
    h.hdr_len = sizeof h;
    h.type_off = 0;
    h.type_len = uint32_t(types.size() * 4);
    h.str_off = h.type_len;
    h.str_len = sizeof strings;
    std::vector<uint8_t> b(sizeof h + h.type_len + h.str_len);
    std::memcpy(b.data(), &h, sizeof h);
    std::memcpy(b.data() + sizeof h, types.data(), h.type_len);
    std::memcpy(b.data() + sizeof h + h.type_len, strings, sizeof strings);
    return b;
}

// One row's attr, its memory and its helper objects, on the side that is active.
class bench {
public:
    ~bench() {
        for (int fd : _fds) close(fd);
    }
    union bpf_attr& attr() { return *reinterpret_cast<union bpf_attr*>(buf.data()); }
    template <class T>
    void put(size_t off, T v) { std::memcpy(buf.data() + off, &v, sizeof v); }
    // Keeps bytes alive for the row; returns their address for an attr field.
    uint64_t keep(std::vector<uint8_t> bytes) {
        _memory.push_back(std::move(bytes));
        return reinterpret_cast<uint64_t>(_memory.back().data());
    }
    uint64_t keep_string(const char* s) { return keep(std::vector<uint8_t>(s, s + std::strlen(s) + 1)); }
    int own(long fd) {
        EXPECT_GE(fd, 0) << "helper object: " << strerror(errno);
        if (fd >= 0) _fds.push_back(int(fd));
        return int(fd);
    }
    int map(uint32_t type, uint32_t key, uint32_t value, uint32_t max, uint32_t flags = 0, uint32_t inner = 0) {
        union bpf_attr a{};
        a.map_type = type;
        a.key_size = key;
        a.value_size = value;
        a.max_entries = max;
        a.map_flags = flags;
        a.inner_map_fd = inner;
        return own(sys_bpf(BPF_MAP_CREATE, &a, sizeof a));
    }
    int array() { return map(BPF_MAP_TYPE_ARRAY, 4, 8, 4); }
    int hash() { return map(BPF_MAP_TYPE_HASH, 4, 8, 4); }
    int btf() {
        auto blob = btf_blob();
        union bpf_attr a{};
        a.btf = reinterpret_cast<uint64_t>(blob.data());
        a.btf_size = uint32_t(blob.size());
        return own(sys_bpf(BPF_BTF_LOAD, &a, sizeof a));
    }
    int prog() {
        union bpf_attr a{};
        fill_prog(a, {mov_r0(2), exit_insn()});
        return own(sys_bpf(BPF_PROG_LOAD, &a, sizeof a));
    }
    int eventfd() { return own(::eventfd(0, EFD_CLOEXEC)); }

    static bpf_insn mov_r0(int32_t v) { return bpf_insn{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, v}; }
    static bpf_insn exit_insn() { return bpf_insn{BPF_JMP | BPF_EXIT, 0, 0, 0, 0}; }
    // An XDP program of `insns` with a GPL license.
    void fill_prog(union bpf_attr& a, std::vector<bpf_insn> insns) {
        a.prog_type = BPF_PROG_TYPE_XDP;
        a.insn_cnt = uint32_t(insns.size());
        std::vector<uint8_t> bytes(insns.size() * sizeof(bpf_insn));
        std::memcpy(bytes.data(), insns.data(), bytes.size());
        a.insns = keep(std::move(bytes));
        a.license = keep_string("GPL");
    }
    void load_prog(std::vector<bpf_insn> insns) { fill_prog(attr(), std::move(insns)); }
    // A map with one element at key 0 (arrays have it already).
    void create_map(uint32_t type, uint32_t key, uint32_t value, uint32_t max, uint32_t flags = 0) {
        auto& a = attr();
        a.map_type = type;
        a.key_size = key;
        a.value_size = value;
        a.max_entries = max;
        a.map_flags = flags;
    }
    void elem(int map_fd, bool with_key = true, bool with_value = true) {
        auto& a = attr();
        a.map_fd = uint32_t(map_fd);
        if (with_key) a.key = keep(std::vector<uint8_t>(64, 0));
        if (with_value) a.value = keep(std::vector<uint8_t>(1024, 0));
    }
    void load_btf(std::vector<uint8_t> blob) {
        auto& a = attr();
        a.btf_size = uint32_t(blob.size());
        a.btf = keep(std::move(blob));
    }
    // A 64-byte Ethernet frame for PROG_TEST_RUN.
    void test_run(int prog_fd, uint32_t size = 64) {
        auto& a = attr();
        a.test.prog_fd = uint32_t(prog_fd);
        a.test.data_in = keep(std::vector<uint8_t>(size, 0xab));
        a.test.data_size_in = size;
        a.test.repeat = 1;
    }

    alignas(8) std::array<uint8_t, 8192> buf{};
    bool null_attr = false;

private:
    std::vector<int> _fds;
    std::deque<std::vector<uint8_t>> _memory;
};

struct attr_case {
    const char* name;
    int cmd;
    std::function<void(bench&)> build;
    uint32_t size = uint32_t(sizeof(union bpf_attr));
};

bool returns_fd(int cmd) {
    switch (cmd) {
    case BPF_MAP_CREATE: case BPF_PROG_LOAD: case BPF_BTF_LOAD: case BPF_OBJ_GET: case BPF_PROG_GET_FD_BY_ID:
    case BPF_MAP_GET_FD_BY_ID: case BPF_BTF_GET_FD_BY_ID: case BPF_LINK_GET_FD_BY_ID: case BPF_ENABLE_STATS:
        return true;
    default:
        return false;
    }
}

// The row's outcome on the active side: 0 for success (an fd is closed), else -errno.
long run(const attr_case& c, server* s) {
    inprocess::scoped_route route(s);
    bench b;
    c.build(b);
    long r = sys_bpf(c.cmd, b.null_attr ? nullptr : b.buf.data(), c.size);
    int e = errno;
    if (r < 0) return -e;
    if (returns_fd(c.cmd) && r > 2) close(int(r));
    return 0;
}

using B = bench;

// clang-format off
const std::vector<attr_case> cases = {
    // ---- the attr itself --------------------------------------------------------------------
    {"UnknownCommand", 999, [](B&) {}},
    {"SizeAboveAPage", BPF_MAP_FREEZE, [](B&) {}, 4097},
    {"NonZeroPastTheKernelUnion", BPF_MAP_FREEZE, [](B& b) { b.buf[200] = 1; }, 4096},
    {"NonZeroFirstByteAfterTheUnion", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); b.buf[kernel_attr_bytes] = 1; }, kernel_attr_bytes + 1},
    {"ZeroTailAfterTheUnionIsAccepted", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); }, 4096},
    {"NullAttr", BPF_MAP_CREATE, [](B& b) { b.null_attr = true; }},
    {"SizeZeroIsAnEmptyAttr", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); }, 0},
    {"ShortAttrCutsFields", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); }, 8},
    {"MapCreateByteInKernelOnlyTail", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); b.buf[100] = 1; }},
    {"MapCreateByteInLastKnownUnionByte", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); b.buf[167] = 1; }, kernel_attr_bytes},
    {"LookupByteAfterFlags", BPF_MAP_LOOKUP_ELEM, [](B& b) { b.elem(b.array()); b.buf[33] = 1; }},
    {"FreezeByteAfterMapFd", BPF_MAP_FREEZE, [](B& b) { b.attr().map_fd = b.array(); b.buf[4] = 1; }},
    {"BtfLoadByteAfterTokenFd", BPF_BTF_LOAD, [](B& b) { b.load_btf(btf_blob()); b.buf[40] = 1; }},
    {"TestRunByteAfterBatchSize", BPF_PROG_TEST_RUN, [](B& b) { b.test_run(b.prog()); b.buf[80] = 1; }},
    {"ProgGetFdByIdOpenFlags", BPF_PROG_GET_FD_BY_ID, [](B& b) { b.attr().prog_id = 1; b.attr().open_flags = 1; }},
    {"InfoByteAfterInfoPointer", BPF_OBJ_GET_INFO_BY_FD, [](B& b) { b.attr().info.bpf_fd = b.array(); b.buf[20] = 1; }},

    // ---- MAP_CREATE -------------------------------------------------------------------------
    {"ArrayKeySize8", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 8, 4, 1); }},
    {"ArrayValueSize0", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 0, 1); }},
    {"ArrayMaxEntries0", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 0); }},
    {"ArrayValueTooLarge", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 1u << 30, 1); }},
    {"ArrayValueTooLargeBeatsBadName", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 1u << 30, 1); std::strcpy(b.attr().map_name, "a-b"); }},
    {"PercpuArrayValueAboveUnit", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 40000, 1); }},
    {"PercpuArrayMmapable", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 1, BPF_F_MMAPABLE); }},
    {"HashKeySize0", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_HASH, 0, 4, 1); }},
    {"HashValueSize0", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_HASH, 4, 0, 1); }},
    {"HashMaxEntries0", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_HASH, 4, 4, 0); }},
    {"HashUnknownFlag", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_HASH, 4, 4, 1, 1u << 20); }},
    {"HashMmapable", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_HASH, 4, 4, 1, BPF_F_MMAPABLE); }},
    {"HashMapExtra", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_HASH, 4, 4, 1); b.attr().map_extra = 3; }},
    {"PercpuHashValueAboveUnit", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_PERCPU_HASH, 4, 40000, 1); }},
    {"LruHashNoPrealloc", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_LRU_HASH, 4, 4, 4, BPF_F_NO_PREALLOC); }},
    {"LpmTriePreallocated", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_LPM_TRIE, 8, 4, 4); }},
    {"LpmTrieKeyWithoutData", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_LPM_TRIE, 4, 4, 4, BPF_F_NO_PREALLOC); }},
    {"LpmTrieValueSize0", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_LPM_TRIE, 8, 0, 4, BPF_F_NO_PREALLOC); }},
    {"QueueKeySize4", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_QUEUE, 4, 4, 4); }},
    {"StackValueSize0", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_STACK, 0, 0, 4); }},
    {"QueueMaxEntries0", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_QUEUE, 0, 4, 0); }},
    {"BloomSixteenHashes", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_BLOOM_FILTER, 0, 4, 16); b.attr().map_extra = 16; }},
    {"BloomKeySize4", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_BLOOM_FILTER, 4, 4, 16); }},
    {"BloomValueSize0", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_BLOOM_FILTER, 0, 0, 16); }},
    {"RingbufNotPowerOfTwoPages", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_RINGBUF, 0, 0, 3 * 4096); }},
    {"RingbufKeySize4", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_RINGBUF, 4, 0, 4096); }},
    {"DevmapValueSize12", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_DEVMAP, 4, 12, 4); }},
    {"DevmapHashKeySize8", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_DEVMAP_HASH, 8, 4, 4); }},
    {"CpumapValueSize12", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_CPUMAP, 4, 12, 1); }},
    {"XskmapValueSize8", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_XSKMAP, 4, 8, 4); }},
    {"ProgArrayValueSize8", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_PROG_ARRAY, 4, 8, 4); }},
    {"ArrayOfMapsClosedInnerFd", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 4); b.attr().inner_map_fd = closed_fd; }},
    {"ArrayOfMapsEventfdInner", BPF_MAP_CREATE, [](B& b) { int e = b.eventfd(); b.create_map(BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 4); b.attr().inner_map_fd = e; }},
    {"HashOfMapsInnerOfMaps", BPF_MAP_CREATE, [](B& b) { int in = b.array(); int outer = b.map(BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 1, 0, in); b.create_map(BPF_MAP_TYPE_HASH_OF_MAPS, 4, 4, 4); b.attr().inner_map_fd = outer; }},
    {"ReadOnlyAndWriteOnly", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1, BPF_F_RDONLY | BPF_F_WRONLY); }},
    {"ProgReadOnlyAndWriteOnly", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1, BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG); }},
    {"NumaNodeOffline", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_HASH, 4, 4, 1, BPF_F_NUMA_NODE); b.attr().numa_node = 1000; }},
    {"UnknownMapType", BPF_MAP_CREATE, [](B& b) { b.create_map(200, 4, 4, 1); }},
    {"NameWithDash", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); std::strcpy(b.attr().map_name, "bad-name"); }},
    {"NameWithoutNul", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); std::memset(b.attr().map_name, 'a', 16); }},
    {"BtfFdClosed", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); b.attr().btf_fd = closed_fd; b.attr().btf_value_type_id = 1; }},
    {"BtfFdIsAMap", BPF_MAP_CREATE, [](B& b) { int m = b.array(); b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); b.attr().btf_fd = m; b.attr().btf_value_type_id = 1; }},
    {"BtfKeyWithoutValue", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); b.attr().btf_fd = closed_fd; b.attr().btf_key_type_id = 1; }},
    {"BtfValueSizeMismatch", BPF_MAP_CREATE, [](B& b) { int bt = b.btf(); b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); b.attr().btf_fd = bt; b.attr().btf_key_type_id = 1; b.attr().btf_value_type_id = 2; }},
    {"BtfKeySizeMismatch", BPF_MAP_CREATE, [](B& b) { int bt = b.btf(); b.create_map(BPF_MAP_TYPE_HASH, 8, 4, 1); b.attr().btf_fd = bt; b.attr().btf_key_type_id = 1; b.attr().btf_value_type_id = 1; }},
    {"BtfValueIdOutOfRange", BPF_MAP_CREATE, [](B& b) { int bt = b.btf(); b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); b.attr().btf_fd = bt; b.attr().btf_key_type_id = 1; b.attr().btf_value_type_id = 77; }},
    {"VmlinuxValueTypeOnArray", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); b.attr().btf_vmlinux_value_type_id = 5; }},
    {"OffloadToLoopback", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_HASH, 4, 4, 1); b.attr().map_ifindex = 1; }},
    {"TokenFdClosed", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1, f_token_fd); b.put<int32_t>(off_map_token_fd, closed_fd); }},
    {"TokenFdNotAToken", BPF_MAP_CREATE, [](B& b) { int e = b.eventfd(); b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1, f_token_fd); b.put<int32_t>(off_map_token_fd, e); }},
    {"ExclusiveHashSizeWithoutHash", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); b.put<uint32_t>(off_excl_prog_hash_size, 32); }},
    {"ExclusiveHashWrongSize", BPF_MAP_CREATE, [](B& b) { b.create_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1); b.put<uint64_t>(off_excl_prog_hash, b.keep(std::vector<uint8_t>(32))); b.put<uint32_t>(off_excl_prog_hash_size, 20); }},

    // ---- element commands -------------------------------------------------------------------
    {"LookupClosedFd", BPF_MAP_LOOKUP_ELEM, [](B& b) { b.elem(closed_fd); }},
    {"LookupEventfd", BPF_MAP_LOOKUP_ELEM, [](B& b) { b.elem(b.eventfd()); }},
    {"LookupFlagsCheckedBeforeFd", BPF_MAP_LOOKUP_ELEM, [](B& b) { b.elem(closed_fd); b.attr().flags = 4; }},
    {"LookupNullKey", BPF_MAP_LOOKUP_ELEM, [](B& b) { b.elem(b.array(), false); }},
    {"LookupNullValue", BPF_MAP_LOOKUP_ELEM, [](B& b) { b.elem(b.array(), true, false); }},
    {"LookupWriteOnlyMap", BPF_MAP_LOOKUP_ELEM, [](B& b) { b.elem(b.map(BPF_MAP_TYPE_ARRAY, 4, 8, 4, BPF_F_WRONLY), false); }},
    {"LookupLockWithoutSpinLock", BPF_MAP_LOOKUP_ELEM, [](B& b) { b.elem(b.array()); b.attr().flags = BPF_F_LOCK; }},
    {"UpdateReadOnlyMap", BPF_MAP_UPDATE_ELEM, [](B& b) { b.elem(b.map(BPF_MAP_TYPE_ARRAY, 4, 8, 4, BPF_F_RDONLY), false, false); }},
    {"UpdateBadFlags", BPF_MAP_UPDATE_ELEM, [](B& b) { b.elem(b.array()); b.attr().flags = 8; }},
    {"UpdateNullValue", BPF_MAP_UPDATE_ELEM, [](B& b) { b.elem(b.hash(), true, false); }},
    {"UpdateLockWithoutSpinLock", BPF_MAP_UPDATE_ELEM, [](B& b) { b.elem(b.hash()); b.attr().flags = BPF_F_LOCK; }},
    {"UpdateQueueWithKey", BPF_MAP_UPDATE_ELEM, [](B& b) { b.elem(b.map(BPF_MAP_TYPE_QUEUE, 0, 4, 4)); }},
    {"UpdateFrozenMap", BPF_MAP_UPDATE_ELEM, [](B& b) { int m = b.array(); union bpf_attr f{}; f.map_fd = m; sys_bpf(BPF_MAP_FREEZE, &f, sizeof f); b.elem(m); }},
    {"DeleteFromArray", BPF_MAP_DELETE_ELEM, [](B& b) { b.elem(b.array(), true, false); }},
    {"DeleteNullKey", BPF_MAP_DELETE_ELEM, [](B& b) { b.elem(b.hash(), false, false); }},
    {"DeleteEventfd", BPF_MAP_DELETE_ELEM, [](B& b) { b.elem(b.eventfd()); }},
    {"NextKeyNullOut", BPF_MAP_GET_NEXT_KEY, [](B& b) { b.elem(b.array(), false, false); }},
    {"NextKeyWriteOnly", BPF_MAP_GET_NEXT_KEY, [](B& b) { b.elem(b.map(BPF_MAP_TYPE_ARRAY, 4, 8, 4, BPF_F_WRONLY), false, false); }},
    {"LookupAndDeleteArray", BPF_MAP_LOOKUP_AND_DELETE_ELEM, [](B& b) { b.elem(b.array()); }},
    {"LookupAndDeleteQueueFlags", BPF_MAP_LOOKUP_AND_DELETE_ELEM, [](B& b) { b.elem(b.map(BPF_MAP_TYPE_QUEUE, 0, 4, 4), false); b.attr().flags = BPF_F_LOCK; }},
    {"LookupAndDeleteBadFlags", BPF_MAP_LOOKUP_AND_DELETE_ELEM, [](B& b) { b.elem(closed_fd); b.attr().flags = 2; }},
    {"FreezeClosedFd", BPF_MAP_FREEZE, [](B& b) { b.attr().map_fd = closed_fd; }},
    {"FreezeEventfd", BPF_MAP_FREEZE, [](B& b) { b.attr().map_fd = b.eventfd(); }},
    {"FreezeTwice", BPF_MAP_FREEZE, [](B& b) { int m = b.array(); union bpf_attr f{}; f.map_fd = m; sys_bpf(BPF_MAP_FREEZE, &f, sizeof f); b.attr().map_fd = m; }},

    // ---- batches ----------------------------------------------------------------------------
    {"BatchClosedFd", BPF_MAP_LOOKUP_BATCH, [](B& b) { b.attr().batch.map_fd = closed_fd; }},
    {"BatchArrayElemFlags", BPF_MAP_LOOKUP_BATCH, [](B& b) { b.attr().batch.map_fd = b.array(); b.attr().batch.elem_flags = 4; b.attr().batch.count = 1; }},
    {"BatchHashFlags", BPF_MAP_LOOKUP_BATCH, [](B& b) { b.attr().batch.map_fd = b.hash(); b.attr().batch.flags = 1; b.attr().batch.count = 1; }},
    {"BatchHashLockWithoutSpinLock", BPF_MAP_UPDATE_BATCH, [](B& b) { b.attr().batch.map_fd = b.hash(); b.attr().batch.elem_flags = BPF_F_LOCK; b.attr().batch.count = 1; }},
    {"BatchCountZeroIsANoop", BPF_MAP_LOOKUP_BATCH, [](B& b) { b.attr().batch.map_fd = b.array(); }},
    {"BatchLookupAndDeleteArray", BPF_MAP_LOOKUP_AND_DELETE_BATCH, [](B& b) { b.attr().batch.map_fd = b.array(); b.attr().batch.count = 1; }},
    {"BatchDeleteArray", BPF_MAP_DELETE_BATCH, [](B& b) { b.attr().batch.map_fd = b.array(); b.attr().batch.count = 1; }},
    {"BatchUpdateQueue", BPF_MAP_UPDATE_BATCH, [](B& b) { b.attr().batch.map_fd = b.map(BPF_MAP_TYPE_QUEUE, 0, 4, 4); b.attr().batch.count = 1; }},
    {"BatchUpdateNullKeys", BPF_MAP_UPDATE_BATCH, [](B& b) { b.attr().batch.map_fd = b.hash(); b.attr().batch.count = 1; }},
    {"BatchLookupWriteOnly", BPF_MAP_LOOKUP_BATCH, [](B& b) { b.attr().batch.map_fd = b.map(BPF_MAP_TYPE_HASH, 4, 8, 4, BPF_F_WRONLY); b.attr().batch.count = 1; }},

    // ---- PROG_LOAD --------------------------------------------------------------------------
    {"ProgTypeUnknown", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().prog_type = 999; }},
    {"InsnCnt0", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().insn_cnt = 0; }},
    {"InsnCntAboveLimit", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().insn_cnt = 1000001; }},
    {"InsnCnt0BeatsUnknownType", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().insn_cnt = 0; b.attr().prog_type = 999; }},
    {"NullInsns", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().insns = 0; }},
    {"NullInsnsBeatsUnknownType", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().insns = 0; b.attr().prog_type = 999; }},
    {"BadLicensePointer", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().license = 1; }},
    {"LogLevelWithoutBuffer", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().log_level = 1; }},
    {"LogBufferWithoutSize", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().log_level = 1; b.attr().log_buf = b.keep(std::vector<uint8_t>(256)); }},
    {"LogSizeTooSmall", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().log_level = 1; b.attr().log_buf = b.keep(std::vector<uint8_t>(256)); b.attr().log_size = 64; }},
    {"LogLevelUnknownBits", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().log_level = 64; b.attr().log_buf = b.keep(std::vector<uint8_t>(256)); b.attr().log_size = 256; }},
    {"LogWithoutBufferAfterNullInsns", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().log_level = 1; b.attr().insns = 0; }},
    {"UnknownProgFlag", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().prog_flags = 1u << 20; }},
    {"ProgNameWithSpace", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); std::strcpy(b.attr().prog_name, "a b"); }},
    {"ProgTailPastTheUnion", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.buf[170] = 1; }, 172},
    {"SyscallProgWithAttachType", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(0), B::exit_insn()}); b.attr().prog_type = BPF_PROG_TYPE_SYSCALL; b.attr().expected_attach_type = 1; }},
    {"CgroupSkbWrongAttachType", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(1), B::exit_insn()}); b.attr().prog_type = BPF_PROG_TYPE_CGROUP_SKB; b.attr().expected_attach_type = BPF_XDP; }},
    {"XdpWithAttachBtfId", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().attach_btf_id = 5; }},
    {"XdpWithAttachProgFdClosed", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().attach_prog_fd = closed_fd; }},
    {"ProgTokenFdClosed", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.attr().prog_flags = f_token_fd; b.put<int32_t>(off_prog_token_fd, closed_fd); }},
    {"SignatureWrongSize", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.put<uint64_t>(off_signature, b.keep(std::vector<uint8_t>(64))); b.put<uint32_t>(off_signature_size, 5); }},
    {"FdArrayCntWithoutFdArray", BPF_PROG_LOAD, [](B& b) { b.load_prog({B::mov_r0(2), B::exit_insn()}); b.put<uint32_t>(off_fd_array_cnt, 2); }},
    {"LdImm64ClosedMapFd", BPF_PROG_LOAD, [](B& b) {
        b.load_prog({bpf_insn{BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, closed_fd}, bpf_insn{}, B::mov_r0(2), B::exit_insn()}); }},
    {"LdImm64EventfdAsMap", BPF_PROG_LOAD, [](B& b) {
        int e = b.eventfd();
        b.load_prog({bpf_insn{BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, e}, bpf_insn{}, B::mov_r0(2), B::exit_insn()}); }},
    {"MapIndexWithoutFdArray", BPF_PROG_LOAD, [](B& b) {
        b.load_prog({bpf_insn{BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_IDX, 0, 0}, bpf_insn{}, B::mov_r0(2), B::exit_insn()}); }},
    {"MapIndexToClosedFd", BPF_PROG_LOAD, [](B& b) {
        std::vector<uint8_t> fds(8);
        int32_t bad = closed_fd;
        std::memcpy(fds.data(), &bad, 4);
        b.load_prog({bpf_insn{BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_IDX, 0, 0}, bpf_insn{}, B::mov_r0(2), B::exit_insn()});
        b.attr().fd_array = b.keep(fds); }},

    // ---- BTF_LOAD ---------------------------------------------------------------------------
    {"BtfTruncatedHeader", BPF_BTF_LOAD, [](B& b) { auto blob = btf_blob(); blob.resize(8); b.load_btf(blob); }},
    {"BtfBadMagic", BPF_BTF_LOAD, [](B& b) { auto blob = btf_blob(); blob[0] = 0x12; b.load_btf(blob); }},
    {"BtfBadVersion", BPF_BTF_LOAD, [](B& b) { auto blob = btf_blob(); blob[2] = 7; b.load_btf(blob); }},
    {"BtfHeaderFlags", BPF_BTF_LOAD, [](B& b) { auto blob = btf_blob(); blob[3] = 1; b.load_btf(blob); }},
    {"BtfHdrLenTooSmall", BPF_BTF_LOAD, [](B& b) { auto blob = btf_blob(); blob[4] = 16; b.load_btf(blob); }},
    {"BtfHdrLenWithNonZeroExtra", BPF_BTF_LOAD, [](B& b) {
        auto blob = btf_blob();
        blob.insert(blob.begin() + sizeof(btf_header), {1, 0, 0, 0});
        uint32_t len = sizeof(btf_header) + 4;
        std::memcpy(blob.data() + offsetof(btf_header, hdr_len), &len, 4);
        b.load_btf(blob); }},
    {"BtfTypeSectionOutOfBounds", BPF_BTF_LOAD, [](B& b) {
        auto blob = btf_blob();
        uint32_t len = 4096;
        std::memcpy(blob.data() + offsetof(btf_header, type_len), &len, 4);
        b.load_btf(blob); }},
    {"BtfStringsWithoutNul", BPF_BTF_LOAD, [](B& b) { auto blob = btf_blob(); blob.back() = 'x'; b.load_btf(blob); }},
    {"BtfUnknownKind", BPF_BTF_LOAD, [](B& b) { auto blob = btf_blob(); blob[sizeof(btf_header) + 7] = 30; b.load_btf(blob); }},
    {"BtfNameOffsetOutOfRange", BPF_BTF_LOAD, [](B& b) { auto blob = btf_blob(); blob[sizeof(btf_header)] = 200; b.load_btf(blob); }},
    {"BtfAbove16MiB", BPF_BTF_LOAD, [](B& b) { b.load_btf(btf_blob()); b.attr().btf_size = (16u << 20) + 1; }},
    {"BtfNullPointer", BPF_BTF_LOAD, [](B& b) { b.attr().btf_size = 100; }},
    {"BtfLogLevelWithoutBuffer", BPF_BTF_LOAD, [](B& b) { b.load_btf(btf_blob()); b.attr().btf_log_level = 1; }},
    {"BtfLogBufferTooSmall", BPF_BTF_LOAD, [](B& b) { b.load_btf(btf_blob()); b.attr().btf_log_level = 1; b.attr().btf_log_buf = b.keep(std::vector<uint8_t>(64)); b.attr().btf_log_size = 16; }},
    {"BtfLoadUnknownFlag", BPF_BTF_LOAD, [](B& b) { b.load_btf(btf_blob()); b.put<uint32_t>(off_btf_flags, 2); }},
    {"BtfLoadTokenFdClosed", BPF_BTF_LOAD, [](B& b) { b.load_btf(btf_blob()); b.put<uint32_t>(off_btf_flags, f_token_fd); b.put<int32_t>(off_btf_token_fd, closed_fd); }},

    // ---- PROG_TEST_RUN ----------------------------------------------------------------------
    {"TestRunShortFrame", BPF_PROG_TEST_RUN, [](B& b) { b.test_run(b.prog(), 10); }},
    {"TestRunCtxSizeWithoutCtx", BPF_PROG_TEST_RUN, [](B& b) { b.test_run(closed_fd); b.attr().test.ctx_size_in = 24; }},
    {"TestRunCtxOutWithoutSize", BPF_PROG_TEST_RUN, [](B& b) { b.test_run(closed_fd); b.attr().test.ctx_out = b.keep(std::vector<uint8_t>(64)); }},
    {"TestRunClosedFd", BPF_PROG_TEST_RUN, [](B& b) { b.test_run(closed_fd); }},
    {"TestRunMapFd", BPF_PROG_TEST_RUN, [](B& b) { b.test_run(b.array()); }},
    {"TestRunCtxWithDataMeta", BPF_PROG_TEST_RUN, [](B& b) {
        b.test_run(b.prog());
        xdp_md md{};
        md.data_meta = 4;
        md.data_end = 64;
        std::vector<uint8_t> ctx(sizeof md);
        std::memcpy(ctx.data(), &md, sizeof md);
        b.attr().test.ctx_in = b.keep(ctx);
        b.attr().test.ctx_size_in = sizeof md; }},
    {"TestRunUnknownFlags", BPF_PROG_TEST_RUN, [](B& b) { b.test_run(b.prog()); b.attr().test.flags = 4; }},
    {"TestRunNullData", BPF_PROG_TEST_RUN, [](B& b) { b.test_run(b.prog()); b.attr().test.data_in = 0; }},

    // ---- ids, info and the rest -------------------------------------------------------------
    {"ProgIdZero", BPF_PROG_GET_FD_BY_ID, [](B& b) { b.attr().prog_id = 0; }},
    {"MapIdUnknown", BPF_MAP_GET_FD_BY_ID, [](B& b) { b.attr().map_id = 0x7ffffff0; }},
    {"MapIdOpenFlags", BPF_MAP_GET_FD_BY_ID, [](B& b) { b.attr().map_id = 1; b.attr().open_flags = 4; }},
    {"MapIdReadOnlyWriteOnly", BPF_MAP_GET_FD_BY_ID, [](B& b) { b.attr().map_id = 1; b.attr().open_flags = BPF_F_RDONLY | BPF_F_WRONLY; }},
    {"BtfIdUnknown", BPF_BTF_GET_FD_BY_ID, [](B& b) { b.attr().btf_id = 0x7ffffff0; }},
    {"BtfIdOpenFlags", BPF_BTF_GET_FD_BY_ID, [](B& b) { b.attr().btf_id = 1; b.attr().open_flags = 1; }},
    {"LinkIdZero", BPF_LINK_GET_FD_BY_ID, [](B& b) { b.attr().link_id = 0; }},
    {"NextIdFromIntMax", BPF_MAP_GET_NEXT_ID, [](B& b) { b.attr().start_id = 0x7fffffff; }},
    {"InfoClosedFd", BPF_OBJ_GET_INFO_BY_FD, [](B& b) { b.attr().info.bpf_fd = closed_fd; }},
    {"InfoEventfd", BPF_OBJ_GET_INFO_BY_FD, [](B& b) { b.attr().info.bpf_fd = b.eventfd(); }},
    {"InfoLenAboveAPage", BPF_OBJ_GET_INFO_BY_FD, [](B& b) { b.attr().info.bpf_fd = b.array(); b.attr().info.info_len = 8192; b.attr().info.info = b.keep(std::vector<uint8_t>(8192)); }},
    {"InfoNonZeroTail", BPF_OBJ_GET_INFO_BY_FD, [](B& b) {
        std::vector<uint8_t> info(1024);
        info[1000] = 1;
        b.attr().info.bpf_fd = b.array(); b.attr().info.info_len = 1024; b.attr().info.info = b.keep(info); }},
    {"InfoNullBuffer", BPF_OBJ_GET_INFO_BY_FD, [](B& b) { b.attr().info.bpf_fd = b.array(); b.attr().info.info_len = 40; }},
    {"ProgInfoNonZeroTail", BPF_OBJ_GET_INFO_BY_FD, [](B& b) {
        std::vector<uint8_t> info(1024);
        info[1000] = 1;
        b.attr().info.bpf_fd = b.prog(); b.attr().info.info_len = 1024; b.attr().info.info = b.keep(info); }},
    {"BindMapFlags", BPF_PROG_BIND_MAP, [](B& b) { b.attr().prog_bind_map.prog_fd = b.prog(); b.attr().prog_bind_map.map_fd = b.array(); b.attr().prog_bind_map.flags = 1; }},
    {"BindMapClosedProg", BPF_PROG_BIND_MAP, [](B& b) { b.attr().prog_bind_map.prog_fd = closed_fd; b.attr().prog_bind_map.map_fd = b.array(); }},
    {"BindMapProgIsAMap", BPF_PROG_BIND_MAP, [](B& b) { int m = b.array(); b.attr().prog_bind_map.prog_fd = m; b.attr().prog_bind_map.map_fd = m; }},
    {"EnableStatsUnknownType", BPF_ENABLE_STATS, [](B& b) { b.attr().enable_stats.type = 5; }},
    {"PinUnknownFileFlags", BPF_OBJ_PIN, [](B& b) { b.attr().bpf_fd = b.array(); b.attr().file_flags = 1; }},
};
// clang-format on

class InvalidAttr : public ::testing::TestWithParam<attr_case> {};

TEST_P(InvalidAttr, GetsTheKernelsErrno) {
    if (!have_kernel_bpf()) GTEST_SKIP() << "the kernel refuses bpf() here (not root?): no oracle to compare with";
    const attr_case& c = GetParam();
    long kernel = run(c, nullptr);
    server_options o;
    o.default_engine = engine::interpreter;
    o.pin_root = testing_support::scratch_pin_root();
    auto s = server::create(o);
    ASSERT_TRUE(s.has_value()) << s.error().message;
    long ours = run(c, s->get());
    EXPECT_EQ(ours, kernel) << c.name << ": kernel " << (kernel < 0 ? strerror(int(-kernel)) : "success") << ", xdprt "
                            << (ours < 0 ? strerror(int(-ours)) : "success") << " (" << (*s)->last_error() << ")";
}

TEST(InvalidAttrTable, HasEnoughRows) { EXPECT_GE(cases.size(), 60u); }

INSTANTIATE_TEST_SUITE_P(Rows, InvalidAttr, ::testing::ValuesIn(cases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace xdprt::control
