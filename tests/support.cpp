// The Eigen work of the test helpers (support.hpp), instantiated once.
#include "support.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/QR>

#include <map>
#include <mutex>
#include <random>
#include <utility>

namespace testing_support {

// A random orthogonal matrix (Haar, via QR with sign fix), from a local seed.
Eigen::MatrixXd random_orthogonal(Eigen::Index n, std::uint32_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    Eigen::MatrixXd a(n, n);
    for (Eigen::Index j = 0; j < n; ++j)
        for (Eigen::Index i = 0; i < n; ++i) a(i, j) = normal(rng);
    Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
    Eigen::MatrixXd q = qr.householderQ();
    Eigen::MatrixXd r = qr.matrixQR().triangularView<Eigen::Upper>();
    for (Eigen::Index j = 0; j < n; ++j)
        if (r(j, j) < 0) q.col(j) *= -1;
    return q;
}

namespace {

// random_orthogonal(n, seed), made once per process: the property tests ask
// for the same Q under many spectra and every solver.
const Eigen::MatrixXd& cached_orthogonal(Eigen::Index n, std::uint32_t seed) {
    static std::mutex m;
    static std::map<std::pair<Eigen::Index, std::uint32_t>, Eigen::MatrixXd> cache;
    std::lock_guard<std::mutex> lock(m);
    auto it = cache.find({n, seed});
    if (it == cache.end()) it = cache.emplace(std::make_pair(n, seed), random_orthogonal(n, seed)).first;
    return it->second;  // std::map never moves its values
}

}  // namespace

// Only the columns of nonzero eigenvalues
// contribute (Q_k diag(λ_k) Q_kᵀ); the last matrix made is kept, as the
// tests ask for one spectrum once per solver.
Eigen::MatrixXd with_spectrum(const std::vector<double>& eigs, std::uint32_t seed) {
    static std::mutex m;
    static std::vector<double> last_eigs;
    static std::uint32_t last_seed = 0;
    static Eigen::MatrixXd last;
    std::lock_guard<std::mutex> lock(m);
    if (last.size() > 0 && seed == last_seed && eigs == last_eigs) return last;
    const auto n = static_cast<Eigen::Index>(eigs.size());
    const Eigen::MatrixXd& q = cached_orthogonal(n, seed);
    std::vector<Eigen::Index> kept;
    for (Eigen::Index i = 0; i < n; ++i)
        if (eigs[static_cast<std::size_t>(i)] != 0) kept.push_back(i);
    const auto k = static_cast<Eigen::Index>(kept.size());
    Eigen::MatrixXd qk(n, k);
    Eigen::VectorXd d(k);
    for (Eigen::Index j = 0; j < k; ++j) {
        qk.col(j) = q.col(kept[static_cast<std::size_t>(j)]);
        d(j) = eigs[static_cast<std::size_t>(kept[static_cast<std::size_t>(j)])];
    }
    Eigen::MatrixXd h = qk * d.asDiagonal() * qk.transpose();
    last = (h + h.transpose()) / 2;
    last_eigs = eigs;
    last_seed = seed;
    return last;
}

Eigen::VectorXd eigenvalues_of(const Eigen::MatrixXd& symmetric) {
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(symmetric, Eigen::EigenvaluesOnly);
    return es.eigenvalues();
}

}  // namespace testing_support
