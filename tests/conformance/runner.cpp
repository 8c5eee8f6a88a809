#include "runner.h"

#include <cstdlib>

#include "vm/vm.h"
#ifdef XDPRT_HAVE_JIT
#include "jit/jit.h"
#endif

namespace xdprt::conformance {

std::string_view to_string(engine e) { return e == engine::interpreter ? "interpreter" : "jit"; }

std::string_view to_string(verdict v) {
    switch (v) {
    case verdict::pass: return "PASS";
    case verdict::fail: return "FAIL";
    case verdict::error: return "ERROR";
    case verdict::skip: return "SKIP";
    }
    return "?";
}

std::vector<engine> available_engines() {
#ifdef XDPRT_HAVE_JIT
    return {engine::interpreter, engine::jit};
#else
    return {engine::interpreter};
#endif
}

std::filesystem::path conformance_root() {
    if (const char* env = std::getenv("XDPRT_CONFORMANCE_DIR")) return env;
    return XDPRT_CONFORMANCE_DIR;
}

namespace {

const vm::linkage& test_linkage() {
    static const vm::linkage link = [] {
        vm::linkage l;
        l.helpers[0] = helper_pack;
        l.helpers[1] = helper_memfrob;
        l.helpers[2] = helper_nop;
        l.helpers[3] = helper_sqrti;
        l.helpers[4] = helper_strcmp;
        l.helpers[5] = helper_identity;
        return l;
    }();
    return link;
}

bool known_helper(int32_t id, const void*) { return id >= 0 && id <= 5; }

}  // namespace

judgement judge(const std::filesystem::path& file, engine e, const run_options& opts) {
    auto f = parse_data_file(file);
    if (!f) return {verdict::error, f.error().message};
    const bool expects_error = f->error || f->error_pattern;
    auto rejected = [&](const std::string& why) -> judgement {
        if (f->error) return {verdict::pass, "rejected as expected: " + why};
        if (f->error_pattern) return {verdict::fail, "expected a run-time fault, rejected at load: " + why};
        return {verdict::error, why};
    };

    if (!f->result && !expects_error)
        return {verdict::skip, "nothing to run (no -- result, no -- error): an encoding test, see tests/isa"};
    auto insns = program_of(*f);
    if (!insns) return rejected(insns.error().message);

    vm::load_options lo;
    lo.check.cpu_version = opts.cpu_version;
    lo.check.allow_callx = true;
    lo.check.helper_known = known_helper;
    auto prog = vm::load(file.stem().string(), *insns, test_linkage(), lo);
    if (!prog) return rejected(prog.error().message);

    if (e == engine::jit && f->no_jit) return {verdict::skip, "not for the JIT: " + *f->no_jit};

    std::vector<uint8_t> mem = f->mem;
    const uint64_t r1 = mem.empty() ? 0 : reinterpret_cast<uint64_t>(mem.data());
    const uint64_t r2 = mem.size();
    const vm::region regions[] = {{r1, r2, true}};

    uint64_t r0 = 0;
    if (e == engine::interpreter) {
        auto r = vm::interpret(*prog, r1, r2, regions);
        if (!r) {
            if (f->error_pattern) return {verdict::pass, "faulted as expected: " + r.error().message};
            if (f->error) return {verdict::pass, "faulted at run time: " + r.error().message};
            return {verdict::error, r.error().message};
        }
        r0 = *r;
    } else {
#ifdef XDPRT_HAVE_JIT
        auto c = jit::compile(*prog);
        if (!c) return rejected(c.error().message);
        r0 = c->run(r1, r2);
#else
        return {verdict::skip, "JIT not built"};
#endif
    }
    if (expects_error && !f->result) return {verdict::fail, fmt::format("error expected but the program ran, r0 = {:#x}", r0)};
    if (r0 != *f->result) return {verdict::fail, fmt::format("r0 = {:#x}, expected {:#x}", r0, *f->result)};
    return {verdict::pass, ""};
}

}  // namespace xdprt::conformance
