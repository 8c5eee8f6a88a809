#include "base/kernel_bpf.h"

#include <sys/syscall.h>

namespace xdprt {

long kernel_bpf(int cmd, void* attr, uint32_t size) {
    long r;
#if defined(__x86_64__)
    register long r10 asm("r10") = 0;
    asm volatile("syscall" : "=a"(r) : "0"(long(SYS_bpf)), "D"(long(cmd)), "S"(attr), "d"(long(size)), "r"(r10)
                 : "rcx", "r11", "memory");
#elif defined(__aarch64__)
    register long x8 asm("x8") = SYS_bpf;
    register long x0 asm("x0") = cmd;
    register long x1 asm("x1") = reinterpret_cast<long>(attr);
    register long x2 asm("x2") = size;
    asm volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    r = x0;
#else
#error "kernel_bpf: add this architecture's syscall instruction"
#endif
    return r;  // -errno on failure, as the raw syscall returns it
}

}  // namespace xdprt
