#include "elf/elf.h"

#include <elf.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace xdprt::elf {

namespace {

constexpr uint16_t em_bpf = 247;
constexpr uint32_t r_bpf_64_64 = 1;  // ld_imm64 of a symbol's address (maps, global data)
constexpr uint32_t r_bpf_64_32 = 10; // call of a bpf function

// A bounds-checked view of the file.
class image {
public:
    explicit image(std::span<const uint8_t> b) : _b(b) {}

    template <class T>
    result<T> read(uint64_t off, std::string_view what) const {
        if (off > _b.size() || sizeof(T) > _b.size() - off)
            return fail(EINVAL, "{} at offset {} is beyond the end of the file ({} bytes)", what, off, _b.size());
        T v;
        std::memcpy(&v, _b.data() + off, sizeof(T));
        return v;
    }

    result<std::span<const uint8_t>> bytes(uint64_t off, uint64_t size, std::string_view what) const {
        if (off > _b.size() || size > _b.size() - off)
            return fail(EINVAL, "{} [{}, +{}) is beyond the end of the file ({} bytes)", what, off, size, _b.size());
        return _b.subspan(off, size);
    }

private:
    std::span<const uint8_t> _b;
};

struct section {
    Elf64_Shdr hdr;
    std::string name;
};

std::string c_string(std::span<const uint8_t> table, uint64_t off) {
    if (off >= table.size()) return {};
    const auto* p = reinterpret_cast<const char*>(table.data() + off);
    return std::string(p, strnlen(p, table.size() - off));
}

}  // namespace

result<object> read_object(std::span<const uint8_t> bytes) {
    const image img(bytes);
    auto eh = img.read<Elf64_Ehdr>(0, "ELF header");
    if (!eh) return tl::unexpected(eh.error());
    if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) return fail(EINVAL, "not an ELF file");
    if (eh->e_ident[EI_CLASS] != ELFCLASS64) return fail(EINVAL, "not a 64-bit ELF file");
    if (eh->e_ident[EI_DATA] != ELFDATA2LSB) return fail(EINVAL, "not a little-endian ELF file");
    if (eh->e_ident[EI_VERSION] != EV_CURRENT) return fail(EINVAL, "unknown ELF version {}", eh->e_ident[EI_VERSION]);
    if (eh->e_type != ET_REL) return fail(EINVAL, "not a relocatable object (e_type {})", eh->e_type);
    if (eh->e_machine != em_bpf) return fail(EINVAL, "not a BPF object (e_machine {})", eh->e_machine);
    if (eh->e_shentsize != sizeof(Elf64_Shdr)) return fail(EINVAL, "bad section header size {}", eh->e_shentsize);
    if (eh->e_shnum == 0 || eh->e_shnum > 4096) return fail(EINVAL, "bad section count {}", eh->e_shnum);

    std::vector<section> secs(eh->e_shnum);
    for (size_t k = 0; k < secs.size(); ++k) {
        auto sh = img.read<Elf64_Shdr>(eh->e_shoff + k * sizeof(Elf64_Shdr), fmt::format("section header {}", k));
        if (!sh) return tl::unexpected(sh.error());
        secs[k].hdr = *sh;
    }
    if (eh->e_shstrndx >= secs.size()) return fail(EINVAL, "bad section name table index {}", eh->e_shstrndx);
    auto shstr = img.bytes(secs[eh->e_shstrndx].hdr.sh_offset, secs[eh->e_shstrndx].hdr.sh_size, "section names");
    if (!shstr) return tl::unexpected(shstr.error());
    for (auto& s : secs) s.name = c_string(*shstr, s.hdr.sh_name);

    // Symbols.
    const section* symtab = nullptr;
    for (auto& s : secs)
        if (s.hdr.sh_type == SHT_SYMTAB) symtab = &s;
    if (!symtab) return fail(EINVAL, "no symbol table");
    if (symtab->hdr.sh_link >= secs.size()) return fail(EINVAL, "symbol table: bad string table link");
    auto strtab = img.bytes(secs[symtab->hdr.sh_link].hdr.sh_offset, secs[symtab->hdr.sh_link].hdr.sh_size, "string table");
    if (!strtab) return tl::unexpected(strtab.error());
    const size_t nsyms = symtab->hdr.sh_size / sizeof(Elf64_Sym);
    std::vector<Elf64_Sym> syms(nsyms);
    for (size_t k = 0; k < nsyms; ++k) {
        auto s = img.read<Elf64_Sym>(symtab->hdr.sh_offset + k * sizeof(Elf64_Sym), fmt::format("symbol {}", k));
        if (!s) return tl::unexpected(s.error());
        syms[k] = *s;
    }

    object obj;
    // `.text` holds the bpf-to-bpf functions programs call.
    size_t text_idx = 0;
    std::vector<isa::insn> text;
    for (size_t k = 0; k < secs.size(); ++k) {
        if (secs[k].name == ".text" && secs[k].hdr.sh_type == SHT_PROGBITS) {
            text_idx = k;
            auto b = img.bytes(secs[k].hdr.sh_offset, secs[k].hdr.sh_size, "section '.text'");
            if (!b) return tl::unexpected(b.error());
            auto t = isa::from_bytes(*b);
            if (!t) return tl::unexpected(with_context(t.error(), "section '.text'"));
            text = std::move(*t);
        }
        if (secs[k].name == "license") {
            auto b = img.bytes(secs[k].hdr.sh_offset, secs[k].hdr.sh_size, "section 'license'");
            if (!b) return tl::unexpected(b.error());
            obj.license = c_string(*b, 0);
        }
    }

    // Relocations by the section they apply to.
    auto relocations_of = [&](size_t target) -> result<std::vector<Elf64_Rel>> {
        std::vector<Elf64_Rel> out;
        for (auto& s : secs) {
            if (s.hdr.sh_type != SHT_REL || s.hdr.sh_info != target) continue;
            if (s.hdr.sh_link >= secs.size() || &secs[s.hdr.sh_link] != symtab)
                return fail(EINVAL, "section '{}': relocations do not use the symbol table", s.name);
            for (size_t k = 0; k < s.hdr.sh_size / sizeof(Elf64_Rel); ++k) {
                auto r = img.read<Elf64_Rel>(s.hdr.sh_offset + k * sizeof(Elf64_Rel), fmt::format("section '{}': relocation {}", s.name, k));
                if (!r) return tl::unexpected(r.error());
                out.push_back(*r);
            }
        }
        return out;
    };
    auto symbol_name = [&](const Elf64_Sym& s) {
        if (ELF64_ST_TYPE(s.st_info) == STT_SECTION && s.st_shndx < secs.size()) return secs[s.st_shndx].name;
        return c_string(*strtab, s.st_name);
    };
    auto refuse_data_relocs = [&](const std::vector<Elf64_Rel>& rels, std::string_view where) -> result<void> {
        for (auto& r : rels) {
            const uint32_t sym = ELF64_R_SYM(r.r_info);
            if (sym >= syms.size()) return fail(EINVAL, "{}: relocation at {} names symbol {} of {}", where, r.r_offset, sym, syms.size());
            if (ELF64_R_TYPE(r.r_info) == r_bpf_64_64)
                return fail(ENOTSUP, "{}: insn {} refers to '{}' (a map or global data): load this object through "
                                     "libbpf and the bpf() server", where, r.r_offset / 8, symbol_name(syms[sym]));
        }
        return {};
    };
    if (text_idx != 0) {
        auto rels = relocations_of(text_idx);
        if (!rels) return tl::unexpected(rels.error());
        if (auto r = refuse_data_relocs(*rels, "section '.text'"); !r) return tl::unexpected(r.error());
    }

    for (size_t k = 0; k < secs.size(); ++k) {
        const section& sec = secs[k];
        if (k == text_idx || sec.hdr.sh_type != SHT_PROGBITS || !(sec.hdr.sh_flags & SHF_EXECINSTR)) continue;
        auto body = img.bytes(sec.hdr.sh_offset, sec.hdr.sh_size, fmt::format("section '{}'", sec.name));
        if (!body) return tl::unexpected(body.error());
        auto insns = isa::from_bytes(*body);
        if (!insns) return tl::unexpected(with_context(insns.error(), fmt::format("section '{}'", sec.name)));
        auto rels = relocations_of(k);
        if (!rels) return tl::unexpected(rels.error());
        if (auto r = refuse_data_relocs(*rels, fmt::format("section '{}'", sec.name)); !r) return tl::unexpected(r.error());

        for (const Elf64_Sym& s : syms) {
            if (s.st_shndx != k || ELF64_ST_TYPE(s.st_info) != STT_FUNC) continue;
            program p;
            p.name = c_string(*strtab, s.st_name);
            p.section = sec.name;
            const std::string where = fmt::format("section '{}': program '{}'", sec.name, p.name);
            if (s.st_value % 8 || s.st_size % 8 || s.st_value > sec.hdr.sh_size || s.st_size > sec.hdr.sh_size - s.st_value)
                return fail(EINVAL, "{}: symbol range [{}, +{}) is outside the section", where, s.st_value, s.st_size);
            const size_t first = s.st_value / 8, count = s.st_size / 8;
            p.insns.assign(insns->begin() + first, insns->begin() + first + count);
            bool uses_text = false;
            for (auto& r : *rels) {
                if (r.r_offset % 8 || r.r_offset / 8 < first || r.r_offset / 8 >= first + count) continue;
                if (ELF64_R_TYPE(r.r_info) != r_bpf_64_32)
                    return fail(ENOTSUP, "{}: insn {}: unsupported relocation type {}", where, r.r_offset / 8 - first, ELF64_R_TYPE(r.r_info));
                const Elf64_Sym& target = syms[ELF64_R_SYM(r.r_info)];
                const size_t pc = r.r_offset / 8 - first;
                isa::insn& call = p.insns[pc];
                if (target.st_shndx != text_idx || text_idx == 0 || call.code != (isa::op::jmp | isa::op::call))
                    return fail(ENOTSUP, "{}: insn {}: call to '{}' outside '.text' is not supported", where, pc, symbol_name(target));
                // The callee's index inside .text (libbpf's rule: symbol value / 8 + imm + 1).
                const int64_t callee = static_cast<int64_t>(target.st_value / 8) + call.imm + 1;
                if (callee < 0 || callee >= static_cast<int64_t>(text.size()))
                    return fail(EINVAL, "{}: insn {}: call target {} is outside '.text'", where, pc, callee);
                call.src = isa::op::call_local;
                call.imm = static_cast<int32_t>(static_cast<int64_t>(count) + callee - static_cast<int64_t>(pc) - 1);
                uses_text = true;
            }
            if (uses_text) p.insns.insert(p.insns.end(), text.begin(), text.end());
            obj.programs.push_back(std::move(p));
        }
    }
    return obj;
}

result<object> read_object_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(ENOENT, "{}: cannot open", path.string());
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto obj = read_object(bytes);
    if (!obj) return tl::unexpected(with_context(obj.error(), path.string()));
    return obj;
}

}  // namespace xdprt::elf
