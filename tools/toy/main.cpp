// basinvol-toy: writes toy Hessians with their exact answers to HDF5.
// Exit status: 0 written, 1 the file could not be written, 2 usage error
// (including spectra whose rank the stored type cannot resolve).
#include <basinvol/error.hpp>
#include <basinvol/io/writer.hpp>
#include <basinvol/toy/generate.hpp>
#include <basinvol/version.hpp>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace bv = basinvol;
namespace toy = basinvol::toy;

namespace {

std::string recipe_text(const toy::Recipe& r, const std::string& dist) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "flat=%zu curved=%zu negative=%zu spectrum=%s lo=%g hi=%g clusters=%zu spread=%g seed=%llu",
                  r.flat, r.curved, r.negative, dist.c_str(), r.lo, r.hi, r.clusters, r.spread,
                  static_cast<unsigned long long>(r.seed));
    return buf;
}

// KEY=VALUE: a number, else a string.
void apply_override(bv::Attributes& a, const std::string& kv) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw bv::UsageError("--set must be KEY=VALUE, got '" + kv + "'");
    const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    std::size_t pos = 0;
    double x = 0;
    try {
        x = std::stod(value, &pos);
    } catch (...) {
        pos = 0;
    }
    if (pos == value.size() && !value.empty()) {
        a.strings.erase(key);
        if (key == "loss_threshold") a.loss_threshold = x;
        else a.numbers[key] = x;
    } else {
        a.numbers.erase(key);
        a.strings[key] = value;
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"basinvol-toy: write toy Hessians with known answers (expected_rank, expected_dim,\n"
                 "expected_negative, expected_log_volume) to HDF5, for `basinvol validate`.",
                 "basinvol-toy"};
    app.set_version_flag("--version", "basinvol-toy " + bv::version());

    std::string out, dataset, eigenvalues, preset, loss_text, dtype = "float64", spectrum = "loguniform";
    std::optional<std::uint64_t> rotate;
    std::size_t n = 0, count = 0;
    double threshold = 1;
    std::string name;
    bool append = false, list = false;
    std::vector<std::string> overrides;
    toy::Recipe recipe;

    app.add_option("OUT", out, "HDF5 file to write");
    app.add_option("-d,--dataset", dataset, "Dataset path (default /toy; with --count, the group, default /toys)");
    auto* o_eigs = app.add_option("--eigenvalues", eigenvalues, "The spectrum as a list, e.g. 2,2,0");
    auto* o_preset = app.add_option("--preset", preset, "A named toy (--list-presets)");
    auto* o_loss = app.add_option("--loss", loss_text, "A toy loss, e.g. 'x^2 + y^4' (format: docs/toys.md)");
    app.add_option("--n", n, "Dimension of a --loss toy (default: the coordinates it uses)");
    auto* o_flat = app.add_option("--flat", recipe.flat, "Recipe: number of flat (exactly zero) directions");
    auto* o_curved = app.add_option("--curved", recipe.curved, "Recipe: number of nonzero eigenvalues");
    app.add_option("--negative", recipe.negative, "Recipe: how many of the curved eigenvalues are negative");
    app.add_option("--spectrum", spectrum, "Recipe: loguniform or clustered")
        ->check(CLI::IsMember({"loguniform", "clustered"}))
        ->capture_default_str();
    app.add_option("--lo", recipe.lo, "Recipe: smallest |lambda|")->capture_default_str();
    app.add_option("--hi", recipe.hi, "Recipe: largest |lambda|")->capture_default_str();
    app.add_option("--clusters", recipe.clusters, "Recipe (clustered): number of clusters")->capture_default_str();
    app.add_option("--spread", recipe.spread, "Recipe (clustered): relative half-width of a cluster")
        ->capture_default_str();
    app.add_option("--seed", recipe.seed, "Recipe: seed of the spectrum (toy i of --count uses SEED+i)")
        ->capture_default_str();
    app.add_option("--rotate", rotate, "Rotate by a random orthogonal matrix from this seed (toy i: SEED+i)");
    app.add_option("--dtype", dtype, "Stored type: float32 or float64")
        ->check(CLI::IsMember({"float32", "float64"}))
        ->capture_default_str();
    app.add_option("-T,--threshold", threshold, "Loss threshold written as loss_threshold")->capture_default_str();
    app.add_option("--count", count, "Write this many toys into the group --dataset (toy_000, toy_001, ...)");
    app.add_option("--name", name, "The name attribute");
    app.add_flag("--append", append, "Add to an existing file (default: create or truncate OUT)");
    app.add_option("--set", overrides,
                   "Override an attribute, KEY=VALUE (e.g. a deliberately wrong expected_rank=3 for testing)");
    app.add_flag("--list-presets", list, "List the presets and exit");
    o_eigs->excludes(o_preset)->excludes(o_loss)->excludes(o_flat)->excludes(o_curved);
    o_preset->excludes(o_loss)->excludes(o_flat)->excludes(o_curved);
    o_loss->excludes(o_flat)->excludes(o_curved);
    app.footer("Examples:\n"
               "  basinvol-toy toys.h5 --preset parabola              # x^2 + y^2 in R^3, log V = log(pi T)\n"
               "  basinvol-toy toys.h5 --append -d /lu --flat 10 --curved 40 --lo 1e-4 --hi 1e2 --rotate 7\n"
               "  basinvol-toy toys.h5 --append -d /q --loss 'x^2 + y^4'\n"
               "Exit status: 0 written, 1 write failed, 2 usage error.");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        std::cerr << "basinvol-toy: " << e.what() << "\nRun 'basinvol-toy --help' for usage.\n";
        return 2;
    }
    if (list) {
        for (const auto& p : toy::presets())
            std::cout << p.name << "\tn=" << p.n << "\t" << p.loss << "\t" << p.about << '\n';
        std::cout.flush();
        return std::cout ? 0 : 1;
    }
    try {
        if (out.empty()) throw bv::UsageError("OUT is required");
        const bool from_recipe = !o_eigs->empty() ? false : (!o_flat->empty() || !o_curved->empty());
        if (o_eigs->empty() && o_preset->empty() && o_loss->empty() && !from_recipe)
            throw bv::UsageError("give a spectrum: --eigenvalues, --preset, --loss or --flat/--curved");
        if (!(threshold > 0)) throw bv::UsageError("-T/--threshold must be positive");
        recipe.distribution = spectrum == "clustered" ? toy::Distribution::clustered : toy::Distribution::loguniform;
        const std::size_t k = count ? count : 1;
        if (dataset.empty()) dataset = count ? "/toys" : "/toy";
        for (std::size_t i = 0; i < k; ++i) {
            toy::ToySpec spec;
            spec.type = dtype == "float32" ? toy::StoredType::float32 : toy::StoredType::float64;
            spec.threshold = threshold;
            spec.name = name;
            if (rotate) spec.rotation = *rotate + i;
            if (!o_eigs->empty()) {
                spec.eigenvalues = toy::parse_list(eigenvalues);
                spec.recipe = "eigenvalues=" + eigenvalues;
            } else if (!o_preset->empty()) {
                const toy::Preset* p = toy::find_preset(preset);
                if (!p) throw bv::UsageError("unknown preset '" + preset + "' (see --list-presets)");
                spec.loss = toy::PolyLoss::parse(p->loss, n ? n : p->n);
                spec.preset = p->name;
                if (spec.name.empty()) spec.name = p->name;
            } else if (!o_loss->empty()) {
                spec.loss = toy::PolyLoss::parse(loss_text, n);
            } else {
                toy::Recipe r = recipe;
                r.seed = recipe.seed + i;
                spec.eigenvalues = toy::recipe_spectrum(r);
                spec.recipe = recipe_text(r, spectrum);
            }
            toy::Toy t = toy::make_toy(spec);
            for (const auto& kv : overrides) apply_override(t.attrs, kv);
            char leaf[32];
            std::snprintf(leaf, sizeof leaf, "/toy_%03zu", i);
            const std::string path = count ? (dataset == "/" ? std::string(leaf) : dataset + leaf) : dataset;
            bv::write_hessian(out, path, t.matrix, spec.type == toy::StoredType::float32, t.attrs,
                              append || i > 0 ? bv::WriteMode::append : bv::WriteMode::create);
        }
    } catch (const bv::UsageError& e) {
        std::cerr << "basinvol-toy: " << e.what() << "\nRun 'basinvol-toy --help' for usage.\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "basinvol-toy: error: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
