#!/usr/bin/env bash
# One command per job, on a fresh Debian 12 machine (as root, or with the
# packages already installed):
#   bash scripts/run.sh example   install what is missing, build, rank the example checkpoints
#   bash scripts/run.sh test      install what is missing (MPI too), build (basinvol-mpi too), run the
#                                 whole test suite (ctest), again under AddressSanitizer + UBSan
#                                 (build-asan), then a bounded libFuzzer run of each fuzz target
#                                 (build-fuzz, clang)
#   bash scripts/run.sh build     install what is missing and build
#   bash scripts/run.sh campaign  a long fuzz campaign (CAMPAIGN_SECONDS per target, default 3600,
#                                 side by side); new coverage is merged into fuzz/corpus/
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian 12 packages basinvol builds and tests with.
packages=(
  g++ cmake make pkg-config clang libclang-rt-14-dev llvm-14
  libeigen3-dev libspectra-dev libhdf5-dev libopenblas-dev liblapack-dev
  libcli11-dev nlohmann-json3-dev doctest-dev libdeflate-dev
  python3-numpy python3-scipy python3-h5py python3-mpmath
  python3-torch python3-sklearn python3-matplotlib python3-pandas
  python3-dev python3-pybind11 pybind11-dev python3-pytest
  parallel hyperfine time locales
)
# basinvol-mpi (-DBASINVOL_MPI=ON, docs/cluster.md): Open MPI, ScaLAPACK, parallel HDF5.
mpi_packages=(openmpi-bin libopenmpi-dev libscalapack-openmpi-dev libhdf5-openmpi-dev libelpa-dev)

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
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@"
  cmake --build build -j"$(nproc)"
}

# The whole suite again under AddressSanitizer and UndefinedBehaviorSanitizer.
# allocator_may_return_null=1: a corrupt HDF5 file can ask malloc for 2^62
# bytes; without ASan malloc returns NULL and HDF5 reports an error, which is
# the behaviour under test (ASan would abort instead). LeakSanitizer stays on;
# HDF5's own leaks on corrupt-file error paths are suppressed (fuzz/lsan.supp).
# OpenBLAS (not instrumented) runs one thread: its spinning threads only slow
# a loaded machine down. -O1 -g1 (ASan's own advice, with the line tables its
# reports need) compiles in about half the time of -O2 -g. The `slow` label
# (the installed-package build, the digits example, and the property cases of
# test suite "large", n of 600 to 1200 through every solver, whose code the
# smaller cases run too) and the `faults` label (kills, locks, pipes, full
# disks, ulimits: how the process meets them) run once, in the plain build;
# torn journals and files changing while read (cli_faults_reading) run here
# too.
sanitized_tests() {
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DBASINVOL_SANITIZE=ON -DBASINVOL_WERROR=ON
  cmake --build build-asan -j"$(nproc)"
  ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1:abort_on_error=1 \
  LSAN_OPTIONS=suppressions="$PWD/fuzz/lsan.supp":print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  OPENBLAS_NUM_THREADS=1 \
    ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -LE "slow|faults"
}

# A bounded libFuzzer run of each target (FUZZ_SECONDS each, default 30) from
# the committed corpus; new inputs go to a temporary directory. HDF5 sizes some
# metadata buffers from the file (a corrupt local heap asks for 4 GB, granted
# lazily outside the fuzzer but slow to poison under ASan), and HDF5 1.10
# itself crashes on some corrupt files: the run forks, keeps every
# out-of-memory, timeout and crash input in build-fuzz/artifacts/TARGET/ and
# goes on. fuzz/triage.py then replays each crash (and leak) input: one whose
# fault lies inside libhdf5 is listed (listing a file runs in a child
# process for that reason, docs/errors.md); one in basinvol's own code fails
# the run, once the sanitized tests have run too. Inputs found become
# committed regressions (fuzz/regressions/), which ctest replays under ASan.
fuzz_one() {
  local target=$1 scratch status=0
  scratch=$(mktemp -d)
  # In fork mode the exit status is that of the last job (a crash, an
  # out-of-memory or a timeout the flags below tell it to go past), so it
  # is reported, not taken as the run's failure.
  ASAN_OPTIONS=allocator_may_return_null=1 \
  LSAN_OPTIONS=suppressions="$PWD/fuzz/lsan.supp":print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  OPENBLAS_NUM_THREADS=1 \
    "build-fuzz/fuzz/${target}_libfuzzer" -seed=1 -max_total_time="${FUZZ_SECONDS:-30}" -timeout=20 -rss_limit_mb=2048 -fork=1 -ignore_ooms=1 -ignore_timeouts=1 -ignore_crashes=1 \
      -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$target/" \
      "$scratch" "fuzz/corpus/$target" "fuzz/regressions/$target" > "build-fuzz/${target}.log" 2>&1 || status=$?
  rm -rf "$scratch"
  cat "build-fuzz/${target}.log"
  [ "$status" -eq 0 ] || echo "basinvol: WARNING: ${target}: the fuzzer's last job ended with status $status" >&2
}

# -O1 -g1 as in the sanitized build. The two targets run side by side (one
# core each), FUZZ_SECONDS each. Sets fuzz_status to 1 when an input crashes
# basinvol's own code.
fuzz_status=0
fuzz() {
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DBASINVOL_FUZZ=ON -DBASINVOL_BUILD_TESTS=OFF
  cmake --build build-fuzz -j"$(nproc)" --target fuzz_source_libfuzzer fuzz_reader_libfuzzer
  rm -rf build-fuzz/artifacts build-fuzz/triage-*.txt
  mkdir -p build-fuzz/artifacts/fuzz_source build-fuzz/artifacts/fuzz_reader
  fuzz_one fuzz_source &
  local first=$!
  fuzz_one fuzz_reader
  wait "$first"
  local target found
  for target in fuzz_source fuzz_reader; do
    found=$(find "build-fuzz/artifacts/$target" -name 'crash-*' -o -name 'leak-*' | sort)
    [ -n "$found" ] || continue
    echo "basinvol: ${target} kept inputs that crash; replaying them:" >&2
    # shellcheck disable=SC2086
    /usr/bin/python3 fuzz/triage.py "build-fuzz/fuzz/${target}_libfuzzer" $found > "build-fuzz/triage-${target}.txt" ||
      fuzz_status=1
    cat "build-fuzz/triage-${target}.txt" >&2
  done
}

# A long campaign: each target for CAMPAIGN_SECONDS (default an hour), side
# by side, from the committed corpus and regressions, into a corpus kept in
# build-fuzz/campaign/TARGET. Inputs that add coverage are then merged into
# fuzz/corpus/TARGET (libFuzzer's -merge=1 keeps only those), and every crash
# kept is triaged as in the bounded run. What it found is for a person to
# commit: new corpus files, and each crash class as a named regression.
campaign_one() {
  local target=$1 status=0
  mkdir -p "build-fuzz/campaign/$target" "build-fuzz/artifacts/$target"
  ASAN_OPTIONS=allocator_may_return_null=1 \
  LSAN_OPTIONS=suppressions="$PWD/fuzz/lsan.supp":print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  OPENBLAS_NUM_THREADS=1 \
    "build-fuzz/fuzz/${target}_libfuzzer" -max_total_time="${CAMPAIGN_SECONDS:-3600}" -timeout=20 -rss_limit_mb=2048 \
      -fork=1 -ignore_ooms=1 -ignore_timeouts=1 -ignore_crashes=1 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/artifacts/$target/" \
      "build-fuzz/campaign/$target" "fuzz/corpus/$target" "fuzz/regressions/$target" \
      > "build-fuzz/campaign-${target}.log" 2>&1 || status=$?
  ASAN_OPTIONS=allocator_may_return_null=1 \
  LSAN_OPTIONS=suppressions="$PWD/fuzz/lsan.supp":print_suppressions=0 \
  OPENBLAS_NUM_THREADS=1 \
    "build-fuzz/fuzz/${target}_libfuzzer" -merge=1 -timeout=20 -rss_limit_mb=2048 \
      "fuzz/corpus/$target" "build-fuzz/campaign/$target" >> "build-fuzz/campaign-${target}.log" 2>&1 || status=$?
  tail -n 5 "build-fuzz/campaign-${target}.log"
  [ "$status" -eq 0 ] || echo "basinvol: WARNING: ${target}: the campaign's last job ended with status $status" >&2
}

campaign() {
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DBASINVOL_FUZZ=ON -DBASINVOL_BUILD_TESTS=OFF
  cmake --build build-fuzz -j"$(nproc)" --target fuzz_source_libfuzzer fuzz_reader_libfuzzer
  campaign_one fuzz_source &
  local first=$!
  campaign_one fuzz_reader
  wait "$first"
  local target found status=0
  for target in fuzz_source fuzz_reader; do
    found=$(find "build-fuzz/artifacts/$target" -name 'crash-*' -o -name 'leak-*' | sort)
    [ -n "$found" ] || continue
    # shellcheck disable=SC2086
    /usr/bin/python3 fuzz/triage.py "build-fuzz/fuzz/${target}_libfuzzer" $found || status=1
  done
  return "$status"
}

case "${1:-}" in
  example)
    install_missing
    build >&2
    ./build/basinvol rank testdata/example_checkpoints.h5
    ;;
  test)
    packages+=("${mpi_packages[@]}")
    install_missing
    build -DBASINVOL_WERROR=ON -DBASINVOL_MPI=ON
    ctest --test-dir build --output-on-failure -j"$(nproc)"
    fuzz
    sanitized_tests
    if [ "$fuzz_status" -ne 0 ]; then
      # Again at the end, where a log's tail shows it: each input, where it
      # crashed, and its bytes gzipped in base64 (a CI log may be all there
      # is of the machine: base64 -d | gunzip > input, then replay it).
      grep -h "IN BASINVOL'S OWN CODE" build-fuzz/triage-*.txt | while IFS= read -r line; do
        echo "$line" >&2
        find build-fuzz/artifacts -name "${line%%:*}" -exec sh -c 'gzip -9c "$1" | base64 -w0; echo' sh {} \; >&2
      done
      echo "basinvol: fuzzing crashed basinvol's own code (inputs in build-fuzz/artifacts/, listed above)" >&2
      exit 1
    fi
    ;;
  build)
    install_missing
    build
    ;;
  campaign)
    install_missing
    campaign
    ;;
  *)
    echo "usage: bash scripts/run.sh example|test|build|campaign" >&2
    exit 2
    ;;
esac
