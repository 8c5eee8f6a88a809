// BTF blobs as BTF_LOAD receives them: validated like the kernel's btf_parse (header, sections,
// every type's record, name offsets, type references), then kept for what the server needs from
// them: type names and sizes for maps' key/value types and the offset of a bpf_spin_lock.
//
// Thread affinity: an object is immutable after parse().
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace xdprt::control {

class btf {
public:
    // Errors are EINVAL with the kernel's kind of message ("type 3: invalid name offset").
    [[nodiscard]] static result<btf> parse(std::span<const uint8_t> raw);

    const std::vector<uint8_t>& raw() const { return _raw; }
    uint32_t type_count() const { return uint32_t(_types.size()); }  // ids 1..count
    std::string_view type_name(uint32_t id) const;
    // The byte size of a type, following typedefs and modifiers; 0 when it has none.
    uint32_t type_size(uint32_t id) const;
    // The BTF_KIND_* of `id` after typedefs and modifiers; 0 (void) when it resolves to nothing.
    uint32_t resolved_kind(uint32_t id) const;
    // Offset of a `struct bpf_spin_lock` member at the top level of struct `id`, -1 when none.
    int32_t spin_lock_offset(uint32_t id) const;

private:
    struct type {
        uint32_t offset;  // of its btf_type record in the type section
        uint32_t name_off, info, size_or_type;
    };
    uint32_t kind(const type& t) const { return (t.info >> 24) & 0x1f; }
    uint32_t vlen(const type& t) const { return t.info & 0xffff; }
    const uint8_t* type_data(const type& t) const;
    uint32_t resolve(uint32_t id) const;
    std::string_view str(uint32_t off) const;

    std::vector<uint8_t> _raw;
    std::vector<type> _types;  // index id - 1
    uint32_t _type_start = 0, _str_start = 0, _str_len = 0;
};

}  // namespace xdprt::control
