#!/usr/bin/env bash
# The same program under the kernel's XDP (native, on a veth, attached by iproute2) and on an
# appliance port (af_xdp on a veth, attached by xdprt run): for a mixed set of frames (valid,
# runts, truncated headers, IPv4 options, fragments, IPv6 extension headers, VLAN), what leaves
# through the veth and what reaches the kernel stack must be the same, frame by frame.
#
#   gen ns: gk0 --veth-- k0 (kernel ns: XDP program on k0)
#           ga0 --veth-- a0 (appliance ns: af_xdp port "ap0" on a0, twin "ap0")
#
# usage: compare_test.sh XDPRT_BINARY PROGS_DIR [PROGRAM...]
set -euo pipefail
XDPRT="$1"
PROGS="$2"
shift 2
PROGRAMS=("${@:-xdp_swap_mac xdp_udp_filter xdp_icmp_echo xdp_parse_l4 xdp_ttl_csum xdp_adjust_tail xdp_vlan_tag}")
read -r -a PROGRAMS <<<"${PROGRAMS[*]}"
HERE="$(cd "$(dirname "$0")" && pwd)"
source "$HERE/lib.sh"
require_root
command -v ip >/dev/null || skip "needs iproute2"
XDP_PASS_OBJ=/usr/libexec/xdp-tools/xdp_pass.o
[ -f "$XDP_PASS_OBJ" ] || skip "needs $XDP_PASS_OBJ (Debian package xdp-tests)"

for prog in "${PROGRAMS[@]}"; do
  echo "== $prog"
  make_ns gen gen
  make_ns kern kern
  make_ns app app
  for ns in "$gen" "$kern" "$app"; do
    # No IPv6 chatter (router solicitations, MLD) on the interfaces compared.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  ip link add gk0 netns "$gen" type veth peer name k0 netns "$kern"
  ip link add ga0 netns "$gen" type veth peer name a0 netns "$app"
  for pair in "$gen gk0" "$gen ga0" "$kern k0" "$app a0"; do
    set -- $pair
    ip -n "$1" link set "$2" up
  done
  # XDP_TX frames reach the generator's end of a veth only where it has NAPI: on this kernel an
  # XDP program there (xdp-tests' xdp_pass), not GRO alone. Both ends get the same.
  ip -n "$gen" link set dev gk0 xdpdrv obj "$XDP_PASS_OBJ" sec xdp
  ip -n "$gen" link set dev ga0 xdpdrv obj "$XDP_PASS_OBJ" sec xdp
  ip -n "$kern" link set dev k0 xdpdrv obj "$PROGS/$prog.bpf.o" sec xdp
  cat >"$E2E_DIR/$prog.yaml" <<EOF
ports:
  - name: ap0
    kind: af_xdp
    device: a0
    program:
      object: $PROGS/$prog.bpf.o
      name: $prog
stats_file: $E2E_DIR/$prog.stats
EOF
  if ! start_appliance "$app" "$E2E_DIR/$prog.yaml" "$E2E_DIR/$prog.log"; then
    check "$prog: the appliance starts" false
    continue
  fi
  check "$prog: kernel and appliance agree on every frame" \
    python3 "$HERE/compare.py" "$gen" "$kern" "$app" gk0 k0 ga0 ap0
  pid="${E2E_PIDS[${#E2E_PIDS[@]}-1]}"
  kill -TERM "$pid"
  timeout 10 tail --pid="$pid" -f /dev/null || true
  for ns in "$gen" "$kern" "$app"; do ip netns del "$ns"; done
  E2E_NS=()
done
finish
