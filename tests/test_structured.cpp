// A structure's spectrum held as parts (Kronecker products never formed)
// against the same values listed and sorted: every query the cut makes, and
// the cut itself, must match the list's answer exactly.
#include <basinvol/measure/cut.hpp>
#include <basinvol/measure/volume.hpp>
#include <basinvol/solve/structured.hpp>

#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <vector>

using namespace basinvol;

namespace {

// The parts' values formed one by one, as a dense twin would list them.
std::vector<double> listed(const std::vector<SpectrumPart>& parts) {
    std::vector<double> v;
    for (const SpectrumPart& p : parts) {
        if (!p.kron) v.insert(v.end(), p.values.begin(), p.values.end());
        else
            for (double a : p.alpha)
                for (double b : p.beta) v.push_back(p.scale * a * b);
    }
    return v;
}

std::vector<double> sorted_magnitudes(std::vector<double> v) {
    for (double& x : v) x = std::abs(x);
    std::sort(v.begin(), v.end(), std::greater<double>());
    return v;
}

// Values drawn to collide: a few decades, repeated values, exact zeros, both
// signs, and a run just above zero.
std::vector<double> awkward(std::mt19937& rng, std::size_t k) {
    std::uniform_int_distribution<int> pick(0, 5);
    std::uniform_real_distribution<double> unit(0, 1);
    std::vector<double> v;
    for (std::size_t i = 0; i < k; ++i) {
        double x = 0;
        switch (pick(rng)) {
            case 0: x = 0; break;
            case 1: x = v.empty() ? 1.0 : v[static_cast<std::size_t>(unit(rng) * static_cast<double>(v.size()))]; break;
            case 2: x = std::pow(10.0, -12 * unit(rng)); break;
            case 3: x = 1e-15 * unit(rng); break;
            default: x = std::pow(10.0, 3 - 6 * unit(rng)); break;
        }
        v.push_back(unit(rng) < 0.3 ? -x : x);
    }
    return v;
}

std::vector<SpectrumPart> random_parts(std::mt19937& rng) {
    std::uniform_int_distribution<int> count(1, 4), size(1, 12);
    std::vector<SpectrumPart> parts(static_cast<std::size_t>(count(rng)));
    for (SpectrumPart& p : parts) {
        p.kron = rng() % 2 == 0;
        if (!p.kron) {
            p.values = awkward(rng, static_cast<std::size_t>(size(rng)));
            continue;
        }
        p.alpha = awkward(rng, static_cast<std::size_t>(size(rng)));
        p.beta = awkward(rng, static_cast<std::size_t>(size(rng)));
        const double scales[] = {1.0, -1.0, 3.0, 0.1, 1.0 / 3};
        p.scale = scales[rng() % 5];
    }
    return parts;
}

void same_cut(const Cut& a, const Cut& b) {
    CHECK(a.tol == b.tol);
    CHECK(a.gap == b.gap);
    CHECK(a.floor == b.floor);
    CHECK(a.rule == b.rule);
    CHECK(a.ambiguous == b.ambiguous);
    CHECK(a.below_floor == b.below_floor);
    CHECK(a.decided == b.decided);
    CHECK(a.kept == b.kept);
    CHECK(a.dim_low == b.dim_low);
    CHECK(a.dim_high == b.dim_high);
}

}  // namespace

TEST_CASE("structured parts: values and sorted magnitudes equal the listed products") {
    std::mt19937 rng(7);
    for (int trial = 0; trial < 300; ++trial) {
        const std::vector<SpectrumPart> parts = random_parts(rng);
        const PartValues values(parts.data(), parts.data() + parts.size());
        const std::vector<double> list = listed(parts);
        std::vector<double> visited;
        values.for_each([&](double v) { visited.push_back(v); });
        REQUIRE(visited == list);  // bit for bit, in part order
        REQUIRE(values.size() == list.size());

        const std::vector<double> want = sorted_magnitudes(list);
        const auto got = values.magnitudes();
        REQUIRE(got->size() == want.size());
        for (std::size_t i = 0; i < want.size(); ++i) CHECK(got->at(i) == want[i]);
        // Runs of positions at once, ties across their ends included (the
        // parts repeat values): whole, empty, one, the last, random.
        const std::size_t size = want.size();
        std::vector<std::pair<std::size_t, std::size_t>> runs{{0, size}, {size / 2, size / 2}, {size - 1, size}};
        for (int r = 0; r < 6; ++r) {
            const std::size_t x = rng() % (size + 1), y = rng() % (size + 1);
            runs.push_back({std::min(x, y), std::max(x, y)});
        }
        for (const auto& [from, to] : runs) {
            CAPTURE(from);
            CAPTURE(to);
            CHECK(got->range(from, to) == std::vector<double>(want.begin() + std::ptrdiff_t(from), want.begin() + std::ptrdiff_t(to)));
        }
        std::vector<double> scanned;
        got->scan([&](double v) {
            scanned.push_back(v);
            return true;
        });
        CHECK(scanned == want);
        std::size_t stop = want.size() / 2, seen = 0;
        got->scan([&](double) { return ++seen < stop; });
        CHECK(seen == std::max<std::size_t>(stop, 1));
        for (double t : {0.0, 1e-16, 1e-9, 0.5, 1.0, 10.0, want.front(), want.back()}) {
            const auto above = [t](double v) { return v > t; };
            const auto at_least = [t](double v) { return v >= t; };
            CHECK(got->prefix_where(above) ==
                  static_cast<std::size_t>(std::partition_point(want.begin(), want.end(), above) - want.begin()));
            CHECK(got->prefix_where(at_least) ==
                  static_cast<std::size_t>(std::partition_point(want.begin(), want.end(), at_least) - want.begin()));
        }
    }
}

TEST_CASE("structured parts: the cut and the measurement equal the listed spectrum's") {
    std::mt19937 rng(11);
    const CutRule rules[] = {CutRule::automatic, CutRule::dtype, CutRule::gap};
    for (int trial = 0; trial < 400; ++trial) {
        const std::vector<SpectrumPart> parts = random_parts(rng);
        const PartValues values(parts.data(), parts.data() + parts.size());
        const std::vector<double> list = listed(parts);

        Magnitudes by_list;
        by_list.known = sorted_magnitudes(list);
        by_list.n = list.size() + rng() % 3;  // some values unlisted (exactly zero, or unseen)
        by_list.stored_eps = trial % 2 ? std::numeric_limits<float>::epsilon() : std::numeric_limits<double>::epsilon();
        by_list.frobenius = 0;
        for (double v : list) by_list.frobenius += v * v;
        by_list.frobenius = std::sqrt(by_list.frobenius);
        // Inexact knowledge too: the bounded-error paths of the cut read the
        // values in other orders and at other positions.
        if (trial % 3 == 1) by_list.value_error = 1e-6 * by_list.frobenius;
        if (trial % 3 == 2) by_list.rest_bound = 1e-9 * by_list.frobenius;
        Magnitudes by_parts = by_list;
        by_parts.known.clear();
        by_parts.sorted = values.magnitudes();

        CutOptions opt;
        opt.rule = rules[trial % 3];
        opt.min_gap = trial % 4 == 0 ? 0.5 : 1.0;
        if (trial % 7 == 0) opt.rtol = 1e-6;
        if (trial % 11 == 0) opt.atol = 1e-3;
        CAPTURE(trial);
        const Cut want = choose_cut(by_list, opt), got = choose_cut(by_parts, opt);
        same_cut(got, want);

        for (NegativePolicy policy : {NegativePolicy::drop, NegativePolicy::abs}) {
            // Kronecker sums are log|c| + log|β| per product, not log|fl(c·β)|:
            // equal to a rounding per term.
            const Measurement a = measure(values, by_list.n, want.tol, 0.5, policy);
            const Measurement b = measure(list, by_list.n, want.tol, 0.5, policy);
            CHECK(a.rank == b.rank);
            CHECK(a.dim == b.dim);
            CHECK(a.negative == b.negative);
            CHECK(std::abs(a.sum_log - b.sum_log) <= 1e-15 * static_cast<double>(b.rank) * (1 + std::abs(b.sum_log)));
            CHECK(std::abs(a.log_volume - b.log_volume) <= 1e-14 * (1 + std::abs(b.log_volume)) * static_cast<double>(b.rank + 1));

            // The closed-form error is a bound on the listed sum, within the
            // factor 1/(1 − e/m) of it (m: the least kept magnitude).
            const double e = trial % 2 ? 1e-12 : 1e-4;
            const double exact = log_volume_error(list, want.tol, e, policy);
            const double bound = log_volume_error(values, want.tol, e, policy);
            CHECK(std::isinf(bound) == std::isinf(exact));
            if (std::isinf(exact) || exact == 0) {
                CHECK(bound == exact);
                continue;
            }
            double least = INFINITY;
            for (double v : list)
                if (std::abs(v) > want.tol && !(v < 0 && policy == NegativePolicy::drop)) least = std::min(least, std::abs(v));
            CHECK(bound >= exact);
            CHECK(bound <= exact / (1 - e / least) * (1 + 1e-12));
        }
        CHECK(regularized_log_volume(values, by_list.n, 0.5, 1e-3) == regularized_log_volume(list, by_list.n, 0.5, 1e-3));
    }
}

namespace {
// This process's resident memory now (not its peak), in bytes.
std::size_t resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}
}  // namespace

TEST_CASE("structured parts: a Kronecker part's sorted view answers from its factors, not their products") {
    // 2000 × 3000 products (48 MB as doubles): the sorted view must answer
    // while holding its factors only, and agree with what the products are
    // by construction.
    SpectrumPart p;
    p.kron = true;
    p.scale = 2.0;
    for (int i = 0; i < 2000; ++i) p.alpha.push_back(i < 1500 ? std::pow(10.0, -i / 1000.0) : 0.0);
    for (int j = 0; j < 3000; ++j) p.beta.push_back(j % 2 ? 1.0 : 1e-3);
    const PartValues values(&p, &p + 1);
    const std::size_t before = resident_bytes();
    const auto m = values.magnitudes();
    const KeptSums kept = values.kept(0.01, 1e-9);
    CHECK(resident_bytes() < before + (8u << 20));
    CHECK(kept.count[0] == 1500 * 1500);
    REQUIRE(m->size() == 6000000);
    CHECK(m->at(0) == 2.0);
    // 1500 nonzero α, each with 1500 β = 1 and 1500 β = 1e-3: exactly 4,500,000 nonzero products.
    CHECK(m->prefix_where([](double v) { return v > 0; }) == 4500000);
    CHECK(m->at(4499999) > 0);
    CHECK(m->at(4500000) == 0);
    // Every product with β = 1 exceeds 2·10^-1.5 > every product with β = 1e-3 (at most 2e-3).
    CHECK(m->prefix_where([](double v) { return v > 0.01; }) == 1500 * 1500);
}

namespace {

// The rules' gap search written out over the sorted list, position by
// position: the reference for the cut's faster search (the band's ties are
// checked in test_cut.cpp).
struct ReferenceCut {
    double tol;
    std::size_t kept;
};

ReferenceCut reference_cut(const std::vector<double>& a, std::size_t n, double floor, double n_eps, CutRule rule,
                           double min_gap) {
    auto at = [&](std::size_t i) { return i < a.size() ? a[i] : 0.0; };
    auto gap = [&](std::size_t i) { return std::log10(at(i)) - std::log10(std::max(at(i + 1), floor)); };
    auto count_above = [&](double t) {
        std::size_t c = 0;
        for (double v : a) c += v > t;
        return c;
    };
    const double dtype = std::max(at(0) * n_eps, floor);
    double ceiling = INFINITY;
    bool search = rule == CutRule::gap;
    if (rule == CutRule::automatic) {
        const std::size_t p = count_above(dtype);
        search = p == 0 ? at(0) > floor : p < n && gap(p - 1) < min_gap;
        ceiling = dtype;
    } else {
        min_gap = 0;
    }
    // The first eligible gap that could be the largest once noise moves each
    // value by up to the floor (log10 of v, clamped to the floor, by move(v)):
    // its gap plus noise reaches every eligible gap's gap less noise.
    auto clamped = [&](double v) { return std::log10(std::max(v, floor)); };
    auto move = [&](double v) {
        return floor > 0 ? std::max(clamped(v) - clamped(v - floor), clamped(v + floor) - clamped(v)) : 0.0;
    };
    auto noise = [&](std::size_t i) { return move(at(i)) + move(at(i + 1)) + 1e-12; };
    std::vector<std::size_t> eligible;
    if (search)
        for (std::size_t i = 0; i <= std::min(a.size(), n - 1) && at(i) > floor; ++i) {
            const double g = gap(i), cut = std::sqrt(at(i)) * std::sqrt(std::max(at(i + 1), floor));
            if (g > 0 && g >= min_gap && cut <= ceiling) eligible.push_back(i);
        }
    double tol = dtype;
    double edge = -INFINITY;  // the largest gap less its noise
    for (std::size_t i : eligible) edge = std::max(edge, gap(i) - noise(i));
    for (std::size_t i : eligible)
        if (gap(i) + noise(i) >= edge) {
            tol = std::sqrt(at(i)) * std::sqrt(std::max(at(i + 1), floor));
            break;
        }
    return {tol, count_above(tol)};
}

// Spectra made for gap searches: equal gaps (ties), clusters, repeated
// values, values on the floor, and long runs.
std::vector<double> gappy(std::mt19937& rng) {
    std::uniform_real_distribution<double> unit(0, 1);
    const int family = static_cast<int>(rng() % 4);
    const std::size_t k = rng() % 5 == 0 ? 3000 + rng() % 3000 : 1 + rng() % 60;
    std::vector<double> v;
    const double step = std::vector<double>{0.25, 0.5, 1.0, 2.0}[rng() % 4];
    for (std::size_t i = 0; i < k; ++i) {
        double x = 0;
        if (family == 0) x = std::pow(10.0, -step * static_cast<double>(i % 13));  // equal gaps, repeated
        else if (family == 1) x = (i % 3 ? 1.0 : 1e-6) * (1 + 0.1 * unit(rng));   // two clusters
        else if (family == 2) x = std::pow(10.0, -16 * unit(rng));                 // spread to the floor
        else x = unit(rng) < 0.5 ? 0.0 : std::pow(10.0, -step * std::floor(8 * unit(rng)));
        v.push_back(x);
    }
    return v;
}

}  // namespace

TEST_CASE("the cut's gap search equals the position-by-position search, list and parts alike") {
    std::mt19937 rng(23);
    const CutRule rules[] = {CutRule::gap, CutRule::automatic};
    for (int trial = 0; trial < 1500; ++trial) {
        std::vector<SpectrumPart> parts(1);
        if (trial % 2 == 0) parts[0].values = gappy(rng);
        else {  // the same kind of spectrum as a Kronecker part's products
            parts[0].kron = true;
            parts[0].alpha = gappy(rng);
            parts[0].beta = {1.0, 1e-3, 1.0};
            parts[0].scale = 0.5;
        }
        const std::vector<double> list = sorted_magnitudes(listed(parts));
        Magnitudes m;
        m.known = list;
        m.n = list.size() + rng() % 2;
        m.stored_eps = std::numeric_limits<double>::epsilon();
        m.frobenius = 0;
        for (double v : list) m.frobenius += v * v;
        m.frobenius = std::sqrt(m.frobenius);
        m.input_noise = trial % 3 ? 0.0 : 1e-9 * m.frobenius;  // a floor inside the values
        CutOptions opt;
        opt.rule = rules[rng() % 2];
        opt.min_gap = std::vector<double>{0.0, 0.25, 1.0, 2.0}[rng() % 4];
        CAPTURE(trial);
        const Cut by_list = choose_cut(m, opt);
        const ReferenceCut want = reference_cut(list, m.n, by_list.floor, static_cast<double>(m.n) * m.stored_eps,
                                                opt.rule, opt.min_gap);
        CHECK(by_list.tol == want.tol);
        CHECK(by_list.kept == want.kept);

        const PartValues values(parts.data(), parts.data() + parts.size());
        Magnitudes by_parts = m;
        by_parts.known.clear();
        by_parts.sorted = values.magnitudes();
        const Cut got = choose_cut(by_parts, opt);
        CHECK(got.tol == want.tol);
        CHECK(got.kept == want.kept);
        // The band (gaps within noise of the chosen one) reads the values
        // beside each tied gap: the sorted view's are the list's.
        CHECK(got.ambiguous == by_list.ambiguous);
        CHECK(got.dim_low == by_list.dim_low);
        CHECK(got.dim_high == by_list.dim_high);
        CHECK(got.band_tol_low == by_list.band_tol_low);
        CHECK(got.band_tol_high == by_list.band_tol_high);
    }
}

namespace {

// A sorted list that counts the positions asked for one by one: a
// structure's view answers each by a search over all its rows.
class CountingMagnitudes final : public SortedMagnitudes {
public:
    explicit CountingMagnitudes(const std::vector<double>& a) : list_(a) {}
    std::size_t size() const override { return list_.size(); }
    double at(std::size_t i) const override { return ++lookups, list_.at(i); }
    std::size_t prefix_where(const std::function<bool(double)>& holds) const override {
        return list_.prefix_where(holds);
    }
    void scan(const std::function<bool(double)>& visit) const override { list_.scan(visit); }
    void visit_spans(const std::function<void(const double*, std::size_t)>& visit) const override {
        list_.visit_spans(visit);
    }
    mutable std::size_t lookups = 0;

private:
    ListMagnitudes list_;
};

}  // namespace

TEST_CASE("the cut over many gaps within noise of each other looks up a few positions, not one per gap") {
    // A Kronecker pair of logspace factors: n values on an even log grid,
    // every gap the same, all tied. Walking them is one pass; looking each
    // tied gap's sides up again took minutes at n = 10⁶ (a search per
    // position over all rows of the structure).
    std::vector<double> v;
    for (int i = 0; i < 3000; ++i) v.push_back(std::pow(10.0, -0.006 * i));  // to 1e-18, past the floor
    for (const double noise : {0.0, 1e-15}) {  // exact values, and a floor far under them
        CAPTURE(noise);
        Magnitudes m;
        m.known = v;
        m.n = v.size();
        m.stored_eps = std::numeric_limits<double>::epsilon();
        m.frobenius = 1;
        m.input_noise = noise;
        CutOptions opt;
        opt.rule = CutRule::gap;
        opt.min_gap = 0;
        const Cut by_list = choose_cut(m, opt);
        REQUIRE(by_list.ambiguous);
        REQUIRE(by_list.dim_high - by_list.dim_low > 1000);  // the ties span the spectrum
        auto counting = std::make_shared<CountingMagnitudes>(v);
        Magnitudes viewed = m;
        viewed.known.clear();
        viewed.sorted = counting;
        const Cut got = choose_cut(viewed, opt);
        CHECK(counting->lookups <= 16);
        CHECK(got.tol == by_list.tol);
        CHECK(got.dim_low == by_list.dim_low);
        CHECK(got.dim_high == by_list.dim_high);
        CHECK(got.band_tol_low == by_list.band_tol_low);
        CHECK(got.band_tol_high == by_list.band_tol_high);
    }
}
