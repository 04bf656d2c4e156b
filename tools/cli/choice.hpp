#pragma once
// Enum options of the command-line tools, bound to the library's name tables
// (basinvol/names.hpp) with a CLI11 transformer.
#include <basinvol/names.hpp>

#include <CLI/CLI.hpp>

#include <string>

namespace cli {

// An enum option bound to its names by a CLI11 transformer: the name the
// user gives becomes the value; another name is refused, listing the names.
template <class T>
inline CLI::Option* add_choice(CLI::App* app, const std::string& flags, T& value, const basinvol::Names<T>& names,
                        const std::string& help) {
    const std::string list = basinvol::name_list(names);
    auto to_value = [names, list](std::string& in) {
        for (const auto& [name, v] : names)
            if (in == name) {
                in = std::to_string(static_cast<int>(v));
                return std::string();
            }
        return "must be one of " + list + "; got '" + in + "'";
    };
    return app->add_option(flags, value, help)
        ->transform(CLI::Validator(to_value, "{" + list + "}", "choice"))
        ->default_str(basinvol::name_of(names, value));
}

}  // namespace cli
