# Shared by the end-to-end tests: namespaces this test makes (and removes on exit), the appliance
# started inside one of them, and checks. Traffic stays between veth ends in these namespaces,
# on RFC 2544's benchmarking range 198.18.0.0/15.
# shellcheck shell=bash
set -euo pipefail

E2E_ID="x$$"
E2E_NS=()
E2E_PIDS=()
E2E_DIR="$(mktemp -d /tmp/xdprt-e2e.XXXXXX)"
E2E_FAILS=0
E2E_PASSES=0

e2e_cleanup() {
  for p in "${E2E_PIDS[@]:-}"; do
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${E2E_PIDS[@]:-}"; do
    [ -n "$p" ] && timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || true
  done
  for ns in "${E2E_NS[@]:-}"; do
    [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$E2E_DIR"
}
trap e2e_cleanup EXIT INT TERM

skip() {
  echo "SKIP: $*"
  exit 77
}

require_root() {
  [ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, veth, TAP twins)"
}

# make_ns VAR NAME: makes network namespace NAME-ID with its loopback up, stores its name in VAR,
# and records it for removal at exit (not through $(...): a subshell's record would be lost).
make_ns() {
  local _made="$2-$E2E_ID"  # not a name a caller passes as VAR
  ip netns add "$_made"
  E2E_NS+=("$_made")
  ip -n "$_made" link set lo up
  printf -v "$1" '%s' "$_made"
}

check() {  # check DESCRIPTION COMMAND...: one named assertion
  local what="$1"
  shift
  if "$@"; then
    echo "ok: $what"
    E2E_PASSES=$((E2E_PASSES + 1))
  else
    echo "FAIL: $what"
    E2E_FAILS=$((E2E_FAILS + 1))
  fi
}

# start_appliance NS CONFIG LOG: runs xdprt in NS with its own bpffs mount; waits until it runs.
start_appliance() {
  local ns="$1" config="$2" log="$3"
  ip netns exec "$ns" "$XDPRT" run -c "$config" >"$log" 2>&1 &
  E2E_PIDS+=("$!")
  local pid=$!
  for _ in $(seq 1 100); do
    grep -q "xdprt: running" "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log"; return 1; }
    sleep 0.1
  done
  cat "$log"
  return 1
}

finish() {
  echo "$E2E_PASSES passed, $E2E_FAILS failed"
  [ "$E2E_FAILS" -eq 0 ]
}
