#include <basinvol/result.hpp>

namespace basinvol {

namespace {

constexpr const char* warning_names[warning_count] = {"saddle",      "ambiguous_rank", "cut_below_floor", "uncertified",
                                                      "symmetrized", "mixed_n",        "place_uncertain",
                                                      "unwritten_chunks", "regularized_noisy", "mixed_threshold",
                                                      "mixed_negatives", "mixed_level", "mixed_cut",
                                                      "float32_values", "finer_part_flat"};

}  // namespace

const char* warning_name(Warning w) { return warning_names[static_cast<std::size_t>(w)]; }

std::optional<Warning> parse_warning(const std::string& name) {
    for (std::size_t i = 0; i < warning_count; ++i)
        if (name == warning_names[i]) return static_cast<Warning>(i);
    return std::nullopt;
}

std::vector<std::string> Warnings::names() const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < warning_count; ++i)
        if (has(static_cast<Warning>(i))) out.emplace_back(warning_names[i]);
    return out;
}

}  // namespace basinvol
