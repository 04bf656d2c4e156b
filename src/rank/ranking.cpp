#include <basinvol/rank/ranking.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace basinvol {
namespace {

bool is_saddle(const Row& r) { return r.negative > 0; }

// −1: a before b, +1: b before a, 0: tie. `by_volume` false compares by dimension only.
int order(const Row& a, const Row& b, const RankOptions& opt, bool by_volume) {
    if (opt.saddles_last && is_saddle(a) != is_saddle(b)) return is_saddle(a) ? 1 : -1;
    if (a.dim != b.dim) return a.dim > b.dim ? -1 : 1;
    if (!by_volume || a.n != b.n) return 0;
    if (std::abs(a.log_volume - b.log_volume) <= opt.tie_tol) return 0;
    return a.log_volume > b.log_volume ? -1 : 1;
}

}  // namespace

Ranking rank_rows(std::vector<Row>& rows, const RankOptions& opt) {
    Ranking result;
    std::vector<Row> good, bad;
    for (auto& r : rows) (r.ok ? good : bad).push_back(std::move(r));
    for (std::size_t i = 1; i < good.size(); ++i)
        if (good[i].n != good[0].n) result.mixed_n = true;
    const bool by_volume = !result.mixed_n;
    // Display order: the ranking key, then log-volume, then input order.
    std::stable_sort(good.begin(), good.end(), [&](const Row& a, const Row& b) {
        int o = order(a, b, opt, by_volume);
        if (o != 0) return o < 0;
        return a.log_volume > b.log_volume;
    });
    for (std::size_t i = 0; i < good.size(); ++i) {
        if (i > 0 && order(good[i - 1], good[i], opt, by_volume) == 0) good[i].place = good[i - 1].place;
        else good[i].place = i + 1;
        if (result.mixed_n) good[i].warnings.push_back("mixed_n");
    }
    rows.clear();
    for (auto& r : good) rows.push_back(std::move(r));
    for (auto& r : bad) {
        r.place.reset();
        rows.push_back(std::move(r));
    }
    return result;
}

bool rank_regularized(std::vector<Row>& rows, double tie_tol) {
    std::vector<Row*> with;
    for (auto& r : rows)
        if (r.ok && r.log_volume_regularized) with.push_back(&r);
    // log V_λ is an n-dimensional volume: rows of different n are in different units.
    for (const Row* r : with)
        if (r->n != with.front()->n) {
            for (Row* x : with) x->place_regularized.reset();
            return false;
        }
    std::stable_sort(with.begin(), with.end(), [](const Row* a, const Row* b) {
        return *a->log_volume_regularized > *b->log_volume_regularized;
    });
    for (std::size_t i = 0; i < with.size(); ++i) {
        if (i > 0 && std::abs(*with[i - 1]->log_volume_regularized - *with[i]->log_volume_regularized) <= tie_tol)
            with[i]->place_regularized = with[i - 1]->place_regularized;
        else
            with[i]->place_regularized = i + 1;
    }
    return true;
}

int compare_rows(const Row& a, const Row& b, const RankOptions& opt, std::string& reason) {
    std::ostringstream s;
    s.precision(10);
    if (opt.saddles_last && is_saddle(a) != is_saddle(b)) {
        s << "saddle: " << (is_saddle(a) ? "A" : "B") << " has negative eigenvalues (A " << a.negative << ", B "
          << b.negative << ") and --negatives last ranks saddles after minima";
        reason = s.str();
        return is_saddle(a) ? -1 : 1;
    }
    if (a.dim != b.dim) {
        s << "dimension: A " << a.dim << (a.dim > b.dim ? " > " : " < ") << "B " << b.dim;
        reason = s.str();
        return a.dim > b.dim ? 1 : -1;
    }
    if (a.n != b.n) {
        s << "tie: equal dimension " << a.dim << " but different n (A " << a.n << ", B " << b.n
          << "): log-volumes are in different units and are not compared";
        reason = s.str();
        return 0;
    }
    double d = a.log_volume - b.log_volume;
    if (std::abs(d) <= opt.tie_tol) {
        s << "tie: equal dimension " << a.dim << ", log_volume A " << a.log_volume << " and B " << b.log_volume
          << " within --tie-tol " << opt.tie_tol;
        reason = s.str();
        return 0;
    }
    s << "volume: equal dimension " << a.dim << ", log_volume A " << a.log_volume << (d > 0 ? " > " : " < ") << "B "
      << b.log_volume;
    reason = s.str();
    return d > 0 ? 1 : -1;
}

}  // namespace basinvol
