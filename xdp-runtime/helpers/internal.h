// Private to helpers/: the helper functions, for the linkage tables.
#pragma once

#include "helpers/helpers.h"

namespace xdprt::helpers {

// Every helper has the signature of vm::helper_fn.
using helper_sig = uint64_t(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
helper_sig map_lookup_elem, map_update_elem, map_delete_elem, map_push_elem, map_pop_elem, map_peek_elem;
helper_sig spin_lock, spin_unlock, map_iterate, ktime_get_ns, ktime_get_boot_ns, ktime_get_coarse_ns;
helper_sig jiffies64, get_prandom_u32, get_smp_processor_id, get_numa_node_id, trace_printk;
helper_sig ringbuf_output, ringbuf_reserve, ringbuf_submit, ringbuf_discard, ringbuf_query;

const vm::program* tail_call_target(uint64_t map, uint64_t index);

}  // namespace xdprt::helpers
