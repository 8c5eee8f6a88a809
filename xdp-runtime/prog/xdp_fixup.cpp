// The XDP load-time fixups of prog.h: a forward dataflow over every function that tracks which
// registers and stack slots may hold the context or a callback, then the rewrites.
#include <cerrno>
#include <map>

#include "prog/prog.h"

namespace xdprt::prog {

namespace {

using isa::insn;
namespace op = isa::op;

constexpr int32_t helper_loop = 181, helper_for_each = 164;

// What a register or stack slot may hold: a set of kinds (joined over paths) and, for a callback,
// which function (-1 none yet, -2 more than one).
enum : uint8_t { k_ctx = 1, k_ctx_modified = 2, k_func = 4, k_other = 8 };
struct aval {
    uint8_t kinds = 0;
    int32_t func = -1;
    bool operator==(const aval&) const = default;
};
aval other() { return {k_other, -1}; }

aval join(aval a, aval b) {
    aval r{uint8_t(a.kinds | b.kinds), a.func};
    if (b.func != -1 && a.func != b.func) r.func = a.func == -1 ? b.func : -2;
    return r;
}

constexpr int stack_slots = isa::stack_size / 8;

struct state {
    bool reached = false;
    aval reg[11];
    uint8_t slot[stack_slots] = {};  // kinds only: a callback spilled to the stack loses its identity

    bool merge(const state& o) {
        if (!reached) {
            *this = o;
            return true;
        }
        bool changed = false;
        for (int r = 0; r < 11; ++r) {
            aval j = join(reg[r], o.reg[r]);
            if (!(j == reg[r])) reg[r] = j, changed = true;
        }
        for (int s = 0; s < stack_slots; ++s) {
            uint8_t j = slot[s] | o.slot[s];
            if (j != slot[s]) slot[s] = j, changed = true;
        }
        return changed;
    }
};

int slot_of(int16_t off) {  // an 8-byte aligned slot below r10, or -1
    if (off >= 0 || off < -isa::stack_size || (off % 8) != 0) return -1;
    return (-off) / 8 - 1;
}

struct analysis {
    std::span<const insn> p;
    std::vector<state> at;
    std::vector<uint32_t> work;

    void flow(uint32_t pc, const state& s) {
        if (pc >= p.size()) return;
        if (at[pc].merge(s)) work.push_back(pc);
    }

    static state entry_of_callee(const state& caller) {
        state e;
        e.reached = true;
        for (int r = 1; r <= 5; ++r) e.reg[r] = caller.reg[r];
        return e;
    }

    void step(uint32_t pc) {
        const insn& i = p[pc];
        const isa::opcode_info& oi = isa::info(i.code);
        state s = at[pc];
        auto after_call = [&] {
            for (int r = 0; r <= 5; ++r) s.reg[r] = other();
        };
        switch (oi.k) {
        case isa::kind::alu:
            if (op::alu_op(i.code) == op::mov && oi.is64 && i.off == 0) {
                s.reg[i.dst] = oi.reg_src ? s.reg[i.src] : other();
            } else if (op::alu_op(i.code) == op::mov) {
                s.reg[i.dst] = (oi.reg_src && (s.reg[i.src].kinds & (k_ctx | k_ctx_modified))) ? aval{k_ctx_modified, -1} : other();
            } else {
                aval& d = s.reg[i.dst];
                d = (d.kinds & (k_ctx | k_ctx_modified)) ? aval{k_ctx_modified, -1} : other();
            }
            break;
        case isa::kind::neg: case isa::kind::endian: case isa::kind::bswap: {
            aval& d = s.reg[i.dst];
            d = (d.kinds & (k_ctx | k_ctx_modified)) ? aval{k_ctx_modified, -1} : other();
            break;
        }
        case isa::kind::ld_imm64:
            s.reg[i.dst] = i.src == op::pseudo_func ? aval{k_func, int32_t(pc) + i.imm + 1} : other();
            flow(pc + 2, s);
            return;
        case isa::kind::load: case isa::kind::load_sx: {
            int sl = i.src == 10 && oi.bytes == 8 && oi.k == isa::kind::load ? slot_of(i.off) : -1;
            if (sl >= 0) s.reg[i.dst] = aval{s.slot[sl] ? s.slot[sl] : uint8_t(k_other), (s.slot[sl] & k_func) ? -2 : -1};
            else s.reg[i.dst] = other();
            break;
        }
        case isa::kind::store_imm: case isa::kind::store_reg: case isa::kind::atomic:
            if (i.dst == 10) {
                int sl = slot_of(int16_t(i.off & ~7));
                bool whole = oi.bytes == 8 && (i.off % 8) == 0 && oi.k == isa::kind::store_reg;
                if (sl >= 0) s.slot[sl] = whole ? s.reg[i.src].kinds : uint8_t(k_other);
            }
            if (oi.k == isa::kind::atomic) {
                if (i.imm == op::cmpxchg) s.reg[0] = other();
                else if (i.imm & op::fetch) s.reg[i.src] = other();
            }
            break;
        case isa::kind::jcond:
            flow(pc + 1, s);
            flow(pc + 1 + i.off, s);
            return;
        case isa::kind::ja:
            flow(pc + 1 + i.off, s);
            return;
        case isa::kind::ja32:
            flow(pc + 1 + i.imm, s);
            return;
        case isa::kind::exit:
            return;
        case isa::kind::call:
            if (i.src == op::call_local) {
                flow(pc + 1 + i.imm, entry_of_callee(s));
            } else if (i.src == op::call_helper && (i.imm == helper_loop || i.imm == helper_for_each) &&
                       s.reg[2].func >= 0 && s.reg[2].kinds == k_func) {
                state cb;
                cb.reached = true;
                for (int r = 1; r <= 5; ++r) cb.reg[r] = other();
                cb.reg[i.imm == helper_loop ? 2 : 4] = s.reg[3];
                flow(uint32_t(s.reg[2].func), cb);
            }
            after_call();
            break;
        case isa::kind::callx:
            after_call();
            break;
        case isa::kind::invalid:
            return;
        }
        flow(pc + 1, s);
    }
};

// xdp_md field -> native xdp_buff field (offset, load size).
struct ctx_field {
    int16_t native_off;
    uint8_t size;
};

result<ctx_field> map_ctx_field(int16_t off, uint8_t bytes, bool devmap) {
    if (bytes == 4) {
        switch (off) {
        case 0: return ctx_field{int16_t(offsetof(xdp_buff, data)), op::dw};
        case 4: return ctx_field{int16_t(offsetof(xdp_buff, data_end)), op::dw};
        case 8: return ctx_field{int16_t(offsetof(xdp_buff, data_meta)), op::dw};
        case 12: return ctx_field{int16_t(offsetof(xdp_buff, ingress_ifindex)), op::w};
        case 16: return ctx_field{int16_t(offsetof(xdp_buff, rx_queue_index)), op::w};
        case 20:
            if (devmap) return ctx_field{int16_t(offsetof(xdp_buff, egress_ifindex)), op::w};
            break;
        default: break;
        }
    }
    return fail(EACCES, "invalid bpf_context access off={} size={}", off, bytes);
}

struct trampoline_key {
    int32_t helper;
    int32_t callback;
    auto operator<=>(const trampoline_key&) const = default;
};

insn mk(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    insn i;
    i.code = code;
    i.dst = dst & 0xf;
    i.src = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}

// bpf_loop(nr, cb, ctx, flags): calls cb(i, ctx) for i < nr until it returns non-zero; returns the
// number of calls. The kernel's limits: flags must be 0 (EINVAL), nr at most 1 << 23 (E2BIG).
void emit_loop(std::vector<insn>& out, int32_t callback) {
    size_t start = out.size();
    std::vector<insn> c = {
        mk(op::jmp | op::jne | op::k, 4, 0, 13, 0),            // 0: flags != 0 -> 14
        mk(op::alu | op::mov | op::x, 1, 1, 0, 0),             // 1: nr is a u32
        mk(op::jmp | op::jgt | op::k, 1, 0, 13, 1 << 23),      // 2: nr > max -> 16
        mk(op::alu64 | op::mov | op::x, 6, 1, 0, 0),           // 3: r6 = nr
        mk(op::alu64 | op::mov | op::x, 7, 3, 0, 0),           // 4: r7 = ctx
        mk(op::alu64 | op::mov | op::k, 8, 0, 0, 0),           // 5: r8 = i = 0
        mk(op::jmp | op::jge | op::x, 8, 6, 5, 0),             // 6: i >= nr -> 12
        mk(op::alu64 | op::mov | op::x, 1, 8, 0, 0),           // 7: r1 = i
        mk(op::alu64 | op::mov | op::x, 2, 7, 0, 0),           // 8: r2 = ctx
        mk(op::jmp | op::call, 0, op::call_local, 0, 0),       // 9: cb(i, ctx)
        mk(op::alu64 | op::add | op::k, 8, 0, 0, 1),           // 10: ++i
        mk(op::jmp | op::jeq | op::k, 0, 0, -6, 0),            // 11: continue -> 6
        mk(op::alu64 | op::mov | op::x, 0, 8, 0, 0),           // 12: r0 = calls
        mk(op::jmp | op::exit, 0, 0, 0, 0),                    // 13
        mk(op::alu64 | op::mov | op::k, 0, 0, 0, -EINVAL),     // 14
        mk(op::jmp | op::exit, 0, 0, 0, 0),                    // 15
        mk(op::alu64 | op::mov | op::k, 0, 0, 0, -E2BIG),      // 16
        mk(op::jmp | op::exit, 0, 0, 0, 0),                    // 17
    };
    c[9].imm = int32_t(callback) - int32_t(start + 9) - 1;
    out.insert(out.end(), c.begin(), c.end());
}

// bpf_for_each_map_elem(map, cb, ctx, flags): calls cb(map, key, value, ctx) per element until it
// returns non-zero; returns the number of calls. Elements come from helper_map_iterate, which keeps
// its cursor at r10-8 and writes the key and value pointers to r10-16 and r10-24; an array's key
// (its index) lives in the scratch area from r10-32 down.
void emit_for_each(std::vector<insn>& out, int32_t callback) {
    size_t start = out.size();
    auto call_at = [&](size_t pc) { return int32_t(callback) - int32_t(pc) - 1; };
    std::vector<insn> c = {
        mk(op::jmp | op::jne | op::k, 4, 0, 0, 0),             // 0: flags != 0 -> einval
        mk(op::alu64 | op::mov | op::x, 6, 1, 0, 0),           // 1: r6 = map
        mk(op::alu64 | op::mov | op::x, 7, 3, 0, 0),           // 2: r7 = ctx
        mk(op::alu64 | op::mov | op::k, 9, 0, 0, 0),           // 3: r9 = calls
        mk(op::st | op::mem | op::dw, 10, 0, -8, 0),           // 4: cursor = 0
        mk(op::alu64 | op::mov | op::x, 1, 6, 0, 0),           // 5: loop: r1 = map
        mk(op::alu64 | op::mov | op::x, 2, 10, 0, 0),          // 6
        mk(op::alu64 | op::add | op::k, 2, 0, 0, -8),          // 7: r2 = &cursor
        mk(op::alu64 | op::mov | op::x, 3, 10, 0, 0),          // 8
        mk(op::alu64 | op::add | op::k, 3, 0, 0, -16),         // 9: r3 = &key
        mk(op::alu64 | op::mov | op::x, 4, 10, 0, 0),          // 10
        mk(op::alu64 | op::add | op::k, 4, 0, 0, -24),         // 11: r4 = &value
        mk(op::alu64 | op::mov | op::x, 5, 10, 0, 0),          // 12
        mk(op::alu64 | op::add | op::k, 5, 0, 0, -isa::stack_size),  // 13: r5 = scratch
        mk(op::jmp | op::call, 0, op::call_helper, 0, helper_map_iterate),  // 14
        mk(op::jmp | op::jeq | op::k, 0, 0, 0, 0),             // 15: none left -> done
        mk(op::alu64 | op::add | op::k, 9, 0, 0, 1),           // 16
        mk(op::alu64 | op::mov | op::x, 1, 6, 0, 0),           // 17
        mk(op::ldx | op::mem | op::dw, 2, 10, -16, 0),         // 18
        mk(op::ldx | op::mem | op::dw, 3, 10, -24, 0),         // 19
        mk(op::alu64 | op::mov | op::x, 4, 7, 0, 0),           // 20
        mk(op::jmp | op::call, 0, op::call_local, 0, 0),       // 21: cb
        mk(op::jmp | op::jeq | op::k, 0, 0, 0, 0),             // 22: r0 == 0 -> loop
        mk(op::alu64 | op::mov | op::x, 0, 9, 0, 0),           // 23: done
        mk(op::jmp | op::exit, 0, 0, 0, 0),                    // 24
        mk(op::alu64 | op::mov | op::k, 0, 0, 0, -EINVAL),     // 25: einval
        mk(op::jmp | op::exit, 0, 0, 0, 0),                    // 26
    };
    c[0].off = 25 - 1;
    c[15].off = 23 - 16;
    c[22].off = int16_t(5 - 23);
    c[21].imm = call_at(start + 21);
    out.insert(out.end(), c.begin(), c.end());
}

}  // namespace

result<std::vector<insn>> fixup_xdp(std::span<const insn> insns, const xdp_options& opts) {
    analysis a{insns, std::vector<state>(insns.size()), {}};
    state entry;
    entry.reached = true;
    entry.reg[1] = aval{k_ctx, -1};
    a.flow(0, entry);
    while (!a.work.empty()) {
        uint32_t pc = a.work.back();
        a.work.pop_back();
        a.step(pc);
    }

    std::vector<insn> out(insns.begin(), insns.end());
    std::map<trampoline_key, std::vector<size_t>> trampolines;  // -> call sites
    auto at = [](size_t pc, error e) { return tl::unexpected(with_context(std::move(e), fmt::format("insn {}", pc))); };
    for (size_t pc = 0; pc < insns.size(); ++pc) {
        const insn& i = insns[pc];
        const state& s = a.at[pc];
        const isa::opcode_info& oi = isa::info(i.code);
        if (oi.k == isa::kind::ld_imm64) {
            if (i.src == op::pseudo_func) {
                out[pc].src = 0;
                out[pc].imm = int32_t(pc) + i.imm + 1;
                out[pc + 1].imm = 0;
            }
            ++pc;
            continue;
        }
        if (!s.reached) continue;
        uint8_t base = 0xff;
        bool write = false;
        switch (oi.k) {
        case isa::kind::load: case isa::kind::load_sx: base = i.src; break;
        case isa::kind::store_imm: case isa::kind::store_reg: case isa::kind::atomic: base = i.dst, write = true; break;
        default: break;
        }
        if (base != 0xff) {
            uint8_t k = s.reg[base].kinds;
            if (k & (k_ctx | k_ctx_modified)) {
                if (k != k_ctx && (k & k_ctx_modified))
                    return at(pc, error{EACCES, fmt::format("dereference of modified ctx ptr R{} off={} disallowed", base, i.off)});
                if (k != k_ctx)
                    return at(pc, error{EACCES, fmt::format("R{} is the context on some paths only: same insn cannot be used with different pointers", base)});
                if (write || oi.k != isa::kind::load)
                    return at(pc, error{EACCES, fmt::format("invalid bpf_context access off={} size={}", i.off, oi.bytes)});
                auto f = map_ctx_field(i.off, oi.bytes, opts.devmap);
                if (!f) return at(pc, f.error());
                out[pc].code = op::ldx | op::mem | f->size;
                out[pc].off = f->native_off;
            }
        }
        if (oi.k == isa::kind::call && i.src == op::call_helper && (i.imm == helper_loop || i.imm == helper_for_each)) {
            const aval& cb = s.reg[2];
            if (cb.kinds != k_func || cb.func < 0)
                return at(pc, error{EINVAL, fmt::format("{}: R2 is not a known callback function", isa::helper_name(i.imm))});
            trampolines[{i.imm, cb.func}].push_back(pc);
        }
    }
    for (auto& [key, sites] : trampolines) {
        size_t start = out.size();
        if (key.helper == helper_loop) emit_loop(out, key.callback);
        else emit_for_each(out, key.callback);
        for (size_t pc : sites) {
            out[pc].src = op::call_local;
            out[pc].imm = int32_t(start) - int32_t(pc) - 1;
        }
    }
    return out;
}

}  // namespace xdprt::prog
