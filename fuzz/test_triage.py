#!/usr/bin/python3
"""triage.py's verdicts on sanitizer reports of the shapes a fuzz run keeps.

    test_triage.py

The reports are the ones ASan, UBSan and libFuzzer print (frames as
llvm-symbolizer writes them, with and without debug information); the
verdict decides whether CI fails, so each class is pinned here.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import triage  # noqa: E402

BIN = "/w/build-fuzz/fuzz/fuzz_reader_libfuzzer"
HDF5 = "/lib/x86_64-linux-gnu/libhdf5_serial.so.103"


def exe(function):
    """A frame of the fuzzer executable without a source line (the runtimes linked into it)."""
    return "in %s (%s+0x2a0b1) (BuildId: 2c3e)" % (function, BIN)


def hdf5(function=""):
    """A frame of libhdf5 (no debug symbols: some frames are unnamed)."""
    return "%s (%s+0x1b0b1) (BuildId: e923)" % ("in " + function if function else "", HDF5)


def report(headline, *frames):
    lines = ["INFO: Running with entropic power schedule", "==1==" + headline,
             "==1==The signal is caused by a READ memory access."]
    for i, f in enumerate(frames):
        lines.append("    #%d 0x7f0000%06x %s" % (i, i, f))
    lines += ["", "SUMMARY: AddressSanitizer: ..."]
    return "\n".join(lines)


OURS = [
    "in basinvol::(anonymous namespace)::walk_group(basinvol::Walker&, long) /w/src/io/hdf5_reader.cpp:1022:9",
    "in basinvol::detail::list_hessians_here(basinvol::Source const&) /w/src/io/hdf5_reader.cpp:1359:5",
    "in LLVMFuzzerTestOneInput /w/fuzz/fuzz_reader.cpp:35:17",
    exe("fuzzer::Fuzzer::ExecuteCallback(unsigned char const*, unsigned long)"),
    exe("main"),
]


class Classify(unittest.TestCase):
    def test_hdf5_crash_through_libc_memcpy(self):
        kind, what = triage.classify(report(
            "ERROR: AddressSanitizer: SEGV on unknown address 0x000000000000 (pc 0x7fee61aa3809 bp 0x1 sp 0x2 T0)",
            "in __memcpy_avx512_unaligned_erms string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:273",
            exe("__interceptor_memcpy"),
            hdf5("H5F__accum_read"),
            hdf5(),
            hdf5("H5Gget_info"), *OURS))
        self.assertEqual(kind, "hdf5", what)
        self.assertIn("H5F__accum_read", what)
        self.assertIn("H5Gget_info", what)
        self.assertIn("walk_group", what)

    def test_hdf5_crash_in_an_unnamed_frame_without_libc_symbols(self):
        kind, what = triage.classify(report(
            "ERROR: AddressSanitizer: heap-buffer-overflow on address 0x61200002bd98 at pc 0x1 bp 0x2 sp 0x3",
            " (/lib/x86_64-linux-gnu/libc.so.6+0x15a809) (BuildId: 1)",
            hdf5(),
            hdf5("H5Aexists"), *OURS))
        self.assertEqual(kind, "hdf5", what)

    def test_a_library_under_hdf5s_filter_is_hdf5s(self):
        kind, what = triage.classify(report(
            "ERROR: AddressSanitizer: SEGV on unknown address 0x000000000010 (pc 0x1 bp 0x2 sp 0x3 T0)",
            " (/lib/x86_64-linux-gnu/libsz.so.2+0x3120) (BuildId: 5)",
            hdf5("H5Z__filter_szip"),
            hdf5("H5Dread"), *OURS))
        self.assertEqual(kind, "hdf5", what)
        self.assertIn("libsz", what)

    def test_a_library_basinvol_calls_is_basinvols(self):
        kind, what = triage.classify(report(
            "ERROR: AddressSanitizer: SEGV on unknown address 0x000000000010 (pc 0x1 bp 0x2 sp 0x3 T0)",
            "in dsyevd_ (/lib/x86_64-linux-gnu/libopenblas.so.0+0x3120) (BuildId: 5)",
            "in basinvol::detail::dense_spectrum(basinvol::Hessian const&) /w/src/solve/dense.cpp:40:5", *OURS))
        self.assertEqual(kind, "basinvol", what)
        self.assertIn("libopenblas", what)
        self.assertIn("dense_spectrum", what)

    def test_a_crash_in_basinvols_code(self):
        kind, what = triage.classify(report(
            "ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020 at pc 0x1 bp 0x2 sp 0x3",
            "in basinvol::detail::unshuffle(unsigned char const*) /w/src/io/chunk_reader.cpp:64:9", *OURS))
        self.assertEqual(kind, "basinvol", what)
        self.assertIn("unshuffle", what)

    def test_hdf5_crash_through_an_interceptor_named_as_libc(self):
        # ASan's strdup interceptor reading past HDF5's buffer: a frame of
        # the executable without a source line, named as the C function.
        kind, what = triage.classify(report(
            "ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6100000000f8 at pc 0x1 bp 0x2 sp 0x3",
            exe("strdup"),
            hdf5("H5MM_strdup"),
            hdf5(),
            hdf5("H5Aexists"),
            "in basinvol::detail::structure_kind(long, std::string const&) /w/src/io/structure_reader.cpp:380:24",
            *OURS))
        self.assertEqual(kind, "hdf5", what)
        self.assertIn("H5MM_strdup", what)
        self.assertIn("structure_kind", what)

    def test_a_crash_under_the_runtimes_alone_is_basinvols(self):
        kind, what = triage.classify(report(
            "ERROR: AddressSanitizer: SEGV on unknown address 0x000000000000 (pc 0x1 bp 0x2 sp 0x3 T0)",
            exe("strlen"),
            exe("fuzzer::Fuzzer::ExecuteCallback(unsigned char const*, unsigned long)")))
        self.assertEqual(kind, "basinvol", what)
        self.assertIn("no frame outside the runtimes", what)

    def test_undefined_behaviour_is_basinvols(self):
        text = ("/w/src/io/chunk_reader.cpp:64:9: runtime error: signed integer overflow: "
                "2147483647 + 1 cannot be represented in type 'int'\n"
                "    #0 0x55 in basinvol::detail::unshuffle(unsigned char const*) /w/src/io/chunk_reader.cpp:64:9\n")
        kind, what = triage.classify(text)
        self.assertEqual(kind, "basinvol", what)
        self.assertIn("signed integer overflow", what)

    def test_an_abort_in_the_fuzz_target_is_basinvols(self):
        kind, what = triage.classify(report(
            "ERROR: libFuzzer: deadly signal",
            exe("__sanitizer_print_stack_trace"),
            exe("fuzzer::PrintStackTrace()"),
            exe("fuzzer::Fuzzer::CrashCallback()"),
            " (/lib/x86_64-linux-gnu/libc.so.6+0x3bf8f) (BuildId: 1)",
            "in __pthread_kill_implementation nptl/pthread_kill.c:44:76",
            "in raise signal/../sysdeps/posix/raise.c:26:13",
            "in abort stdlib/abort.c:79:7", *OURS[2:]))
        self.assertEqual(kind, "basinvol", what)
        self.assertIn("LLVMFuzzerTestOneInput", what)

    def test_an_abort_inside_hdf5_with_glibcs_debug_symbols_is_hdf5s(self):
        kind, what = triage.classify(report(
            "ERROR: libFuzzer: deadly signal",
            exe("__sanitizer_print_stack_trace"),
            exe("fuzzer::Fuzzer::CrashCallback()"),
            " (/lib/x86_64-linux-gnu/libc.so.6+0x3bf8f) (BuildId: 1)",
            "in __pthread_kill_implementation nptl/./nptl/pthread_kill.c:43:17",
            "in raise signal/../sysdeps/posix/raise.c:26:13",
            "in abort stdlib/./stdlib/abort.c:79:7",
            hdf5("H5_term_library"),
            hdf5("H5Fclose"), *OURS))
        self.assertEqual(kind, "hdf5", what)
        self.assertIn("H5_term_library", what)

    def test_leaks_from_hdf5s_allocations_are_hdf5s(self):
        text = ("=================================================================\n"
                "==1==ERROR: LeakSanitizer: detected memory leaks\n\n"
                "Direct leak of 48 byte(s) in 1 object(s) allocated from:\n"
                "    #0 0x55 in malloc (%s+0x2a0b1) (BuildId: 2c3e)\n"
                "    #1 0x7f in H5MM_malloc (%s+0x1a0b1) (BuildId: e923)\n"
                "    #2 0x7f in H5Dopen2 (%s+0x1b0b1) (BuildId: e923)\n" % (BIN, HDF5, HDF5))
        kind, what = triage.classify(text)
        self.assertEqual(kind, "hdf5", what)

    def test_no_report(self):
        kind, _ = triage.classify("INFO: Running with entropic power schedule\nExecuted crash-1 in 3 ms\n")
        self.assertEqual(kind, "none")


if __name__ == "__main__":
    unittest.main()
