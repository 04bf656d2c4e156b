#!/usr/bin/env bash
# One command per job, on a fresh Debian 12 machine (as root, or with the
# packages already installed):
#   bash scripts/run.sh example   install what is missing, build, rank the example checkpoints
#   bash scripts/run.sh test      install what is missing, build, run the whole test suite (ctest)
#   bash scripts/run.sh build     install what is missing and build
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian 12 packages basinvol builds and tests with.
packages=(
  g++ cmake make pkg-config
  libeigen3-dev libspectra-dev libhdf5-dev libopenblas-dev liblapack-dev
  libcli11-dev nlohmann-json3-dev doctest-dev
  python3-numpy python3-scipy python3-h5py
  python3-torch python3-sklearn python3-matplotlib
  parallel hyperfine time
)

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "basinvol: missing Debian packages: ${missing[*]}" >&2
    echo "basinvol: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "basinvol: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() {
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
  cmake --build build -j"$(nproc)"
}

case "${1:-}" in
  example)
    install_missing
    build >&2
    ./build/basinvol rank testdata/example_checkpoints.h5
    ;;
  test)
    install_missing
    build
    ctest --test-dir build --output-on-failure -j1
    ;;
  build)
    install_missing
    build
    ;;
  *)
    echo "usage: bash scripts/run.sh example|test|build" >&2
    exit 2
    ;;
esac
