// LPM_TRIE (kernel/bpf/lpm_trie.c): a binary trie of prefixes, keys struct bpf_lpm_trie_key_u8
// {u32 prefixlen; u8 data[key_size - 4]}, data big-endian bit order, max prefix 8 * (key_size - 4).
// The kernel's shape exactly, so get_next_key walks the same post-order (more specific first):
//   - a node holds a prefix and, unless it is an intermediate (IM) node, a value; an IM node only
//     splits two children that differ at bit `prefixlen`, and has exactly two children;
//   - update replaces a node with a new one (lookups in flight keep the old value), hangs a new
//     node under the deepest matching one, inserts it as an ancestor, or adds an IM node;
//   - delete marks a two-child node IM in place, else unlinks it (and an IM parent left with
//     one child).
//
// Memory (offsets from the map's base): a 64-byte head holding the root link, then a pool of
// fixed-size nodes: node header, data (rounded to 8), value. Links are node index + 1 (0: none).
// The pool holds 2 * max_entries nodes (a trie of n prefixes has at most n - 1 IM nodes) plus
// slack for nodes waiting out a grace period, handed out lazily so untouched pages cost nothing.
// A pool that runs dry answers ENOMEM, as a kernel out of memory would.
//
// Writers (program updates/deletes and every syscall op) hold the map's writer lock, as the kernel
// holds its spinlock. Program lookups walk without a lock: a node is fully written before the link
// to it is published (release), and an unlinked node is reused only once qsbr::safe() says every
// reader has passed a quiescent point, so a returned value pointer stays valid until then.
// Syscall lookups and get_next_key hold the lock instead (they are not QSBR readers), so a view
// from another process cannot read a trie.
#include <algorithm>
#include <vector>

#include "maps/qsbr.h"
#include "maps/types.h"

namespace xdprt::maps {

namespace {

constexpr uint32_t lpm_flags = BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | access_mask;
constexpr uint32_t data_size_min = 1, data_size_max = 256;
constexpr uint32_t kernel_node_bytes = 24;  // sizeof(struct lpm_trie_node) on 6.18 (checked)
constexpr uint32_t value_size_max = kmalloc_max_size - data_size_max - kernel_node_bytes;
constexpr uint32_t flag_im = 1;
constexpr uint32_t none = 0;
constexpr size_t head_bytes = 64;
constexpr uint64_t max_pool_nodes = 1u << 28;
constexpr uint64_t max_pool_bytes = uint64_t(1) << 40;  // virtual; resident only as used

struct node {
    std::atomic<uint32_t> child[2];  // links (index + 1)
    uint32_t prefixlen;
    std::atomic<uint32_t> flags;     // flag_im; set on a live node by delete
    uint64_t retired_tag;            // qsbr tag while retired
    uint32_t list_next;              // free / retired list link (index + 1)
    uint32_t unused;
};
static_assert(sizeof(node) == 32);

struct trie_head {
    std::atomic<uint32_t> root;
};

// type_state slots in the header (writer lock).
enum state_slot { s_count, s_free, s_retired_head, s_retired_tail, s_fresh, s_nodes, s_node_bytes };

uint64_t node_bytes_for(const spec& s) { return sizeof(node) + round8(s.key_size - 4) + round8(s.value_size); }
uint64_t nodes_for(const spec& s) {
    uint64_t n = std::min<uint64_t>(2 * uint64_t(s.max_entries) + 256 + s.max_entries / 8, max_pool_nodes);
    return std::max<uint64_t>(2, std::min(n, max_pool_bytes / node_bytes_for(s)));
}

// The key as the kernel reads it.
struct lpm_key {
    uint32_t prefixlen;
    const uint8_t* data;
    explicit lpm_key(const void* k) : data(static_cast<const uint8_t*>(k) + 4) { std::memcpy(&prefixlen, k, 4); }
};

int bit_at(const uint8_t* data, uint32_t index) { return (data[index / 8] >> (7 - index % 8)) & 1; }

// `a ^ b` over `len` (1..8) bytes, first byte most significant, in the top bytes of the result:
// its leading zero count is the number of leading bits the two share. Constant-size loads for
// 8 and 4 bytes (IPv6 and IPv4 keys): a memcpy of a variable length is a libc call per trie level.
uint64_t xor_be(const uint8_t* a, const uint8_t* b, uint32_t len) {
    if (len == 8) {
        uint64_t x, y;
        std::memcpy(&x, a, 8);
        std::memcpy(&y, b, 8);
        return __builtin_bswap64(x ^ y);
    }
    if (len == 4) {
        uint32_t x, y;
        std::memcpy(&x, a, 4);
        std::memcpy(&y, b, 4);
        return uint64_t(__builtin_bswap32(x ^ y)) << 32;
    }
    uint64_t d = 0;
    for (uint32_t i = 0; i < len; ++i) d = d << 8 | uint8_t(a[i] ^ b[i]);
    return d << (8 * (8 - len));
}

// A view of one trie, cached per call from the header.
struct trie {
    map& m;
    map_header& h;
    std::byte* nodes;
    uint64_t node_bytes, n_nodes;
    uint32_t data_size, max_prefixlen;

    explicit trie(map& mm)
        : m(mm), h(mm.header()), nodes(mm.base() + head_bytes), node_bytes(h.type_state[s_node_bytes]),
          n_nodes(h.type_state[s_nodes]), data_size(mm.spec().key_size - 4), max_prefixlen(8 * data_size) {}

    std::atomic<uint32_t>& root() const { return reinterpret_cast<trie_head*>(m.base())->root; }
    // The node behind a link known to be set.
    node& ref(uint32_t link) const { return *reinterpret_cast<node*>(nodes + size_t(link - 1) * node_bytes); }
    node* at(uint32_t link) const { return link == none ? nullptr : &ref(link); }
    uint32_t link_of(const node& n) const {
        return uint32_t((reinterpret_cast<const std::byte*>(&n) - nodes) / node_bytes) + 1;
    }
    uint8_t* data(node& n) const { return reinterpret_cast<uint8_t*>(&n + 1); }
    std::byte* value(node& n) const { return reinterpret_cast<std::byte*>(data(n)) + round8(data_size); }
    static bool im(const node& n) { return n.flags.load(std::memory_order_relaxed) & flag_im; }
    uint64_t& count() const { return h.type_state[s_count]; }

    // The number of leading bits `n` and `k` share, at most min(n.prefixlen, k.prefixlen).
    uint32_t match(node& n, const lpm_key& k) const {
        uint32_t limit = std::min(n.prefixlen, k.prefixlen), bits = 0;
        const uint8_t* a = data(n);
        for (uint32_t i = 0; i < data_size && bits < limit; i += 8) {
            uint32_t len = std::min(8u, data_size - i);
            uint64_t diff = xor_be(a + i, k.data + i, len);
            if (diff) return std::min(limit, bits + uint32_t(__builtin_clzll(diff)));
            bits += 8 * len;
        }
        return std::min(limit, bits);
    }

    // Moves retired nodes whose grace period ended to the free list (writer lock held).
    void reclaim() {
        const uint64_t safe_to = qsbr::process().horizon();  // one slot scan for the whole list
        while (uint32_t r = uint32_t(h.type_state[s_retired_head])) {
            node& n = ref(r);
            if (n.retired_tag > safe_to) break;
            h.type_state[s_retired_head] = n.list_next;
            if (n.list_next == none) h.type_state[s_retired_tail] = none;
            release(n);
        }
    }
    void release(node& n) {
        n.list_next = uint32_t(h.type_state[s_free]);
        h.type_state[s_free] = link_of(n);
    }
    node* alloc() {
        if (h.type_state[s_free] == none) reclaim();
        node* n = nullptr;
        if (uint32_t f = uint32_t(h.type_state[s_free])) {
            n = &ref(f);
            h.type_state[s_free] = n->list_next;
        } else if (h.type_state[s_fresh] < n_nodes) {
            n = &ref(uint32_t(++h.type_state[s_fresh]));
        } else {
            return nullptr;
        }
        n->child[0].store(none, std::memory_order_relaxed);
        n->child[1].store(none, std::memory_order_relaxed);
        n->flags.store(0, std::memory_order_relaxed);
        return n;
    }
    // Unlinked `n` waits for every reader's quiescent point before reuse.
    void retire(node& n) {
        n.retired_tag = qsbr::process().retire();
        n.list_next = none;
        uint32_t self = link_of(n);
        if (uint32_t t = uint32_t(h.type_state[s_retired_tail])) ref(t).list_next = self;
        else h.type_state[s_retired_head] = self;
        h.type_state[s_retired_tail] = self;
    }

    // trie_lookup_elem: the deepest non-IM node matching `k`. Lock-free.
    node* longest_match(const lpm_key& k) const {
        if (k.prefixlen > max_prefixlen) return nullptr;
        node* found = nullptr;
        for (node* n = at(root().load(std::memory_order_acquire)); n;) {
            uint32_t len = match(*n, k);
            if (len == max_prefixlen) return n;
            if (len < n->prefixlen) break;
            if (!im(*n)) found = n;
            n = at(n->child[bit_at(k.data, n->prefixlen)].load(std::memory_order_acquire));
        }
        return found;
    }

    // trie_check_add_elem: a new prefix counts against max_entries (writer lock held).
    long check_add(uint64_t flags) {
        if (flags == BPF_EXIST) return -ENOENT;
        if (count() == m.spec().max_entries) return -ENOSPC;
        ++count();
        return 0;
    }

    long update(const void* key, const void* val, uint64_t flags);
    long erase(const void* key);
    long next_key(const void* key, void* next);
};

long trie::update(const void* key, const void* val, uint64_t flags) {
    lpm_key k(key);
    if (flags > BPF_EXIST || k.prefixlen > max_prefixlen) return -EINVAL;
    node* fresh = alloc();
    if (!fresh) return -ENOMEM;
    fresh->prefixlen = k.prefixlen;
    std::memcpy(data(*fresh), k.data, data_size);
    std::memcpy(value(*fresh), val, m.spec().value_size);

    // Walk down while the node's whole prefix matches and is shorter than the key's.
    std::atomic<uint32_t>* slot = &root();
    node* n;
    uint32_t len = 0;
    while ((n = at(slot->load(std::memory_order_relaxed)))) {
        len = match(*n, k);
        if (n->prefixlen != len || n->prefixlen == k.prefixlen) break;
        slot = &n->child[bit_at(k.data, n->prefixlen)];
    }
    long r = 0;
    auto publish = [&](std::atomic<uint32_t>& where, node& what) { where.store(link_of(what), std::memory_order_release); };
    if (!n) {  // an empty slot
        if ((r = check_add(flags)) == 0) publish(*slot, *fresh);
    } else if (n->prefixlen == len) {  // the same prefix: replace the node
        if (!im(*n)) r = flags == BPF_NOEXIST ? -EEXIST : 0;
        else r = check_add(flags);
        if (r == 0) {
            fresh->child[0].store(n->child[0].load(std::memory_order_relaxed), std::memory_order_relaxed);
            fresh->child[1].store(n->child[1].load(std::memory_order_relaxed), std::memory_order_relaxed);
            publish(*slot, *fresh);
            retire(*n);
        }
    } else if ((r = check_add(flags)) == 0) {
        if (len == k.prefixlen) {  // the key is an ancestor of n
            fresh->child[bit_at(data(*n), len)].store(link_of(*n), std::memory_order_relaxed);
            publish(*slot, *fresh);
        } else if (node* split = alloc()) {  // n and the key part at bit len
            split->prefixlen = len;
            split->flags.store(flag_im, std::memory_order_relaxed);
            std::memcpy(data(*split), data(*n), data_size);
            int b = bit_at(k.data, len);
            split->child[b].store(link_of(*fresh), std::memory_order_relaxed);
            split->child[!b].store(link_of(*n), std::memory_order_relaxed);
            publish(*slot, *split);
        } else {
            --count();
            r = -ENOMEM;
        }
    }
    if (r < 0) release(*fresh);  // never published
    return r;
}

long trie::erase(const void* key) {
    lpm_key k(key);
    if (k.prefixlen > max_prefixlen) return -EINVAL;
    std::atomic<uint32_t>* trim = &root();
    std::atomic<uint32_t>* trim2 = trim;
    node* parent = nullptr;
    node* n;
    uint32_t len = 0;
    while ((n = at(trim->load(std::memory_order_relaxed)))) {
        len = match(*n, k);
        if (n->prefixlen != len || n->prefixlen == k.prefixlen) break;
        parent = n;
        trim2 = trim;
        trim = &n->child[bit_at(k.data, n->prefixlen)];
    }
    if (!n || n->prefixlen != k.prefixlen || n->prefixlen != len || im(*n)) return -ENOENT;
    --count();
    uint32_t c0 = n->child[0].load(std::memory_order_relaxed), c1 = n->child[1].load(std::memory_order_relaxed);
    if (c0 && c1) {  // still splits two subtrees: keep it as an IM node
        n->flags.fetch_or(flag_im, std::memory_order_relaxed);
        return 0;
    }
    if (parent && im(*parent) && !c0 && !c1) {  // the IM parent is left with one child: lift it
        uint32_t other = parent->child[0].load(std::memory_order_relaxed) == link_of(*n)
                             ? parent->child[1].load(std::memory_order_relaxed)
                             : parent->child[0].load(std::memory_order_relaxed);
        trim2->store(other, std::memory_order_release);
        retire(*parent);
        retire(*n);
        return 0;
    }
    trim->store(c0 ? c0 : c1, std::memory_order_release);
    retire(*n);
    return 0;
}

// trie_get_next_key: post-order, so a prefix comes after every more specific one below it. A
// missing or invalid key restarts from the leftmost node (writer lock held).
long trie::next_key(const void* key, void* next) {
    node* search_root = at(root().load(std::memory_order_relaxed));
    if (!search_root) return -ENOENT;
    node* found = nullptr;
    auto leftmost = [&](node* from) {
        for (node* n = from; n;) {  // IM nodes always have two children: never ends on one
            if (im(*n)) {
                n = at(n->child[0].load(std::memory_order_relaxed));
            } else {
                found = n;
                n = at(n->child[0].load(std::memory_order_relaxed));
                if (!n) n = at(found->child[1].load(std::memory_order_relaxed));
            }
        }
    };
    if (!key || lpm_key(key).prefixlen > max_prefixlen) {
        leftmost(search_root);
    } else {
        lpm_key k(key);
        std::vector<node*> stack;
        node* n = search_root;
        for (; n;) {
            stack.push_back(n);
            uint32_t len = match(*n, k);
            if (n->prefixlen != len || n->prefixlen == k.prefixlen) {
                if (n->prefixlen != len || im(*n)) n = nullptr;
                break;
            }
            n = at(n->child[bit_at(k.data, n->prefixlen)].load(std::memory_order_relaxed));
        }
        if (n) {
            // The key's node: next is the leftmost of the right sibling subtree, else the first
            // non-IM ancestor.
            for (size_t i = stack.size() - 1; i > 0 && !found; --i) {
                node* up = stack[i - 1];
                uint32_t right = up->child[1].load(std::memory_order_relaxed);
                if (up->child[0].load(std::memory_order_relaxed) == link_of(*stack[i]) && right) leftmost(at(right));
                else if (!im(*up)) found = up;
            }
            if (!found) return -ENOENT;
        } else {
            leftmost(search_root);
        }
    }
    auto* out = static_cast<std::byte*>(next);
    std::memcpy(out, &found->prefixlen, 4);
    std::memcpy(out + 4, data(*found), data_size);
    return 0;
}

result<void> lpm_check(const spec& s) {
    if (s.max_entries == 0 || !(s.flags & BPF_F_NO_PREALLOC) || (s.flags & ~lpm_flags) || !access_ok(s.flags) ||
        s.key_size < 4 + data_size_min || s.key_size > 4 + data_size_max || s.value_size == 0 ||
        s.value_size > value_size_max)
        return fail(EINVAL, "lpm_trie: needs BPF_F_NO_PREALLOC, key_size 5-260, value_size 1-{}, max_entries non-zero",
                    value_size_max);
    return {};
}

size_t lpm_bytes(const spec& s) { return head_bytes + nodes_for(s) * node_bytes_for(s); }

result<void> lpm_init(map& m) {
    map_header& h = m.header();
    h.type_state[s_nodes] = nodes_for(m.spec());
    h.type_state[s_node_bytes] = node_bytes_for(m.spec());
    new (m.base()) trie_head{};
    return {};
}

void* lpm_lookup(map& m, const void* key) noexcept {
    trie t(m);
    node* n = t.longest_match(lpm_key(key));
    return n ? t.value(*n) : nullptr;
}

long lpm_update(map& m, const void* key, const void* value, uint64_t flags) noexcept {
    trie t(m);
    writer_guard g(t.h);
    return t.update(key, value, flags);
}

long lpm_erase(map& m, const void* key) noexcept {
    trie t(m);
    writer_guard g(t.h);
    return t.erase(key);
}

result<void> errno_result(long r, const char* what) {
    if (r < 0) return fail(int(-r), "lpm_trie: {}: {}", what, strerror(int(-r)));
    return {};
}

result<void> lpm_copy_out(map& m, const void* key, void* value, uint64_t) {
    trie t(m);
    writer_guard g(t.h);
    node* n = t.longest_match(lpm_key(key));
    if (!n) return fail(ENOENT, "lpm_trie: no prefix matches");
    std::memcpy(value, t.value(*n), m.spec().value_size);
    return {};
}

result<void> lpm_store(map& m, const void* key, const void* value, uint64_t flags) {
    return errno_result(lpm_update(m, key, value, flags), "update");
}
result<void> lpm_remove(map& m, const void* key) { return errno_result(lpm_erase(m, key), "delete"); }
result<void> lpm_next_key(map& m, const void* key, void* next) {
    trie t(m);
    writer_guard g(t.h);
    return errno_result(t.next_key(key, next), "get_next_key");
}

}  // namespace

const ops lpm_trie_ops = {
    .name = "lpm_trie",
    .check = lpm_check,
    .data_bytes = lpm_bytes,
    .init = lpm_init,
    .lookup = lpm_lookup,
    .update = lpm_update,
    .erase = lpm_erase,
    .push = nullptr, .pop = nullptr, .peek = nullptr,
    .copy_out = lpm_copy_out,
    .store = lpm_store,
    .remove = lpm_remove,
    .next_key = lpm_next_key,
    .lookup_and_delete = nullptr,
    .store_object = nullptr,
};

}  // namespace xdprt::maps
