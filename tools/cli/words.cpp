#include "words.hpp"

#include <algorithm>
#include <array>

namespace cli {

namespace {

// The library's names of the options the command-line tools have a flag for
// (basinvol, basinvol-mpi, basinvol-toy); each flag is --NAME with dashes.
constexpr std::array<const char*, 36> flagged = {
    "atol",      "clusters",     "curved",        "cut",          "dtype",         "eigenvalues",
    "files_from", "flat",        "format",        "hessian_error", "hi",           "jobs",
    "list_timeout", "lo",        "logv_tol",      "max_asymmetry", "max_memory",   "mc_max_rank",
    "method",    "min_gap",      "negative",      "negatives",    "order",         "radial_directions",
    "read_timeout", "regularized", "rtol",       "samples",       "scan_max_n",   "seed",          "shard",
    "sigmas",    "spectrum",     "spread",        "threshold",    "tie_tol"};

bool has_flag(const std::string& option) {
    return std::any_of(flagged.begin(), flagged.end(), [&](const char* f) { return option == f; });
}

// The flag of an option that has one; else its library name.
std::string flag(const std::string& option) {
    if (!has_flag(option)) return option;
    std::string f = "--" + option;
    for (auto& c : f)
        if (c == '_') c = '-';
    return f;
}

bool name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

}  // namespace

std::string cli_words(const std::string& text) {
    static const std::string word = "option ";
    std::string out;
    std::size_t at = 0;
    for (std::size_t hit = text.find(word); hit != std::string::npos; hit = text.find(word, at)) {
        std::size_t end = hit + word.size();
        while (end < text.size() && name_char(text[end])) ++end;
        const std::string name = text.substr(hit + word.size(), end - hit - word.size());
        const bool known = (hit == 0 || !name_char(text[hit - 1])) && has_flag(name);
        out += text.substr(at, hit - at);
        out += known ? flag(name) : text.substr(hit, end - hit);
        at = end;
    }
    return out + text.substr(at);
}

std::string usage_message(const basinvol::UsageError& e) {
    return e.option().empty() ? cli_words(e.what()) : flag(e.option()) + " " + cli_words(e.rule());
}

basinvol::Row cli_row(const basinvol::Row& r) {
    basinvol::Row out = r;
    out.error = cli_words(r.error);
    out.solver_note = cli_words(r.solver_note);
    return out;
}

}  // namespace cli
