// xdprt: the one error type of the project (STYLE.md rule 8).
//
// Functions that can fail return result<T>. Only members that std::expected also has are used
// (has_value, value, error, and_then, transform, or_else), so switching to <expected> is one line.
#pragma once

#include <string>
#include <utility>

#include <fmt/format.h>
#include <tl/expected.hpp>

namespace xdprt {

struct error {
    int code = 0;         // a positive errno value (EINVAL, ENOENT, ...)
    std::string message;  // what and where, outermost context first
};

template <class T>
using result = tl::expected<T, error>;

using unexpected_error = tl::unexpected<error>;

// fail(EINVAL, "insn {}: bad register r{}", pc, reg) builds the unexpected value to return.
template <class... Args>
[[nodiscard]] unexpected_error fail(int code, fmt::format_string<Args...> format, Args&&... args) {
    return unexpected_error(error{code, fmt::format(format, std::forward<Args>(args)...)});
}

// Adds an outer context to an error: "prog 'x': " + inner message.
[[nodiscard]] inline error with_context(error e, std::string_view context) {
    e.message = fmt::format("{}: {}", context, e.message);
    return e;
}

}  // namespace xdprt
