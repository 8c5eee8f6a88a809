#!/usr/bin/env bash
# Runs a fuzzer for a bounded time (XDPRT_FUZZ_SECONDS, else the third argument, else 60) from a
# scratch corpus; a difference or crash fails the test and leaves its reproducer in the regressions
# folder.
set -euo pipefail
fuzzer="$1"
regressions="$2"
seconds="${XDPRT_FUZZ_SECONDS:-${3:-60}}"
corpus="$(mktemp -d)"
trap 'rm -rf "$corpus"' EXIT
exec "$fuzzer" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
  -artifact_prefix="$regressions/" -print_final_stats=1
