#!/usr/bin/env bash
# End to end on one veth pair, same generator, same program: the kernel's native XDP on the
# receiving veth end vs the appliance reading that end through af_xdp (copy mode on veth: the
# kernel copies every frame into the AF_XDP ring, which the appliance pays for). Reports frames
# sent, frames the program handled (delivered) per second, and loss, side by side.
#
#   sudo bench/e2e_veth.sh [SECONDS] [PROGRAM...]     (default 5 s; xdp_drop xdp_udp_filter)
#
# Namespaces and veths are made here and removed at exit; the generator (bench/pktgen) sends
# 60-byte UDP frames on 198.18.0.0/15 from one core, the receiver runs on the other.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS="${1:-5}"
shift || true
PROGRAMS=("${@:-xdp_drop}")
[ $# -eq 0 ] && PROGRAMS=(xdp_drop xdp_udp_filter)
XDPRT="$ROOT/build/tools/xdprt"
PKTGEN="$ROOT/build/bench/pktgen"
PROGS="$ROOT/build/tests/progs"
[ "$(id -u)" -eq 0 ] || { echo "e2e_veth: needs root" >&2; exit 1; }
for f in "$XDPRT" "$PKTGEN"; do [ -x "$f" ] || { echo "e2e_veth: build first (ninja -C build): $f" >&2; exit 1; }; done

ID=$$
GEN="xbench-gen-$ID"
RCV="xbench-rcv-$ID"
WORK=$(mktemp -d /tmp/xdprt-bench.XXXXXX)
APP_PID=""
cleanup() {
  [ -n "$APP_PID" ] && kill -TERM "$APP_PID" 2>/dev/null && timeout 10 tail --pid="$APP_PID" -f /dev/null || true
  ip netns del "$GEN" 2>/dev/null || true
  ip netns del "$RCV" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

setup() {
  ip netns add "$GEN"
  ip netns add "$RCV"
  ip link add g0 netns "$GEN" type veth peer name r0 netns "$RCV"
  ip -n "$GEN" link set g0 up
  ip -n "$RCV" link set r0 up
}
teardown() {
  ip netns del "$GEN"
  ip netns del "$RCV"
}
xdp_stat() { ip netns exec "$RCV" ethtool -S r0 | awk -v k="$1" '$1 == k":" { print $2 }'; }

printf '%-16s %-10s %12s %14s %8s\n' program side sent "delivered/s" "loss%"
for prog in "${PROGRAMS[@]}"; do
  # The kernel: native XDP on r0, counted by veth's own XDP statistics.
  setup
  ip -n "$RCV" link set dev r0 xdpdrv obj "$PROGS/$prog.bpf.o" sec xdp
  before=$(xdp_stat rx_queue_0_xdp_packets)
  sent=$(ip netns exec "$GEN" "$PKTGEN" g0 "$SECS")
  sleep 0.2
  got=$(( $(xdp_stat rx_queue_0_xdp_packets) - before ))
  awk -v p="$prog" -v s="$sent" -v g="$got" -v t="$SECS" \
    'BEGIN { printf "%-16s %-10s %12d %14.0f %8.2f\n", p, "kernel", s, g / t, (s && s > g) ? 100 * (s - g) / s : 0 }'
  teardown

  # The appliance: af_xdp on r0 (no twin: nothing here goes to a kernel stack).
  setup
  cat >"$WORK/$prog.yaml" <<EOF
ports:
  - {name: rx0, kind: af_xdp, device: r0, twin: false, program: {object: $PROGS/$prog.bpf.o, name: $prog}}
stats_file: $WORK/$prog.stats
EOF
  ip netns exec "$RCV" "$XDPRT" run -c "$WORK/$prog.yaml" >"$WORK/$prog.log" 2>&1 &
  APP_PID=$!
  for _ in $(seq 1 100); do grep -q "xdprt: running" "$WORK/$prog.log" && break; sleep 0.1; done
  sleep 1.2
  before=$(awk '$1 == "rx0" && $3 == "rx" { print $4 }' "$WORK/$prog.stats")
  sent=$(ip netns exec "$GEN" "$PKTGEN" g0 "$SECS")
  sleep 1.2  # the stats file is rewritten once a second
  got=$(( $(awk '$1 == "rx0" && $3 == "rx" { print $4 }' "$WORK/$prog.stats") - before ))
  kill -TERM "$APP_PID"
  timeout 10 tail --pid="$APP_PID" -f /dev/null || true
  APP_PID=""
  awk -v p="$prog" -v s="$sent" -v g="$got" -v t="$SECS" \
    'BEGIN { printf "%-16s %-10s %12d %14.0f %8.2f\n", p, "appliance", s, g / t, (s && s > g) ? 100 * (s - g) / s : 0 }'
  teardown
done
