#!/usr/bin/env bash
# Real clients from Debian's packages against a running appliance, through the preload shim
# (suite shim): bpftool, iproute2, xdp-loader, xdp-filter, each unmodified, run with
# `xdprt with -- CMD`. Where a client's output has a shape (bpftool's JSON), it is compared with
# the same command against the kernel (a bpffs mounted in a private mount namespace). Also: the
# appliance drops exactly what xdp-filter was told to drop, an unprivileged client is refused, a
# client with no appliance gets one clear line, clients killed mid-command leave no object, and
# garbage on the control socket gets errors while the appliance keeps serving.
#
#   client ns: cli0 198.18.2.1/24 --veth-- app0 (appliance ns; net_af_xdp reads it)
#   appliance ns: twin "xf0" 198.18.2.2/24
#
# usage: clients_test.sh XDPRT_BINARY PROGS_DIR EXAMPLE_BINARY EXAMPLE_OBJECT FD_SEMANTICS_BINARY
set -euo pipefail
XDPRT="$1"
PROGS="$2"
EXAMPLE="$3"
EXAMPLE_OBJ="$4"
FD_SEMANTICS="$5"
source "$(dirname "$0")/../e2e/lib.sh"
require_root
for tool in bpftool ip xdp-loader xdp-filter python3 setpriv; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (./scripts/test installs it)"
done

PIN="/dev/shm/xdprt-shim-$E2E_ID"  # a tmpfs already: visible from every mount namespace
SOCK="$E2E_DIR/control.sock"
trap 'e2e_cleanup; rm -rf "$PIN"' EXIT INT TERM

make_ns cli cli
make_ns app app
# No IPv6 from the client: its autoconfiguration chatter would reach the port alongside the
# frames whose fate the test counts.
ip netns exec "$cli" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip link add cli0 netns "$cli" type veth peer name app0 netns "$app"
ip -n "$cli" addr add 198.18.2.1/24 dev cli0
ip -n "$cli" link set cli0 up
ip -n "$app" link set app0 up
ip netns exec "$cli" ethtool -K cli0 gro on >/dev/null 2>&1 || true
ip netns exec "$cli" ethtool -K cli0 tx off >/dev/null

cat >"$E2E_DIR/shim.yaml" <<EOF
server:
  pin_root: $PIN
control:
  socket: $SOCK
ports:
  - name: xf0
    kind: af_xdp
    device: app0
stats_file: $E2E_DIR/stats
EOF
check "appliance starts with its control socket" start_appliance "$app" "$E2E_DIR/shim.yaml" "$E2E_DIR/app.log"
ip -n "$app" addr add 198.18.2.2/24 dev xf0
ip -n "$app" link set xf0 up

# count_udp FILE SECONDS: in the background, counts what reaches UDP port 10 of the appliance's
# stack until SECONDS pass without a frame, then writes the count to FILE; $receiver is its pid.
count_udp() {
  ip netns exec "$app" python3 - "$2" >"$1" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("198.18.2.2", 10)); s.settimeout(float(sys.argv[1]))
n = 0
try:
    while True:
        s.recv(2048); n += 1
except socket.timeout:
    pass
print(n)
PY
  receiver=$!
  E2E_PIDS+=("$receiver")
}

# A client in the appliance's namespace, through the shim.
W() { ip netns exec "$app" "$XDPRT" with --socket "$SOCK" -- "$@"; }
# The same command against the kernel, with a bpffs of its own.
K() { unshare -m bash -c 'mount -t bpf bpf /sys/fs/bpf && "$@"' kernel "$@"; }
# The sorted key set of a JSON object (or of a list's first object).
keys() { python3 -c 'import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d,list) else d; print(" ".join(sorted(d)))'; }
same_keys() { [ "$(echo "$1" | keys)" = "$(echo "$2" | keys)" ] || { echo "  appliance: $(echo "$1" | keys)"; echo "  kernel:    $(echo "$2" | keys)"; false; }; }
has() { grep -q -- "$1" <<<"$2" || { echo "  expected '$1' in:"; sed 's/^/    /' <<<"$2"; false; }; }

# ---- bpftool: maps ----
check "bpftool map create (pinned)" W bpftool map create /sys/fs/bpf/m type hash key 4 value 8 entries 64 name shim_m
check "bpftool map update" W bpftool map update pinned /sys/fs/bpf/m key 1 0 0 0 value 1 2 3 4 5 6 7 8
check "bpftool map lookup finds it" has "01 02 03 04 05 06 07 08" "$(W bpftool map lookup pinned /sys/fs/bpf/m key 1 0 0 0)"
check "bpftool map dump lists one element" has "Found 1 element" "$(W bpftool map dump pinned /sys/fs/bpf/m)"
check "bpftool map delete" W bpftool map delete pinned /sys/fs/bpf/m key 1 0 0 0
check "bpftool map dump lists none" has "Found 0 elements" "$(W bpftool map dump pinned /sys/fs/bpf/m)"
check "bpftool map pin (a second name)" W bpftool map pin pinned /sys/fs/bpf/m /sys/fs/bpf/m2
check "the pin is a file in the appliance's pin root" test -f "$PIN/m2"
mine=$(W bpftool -j map show pinned /sys/fs/bpf/m)
theirs=$(K bash -c 'bpftool map create /sys/fs/bpf/m type hash key 4 value 8 entries 64 name shim_m && bpftool -j map show pinned /sys/fs/bpf/m')
check "bpftool map show: the kernel's JSON shape" same_keys "$mine" "$theirs"

# ---- bpftool: programs ----
check "bpftool prog load (pinned)" W bpftool prog load "$PROGS/xdp_drop.bpf.o" /sys/fs/bpf/p
check "bpftool prog show names it" has "name xdp_drop" "$(W bpftool prog show pinned /sys/fs/bpf/p)"
head -c 64 /dev/zero >"$E2E_DIR/pkt"
check "bpftool prog run returns XDP_DROP" has "Return value: 1" "$(W bpftool prog run pinned /sys/fs/bpf/p data_in "$E2E_DIR/pkt" repeat 4)"
mine=$(W bpftool -j prog show pinned /sys/fs/bpf/p)
theirs=$(K bash -c "bpftool prog load $PROGS/xdp_drop.bpf.o /sys/fs/bpf/p && bpftool -j prog show pinned /sys/fs/bpf/p")
check "bpftool prog show: the kernel's JSON shape" same_keys "$mine" "$theirs"
jited=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("bytes_jited", 0))' "$mine")
echo "  bytes_jited: $jited (the LLVM JIT's code) vs the kernel's $(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("bytes_jited", 0))' "$theirs")"
check "bpftool prog show reports the JIT's code size" test "$jited" -gt 0

# ---- bpftool: net ----
prog_id=$(W bpftool -j prog show pinned /sys/fs/bpf/p | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
check "bpftool net attach xdp on the appliance's port" W bpftool net attach xdp pinned /sys/fs/bpf/p dev xf0
check "bpftool net show lists it with its id" has "xf0([0-9]*) driver id $prog_id" "$(W bpftool net show)"
check "bpftool net detach" W bpftool net detach xdp dev xf0
check "bpftool net show lists nothing on xf0" bash -c "! ip netns exec $app $XDPRT with --socket $SOCK -- bpftool net show | grep -q xf0"

# ---- iproute2 ----
check "ip link set dev xf0 xdp obj" W ip link set dev xf0 xdp obj "$PROGS/xdp_drop.bpf.o" sec xdp
check "ip -d link show: the program's id" has "prog/xdp id [0-9]* name xdp_drop" "$(W ip -d link show xf0)"
check "ip link set dev xf0 xdp off" W ip link set dev xf0 xdp off
check "ip link show: no program" bash -c "! ip netns exec $app $XDPRT with --socket $SOCK -- ip -d link show xf0 | grep -q prog/xdp"

# ---- the af_xdp port's kernel interface is an attach point of the port too ----
check "ip link set dev app0 xdp obj: attaches to the port that reads app0" W ip link set dev app0 xdp obj "$PROGS/xdp_drop.bpf.o" sec xdp
check "ip -d link show app0: the appliance's program" has "prog/xdp id [0-9]* name xdp_drop" "$(W ip -d link show app0)"
out=$(W ip link set dev xf0 xdp obj "$PROGS/xdp_drop.bpf.o" sec xdp 2>&1) && busy=0 || busy=1
check "the same port through its twin meanwhile: refused (one program a port)" test "$busy" = 1
check "ip link set dev app0 xdp off" W ip link set dev app0 xdp off

# ---- xdp-loader ----
for mode in native skb; do
  check "xdp-loader load -m $mode" W xdp-loader load -m "$mode" xf0 /usr/libexec/xdp-tools/xdp_pass.o
  check "xdp-loader status: xdp_pass in $mode mode" has "xdp_pass *$mode" "$(W xdp-loader status xf0)"
  check "xdp-loader unload" W xdp-loader unload xf0 --all
  check "xdp-loader status: nothing loaded" has "No XDP program loaded" "$(W xdp-loader status xf0)"
done

# ---- xdp-filter, end to end ----
check "xdp-filter load" W xdp-filter load xf0
check "xdp-filter port 9" W xdp-filter port 9
check "xdp-filter ip, ether" bash -c "ip netns exec $app $XDPRT with --socket $SOCK -- xdp-filter ip 198.18.99.1 &&
  ip netns exec $app $XDPRT with --socket $SOCK -- xdp-filter ether 02:00:00:00:99:01"
ip netns exec "$cli" ping -c 1 -W 2 198.18.2.2 >/dev/null || true  # ARP, through the filter
count_udp "$E2E_DIR/udp10" 4
sleep 0.3
ip netns exec "$cli" python3 - <<'PY'
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for k in range(200):
    s.sendto(b"x" * 32, ("198.18.2.2", 9 if k % 2 == 0 else 10))
    time.sleep(0.002)
PY
timeout 10 tail --pid="$receiver" -f /dev/null || true
check "port 10 traffic reaches the appliance's stack (100 sent)" test "$(cat "$E2E_DIR/udp10")" = 100
status=$(W xdp-filter status)
check "xdp-filter status: port 9 hit 100 times" test "$(awk '$1 == "9" && $2 == "dst,tcp,udp" {print $3}' <<<"$status")" = 100
sleep 1.2  # the stats file is rewritten once a second
drops=$(awk '$1 == "xf0" && $3 == "drop" {print $4}' "$E2E_DIR/stats")
check "the appliance dropped exactly the 100 frames to port 9 (dropped: $drops)" test "$drops" = 100
start=$(date +%s%N)
W xdp-filter status >/dev/null
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "xdp-filter status took $ms ms"
check "xdp-filter status (65,536 GET_NEXT_KEY and LOOKUP) completes in under 2 s" test "$ms" -lt 2000
check "xdp-filter unload" W xdp-filter unload xf0

# ---- object fds: dup, dup2, fork, exec, mmap, as with the kernel ----
out=$("$FD_SEMANTICS" 2>&1) && kernel_ok=1 || kernel_ok=0
[ "$kernel_ok" = 1 ] || sed 's/^/    /' <<<"$out"
check "fd semantics against the kernel" test "$kernel_ok" = 1
out=$(W "$FD_SEMANTICS" 2>&1) && shim_ok=1 || shim_ok=0
[ "$shim_ok" = 1 ] || sed 's/^/    /' <<<"$out"
check "fd semantics against the appliance: dup, dup2, fork, exec, mmap as the kernel's" test "$shim_ok" = 1
check "a kernel perf event given an appliance program: the shim says why" has "a kernel perf event cannot run it" "$out"

# ---- a libbpf application of ours: the same binary against the kernel and the appliance ----
# send_udp NS DST DONE_FILE: UDP to DST, ports 9 and 10 in turn, every 2 ms, until DONE_FILE
# appears (at most 20 s).
send_udp() {
  ip netns exec "$1" python3 - "$2" "$3" <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + 20
k = 0
while time.time() < end and not os.path.exists(sys.argv[2]):
    s.sendto(b"y" * 32, (sys.argv[1], 9 if k % 2 == 0 else 10)); k += 1
    time.sleep(0.002)
PY
  E2E_PIDS+=("$!")
}
# both_phases OUTPUT: each attachment (netlink, link) saw passes and drops.
both_phases() {
  python3 - "$1" <<'PY'
import re, sys
lines = dict((m.group(1), (int(m.group(2)), int(m.group(3))))
             for m in re.finditer(r"attach=(\w+) passed=(\d+) dropped=(\d+)", sys.argv[1]))
ok = set(lines) == {"netlink", "link"} and all(p > 0 and d > 0 for p, d in lines.values())
print("  " + sys.argv[1].replace("\n", "\n  ")) if not ok else None
sys.exit(0 if ok else 1)
PY
}
make_ns kapp kapp
ip link add kcli0 netns "$cli" type veth peer name kapp0 netns "$kapp"
ip -n "$cli" addr add 198.18.3.1/24 dev kcli0
ip -n "$kapp" addr add 198.18.3.2/24 dev kapp0
ip -n "$cli" link set kcli0 up
ip -n "$kapp" link set kapp0 up
rm -f "$E2E_DIR/done"
send_udp "$cli" 198.18.3.2 "$E2E_DIR/done"
out=$(ip netns exec "$kapp" "$EXAMPLE" kapp0 "$EXAMPLE_OBJ" 9 --packets 20 --seconds 10 2>&1) || true
touch "$E2E_DIR/done"
check "example against the kernel: netlink and link attachments pass and drop" both_phases "$out"
sleep 0.1
rm -f "$E2E_DIR/done"
send_udp "$cli" 198.18.2.2 "$E2E_DIR/done"
out=$(W "$EXAMPLE" xf0 "$EXAMPLE_OBJ" 9 --packets 20 --seconds 10 2>&1) || true
touch "$E2E_DIR/done"
check "the same binary against the appliance, through the shim" both_phases "$out"
check "the example left nothing attached" bash -c "! ip netns exec $app $XDPRT with --socket $SOCK -- ip -d link show xf0 | grep -q prog/xdp"

# ---- refusals ----
out=$(ip netns exec "$app" setpriv --reuid 65534 --regid 65534 --clear-groups \
      env LD_PRELOAD="$(dirname "$XDPRT")/../control/libxdprt-preload.so" XDPRT_SOCKET="$SOCK" bpftool map show 2>&1 || true)
check "an unprivileged client is refused, with the reason" has "no permission to use the appliance\|is not root" "$out"
out=$("$XDPRT" with --socket "$E2E_DIR/nothing.sock" -- bpftool map show 2>&1 || true)
check "no appliance: one clear line" has "no appliance at $E2E_DIR/nothing.sock" "$out"
check "no appliance: said once" test "$(grep -c 'no appliance' <<<"$out")" = 1

# ---- clients killed mid-command leave nothing ----
count_objects() { W bpftool -j prog show | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
before=$(count_objects)
for k in 1 2 3 4 5 6 7 8; do
  # ip netns exec and xdprt with exec: $! is bpftool itself
  ip netns exec "$app" "$XDPRT" with --socket "$SOCK" -- bpftool prog load "$PROGS/xdp_demo_lb.bpf.o" "/sys/fs/bpf/killed$k" >/dev/null 2>&1 &
  victim=$!
  sleep "0.0$k"
  kill -9 "$victim" 2>/dev/null || true
  wait "$victim" 2>/dev/null || true
  rm -f "$PIN/killed$k"  # what a load that finished pinned: its owner unpins it
done
sleep 0.5
after=$(count_objects)
check "programs of killed clients are released ($before before, $after after)" test "$after" = "$before"

# ---- clients killed while writing a hash map through its shared memory ----
# Each writer rewrites 4 KiB values under the map's writer lock; killed at a random moment, it may
# die holding it. Whoever writes next must not wait forever: the appliance takes the lock back.
W bpftool map create /sys/fs/bpf/hammered type hash key 4 value 4096 entries 16 name hammered
stuck=0
for k in 1 2 3 4 5 6 7 8 9 10; do
  ip netns exec "$app" "$XDPRT" with --socket "$SOCK" -- "$FD_SEMANTICS" --hammer /sys/fs/bpf/hammered 10 &
  victim=$!
  sleep "0.$((RANDOM % 3 + 1))$k"
  kill -9 "$victim" 2>/dev/null || true
  wait "$victim" 2>/dev/null || true
  timeout 10 ip netns exec "$app" "$XDPRT" with --socket "$SOCK" -- "$FD_SEMANTICS" --hammer /sys/fs/bpf/hammered 0 || stuck=$((stuck + 1))
done
echo "  writer locks taken back from killed writers: $(grep -c 'took its writer lock back' "$E2E_DIR/app.log" || true) of 10 kills"
check "writers killed mid-write leave the hash map writable ($stuck of 10 next writers stuck)" test "$stuck" = 0
rm -f "$PIN/hammered"

# ---- garbage on the control socket ----
ip netns exec "$app" python3 - "$SOCK" >"$E2E_DIR/fuzz" <<'PY'
import os, random, socket, struct, sys, time
random.seed(7)
answered = closed = 0
end = time.time() + 5
n = 0
while time.time() < end and n < 3000:
    n += 1
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1]); s.settimeout(2)
    kind = n % 4
    if kind == 0:    msg = os.urandom(random.randint(1, 200))                                # random bytes
    elif kind == 1:  msg = struct.pack("<IHH", 0x52504458, 1, 2)                             # truncated
    elif kind == 2:  msg = struct.pack("<IHH6q", 0x52504458, 1, random.randint(0, 99), *[random.getrandbits(62) for _ in range(6)])
    else:            msg = struct.pack("<IHH6q", 0x52504458, 1, 2, random.randint(0, 40), random.getrandbits(48), random.randint(0, 300), 0, 0, 0)
    try:
        s.send(msg)
        r = s.recv(4096)
        answered += len(r) > 0
        if len(r) >= 16:
            res = struct.unpack_from("<q", r, 8)[0]
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        closed += 1
    s.close()
print(n, answered, closed)
PY
read -r sent answered closed <"$E2E_DIR/fuzz"
echo "fuzz: $sent messages, $answered answered, $closed without an answer"
check "every garbage message got an answer" test "$answered" = "$sent"
check "the appliance still serves after the garbage" W bpftool map show
check "the appliance still runs" kill -0 "${E2E_PIDS[0]}"
count_udp "$E2E_DIR/udp10b" 3
sleep 0.3
ip netns exec "$cli" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for k in range(20):
    s.sendto(b"z" * 32, ("198.18.2.2", 10)); time.sleep(0.005)'
timeout 10 tail --pid="$receiver" -f /dev/null || true
check "and still forwards: 20 of 20 frames reach its stack" test "$(cat "$E2E_DIR/udp10b")" = 20

finish
