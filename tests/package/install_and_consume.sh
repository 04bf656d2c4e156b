#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, then configures, builds and
# runs a separate project against it with find_package(basinvol).
set -euo pipefail
build=$1
source=$2
# A sanitized library needs the consumer compiled and linked the same way:
# Eigen's allocator differs under AddressSanitizer, so the flags are part of the ABI.
flags=${3:-}
# "python": the Python package was built; check it from the prefix too.
python=${4:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
test -x "$tmp/prefix/bin/basinvol"
test -f "$tmp/prefix/include/basinvol/analyze.hpp"
cmake -S "$source/tests/package/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" > "$tmp/configure.log"
cmake --build "$tmp/consumer" -j2 > "$tmp/build.log"
"$tmp/consumer/consumer"
"$tmp/prefix/bin/basinvol" --version
if [ "$python" = python ]; then
  site=$(echo "$tmp"/prefix/lib/python3.*/dist-packages)
  test -f "$site/basinvol/__init__.py"
  # From a neutral directory, with only the prefix on the path.
  (cd "$tmp" && PYTHONPATH="$site" /usr/bin/python3 "$source/tests/package/check_python.py" "$tmp/prefix")
fi
