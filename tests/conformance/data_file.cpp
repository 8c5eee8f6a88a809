#include "data_file.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace xdprt::conformance {

namespace fs = std::filesystem;

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

result<std::string> read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return fail(ENOENT, "{}: cannot open", p.string());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Hex bytes, possibly in tcpdump -xx form: everything up to the last ':' of a line is dropped.
result<std::vector<uint8_t>> parse_mem(std::string_view body, const fs::path& where) {
    std::vector<uint8_t> out;
    std::string digits;
    std::istringstream lines{std::string(body)};
    for (std::string line; std::getline(lines, line);) {
        std::string_view l = line;
        if (size_t c = l.rfind(':'); c != std::string_view::npos) l = l.substr(c + 1);
        for (char ch : l) {
            if (std::isxdigit(static_cast<unsigned char>(ch))) digits += ch;
            else if (!std::isspace(static_cast<unsigned char>(ch)))
                return fail(EINVAL, "{}: mem: unexpected character '{}'", where.string(), ch);
        }
        if (digits.size() % 2 != 0) return fail(EINVAL, "{}: mem: odd number of hex digits", where.string());
    }
    for (size_t k = 0; k < digits.size(); k += 2)
        out.push_back(static_cast<uint8_t>(std::stoul(digits.substr(k, 2), nullptr, 16)));
    return out;
}

result<uint64_t> parse_u64(std::string_view s, const fs::path& where) {
    s = trim(s);
    int base = 10;
    if (s.find("0x") != std::string_view::npos || s.find("0X") != std::string_view::npos) {
        s.remove_prefix(s.find_first_of("xX") + 1);
        base = 16;
    }
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (ec != std::errc() || p != s.data() + s.size())
        return fail(EINVAL, "{}: '{}' is not a 64-bit number", where.string(), s);
    return v;
}

// `-- raw`: one 64-bit word per token, or (negative/unused-*) 8 two-digit hex bytes per line.
result<std::vector<isa::insn>> parse_raw(std::string_view body, const fs::path& where) {
    std::vector<uint8_t> bytes;
    std::istringstream lines{std::string(body)};
    for (std::string line; std::getline(lines, line);) {
        std::istringstream toks(line);
        std::vector<std::string> t;
        for (std::string s; toks >> s;) t.push_back(s);
        if (t.empty()) continue;
        const bool byte_form = t.size() == 8 && std::all_of(t.begin(), t.end(), [](const std::string& s) {
            return s.size() == 2 && std::isxdigit(static_cast<unsigned char>(s[0])) &&
                   std::isxdigit(static_cast<unsigned char>(s[1]));
        });
        if (byte_form) {
            for (auto& s : t) bytes.push_back(static_cast<uint8_t>(std::stoul(s, nullptr, 16)));
            continue;
        }
        for (auto& s : t) {
            auto w = parse_u64(s, where);
            if (!w) return tl::unexpected(w.error());
            for (int b = 0; b < 8; ++b) bytes.push_back(static_cast<uint8_t>(*w >> (8 * b)));
        }
    }
    return isa::from_bytes(bytes);
}

}  // namespace

result<data_file> parse_data_file(const fs::path& path) {
    auto text = read_text(path);
    if (!text) return tl::unexpected(text.error());
    data_file f;
    f.path = path;

    struct section {
        std::string name;
        std::string include;
        std::string body;
    };
    std::vector<section> sections;
    std::istringstream lines(*text);
    for (std::string line; std::getline(lines, line);) {
        if (size_t h = line.find('#'); h != std::string::npos) line.resize(h);
        std::string_view l = trim(line);
        if (l.starts_with("--")) {
            std::string_view name = trim(l.substr(2));
            section s;
            if (size_t at = name.find('@'); at != std::string_view::npos) {
                s.include = std::string(trim(name.substr(at + 1)));
                name = trim(name.substr(0, at));
            }
            s.name = std::string(name);
            sections.push_back(std::move(s));
            continue;
        }
        if (l.empty()) continue;
        if (sections.empty()) return fail(EINVAL, "{}: text before the first section", path.string());
        sections.back().body += std::string(l) + "\n";
    }

    for (auto& s : sections) {
        if (!s.include.empty()) {
            auto inc = read_text(path.parent_path() / s.include);
            if (!inc) return tl::unexpected(inc.error());
            // Included files have comments too.
            std::string body;
            std::istringstream il(*inc);
            for (std::string line; std::getline(il, line);) {
                if (size_t h = line.find('#'); h != std::string::npos) line.resize(h);
                body += line + "\n";
            }
            s.body = std::move(body);
        }
        if (s.name == "asm") {
            f.asm_text = s.body;
        } else if (s.name == "raw") {
            auto r = parse_raw(s.body, path);
            if (!r) return tl::unexpected(r.error());
            f.raw = std::move(*r);
        } else if (s.name == "mem") {
            auto m = parse_mem(s.body, path);
            if (!m) return tl::unexpected(m.error());
            f.mem = std::move(*m);
        } else if (s.name == "result") {
            std::string_view body = trim(s.body);
            if (size_t nl = body.rfind('\n'); nl != std::string_view::npos) body = body.substr(nl + 1);
            auto v = parse_u64(body, path);
            if (!v) return tl::unexpected(v.error());
            f.result = *v;
        } else if (s.name == "error") {
            f.error = std::string(trim(s.body));
        } else if (s.name == "error pattern") {
            f.error_pattern = std::string(trim(s.body));
        } else if (s.name == "no jit") {
            f.no_jit = std::string(trim(s.body));
        } else if (s.name == "c" || s.name == "no register offset" || s.name == "description" ||
                   s.name == "reload" || s.name == "unload") {
            // documentation or uBPF API hints: nothing to run
        } else {
            return fail(EINVAL, "{}: unsupported section '-- {}'", path.string(), s.name);
        }
    }
    return f;
}

result<std::vector<isa::insn>> program_of(const data_file& f) {
    if (f.raw) return *f.raw;
    if (f.asm_text) {
        auto p = isa::assemble(*f.asm_text);
        if (!p) return tl::unexpected(with_context(p.error(), f.path.filename().string()));
        return p;
    }
    return fail(EINVAL, "{}: no program (neither -- asm nor -- raw)", f.path.filename().string());
}

std::vector<fs::path> list_data_files(const fs::path& dir, bool recursive) {
    std::vector<fs::path> out;
    std::error_code ec;
    auto add = [&](const fs::directory_entry& e) {
        if (e.is_regular_file() && e.path().extension() == ".data") out.push_back(e.path());
    };
    if (recursive) {
        for (auto& e : fs::recursive_directory_iterator(dir, ec)) add(e);
    } else {
        for (auto& e : fs::directory_iterator(dir, ec)) add(e);
    }
    std::sort(out.begin(), out.end());
    return out;
}

uint64_t helper_pack(uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5) {
    return (r1 & 0xff) << 32 | (r2 & 0xff) << 24 | (r3 & 0xff) << 16 | (r4 & 0xff) << 8 | (r5 & 0xff);
}

uint64_t helper_memfrob(uint64_t r1, uint64_t r2, uint64_t, uint64_t, uint64_t) {
    auto* p = reinterpret_cast<uint8_t*>(r1);
    for (uint64_t k = 0; k < r2; ++k) p[k] ^= 42;
    return 0;
}

uint64_t helper_nop(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) { return 0; }

uint64_t helper_sqrti(uint64_t r1, uint64_t, uint64_t, uint64_t, uint64_t) {
    uint64_t x = static_cast<uint64_t>(std::sqrt(static_cast<double>(r1)));
    while (x * x > r1) --x;
    while ((x + 1) * (x + 1) <= r1) ++x;
    return x;
}

uint64_t helper_strcmp(uint64_t r1, uint64_t r2, uint64_t, uint64_t, uint64_t) {
    return static_cast<uint64_t>(static_cast<int64_t>(
        std::strcmp(reinterpret_cast<const char*>(r1), reinterpret_cast<const char*>(r2))));
}

uint64_t helper_identity(uint64_t r1, uint64_t, uint64_t, uint64_t, uint64_t) { return r1; }

}  // namespace xdprt::conformance
