#!/usr/bin/python3
"""Sorts the inputs a fuzz run kept into crashes inside HDF5 and crashes in
basinvol's own code.

    triage.py FUZZER ARTIFACT...

Replays each ARTIFACT once through FUZZER (a libFuzzer binary built with
ASan/UBSan) and reads the sanitizer's report. The innermost frame of the
report's first stack that is neither the sanitizer runtime nor the C or C++
runtime decides: a frame in libhdf5 is HDF5's own bug (Debian 12 ships HDF5
1.10, which crashes on some corrupt files; listing runs in a child process
for that reason, docs/errors.md), anything else is basinvol's. One line per
input; exit status 1 when any input crashes basinvol's own code, else 0.
An input that no longer crashes is reported and does not count.
"""
import os
import re
import shutil
import subprocess
import sys

# A frame: its number, function, and place (a module, "(/lib/...so+0x...)",
# or a source file: absolute for code built here, relative to glibc's build
# tree for the C library's own when its debug symbols are installed).
FRAME = re.compile(r"^\s*#(\d+) 0x[0-9a-f]+(?: +in (.+?))?(?: +(/\S+|\(\S+\)|[\w.+-]+/\S+:\d+(?::\d+)?))?$")
# The sanitizers, libFuzzer, and the C and C++ runtimes between the fault and
# the code that caused it (an abort, an uncaught exception's terminate).
RUNTIME_FUNCTIONS = ("__interceptor_", "___interceptor_", "__asan", "__sanitizer", "__ubsan", "__lsan",
                     "__interception", "fuzzer::", "__libc_", "__GI_", "__memcpy", "__memmove", "__memset",
                     "__strlen", "__restore_rt", "__cxa", "__cxxabiv1", "__gnu_cxx::__verbose_terminate_handler",
                     "std::terminate", "std::__throw")
RUNTIME_PLACES = ("compiler-rt/", "libclang_rt", "/libc.so", "/libc-", "libstdc++", "libgcc_s", "/libm.so")
REPORT_START = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "ERROR: libFuzzer")


def report_frames(text):
    """(function, place) of the first stack after the report's first line."""
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if any(m in l for m in REPORT_START)), None)
    if start is None:
        return None, []
    frames = []
    for line in lines[start + 1:]:
        m = FRAME.match(re.sub(r" \(BuildId: [0-9a-f]+\)$", "", line.rstrip()))
        if m:
            if int(m.group(1)) == 0 and frames:
                break  # the next stack (allocation, free) is not where it failed
            frames.append((m.group(2) or "", m.group(3) or ""))
        elif frames and not line.strip():
            break
    headline = lines[start].strip()
    headline = re.sub(r"^==\d+== ?", "", headline).split(" (pc ")[0]
    return headline, frames


def short_name(function):
    """A C++ function's name without its parameter list."""
    name = function.replace("(anonymous namespace)", "{anon}")
    return name.split("(")[0].replace("{anon}", "(anonymous namespace)")


def is_runtime(function, place):
    # basinvol's code and the fuzz target are built with line tables, so a
    # frame of the executable without a source line is the sanitizer runtime
    # or libFuzzer linked into it (ASan's interceptors: strdup, strlen, ...).
    executable = re.match(r"^\(/\S+\+0x[0-9a-f]+\)$", place) is not None and ".so" not in place
    glibc_source = bool(place) and not place.startswith(("/", "("))
    return executable or glibc_source or function.startswith(RUNTIME_FUNCTIONS) or any(p in place for p in RUNTIME_PLACES) \
        or function in ("malloc", "calloc", "realloc", "free", "memcpy", "memmove", "memset", "operator new",
                        "operator delete", "abort", "raise")


def in_library(place):
    """Whether a frame's place is a shared library other than HDF5 and the runtimes."""
    return re.match(r"^\(/\S+\.so(\.[0-9.]+)?\+0x[0-9a-f]+\)$", place) is not None and "libhdf5" not in place


def classify(text):
    """('hdf5' | 'basinvol' | 'none', what) for one sanitizer report."""
    headline, frames = report_frames(text)
    if headline is None:
        return "none", "did not crash when replayed"
    if "runtime error:" in headline:  # UBSan instruments basinvol's code only
        return "basinvol", headline
    def in_hdf5(function, place):
        return "libhdf5" in place or function.startswith("H5")

    # A frame in another shared library (zlib or libaec under HDF5's filters,
    # OpenBLAS, libdeflate) belongs to whoever called that library: the
    # first frame further out that is HDF5's or basinvol's decides.
    library = None
    for i, (function, place) in enumerate(frames):
        if is_runtime(function, place):
            continue
        if in_hdf5(function, place):
            # The crash's class: where in HDF5, and which call of basinvol's led there.
            api = [f for f, p in frames[i:] if in_hdf5(f, p) and re.match(r"H5[A-Z][a-z]", f)]
            caller = next((f for f, p in frames[i:] if not in_hdf5(f, p) and not is_runtime(f, p)
                           and not in_library(p)), "?")
            return "hdf5", "%s in %s (through %s, called from %s)" % (
                headline, library or function, api[-1] if api else "?", short_name(caller))
        if in_library(place):
            library = library or "%s %s" % (function, place)
            continue
        if library:
            return "basinvol", "%s in %s, called from %s" % (headline, library, short_name(function))
        return "basinvol", "%s in %s %s" % (headline, function, place)
    if library:  # called from the runtimes alone (a thread of the library's own)
        return "basinvol", "%s in %s" % (headline, library)
    return "basinvol", headline + " (no frame outside the runtimes)"


def replay(fuzzer, artifact):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "allocator_may_return_null=1")
    # HDF5's own leaks on corrupt files are suppressed, as in the fuzz run.
    supp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lsan.supp")
    env.setdefault("LSAN_OPTIONS", "suppressions=%s:print_suppressions=0" % supp)
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    symbolizer = shutil.which("llvm-symbolizer") or "/usr/lib/llvm-14/bin/llvm-symbolizer"
    if os.access(symbolizer, os.X_OK):
        env["ASAN_SYMBOLIZER_PATH"] = symbolizer
    env["OPENBLAS_NUM_THREADS"] = "1"
    try:
        p = subprocess.run([fuzzer, "-runs=1", "-rss_limit_mb=2048", artifact], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                           timeout=300)
        return p.stdout
    except subprocess.TimeoutExpired:
        return ""


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: triage.py FUZZER ARTIFACT...")
    fuzzer, artifacts = argv[0], argv[1:]
    own = 0
    for artifact in artifacts:
        kind, what = classify(replay(fuzzer, artifact))
        own += kind == "basinvol"
        label = {"hdf5": "inside HDF5", "basinvol": "IN BASINVOL'S OWN CODE", "none": "not reproduced"}[kind]
        print("%s: %s: %s" % (os.path.basename(artifact), label, what))
    return 1 if own else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
