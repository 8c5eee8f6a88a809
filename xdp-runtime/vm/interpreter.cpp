// The reference interpreter: RFC 9669 semantics, every memory access checked.
//
// Layout of a run: one stack area of max_call_depth frames of stack_size bytes on the native stack;
// frame f's r10 is the top of its 512 bytes. A local call saves r1-r10 and the return point and
// gives the callee a fresh frame. A tail call replaces the current function by the target program's
// main function: when that returns, control goes back to the caller of the replaced function (as
// the kernel's JITs do), which is why each frame remembers its program.
//
// Division and shifts follow RFC 9669 section 4.1: unsigned division by zero gives 0, modulo by zero
// leaves dst unchanged, signed INT_MIN / -1 gives INT_MIN and INT_MIN % -1 gives 0, shift counts are
// masked to the operand width.
#include <bit>
#include <cerrno>
#include <cstring>
#include <type_traits>

#include "vm/vm.h"

namespace xdprt::vm {

namespace {

using isa::insn;
namespace op = isa::op;

constexpr size_t stack_bytes = size_t(isa::max_call_depth) * isa::stack_size;

struct frame {
    const program* prog;
    size_t return_pc;
    uint64_t saved[10];  // r1-r10: r1-r5 are scratch for the caller in the kernel's ABI; keeping
                         // them (as the JIT does, its callee cannot touch the caller's values)
                         // makes every engine agree even for programs no verifier has seen
};

// One ALU operation at width U (uint32_t for ALU, uint64_t for ALU64). RFC 9669 section 4.1.
template <class U>
U alu(uint8_t o, int16_t off, U a, U b) {
    using S = std::make_signed_t<U>;
    constexpr U shift_mask = sizeof(U) * 8 - 1;
    switch (o) {
    case op::add: return a + b;
    case op::sub: return a - b;
    case op::mul: return static_cast<U>(a * b);
    case op::div:
        if (off == 1) {  // sdiv
            if (b == 0) return 0;
            if (static_cast<S>(b) == -1) return static_cast<U>(0 - a);  // INT_MIN / -1 wraps to INT_MIN
            return static_cast<U>(static_cast<S>(a) / static_cast<S>(b));
        }
        return b == 0 ? 0 : a / b;
    case op::mod:
        if (off == 1) {  // smod
            if (b == 0) return a;
            if (static_cast<S>(b) == -1) return 0;
            return static_cast<U>(static_cast<S>(a) % static_cast<S>(b));
        }
        return b == 0 ? a : a % b;
    case op::or_: return a | b;
    case op::and_: return a & b;
    case op::lsh: return static_cast<U>(a << (b & shift_mask));
    case op::rsh: return a >> (b & shift_mask);
    case op::xor_: return a ^ b;
    case op::mov:
        switch (off) {  // movsx: sign-extend the low `off` bits of src
        case 8: return static_cast<U>(static_cast<S>(static_cast<int8_t>(b)));
        case 16: return static_cast<U>(static_cast<S>(static_cast<int16_t>(b)));
        case 32: return static_cast<U>(static_cast<S>(static_cast<int32_t>(b)));
        default: return b;
        }
    case op::arsh: return static_cast<U>(static_cast<S>(a) >> (b & shift_mask));
    default: return a;  // unreachable: check() admits no other op
    }
}

template <class T>
bool compare(uint8_t o, T a, T b) {
    using S = std::make_signed_t<T>;
    const auto sa = static_cast<S>(a), sb = static_cast<S>(b);
    switch (o) {
    case op::jeq: return a == b;
    case op::jgt: return a > b;
    case op::jge: return a >= b;
    case op::jset: return (a & b) != 0;
    case op::jne: return a != b;
    case op::jsgt: return sa > sb;
    case op::jsge: return sa >= sb;
    case op::jlt: return a < b;
    case op::jle: return a <= b;
    case op::jslt: return sa < sb;
    case op::jsle: return sa <= sb;
    default: return false;
    }
}

uint64_t swap_bytes(uint64_t v, int32_t width) {
    switch (width) {
    case 16: return __builtin_bswap16(static_cast<uint16_t>(v));
    case 32: return __builtin_bswap32(static_cast<uint32_t>(v));
    default: return __builtin_bswap64(v);
    }
}

uint64_t truncate(uint64_t v, int32_t width) {
    switch (width) {
    case 16: return static_cast<uint16_t>(v);
    case 32: return static_cast<uint32_t>(v);
    default: return v;
    }
}

uint64_t load_bytes(uint64_t addr, uint8_t bytes) {
    switch (bytes) {
    case 1: { uint8_t v; std::memcpy(&v, reinterpret_cast<const void*>(addr), 1); return v; }
    case 2: { uint16_t v; std::memcpy(&v, reinterpret_cast<const void*>(addr), 2); return v; }
    case 4: { uint32_t v; std::memcpy(&v, reinterpret_cast<const void*>(addr), 4); return v; }
    default: { uint64_t v; std::memcpy(&v, reinterpret_cast<const void*>(addr), 8); return v; }
    }
}

uint64_t sign_extend(uint64_t v, uint8_t bytes) {
    switch (bytes) {
    case 1: return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(v)));
    case 2: return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int16_t>(v)));
    case 4: return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(v)));
    default: return v;
    }
}

void store_bytes(uint64_t addr, uint8_t bytes, uint64_t v) {
    switch (bytes) {
    case 1: { auto x = static_cast<uint8_t>(v); std::memcpy(reinterpret_cast<void*>(addr), &x, 1); break; }
    case 2: { auto x = static_cast<uint16_t>(v); std::memcpy(reinterpret_cast<void*>(addr), &x, 2); break; }
    case 4: { auto x = static_cast<uint32_t>(v); std::memcpy(reinterpret_cast<void*>(addr), &x, 4); break; }
    default: std::memcpy(reinterpret_cast<void*>(addr), &v, 8); break;
    }
}

// One atomic operation at width T; returns the value memory held before it.
template <class T>
T atomic_op(T* p, int32_t imm, T src, T expected) {
    switch (imm & ~op::fetch) {
    case op::add: return __atomic_fetch_add(p, src, __ATOMIC_SEQ_CST);
    case op::or_: return __atomic_fetch_or(p, src, __ATOMIC_SEQ_CST);
    case op::and_: return __atomic_fetch_and(p, src, __ATOMIC_SEQ_CST);
    case op::xor_: return __atomic_fetch_xor(p, src, __ATOMIC_SEQ_CST);
    case op::xchg & ~op::fetch: return __atomic_exchange_n(p, src, __ATOMIC_SEQ_CST);
    default:  // cmpxchg: `expected` ends up holding the value found, replaced or not
        __atomic_compare_exchange_n(p, &expected, src, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        return expected;
    }
}

class machine {
public:
    machine(std::span<const region> regions, uint8_t* stack) : _regions(regions), _stack(stack) {}

    result<uint64_t> run(const program& entry, uint64_t r1, uint64_t r2);

private:
    // True when [addr, addr + size) lies inside the stack or a registered region.
    bool accessible(uint64_t addr, uint64_t size, bool write, const linkage& link) const {
        if (addr + size < addr) return false;  // wraps around
        const auto stack = reinterpret_cast<uint64_t>(_stack);
        if (addr >= stack && addr + size <= stack + stack_bytes) return true;
        auto inside = [&](const region& r) {
            return addr >= r.start && addr + size <= r.start + r.size && (r.writable || !write);
        };
        for (const region& r : _regions)
            if (inside(r)) return true;
        for (const region& r : link.static_regions)
            if (inside(r)) return true;
        return link.dynamic_memory && link.dynamic_memory(addr, size, write);
    }

    std::span<const region> _regions;
    uint8_t* _stack;
};

result<uint64_t> machine::run(const program& entry, uint64_t r1, uint64_t r2) {
    uint64_t reg[11] = {};
    frame frames[isa::max_call_depth];
    int depth = 0;
    uint32_t tail_calls = 0;
    const program* prog = &entry;
    const insn* code = prog->insns.data();
    size_t n = prog->insns.size();
    reg[1] = r1;
    reg[2] = r2;
    reg[10] = reinterpret_cast<uint64_t>(_stack) + stack_bytes;

    auto fault = [&](size_t pc, std::string what) {
        return fail(EFAULT, "prog '{}': insn {}: {}", prog->name, pc, what);
    };

    size_t pc = 0;
    while (pc < n) {
        const insn i = code[pc];
        const isa::opcode_info& oi = isa::info(i.code);
        switch (oi.k) {
        case isa::kind::alu: {
            const uint8_t o = op::alu_op(i.code);
            if (oi.is64) {
                const uint64_t b = oi.reg_src ? reg[i.src] : static_cast<uint64_t>(static_cast<int64_t>(i.imm));
                reg[i.dst] = alu<uint64_t>(o, i.off, reg[i.dst], b);
            } else {
                const uint32_t b = oi.reg_src ? static_cast<uint32_t>(reg[i.src]) : static_cast<uint32_t>(i.imm);
                reg[i.dst] = alu<uint32_t>(o, i.off, static_cast<uint32_t>(reg[i.dst]), b);
            }
            break;
        }
        case isa::kind::neg:
            reg[i.dst] = oi.is64 ? 0 - reg[i.dst] : static_cast<uint32_t>(0 - static_cast<uint32_t>(reg[i.dst]));
            break;
        case isa::kind::endian:
            // le on a little-endian host only truncates; be swaps (RFC 9669 section 4.2).
            reg[i.dst] = oi.reg_src ? swap_bytes(reg[i.dst], i.imm) : truncate(reg[i.dst], i.imm);
            break;
        case isa::kind::bswap: reg[i.dst] = swap_bytes(reg[i.dst], i.imm); break;
        case isa::kind::ld_imm64:
            reg[i.dst] = static_cast<uint32_t>(i.imm) | static_cast<uint64_t>(static_cast<uint32_t>(code[pc + 1].imm)) << 32;
            ++pc;
            break;
        case isa::kind::load:
        case isa::kind::load_sx: {
            const uint64_t addr = reg[i.src] + static_cast<uint64_t>(static_cast<int64_t>(i.off));
            if (!accessible(addr, oi.bytes, false, *prog->link))
                return fault(pc, fmt::format("out-of-bounds load of {} bytes at {:#x}", oi.bytes, addr));
            const uint64_t v = load_bytes(addr, oi.bytes);
            reg[i.dst] = oi.k == isa::kind::load_sx ? sign_extend(v, oi.bytes) : v;
            break;
        }
        case isa::kind::store_imm:
        case isa::kind::store_reg: {
            const uint64_t addr = reg[i.dst] + static_cast<uint64_t>(static_cast<int64_t>(i.off));
            if (!accessible(addr, oi.bytes, true, *prog->link))
                return fault(pc, fmt::format("out-of-bounds store of {} bytes at {:#x}", oi.bytes, addr));
            const uint64_t v = oi.k == isa::kind::store_reg ? reg[i.src] : static_cast<uint64_t>(static_cast<int64_t>(i.imm));
            store_bytes(addr, oi.bytes, v);
            break;
        }
        case isa::kind::atomic: {
            const uint64_t addr = reg[i.dst] + static_cast<uint64_t>(static_cast<int64_t>(i.off));
            if (!accessible(addr, oi.bytes, true, *prog->link))
                return fault(pc, fmt::format("out-of-bounds atomic access of {} bytes at {:#x}", oi.bytes, addr));
            if (addr % oi.bytes != 0)
                return fault(pc, fmt::format("misaligned atomic access of {} bytes at {:#x}", oi.bytes, addr));
            // 32-bit forms operate on the low halves; the old value comes back zero-extended.
            const uint64_t old =
                oi.bytes == 8 ? atomic_op<uint64_t>(reinterpret_cast<uint64_t*>(addr), i.imm, reg[i.src], reg[0])
                              : atomic_op<uint32_t>(reinterpret_cast<uint32_t*>(addr), i.imm,
                                                    static_cast<uint32_t>(reg[i.src]), static_cast<uint32_t>(reg[0]));
            if (i.imm == op::cmpxchg) reg[0] = old;
            else if (i.imm & op::fetch) reg[i.src] = old;
            break;
        }
        case isa::kind::ja: pc += i.off; break;
        case isa::kind::ja32: pc += i.imm; break;
        case isa::kind::jcond: {
            const uint8_t o = op::alu_op(i.code);
            bool taken;
            if (oi.is64) {
                const uint64_t b = oi.reg_src ? reg[i.src] : static_cast<uint64_t>(static_cast<int64_t>(i.imm));
                taken = compare<uint64_t>(o, reg[i.dst], b);
            } else {
                const uint32_t b = oi.reg_src ? static_cast<uint32_t>(reg[i.src]) : static_cast<uint32_t>(i.imm);
                taken = compare<uint32_t>(o, static_cast<uint32_t>(reg[i.dst]), b);
            }
            if (taken) pc += i.off;
            break;
        }
        case isa::kind::call:
        case isa::kind::callx: {
            if (oi.k == isa::kind::call && i.src == op::call_local) {
                if (depth + 1 >= isa::max_call_depth)
                    return fault(pc, fmt::format("call depth exceeds {} frames", isa::max_call_depth));
                frames[depth].prog = prog;
                frames[depth].return_pc = pc + 1;
                std::memcpy(frames[depth].saved, &reg[1], sizeof(frames[depth].saved));
                ++depth;
                reg[10] -= isa::stack_size;
                pc = pc + 1 + i.imm;
                continue;
            }
            const uint64_t id = oi.k == isa::kind::callx ? reg[i.dst] : static_cast<uint64_t>(static_cast<int64_t>(i.imm));
            if (id == static_cast<uint64_t>(tail_call_helper_id) && prog->link->tail_call_target) {
                const program* target = prog->link->tail_call_target(reg[2], reg[3]);
                if (target && tail_calls < isa::max_tail_calls) {
                    ++tail_calls;
                    prog = target;
                    code = prog->insns.data();
                    n = prog->insns.size();
                    pc = 0;
                    continue;  // r1 (ctx) carries over; the frame is reused
                }
                reg[0] = static_cast<uint64_t>(-ENOENT);  // falls through, as the kernel does
                break;
            }
            helper_fn fn = id < max_helper_id ? prog->link->helpers[id] : nullptr;
            if (!fn) return fault(pc, fmt::format("call of helper {} which is not linked", id));
            reg[0] = fn(reg[1], reg[2], reg[3], reg[4], reg[5]);
            break;
        }
        case isa::kind::exit:
            if (depth == 0) return reg[0];
            --depth;
            prog = frames[depth].prog;
            code = prog->insns.data();
            n = prog->insns.size();
            pc = frames[depth].return_pc;
            std::memcpy(&reg[1], frames[depth].saved, sizeof(frames[depth].saved));
            continue;
        case isa::kind::invalid:
            return fault(pc, fmt::format("unknown opcode {:#04x}", i.code));
        }
        ++pc;
    }
    return fault(pc, "fell off the end of the program");
}

}  // namespace

result<uint64_t> interpret(const program& prog, uint64_t r1, uint64_t r2, std::span<const region> regions) {
    alignas(16) uint8_t stack[stack_bytes];
    machine m(regions, stack);
    return m.run(prog, r1, r2);
}

}  // namespace xdprt::vm
