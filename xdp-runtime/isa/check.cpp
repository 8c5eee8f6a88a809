// Structural bytecode checks: what is malformed whatever the program's types and values.
//
// RFC 9669 says fields an instruction does not use must be zero; the kernel rejects most such
// encodings too ("BPF_ALU uses reserved fields"), so xdprt rejects all of them. Type and range
// safety is the verifier's job (a later stage); this pass makes sure every engine can decode every
// instruction and every jump lands on an instruction inside its own function.
#include <algorithm>
#include <cerrno>
#include <optional>

#include "isa/isa.h"

namespace xdprt::isa {

namespace {

template <class... Args>
unexpected_error at(size_t pc, fmt::format_string<Args...> f, Args&&... args) {
    return fail(EINVAL, "insn {}: {}", pc, fmt::format(f, std::forward<Args>(args)...));
}

bool is_atomic_op(int32_t imm) {
    switch (imm) {
    case op::add: case op::or_: case op::and_: case op::xor_:
    case op::add | op::fetch: case op::or_ | op::fetch: case op::and_ | op::fetch: case op::xor_ | op::fetch:
    case op::xchg: case op::cmpxchg:
        return true;
    default:
        return false;
    }
}

// Checks one instruction's fields. `pc` is its index; the program is `prog`.
result<void> check_fields(std::span<const insn> prog, size_t pc, const check_options& opts) {
    const insn& i = prog[pc];
    const opcode_info& oi = info(i.code);
    if (oi.k == kind::invalid) return at(pc, "unknown opcode {:#04x}", i.code);
    if (oi.cpu > opts.cpu_version)
        return at(pc, "'{}' needs ISA v{}, the program is limited to v{}", mnemonic(i), oi.cpu, opts.cpu_version);
    if (i.dst > max_reg) return at(pc, "invalid destination register r{}", int(i.dst));
    if (i.src > max_reg) return at(pc, "invalid source register r{}", int(i.src));

    auto reserved = [&](std::string_view field) { return at(pc, "'{}' uses reserved field {}", mnemonic(i), field); };
    auto writes_dst = [&]() -> result<void> {
        if (i.dst == 10) return at(pc, "'{}' writes r10, the read-only frame pointer", mnemonic(i));
        return {};
    };

    switch (oi.k) {
    case kind::invalid: break;
    case kind::alu: {
        if (!oi.reg_src && i.src != 0) return reserved("src");
        if (oi.reg_src && i.imm != 0) return reserved("imm");
        const uint8_t o = op::alu_op(i.code);
        if (i.off != 0) {
            const bool signed_divmod = (o == op::div || o == op::mod) && i.off == 1;
            const bool movsx = o == op::mov && oi.reg_src &&
                               (i.off == 8 || i.off == 16 || (oi.is64 && i.off == 32));
            if (!signed_divmod && !movsx) return reserved("off");
            if (opts.cpu_version < 4) return at(pc, "'{}' needs ISA v4", mnemonic(i));
        }
        return writes_dst();
    }
    case kind::neg:
        if (i.src != 0) return reserved("src");
        if (i.off != 0) return reserved("off");
        if (i.imm != 0) return reserved("imm");
        return writes_dst();
    case kind::endian:
    case kind::bswap:
        if (i.src != 0) return reserved("src");
        if (i.off != 0) return reserved("off");
        if (i.imm != 16 && i.imm != 32 && i.imm != 64) return at(pc, "invalid endian immediate {}", i.imm);
        return writes_dst();
    case kind::ld_imm64: {
        if (pc + 1 >= prog.size()) return at(pc, "incomplete lddw: the second slot is missing");
        const insn& hi = prog[pc + 1];
        if (hi.code != 0 || hi.dst != 0 || hi.src != 0 || hi.off != 0)
            return at(pc + 1, "invalid lddw second half");
        if (i.off != 0) return reserved("off");
        if (i.src > op::pseudo_map_idx_value) return at(pc, "invalid source {} for lddw", int(i.src));
        return writes_dst();
    }
    case kind::load:
    case kind::load_sx:
        if (i.imm != 0) return reserved("imm");
        return writes_dst();
    case kind::store_imm:
        if (i.src != 0) return reserved("src");
        return {};
    case kind::store_reg:
        if (i.imm != 0) return reserved("imm");
        return {};
    case kind::atomic:
        if (!is_atomic_op(i.imm)) return at(pc, "invalid atomic operation {:#x}", i.imm);
        return {};
    case kind::ja:
        if (i.dst != 0) return reserved("dst");
        if (i.src != 0) return reserved("src");
        if (i.imm != 0) return reserved("imm");
        return {};
    case kind::ja32:
        if (i.dst != 0) return reserved("dst");
        if (i.src != 0) return reserved("src");
        if (i.off != 0) return reserved("off");
        return {};
    case kind::jcond:
        if (!oi.reg_src && i.src != 0) return reserved("src");
        if (oi.reg_src && i.imm != 0) return reserved("imm");
        return {};
    case kind::call:
        if (i.dst != 0) return reserved("dst");
        if (i.off != 0) return reserved("off");
        if (i.src == op::call_helper) {
            if (opts.helper_known && !opts.helper_known(i.imm, opts.helper_cookie)) {
                auto name = helper_name(i.imm);
                // After ours, the kernel verifier's wording, which libbpf's helper probe looks for.
                if (name.empty()) return at(pc, "call to unknown helper {}: invalid func unknown#{}", i.imm, i.imm);
                return at(pc, "unsupported helper {} ({}): unknown func {}#{}", i.imm, name, name, i.imm);
            }
            return {};
        }
        if (i.src == op::call_local) return {};
        if (i.src == op::call_kfunc) return at(pc, "kfunc calls are not supported (call runtime {})", i.imm);
        return at(pc, "invalid call source {}", int(i.src));
    case kind::callx:
        if (!opts.allow_callx) return at(pc, "callx (call by register) is not part of the accepted ISA");
        if (i.src != 0) return reserved("src");
        if (i.off != 0) return reserved("off");
        if (i.imm != 0) return reserved("imm");
        return {};
    case kind::exit:
        if (i.dst != 0) return reserved("dst");
        if (i.src != 0) return reserved("src");
        if (i.off != 0) return reserved("off");
        if (i.imm != 0) return reserved("imm");
        return {};
    }
    return {};
}

// The target of a jump or local call at `pc`, or nullopt when it is not one.
std::optional<int64_t> target_of(const insn& i, size_t pc) {
    const int64_t next = static_cast<int64_t>(pc) + 1;
    switch (info(i.code).k) {
    case kind::ja:
    case kind::jcond: return next + i.off;
    case kind::ja32: return next + i.imm;
    case kind::call:
        if (i.src == op::call_local) return next + i.imm;
        return std::nullopt;
    default: return std::nullopt;
    }
}

}  // namespace

result<program_layout> check(std::span<const insn> prog, const check_options& opts) {
    if (prog.empty()) return fail(EINVAL, "empty program");
    if (prog.size() > max_insns)
        return fail(E2BIG, "too many instructions: {} (max {})", prog.size(), max_insns);

    // Pass 1: fields, and which slots are the second half of an ld_imm64.
    std::vector<bool> second_half(prog.size(), false);
    for (size_t pc = 0; pc < prog.size(); ++pc) {
        if (auto r = check_fields(prog, pc, opts); !r) return tl::unexpected(r.error());
        if (info(prog[pc].code).k == kind::ld_imm64) second_half[++pc] = true;
    }

    // Pass 2: targets in range, on an instruction; functions start at local call targets.
    program_layout layout;
    layout.func_starts.push_back(0);
    for (size_t pc = 0; pc < prog.size(); ++pc) {
        if (second_half[pc]) continue;
        const insn& i = prog[pc];
        auto t = target_of(i, pc);
        if (!t) continue;
        if (*t < 0 || *t >= static_cast<int64_t>(prog.size()))
            return at(pc, "jump out of bounds to {}", *t);
        if (second_half[*t]) return at(pc, "jump to middle of lddw at {}", *t);
        if (*t == static_cast<int64_t>(pc) && info(i.code).k != kind::jcond) return at(pc, "infinite loop");
        if (info(i.code).k == kind::call) layout.func_starts.push_back(static_cast<uint32_t>(*t));
    }
    std::sort(layout.func_starts.begin(), layout.func_starts.end());
    layout.func_starts.erase(std::unique(layout.func_starts.begin(), layout.func_starts.end()),
                             layout.func_starts.end());

    // Pass 3: jumps stay inside their function; no function falls off its end.
    for (size_t f = 0; f < layout.func_starts.size(); ++f) {
        const size_t begin = layout.func_starts[f];
        const size_t end = f + 1 < layout.func_starts.size() ? layout.func_starts[f + 1] : prog.size();
        for (size_t pc = begin; pc < end; ++pc) {
            if (second_half[pc]) continue;
            const insn& i = prog[pc];
            if (info(i.code).k == kind::call) continue;
            auto t = target_of(i, pc);
            if (t && (*t < static_cast<int64_t>(begin) || *t >= static_cast<int64_t>(end)))
                return at(pc, "jump out of bounds of its function [{}, {}) to {}", begin, end, *t);
        }
        const insn& last = prog[end - 1];
        const kind k = second_half[end - 1] ? kind::ld_imm64 : info(last.code).k;
        if (k != kind::exit && k != kind::ja && k != kind::ja32)
            return at(end - 1, "function at {} does not end with exit or an unconditional jump", begin);
    }
    return layout;
}

}  // namespace xdprt::isa
