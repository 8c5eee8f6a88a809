// The control socket (DESIGN.md section 5): how loaders in other processes reach the server,
// through the preload shim (preload.cpp). Messages: wire.h.
//
// Admission: a peer whose uid is 0, or that is in the configured group (its primary or a
// supplementary group, SO_PEERCRED / SO_PEERGROUPS), is served; any other gets one EPERM reply
// naming why and is disconnected. A malformed message (wrong size, magic, version or call) gets
// an EINVAL reply and the connection is closed; nothing a peer sends stops the server. A peer
// that dies mid-call loses the fd it was being sent (closing it releases the object).
//
// Thread affinity: one thread of its own serves every connection; calls go to the server, which
// serializes them with everything else.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "base/result.h"
#include "control/server.h"

namespace xdprt::control {

struct socket_options {
    std::filesystem::path path = "/run/xdprt/control.sock";
    std::optional<gid_t> group;  // admitted besides root; the socket file gets this group, mode 0660
};

class control_socket {
public:
    // Binds `path` (a stale socket file there is replaced; a live one is an error: another
    // appliance serves it) and starts serving.
    [[nodiscard]] static result<std::unique_ptr<control_socket>> create(server& s, socket_options opts);
    ~control_socket();  // stops serving, closes every connection, removes the socket file
    control_socket(const control_socket&) = delete;
    control_socket& operator=(const control_socket&) = delete;

    struct counts {
        uint64_t calls = 0, refused_peers = 0, malformed = 0;
    };
    counts stats() const;

    struct impl;

private:
    explicit control_socket(std::unique_ptr<impl> i);
    std::unique_ptr<impl> _impl;
};

}  // namespace xdprt::control
