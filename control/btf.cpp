#include "control/btf.h"

#include <linux/btf.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace xdprt::control {

namespace {

constexpr uint32_t max_btf_bytes = 16u << 20;  // BTF_MAX_SIZE
constexpr uint32_t max_kind = BTF_KIND_ENUM64;
constexpr int enotsupp = 524;  // the kernel's ENOTSUPP

// Bytes after the 12-byte btf_type record, per kind.
result<uint32_t> extra_bytes(uint32_t kind, uint32_t vlen) {
    switch (kind) {
    case BTF_KIND_INT: return 4u;
    case BTF_KIND_PTR: case BTF_KIND_FWD: case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT: case BTF_KIND_FUNC: case BTF_KIND_FLOAT: case BTF_KIND_TYPE_TAG: return 0u;
    case BTF_KIND_ARRAY: return 12u;
    case BTF_KIND_STRUCT: case BTF_KIND_UNION: return 12u * vlen;
    case BTF_KIND_ENUM: return 8u * vlen;
    case BTF_KIND_FUNC_PROTO: return 8u * vlen;
    case BTF_KIND_VAR: return 4u;
    case BTF_KIND_DATASEC: return 12u * vlen;
    case BTF_KIND_DECL_TAG: return 4u;
    case BTF_KIND_ENUM64: return 12u * vlen;
    default: return fail(EINVAL, "unknown kind {}", kind);
    }
}

}  // namespace

result<btf> btf::parse(std::span<const uint8_t> raw) {
    btf b;
    // btf_parse_hdr's order: hdr_len present and inside, unknown header bytes zero, magic,
    // version and flags (ENOTSUPP), some data after the header, then the sections.
    if (raw.size() > max_btf_bytes) return fail(E2BIG, "btf: {} bytes, above {}", raw.size(), max_btf_bytes);
    if (raw.size() < offsetof(btf_header, hdr_len) + 4) return fail(EINVAL, "btf: hdr_len not found");
    btf_header h{};
    std::memcpy(&h, raw.data(), std::min(raw.size(), sizeof h));
    if (h.hdr_len > raw.size()) return fail(EINVAL, "btf: btf_header not found");
    for (size_t k = sizeof(btf_header); k < h.hdr_len; ++k)
        if (raw[k]) return fail(E2BIG, "btf: unsupported btf_header");
    if (h.magic != BTF_MAGIC) return fail(EINVAL, "btf: invalid magic {:#x}", h.magic);
    if (h.version != BTF_VERSION) return fail(enotsupp, "btf: unsupported version {}", h.version);
    if (h.flags) return fail(enotsupp, "btf: unsupported flags {:#x}", h.flags);
    if (raw.size() == h.hdr_len) return fail(EINVAL, "btf: no data");
    if (h.hdr_len < sizeof(btf_header)) return fail(EINVAL, "btf: invalid hdr_len {}", h.hdr_len);
    uint64_t data_len = raw.size() - h.hdr_len;
    if ((h.type_off & 3) || uint64_t(h.type_off) + h.type_len > data_len || uint64_t(h.str_off) + h.str_len > data_len)
        return fail(EINVAL, "btf: section out of range");
    if (h.type_off + h.type_len > h.str_off && h.str_off + h.str_len > h.type_off) return fail(EINVAL, "btf: section overlap");
    if (h.str_len == 0 || raw[h.hdr_len + h.str_off] != 0 || raw[h.hdr_len + h.str_off + h.str_len - 1] != 0)
        return fail(EINVAL, "btf: invalid string section");
    b._raw.assign(raw.begin(), raw.end());
    b._type_start = h.hdr_len + h.type_off;
    b._str_start = h.hdr_len + h.str_off;
    b._str_len = h.str_len;

    for (uint32_t off = 0; off < h.type_len;) {
        if (h.type_len - off < sizeof(btf_type)) return fail(EINVAL, "btf: type {}: truncated", b._types.size() + 1);
        btf_type bt;
        std::memcpy(&bt, b._raw.data() + b._type_start + off, sizeof bt);
        type t{off, bt.name_off, bt.info, bt.size};
        uint32_t id = uint32_t(b._types.size() + 1);
        if (b.kind(t) == 0 || b.kind(t) > max_kind) return fail(EINVAL, "btf: type {}: invalid kind {}", id, b.kind(t));
        if (t.name_off >= h.str_len) return fail(EINVAL, "btf: type {}: invalid name_offset {}", id, t.name_off);
        auto extra = extra_bytes(b.kind(t), b.vlen(t));
        if (!extra) return tl::unexpected(extra.error());
        if (h.type_len - off - sizeof(btf_type) < *extra) return fail(EINVAL, "btf: type {}: truncated", id);
        b._types.push_back(t);
        off += uint32_t(sizeof(btf_type)) + *extra;
    }
    // References: every referring kind must name an existing type (or void, 0).
    uint32_t n = b.type_count();
    for (uint32_t id = 1; id <= n; ++id) {
        const type& t = b._types[id - 1];
        switch (b.kind(t)) {
        case BTF_KIND_PTR: case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST: case BTF_KIND_RESTRICT:
        case BTF_KIND_FUNC: case BTF_KIND_VAR: case BTF_KIND_DECL_TAG: case BTF_KIND_TYPE_TAG:
            if (t.size_or_type > n) return fail(EINVAL, "btf: type {}: invalid type_id {}", id, t.size_or_type);
            break;
        case BTF_KIND_STRUCT: case BTF_KIND_UNION: {
            const uint8_t* m = b.type_data(t);
            for (uint32_t k = 0; k < b.vlen(t); ++k) {
                btf_member mem;
                std::memcpy(&mem, m + k * sizeof mem, sizeof mem);
                if (mem.type > n || mem.name_off >= h.str_len)
                    return fail(EINVAL, "btf: type {}: member {}: invalid type or name", id, k);
            }
            break;
        }
        default:
            break;
        }
    }
    return b;
}

const uint8_t* btf::type_data(const type& t) const { return _raw.data() + _type_start + t.offset + sizeof(btf_type); }

std::string_view btf::str(uint32_t off) const {
    if (off >= _str_len) return {};
    return reinterpret_cast<const char*>(_raw.data() + _str_start + off);
}

std::string_view btf::type_name(uint32_t id) const {
    if (id == 0 || id > type_count()) return {};
    return str(_types[id - 1].name_off);
}

uint32_t btf::resolve(uint32_t id) const {
    for (int hops = 0; id && id <= type_count() && hops < 32; ++hops) {
        const type& t = _types[id - 1];
        switch (kind(t)) {
        case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST: case BTF_KIND_RESTRICT: case BTF_KIND_TYPE_TAG:
            id = t.size_or_type;
            continue;
        default:
            return id;
        }
    }
    return 0;
}

uint32_t btf::type_size(uint32_t id) const {
    id = resolve(id);
    if (!id) return 0;
    const type& t = _types[id - 1];
    switch (kind(t)) {
    case BTF_KIND_INT: case BTF_KIND_STRUCT: case BTF_KIND_UNION: case BTF_KIND_ENUM: case BTF_KIND_DATASEC:
    case BTF_KIND_FLOAT: case BTF_KIND_ENUM64:
        return t.size_or_type;
    case BTF_KIND_PTR:
        return 8;
    case BTF_KIND_ARRAY: {
        btf_array a;
        std::memcpy(&a, type_data(t), sizeof a);
        return type_size(a.type) * a.nelems;
    }
    default:
        return 0;
    }
}

uint32_t btf::resolved_kind(uint32_t id) const {
    id = resolve(id);
    return id ? kind(_types[id - 1]) : 0;
}

int32_t btf::spin_lock_offset(uint32_t id) const {
    id = resolve(id);
    if (!id) return -1;
    const type& t = _types[id - 1];
    if (kind(t) != BTF_KIND_STRUCT) return -1;
    const uint8_t* m = type_data(t);
    for (uint32_t k = 0; k < vlen(t); ++k) {
        btf_member mem;
        std::memcpy(&mem, m + k * sizeof mem, sizeof mem);
        uint32_t mt = resolve(mem.type);
        if (mt && kind(_types[mt - 1]) == BTF_KIND_STRUCT && type_name(mt) == "bpf_spin_lock")
            return int32_t(BTF_MEMBER_BIT_OFFSET(mem.offset) / 8);
    }
    return -1;
}

}  // namespace xdprt::control
