// Assembler for the text syntax of the conformance suites (shared/conformance/README.md section 3).
//
// Two passes: the first parses every line into an instruction with an unresolved jump target and
// records label slots; the second resolves targets. Errors name the line: "line 3: 'ldxq': unknown
// mnemonic".
#include <cctype>
#include <cerrno>
#include <cstring>
#include <tuple>
#include <charconv>
#include <map>
#include <optional>

#include "isa/isa.h"

namespace xdprt::isa {

namespace {

struct pending {
    insn i;
    std::string target;   // jump/call label to resolve, or "" when the offset is already set
    bool target_in_imm = false;
    size_t line = 0;
};

struct line_parser {
    size_t line_no;
    std::string_view mnem;
    std::vector<std::string_view> ops;

    template <class... Args>
    unexpected_error err(fmt::format_string<Args...> f, Args&&... args) const {
        return fail(EINVAL, "line {}: '{}': {}", line_no, mnem, fmt::format(f, std::forward<Args>(args)...));
    }
};

std::vector<std::string_view> split_ws(std::string_view s) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) ++i;
        size_t j = i;
        while (j < s.size() && s[j] != ' ' && s[j] != '\t' && s[j] != '\r') ++j;
        if (j > i) out.push_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

// Parses a signed or unsigned integer in decimal or 0x-hex. Returns nullopt on garbage.
std::optional<std::pair<bool, uint64_t>> parse_number(std::string_view s, bool* is_hex = nullptr) {
    bool neg = false;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        s.remove_prefix(1);
    }
    int base = 10;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s.remove_prefix(2);
    }
    if (is_hex) *is_hex = base == 16;
    if (s.empty()) return std::nullopt;
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return std::pair{neg, v};
}

// A 32-bit immediate: decimal within int32, or hex up to 0xffffffff stored as the raw pattern.
result<int32_t> parse_imm32(const line_parser& lp, std::string_view s) {
    bool hex = false;
    auto n = parse_number(s, &hex);
    if (!n) return lp.err("'{}' is not a number", s);
    auto [neg, v] = *n;
    if (hex && !neg) {
        if (v > 0xffffffffull) return lp.err("immediate {} does not fit in 32 bits", s);
        return static_cast<int32_t>(static_cast<uint32_t>(v));
    }
    if (neg ? v > 0x80000000ull : v > 0x7fffffffull) return lp.err("immediate {} does not fit in int32", s);
    return static_cast<int32_t>(neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v));
}

result<uint8_t> parse_reg(const line_parser& lp, std::string_view s) {
    if (s.size() < 3 || s[0] != '%' || s[1] != 'r') return lp.err("expected a register, got '{}'", s);
    unsigned r = 0;
    auto [p, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), r);
    // r11-r15 are encodable (negative tests use them); the checker rejects them.
    if (ec != std::errc() || p != s.data() + s.size() || r > 15) return lp.err("invalid register '{}'", s);
    return static_cast<uint8_t>(r);
}

// "[%r1+8]", "[%r10-8]", "[%r1]"
result<std::pair<uint8_t, int16_t>> parse_mem(const line_parser& lp, std::string_view s) {
    if (s.size() < 4 || s.front() != '[' || s.back() != ']') return lp.err("expected [%rN+off], got '{}'", s);
    s = s.substr(1, s.size() - 2);
    size_t sign = s.find_first_of("+-");
    auto reg = parse_reg(lp, s.substr(0, sign));
    if (!reg) return tl::unexpected(reg.error());
    if (sign == std::string_view::npos) return std::pair{*reg, int16_t{0}};
    auto n = parse_number(s.substr(sign));
    if (!n) return lp.err("bad offset in '{}'", s);
    const int64_t v = n->first ? -static_cast<int64_t>(n->second) : static_cast<int64_t>(n->second);
    if (n->second > 0x8000 || v < INT16_MIN || v > INT16_MAX) return lp.err("offset in '{}' does not fit in int16", s);
    return std::pair{*reg, static_cast<int16_t>(v)};
}

constexpr std::pair<std::string_view, uint8_t> alu_ops[] = {
    {"add", op::add}, {"sub", op::sub}, {"mul", op::mul}, {"div", op::div}, {"sdiv", op::div},
    {"or", op::or_},  {"and", op::and_}, {"lsh", op::lsh}, {"rsh", op::rsh}, {"mod", op::mod},
    {"smod", op::mod}, {"xor", op::xor_}, {"mov", op::mov}, {"arsh", op::arsh},
};
constexpr std::pair<std::string_view, uint8_t> jmp_ops[] = {
    {"jeq", op::jeq},   {"jgt", op::jgt},   {"jge", op::jge}, {"jset", op::jset},
    {"jne", op::jne},   {"jsgt", op::jsgt}, {"jsge", op::jsge}, {"jlt", op::jlt},
    {"jle", op::jle},   {"jslt", op::jslt}, {"jsle", op::jsle},
};
constexpr std::pair<std::string_view, uint8_t> size_suffix[] = {
    {"b", op::b}, {"h", op::h}, {"w", op::w}, {"dw", op::dw}};

template <size_t N>
std::optional<uint8_t> lookup(const std::pair<std::string_view, uint8_t> (&table)[N], std::string_view name) {
    for (auto& [n, v] : table)
        if (n == name) return v;
    return std::nullopt;
}

bool strip_suffix(std::string_view& s, std::string_view suffix) {
    if (s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix) {
        s.remove_suffix(suffix.size());
        return true;
    }
    return false;
}

// A jump target: a label (resolved later) or +N / -N slots from the next instruction.
result<std::pair<int32_t, std::string>> parse_target(const line_parser& lp, std::string_view s) {
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
        auto n = parse_number(s);
        if (!n || n->second > 0x80000000ull) return lp.err("bad jump offset '{}'", s);
        return std::pair{static_cast<int32_t>(n->first ? -static_cast<int64_t>(n->second) : n->second), std::string()};
    }
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return lp.err("bad label '{}'", s);
    if (s.empty()) return lp.err("empty jump target");
    return std::pair{0, std::string(s)};
}

// The second operand of ALU and jump instructions: a register (BPF_X, into src) or an immediate
// (BPF_K, into imm). Returns the source bit for the opcode.
result<uint8_t> parse_src_operand(const line_parser& lp, std::string_view operand, insn& i) {
    if (operand.starts_with("%")) {
        auto s = parse_reg(lp, operand);
        if (!s) return tl::unexpected(s.error());
        i.src = *s;
        return op::x;
    }
    auto imm = parse_imm32(lp, operand);
    if (!imm) return tl::unexpected(imm.error());
    i.imm = *imm;
    return op::k;
}

result<std::vector<pending>> parse_line(const line_parser& lp) {
    auto m = lp.mnem;
    const auto& ops = lp.ops;
    auto want = [&](size_t n) -> result<void> {
        if (ops.size() != n) return lp.err("expected {} operand{}, got {}", n, n == 1 ? "" : "s", ops.size());
        return {};
    };
    pending p;
    p.line = lp.line_no;
    insn& i = p.i;

    if (m == "exit") {
        if (auto r = want(0); !r) return tl::unexpected(r.error());
        i.code = op::jmp | op::exit;
        return std::vector{p};
    }
    if (m == "ja" || m == "ja32") {
        if (auto r = want(1); !r) return tl::unexpected(r.error());
        auto t = parse_target(lp, ops[0]);
        if (!t) return tl::unexpected(t.error());
        i.code = (m == "ja" ? op::jmp : op::jmp32) | op::ja;
        p.target_in_imm = m == "ja32";
        if (t->second.empty()) {
            if (p.target_in_imm) i.imm = t->first;
            else if (t->first < INT16_MIN || t->first > INT16_MAX) return lp.err("jump offset out of int16 range");
            else i.off = static_cast<int16_t>(t->first);
        }
        p.target = t->second;
        return std::vector{p};
    }
    if (m == "call") {
        i.code = op::jmp | op::call;
        if (ops.size() == 1 && ops[0].starts_with("%")) {  // callx: register in dst
            auto r = parse_reg(lp, ops[0]);
            if (!r) return tl::unexpected(r.error());
            i.code = op::jmp | op::call | op::x;
            i.dst = *r;
            return std::vector{p};
        }
        std::string_view arg;
        if (ops.size() == 1) {
            arg = ops[0];
        } else if (ops.size() == 2 && (ops[0] == "helper" || ops[0] == "runtime")) {
            i.src = ops[0] == "helper" ? op::call_helper : op::call_kfunc;
            arg = ops[1];
        } else if (ops.size() == 2 && ops[0] == "local") {
            i.src = op::call_local;
            auto t = parse_target(lp, ops[1]);
            if (!t) return tl::unexpected(t.error());
            i.imm = t->first;
            p.target = t->second;
            p.target_in_imm = true;
            return std::vector{p};
        } else {
            return lp.err("expected 'call N', 'call helper N', 'call local TARGET', 'call runtime N' or 'call %rN'");
        }
        auto imm = parse_imm32(lp, arg);
        if (!imm) return tl::unexpected(imm.error());
        i.imm = *imm;
        return std::vector{p};
    }
    if (m == "lddw") {
        if (auto r = want(2); !r) return tl::unexpected(r.error());
        auto d = parse_reg(lp, ops[0]);
        if (!d) return tl::unexpected(d.error());
        auto n = parse_number(ops[1]);
        if (!n) return lp.err("'{}' is not a number", ops[1]);
        if (n->first && n->second > 0x8000000000000000ull) return lp.err("immediate {} does not fit in int64", ops[1]);
        const uint64_t v = n->first ? -n->second : n->second;
        i.code = op::ld | op::imm | op::dw;
        i.dst = *d;
        i.imm = static_cast<int32_t>(static_cast<uint32_t>(v));
        pending hi;
        hi.line = lp.line_no;
        hi.i.imm = static_cast<int32_t>(static_cast<uint32_t>(v >> 32));
        return std::vector{p, hi};
    }
    if (m == "lock") {
        // lock [fetch] OP[32] [dst+off], %rS
        if (ops.empty()) return lp.err("Invalid number of operands for lock");
        size_t k = 0;
        bool fetch = false;
        if (ops[k] == "fetch") {
            fetch = true;
            ++k;
        }
        if (ops.size() != k + 3) return lp.err("Invalid number of operands for lock");
        std::string_view name = ops[k];
        const bool is32 = strip_suffix(name, "32");
        int32_t imm = 0;
        if (name == "add") imm = op::add;
        else if (name == "or") imm = op::or_;
        else if (name == "and") imm = op::and_;
        else if (name == "xor") imm = op::xor_;
        else if (name == "xchg" && !fetch) imm = op::xchg;
        else if (name == "cmpxchg" && !fetch) imm = op::cmpxchg;
        else return lp.err("unknown atomic operation '{}'", ops[k]);
        if (fetch) imm |= op::fetch;
        auto mem = parse_mem(lp, ops[k + 1]);
        if (!mem) return tl::unexpected(mem.error());
        auto s = parse_reg(lp, ops[k + 2]);
        if (!s) return tl::unexpected(s.error());
        i.code = op::stx | op::atomic | (is32 ? op::w : op::dw);
        i.dst = mem->first;
        i.off = mem->second;
        i.src = *s;
        i.imm = imm;
        return std::vector{p};
    }

    // Byte order and byte swaps: le16, be32, swap64, bswap16.
    for (auto [prefix, code] : {std::pair{std::string_view("le"), uint8_t(op::alu | op::end | op::k)},
                                std::pair{std::string_view("be"), uint8_t(op::alu | op::end | op::x)},
                                std::pair{std::string_view("bswap"), uint8_t(op::alu64 | op::end | op::k)},
                                std::pair{std::string_view("swap"), uint8_t(op::alu64 | op::end | op::k)}}) {
        if (!m.starts_with(prefix)) continue;
        auto width = m.substr(prefix.size());
        if (width != "16" && width != "32" && width != "64") continue;
        if (auto r = want(1); !r) return tl::unexpected(r.error());
        auto d = parse_reg(lp, ops[0]);
        if (!d) return tl::unexpected(d.error());
        i.code = code;
        i.dst = *d;
        i.imm = width == "16" ? 16 : width == "32" ? 32 : 64;
        return std::vector{p};
    }

    // Sign-extending moves: movsx<src bits><dst bits>.
    if (m.starts_with("movsx")) {
        auto rest = m.substr(5);
        const bool is32 = strip_suffix(rest, "32");
        if (!is32 && !strip_suffix(rest, "64")) return lp.err("unknown mnemonic");
        if (rest != "8" && rest != "16" && rest != "32") return lp.err("unknown mnemonic");
        if (auto r = want(2); !r) return tl::unexpected(r.error());
        auto d = parse_reg(lp, ops[0]);
        if (!d) return tl::unexpected(d.error());
        auto s = parse_reg(lp, ops[1]);
        if (!s) return tl::unexpected(s.error());
        i.code = (is32 ? op::alu : op::alu64) | op::mov | op::x;
        i.dst = *d;
        i.src = *s;
        i.off = static_cast<int16_t>(rest == "8" ? 8 : rest == "16" ? 16 : 32);
        return std::vector{p};
    }

    // Loads and stores.
    for (auto [prefix, cls, mode] : {std::tuple{std::string_view("ldxs"), op::ldx, op::memsx},
                                     std::tuple{std::string_view("ldx"), op::ldx, op::mem},
                                     std::tuple{std::string_view("stx"), op::stx, op::mem},
                                     std::tuple{std::string_view("st"), op::st, op::mem}}) {
        if (!m.starts_with(prefix)) continue;
        auto size = lookup(size_suffix, m.substr(prefix.size()));
        if (!size) continue;
        if (mode == op::memsx && *size == op::dw) return lp.err("unknown mnemonic");
        if (auto r = want(2); !r) return tl::unexpected(r.error());
        i.code = static_cast<uint8_t>(cls | mode | *size);
        if (cls == op::ldx) {
            auto d = parse_reg(lp, ops[0]);
            if (!d) return tl::unexpected(d.error());
            auto mem = parse_mem(lp, ops[1]);
            if (!mem) return tl::unexpected(mem.error());
            i.dst = *d;
            i.src = mem->first;
            i.off = mem->second;
        } else {
            auto mem = parse_mem(lp, ops[0]);
            if (!mem) return tl::unexpected(mem.error());
            i.dst = mem->first;
            i.off = mem->second;
            if (cls == op::stx) {
                auto s = parse_reg(lp, ops[1]);
                if (!s) return tl::unexpected(s.error());
                i.src = *s;
            } else {
                auto imm = parse_imm32(lp, ops[1]);
                if (!imm) return tl::unexpected(imm.error());
                i.imm = *imm;
            }
        }
        return std::vector{p};
    }

    // Conditional jumps: jeq[32] dst, src|imm, target.
    {
        std::string_view base = m;
        const bool is32 = strip_suffix(base, "32");
        if (auto o = lookup(jmp_ops, base)) {
            if (auto r = want(3); !r) return tl::unexpected(r.error());
            auto d = parse_reg(lp, ops[0]);
            if (!d) return tl::unexpected(d.error());
            i.dst = *d;
            auto src_kind = parse_src_operand(lp, ops[1], i);
            if (!src_kind) return tl::unexpected(src_kind.error());
            i.code = static_cast<uint8_t>((is32 ? op::jmp32 : op::jmp) | *o | *src_kind);
            auto t = parse_target(lp, ops[2]);
            if (!t) return tl::unexpected(t.error());
            if (t->second.empty()) {
                if (t->first < INT16_MIN || t->first > INT16_MAX) return lp.err("jump offset out of int16 range");
                i.off = static_cast<int16_t>(t->first);
            }
            p.target = t->second;
            return std::vector{p};
        }
    }

    // ALU: add[32] dst, src|imm; neg[32] dst.
    {
        std::string_view base = m;
        const bool is32 = strip_suffix(base, "32");
        const uint8_t cls = is32 ? op::alu : op::alu64;
        if (base == "neg") {
            if (auto r = want(1); !r) return tl::unexpected(r.error());
            auto d = parse_reg(lp, ops[0]);
            if (!d) return tl::unexpected(d.error());
            i.code = cls | op::neg;
            i.dst = *d;
            return std::vector{p};
        }
        if (auto o = lookup(alu_ops, base)) {
            if (auto r = want(2); !r) return tl::unexpected(r.error());
            auto d = parse_reg(lp, ops[0]);
            if (!d) return tl::unexpected(d.error());
            i.dst = *d;
            auto src_kind = parse_src_operand(lp, ops[1], i);
            if (!src_kind) return tl::unexpected(src_kind.error());
            i.code = static_cast<uint8_t>(cls | *o | *src_kind);
            if (base == "sdiv" || base == "smod") i.off = 1;
            return std::vector{p};
        }
    }
    return lp.err("unknown mnemonic");
}

}  // namespace

result<std::vector<insn>> assemble(std::string_view text) {
    std::vector<pending> prog;
    std::map<std::string, size_t, std::less<>> labels;
    std::optional<size_t> first_exit;
    size_t line_no = 0;
    while (!text.empty()) {
        const size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        ++line_no;
        if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        auto tokens = split_ws(line);
        if (tokens.empty()) continue;
        if (tokens[0].ends_with(':')) {
            std::string name(tokens[0].substr(0, tokens[0].size() - 1));
            if (name.empty()) return fail(EINVAL, "line {}: empty label", line_no);
            if (!labels.emplace(name, prog.size()).second)
                return fail(EINVAL, "line {}: duplicate label '{}'", line_no, name);
            tokens.erase(tokens.begin());
            if (tokens.empty()) continue;
        }
        line_parser lp{line_no, tokens[0], {}};
        for (size_t k = 1; k < tokens.size(); ++k) {
            auto t = tokens[k];
            if (t.ends_with(',')) t.remove_suffix(1);
            if (t.empty()) return fail(EINVAL, "line {}: empty operand", line_no);
            lp.ops.push_back(t);
        }
        auto parsed = parse_line(lp);
        if (!parsed) return tl::unexpected(parsed.error());
        if (parsed->front().i.code == (op::jmp | op::exit) && !first_exit) first_exit = prog.size();
        prog.insert(prog.end(), parsed->begin(), parsed->end());
    }
    if (prog.empty()) return fail(EINVAL, "no instructions");
    if (first_exit && !labels.contains("exit")) labels.emplace("exit", *first_exit);

    std::vector<insn> out;
    out.reserve(prog.size());
    for (size_t pc = 0; pc < prog.size(); ++pc) {
        pending& p = prog[pc];
        if (!p.target.empty()) {
            auto it = labels.find(p.target);
            if (it == labels.end()) return fail(EINVAL, "line {}: unknown label '{}'", p.line, p.target);
            const int64_t rel = static_cast<int64_t>(it->second) - static_cast<int64_t>(pc + 1);
            if (p.target_in_imm) {
                p.i.imm = static_cast<int32_t>(rel);
            } else {
                if (rel < INT16_MIN || rel > INT16_MAX)
                    return fail(EINVAL, "line {}: jump to '{}' is out of int16 range", p.line, p.target);
                p.i.off = static_cast<int16_t>(rel);
            }
        }
        out.push_back(p.i);
    }
    return out;
}

result<std::vector<insn>> from_bytes(std::span<const uint8_t> bytes) {
    if (bytes.size() % sizeof(insn) != 0)
        return fail(EINVAL, "program size {} is not a multiple of {} bytes", bytes.size(), sizeof(insn));
    std::vector<insn> out(bytes.size() / sizeof(insn));
    if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
}

}  // namespace xdprt::isa
