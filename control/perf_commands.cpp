// perf_event_open(2) for BPF output events, the perf events a PERF_EVENT_ARRAY holds
// (perf/perf_event.h has the event itself and its ring).
//
// Which events xdprt serves: PERF_TYPE_SOFTWARE / PERF_COUNT_SW_BPF_OUTPUT on one CPU (pid -1,
// cpu >= 0), which is what libbpf's perf_buffer, BCC and bpftrace open. The event's CPU is the
// runtime CPU id programs run as (maps::this_cpu), numbered like the host's CPUs. Everything else,
// including BPF output events bound to a task (pid != -1), goes to the kernel untouched; such a
// kernel event cannot be written by xdprt's programs, and a PERF_EVENT_ARRAY update refuses it
// (map_commands.cpp).
//
// Checks, in the kernel's order (perf_event_open, perf_copy_attr, perf_event_alloc,
// perf_swevent_init, find_get_context), with its errnos: flags, the attr's size (E2BIG, the
// kernel's size written back), reserved bits, sample_type and read_format bits, branch-stack,
// user-stack and weight sample settings, exec and sigtrap bits, the sampling period or frequency,
// cgroup mode, the group fd, the CPU (EINVAL past the possible CPUs, ENODEV offline), AUX settings
// and the clock id. Not checked: perf_event_paranoid and capabilities (whoever reaches the server
// may open its events, as whoever reaches it may load programs).
//
// What xdprt refuses where the kernel would accept: sample types other than PERF_SAMPLE_RAW (the
// kernel would add IP, TID, TIME... to each record; xdprt writes raw samples only), write_backward
// rings, and event groups: EOPNOTSUPP, EOPNOTSUPP and EINVAL, with the reason in last_error().
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "control/objects.h"

namespace xdprt::control {

namespace {

// The 6.18 kernel's struct perf_event_attr: PERF_ATTR_SIZE_VER8 (config3), where Debian 12's
// header declares VER7.
constexpr uint32_t kernel_attr_size = 136;
constexpr uint32_t attr_size_ver0 = 64;
constexpr uint32_t attr_size_max = 4096;  // a page
static_assert(sizeof(perf_event_attr) <= kernel_attr_size);

// Offsets of the 6.18 fields the header does not name the same way.
namespace off {
constexpr size_t flags = 40, reserved_2 = 110, aux_action = 116;
}
// The bitfield word at off::flags.
constexpr uint64_t bit_inherit = 1ull << 1, bit_freq = 1ull << 10, bit_enable_on_exec = 1ull << 12,
                   bit_use_clockid = 1ull << 25, bit_write_backward = 1ull << 27, bit_aux_output = 1ull << 31,
                   bit_inherit_thread = 1ull << 35, bit_remove_on_exec = 1ull << 36, bit_sigtrap = 1ull << 37,
                   reserved_1 = ~((1ull << 38) - 1);
// aux_action: aux_start_paused, aux_pause, aux_resume, then __reserved_3.
constexpr uint32_t aux_start_paused = 1u << 0, aux_pause_resume = 3u << 1, reserved_3 = ~7u;

template <class T>
T field(const uint8_t* attr, size_t at) {
    T v;
    std::memcpy(&v, attr + at, sizeof v);
    return v;
}

// A comma-separated list of CPU ranges ("0-3,8"), as /sys/devices/system/cpu/online has it.
bool cpu_listed(const std::string& list, uint32_t cpu) {
    size_t at = 0;
    while (at < list.size()) {
        size_t end = list.find(',', at);
        if (end == std::string::npos) end = list.size();
        std::string part = list.substr(at, end - at);
        size_t dash = part.find('-');
        unsigned long lo = std::strtoul(part.c_str(), nullptr, 10);
        unsigned long hi = dash == std::string::npos ? lo : std::strtoul(part.c_str() + dash + 1, nullptr, 10);
        if (cpu >= lo && cpu <= hi) return true;
        at = end + 1;
    }
    return false;
}

bool cpu_online(uint32_t cpu) {
    std::ifstream f("/sys/devices/system/cpu/online");
    std::string list;
    return f >> list ? cpu_listed(list, cpu) : cpu == 0;
}

uint64_t max_sample_rate() {
    std::ifstream f("/proc/sys/kernel/perf_event_max_sample_rate");
    uint64_t rate = 0;
    return f >> rate ? rate : 100000;
}

// perf_event_open's is_perf_file on the client's fd (a /proc/<pid>/fd/<n> path): a kernel perf
// event or one of xdprt's.
bool is_perf_file(const std::string& proc_fd) {
    std::error_code ec;
    std::string target = std::filesystem::read_symlink(proc_fd, ec).string();
    if (ec) return false;
    if (target == "anon_inode:[perf_event]") return true;
    int own = open(proc_fd.c_str(), O_RDONLY | O_CLOEXEC);
    if (own < 0) return false;
    bool ours = perf::is_event(own);
    close(own);
    return ours;
}

}  // namespace

std::optional<long> server::impl::perf_event_open(uint64_t attr_addr, int pid, int cpu, int group_fd,
                                                  unsigned long flags, const client_memory& mem) {
    // Which event: type (offset 0), size (4) and config (8) are in every attr size.
    uint8_t head[16];
    if (!mem.read(attr_addr, head, sizeof head)) return std::nullopt;  // the kernel's EFAULT
    if (field<uint32_t>(head, 0) != PERF_TYPE_SOFTWARE || field<uint64_t>(head, 8) != PERF_COUNT_SW_BPF_OUTPUT || pid != -1)
        return std::nullopt;

    constexpr unsigned long flag_all = PERF_FLAG_FD_NO_GROUP | PERF_FLAG_FD_OUTPUT | PERF_FLAG_PID_CGROUP | PERF_FLAG_FD_CLOEXEC;
    if (flags & ~flag_all) return refuse(EINVAL, "flags {:#x}", flags);

    // perf_copy_attr: size 0 is VER0; a size the kernel cannot take is E2BIG with its own size
    // written back into the caller's attr.
    uint32_t size = field<uint32_t>(head, 4);
    if (size == 0) size = attr_size_ver0;
    auto too_big = [&](const char* why) {
        uint32_t ours = kernel_attr_size;
        (void)mem.write(attr_addr + offsetof(perf_event_attr, size), &ours, sizeof ours);
        return refuse(E2BIG, "attr size {}: {}", size, why);
    };
    if (size < attr_size_ver0 || size > attr_size_max) return too_big("outside [64, 4096]");
    uint8_t a[kernel_attr_size] = {};
    if (auto ok = mem.read(attr_addr, a, std::min(size, kernel_attr_size)); !ok) return refuse(ok.error());
    if (size > kernel_attr_size) {
        auto tail = mem.read_vec(attr_addr + kernel_attr_size, size - kernel_attr_size);
        if (!tail) return refuse(tail.error());
        for (uint8_t b : *tail)
            if (b) return too_big("non-zero bytes past the kernel's struct");
    }
    uint64_t bits = field<uint64_t>(a, off::flags);
    uint64_t sample_type = field<uint64_t>(a, offsetof(perf_event_attr, sample_type));
    uint32_t aux_action = field<uint32_t>(a, off::aux_action);
    if ((bits & reserved_1) || field<uint16_t>(a, off::reserved_2) || (aux_action & reserved_3))
        return refuse(EINVAL, "reserved attr bits set");
    if (sample_type & ~(uint64_t(PERF_SAMPLE_MAX) - 1)) return refuse(EINVAL, "sample_type {:#x}: unknown bits", sample_type);
    uint64_t read_format = field<uint64_t>(a, offsetof(perf_event_attr, read_format));
    if (read_format & ~(uint64_t(PERF_FORMAT_MAX) - 1)) return refuse(EINVAL, "read_format {:#x}: unknown bits", read_format);
    bool branch_stack = sample_type & PERF_SAMPLE_BRANCH_STACK;
    if (branch_stack) {
        uint64_t mask = field<uint64_t>(a, offsetof(perf_event_attr, branch_sample_type));
        if (mask & ~(uint64_t(PERF_SAMPLE_BRANCH_MAX) - 1)) return refuse(EINVAL, "branch_sample_type {:#x}", mask);
        if (!(mask & ~uint64_t(PERF_SAMPLE_BRANCH_PLM_ALL))) return refuse(EINVAL, "branch_sample_type without a branch type");
    }
    if (sample_type & PERF_SAMPLE_STACK_USER) {
        uint32_t stack = field<uint32_t>(a, offsetof(perf_event_attr, sample_stack_user));
        if (stack >= UINT16_MAX || stack % 8) return refuse(EINVAL, "sample_stack_user {}", stack);
    }
    if ((sample_type & PERF_SAMPLE_WEIGHT) && (sample_type & PERF_SAMPLE_WEIGHT_STRUCT))
        return refuse(EINVAL, "PERF_SAMPLE_WEIGHT with PERF_SAMPLE_WEIGHT_STRUCT");
    if (!(bits & bit_inherit) && (bits & bit_inherit_thread)) return refuse(EINVAL, "inherit_thread without inherit");
    if ((bits & bit_remove_on_exec) && (bits & bit_enable_on_exec)) return refuse(EINVAL, "remove_on_exec with enable_on_exec");
    if ((bits & bit_sigtrap) && !(bits & bit_remove_on_exec)) return refuse(EINVAL, "sigtrap without remove_on_exec");

    // perf_event_open.
    uint64_t period = field<uint64_t>(a, offsetof(perf_event_attr, sample_period));
    if (bits & bit_freq) {
        if (period > max_sample_rate()) return refuse(EINVAL, "sample_freq {} above perf_event_max_sample_rate", period);
    } else if (period >> 63) {
        return refuse(EINVAL, "sample_period {:#x}", period);
    }
    if (flags & PERF_FLAG_PID_CGROUP) return refuse(EINVAL, "cgroup mode needs a cgroup fd as pid, and a cpu");
    if (group_fd != -1) {
        std::string proc = fmt::format("/proc/{}/fd/{}", mem.pid ? std::to_string(mem.pid) : std::string("self"), group_fd);
        if (group_fd < 0 || !is_perf_file(proc)) return refuse(EBADF, "group_fd {} is not a perf event", group_fd);
        return refuse(EINVAL, "group_fd {}: xdprt's BPF output events do not join event groups", group_fd);
    }

    // perf_event_alloc, then the software PMU, then the CPU's context.
    if (uint32_t(cpu) >= maps::possible_cpus()) return refuse(EINVAL, "cpu {}: a CPU-wide event needs a possible cpu", cpu);
    if (aux_action & aux_pause_resume) return refuse(EINVAL, "aux_pause / aux_resume without an AUX event");
    if (bits & bit_aux_output) return refuse(EOPNOTSUPP, "aux_output: no AUX event to write to");
    if (aux_action & aux_start_paused) return refuse(EOPNOTSUPP, "aux_start_paused: the software PMU has no AUX area");
    if (field<uint32_t>(a, offsetof(perf_event_attr, aux_sample_size)) && !(sample_type & PERF_SAMPLE_AUX))
        return refuse(EINVAL, "aux_sample_size without PERF_SAMPLE_AUX");
    if (bits & bit_use_clockid) {
        int32_t clock = field<int32_t>(a, offsetof(perf_event_attr, clockid));
        if (clock != CLOCK_MONOTONIC && clock != CLOCK_MONOTONIC_RAW && clock != CLOCK_REALTIME &&
            clock != CLOCK_BOOTTIME && clock != CLOCK_TAI)
            return refuse(EINVAL, "clockid {}", clock);
    }
    if (branch_stack) return refuse(EOPNOTSUPP, "software events take no branch stack");
    if (!cpu_online(uint32_t(cpu))) return refuse(ENODEV, "cpu {} is offline", cpu);

    // What xdprt's producer does not write.
    if (sample_type & ~uint64_t(PERF_SAMPLE_RAW))
        return refuse(EOPNOTSUPP, "sample_type {:#x}: xdprt writes PERF_SAMPLE_RAW samples only", sample_type);
    if (bits & bit_write_backward) return refuse(EOPNOTSUPP, "write_backward rings are not supported by xdprt");

    auto file = new_file("perf event");
    if (!file) return refuse(file.error());
    perf::event_config c;
    c.cpu = uint32_t(cpu);
    c.id = next_perf_id;
    c.enabled = !(bits & 1);  // attr.disabled
    c.sample_type = sample_type;
    auto ev = perf::event::create(*file, c);
    if (!ev) {
        close(*file);
        return refuse(ev.error());
    }
    auto o = add(obj_kind::perf_event, "", *file);
    if (!o) return refuse(o.error());
    ++next_perf_id;
    (*o)->perf = std::move(*ev);
    long fd = new_fd(*o);
    // The kernel's fd is close-on-exec only with PERF_FLAG_FD_CLOEXEC.
    if (fd >= 0 && !(flags & PERF_FLAG_FD_CLOEXEC) && mem.pid == 0) fcntl(int(fd), F_SETFD, 0);
    return fd;
}

}  // namespace xdprt::control
