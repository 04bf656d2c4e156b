#pragma once
// Splitting a batch across machines: --shard I/N takes a deterministic 1/N of
// the Hessians, chosen by a hash of FILE:/dataset alone (not by position), so
// the shards of any argument order are disjoint and cover everything.
#include <cstddef>
#include <cstdint>
#include <string>

namespace basinvol {

struct Shard {
    std::size_t index = 1;  // 1..count
    std::size_t count = 1;
};

// Parses "I/N" with 1 ≤ I ≤ N; throws UsageError naming the rule.
Shard parse_shard(const std::string& text);

// The stable key of a Hessian: the lexically normal file path, ':', and the
// dataset path ("run/./a.h5" and "run/a.h5" are one key; give every shard
// the same spelling of paths).
std::string shard_key(const std::string& file, const std::string& dataset);

// FNV-1a, 64 bits: the same on every machine and compiler.
std::uint64_t stable_hash(const std::string& key);

// Whether the Hessian with this key belongs to the shard.
bool in_shard(const std::string& key, const Shard& shard);

}  // namespace basinvol
