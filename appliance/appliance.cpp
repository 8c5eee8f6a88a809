#include "appliance/appliance.h"

#include <linux/bpf.h>

#include <algorithm>

namespace xdprt::appliance {

result<std::unique_ptr<appliance>> appliance::create(options opts) {
    std::unique_ptr<appliance> a(new appliance());
    auto dp = dataplane::dataplane::create(std::move(opts.dataplane));
    if (!dp) return tl::unexpected(dp.error());
    a->_dataplane = std::move(*dp);
    auto s = control::server::create(std::move(opts.server));
    if (!s) return tl::unexpected(s.error());
    a->_server = std::move(*s);
    appliance* self = a.get();
    a->_server->set_xdp_listener([self](uint32_t ifindex, const control::server::runnable_prog& p) -> result<void> {
        int port = self->port_of_ifindex(ifindex);
        if (port < 0) return fail(ENODEV, "ifindex {} is no port of the appliance", ifindex);
        return self->_dataplane->attach(size_t(port), dataplane::xdp_program{p.prog, p.owner, p.name});
    });
    a->_server->set_xsk_binder([self](int fd) { return self->_dataplane->bind_xsk(fd); });
    for (auto& port : a->_dataplane->ports())
        if (port.ifindex) a->_server->serve_interface(port.ifindex, port.name);
    return a;
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
    auto& ps = _dataplane->ports();
    auto it = std::find_if(ps.begin(), ps.end(), [&](auto& p) { return p.ifindex == ifindex && ifindex; });
    return it == ps.end() ? -1 : int(it - ps.begin());
}

}  // namespace xdprt::appliance
