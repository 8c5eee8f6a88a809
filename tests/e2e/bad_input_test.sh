#!/usr/bin/env bash
# Bad input to `xdprt run`: each gets a clear error naming what and where, and a non-zero exit;
# never a crash (a signal) or a hang (each run is bounded).
#
# usage: bad_input_test.sh XDPRT_BINARY PROGS_DIR
set -euo pipefail
XDPRT="$1"
PROGS="$2"
source "$(dirname "$0")/lib.sh"
require_root
make_ns ns bad

# expect_error DESCRIPTION TEXT CONFIG: xdprt run exits 1 (not by a signal) saying TEXT.
expect_error() {
  local what="$1" text="$2" config="$3" out rc=0
  out=$(timeout 30 ip netns exec "$ns" "$XDPRT" run -c "$config" 2>&1) || rc=$?
  if [ "$rc" -eq 1 ] && grep -qF -- "$text" <<<"$out"; then
    echo "ok: $what"
    E2E_PASSES=$((E2E_PASSES + 1))
  else
    echo "FAIL: $what (exit $rc)"
    grep -v "^EAL" <<<"$out" | tail -5
    E2E_FAILS=$((E2E_FAILS + 1))
  fi
}

cfg() { cat >"$E2E_DIR/$1.yaml"; echo "$E2E_DIR/$1.yaml"; }

expect_error "an unknown key is named with file:line:col" "unknown.yaml:4:5: ports[0]: unknown key 'speed'" "$(cfg unknown <<EOF
ports:
  - name: p0
    kind: null
    speed: 100G
EOF
)"
expect_error "a worker on a port that does not exist" "workers[0]: no port 'p9'" "$(cfg noport <<EOF
ports:
  - {name: p0, kind: null, twin: false}
workers:
  - {lcore: 1, queues: [{port: p9}]}
EOF
)"
expect_error "broken YAML" "broken.yaml:" "$(cfg broken <<EOF
ports: [ {name: p0
EOF
)"
expect_error "an af_xdp port on an interface that does not exist" "no kernel interface 'nosuch0'" "$(cfg noif <<EOF
ports:
  - {name: p0, kind: af_xdp, device: nosuch0}
EOF
)"
expect_error "a worker lcore the EAL does not run" "worker lcore 5 is not enabled" "$(cfg lcore <<EOF
ports:
  - {name: p0, kind: null, twin: false}
workers:
  - {lcore: 5, queues: [{port: p0}]}
EOF
)"
printf 'not an ELF object' >"$E2E_DIR/garbage.bpf.o"
expect_error "a file that is no BPF object" "garbage.bpf.o: cannot open: BPF object format invalid" "$(cfg garbage <<EOF
ports:
  - name: p0
    kind: null
    twin: false
    program: {object: $E2E_DIR/garbage.bpf.o}
EOF
)"
expect_error "a missing object file" "missing.bpf.o: cannot open: No such file or directory" "$(cfg missing <<EOF
ports:
  - name: p0
    kind: null
    twin: false
    program: {object: $E2E_DIR/missing.bpf.o}
EOF
)"
# An unsafe program: reads the packet without checking data_end. The kernel's verifier refuses it.
if command -v clang-19 >/dev/null; then
  cat >"$E2E_DIR/unsafe.bpf.c" <<'EOF'
#include <linux/bpf.h>
__attribute__((section("xdp"), used)) int xdp_unsafe(struct xdp_md *ctx) {
    unsigned char *p = (void *)(long)ctx->data;
    return p[20] == 1 ? XDP_DROP : XDP_PASS;
}
char _license[] __attribute__((section("license"), used)) = "GPL";
EOF
  clang-19 -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c "$E2E_DIR/unsafe.bpf.c" -o "$E2E_DIR/unsafe.bpf.o"
  expect_error "an unsafe program is refused with the verifier's reason" "invalid access to packet" "$(cfg unsafe <<EOF
ports:
  - name: p0
    kind: null
    twin: false
    program: {object: $E2E_DIR/unsafe.bpf.o}
EOF
)"
fi
expect_error "a program name the object does not have" "no program 'nosuch'" "$(cfg noprog <<EOF
ports:
  - name: p0
    kind: null
    twin: false
    program: {object: $PROGS/xdp_drop.bpf.o, name: nosuch}
EOF
)"
finish
