// libFuzzer target: the HDF5 reader fed in-memory file images (HDF5's core
// driver, no disk access), through the whole pipeline. Whatever the bytes,
// the answer is a list of rows or one error row: never a crash, and an error
// row always carries a message naming the image.
#include <basinvol/analyze.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/io/source.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

// libFuzzer only (the replay driver does not call it): list in this process,
// so that the fuzzer sees the walk's coverage and HDF5's own crashes. The
// replayed regressions run with the child-process listing users get. Values
// are read in this process in both, as users read them by default.
namespace {
basinvol::ListOptions listing;  // the child processes users get, unless libFuzzer runs
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    listing.isolate = false;
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    basinvol::Source src =
        basinvol::image_source(std::string(reinterpret_cast<const char*>(data), size), "fuzz.h5");
    basinvol::AnalyzeOptions opt;
    opt.read.isolate = basinvol::ReadOptions::Isolation::never;  // values read here, as users read them by default
    opt.read.max_bytes = std::size_t(1) << 20;  // n <= 362: fast, and never an out-of-memory kill
    basinvol::Row err;
    auto list = basinvol::expand_source(src, &err, listing);
    auto broken = [](const std::string& why) {
        std::fprintf(stderr, "fuzz_reader: contract broken: %s\n", why.c_str());
        std::abort();
    };
    if (list.empty() && (err.ok || err.error.rfind("fuzz.h5", 0) != 0)) broken("source error: " + err.error);
    for (const auto& listed : list) {
        basinvol::Row r = basinvol::analyze_listed(listed, opt);
        if (!r.ok && r.error.rfind("fuzz.h5:", 0) != 0) broken("row error: " + r.error);
    }
    return 0;
}
