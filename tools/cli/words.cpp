#include "words.hpp"

namespace cli {

namespace {

std::string flag(const std::string& option) {
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
        const bool whole = (hit == 0 || !name_char(text[hit - 1])) && end > hit + word.size();
        out += text.substr(at, hit - at);
        out += whole ? flag(text.substr(hit + word.size(), end - hit - word.size())) : text.substr(hit, end - hit);
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
