// The basinvol command line. Only the CLI chooses exit statuses and touches
// stdout/stderr. Exit status: 0 every source succeeded, 1 at least one failed
// (the others are still reported), 2 usage error. `compare` exits 0 when A
// ranks strictly above B, 1 when it does not, 2 on error. `validate` exits 0
// when every check agrees, 1 when any disagrees or cannot be made.
#include "common.hpp"

#include <basinvol/error.hpp>
#include <basinvol/version.hpp>

#include <iostream>

using namespace cli;

int main(int argc, char** argv) {
    CLI::App app{"basinvol: basin dimension and log-volume from loss Hessians in HDF5.\n"
                 "Flat directions (|lambda| <= tol) are counted, not regularized; basins rank by\n"
                 "dimension first, then by log-volume.",
                 "basinvol"};
    app.set_version_flag("--version", "basinvol " + bv::version());
    app.require_subcommand(1);
    app.footer("Example: basinvol rank checkpoints.h5\nRun 'basinvol COMMAND --help' for a command's options.");

    CommonOptions o;
    std::vector<std::string> sources;
    std::string a_src, b_src;

    auto* volume = app.add_subcommand("volume", "Dimension and log-volume of each Hessian");
    volume->add_option("SOURCE", sources, "FILE or FILE:PATH (a dataset, or a group: every Hessian below it)")
        ->required();
    add_common(volume, o, false, true);
    volume->footer("Example: basinvol volume run.h5:/checkpoints --format tsv");

    auto* rank = app.add_subcommand("rank", "Rank basins: dimension first, then log-volume (place 1 = largest)");
    rank->add_option("SOURCE", sources, "FILE or FILE:PATH (a dataset, or a group: every Hessian below it)")
        ->required();
    add_common(rank, o, true, true);
    rank->footer("Example: basinvol rank run.h5 other.h5:/final --format json");

    auto* compare = app.add_subcommand("compare", "Exit 0 when basin A ranks strictly above basin B, else 1");
    compare->add_option("A", a_src, "FILE:PATH of one Hessian")->required();
    compare->add_option("B", b_src, "FILE:PATH of one Hessian")->required();
    add_common(compare, o, true, false);
    compare->footer("Example: basinvol compare run.h5:/checkpoints/step_0100 run.h5:/checkpoints/step_0900");

    auto* spectrum = app.add_subcommand("spectrum", "Every eigenvalue, marked kept or dropped by the cut");
    spectrum->add_option("SOURCE", sources, "FILE or FILE:PATH")->required();
    add_common(spectrum, o, false, false);
    spectrum->footer("Example: basinvol spectrum run.h5:/checkpoints/step_0100 --format tsv");

    ValidateCli vcli;
    auto* validate = app.add_subcommand(
        "validate", "Check toys with known answers (expected_* attributes): exit 0 when every check agrees");
    validate->add_option("SOURCE", sources, "FILE or FILE:PATH of toys written by basinvol-toy")->required();
    add_validate_options(validate, o, vcli);
    validate->footer("Example: basinvol validate testdata/toys/suite.h5\n"
                     "Checks rank, dim, negative and log_volume against expected_*; estimates the volume by\n"
                     "Monte Carlo (curved rank <= 8); shows the radial estimator's bias; samples the true loss\n"
                     "of toys that record it (toy_loss). See docs/toys.md.");

    if (argc > 1 && argv[1][0] != '-') {
        const std::string word = argv[1];
        if (word != "volume" && word != "rank" && word != "compare" && word != "spectrum" &&
            word != "validate") {
            std::cerr << "basinvol: unknown command '" << word
                      << "' (expected volume, rank, compare, spectrum or validate)\nRun 'basinvol --help' for usage.\n";
            return exit_usage;
        }
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version: stdout, exit 0
        std::cerr << "basinvol: " << e.what() << "\nRun 'basinvol --help' for usage.\n";
        return exit_usage;
    }

    try {
        if (*volume) return cmd_volume(sources, o);
        if (*rank) return cmd_rank(sources, o);
        if (*spectrum) return cmd_spectrum(sources, o);
        if (*compare) return cmd_compare(a_src, b_src, o);
        if (*validate) return cmd_validate(sources, o, vcli);
    } catch (const bv::UsageError& e) {
        std::cerr << "basinvol: " << e.what() << "\nRun 'basinvol --help' for usage.\n";
        return exit_usage;
    } catch (const bv::Error& e) {
        std::cerr << "basinvol: error: " << e.what() << '\n';
        return *compare ? exit_usage : exit_failed;
    } catch (const std::exception& e) {
        std::cerr << "basinvol: error: " << e.what() << '\n';
        return *compare ? exit_usage : exit_failed;
    }
    return exit_usage;
}
