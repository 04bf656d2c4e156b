#include <basinvol/batch/shard.hpp>
#include <basinvol/error.hpp>

#include <filesystem>

namespace basinvol {

Shard parse_shard(const std::string& text) {
    const auto slash = text.find('/');
    auto bad = [&] {
        return UsageError("shard", "must be I/N with 1 <= I <= N (e.g. 2/8), got '" + text + "'");
    };
    if (slash == std::string::npos || slash == 0 || slash + 1 == text.size()) throw bad();
    const std::string a = text.substr(0, slash), b = text.substr(slash + 1);
    for (const std::string* s : {&a, &b})
        for (char c : *s)
            if (c < '0' || c > '9') throw bad();
    Shard s;
    try {
        s.index = std::stoull(a);
        s.count = std::stoull(b);
    } catch (...) {
        throw bad();
    }
    if (s.count < 1 || s.index < 1 || s.index > s.count) throw bad();
    return s;
}

std::string shard_key(const std::string& file, const std::string& dataset) {
    return std::filesystem::path(file).lexically_normal().string() + ":" + dataset;
}

std::uint64_t stable_hash(const std::string& key) {
    std::uint64_t h = 14695981039346656037ULL;  // FNV-1a offset basis
    for (unsigned char c : key) {
        h ^= c;
        h *= 1099511628211ULL;  // FNV prime
    }
    return h;
}

bool in_shard(const std::string& key, const Shard& shard) {
    return stable_hash(key) % shard.count == shard.index - 1;
}

}  // namespace basinvol
