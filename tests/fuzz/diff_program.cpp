#include "diff_program.h"

#include <cstring>

#include "vm/vm.h"
#ifdef XDPRT_HAVE_JIT
#include "jit/jit.h"
#endif

namespace xdprt::fuzz {

namespace {

using isa::insn;
namespace op = isa::op;

// Reads the fuzzer's bytes; past the end it returns zeros, so every input makes a program.
class byte_source {
public:
    explicit byte_source(std::span<const uint8_t> d) : _d(d) {}
    uint8_t u8() { return _pos < _d.size() ? _d[_pos++] : 0; }
    uint32_t u32() { return u8() | u8() << 8 | u8() << 16 | static_cast<uint32_t>(u8()) << 24; }
    bool done() const { return _pos >= _d.size(); }

    // An immediate biased towards the interesting values.
    int32_t imm() {
        static constexpr int32_t special[] = {0, 1, -1, 2, 7, 31, 32, 63, 64, INT32_MIN, INT32_MAX, 0x80, 0xff, -8};
        const uint8_t k = u8();
        if (k < 128) return special[k % std::size(special)];
        return static_cast<int32_t>(u32());
    }

private:
    std::span<const uint8_t> _d;
    size_t _pos = 0;
};

// Registers a generated instruction may write: r0, r2..r9.
uint8_t writable_reg(uint8_t b) {
    constexpr uint8_t regs[] = {0, 2, 3, 4, 5, 6, 7, 8, 9};
    return regs[b % std::size(regs)];
}
// Registers a generated instruction may read as a value: r0..r9. r10's value is a stack address,
// which differs between engines, so it only appears as a memory base.
uint8_t any_reg(uint8_t b) { return b % 10; }

constexpr int stack_used = 64;  // bytes of each frame a program touches; zeroed by its prologue

// stdw [r10 - 8k], 0 for the used part of the frame: uninitialized stack differs between engines.
void zero_stack(std::vector<insn>& out) {
    for (int k = 1; k <= stack_used / 8; ++k) {
        insn st;
        st.code = op::st | op::mem | op::dw;
        st.dst = 10;
        st.off = static_cast<int16_t>(-8 * k);
        out.push_back(st);
    }
}

constexpr uint8_t sizes[] = {op::b, op::h, op::w, op::dw};
constexpr int bytes_of(uint8_t size) { return size == op::b ? 1 : size == op::h ? 2 : size == op::w ? 4 : 8; }

// [r1 + off] inside the input buffer or [r10 - off] inside the frame, aligned to the size.
void pick_address(byte_source& in, int bytes, uint8_t* base, int16_t* off) {
    if (in.u8() & 1) {
        *base = 1;
        *off = static_cast<int16_t>((in.u8() % (mem_size / bytes)) * bytes);
    } else {
        *base = 10;
        *off = static_cast<int16_t>(-((in.u8() % (stack_used / bytes)) + 1) * bytes);
    }
}

// Appends one function body of up to `budget` instructions ending in exit. When `call_fixups` is
// given, the body may make local calls; their pcs are recorded there to point at the callee later.
void generate_body(byte_source& in, std::vector<insn>& out, size_t budget, std::vector<size_t>* call_fixups) {
    const size_t begin = out.size();
    std::vector<std::pair<size_t, bool>> jumps;  // (pc, in imm) to point forward once the body is known
    while (out.size() - begin < budget && !in.done()) {
        const uint8_t choice = in.u8() % 16;
        insn i;
        switch (choice) {
        case 0: case 1: case 2: case 3: {  // ALU
            static constexpr uint8_t ops[] = {op::add, op::sub, op::mul, op::div, op::or_, op::and_, op::lsh,
                                              op::rsh, op::mod, op::xor_, op::mov, op::arsh};
            const uint8_t o = ops[in.u8() % std::size(ops)];
            const bool is64 = in.u8() & 1, reg = in.u8() & 1;
            i.code = static_cast<uint8_t>((is64 ? op::alu64 : op::alu) | o | (reg ? op::x : op::k));
            i.dst = writable_reg(in.u8());
            if (reg) i.src = any_reg(in.u8());
            else i.imm = in.imm();
            const uint8_t v = in.u8();
            if ((o == op::div || o == op::mod) && (v & 1)) i.off = 1;  // sdiv / smod
            if (o == op::mov && reg && (v & 6)) {
                static constexpr int16_t widths[] = {8, 16, 32};
                i.off = widths[(v >> 1) % (is64 ? 3 : 2)];  // movsx
            }
            break;
        }
        case 4: {  // neg, byte order
            const uint8_t v = in.u8();
            i.dst = writable_reg(in.u8());
            static constexpr int32_t widths[] = {16, 32, 64};
            switch (v % 4) {
            case 0: i.code = (v & 4) ? op::alu64 | op::neg : op::alu | op::neg; break;
            case 1: i.code = op::alu | op::end | op::k; i.imm = widths[(v >> 2) % 3]; break;
            case 2: i.code = op::alu | op::end | op::x; i.imm = widths[(v >> 2) % 3]; break;
            default: i.code = op::alu64 | op::end | op::k; i.imm = widths[(v >> 2) % 3]; break;
            }
            break;
        }
        case 5: {  // ld_imm64
            i.code = op::ld | op::imm | op::dw;
            i.dst = writable_reg(in.u8());
            i.imm = in.imm();
            out.push_back(i);
            i = insn{};
            i.imm = in.imm();
            break;
        }
        case 6: case 7: {  // loads
            const uint8_t size = sizes[in.u8() % 4];
            const bool sx = (in.u8() & 3) == 0 && size != op::dw;
            i.code = static_cast<uint8_t>(op::ldx | (sx ? op::memsx : op::mem) | size);
            i.dst = writable_reg(in.u8());
            uint8_t base;
            pick_address(in, bytes_of(size), &base, &i.off);
            i.src = base;
            break;
        }
        case 8: case 9: {  // stores
            const uint8_t size = sizes[in.u8() % 4];
            const bool reg = in.u8() & 1;
            i.code = static_cast<uint8_t>((reg ? op::stx : op::st) | op::mem | size);
            uint8_t base;
            pick_address(in, bytes_of(size), &base, &i.off);
            i.dst = base;
            if (reg) i.src = any_reg(in.u8());
            else i.imm = in.imm();
            break;
        }
        case 10: {  // atomics
            static constexpr int32_t ops[] = {op::add, op::or_, op::and_, op::xor_, op::add | op::fetch,
                                              op::or_ | op::fetch, op::and_ | op::fetch, op::xor_ | op::fetch,
                                              op::xchg, op::cmpxchg};
            const bool is64 = in.u8() & 1;
            i.code = static_cast<uint8_t>(op::stx | op::atomic | (is64 ? op::dw : op::w));
            i.imm = ops[in.u8() % std::size(ops)];
            uint8_t base;
            pick_address(in, is64 ? 8 : 4, &base, &i.off);
            i.dst = base;
            i.src = writable_reg(in.u8());  // fetch forms write src
            break;
        }
        case 11: case 12: {  // conditional jumps
            static constexpr uint8_t ops[] = {op::jeq, op::jgt, op::jge, op::jset, op::jne, op::jsgt,
                                              op::jsge, op::jlt, op::jle, op::jslt, op::jsle};
            const bool is64 = in.u8() & 1, reg = in.u8() & 1;
            i.code = static_cast<uint8_t>((is64 ? op::jmp : op::jmp32) | ops[in.u8() % std::size(ops)] |
                                          (reg ? op::x : op::k));
            i.dst = any_reg(in.u8());
            if (reg) i.src = any_reg(in.u8());
            else i.imm = in.imm();
            i.off = in.u8() % 8;  // forward distance in instructions, fixed up below
            jumps.emplace_back(out.size(), false);
            break;
        }
        case 13: {  // ja / ja32
            const bool wide = in.u8() & 1;
            i.code = wide ? op::jmp32 | op::ja : op::jmp | op::ja;
            if (wide) i.imm = in.u8() % 8;
            else i.off = in.u8() % 8;
            jumps.emplace_back(out.size(), wide);
            break;
        }
        case 14: {  // helper call: r0 = mix(r1..r5), r1-r5 clobbered in the kernel's ABI
            i.code = op::jmp | op::call;
            i.imm = 1;
            break;
        }
        default: {  // local call from main
            if (!call_fixups) continue;
            i.code = op::jmp | op::call;
            i.src = op::call_local;
            call_fixups->push_back(out.size());
            break;
        }
        }
        out.push_back(i);
    }
    insn exit;
    exit.code = op::jmp | op::exit;
    out.push_back(exit);
    const size_t end = out.size();  // one past the exit
    // Clamp every forward jump inside this body, never into the second slot of an ld_imm64.
    std::vector<bool> second_half(end - begin, false);
    for (size_t pc = begin; pc < end; ++pc)
        if (isa::info(out[pc].code).k == isa::kind::ld_imm64) second_half[++pc - begin] = true;
    auto is_second_half = [&](size_t pc) { return second_half[pc - begin]; };
    for (auto [pc, in_imm] : jumps) {
        int64_t dist = in_imm ? out[pc].imm : out[pc].off;
        int64_t target = static_cast<int64_t>(pc) + 1 + dist;
        if (target >= static_cast<int64_t>(end)) target = static_cast<int64_t>(end) - 1;
        while (is_second_half(static_cast<size_t>(target))) ++target;
        dist = target - static_cast<int64_t>(pc) - 1;
        if (in_imm) out[pc].imm = static_cast<int32_t>(dist);
        else out[pc].off = static_cast<int16_t>(dist);
    }
}

uint64_t mix_helper(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5) {
    return (r1 * 0x9e3779b97f4a7c15ull) ^ (r2 << 7) ^ (r3 >> 3) ^ (r4 * 31) ^ r5;
}

const vm::linkage& fuzz_linkage() {
    static const vm::linkage link = [] {
        vm::linkage l;
        l.helpers[1] = mix_helper;
        return l;
    }();
    return link;
}

}  // namespace

std::vector<insn> generate_program(std::span<const uint8_t> data) {
    byte_source in(data);
    std::vector<insn> out;
    // Prologue: every register the program may read is defined (the interpreter zeroes registers,
    // native code does not), from the input so that values vary.
    for (uint8_t r : {0, 2, 3, 4, 5, 6, 7, 8, 9}) {
        insn lo;
        lo.code = op::ld | op::imm | op::dw;
        lo.dst = r;
        lo.imm = in.imm();
        insn hi;
        hi.imm = in.imm();
        out.push_back(lo);
        out.push_back(hi);
    }
    zero_stack(out);
    const bool with_callee = in.u8() & 1;
    std::vector<size_t> call_fixups;
    generate_body(in, out, 200, with_callee ? &call_fixups : nullptr);
    if (with_callee) {
        const size_t callee = out.size();
        // A callee starts a fresh frame: r1-r5 are its arguments (r1 still the buffer, as main never
        // writes it), r0 and r6-r9 are undefined there until written, so it defines them first.
        for (uint8_t r : {0, 6, 7, 8, 9}) {
            insn lo;
            lo.code = op::mov | op::alu64 | op::k;
            lo.dst = r;
            lo.imm = in.imm();
            out.push_back(lo);
        }
        zero_stack(out);
        generate_body(in, out, 40, nullptr);
        for (size_t pc : call_fixups) out[pc].imm = static_cast<int32_t>(static_cast<int64_t>(callee) - static_cast<int64_t>(pc) - 1);
    }
    return out;
}

diff_outcome run_differential(std::span<const uint8_t> data) {
    return run_program_differential(generate_program(data), data);
}

std::vector<insn> minimize(std::vector<insn> insns, std::span<const uint8_t> data) {
    insn nop;
    nop.code = op::jmp | op::ja;
    for (size_t pc = 0; pc < insns.size(); ++pc) {
        const auto k = isa::info(insns[pc].code).k;
        if (k == isa::kind::exit || (k == isa::kind::ja && insns[pc].off == 0)) continue;
        // Keep what defines state the engines would otherwise see differently: the stack zeroing
        // and the callee's register prologue.
        if (k == isa::kind::store_imm && insns[pc].dst == 10 && insns[pc].imm == 0) continue;
        if (insns[pc].code == (op::alu64 | op::mov | op::k)) continue;
        auto trial = insns;
        trial[pc] = nop;
        if (k == isa::kind::ld_imm64) trial[pc + 1] = nop;
        if (run_program_differential(trial, data).differs && isa::check(trial)) insns = std::move(trial);
        if (k == isa::kind::ld_imm64) ++pc;
    }
    return insns;
}

diff_outcome run_program_differential(const std::vector<insn>& insns, std::span<const uint8_t> data) {
    diff_outcome res;
    vm::load_options opts;
    auto prog = vm::load("fuzz", insns, fuzz_linkage(), opts);
    if (!prog) {
        // The generator must only make valid programs: a rejection is a generator or checker bug.
        res.differs = true;
        res.report = "generated program rejected: " + prog.error().message + "\n" + isa::disassemble(insns);
        return res;
    }
    uint8_t mem_init[mem_size];
    for (size_t k = 0; k < mem_size; ++k) mem_init[k] = static_cast<uint8_t>(k * 37 + (data.empty() ? 0 : data[k % data.size()]));

    // Both engines run on the same buffer (its address is a value programs can compute with).
    alignas(8) uint8_t mem[mem_size];
    std::memcpy(mem, mem_init, mem_size);
    const vm::region region{reinterpret_cast<uint64_t>(mem), mem_size, true};
    auto r_interp = vm::interpret(*prog, region.start, mem_size, {&region, 1});
    if (!r_interp) {
        res.differs = true;
        res.report = "interpreter faulted on a generated program: " + r_interp.error().message + "\n" +
                     isa::disassemble(insns);
        return res;
    }
    uint8_t mem_interp[mem_size];
    std::memcpy(mem_interp, mem, mem_size);
#ifdef XDPRT_HAVE_JIT
    jit::options jo;
    jo.opt = static_cast<jit::opt_level>(data.empty() ? 2 : data[0] % 4);
    auto image = jit::compile(*prog, jo);
    if (!image) {
        res.differs = true;
        res.report = "JIT refused a valid program: " + image.error().message;
        return res;
    }
    std::memcpy(mem, mem_init, mem_size);
    const uint64_t r_jit = image->run(reinterpret_cast<uint64_t>(mem), mem_size);
    const uint8_t* mem_jit = mem;
    if (r_jit != *r_interp || std::memcmp(mem_jit, mem_interp, mem_size) != 0) {
        res.differs = true;
        res.report = fmt::format("interpreter r0 = {:#x}, JIT (O{}) r0 = {:#x}, memory {}\n{}", *r_interp,
                                 static_cast<int>(jo.opt), r_jit,
                                 std::memcmp(mem_jit, mem_interp, mem_size) == 0 ? "equal" : "differs",
                                 isa::disassemble(insns));
    }
#endif
    return res;
}

}  // namespace xdprt::fuzz
