#!/usr/bin/env bash
# The kernel twin, end to end: a client namespace reaches a socket in the appliance host's stack
# through an af_xdp port whose program passes the traffic. ARP works both ways (the client
# resolves the twin's address, the twin the client's), ping gets its replies, a TCP connection
# carries data both ways; a UDP port the program drops gets nothing through.
#
#   client ns: cli0 198.18.1.1/24 --veth-- app0 (appliance ns, no address; net_af_xdp reads it)
#   appliance ns: twin "xp0" 198.18.1.2/24, the host stack the program passes frames to
#
# usage: twin_test.sh XDPRT_BINARY PROGS_DIR
set -euo pipefail
XDPRT="$1"
PROGS="$2"
source "$(dirname "$0")/lib.sh"
require_root

make_ns cli cli
make_ns app app
ip link add cli0 netns "$cli" type veth peer name app0 netns "$app"
ip -n "$cli" addr add 198.18.1.1/24 dev cli0
ip -n "$cli" link set cli0 up
ip -n "$app" link set app0 up
# veth delivers frames sent from AF_XDP only to a peer with NAPI (GRO on or an XDP program).
ip netns exec "$cli" ethtool -K cli0 gro on >/dev/null 2>&1 || true
# Checksums are left to the device on veth (CHECKSUM_PARTIAL): XDP sees them unfinished, as the
# kernel's own XDP on veth does. Real senders on a wire finish them; so does this one.
ip netns exec "$cli" ethtool -K cli0 tx off >/dev/null

cat >"$E2E_DIR/twin.yaml" <<EOF
eal:
  lcores: "0-1"
ports:
  - name: xp0
    kind: af_xdp
    device: app0
    program:
      object: $PROGS/xdp_udp_filter.bpf.o
stats_file: $E2E_DIR/stats
EOF
check "appliance starts on an af_xdp port with a twin" start_appliance "$app" "$E2E_DIR/twin.yaml" "$E2E_DIR/app.log"
ip -n "$app" addr add 198.18.1.2/24 dev xp0
ip -n "$app" link set xp0 up

check "ping from the client reaches the appliance's stack and returns" \
  ip netns exec "$cli" ping -c 3 -i 0.2 -W 2 198.18.1.2
check "the client learned the twin's MAC by ARP" \
  bash -c "ip -n $cli neigh show 198.18.1.2 | grep -q lladdr"
check "the twin learned the client's MAC by ARP" \
  bash -c "ip -n $app neigh show 198.18.1.1 | grep -q lladdr"

# TCP: a server in the appliance's stack echoes what a client sends, upper-cased.
ip netns exec "$app" python3 - <<'PY' &
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.1.2", 8080)); s.listen(1); s.settimeout(10)
c, _ = s.accept(); c.settimeout(10)
data = b""
while not data.endswith(b"\n"):
    chunk = c.recv(65536)
    if not chunk: break
    data += chunk
c.sendall(data.upper()); c.close()
PY
E2E_PIDS+=("$!")
sleep 0.3
reply=$(ip netns exec "$cli" python3 - <<'PY'
import socket
c = socket.create_connection(("198.18.1.2", 8080), timeout=10)
msg = b"x" * 100000 + b"hello twin\n"
c.sendall(msg)
got = b""
while len(got) < len(msg):
    chunk = c.recv(65536)
    if not chunk: break
    got += chunk
print(len(got), got[-11:].decode().strip())
PY
)
check "a TCP connection carries 100 kB both ways through the port and the twin" test "$reply" = "100011 HELLO TWIN"

# UDP to port 9 is dropped by the program; port 10 is passed.
ip netns exec "$app" python3 - >"$E2E_DIR/udp.out" <<'PY' &
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("198.18.1.2", 10)); s.settimeout(3)
t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); t.bind(("198.18.1.2", 9)); t.settimeout(0.5)
n10 = n9 = 0
try:
    while True: s.recv(100); n10 += 1
except OSError: pass
try:
    while True: t.recv(100); n9 += 1
except OSError: pass
print(n10, n9)
PY
udp_pid=$!
sleep 0.3
ip netns exec "$cli" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(20):
    s.sendto(b"p10", ("198.18.1.2", 10)); s.sendto(b"p9", ("198.18.1.2", 9)); time.sleep(0.01)
'
wait "$udp_pid" || true
check "UDP to port 10 passes (20 of 20), to port 9 is dropped (0 of 20)" test "$(cat "$E2E_DIR/udp.out")" = "20 0"

"$XDPRT" stats --file "$E2E_DIR/stats" >"$E2E_DIR/stats.txt" || true
check "xdprt stats counts the drops" bash -c "grep -Eq '^xp0 +drop +([2-9][0-9]|1[0-9][0-9])' $E2E_DIR/stats.txt"
cat "$E2E_DIR/stats.txt"

# SIGTERM stops it cleanly: the twin is gone.
kill -TERM "${E2E_PIDS[0]}"
timeout 10 tail --pid="${E2E_PIDS[0]}" -f /dev/null
check "SIGTERM removes the twin" bash -c "! ip -n $app link show xp0 >/dev/null 2>&1"
finish
