// katran-ctl: Katran's control plane from a YAML file, against the kernel or (under
// `xdprt with --`) the appliance. katran-port/README.md says how.
//
//   katran-ctl apply  -c FILE   load (or reopen the pinned), program VIPs/reals/rings, attach
//   katran-ctl stats  -c FILE   packets and bytes per VIP and per real
//   katran-ctl detach -c FILE   detach and remove the pins
#include <cstdio>
#include <cstring>
#include <string>

#include "balancer.h"

using namespace xdprt::katran;

namespace {

int usage() {
    std::fprintf(stderr,
                 "usage: katran-ctl apply|stats|detach -c FILE.yaml\n"
                 "  apply   load Katran's object (or reopen what pin_dir holds), program VIPs, reals and\n"
                 "          Maglev rings to match FILE (only what changed is written), attach\n"
                 "  stats   packets and bytes per VIP and per real\n"
                 "  detach  detach, then remove the pins\n");
    return 2;
}

int failed(const xdprt::error& e) {
    std::fprintf(stderr, "katran-ctl: %s\n", e.message.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4 || std::strcmp(argv[2], "-c") != 0) return usage();
    const std::string cmd = argv[1];
    if (cmd != "apply" && cmd != "stats" && cmd != "detach") return usage();
    auto cfg = load_config(argv[3]);
    if (!cfg) return failed(cfg.error());
    if (cmd != "apply" && cfg->pin_dir.empty()) {
        std::fprintf(stderr, "katran-ctl: %s: %s needs pin_dir (where apply pinned the balancer)\n", argv[3], cmd.c_str());
        return 1;
    }
    auto lb = balancer::open(*cfg);
    if (!lb) return failed(lb.error());
    if (cmd == "apply") {
        auto rep = lb->apply(*cfg);
        if (!rep) return failed(rep.error());
        std::printf("vips: %zu added, %zu changed, %zu removed; reals: %zu added, %zu removed; ring slots written: %zu; "
                    "lru entries purged: %zu; server ids removed: %zu\n",
                    rep->vips_added, rep->vips_changed, rep->vips_removed, rep->reals_added, rep->reals_removed,
                    rep->ring_slots_written, rep->lru_entries_purged, rep->server_ids_removed);
        if (!cfg->interface.empty() || !cfg->root_array.empty()) {
            if (auto ok = lb->attach(*cfg); !ok) return failed(ok.error());
            std::printf("attached: %s\n", cfg->root_array.empty() ? cfg->interface.c_str() : cfg->root_array.c_str());
        }
        return 0;
    }
    if (cmd == "stats") {
        for (const auto& v : cfg->vips) {
            auto c = lb->vip_stats(v);
            if (!c) return failed(c.error());
            std::printf("vip %s: %lu packets, %lu bytes\n", v.name().c_str(), (unsigned long)c->packets, (unsigned long)c->bytes);
            for (const auto& r : v.reals) {
                auto rc = lb->real_stats(r.address);
                if (!rc) return failed(rc.error());
                std::printf("  real %s: %lu packets, %lu bytes\n", r.address.c_str(), (unsigned long)rc->packets, (unsigned long)rc->bytes);
            }
        }
        return 0;
    }
    if (!cfg->interface.empty() || !cfg->root_array.empty())
        if (auto ok = lb->detach(*cfg); !ok) return failed(ok.error());
    if (auto ok = lb->unpin(*cfg); !ok) return failed(ok.error());
    std::printf("detached; pins in %s removed\n", cfg->pin_dir.c_str());
    return 0;
}
