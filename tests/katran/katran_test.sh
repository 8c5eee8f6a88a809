#!/usr/bin/env bash
# Suite katran: the user's own Katran object (KATRAN_BPF_OBJ: balancer.bpf.o as Katran's build
# makes it) on the kernel and on xdprt.
#  1. Replay: katran_replay drives Katran-style traffic through the object by BPF_PROG_TEST_RUN,
#     once against the kernel and once, under `xdprt with`, against the appliance, with the same
#     maps (programmed by katran-port): every action, every output packet and every counter must
#     be identical.
#  2. End to end: katran-ctl (through the shim) deploys the object on an appliance port; clients'
#     UDP flows to a VIP leave the appliance IPIP-encapsulated, a router forwards them to three
#     reals' namespaces, each flow always reaches the same real, and removing a real moves only
#     its flows.
#
#   client ns cli0 198.18.5.2 -- rc0 198.18.5.1 router ns ra0 198.18.6.1 -- app0 (appliance ns,
#   af_xdp port "ka0"); router rrK 198.18.1K.1 -- realK ns rK 198.18.1K.2 (10.200.0.K on lo)
#
# usage: katran_test.sh XDPRT REPLAY REPLAY_CONFIG KATRAN_CTL
set -euo pipefail
XDPRT="$1"
REPLAY="$2"
REPLAY_CONFIG="$3"
KATRAN_CTL="$4"
source "$(dirname "$0")/../e2e/lib.sh"
[ -n "${KATRAN_BPF_OBJ:-}" ] || skip "KATRAN_BPF_OBJ is unset: point it at Katran's balancer.bpf.o, built with Katran's own build (katran-port/README.md)"
[ -f "$KATRAN_BPF_OBJ" ] || skip "KATRAN_BPF_OBJ=$KATRAN_BPF_OBJ is not a file"
require_root
command -v python3 >/dev/null || skip "python3 is not installed"

PIN="/dev/shm/xdprt-katran-$E2E_ID"
SOCK="$E2E_DIR/control.sock"
trap 'e2e_cleanup; rm -rf "$PIN"' EXIT INT TERM

make_ns app app
make_ns rtr rtr
make_ns cli cli
printf 'server:\n  pin_root: %s\ncontrol:\n  socket: %s\nports:\n  - name: ka0\n    kind: af_xdp\n    device: app0\nstats_file: %s/stats\n' \
  "$PIN" "$SOCK" "$E2E_DIR" >"$E2E_DIR/app.yaml"
ip link add ra0 netns "$rtr" type veth peer name app0 netns "$app"
ip -n "$app" link set app0 up
ip -n "$rtr" addr add 198.18.6.1/24 dev ra0
ip -n "$rtr" link set ra0 up
ip netns exec "$rtr" ethtool -K ra0 gro on >/dev/null 2>&1 || true  # NAPI for what the port sends
check "appliance starts" start_appliance "$app" "$E2E_DIR/app.yaml" "$E2E_DIR/app.log"
W() { ip netns exec "$app" "$XDPRT" with --socket "$SOCK" -- "$@"; }

# ---- 1. replay: the kernel and the appliance answer alike ----
"$REPLAY" "$REPLAY_CONFIG" >"$E2E_DIR/kernel.out" 2>"$E2E_DIR/kernel.err" || cat "$E2E_DIR/kernel.err"
W "$REPLAY" "$REPLAY_CONFIG" >"$E2E_DIR/xdprt.out" 2>"$E2E_DIR/xdprt.err" || cat "$E2E_DIR/xdprt.err"
packets=$(grep -c ': action\|: test run' "$E2E_DIR/kernel.out" || true)
echo "  replayed $packets packets; actions on the kernel: $(grep -o 'action [0-9]' "$E2E_DIR/kernel.out" | sort | uniq -c | tr '\n' ' ')"
check "replay ran on the kernel ($packets packets)" test "$packets" -ge 37
check "the appliance's actions, packets and counters are the kernel's" diff -u "$E2E_DIR/kernel.out" "$E2E_DIR/xdprt.out"

# ---- 2. end to end through the appliance ----
ip link add rc0 netns "$rtr" type veth peer name cli0 netns "$cli"
ip -n "$rtr" addr add 198.18.5.1/24 dev rc0
ip -n "$rtr" link set rc0 up
ip -n "$cli" addr add 198.18.5.2/24 dev cli0
ip -n "$cli" link set cli0 up
# Full checksums, as from a wire: a veth otherwise leaves them to an offload that the XDP path
# never completes, and GUE's outer UDP checksum (Katran computes it the LCO way, relying on the
# inner one) would be wrong at the reals.
ip netns exec "$cli" ethtool -K cli0 tx off >/dev/null
ip -n "$cli" route add default via 198.18.5.1
ip netns exec "$cli" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec "$rtr" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.ra0.rp_filter=0
app_mac=$(ip netns exec "$app" cat /sys/class/net/app0/address)
rtr_mac=$(ip netns exec "$rtr" cat /sys/class/net/ra0/address)
ip -n "$rtr" neigh add 198.18.6.2 lladdr "$app_mac" dev ra0
ip -n "$rtr" route add 10.100.0.0/24 via 198.18.6.2
for k in 1 2 3; do
  make_ns "real$k" "real$k"
  ns_var="real$k"
  ns="${!ns_var}"
  ip link add "rr$k" netns "$rtr" type veth peer name "r$k" netns "$ns"
  ip -n "$rtr" addr add "198.18.1$k.1/24" dev "rr$k"
  ip -n "$rtr" link set "rr$k" up
  ip -n "$ns" addr add "198.18.1$k.2/24" dev "r$k"
  ip -n "$ns" addr add "10.200.0.$k/32" dev lo
  ip -n "$ns" link set "r$k" up
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  ip -n "$rtr" route add "10.200.0.$k/32" via "198.18.1$k.2"
done

lb_config() {  # lb_config FILE SERVER_IDS REALS...: katran-port's YAML for the VIP 10.100.0.1:9000/udp
  local f="$1" ids="$2"
  shift 2
  {
    echo "object: $KATRAN_BPF_OBJ"
    echo "pin_dir: /sys/fs/bpf/katran"
    echo "interface: ka0"
    echo "gateway_mac: \"$rtr_mac\""
    echo "lru_size: 10000"
    echo "encap_sources: {v4: 10.100.0.254}"  # GUE builds only (an IPIP object has no pckt_srcs)
    echo "server_ids: {$ids}"
    echo "vips:"
    echo "  - address: 10.100.0.1"
    echo "    port: 9000"
    echo "    proto: udp"
    echo "    reals:"
    for r in "$@"; do echo "      - {address: $r}"; done
  } >"$f"
}
lb_config "$E2E_DIR/lb3.yaml" "1234: 10.200.0.1, 77: 10.200.0.3" 10.200.0.1 10.200.0.2 10.200.0.3
lb_config "$E2E_DIR/lb2.yaml" "1234: 10.200.0.1" 10.200.0.1 10.200.0.2
check "katran-ctl apply: load, program, attach to the appliance's port" W "$KATRAN_CTL" apply -c "$E2E_DIR/lb3.yaml"

# listen K OUT: records, in the background, the client source port of every packet real K
# receives for the VIP, encapsulated in IPIP (a raw socket) or in GUE (UDP to port 6080, the
# inner IPv4 packet right after the UDP header: GUE variant 1), until 3 s pass without one;
# $listener_pids collects them.
listener_pids=()
listen() {
  local ns_var="real$1"
  ip netns exec "${!ns_var}" python3 -c '
import select, socket, sys
ipip = socket.socket(socket.AF_INET, socket.SOCK_RAW, 4)  # IPPROTO_IPIP
gue = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
gue.bind((sys.argv[2], 6080))
ports = []
while len(ports) < 100000:
    ready, _, _ = select.select([ipip, gue], [], [], 3)
    if not ready:
        break
    for s in ready:
        pkt = s.recv(2048)
        inner = pkt[(pkt[0] & 15) * 4:] if s is ipip else pkt  # past the outer IPv4 header
        ihl = (inner[0] & 15) * 4
        if len(inner) > ihl + 2 and inner[9] == 17 and inner[16:20] == bytes([10, 100, 0, 1]):
            ports.append(int.from_bytes(inner[ihl:ihl + 2], "big"))
open(sys.argv[1], "w").write(" ".join(map(str, ports)))
' "$2" "10.200.0.$1" &
  listener_pids+=($!)
}
send_flows() {  # 40 flows (source ports 21000-21039), 3 datagrams each
  ip netns exec "$cli" python3 -c '
import socket, time
for rnd in range(3):
    for p in range(21000, 21040):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("198.18.5.2", p))
        s.sendto(b"katran flow %d" % p, ("10.100.0.1", 9000))
        s.close()
        time.sleep(0.002)
'
}
# where ROUND: "port:reals:count" per flow seen in ROUND, from the listeners' files.
where() {
  python3 -c '
import collections, sys
d, rnd = sys.argv[1], sys.argv[2]
seen = collections.defaultdict(collections.Counter)
for k in (1, 2, 3):
    for p in open(f"{d}/real{k}.{rnd}").read().split():
        seen[int(p)][k] += 1
for p in sorted(seen):
    print(f"{p}:{chr(43).join(str(k) for k in sorted(seen[p]))}:{sum(seen[p].values())}")
' "$E2E_DIR" "$1"
}

for k in 1 2 3; do listen "$k" "$E2E_DIR/real$k.before"; done
sleep 0.5
send_flows
wait "${listener_pids[@]}"
listener_pids=()
where before >"$E2E_DIR/before"
echo "  flows per real: $(cut -d: -f2 "$E2E_DIR/before" | sort | uniq -c | tr '\n' ' ')"
check "every flow reached a real, all 3 datagrams, and only one real" \
  test "$(grep -c '^[0-9]*:[123]:3$' "$E2E_DIR/before" || true)" = 40
check "the flows spread over the 3 reals" test "$(cut -d: -f2 "$E2E_DIR/before" | sort -u | wc -l)" = 3
out=$(W "$KATRAN_CTL" stats -c "$E2E_DIR/lb3.yaml")
sed 's/^/  /' <<<"$out"
check "katran-ctl stats counts the VIP's 120 packets" grep -q "vip 10.100.0.1:9000/udp: 120 packets" <<<"$out"

out=$(W "$KATRAN_CTL" apply -c "$E2E_DIR/lb2.yaml")
echo "  $out"
check "the server id the file dropped (77) is cleared" grep -q "server ids removed: 1$" <<<"$out"
written=$(sed -n 's/.*ring slots written: \([0-9]*\).*/\1/p' <<<"$out")
check "removing 1 of 3 reals rewrites about a third of the ring ($written of 65537 slots)" \
  test "$written" -gt 20000 -a "$written" -lt 23500
for k in 1 2 3; do listen "$k" "$E2E_DIR/real$k.after"; done
sleep 0.5
send_flows
wait "${listener_pids[@]}"
where after >"$E2E_DIR/after"
read -r kept_moved not_moved of_removed < <(python3 -c '
import sys
b = dict(l.split(":")[:2] for l in open(sys.argv[1]).read().split())
a = dict(l.split(":")[:2] for l in open(sys.argv[2]).read().split())
bad = [p for p in b if b[p] != "3" and a.get(p) != b[p]]         # a kept real flow that moved
left = [p for p in b if b[p] == "3" and a.get(p) in (None, "3")]  # a removed real flow that stayed
print(len(bad), len(left), sum(1 for p in b if b[p] == "3"))
' "$E2E_DIR/before" "$E2E_DIR/after")
echo "  after removing real 3: $kept_moved flows of kept reals moved, $not_moved of its $of_removed flows did not move"
check "every flow still reaches one real, all 3 datagrams" test "$(grep -c '^[0-9]*:[12]:3$' "$E2E_DIR/after" || true)" = 40
check "only the removed real's flows moved" test "$kept_moved" = 0 -a "$not_moved" = 0
check "katran-ctl detach" W "$KATRAN_CTL" detach -c "$E2E_DIR/lb2.yaml"

# ---- shared mode: Katran's xdp_root on the port, the balancer in its root_array ----
ROOT_OBJ="$(dirname "$KATRAN_BPF_OBJ")/xdp_root.o"
if [ -f "$ROOT_OBJ" ]; then
  check "bpftool loads Katran's xdp_root, its maps pinned" \
    W bpftool prog load "$ROOT_OBJ" /sys/fs/bpf/xdproot type xdp pinmaps /sys/fs/bpf/xdproot_maps
  check "ip link attaches xdp_root to the port" W ip link set dev ka0 xdp pinned /sys/fs/bpf/xdproot
  grep -v '^interface:' "$E2E_DIR/lb3.yaml" >"$E2E_DIR/shared.yaml"
  printf 'shared: {root_array: /sys/fs/bpf/xdproot_maps/root_array, index: 2}\n' >>"$E2E_DIR/shared.yaml"
  check "katran-ctl apply in shared mode (root_array[2])" W "$KATRAN_CTL" apply -c "$E2E_DIR/shared.yaml"
  listener_pids=()
  for k in 1 2 3; do listen "$k" "$E2E_DIR/real$k.shared"; done
  sleep 0.5
  send_flows
  wait "${listener_pids[@]}"
  where shared >"$E2E_DIR/shared"
  check "through xdp_root's tail call, every flow reaches one real, all 3 datagrams" \
    test "$(grep -c '^[0-9]*:[123]:3$' "$E2E_DIR/shared" || true)" = 40
  check "katran-ctl detach leaves root_array" W "$KATRAN_CTL" detach -c "$E2E_DIR/shared.yaml"
  W ip link set dev ka0 xdp off
  rm -rf "$PIN/xdproot" "$PIN/xdproot_maps"
else
  echo "  shared mode not run: no xdp_root.o beside $KATRAN_BPF_OBJ (Katran's build makes both)"
fi

# ---- 3. the same katran-ctl against the kernel: a veth of its own, a bpffs of its own ----
make_ns kern kern
ip -n "$kern" link add kv0 type veth peer name kv1
ip -n "$kern" link set kv0 up
ip -n "$kern" link set kv1 up
sed 's/interface: ka0/interface: kv0/' "$E2E_DIR/lb3.yaml" >"$E2E_DIR/k3.yaml"
sed 's/interface: ka0/interface: kv0/' "$E2E_DIR/lb2.yaml" >"$E2E_DIR/k2.yaml"
kout=$(ip netns exec "$kern" unshare -m bash -c 'mount -t bpf bpf /sys/fs/bpf &&
  "$1" apply -c "$2" && "$1" stats -c "$2" && ip -d link show kv0 | grep -o "prog/xdp id [0-9]*" &&
  "$1" apply -c "$3" && "$1" detach -c "$3"' kernel "$KATRAN_CTL" "$E2E_DIR/k3.yaml" "$E2E_DIR/k2.yaml" 2>&1) || true
sed 's/^/  /' <<<"$kout"
check "katran-ctl on the kernel: apply attaches natively" grep -q "prog/xdp id" <<<"$kout"
check "katran-ctl on the kernel: removing the real rewrites the same slots ($written)" grep -q "ring slots written: $written;" <<<"$kout"
check "katran-ctl on the kernel: the dropped server id is cleared" grep -q "server ids removed: 1$" <<<"$kout"
check "katran-ctl on the kernel: detach" grep -q "^detached" <<<"$kout"
finish
