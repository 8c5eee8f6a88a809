#include "attr_fuzz.h"

#include <linux/bpf.h>
#include <linux/btf.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <deque>
#include <memory>

#include <fmt/format.h>

#include "control/server.h"
#include "maps/map.h"
#include "scratch_pin_root.h"

namespace xdprt::fuzz {

namespace {

constexpr size_t kernel_attr_bytes = 168;      // the 6.18 union bpf_attr
constexpr uint64_t unmapped = 0x1000;          // below vm.mmap_min_addr: never mapped, so EFAULT
constexpr uint32_t closed_fd = 99999;
constexpr size_t max_buffer = 1u << 16;        // the largest buffer a size field may describe

// Reads the fuzzer's bytes; past the end it returns zeros, so every input decodes.
class reader {
public:
    explicit reader(std::span<const uint8_t> d) : _d(d) {}
    uint8_t u8() { return _pos < _d.size() ? _d[_pos++] : 0; }
    uint16_t u16() { return uint16_t(u8() | u8() << 8); }
    uint32_t u32() { return u16() | uint32_t(u16()) << 16; }
    uint64_t u64() { return u32() | uint64_t(u32()) << 32; }
    bool chance(uint8_t in_256) { return u8() < in_256; }
    // A size: mostly one of the values type checks care about, sometimes anything.
    uint32_t size() {
        static constexpr uint32_t common[] = {0, 1, 2, 3, 4, 5, 8, 12, 16, 20, 24, 32, 40, 64, 128, 255, 256,
                                              4096, 8192, 65536, 1u << 20, 32768, 40000, 0x7fffffff, 0xffffffff};
        uint8_t k = u8();
        if (k < 224) return common[k % std::size(common)];
        return u32();
    }
    std::span<const uint8_t> bytes(size_t n) {
        size_t take = std::min(n, _d.size() - std::min(_pos, _d.size()));
        auto s = _d.subspan(std::min(_pos, _d.size()), take);
        _pos += take;
        return s;
    }

private:
    std::span<const uint8_t> _d;
    size_t _pos = 0;
};

void put32(std::vector<uint8_t>& v, uint32_t x) {
    for (int k = 0; k < 4; ++k) v.push_back(uint8_t(x >> (8 * k)));
}

bool returns_fd(int cmd) { return cmd == BPF_MAP_CREATE || cmd == BPF_PROG_LOAD || cmd == BPF_BTF_LOAD; }

// One input's server, its client fds, and the memory its attrs point at.
class session {
public:
    explicit session(reader& in) : _in(in) {
        control::server_options o;
        o.pin_root = testing_support::scratch_pin_root();
        o.verify = control::verify_mode::off;
        o.unsafe = true;
        o.default_engine = control::engine::interpreter;
        auto s = control::server::create(o);
        if (s) _srv = std::move(*s);
    }
    ~session() {
        for (int fd : _fds) close(fd);
    }
    bool ok() const { return _srv != nullptr; }

    // The helper objects commands refer to: an array, a hash and the seed BTF.
    void make_helpers() {
        _array = plain_map(BPF_MAP_TYPE_ARRAY, 4, 8, 4);
        _hash = plain_map(BPF_MAP_TYPE_HASH, 4, 8, 4);
        auto blob = seed_btf();
        attr a{};
        put<uint64_t>(a, offsetof(union bpf_attr, btf), keep(blob));
        put<uint32_t>(a, offsetof(union bpf_attr, btf_size), uint32_t(blob.size()));
        _btf = int(call(BPF_BTF_LOAD, a, kernel_attr_bytes));
    }

    void map_create();
    void prog_load();
    void btf_load();

    // The plain command the server must still answer: an ARRAY, one update, one lookup.
    attr_outcome still_serving() {
        attr_outcome out;
        if (!_overrun.empty()) return {false, _overrun};
        long fd = plain_map(BPF_MAP_TYPE_ARRAY, 4, 8, 2);
        if (fd < 0) {
            out.serving = false;
            out.report = "MAP_CREATE of a plain ARRAY failed: " + _srv->last_error();
            return out;
        }
        uint32_t key = 1;
        uint64_t value = 0x1122334455667788ull, back = 0;
        attr a{};
        put<uint32_t>(a, offsetof(union bpf_attr, map_fd), uint32_t(fd));
        put<uint64_t>(a, offsetof(union bpf_attr, key), reinterpret_cast<uint64_t>(&key));
        put<uint64_t>(a, offsetof(union bpf_attr, value), reinterpret_cast<uint64_t>(&value));
        long u = call(BPF_MAP_UPDATE_ELEM, a, kernel_attr_bytes);
        put<uint64_t>(a, offsetof(union bpf_attr, value), reinterpret_cast<uint64_t>(&back));
        long l = call(BPF_MAP_LOOKUP_ELEM, a, kernel_attr_bytes);
        if (u != 0 || l != 0 || back != value) {
            out.serving = false;
            out.report = "update/lookup on a plain ARRAY failed: " + _srv->last_error();
        }
        return out;
    }

private:
    using attr = std::array<uint8_t, 4096 + 64>;

    template <class T>
    static void put(attr& a, size_t off, T v) {
        std::memcpy(a.data() + off, &v, sizeof v);
    }
    // Keeps bytes alive for the input, followed by a guard the server must never write (its
    // writes go through process_vm_writev, which ASan does not see).
    uint64_t keep(std::vector<uint8_t> bytes) {
        size_t n = bytes.size();
        bytes.resize(n + guard_bytes, guard_value);
        _memory.push_back({std::move(bytes), n});
        return reinterpret_cast<uint64_t>(_memory.back().bytes.data());
    }
    long call(int cmd, attr& a, uint32_t size) {
        long r = _srv->bpf(cmd, reinterpret_cast<uint64_t>(a.data()), size);
        if (returns_fd(cmd) && r >= 0) _fds.push_back(int(r));
        for (const auto& m : _memory) {
            for (size_t k = m.size; k < m.bytes.size(); ++k) {
                if (m.bytes[k] != guard_value && _overrun.empty())
                    _overrun = fmt::format("bpf({}) wrote past the {}-byte buffer at {:#x} (offset {})", cmd, m.size,
                                           reinterpret_cast<uint64_t>(m.bytes.data()), k);
            }
        }
        return r;
    }
    long plain_map(uint32_t type, uint32_t key, uint32_t value, uint32_t max) {
        attr a{};
        put<uint32_t>(a, offsetof(union bpf_attr, map_type), type);
        put<uint32_t>(a, offsetof(union bpf_attr, key_size), key);
        put<uint32_t>(a, offsetof(union bpf_attr, value_size), value);
        put<uint32_t>(a, offsetof(union bpf_attr, max_entries), max);
        return call(BPF_MAP_CREATE, a, kernel_attr_bytes);
    }
    // An fd field: a helper object, a closed fd, stdin, or anything.
    uint32_t some_fd() {
        switch (_in.u8() % 8) {
        case 0: case 1: return uint32_t(_array);
        case 2: return uint32_t(_hash);
        case 3: case 4: return uint32_t(_btf);
        case 5: return closed_fd;
        case 6: return 0;
        default: return _in.u32();
        }
    }
    // A pointer to `n` bytes from the input (NULL or unmapped now and then); size capped.
    uint64_t some_buffer(size_t n, bool fill) {
        uint8_t k = _in.u8();
        if (k < 8) return 0;
        if (k < 16 || n > max_buffer) return unmapped;
        std::vector<uint8_t> b(n);
        if (fill) {
            auto src = _in.bytes(n);
            std::copy(src.begin(), src.end(), b.begin());
        }
        return keep(std::move(b));
    }
    // An object name: usually a valid one, sometimes 16 raw bytes.
    void name(attr& a, size_t off) {
        if (_in.chance(224)) {
            const char* names[] = {"", "m", "my_map", "a.b_c9", "0123456789abcde"};
            const char* n = names[_in.u8() % std::size(names)];
            std::memcpy(a.data() + off, n, std::strlen(n));
        } else {
            auto raw = _in.bytes(BPF_OBJ_NAME_LEN);
            std::copy(raw.begin(), raw.end(), a.begin() + long(off));
        }
    }
    // log_level, log_buf, log_size: a buffer as large as the size, or none, or unmapped.
    void log(attr& a, size_t level_off, size_t buf_off, size_t size_off) {
        if (_in.chance(160)) return;
        uint32_t level = _in.chance(200) ? 1u + _in.u8() % 3 : _in.u32();
        uint32_t size = _in.chance(220) ? _in.u16() % 8192 : _in.u32();
        put<uint32_t>(a, level_off, level);
        put<uint32_t>(a, size_off, size);
        put<uint64_t>(a, buf_off, some_buffer(size, false));
    }
    // The attr size and bytes past the fields: usually the kernel's union, sometimes anything.
    uint32_t attr_size(attr& a) {
        uint8_t k = _in.u8();
        if (k < 200) return kernel_attr_bytes;
        if (k < 220) return uint32_t(sizeof(union bpf_attr));
        uint32_t size = _in.u16() % uint32_t(a.size());
        if (_in.chance(64) && size) a[_in.u16() % size] = _in.u8();
        return size;
    }
    // After a MAP_CREATE that worked: one update, lookup, next key and delete on it.
    void exercise_map(long fd, uint32_t type, uint32_t key_size, uint32_t value_size) {
        bool percpu = type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
                      type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
        uint64_t vbytes = percpu ? ((uint64_t(value_size) + 7) & ~7ull) * maps::possible_cpus() : value_size;
        if (key_size > max_buffer || vbytes > max_buffer) return;
        std::vector<uint8_t> key_bytes(key_size);
        auto kb = _in.bytes(key_size);
        std::copy(kb.begin(), kb.end(), key_bytes.begin());
        uint64_t key = keep(std::move(key_bytes)), value = keep(std::vector<uint8_t>(vbytes)),
                 next = keep(std::vector<uint8_t>(key_size));
        attr a{};
        put<uint32_t>(a, offsetof(union bpf_attr, map_fd), uint32_t(fd));
        put<uint64_t>(a, offsetof(union bpf_attr, key), key_size ? key : 0);
        put<uint64_t>(a, offsetof(union bpf_attr, value), value);
        put<uint64_t>(a, offsetof(union bpf_attr, flags), _in.u8() % 4);
        call(BPF_MAP_UPDATE_ELEM, a, kernel_attr_bytes);
        put<uint64_t>(a, offsetof(union bpf_attr, flags), 0);
        call(BPF_MAP_LOOKUP_ELEM, a, kernel_attr_bytes);
        put<uint64_t>(a, offsetof(union bpf_attr, next_key), next);
        call(BPF_MAP_GET_NEXT_KEY, a, kernel_attr_bytes);
        call(BPF_MAP_DELETE_ELEM, a, kernel_attr_bytes);
        // next_key shares its offset with value: point it back at a value-sized buffer.
        put<uint64_t>(a, offsetof(union bpf_attr, value), value);
        call(BPF_MAP_LOOKUP_AND_DELETE_ELEM, a, kernel_attr_bytes);
    }

    reader& _in;
    std::unique_ptr<control::server> _srv;
    std::vector<int> _fds;
    struct buffer {
        std::vector<uint8_t> bytes;  // the buffer, then the guard
        size_t size;
    };
    static constexpr size_t guard_bytes = 64;
    static constexpr uint8_t guard_value = 0xa5;
    std::deque<buffer> _memory;
    std::string _overrun;
    int _array = -1, _hash = -1, _btf = -1;
};

void session::map_create() {
    attr a{};
    uint32_t type = _in.chance(232) ? _in.u8() % 33 : _in.u32();
    uint32_t key = _in.size(), value = _in.size(), max = _in.size();
    put<uint32_t>(a, offsetof(union bpf_attr, map_type), type);
    put<uint32_t>(a, offsetof(union bpf_attr, key_size), key);
    put<uint32_t>(a, offsetof(union bpf_attr, value_size), value);
    put<uint32_t>(a, offsetof(union bpf_attr, max_entries), max);
    uint32_t flags = 0;
    if (_in.chance(96)) flags = _in.chance(200) ? 1u << (_in.u8() % 20) : _in.u32();
    put<uint32_t>(a, offsetof(union bpf_attr, map_flags), flags);
    if (_in.chance(96)) put<uint32_t>(a, offsetof(union bpf_attr, inner_map_fd), some_fd());
    if (_in.chance(16)) put<uint32_t>(a, offsetof(union bpf_attr, numa_node), _in.u32());
    name(a, offsetof(union bpf_attr, map_name));
    if (_in.chance(8)) put<uint32_t>(a, offsetof(union bpf_attr, map_ifindex), _in.u8());
    if (_in.chance(64)) {
        put<uint32_t>(a, offsetof(union bpf_attr, btf_fd), some_fd());
        put<uint32_t>(a, offsetof(union bpf_attr, btf_key_type_id), _in.u8() % 20);
        put<uint32_t>(a, offsetof(union bpf_attr, btf_value_type_id), _in.u8() % 20);
    }
    if (_in.chance(8)) put<uint32_t>(a, offsetof(union bpf_attr, btf_vmlinux_value_type_id), _in.u32());
    if (_in.chance(32)) put<uint64_t>(a, offsetof(union bpf_attr, map_extra), _in.chance(128) ? _in.u8() % 20 : _in.u64());
    if (_in.chance(16)) {  // 6.18 fields: value_type_btf_obj_fd, map_token_fd, excl_prog_hash(_size)
        put<uint32_t>(a, 72, some_fd());
        put<uint32_t>(a, 76, some_fd());
        uint32_t hash_size = _in.chance(128) ? 32 : _in.size();
        put<uint64_t>(a, 80, _in.chance(128) ? some_buffer(hash_size, true) : 0);
        put<uint32_t>(a, 88, hash_size);
    }
    uint32_t size = attr_size(a);  // may rewrite a byte of the attr: read the shape back after it
    long fd = call(BPF_MAP_CREATE, a, size);
    auto field = [&](size_t off) {
        uint32_t v = 0;
        if (off + 4 <= size) std::memcpy(&v, a.data() + off, 4);
        return v;
    };
    if (fd >= 0)
        exercise_map(fd, field(offsetof(union bpf_attr, map_type)), field(offsetof(union bpf_attr, key_size)),
                     field(offsetof(union bpf_attr, value_size)));
}

void session::prog_load() {
    attr a{};
    uint32_t type = _in.chance(192) ? uint32_t(BPF_PROG_TYPE_XDP) : (_in.chance(200) ? _in.u8() % 34 : _in.u32());
    put<uint32_t>(a, offsetof(union bpf_attr, prog_type), type);
    // Instructions from the input, some turned into map references, often ending in an exit.
    size_t n = 1 + _in.u8() % 64;
    std::vector<bpf_insn> insns(n);
    for (auto& i : insns) {
        auto raw = _in.bytes(sizeof i);
        std::memcpy(&i, raw.data(), raw.size());
    }
    for (size_t pc = 0; pc + 1 < n; ++pc) {
        if (!_in.chance(24)) continue;
        static constexpr uint8_t pseudo[] = {BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE, BPF_PSEUDO_MAP_IDX, BPF_PSEUDO_MAP_IDX_VALUE};
        insns[pc] = bpf_insn{BPF_LD | BPF_DW | BPF_IMM, uint8_t(_in.u8() % 11), pseudo[_in.u8() % 4], 0,
                             int32_t(_in.chance(200) ? some_fd() : _in.u8() % 4)};
        insns[pc + 1] = bpf_insn{0, 0, 0, 0, int32_t(_in.u8() % 16)};
        ++pc;
    }
    if (_in.chance(192)) {
        insns.push_back(bpf_insn{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 2});
        insns.push_back(bpf_insn{BPF_JMP | BPF_EXIT, 0, 0, 0, 0});
    }
    std::vector<uint8_t> code(insns.size() * sizeof(bpf_insn));
    std::memcpy(code.data(), insns.data(), code.size());
    uint32_t insn_cnt = uint32_t(insns.size());
    uint64_t insns_ptr = keep(std::move(code));
    if (_in.chance(16)) {  // a count that does not match the buffer: only with an unmapped one
        insn_cnt = _in.size();
        insns_ptr = _in.chance(128) ? unmapped : 0;
    }
    put<uint32_t>(a, offsetof(union bpf_attr, insn_cnt), insn_cnt);
    put<uint64_t>(a, offsetof(union bpf_attr, insns), insns_ptr);
    static constexpr const char* licenses[] = {"GPL", "Dual BSD/GPL", "Proprietary", ""};
    const char* l = licenses[_in.u8() % 4];
    uint64_t license = _in.chance(240) ? keep(std::vector<uint8_t>(l, l + std::strlen(l) + 1)) : (_in.chance(128) ? unmapped : 0);
    if (_in.chance(8)) license = keep(std::vector<uint8_t>(300, 'A'));  // no NUL within what the kernel reads
    put<uint64_t>(a, offsetof(union bpf_attr, license), license);
    log(a, offsetof(union bpf_attr, log_level), offsetof(union bpf_attr, log_buf), offsetof(union bpf_attr, log_size));
    if (_in.chance(16)) put<uint32_t>(a, offsetof(union bpf_attr, kern_version), _in.u32());
    if (_in.chance(48)) put<uint32_t>(a, offsetof(union bpf_attr, prog_flags), _in.chance(200) ? 1u << (_in.u8() % 20) : _in.u32());
    name(a, offsetof(union bpf_attr, prog_name));
    if (_in.chance(8)) put<uint32_t>(a, offsetof(union bpf_attr, prog_ifindex), _in.u8());
    if (_in.chance(32)) put<uint32_t>(a, offsetof(union bpf_attr, expected_attach_type), _in.chance(200) ? _in.u8() % 60 : _in.u32());
    if (_in.chance(48)) {
        put<uint32_t>(a, offsetof(union bpf_attr, prog_btf_fd), some_fd());
        uint32_t frec = _in.size(), fcnt = _in.size(), lrec = _in.size(), lcnt = _in.size();
        put<uint32_t>(a, offsetof(union bpf_attr, func_info_rec_size), frec);
        put<uint32_t>(a, offsetof(union bpf_attr, func_info_cnt), fcnt);
        put<uint64_t>(a, offsetof(union bpf_attr, func_info), some_buffer(uint64_t(frec) * fcnt > max_buffer ? max_buffer + 1 : frec * fcnt, true));
        put<uint32_t>(a, offsetof(union bpf_attr, line_info_rec_size), lrec);
        put<uint32_t>(a, offsetof(union bpf_attr, line_info_cnt), lcnt);
        put<uint64_t>(a, offsetof(union bpf_attr, line_info), some_buffer(uint64_t(lrec) * lcnt > max_buffer ? max_buffer + 1 : lrec * lcnt, true));
    }
    if (_in.chance(16)) put<uint32_t>(a, offsetof(union bpf_attr, attach_btf_id), _in.u32());
    if (_in.chance(16)) put<uint32_t>(a, offsetof(union bpf_attr, attach_prog_fd), some_fd());
    uint32_t fd_array_cnt = _in.chance(24) ? _in.size() : 0;
    if (_in.chance(64) || fd_array_cnt) {
        // fd_array: the helper fds; as long as fd_array_cnt says, or unmapped when that is too long.
        size_t entries = std::max<size_t>(8, fd_array_cnt <= max_buffer / 4 ? fd_array_cnt : 0);
        std::vector<uint8_t> fds;
        for (size_t k = 0; k < entries; ++k) put32(fds, some_fd());
        put<uint64_t>(a, offsetof(union bpf_attr, fd_array), fd_array_cnt > max_buffer / 4 ? unmapped : keep(std::move(fds)));
    }
    if (_in.chance(16)) {  // core relocations: the server ignores them, they must stay harmless
        put<uint32_t>(a, offsetof(union bpf_attr, core_relo_cnt), _in.size());
        put<uint64_t>(a, offsetof(union bpf_attr, core_relos), unmapped);
        put<uint32_t>(a, offsetof(union bpf_attr, core_relo_rec_size), _in.size());
    }
    put<uint32_t>(a, 148, fd_array_cnt);
    if (_in.chance(8)) {  // 6.18: prog_token_fd, signature, signature_size, keyring_id
        put<uint32_t>(a, 144, some_fd());
        uint32_t sig_size = _in.size();
        put<uint64_t>(a, 152, some_buffer(sig_size, true));
        put<uint32_t>(a, 160, sig_size);
        put<uint32_t>(a, 164, _in.u32());
    }
    call(BPF_PROG_LOAD, a, attr_size(a));
}

void session::btf_load() {
    std::vector<uint8_t> blob;
    if (_in.chance(224)) {
        blob = seed_btf();
        // Header fields set outright, bytes patched, the end cut or extended.
        for (int k = _in.u8() % 3; k > 0; --k) {
            size_t field = 4 + 4 * (_in.u8() % 5);  // hdr_len, type_off, type_len, str_off, str_len
            uint32_t v = _in.chance(160) ? _in.u8() : _in.u32();
            std::memcpy(blob.data() + field, &v, 4);
        }
        for (int k = _in.u8() % 16; k > 0; --k) {
            size_t at = _in.u16() % blob.size();
            blob[at] = _in.chance(128) ? uint8_t(blob[at] ^ (1u << (_in.u8() % 8))) : _in.u8();
        }
        if (_in.chance(32)) blob.resize(_in.u16() % (blob.size() + 1));
        if (_in.chance(32)) {
            auto more = _in.bytes(_in.u8());
            blob.insert(blob.end(), more.begin(), more.end());
        }
    } else {
        auto raw = _in.bytes(_in.u16() % 4096);
        blob.assign(raw.begin(), raw.end());
    }
    attr a{};
    uint32_t size = uint32_t(blob.size());
    uint64_t ptr = keep(std::move(blob));
    if (_in.chance(16)) {  // a size that does not match: only with NULL or unmapped
        size = _in.size();
        ptr = _in.chance(128) ? unmapped : 0;
    }
    put<uint64_t>(a, offsetof(union bpf_attr, btf), ptr);
    put<uint32_t>(a, offsetof(union bpf_attr, btf_size), size);
    log(a, offsetof(union bpf_attr, btf_log_level), offsetof(union bpf_attr, btf_log_buf), offsetof(union bpf_attr, btf_log_size));
    if (_in.chance(16)) {  // 6.18: btf_flags, btf_token_fd
        put<uint32_t>(a, 32, _in.chance(128) ? 1u << 16 : _in.u32());
        put<uint32_t>(a, 36, some_fd());
    }
    long fd = call(BPF_BTF_LOAD, a, attr_size(a));
    if (fd >= 0 && _in.chance(128)) {
        // Use the accepted BTF for a map, as loaders do.
        attr m{};
        put<uint32_t>(m, offsetof(union bpf_attr, map_type), BPF_MAP_TYPE_ARRAY);
        put<uint32_t>(m, offsetof(union bpf_attr, key_size), 4);
        put<uint32_t>(m, offsetof(union bpf_attr, value_size), _in.size());
        put<uint32_t>(m, offsetof(union bpf_attr, max_entries), 1);
        put<uint32_t>(m, offsetof(union bpf_attr, btf_fd), uint32_t(fd));
        put<uint32_t>(m, offsetof(union bpf_attr, btf_key_type_id), _in.u8() % 24);
        put<uint32_t>(m, offsetof(union bpf_attr, btf_value_type_id), _in.u8() % 24);
        call(BPF_MAP_CREATE, m, kernel_attr_bytes);
    }
}

}  // namespace

std::vector<uint8_t> seed_btf() {
    // Strings first: each name's offset is where it starts.
    std::string strings(1, '\0');
    auto str = [&](const char* s) {
        uint32_t off = uint32_t(strings.size());
        strings += s;
        strings.push_back('\0');
        return off;
    };
    std::vector<uint8_t> t;
    auto type = [&](uint32_t name, uint32_t kind, uint32_t vlen, uint32_t size_or_type, bool kflag = false) {
        put32(t, name);
        put32(t, kind << 24 | vlen | (kflag ? 1u << 31 : 0));
        put32(t, size_or_type);
    };
    type(str("int"), BTF_KIND_INT, 0, 4);                       // [1]
    put32(t, BTF_INT_SIGNED << 24 | 32);
    type(str("u32"), BTF_KIND_INT, 0, 4);                       // [2]
    put32(t, 32);
    type(0, BTF_KIND_PTR, 0, 1);                                // [3] int *
    type(0, BTF_KIND_ARRAY, 0, 0);                              // [4] int[4]
    put32(t, 1), put32(t, 2), put32(t, 4);
    type(str("pair"), BTF_KIND_STRUCT, 2, 8);                   // [5] struct pair { int a; int b; }
    put32(t, str("a")), put32(t, 1), put32(t, 0);
    put32(t, str("b")), put32(t, 1), put32(t, 32);
    type(str("pair_t"), BTF_KIND_TYPEDEF, 0, 5);                // [6]
    type(0, BTF_KIND_CONST, 0, 6);                              // [7]
    type(0, BTF_KIND_FUNC_PROTO, 1, 1);                         // [8] int (*)(int *ctx)
    put32(t, str("ctx")), put32(t, 3);
    type(str("prog"), BTF_KIND_FUNC, 1, 8);                     // [9] global function
    type(str("counter"), BTF_KIND_VAR, 0, 1);                   // [10]
    put32(t, 1);
    type(str(".data"), BTF_KIND_DATASEC, 1, 4);                 // [11]
    put32(t, 10), put32(t, 0), put32(t, 4);
    type(str("colour"), BTF_KIND_ENUM, 2, 4);                   // [12]
    put32(t, str("RED")), put32(t, 0);
    put32(t, str("BLUE")), put32(t, 1);
    type(str("bpf_spin_lock"), BTF_KIND_STRUCT, 1, 4);          // [13]
    put32(t, str("val")), put32(t, 2), put32(t, 0);
    type(str("locked"), BTF_KIND_STRUCT, 2, 8);                 // [14] struct locked { lock; int v; }
    put32(t, str("lock")), put32(t, 13), put32(t, 0);
    put32(t, str("v")), put32(t, 1), put32(t, 32);
    type(str("float"), BTF_KIND_FLOAT, 0, 4);                   // [15]
    type(0, BTF_KIND_VOLATILE, 0, 2);                           // [16]

    btf_header h{};
    h.magic = BTF_MAGIC;
    h.version = BTF_VERSION;
    h.hdr_len = sizeof h;
    h.type_off = 0;
    h.type_len = uint32_t(t.size());
    h.str_off = h.type_len;
    h.str_len = uint32_t(strings.size());
    std::vector<uint8_t> blob(sizeof h + t.size() + strings.size());
    std::memcpy(blob.data(), &h, sizeof h);
    std::memcpy(blob.data() + sizeof h, t.data(), t.size());
    std::memcpy(blob.data() + sizeof h + t.size(), strings.data(), strings.size());
    return blob;
}

attr_outcome run_attr_input(std::span<const uint8_t> data) {
    reader in(data);
    session s(in);
    if (!s.ok()) return {false, "server::create failed"};
    s.make_helpers();
    int commands = 1 + in.u8() % 3;
    for (int k = 0; k < commands; ++k) {
        switch (in.u8() % 3) {
        case 0: s.map_create(); break;
        case 1: s.prog_load(); break;
        default: s.btf_load(); break;
        }
    }
    return s.still_serving();
}

}  // namespace xdprt::fuzz
