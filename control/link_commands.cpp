// LINK_CREATE, LINK_UPDATE, LINK_DETACH for XDP, and the interfaces programs attach to, with
// the checks and errnos of the kernel's bpf_xdp_link_attach / dev_xdp_attach /
// bpf_xdp_link_update.
#include <linux/if_link.h>

#include "control/objects.h"

namespace xdprt::control {

namespace {

constexpr uint32_t xdp_modes = XDP_FLAGS_SKB_MODE | XDP_FLAGS_DRV_MODE | XDP_FLAGS_HW_MODE;

}  // namespace

static server::runnable_prog runnable_of(const object_ref& o) {
    server::runnable_prog r;
    if (!o) return r;
    r.prog = &o->prog->program;
    r.owner = o;
    r.name = o->name;
    r.id = o->id;
    for (auto& m : o->prog->used_maps) r.map_types.push_back(m->map->type());
    return r;
}

result<void> server::impl::publish_xdp(uint32_t ifindex, const object_ref& prog) {
    if (!xdp_listener) return {};
    return xdp_listener(ifindex, runnable_of(prog));
}

void server::impl::detach(link_state& l) {
    auto it = xdp.find(l.ifindex);
    if (l.ifindex && it != xdp.end() && it->second.prog == l.prog) {
        xdp.erase(it);
        (void)publish_xdp(l.ifindex, nullptr);
    }
    l.ifindex = 0;
    dirty = true;
}

long server::impl::link_create(union bpf_attr& a) {
    auto p = from_fd(int(a.link_create.prog_fd), obj_kind::prog);
    if (!p) return refuse(p.error());
    const loaded_prog& prog = *(*p)->prog;
    if (a.link_create.attach_type != BPF_XDP || prog.type != BPF_PROG_TYPE_XDP)
        return refuse(EINVAL, "prog '{}': attach type {} is not for this program (xdprt links XDP programs)",
                      (*p)->name, a.link_create.attach_type);
    uint32_t flags = a.link_create.flags;
    if (flags & ~uint32_t(XDP_FLAGS_MASK)) return refuse(EINVAL, "xdp link: flags {:#x}", flags);
    uint32_t ifindex = a.link_create.target_ifindex;
    auto served = interfaces.find(ifindex);
    if (served == interfaces.end())
        return refuse(EINVAL, "xdp link: ifindex {} is not an interface of the appliance", ifindex);
    if (flags & ~xdp_modes) return refuse(EINVAL, "Invalid XDP flags for BPF link attachment");
    if (__builtin_popcount(flags & xdp_modes) > 1) return refuse(EINVAL, "Only one XDP mode flag can be set");
    if (flags & XDP_FLAGS_HW_MODE) return refuse(EOPNOTSUPP, "{}: xdprt does not offload programs to hardware", served->second);
    uint32_t mode = (flags & XDP_FLAGS_SKB_MODE) ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
    if (auto cur = xdp.find(ifindex); cur != xdp.end()) {
        if (cur->second.mode != mode)
            return refuse(EEXIST, "{}: native and generic XDP can't be active at the same time", served->second);
        return refuse(EBUSY, "{}: {}", served->second,
                      cur->second.link_id ? "Can't replace active BPF XDP link" : "Can't replace active XDP program with BPF link");
    }
    if (prog.expected_attach_type == BPF_XDP_DEVMAP || prog.expected_attach_type == BPF_XDP_CPUMAP)
        return refuse(EINVAL, "prog '{}': BPF_XDP_DEVMAP and BPF_XDP_CPUMAP programs can not be attached to a device", (*p)->name);
    if (!prog.runnable) return refuse(EINVAL, "prog '{}' is not runnable", (*p)->name);
    if (auto ok = publish_xdp(ifindex, *p); !ok) return refuse(with_context(ok.error(), served->second));

    auto handle = new_file("link");
    if (!handle) {
        (void)publish_xdp(ifindex, nullptr);
        return refuse(handle.error());
    }
    auto o = add(obj_kind::link, "", *handle);
    if (!o) {
        (void)publish_xdp(ifindex, nullptr);
        return refuse(o.error());
    }
    auto l = std::make_unique<link_state>();
    l->type = BPF_LINK_TYPE_XDP;
    l->ifindex = ifindex;
    l->attach_flags = flags;
    l->prog = *p;
    (*o)->link = std::move(l);
    xdp[ifindex] = xdp_attachment{*p, (*o)->id, mode};
    return new_fd(*o);
}

long server::impl::link_update(union bpf_attr& a) {
    uint32_t flags = a.link_update.flags;
    if (flags & ~uint32_t(BPF_F_REPLACE)) return refuse(EINVAL, "link update: flags {:#x}", flags);
    auto o = from_fd(int(a.link_update.link_fd), obj_kind::link);
    if (!o) return refuse(o.error());
    auto np = from_fd(int(a.link_update.new_prog_fd), obj_kind::prog);
    if (!np) return refuse(np.error());
    object_ref expected;
    if (flags & BPF_F_REPLACE) {
        auto op = from_fd(int(a.link_update.old_prog_fd), obj_kind::prog);
        if (!op) return refuse(op.error());
        expected = *op;
    } else if (a.link_update.old_prog_fd) {
        return refuse(EINVAL, "link update: old_prog_fd without BPF_F_REPLACE");
    }
    link_state& l = *(*o)->link;
    if (!l.ifindex) return refuse(ENOLINK, "link {} is detached", (*o)->id);
    if (expected && l.prog != expected) return refuse(EPERM, "link {}: its program is not the expected one", (*o)->id);
    const loaded_prog& cur = *l.prog->prog;
    const loaded_prog& next = *(*np)->prog;
    if (cur.type != next.type || cur.expected_attach_type != next.expected_attach_type)
        return refuse(EINVAL, "link {}: prog '{}' has another type or attach type", (*o)->id, (*np)->name);
    if (l.prog == *np) return 0;
    if (!next.runnable) return refuse(EINVAL, "prog '{}' is not runnable", (*np)->name);
    if (auto ok = publish_xdp(l.ifindex, *np); !ok) return refuse(with_context(ok.error(), interfaces[l.ifindex]));
    l.prog = *np;
    xdp[l.ifindex].prog = *np;
    dirty = true;  // the old program may have lost its last reference
    return 0;
}

long server::impl::link_detach(union bpf_attr& a) {
    auto o = from_fd(int(a.link_detach.link_fd), obj_kind::link);
    if (!o) return refuse(o.error());
    detach(*(*o)->link);
    return 0;
}

void server::serve_interface(uint32_t ifindex, std::string name) {
    std::lock_guard g(_impl->lock);
    _impl->interfaces[ifindex] = std::move(name);
}

void server::withdraw_interface(uint32_t ifindex) {
    std::lock_guard g(_impl->lock);
    _impl->interfaces.erase(ifindex);
    for (auto& [ino, o] : _impl->by_inode)
        if (o->link && o->link->ifindex == ifindex) _impl->detach(*o->link);
    if (_impl->xdp.erase(ifindex)) (void)_impl->publish_xdp(ifindex, nullptr);
    _impl->dirty = true;
}

uint32_t server::attached_prog_id(uint32_t ifindex) {
    std::lock_guard g(_impl->lock);
    auto it = _impl->xdp.find(ifindex);
    return it == _impl->xdp.end() ? 0 : it->second.prog->id;
}

void server::set_xdp_listener(xdp_listener fn) {
    std::lock_guard g(_impl->lock);
    _impl->xdp_listener = std::move(fn);
}

void server::set_xsk_binder(xsk_binder fn) {
    std::lock_guard g(_impl->lock);
    _impl->xsk_binder = std::move(fn);
}

result<server::runnable_prog> server::runnable(int prog_fd) {
    std::lock_guard g(_impl->lock);
    auto p = _impl->from_fd(prog_fd, obj_kind::prog);
    if (!p) return tl::unexpected(p.error());
    if (!(*p)->prog->runnable) return fail(EINVAL, "prog '{}' is not an XDP program xdprt runs", (*p)->name);
    return runnable_of(*p);
}

long server::xdp_set(uint32_t ifindex, int prog_fd, uint32_t flags, int expected_fd, pid_t, int pidfd) {
    std::lock_guard g(_impl->lock);
    _impl->last_error.clear();
    _impl->reap();
    impl::serving as(*_impl, pidfd);
    long r = _impl->xdp_set(ifindex, prog_fd, flags, expected_fd);
    _impl->dirty = true;
    return r;
}

// do_setlink's IFLA_XDP checks, then dev_xdp_attach's, in their order.
long server::impl::xdp_set(uint32_t ifindex, int prog_fd, uint32_t flags, int expected_fd) {
    auto served = interfaces.find(ifindex);
    if (served == interfaces.end()) return refuse(ENODEV, "ifindex {} is no interface of the appliance", ifindex);
    const std::string& dev = served->second;
    if (flags & ~uint32_t(XDP_FLAGS_MASK)) return refuse(EINVAL, "{}: XDP flags {:#x}", dev, flags);
    if (__builtin_popcount(flags & xdp_modes) > 1) return refuse(EINVAL, "{}: Only one XDP mode flag can be set", dev);
    if (expected_fd >= 0 && !(flags & XDP_FLAGS_REPLACE))
        return refuse(EINVAL, "{}: an expected program without XDP_FLAGS_REPLACE", dev);
    if (flags & XDP_FLAGS_HW_MODE) return refuse(EOPNOTSUPP, "{}: xdprt does not offload programs to hardware", dev);
    object_ref next, expected;
    if (prog_fd >= 0) {
        auto p = from_fd(prog_fd, obj_kind::prog);
        if (!p) return refuse(p.error().code == EBADF ? EBADF : EINVAL, "{}: prog fd {}: {}", dev, prog_fd, p.error().message);
        if ((*p)->prog->type != BPF_PROG_TYPE_XDP) return refuse(EINVAL, "{}: prog '{}' is not an XDP program", dev, (*p)->name);
        next = *p;
    }
    if (flags & XDP_FLAGS_REPLACE && expected_fd >= 0) {
        auto p = from_fd(expected_fd, obj_kind::prog);
        if (!p) return refuse(p.error().code == EBADF ? EBADF : EINVAL, "{}: expected prog fd {}: {}", dev, expected_fd, p.error().message);
        expected = *p;
    }
    // The mode asked for; none means native, which the appliance's interfaces have.
    const uint32_t mode = (flags & XDP_FLAGS_SKB_MODE) ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
    auto cur = xdp.find(ifindex);
    const bool same_mode = cur != xdp.end() && cur->second.mode == mode;
    if (same_mode && cur->second.link_id) return refuse(EBUSY, "{}: Can't replace active BPF XDP link", dev);
    object_ref current = same_mode ? cur->second.prog : nullptr;
    if ((flags & XDP_FLAGS_REPLACE) && current != expected) return refuse(EEXIST, "{}: Active program does not match expected", dev);
    if (next) {
        if ((flags & XDP_FLAGS_UPDATE_IF_NOEXIST) && current) return refuse(EBUSY, "{}: XDP program already attached", dev);
        if (cur != xdp.end() && !same_mode) return refuse(EEXIST, "{}: Native and generic XDP can't be active at the same time", dev);
        uint32_t eat = next->prog->expected_attach_type;
        if (eat == BPF_XDP_DEVMAP || eat == BPF_XDP_CPUMAP)
            return refuse(EINVAL, "{}: BPF_XDP_DEVMAP and BPF_XDP_CPUMAP programs can not be attached to a device", dev);
        if (!next->prog->runnable) return refuse(EINVAL, "{}: prog '{}' is not runnable", dev, next->name);
    }
    if (next == current) return 0;
    if (auto ok = publish_xdp(ifindex, next); !ok) return refuse(with_context(ok.error(), dev));
    if (next) xdp[ifindex] = xdp_attachment{next, 0, mode};
    else xdp.erase(ifindex);
    return 0;
}

std::vector<server::xdp_report> server::xdp_reports() {
    std::lock_guard g(_impl->lock);
    _impl->reap();  // a link whose last fd closed has detached
    std::vector<xdp_report> out;
    for (const auto& [ifindex, name] : _impl->interfaces) {
        xdp_report r{ifindex, 0, XDP_ATTACHED_NONE};
        if (auto it = _impl->xdp.find(ifindex); it != _impl->xdp.end()) {
            r.prog_id = it->second.prog->id;
            r.attached = it->second.mode == XDP_FLAGS_SKB_MODE ? XDP_ATTACHED_SKB : XDP_ATTACHED_DRV;
        }
        out.push_back(r);
    }
    return out;
}

}  // namespace xdprt::control
