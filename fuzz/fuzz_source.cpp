// libFuzzer target: the SOURCE parser (FILE or FILE:PATH). Any string either
// parses into parts that put the string back together, or is a UsageError.
#include <basinvol/error.hpp>
#include <basinvol/io/source.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        basinvol::Source s = basinvol::parse_source(text);
        // FILE, FILE: or FILE:PATH, and nothing else.
        if (s.text != text) std::abort();
        if (!(text == s.file || text == s.file + ":" + s.path)) std::abort();
    } catch (const basinvol::UsageError&) {
        if (!text.empty()) std::abort();  // only the empty SOURCE is refused
    }
    return 0;
}
