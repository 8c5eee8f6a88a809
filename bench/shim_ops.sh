#!/usr/bin/env bash
# bpf() from a client process, the kernel vs the appliance through the shim, in one run: element
# lookups, updates and key walks (ns per op), and open + load + attach + detach of a program
# (ms). The same binary (bench/shim_ops) runs twice: plainly, against the kernel (attaching to a
# veth end), and under `xdprt with`, against an appliance started here (attaching to its port).
#
#   sudo bench/shim_ops.sh [--benchmark_min_time=0.5s ...]
#
# Namespaces are made here and removed at exit.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
XDPRT="$ROOT/build/tools/xdprt"
OPS="$ROOT/build/bench/shim_ops"
[ "$(id -u)" -eq 0 ] || { echo "shim_ops: needs root" >&2; exit 1; }
for f in "$XDPRT" "$OPS"; do [ -x "$f" ] || { echo "shim_ops: build first (ninja -C build): $f" >&2; exit 1; }; done

NS="xbench-shim-$$"
WORK=$(mktemp -d /tmp/xdprt-shim-bench.XXXXXX)
PIN="/dev/shm/xdprt-shim-bench-$$"
APP_PID=""
cleanup() {
  [ -n "$APP_PID" ] && kill -TERM "$APP_PID" 2>/dev/null && timeout 10 tail --pid="$APP_PID" -f /dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK" "$PIN"
}
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link add k0 type veth peer name k1
ip -n "$NS" link set k0 up
ip -n "$NS" link set k1 up
cat >"$WORK/app.yaml" <<YAML
server:
  pin_root: $PIN
control:
  socket: $WORK/control.sock
ports:
  - name: xb0
    kind: null
    devargs: "size=64"
    twin: true
stats_file: $WORK/stats
YAML
ip netns exec "$NS" "$XDPRT" run -c "$WORK/app.yaml" >"$WORK/app.log" 2>&1 &
APP_PID=$!
for _ in $(seq 1 100); do grep -q "xdprt: running" "$WORK/app.log" && break; sleep 0.1; done
grep -q "xdprt: running" "$WORK/app.log" || { cat "$WORK/app.log"; exit 1; }

ip netns exec "$NS" env XDPRT_BENCH_IF=k0 "$OPS" --benchmark_format=json "$@" >"$WORK/kernel.json"
ip netns exec "$NS" env XDPRT_BENCH_IF=xb0 "$XDPRT" with --socket "$WORK/control.sock" -- \
  "$OPS" --benchmark_format=json "$@" >"$WORK/shim.json"

python3 - "$WORK/kernel.json" "$WORK/shim.json" <<'PY'
import json, sys
k = {b["name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"]}
s = {b["name"]: b for b in json.load(open(sys.argv[2]))["benchmarks"]}
print(f"{'operation':<24} {'kernel':>12} {'appliance':>12} {'appliance/kernel':>17}")
for name, kb in k.items():
    sb = s.get(name)
    if not sb or "error_message" in kb or "error_message" in sb:
        print(f"{name:<24} {'error':>12}"); continue
    unit = kb["time_unit"]
    kt, st = kb["real_time"], sb["real_time"]
    print(f"{name:<24} {kt:>9.1f} {unit:<2} {st:>9.1f} {unit:<2} {st / kt:>16.2f}x")
PY
