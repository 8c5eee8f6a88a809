# Shared by scripts/demo and scripts/test: package installation and the two build directories.
# shellcheck shell=bash

XDPRT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian 12 packages the build and the tests need.
XDPRT_PACKAGES=(
  build-essential meson ninja-build pkg-config
  llvm-19-dev clang-19 libclang-rt-19-dev
  libfmt-dev libexpected-dev libgtest-dev libgmock-dev libbenchmark-dev
  libbpf-dev libelf-dev zlib1g-dev
  libdpdk-dev libyaml-cpp-dev
  iproute2 ethtool iputils-ping python3
  libxdp1 libxdp-dev xdp-tests xdp-tools bpftool
)

log() { printf '\033[1m[xdprt]\033[0m %s\n' "$*"; }

# Installs whichever of the packages are missing, and says which.
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "packages: all ${#} present"
    return 0
  fi
  log "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The release build: build/ with gcc, the LLVM 19 JIT.
setup_build() {
  cd "$XDPRT_ROOT"
  if [ ! -f build/build.ninja ]; then
    log "configuring build/"
    meson setup build --native-file native/llvm19.ini >/dev/null
  fi
  log "building build/"
  ninja -C build
}

# The sanitizer build: build-asan/ with clang 19, ASan + UBSan, and the libFuzzer targets.
setup_asan_build() {
  cd "$XDPRT_ROOT"
  if [ ! -f build-asan/build.ninja ]; then
    log "configuring build-asan/ (clang-19, AddressSanitizer + UndefinedBehaviorSanitizer)"
    CC=clang-19 CXX=clang++-19 meson setup build-asan --native-file native/llvm19.ini \
      -Db_sanitize=address,undefined -Db_lundef=false -Dbench=disabled \
      -Dcpp_args=-fno-sanitize-recover=all -Dc_args=-fno-sanitize-recover=all >/dev/null
  fi
  log "building build-asan/"
  ninja -C build-asan
}
