// Time, randomness, CPU identity and bpf_trace_printk.
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "helpers/internal.h"

namespace xdprt::helpers {

namespace {

uint64_t clock_ns(clockid_t id) {
    timespec ts;
    clock_gettime(id, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// Debian's kernels run at CONFIG_HZ=250; jiffies are derived from the boot clock at that rate.
constexpr uint64_t hz = 250;

void default_sink(std::string_view line) {
    // At most 10 lines per second; the rest is counted and reported with the next line printed.
    static std::atomic<uint64_t> window_start{0}, in_window{0}, suppressed{0};
    uint64_t now = clock_ns(CLOCK_MONOTONIC_COARSE);
    if (now - window_start.load(std::memory_order_relaxed) > 1000000000ull) {
        window_start.store(now, std::memory_order_relaxed);
        in_window.store(0, std::memory_order_relaxed);
    }
    if (in_window.fetch_add(1, std::memory_order_relaxed) >= 10) {
        suppressed.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    uint64_t lost = suppressed.exchange(0, std::memory_order_relaxed);
    if (lost) std::fprintf(stderr, "[xdprt] bpf_trace_printk: %llu lines suppressed\n", (unsigned long long)lost);
    std::fprintf(stderr, "[xdprt] bpf_trace_printk: %.*s", int(line.size()), line.data());
    if (line.empty() || line.back() != '\n') std::fputc('\n', stderr);
}

std::atomic<trace_sink> sink{default_sink};

// bpf_trace_printk's format language (the kernel's bpf_bprintf_prepare): %d %i %u %x %X %c %s %%,
// with l/ll, flags, width and precision; %p variants print the pointer. At most three arguments.
// Returns the formatted length or -EINVAL for a format the kernel refuses.
long format(const char* fmt, size_t fmt_size, const uint64_t args[3], std::string& out) {
    if (fmt_size == 0 || fmt[fmt_size - 1] != 0) return -EINVAL;
    int used = 0;
    for (size_t i = 0; fmt[i]; ++i) {
        char c = fmt[i];
        if (c != '%') {
            out.push_back(c);
            continue;
        }
        if (fmt[i + 1] == '%') {
            out.push_back('%');
            ++i;
            continue;
        }
        if (used == 3) return -EINVAL;
        std::string spec = "%";
        size_t j = i + 1;
        while (fmt[j] && std::strchr("-+ #0", fmt[j])) spec.push_back(fmt[j++]);
        while (fmt[j] >= '0' && fmt[j] <= '9') spec.push_back(fmt[j++]);
        if (fmt[j] == '.') {
            spec.push_back(fmt[j++]);
            while (fmt[j] >= '0' && fmt[j] <= '9') spec.push_back(fmt[j++]);
        }
        uint64_t a = args[used++];
        char buf[128];
        if (fmt[j] == 'p') {
            ++j;
            while (std::isalnum(static_cast<unsigned char>(fmt[j])) && fmt[j] != ' ') ++j;  // %pK, %px, %pI4 ...
            std::snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)a);
            out += buf;
            i = j - 1;
            continue;
        }
        int longs = 0;
        while (fmt[j] == 'l') ++longs, ++j;
        if (longs > 2) return -EINVAL;
        char conv = fmt[j];
        switch (conv) {
        case 'd': case 'i':
            spec += "lld";
            std::snprintf(buf, sizeof buf, spec.c_str(), longs ? (long long)a : (long long)(int32_t)a);
            break;
        case 'u': case 'x': case 'X':
            spec += "ll";
            spec.push_back(conv);
            std::snprintf(buf, sizeof buf, spec.c_str(), longs ? (unsigned long long)a : (unsigned long long)(uint32_t)a);
            break;
        case 'c':
            spec.push_back('c');
            std::snprintf(buf, sizeof buf, spec.c_str(), int(char(a)));
            break;
        case 's': {
            const char* s = reinterpret_cast<const char*>(a);
            spec.push_back('s');
            std::snprintf(buf, sizeof buf, spec.c_str(), s ? s : "(null)");
            break;
        }
        default:
            return -EINVAL;
        }
        out += buf;
        i = j;
    }
    return long(out.size());
}

thread_local std::mt19937_64 prandom{std::random_device{}()};

}  // namespace

void set_trace_sink(trace_sink s) { sink.store(s ? s : default_sink); }

uint64_t ktime_get_ns(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t ktime_get_boot_ns(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) { return clock_ns(CLOCK_BOOTTIME); }
uint64_t ktime_get_coarse_ns(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) { return clock_ns(CLOCK_MONOTONIC_COARSE); }
uint64_t jiffies64(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) { return clock_ns(CLOCK_BOOTTIME) / (1000000000ull / hz); }
uint64_t get_prandom_u32(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) { return uint32_t(prandom()); }
uint64_t get_smp_processor_id(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) { return maps::this_cpu; }
uint64_t get_numa_node_id(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) { return 0; }

uint64_t trace_printk(uint64_t fmt, uint64_t fmt_size, uint64_t a1, uint64_t a2, uint64_t a3) {
    std::string line;
    const uint64_t args[3] = {a1, a2, a3};
    long n = format(reinterpret_cast<const char*>(fmt), fmt_size, args, line);
    if (n < 0) return uint64_t(n);
    sink.load()(line);
    return uint64_t(n);
}

}  // namespace xdprt::helpers
