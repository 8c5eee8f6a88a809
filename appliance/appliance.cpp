#include "appliance/appliance.h"

#include <linux/bpf.h>
#include <net/if.h>

#include <algorithm>
#include <array>

namespace xdprt::appliance {

result<std::unique_ptr<appliance>> appliance::create(options opts) {
    std::unique_ptr<appliance> a(new appliance());
    for (const auto& p : opts.dataplane.ports)
        a->_device_ifindex.push_back(p.kind == dataplane::port_kind::af_xdp ? if_nametoindex(p.device.c_str()) : 0);
    a->_attached_through.assign(opts.dataplane.ports.size(), 0);
    auto dp = dataplane::dataplane::create(std::move(opts.dataplane));
    if (!dp) return tl::unexpected(dp.error());
    a->_dataplane = std::move(*dp);
    auto s = control::server::create(std::move(opts.server));
    if (!s) return tl::unexpected(s.error());
    a->_server = std::move(*s);
    appliance* self = a.get();
    a->_server->set_xdp_listener([self](uint32_t ifindex, const control::server::runnable_prog& p) {
        return self->attach(ifindex, p);
    });
    a->_server->set_xsk_binder([self](int fd) { return self->_dataplane->bind_xsk(fd); });
    const auto& ports = a->_dataplane->ports();
    for (size_t k = 0; k < ports.size(); ++k) {
        if (ports[k].ifindex) a->_server->serve_interface(ports[k].ifindex, ports[k].name);
        if (uint32_t dev = a->_device_ifindex[k]) {
            std::array<char, IF_NAMESIZE> name{};
            a->_server->serve_interface(dev, if_indextoname(dev, name.data()) ? name.data() : ports[k].name);
        }
    }
    return a;
}

result<void> appliance::attach(uint32_t ifindex, const control::server::runnable_prog& p) {
    int port = port_of_ifindex(ifindex);
    if (port < 0) return fail(ENODEV, "ifindex {} is no port of the appliance", ifindex);
    uint32_t& through = _attached_through[size_t(port)];
    if (!p.prog) {  // a detach through the other interface leaves the port's program alone
        if (through != ifindex) return {};
        through = 0;
        return _dataplane->attach(size_t(port), {});
    }
    if (through && through != ifindex)
        return fail(EBUSY, "port '{}' runs a program attached through ifindex {}: detach it there first",
                    _dataplane->ports()[size_t(port)].name, through);
    if (auto ok = _dataplane->attach(size_t(port), dataplane::xdp_program{p.prog, p.owner, p.name}); !ok) return ok;
    through = ifindex;
    return {};
}

appliance::~appliance() {
    if (_dataplane) _dataplane->stop();
    if (_server) {
        _server->set_xdp_listener(nullptr);
        _server->set_xsk_binder(nullptr);
    }
    // The server goes first: its objects (and the programs the ports ran) are freed after the
    // workers stopped. The dataplane's ports and twins go last.
    _server.reset();
    _dataplane.reset();
}

int appliance::port(std::string_view name) const {
    auto& ps = _dataplane->ports();
    auto it = std::find_if(ps.begin(), ps.end(), [&](auto& p) { return p.name == name; });
    return it == ps.end() ? -1 : int(it - ps.begin());
}

int appliance::port_of_ifindex(uint32_t ifindex) const {
    if (!ifindex) return -1;
    auto& ps = _dataplane->ports();
    for (size_t k = 0; k < ps.size(); ++k)
        if (ps[k].ifindex == ifindex || _device_ifindex[k] == ifindex) return int(k);
    return -1;
}

}  // namespace xdprt::appliance
