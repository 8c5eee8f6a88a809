// The kernel's bpf(2), reached without libc's syscall(): the in-process interposer
// (control/inprocess.h) replaces that symbol, and the server (shadow verification) and the
// dataplane (its kernel helpers on twins) must still reach the kernel from under it.
#pragma once

#include <cstdint>

namespace xdprt {

// bpf(cmd, attr, size) straight to the kernel: the result, or -errno (the raw syscall's form).
long kernel_bpf(int cmd, void* attr, uint32_t size);

}  // namespace xdprt
