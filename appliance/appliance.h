// The appliance: the bpf() server and the dataplane, wired together (DESIGN.md sections 4, 5).
//
// Each port's kernel twin gives it an ifindex; the server serves those ifindexes, and the kernel
// interfaces af_xdp ports read, so an XDP attach to one (a bpf_link, and through the shim
// netlink) reaches the dataplane: the server tells the appliance, which swaps the port's program
// (dataplane::attach) before the command returns. A port runs one program: attached through its
// twin or through its af_xdp interface, not both at once (EBUSY). An AF_XDP socket entering an XSKMAP is handed to the dataplane (dataplane::bind_xsk).
//
// Thread affinity: create/start/stop from the control thread; the server's commands from any.
#pragma once

#include <memory>
#include <vector>

#include "base/result.h"
#include "control/server.h"
#include "dataplane/dataplane.h"

namespace xdprt::appliance {

struct options {
    control::server_options server;
    dataplane::options dataplane;
};

class appliance {
public:
    [[nodiscard]] static result<std::unique_ptr<appliance>> create(options opts);
    ~appliance();
    appliance(const appliance&) = delete;
    appliance& operator=(const appliance&) = delete;

    control::server& server() { return *_server; }
    dataplane::dataplane& dataplane() { return *_dataplane; }

    // The port's index by name, or by an ifindex it is attached through (its twin's, or the
    // kernel interface an af_xdp port reads); -1 when there is none.
    int port(std::string_view name) const;
    int port_of_ifindex(uint32_t ifindex) const;

private:
    appliance() = default;
    // An attach through `ifindex`: one port, one program, through one of its interfaces at a time.
    [[nodiscard]] result<void> attach(uint32_t ifindex, const control::server::runnable_prog& p);
    std::unique_ptr<control::server> _server;
    std::unique_ptr<dataplane::dataplane> _dataplane;
    std::vector<uint32_t> _device_ifindex;    // per port: the af_xdp port's kernel interface, else 0
    std::vector<uint32_t> _attached_through;  // per port: the ifindex its program came through, 0: none
};

}  // namespace xdprt::appliance
