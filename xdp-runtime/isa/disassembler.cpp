// Disassembler: the assembler's syntax back, so that valid programs round-trip byte for byte.
// Fields the syntax cannot carry (a reserved field set, an unknown opcode) are shown as a raw
// ".insn" line so nothing is hidden from a reader.
#include "isa/isa.h"

namespace xdprt::isa {

namespace {

std::string reg(int r) { return fmt::format("%r{}", r); }

std::string mem_operand(int r, int16_t off) {
    if (off == 0) return fmt::format("[%r{}]", r);
    return fmt::format("[%r{}{}{}]", r, off < 0 ? '-' : '+', off < 0 ? -static_cast<int>(off) : off);
}

std::string rel(int64_t off) { return fmt::format("{}{}", off < 0 ? "-" : "+", off < 0 ? -off : off); }

std::string raw(const insn& i) {
    return fmt::format(".insn code={:#04x} dst={} src={} off={} imm={}", i.code, int(i.dst), int(i.src), i.off, i.imm);
}

}  // namespace

std::string disassemble_one(const insn& i, const insn* next) {
    const opcode_info& oi = info(i.code);
    const std::string name = mnemonic(i);
    switch (oi.k) {
    case kind::invalid: return raw(i);
    case kind::alu:
        if (oi.reg_src) return fmt::format("{} {}, {}", name, reg(i.dst), reg(i.src));
        return fmt::format("{} {}, {}", name, reg(i.dst), i.imm);
    case kind::neg:
    case kind::endian:
    case kind::bswap: return fmt::format("{} {}", name, reg(i.dst));
    case kind::ld_imm64: {
        const uint64_t hi = next ? static_cast<uint32_t>(next->imm) : 0;
        const uint64_t v = hi << 32 | static_cast<uint32_t>(i.imm);
        if (i.src != 0) return fmt::format("{} {}, {:#x} ; src={}", name, reg(i.dst), v, int(i.src));
        return fmt::format("{} {}, {:#x}", name, reg(i.dst), v);
    }
    case kind::load:
    case kind::load_sx: return fmt::format("{} {}, {}", name, reg(i.dst), mem_operand(i.src, i.off));
    case kind::store_imm: return fmt::format("{} {}, {}", name, mem_operand(i.dst, i.off), i.imm);
    case kind::store_reg: return fmt::format("{} {}, {}", name, mem_operand(i.dst, i.off), reg(i.src));
    case kind::atomic: return fmt::format("{} {}, {}", name, mem_operand(i.dst, i.off), reg(i.src));
    case kind::ja: return fmt::format("ja {}", rel(i.off));
    case kind::ja32: return fmt::format("ja32 {}", rel(i.imm));
    case kind::jcond:
        if (oi.reg_src) return fmt::format("{} {}, {}, {}", name, reg(i.dst), reg(i.src), rel(i.off));
        return fmt::format("{} {}, {}, {}", name, reg(i.dst), i.imm, rel(i.off));
    case kind::call:
        switch (i.src) {
        case op::call_helper: return fmt::format("call {}", i.imm);
        case op::call_local: return fmt::format("call local {}", rel(i.imm));
        case op::call_kfunc: return fmt::format("call runtime {}", i.imm);
        default: return raw(i);
        }
    case kind::callx: return fmt::format("call {}", reg(i.dst));
    case kind::exit: return "exit";
    }
    return raw(i);
}

std::string disassemble(std::span<const insn> prog) {
    std::string out;
    for (size_t pc = 0; pc < prog.size(); ++pc) {
        const insn& i = prog[pc];
        const bool wide = info(i.code).k == kind::ld_imm64 && pc + 1 < prog.size();
        out += disassemble_one(i, wide ? &prog[pc + 1] : nullptr);
        out += '\n';
        if (wide) ++pc;
    }
    return out;
}

}  // namespace xdprt::isa
