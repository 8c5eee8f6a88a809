// PROG_LOAD (with `verify: kernel`), PROG_TEST_RUN, BTF_LOAD and OBJ_GET_INFO_BY_FD.
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "control/objects.h"
#include "helpers/helpers.h"
#include "maps/qsbr.h"
#include "prog/prog.h"

namespace xdprt::control {

namespace {

// The reason in a verifier log that ends in a refusal: the kernel writes the instruction trace,
// then the reason (one or two lines), then "processed N insns ...". Those reason lines, or the
// log's tail when it has no such shape.
std::string verifier_reason(const std::string& log) {
    std::vector<std::string_view> lines;
    for (size_t at = 0; at < log.size();) {
        size_t end = log.find('\n', at);
        if (end == std::string::npos) end = log.size();
        if (end > at) lines.emplace_back(log.data() + at, end - at);
        at = end + 1;
    }
    while (!lines.empty() && lines.back().substr(0, 10) == "processed ") lines.pop_back();
    std::vector<std::string_view> reason;
    while (!lines.empty() && reason.size() < 3) {
        std::string_view l = lines.back();
        bool insn = !l.empty() && (l[0] == ';' || (l[0] >= '0' && l[0] <= '9' && l.find(": ") != std::string_view::npos));
        if (insn) break;
        reason.insert(reason.begin(), l);
        lines.pop_back();
    }
    if (reason.empty()) return log.size() > 400 ? log.substr(log.size() - 400) : log;
    std::string out;
    for (auto l : reason) out += (out.empty() ? "" : "; ") + std::string(l);
    if (!lines.empty()) out += fmt::format(" (at {})", lines.back());
    return out;
}

namespace op = isa::op;

uint64_t now_ns(clockid_t c = CLOCK_MONOTONIC) {
    timespec ts;
    clock_gettime(c, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// Kernel fds owned for one shadow load.
struct kernel_fds {
    std::vector<int> fds;
    ~kernel_fds() {
        for (int fd : fds) close(fd);
    }
    int keep(long fd) {
        fds.push_back(int(fd));
        return int(fd);
    }
};

// The kernel's fd for a BTF object of ours, loaded once per shadow load.
result<int> shadow_btf(const object& b, kernel_fds& fds, std::map<const object*, int>& btfs) {
    if (auto it = btfs.find(&b); it != btfs.end()) return it->second;
    union bpf_attr a;
    std::memset(&a, 0, sizeof a);
    a.btf = reinterpret_cast<uint64_t>(b.btf->raw().data());
    a.btf_size = uint32_t(b.btf->raw().size());
    long fd = kernel_bpf(BPF_BTF_LOAD, &a, sizeof a);
    if (fd < 0) return fail(int(-fd), "the kernel refused the BTF ({})", strerror(int(-fd)));
    return btfs[&b] = fds.keep(fd);
}

// A kernel map shaped like `o` for the verifier: same type, key, value and flags, one entry
// where the count does not matter; global data (arrays) keep their size and contents, since the
// verifier reads frozen read-only values. Arrays keep their entry count (up to a memory budget):
// the verifier drops the NULL branch of a lookup at a constant key below max_entries, and a
// shadow with fewer entries would make it walk paths the kernel proper never walks (Katran's
// feature build then exceeds the verifier's 1M-instruction budget).
uint32_t shadow_array_entries(const maps::spec& s) {
    constexpr uint64_t budget = 64ull << 20;  // a transient allocation in the kernel, per load
    uint64_t slot = (uint64_t(s.value_size) + 7) & ~7ull;
    if (s.type == BPF_MAP_TYPE_PERCPU_ARRAY) slot *= maps::possible_cpus();
    return uint32_t(std::clamp<uint64_t>(budget / std::max<uint64_t>(slot, 1), 1, s.max_entries));
}
result<int> shadow_map(const object& o, kernel_fds& fds, std::map<const object*, int>& done, std::map<const object*, int>& btfs) {
    if (auto it = done.find(&o); it != done.end()) return it->second;
    const maps::spec& s = o.map->spec();
    union bpf_attr a;
    std::memset(&a, 0, sizeof a);
    a.map_type = s.type;
    a.key_size = s.key_size;
    a.value_size = s.value_size;
    a.map_flags = s.flags & ~uint32_t(BPF_F_NUMA_NODE);
    a.map_extra = s.extra;
    bool keep_size = s.type == BPF_MAP_TYPE_ARRAY && s.max_entries <= 64;
    switch (s.type) {
    case BPF_MAP_TYPE_RINGBUF: a.max_entries = 4096; break;
    case BPF_MAP_TYPE_HASH: case BPF_MAP_TYPE_PERCPU_HASH: case BPF_MAP_TYPE_HASH_OF_MAPS:
        a.max_entries = 1;
        a.map_flags |= BPF_F_NO_PREALLOC;
        break;
    case BPF_MAP_TYPE_LPM_TRIE: a.max_entries = 1; break;
    case BPF_MAP_TYPE_ARRAY: case BPF_MAP_TYPE_PERCPU_ARRAY: a.max_entries = shadow_array_entries(s); break;
    default: a.max_entries = 1; break;
    }
    if (o.inner_template) {
        auto in = shadow_map(*o.inner_template, fds, done, btfs);
        if (!in) return in;
        a.inner_map_fd = uint32_t(*in);
    }
    if (o.map_btf && o.btf_value_type_id) {
        auto bfd = shadow_btf(*o.map_btf, fds, btfs);
        if (!bfd) return tl::unexpected(with_context(bfd.error(), fmt::format("map '{}'", o.name)));
        a.btf_fd = uint32_t(*bfd);
        a.btf_key_type_id = o.btf_key_type_id;
        a.btf_value_type_id = o.btf_value_type_id;
    }
    std::memcpy(a.map_name, o.name.data(), std::min<size_t>(o.name.size(), BPF_OBJ_NAME_LEN - 1));
    long fd = kernel_bpf(BPF_MAP_CREATE, &a, sizeof a);
    if (fd < 0) return fail(int(-fd), "map '{}': the kernel refused its shadow ({})", o.name, strerror(int(-fd)));
    int kfd = fds.keep(fd);
    if (keep_size) {
        std::vector<uint8_t> v(s.value_size);
        for (uint32_t k = 0; k < s.max_entries; ++k) {
            if (!o.map->ops().copy_out(*o.map, &k, v.data(), 0)) continue;
            union bpf_attr u;
            std::memset(&u, 0, sizeof u);
            u.map_fd = uint32_t(kfd);
            u.key = reinterpret_cast<uint64_t>(&k);
            u.value = reinterpret_cast<uint64_t>(v.data());
            kernel_bpf(BPF_MAP_UPDATE_ELEM, &u, sizeof u);
        }
        if (o.map->header().frozen.load(std::memory_order_acquire)) {
            union bpf_attr f;
            std::memset(&f, 0, sizeof f);
            f.map_fd = uint32_t(kfd);
            kernel_bpf(BPF_MAP_FREEZE, &f, sizeof f);
        }
    }
    done[&o] = kfd;
    return kfd;
}

}  // namespace

// ---- BTF_LOAD ------------------------------------------------------------------------------

// bpf_btf_load, then btf_parse: flags and token, the size, the log attributes, the blob. With
// `verify: kernel` the kernel parses the blob too (its log and its verdict are the answer).
long server::impl::btf_load(union bpf_attr& a, const client_memory& mem) {
    uint32_t flags = attr_field<uint32_t>(a, attr_off::btf_flags);
    if (flags & ~f_token_fd) return refuse(EINVAL, "btf_flags {:#x}", flags);
    if (flags & f_token_fd)
        if (auto ok = no_token(attr_field<int32_t>(a, attr_off::btf_token_fd)); !ok) return refuse(ok.error());
    if (a.btf_size > (16u << 20)) return refuse(E2BIG, "btf: {} bytes", a.btf_size);
    load_log log{a.btf_log_level, a.btf_log_buf, a.btf_log_size, {}, std::nullopt, &log_true_size};
    if (auto ok = log.check(); !ok) return refuse(ok.error());
    auto raw = mem.read_vec(a.btf, a.btf_size);
    if (!raw) return refuse(raw.error());
    auto b = btf::parse(*raw);
    if (!b) {
        log.text = b.error().message + "\n";
        log.flush(mem);
        return refuse(b.error());
    }
    if (opts.verify == verify_mode::kernel) {
        union bpf_attr ka;
        std::memset(&ka, 0, sizeof ka);
        ka.btf = reinterpret_cast<uint64_t>(raw->data());
        ka.btf_size = uint32_t(raw->size());
        std::vector<char> klog(log.buf ? std::min<uint32_t>(log.size, 16u << 20) : 0);
        if (log.buf) {
            ka.btf_log_level = log.level;
            ka.btf_log_buf = reinterpret_cast<uint64_t>(klog.data());
            ka.btf_log_size = uint32_t(klog.size());
        }
        long kfd = kernel_bpf(BPF_BTF_LOAD, &ka, sizeof ka);
        if (log.buf) {
            log.kernel_true_size = attr_field<uint32_t>(ka, attr_off::btf_log_true_size);
            klog.back() = 0;
            log.text = klog.data();
            log.flush(mem);
        }
        if (kfd < 0) return refuse(int(-kfd), "btf: the kernel refused it ({})", strerror(int(-kfd)));
        close(int(kfd));
    }
    auto handle = new_file("btf");
    if (!handle) return refuse(handle.error());
    auto o = add(obj_kind::btf, "", *handle);
    if (!o) return refuse(o.error());
    (*o)->btf = std::make_unique<btf>(std::move(*b));
    return new_fd(*o);
}

// ---- PROG_LOAD -----------------------------------------------------------------------------

namespace {

// 6.18 values past Debian 12's header.
constexpr uint32_t prog_type_netfilter = 32, attach_netfilter = 45, attach_unix_first = 49, attach_unix_last = 53;
constexpr uint32_t btf_max_type = 0xfffff;

// bpf_prog_load_check_attach: which expected_attach_type each program type may name.
bool attach_ok(uint32_t type, uint32_t eat, bool attach_btf, uint32_t btf_id, bool dst_prog) {
    bool btf_types = type == BPF_PROG_TYPE_TRACING || type == BPF_PROG_TYPE_LSM || type == BPF_PROG_TYPE_STRUCT_OPS ||
                     type == BPF_PROG_TYPE_EXT;
    if (btf_id && (btf_id > btf_max_type || (!attach_btf && !dst_prog) || !btf_types)) return false;
    if (attach_btf && (!btf_id || dst_prog)) return false;
    if (dst_prog && type != BPF_PROG_TYPE_TRACING && type != BPF_PROG_TYPE_EXT) return false;
    auto one_of = [eat](std::initializer_list<uint32_t> ok) { return std::find(ok.begin(), ok.end(), eat) != ok.end(); };
    switch (type) {
    case BPF_PROG_TYPE_CGROUP_SOCK:
        return one_of({BPF_CGROUP_INET_SOCK_CREATE, BPF_CGROUP_INET_SOCK_RELEASE, BPF_CGROUP_INET4_POST_BIND, BPF_CGROUP_INET6_POST_BIND});
    case BPF_PROG_TYPE_CGROUP_SOCK_ADDR:
        return one_of({BPF_CGROUP_INET4_BIND, BPF_CGROUP_INET6_BIND, BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT,
                       BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_INET6_GETPEERNAME, BPF_CGROUP_INET4_GETSOCKNAME,
                       BPF_CGROUP_INET6_GETSOCKNAME, BPF_CGROUP_UDP4_SENDMSG, BPF_CGROUP_UDP6_SENDMSG,
                       BPF_CGROUP_UDP4_RECVMSG, BPF_CGROUP_UDP6_RECVMSG}) ||
               (eat >= attach_unix_first && eat <= attach_unix_last);
    case BPF_PROG_TYPE_CGROUP_SKB: return one_of({BPF_CGROUP_INET_INGRESS, BPF_CGROUP_INET_EGRESS});
    case BPF_PROG_TYPE_CGROUP_SOCKOPT: return one_of({BPF_CGROUP_SETSOCKOPT, BPF_CGROUP_GETSOCKOPT});
    case BPF_PROG_TYPE_SK_LOOKUP: return eat == BPF_SK_LOOKUP;
    case BPF_PROG_TYPE_SK_REUSEPORT: return one_of({BPF_SK_REUSEPORT_SELECT, BPF_SK_REUSEPORT_SELECT_OR_MIGRATE});
    case prog_type_netfilter: return eat == attach_netfilter;
    case BPF_PROG_TYPE_SYSCALL: case BPF_PROG_TYPE_EXT: return eat == 0;
    default: return true;
    }
}

}  // namespace

// In bpf_prog_load's order: flags, token, insn_cnt, attach target, expected_attach_type, the
// instructions and license, signature, device, program type, name; then bpf_check's: the log
// attributes, fd_array, the instructions' map references, the verifier.
long server::impl::prog_load(union bpf_attr& a, const client_memory& mem) {
    constexpr uint32_t known_flags = BPF_F_STRICT_ALIGNMENT | BPF_F_ANY_ALIGNMENT | BPF_F_TEST_STATE_FREQ | BPF_F_SLEEPABLE |
                                     BPF_F_TEST_RND_HI32 | BPF_F_XDP_HAS_FRAGS | f_xdp_dev_bound_only |
                                     f_test_reg_invariants | f_token_fd;
    if (a.prog_flags & ~known_flags) return refuse(EINVAL, "prog_flags {:#x}", a.prog_flags);
    // bpf_prog_load_fixup_attach_type: two types default their attach type.
    if (a.prog_type == BPF_PROG_TYPE_CGROUP_SOCK && !a.expected_attach_type) a.expected_attach_type = BPF_CGROUP_INET_SOCK_CREATE;
    if (a.prog_type == BPF_PROG_TYPE_SK_REUSEPORT && !a.expected_attach_type) a.expected_attach_type = BPF_SK_REUSEPORT_SELECT;
    if (a.prog_flags & f_token_fd)
        if (auto ok = no_token(attr_field<int32_t>(a, attr_off::prog_token_fd)); !ok) return refuse(ok.error());
    if (a.insn_cnt == 0 || a.insn_cnt > isa::max_insns) return refuse(E2BIG, "insn_cnt {}", a.insn_cnt);
    bool dst_prog = false, attach_btf = false;
    if (a.attach_prog_fd) {
        // attach_prog_fd and attach_btf_obj_fd share the field: a program, else a (kernel) BTF.
        if (from_fd(int(a.attach_prog_fd), obj_kind::prog)) {
            dst_prog = true;
        } else if (from_fd(int(a.attach_btf_obj_fd), obj_kind::btf)) {
            return refuse(maps_enotsupp, "attach_btf_obj_fd: a program's BTF is not a kernel BTF");
        } else {
            return refuse(EINVAL, "attach_prog_fd {} is neither a program nor a BTF", a.attach_prog_fd);
        }
    } else if (a.attach_btf_id) {
        attach_btf = true;  // vmlinux BTF
    }
    if (!attach_ok(a.prog_type, a.expected_attach_type, attach_btf, a.attach_btf_id, dst_prog))
        return refuse(EINVAL, "prog type {} cannot have expected_attach_type {} (attach_btf_id {})", a.prog_type,
                      a.expected_attach_type, a.attach_btf_id);
    auto raw = mem.read_vec(a.insns, size_t(a.insn_cnt) * sizeof(isa::insn));
    if (!raw) return refuse(raw.error());
    // strncpy_from_user of at most 127 bytes: a longer license is cut, only a fault fails.
    std::string license_text;
    for (size_t k = 0; k < 127; ++k) {
        char c;
        if (auto ok = mem.read(a.license + k, &c, 1); !ok) return refuse(ok.error());
        if (!c) break;
        license_text.push_back(c);
    }
    auto license = &license_text;
    if (attr_field<uint64_t>(a, attr_off::signature)) {
        uint32_t sig_size = attr_field<uint32_t>(a, attr_off::signature_size);
        if (sig_size != 32) return refuse(EINVAL, "signature_size {}", sig_size);
        return refuse(EOPNOTSUPP, "signed programs are not supported by xdprt");
    }
    if (a.prog_ifindex) return refuse(EOPNOTSUPP, "device-bound programs (prog_ifindex {}) are not supported", a.prog_ifindex);
    if (a.prog_type == BPF_PROG_TYPE_UNSPEC || a.prog_type > prog_type_netfilter)
        return refuse(EINVAL, "unknown prog type {}", a.prog_type);
    auto name = object_name(a.prog_name);
    if (!name) return refuse(name.error());
    load_log log{a.log_level, a.log_buf, a.log_size, {}, std::nullopt, &log_true_size};
    if (auto ok = log.check(); !ok) return refuse(ok.error());
    std::string what = fmt::format("prog '{}'", *name);
    auto reject = [&](error e) {
        log.text += e.message + "\n";
        log.flush(mem);
        return refuse(with_context(std::move(e), what));
    };
    // process_fd_array: fd_array_cnt names maps (or BTFs) up front.
    uint32_t fd_array_cnt = attr_field<uint32_t>(a, attr_off::fd_array_cnt);
    if (fd_array_cnt) {
        if (fd_array_cnt >= 64) return reject(error{E2BIG, fmt::format("fd_array_cnt {}", fd_array_cnt)});
        for (uint32_t k = 0; k < fd_array_cnt; ++k) {
            int32_t fd;
            if (auto ok = mem.read(a.fd_array + uint64_t(k) * 4, &fd, 4); !ok) return reject(ok.error());
            if (!from_fd(fd, obj_kind::btf))
                if (auto m = from_fd(fd, obj_kind::map); !m) return reject(with_context(m.error(), fmt::format("fd_array[{}]", k)));
        }
    }

    auto p = std::make_unique<loaded_prog>();
    p->type = a.prog_type;
    p->expected_attach_type = a.expected_attach_type;
    p->flags = a.prog_flags;
    p->insns.resize(a.insn_cnt);
    std::memcpy(p->insns.data(), raw->data(), raw->size());
    p->load_time_ns = now_ns(CLOCK_BOOTTIME);
    bool xdp = a.prog_type == BPF_PROG_TYPE_XDP;
    if (xdp && (a.prog_flags & BPF_F_XDP_HAS_FRAGS))
        return reject(error{EOPNOTSUPP, "XDP_HAS_FRAGS: multi-buffer frames are not supported by xdprt"});

    // Maps: fd_array for MAP_IDX, fds in the instructions otherwise.
    std::vector<int32_t> fd_array;
    std::map<int32_t, object_ref> by_fd;
    auto map_of = [&](int32_t fd) -> result<object_ref> {
        if (auto it = by_fd.find(fd); it != by_fd.end()) return it->second;
        auto o = from_fd(fd, obj_kind::map);
        if (!o) return tl::unexpected(o.error());
        by_fd[fd] = *o;
        if (std::find(p->used_maps.begin(), p->used_maps.end(), *o) == p->used_maps.end()) p->used_maps.push_back(*o);
        return *o;
    };
    for (size_t pc = 0; pc < p->insns.size(); ++pc) {
        isa::insn& i = p->insns[pc];
        if (i.code != (op::ld | op::imm | op::dw) || pc + 1 >= p->insns.size()) continue;
        uint8_t src = i.src;
        if (src == op::pseudo_map_idx || src == op::pseudo_map_idx_value) {
            if (!a.fd_array) return reject(error{EPROTO, fmt::format("insn {}: map index without fd_array", pc)});
            if (fd_array_cnt && uint32_t(i.imm) >= fd_array_cnt)
                return reject(error{EINVAL, fmt::format("insn {}: map index {} beyond fd_array_cnt {}", pc, i.imm, fd_array_cnt)});
            int32_t fd;
            if (auto ok = mem.read(a.fd_array + uint64_t(uint32_t(i.imm)) * 4, &fd, 4); !ok) return reject(ok.error());
            i.src = src == op::pseudo_map_idx ? op::pseudo_map_fd : op::pseudo_map_value;
            i.imm = fd;
        }
        if (i.src == op::pseudo_map_fd || i.src == op::pseudo_map_value) {
            auto o = map_of(i.imm);
            if (!o) return reject(error{o.error().code, fmt::format("insn {}: fd {} is not pointing to valid bpf_map", pc, i.imm)});
            if (i.src == op::pseudo_map_value) {
                const maps::spec& s = (*o)->map->spec();
                uint32_t off = uint32_t(p->insns[pc + 1].imm);
                if (s.type != BPF_MAP_TYPE_ARRAY || s.max_entries != 1 || off >= s.value_size)
                    return reject(error{EINVAL, fmt::format("insn {}: invalid access to map value pointer, value_size={} off={}", pc, s.value_size, off)});
            }
        }
        ++pc;
    }
    // check_btf_info_early: BTF only matters with func_info or line_info; record sizes within the
    // kernel's bounds, at most one record per instruction (the kernel needs one per subprogram
    // and strictly increasing line offsets), so nothing here reads more than the program implies.
    if (a.func_info_cnt || a.line_info_cnt) {
        auto b = from_fd(int(a.prog_btf_fd), obj_kind::btf);
        if (!b) return reject(b.error());
        p->btf = *b;
        if (a.func_info_cnt) {
            uint32_t rec = a.func_info_rec_size;
            if (rec < 8 || rec > 252 || rec % 4) return reject(error{EINVAL, fmt::format("invalid func info rec size {}", rec)});
            if (a.func_info_cnt > a.insn_cnt)
                return reject(error{EINVAL, fmt::format("{} func_info records for {} insns", a.func_info_cnt, a.insn_cnt)});
            auto fi = mem.read_vec(a.func_info, size_t(a.func_info_cnt) * rec);
            if (!fi) return reject(fi.error());
            p->func_info = std::move(*fi);
            p->func_info_rec_size = rec;
        }
        if (a.line_info_cnt) {
            uint32_t rec = a.line_info_rec_size;
            if (rec < 16 || rec > 252 || rec % 4) return reject(error{EINVAL, fmt::format("invalid line info rec size {}", rec)});
            if (a.line_info_cnt > a.insn_cnt)
                return reject(error{EINVAL, fmt::format("{} line_info records for {} insns", a.line_info_cnt, a.insn_cnt)});
            auto li = mem.read_vec(a.line_info, size_t(a.line_info_cnt) * rec);
            if (!li) return reject(li.error());
            p->line_info = std::move(*li);
            p->line_info_rec_size = rec;
        }
    }

    // Structure, then the program type's fixups.
    auto layout = isa::check(p->insns);
    if (!layout) return reject(layout.error());
    std::vector<isa::insn> fixed = p->insns;
    if (xdp) {
        auto f = prog::fixup_xdp(p->insns, {.devmap = a.expected_attach_type == BPF_XDP_DEVMAP});
        if (!f) return reject(f.error());
        fixed = std::move(*f);
    }

    // Helpers xdprt does not have are refused before any verifier runs, in words libbpf's helper
    // probe understands (a kernel verifier would refuse the probe for other reasons first).
    if (xdp) {
        helpers::link_xdp(p->link);
        if (auto ok = isa::check(fixed, p->link.helper_check()); !ok) return reject(ok.error());
    }

    // Safety (DESIGN.md invariant 5).
    if (opts.verify == verify_mode::builtin) {
        verify_request r;
        r.name = *name;
        r.prog_type = a.prog_type;
        r.expected_attach_type = a.expected_attach_type;
        r.prog_flags = a.prog_flags;
        r.insns = p->insns;
        r.map = [&by_fd](int32_t fd) -> const maps::spec* {
            auto it = by_fd.find(fd);
            return it == by_fd.end() ? nullptr : &it->second->map->spec();
        };
        r.log_level = log.level;
        std::string vlog;
        if (auto ok = opts.builtin_verifier(r, vlog); !ok) {
            log.text = vlog + ok.error().message + "\n";
            log.flush(mem);
            return refuse(ok.error().code, "{}: the verifier refused it: {}", what, ok.error().message);
        }
        if (log.level) log.text = vlog;
    } else if (opts.verify == verify_mode::kernel) {
        kernel_fds fds;
        std::map<const object*, int> shadows, btfs;
        std::vector<isa::insn> k = p->insns;
        for (size_t pc = 0; pc + 1 < k.size(); ++pc) {
            if (k[pc].code != (op::ld | op::imm | op::dw)) continue;
            if (k[pc].src == op::pseudo_map_fd || k[pc].src == op::pseudo_map_value) {
                auto kfd = shadow_map(*by_fd[k[pc].imm], fds, shadows, btfs);
                if (!kfd) return reject(kfd.error());
                k[pc].imm = *kfd;
            }
            ++pc;
        }
        union bpf_attr ka;
        std::memset(&ka, 0, sizeof ka);
        ka.prog_type = a.prog_type;
        ka.insn_cnt = uint32_t(k.size());
        ka.insns = reinterpret_cast<uint64_t>(k.data());
        ka.license = reinterpret_cast<uint64_t>(license->c_str());
        ka.expected_attach_type = a.expected_attach_type;
        ka.prog_flags = a.prog_flags;
        // The client's log as it asked for it (so a short buffer gives the kernel's ENOSPC), else
        // none: a verifier that logs formats every state it walks, several times the cost of the
        // verification itself on a large program (Katran's feature build: 10 s against 2 s).
        // A refusal without the client's log is verified again with a private one, for the
        // reason in last_error.
        std::vector<char> klog(log.buf ? std::min<uint32_t>(log.size, 16u << 20) : 65536);
        if (log.buf) {
            ka.log_level = log.level;
            ka.log_buf = reinterpret_cast<uint64_t>(klog.data());
            ka.log_size = uint32_t(klog.size());
        }
        if (p->btf) {
            if (auto bfd = shadow_btf(*p->btf, fds, btfs)) {
                ka.prog_btf_fd = uint32_t(*bfd);
                ka.func_info_rec_size = p->func_info_rec_size;
                ka.func_info = reinterpret_cast<uint64_t>(p->func_info.data());
                ka.func_info_cnt = uint32_t(p->func_info.size() / std::max<uint32_t>(1, p->func_info_rec_size));
                ka.line_info_rec_size = p->line_info_rec_size;
                ka.line_info = reinterpret_cast<uint64_t>(p->line_info.data());
                ka.line_info_cnt = uint32_t(p->line_info.size() / std::max<uint32_t>(1, p->line_info_rec_size));
            }
        }
        long kfd = kernel_bpf(BPF_PROG_LOAD, &ka, sizeof ka);
        if (kfd < 0 && !log.buf) {
            ka.log_level = 1;
            ka.log_buf = reinterpret_cast<uint64_t>(klog.data());
            ka.log_size = uint32_t(klog.size());
            kfd = kernel_bpf(BPF_PROG_LOAD, &ka, sizeof ka);
        }
        if (log.buf) log.kernel_true_size = attr_field<uint32_t>(ka, attr_off::log_true_size);
        if (kfd < 0) {
            klog.back() = 0;
            log.text = klog.data();
            log.flush(mem);
            return refuse(int(-kfd), "{}: the kernel's verifier refused it: {}", what, verifier_reason(log.text));
        }
        fds.keep(kfd);
        if (log.level) log.text = klog.data();
    }

    if (xdp) {
        p->link.resolve_pseudo = [by_fd](uint8_t src, int32_t imm, int32_t next_imm) -> result<uint64_t> {
            auto it = by_fd.find(imm);
            if (it == by_fd.end()) return fail(EBADF, "fd {} is not a map", imm);
            maps::map& m = *it->second->map;
            if (src == op::pseudo_map_fd) return reinterpret_cast<uint64_t>(&m);
            return reinterpret_cast<uint64_t>(m.base()) + uint32_t(next_imm);
        };
        for (auto& m : p->used_maps)
            p->link.static_regions.push_back({reinterpret_cast<uint64_t>(m->map->base()), m->map->header().data_bytes,
                                              !(m->map->spec().flags & BPF_F_RDONLY_PROG)});
        p->link.dynamic_memory = maps::in_map_memory;
        // Lookups in the program's own maps skip the helper: arrays inline, other types call
        // their lookup directly (the maps outlive the program: it holds them).
        std::vector<maps::map*> own;
        for (auto& m : p->used_maps) own.push_back(m->map.get());
        auto find_own = [own](uint64_t addr) -> maps::map* {
            for (maps::map* m : own)
                if (reinterpret_cast<uint64_t>(m) == addr) return m;
            return nullptr;
        };
        p->link.inline_array = [find_own](uint64_t addr) -> std::optional<vm::linkage::inline_array_map> {
            maps::map* m = find_own(addr);
            if (!m || (m->type() != BPF_MAP_TYPE_ARRAY && m->type() != BPF_MAP_TYPE_PERCPU_ARRAY)) return std::nullopt;
            // array.cpp's layout: per CPU, a block of possible_cpus() slots per index.
            const bool per_cpu = m->type() == BPF_MAP_TYPE_PERCPU_ARRAY;
            return vm::linkage::inline_array_map{reinterpret_cast<uint64_t>(m->base()), m->spec().max_entries,
                                                 m->value_stride() * (per_cpu ? maps::possible_cpus() : 1),
                                                 per_cpu ? m->value_stride() : 0};
        };
        p->link.direct_lookup = [find_own](uint64_t addr) -> const void* {
            maps::map* m = find_own(addr);
            return m ? reinterpret_cast<const void*>(m->lookup()) : nullptr;
        };
        auto loaded = vm::load(*name, fixed, p->link);
        if (!loaded) return reject(loaded.error());
        p->program = std::move(*loaded);
#ifdef XDPRT_HAVE_JIT
        if (opts.default_engine == engine::jit) {
            auto image = jit::compile(p->program);
            if (!image) return reject(image.error());
            p->image = std::move(*image);
            p->native = p->image.entry();
            p->program.native = p->native;
        }
#endif
        p->runnable = true;
    }
    // The tag: the first 8 bytes of a hash of the instructions (the kernel uses SHA-1 over the
    // program with map fds zeroed; tools only compare tags of the same loader).
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint8_t byte : *raw) h = (h ^ byte) * 0x100000001b3ull;
    std::memcpy(p->tag.data(), &h, 8);

    log.flush(mem);
    auto handle = new_file("prog");
    if (!handle) return refuse(handle.error());
    auto o = add(obj_kind::prog, *name, *handle);
    if (!o) return refuse(o.error());
    (*o)->prog = std::move(p);
    return new_fd(*o);
}

// ---- PROG_TEST_RUN -------------------------------------------------------------------------

long server::impl::prog_test_run(union bpf_attr& a, uint64_t attr_addr, const client_memory& mem) {
    // bpf_prog_test_run: a context pointer and its size go together, checked before the fd.
    if (!a.test.ctx_size_in != !a.test.ctx_in || !a.test.ctx_size_out != !a.test.ctx_out)
        return refuse(EINVAL, "ctx_in/ctx_out and their sizes go together");
    auto o = from_fd(int(a.test.prog_fd), obj_kind::prog);
    if (!o) return refuse(o.error());
    loaded_prog& p = *(*o)->prog;
    if (!p.runnable) return refuse(maps_enotsupp, "prog '{}': xdprt runs XDP programs only", (*o)->name);
    if (a.test.flags & ~uint32_t(BPF_F_TEST_XDP_LIVE_FRAMES)) return refuse(EINVAL, "test flags {:#x}", a.test.flags);
    if (a.test.flags) return refuse(EOPNOTSUPP, "BPF_F_TEST_XDP_LIVE_FRAMES needs the dataplane");
    if (a.test.cpu || a.test.batch_size) return refuse(EINVAL, "cpu and batch_size are for live frames");
    if (p.expected_attach_type == BPF_XDP_DEVMAP || p.expected_attach_type == BPF_XDP_CPUMAP)
        return refuse(EINVAL, "devmap and cpumap programs cannot be test-run");
    constexpr uint32_t frame = 4096, headroom = helpers::xdp_headroom, tailroom = helpers::xdp_tailroom;
    uint32_t size = a.test.data_size_in;
    uint32_t meta = 0;
    xdp_md md_in{};
    if (a.test.ctx_in) {
        // bpf_ctx_init: at most a page, bytes past struct xdp_md zero (E2BIG).
        if (a.test.ctx_size_in > 4096) return refuse(E2BIG, "ctx_size_in {} above a page", a.test.ctx_size_in);
        std::vector<uint8_t> c(a.test.ctx_size_in);
        if (c.size() > sizeof md_in) {
            if (auto ok = mem.read(a.test.ctx_in + sizeof md_in, c.data() + sizeof md_in, c.size() - sizeof md_in); !ok)
                return refuse(ok.error());
            for (size_t k = sizeof md_in; k < c.size(); ++k)
                if (c[k]) return refuse(E2BIG, "ctx_in: non-zero bytes past struct xdp_md");
        }
        if (auto ok = mem.read(a.test.ctx_in, c.data(), std::min(c.size(), sizeof md_in)); !ok) return refuse(ok.error());
        std::memcpy(&md_in, c.data(), std::min(c.size(), sizeof md_in));
        if (md_in.data_meta || md_in.data_end != size || md_in.data > md_in.data_end || (md_in.data & 3) || md_in.data > 32 ||
            md_in.egress_ifindex)
            return refuse(EINVAL, "ctx_in: data {} data_end {} for {} bytes", md_in.data, md_in.data_end, size);
        meta = md_in.data;
    }
    if (size < 14 /* ETH_HLEN */ || size > frame - headroom - tailroom) return refuse(EINVAL, "data_size_in {}", size);
    std::vector<uint8_t> in(size);
    if (auto ok = mem.read(a.test.data_in, in.data(), size); !ok) return refuse(ok.error());

    alignas(64) static thread_local uint8_t buffer[frame];
    std::memset(buffer, 0, sizeof buffer);
    prog::xdp_buff x{};
    x.data_hard_start = buffer;
    x.data_meta = buffer + headroom;
    x.data = x.data_meta + meta;
    std::memcpy(x.data_meta, in.data(), size);
    x.data_end = x.data_meta + size;
    x.data_hard_end = buffer + frame - tailroom;
    x.ingress_ifindex = md_in.ingress_ifindex;
    x.rx_queue_index = md_in.rx_queue_index;

    // The control thread runs programs as a qsbr reader of its own, online only while it runs.
    static thread_local std::optional<maps::qsbr::reader> reader;
    if (!reader) {
        auto r = maps::qsbr::process().attach();
        if (!r) return refuse(r.error());
        reader.emplace(std::move(*r));
    }
    // The kernel runs a test on the caller's CPU: per-CPU slots and bpf_get_smp_processor_id
    // follow the CPU this thread is on (a caller that pins itself gets the same slots as there).
    int cpu = sched_getcpu();
    maps::this_cpu = cpu >= 0 && uint32_t(cpu) < maps::possible_cpus() ? uint32_t(cpu) : 0;
    uint32_t repeat = std::max<uint32_t>(1, a.test.repeat);
    uint64_t retval = 0;
    uint64_t t0 = now_ns();
    {
        maps::qsbr::online_scope online(*reader);
        for (uint32_t k = 0; k < repeat; ++k) {
            // Between runs the program holds no map pointer: a quiescent point, so elements a run
            // replaced are reused within one long test run (the kernel's preallocated hash
            // reuses them at once; without this a HASH update loop ran out of spare elements
            // and answered ENOMEM where the kernel succeeds).
            if (k) reader->quiescent();
            if (p.native) {
                vm::run_state rs;
                rs.cpu = maps::this_cpu;
                retval = p.native(reinterpret_cast<uint64_t>(&x), 0, &rs);
            } else {
                vm::region regions[] = {{reinterpret_cast<uint64_t>(buffer), frame, true},
                                        {reinterpret_cast<uint64_t>(&x), sizeof x, false}};
                auto r = vm::interpret(p.program, reinterpret_cast<uint64_t>(&x), 0, regions);
                if (!r) return refuse(with_context(r.error(), fmt::format("prog '{}'", (*o)->name)));
                retval = *r;
            }
        }
    }
    uint64_t elapsed = now_ns() - t0;
    uint32_t duration = uint32_t(std::min<uint64_t>(elapsed / repeat, UINT32_MAX));

    // bpf_test_finish: the frame from data_meta, as much as fits; ENOSPC when it did not.
    uint32_t out_size = uint32_t(x.data_end - x.data_meta);
    long status = 0;
    if (a.test.data_out) {
        uint32_t n = out_size;
        if (a.test.data_size_out && a.test.data_size_out < n) {
            n = a.test.data_size_out;
            status = -ENOSPC;
        }
        if (auto ok = mem.write(a.test.data_out, x.data_meta, n); !ok) return refuse(ok.error());
    }
    auto put = [&](size_t off, uint32_t v) { return mem.write(attr_addr + off, &v, 4); };
    if (auto ok = put(offsetof(union bpf_attr, test.data_size_out), out_size); !ok) return refuse(ok.error());
    (void)put(offsetof(union bpf_attr, test.retval), uint32_t(retval));
    (void)put(offsetof(union bpf_attr, test.duration), duration);
    if (a.test.ctx_size_out && a.test.ctx_out) {
        xdp_md md_out{};
        md_out.data = uint32_t(x.data - x.data_meta);
        md_out.data_end = uint32_t(x.data_end - x.data_meta);
        md_out.ingress_ifindex = md_in.ingress_ifindex;
        md_out.rx_queue_index = md_in.rx_queue_index;
        uint32_t n = std::min<uint32_t>(a.test.ctx_size_out, sizeof md_out);
        if (auto ok = mem.write(a.test.ctx_out, &md_out, n); !ok) return refuse(ok.error());
        (void)put(offsetof(union bpf_attr, test.ctx_size_out), n);
    }
    if (status) return refuse(ENOSPC, "data_out of {} bytes for a {}-byte frame", a.test.data_size_out, out_size);
    return 0;
}

// ---- OBJ_GET_INFO_BY_FD --------------------------------------------------------------------

long server::impl::obj_get_info(union bpf_attr& a, uint64_t attr_addr, const client_memory& mem) {
    int fd = int(a.info.bpf_fd);
    object_ref o;
    for (obj_kind k : {obj_kind::map, obj_kind::prog, obj_kind::btf, obj_kind::link}) {
        if (auto r = from_fd(fd, k)) {
            o = *r;
            break;
        } else if (r.error().code == EBADF) {
            return refuse(EBADFD, "fd {} is not open", fd);  // bpf_obj_get_info_by_fd says EBADFD
        }
    }
    if (!o) return refuse(EINVAL, "fd {} is not a bpf object of xdprt", fd);
    uint32_t user_len = a.info.info_len;
    // The size of each info struct on 6.18 (measured there: the header's struct may differ);
    // bytes the caller passes past it must be zero (bpf_check_uarg_tail_zero).
    size_t kernel_len = o->kind == obj_kind::map ? 100 : o->kind == obj_kind::prog ? 228 : o->kind == obj_kind::btf ? 32 : 0;
    if (user_len > 4096) return refuse(E2BIG, "info_len {} above a page", user_len);
    if (user_len > kernel_len && kernel_len) {
        auto tail = mem.read_vec(a.info.info + kernel_len, user_len - kernel_len);
        if (!tail) return refuse(tail.error());
        for (uint8_t b : *tail)
            if (b) return refuse(E2BIG, "info: non-zero bytes past the {} bytes of the kernel's struct", kernel_len);
    }
    std::vector<uint8_t> buf(std::max<size_t>(user_len, 256));
    size_t ours = 0;
    switch (o->kind) {
    case obj_kind::map: {
        // 6.18 appends `__u64 hash; __u32 hash_size;` (the map's SHA-256, which xdprt does not compute).
        std::vector<uint8_t> in(kernel_len);
        if (auto ok = mem.read(a.info.info, in.data(), std::min<size_t>(user_len, kernel_len)); !ok) return refuse(ok.error());
        uint64_t hash;
        uint32_t hash_size;
        std::memcpy(&hash, in.data() + 88, 8);
        std::memcpy(&hash_size, in.data() + 96, 4);
        if (hash && hash_size != 32) return refuse(EINVAL, "map info: hash_size {}", hash_size);
        if (hash) return refuse(EOPNOTSUPP, "map info: xdprt does not hash maps");
        if (hash_size) return refuse(EINVAL, "map info: hash_size without hash");
        bpf_map_info info{};
        const maps::spec& s = o->map->spec();
        info.type = s.type;
        info.id = o->id;
        info.key_size = s.key_size;
        info.value_size = s.value_size;
        info.max_entries = s.max_entries;
        info.map_flags = s.flags;
        std::memcpy(info.name, o->name.data(), std::min<size_t>(o->name.size(), BPF_OBJ_NAME_LEN - 1));
        info.btf_id = o->map_btf ? o->map_btf->id : 0;
        info.btf_key_type_id = o->btf_key_type_id;
        info.btf_value_type_id = o->btf_value_type_id;
        info.map_extra = s.extra;
        ours = kernel_len;  // the hash fields past the header's struct stay zero
        std::memcpy(buf.data(), &info, std::min(sizeof info, buf.size()));
        break;
    }
    case obj_kind::prog: {
        bpf_prog_info in{};
        if (auto ok = mem.read(a.info.info, &in, std::min<size_t>(user_len, sizeof in)); !ok) return refuse(ok.error());
        const loaded_prog& p = *o->prog;
        bpf_prog_info info{};
        info.type = p.type;
        info.id = o->id;
        std::memcpy(info.tag, p.tag.data(), 8);
        std::memcpy(info.name, o->name.data(), std::min<size_t>(o->name.size(), BPF_OBJ_NAME_LEN - 1));
        info.load_time = p.load_time_ns;
        info.created_by_uid = getuid();
        info.nr_map_ids = uint32_t(p.used_maps.size());
        if (user_len >= offsetof(bpf_prog_info, map_ids) + 8 && in.map_ids && in.nr_map_ids) {
            std::vector<uint32_t> ids;
            for (size_t k = 0; k < p.used_maps.size() && k < in.nr_map_ids; ++k) ids.push_back(p.used_maps[k]->id);
            if (auto ok = mem.write(in.map_ids, ids.data(), ids.size() * 4); !ok) return refuse(ok.error());
            info.map_ids = in.map_ids;
        }
        info.xlated_prog_len = uint32_t(p.insns.size() * sizeof(isa::insn));
        if (in.xlated_prog_insns && in.xlated_prog_len) {
            uint32_t n = std::min(in.xlated_prog_len, info.xlated_prog_len);
            if (auto ok = mem.write(in.xlated_prog_insns, p.insns.data(), n); !ok) return refuse(ok.error());
            info.xlated_prog_insns = in.xlated_prog_insns;
        }
#ifdef XDPRT_HAVE_JIT
        // The LLVM JIT's image; 0 for the interpreter, as the kernel's without its JIT.
        const auto code = p.image.code();
        info.jited_prog_len = uint32_t(code.size());
        if (user_len >= offsetof(bpf_prog_info, jited_prog_insns) + 8 && in.jited_prog_insns && in.jited_prog_len) {
            uint32_t n = std::min(in.jited_prog_len, info.jited_prog_len);
            if (auto ok = mem.write(in.jited_prog_insns, code.data(), n); !ok) return refuse(ok.error());
            info.jited_prog_insns = in.jited_prog_insns;
        }
#endif
        info.btf_id = p.btf ? p.btf->id : 0;
        // run_time_ns and run_cnt stay 0, as the kernel's without kernel.bpf_stats_enabled.
        info.gpl_compatible = 1;
        ours = std::min(sizeof info, kernel_len);
        std::memcpy(buf.data(), &info, std::min<size_t>(ours, buf.size()));
        break;
    }
    case obj_kind::btf: {
        bpf_btf_info in{};
        if (auto ok = mem.read(a.info.info, &in, std::min<size_t>(user_len, sizeof in)); !ok) return refuse(ok.error());
        bpf_btf_info info{};
        info.id = o->id;
        info.btf_size = uint32_t(o->btf->raw().size());
        if (in.btf && in.btf_size) {
            uint32_t n = std::min(in.btf_size, info.btf_size);
            if (auto ok = mem.write(in.btf, o->btf->raw().data(), n); !ok) return refuse(ok.error());
            info.btf = in.btf;
        }
        ours = sizeof info;
        std::memcpy(buf.data(), &info, std::min<size_t>(ours, buf.size()));
        break;
    }
    case obj_kind::link: {
        bpf_link_info info{};
        const link_state& l = *o->link;
        info.type = l.type;
        info.id = o->id;
        info.prog_id = l.prog->id;
        info.xdp.ifindex = l.ifindex;
        ours = sizeof info;
        std::memcpy(buf.data(), &info, std::min<size_t>(ours, buf.size()));
        break;
    }
    case obj_kind::perf_event:  // from_fd never finds one: perf events are not bpf objects
        return refuse(EINVAL, "fd {} is a perf event, not a bpf object", fd);
    }
    uint32_t n = uint32_t(std::min<size_t>(user_len, ours));
    if (auto ok = mem.write(a.info.info, buf.data(), n); !ok) return refuse(ok.error());
    if (auto ok = mem.write(attr_addr + offsetof(union bpf_attr, info.info_len), &n, 4); !ok) return refuse(ok.error());
    return 0;
}

}  // namespace xdprt::control
