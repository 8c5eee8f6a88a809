// Loading: structural check, then ld_imm64 pseudo sources resolved through the linkage.
#include <cerrno>

#include "vm/vm.h"

namespace xdprt::vm {

isa::check_options linkage::helper_check() const {
    isa::check_options c;
    c.helper_cookie = this;
    c.helper_known = [](int32_t id, const void* cookie) {
        const auto& l = *static_cast<const linkage*>(cookie);
        if (id == tail_call_helper_id && l.tail_call_target) return true;
        return id >= 0 && static_cast<size_t>(id) < max_helper_id && l.helpers[id] != nullptr;
    };
    return c;
}

result<program> load(std::string name, std::span<const isa::insn> insns, const linkage& link,
                     const load_options& opts) {
    auto context = [&](error e) { return tl::unexpected(with_context(std::move(e), fmt::format("prog '{}'", name))); };
    // Unless the embedder says otherwise, a helper exists when the linkage provides it: a program
    // calling anything else is refused here, never met at run time (DESIGN.md invariant 6).
    isa::check_options check = opts.check;
    if (!check.helper_known) {
        isa::check_options h = link.helper_check();
        check.helper_cookie = h.helper_cookie;
        check.helper_known = h.helper_known;
    }
    auto layout = isa::check(insns, check);
    if (!layout) return context(layout.error());

    program prog;
    prog.insns.assign(insns.begin(), insns.end());
    prog.layout = std::move(*layout);
    prog.link = &link;
    for (size_t pc = 0; pc < prog.insns.size(); ++pc) {
        isa::insn& i = prog.insns[pc];
        if (isa::info(i.code).k != isa::kind::ld_imm64) continue;
        isa::insn& hi = prog.insns[pc + 1];
        if (i.src != 0) {
            if (!link.resolve_pseudo)
                return context(error{EINVAL, fmt::format("insn {}: lddw with pseudo source {} but the program "
                                                         "is linked against no maps", pc, int(i.src))});
            auto v = link.resolve_pseudo(i.src, i.imm, hi.imm);
            if (!v) return context(with_context(v.error(), fmt::format("insn {}", pc)));
            i.src = 0;
            i.imm = static_cast<int32_t>(static_cast<uint32_t>(*v));
            hi.imm = static_cast<int32_t>(static_cast<uint32_t>(*v >> 32));
        }
        ++pc;
    }
    prog.name = std::move(name);
    return prog;
}

}  // namespace xdprt::vm
