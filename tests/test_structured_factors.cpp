// Square parts (dense members, Kronecker factors) read and solved after the
// structure's walk, two at a time when the job owns two BLAS threads or
// more: the spectra, norms and errors must be the one-at-a-time answer (bit
// for bit where each part runs LAPACK on one thread either way), every
// part's eigenvalues must match an independent solver, side by side must
// run exactly when its conditions hold, and a broken part must fail the row
// with the first failure in the structure's order, whatever the threads.
#include "support.hpp"

#include <basinvol/analyze.hpp>
#include <basinvol/batch/scheduler.hpp>
#include <basinvol/error.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/io/source.hpp>
#include <basinvol/solve/structured.hpp>

#include <doctest/doctest.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace basinvol;
using namespace testing_support;

namespace {

// A file written with HDF5's C API: groups carrying a `structure` (and
// optional `scale`) attribute, square datasets in float64 or float32.
class File {
public:
    explicit File(const std::string& name)
        : path_((std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()) + ".h5")).string()) {
        id_ = H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(id_ >= 0);
    }
    ~File() {
        if (id_ >= 0) H5Fclose(id_);
        std::remove(path_.c_str());
    }
    File(const File&) = delete;
    File& operator=(const File&) = delete;

    void group(const std::string& path, const std::string& structure, double scale = 1) {
        const hid_t g = H5Gcreate2(id_, path.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(g >= 0);
        attributes(g, structure, scale);
        H5Gclose(g);
    }

    // A 1-D dataset with structure "diagonal".
    void diagonal(const std::string& path, const std::vector<double>& d) {
        const hsize_t dims[1] = {d.size()};
        const hid_t space = H5Screate_simple(1, dims, nullptr);
        const hid_t ds = H5Dcreate2(id_, path.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(ds >= 0);
        REQUIRE(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, d.data()) >= 0);
        attributes(ds, "diagonal", 1);
        H5Dclose(ds);
        H5Sclose(space);
    }

    void attributes(hid_t obj, const std::string& structure, double scale) {
        const hid_t type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, structure.size());
        const hid_t scalar = H5Screate(H5S_SCALAR);
        const hid_t a = H5Acreate2(obj, "structure", type, scalar, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(H5Awrite(a, type, structure.data()) >= 0);
        H5Aclose(a);
        if (scale != 1) {
            const hid_t s = H5Acreate2(obj, "scale", H5T_NATIVE_DOUBLE, scalar, H5P_DEFAULT, H5P_DEFAULT);
            REQUIRE(H5Awrite(s, H5T_NATIVE_DOUBLE, &scale) >= 0);
            H5Aclose(s);
        }
        H5Sclose(scalar);
        H5Tclose(type);
    }

    // Row-major on disk; the matrices here are symmetric, or made not to be on purpose.
    void matrix(const std::string& path, const Eigen::MatrixXd& m, bool f32) {
        const hsize_t dims[2] = {static_cast<hsize_t>(m.rows()), static_cast<hsize_t>(m.cols())};
        const hid_t space = H5Screate_simple(2, dims, nullptr);
        const hid_t d = H5Dcreate2(id_, path.c_str(), f32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, space, H5P_DEFAULT,
                                   H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(d >= 0);
        const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rows = m;
        if (f32) {
            const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> f = rows.cast<float>();
            REQUIRE(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, f.data()) >= 0);
        } else {
            REQUIRE(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()) >= 0);
        }
        H5Dclose(d);
        H5Sclose(space);
    }

    // Closes the file and lists the structured Hessian at `dataset`.
    HessianInfo listed(const std::string& dataset) {
        if (id_ >= 0) H5Fclose(id_);
        id_ = -1;
        auto list = list_hessians(parse_source(path_ + ":" + dataset));
        REQUIRE(list.size() == 1);
        REQUIRE(list[0].problem.empty());
        return list[0].info;
    }

private:
    std::string path_;
    hid_t id_ = -1;
};

struct Pair {
    Eigen::MatrixXd A, B;
    double scale;
    bool f32;
};

// Factors of unequal sizes (so the two threads finish out of step), a 1×1
// factor, float32 and float64, a negative scale, a negative eigenvalue,
// exact zeros and values running through many decades.
std::vector<Pair> pairs() {
    std::vector<Pair> p;
    p.push_back({with_spectrum(geometric(100, 1, 1e-12), 1), with_spectrum(geometric(25, 3, 1e-3), 2), 1.0, false});
    std::vector<double> wide = geometric(60, 10, 1e-5);
    wide[59] = wide[58] = 0;
    p.push_back({with_spectrum(wide, 3), with_spectrum({2, 1, 1, 0.5, 0, 0, -1e-3}, 4), 1.0, true});
    p.push_back({with_spectrum({4, 2, 1, 0.25, 0}, 5), with_spectrum(geometric(120, 1, 1e-6), 6), -0.7, false});
    p.push_back({with_spectrum(geometric(33, 2, 1e-2), 7), with_spectrum(geometric(33, 1, 1e-4), 8), 1.0, true});
    p.push_back({Eigen::MatrixXd::Constant(1, 1, 3.0), with_spectrum(geometric(12, 1, 1e-2), 9), 2.0, false});
    return p;
}

// A dense member between the pairs, larger than some factors (so that, largest
// first, it is solved before them).
Eigen::MatrixXd dense_member() {
    std::vector<double> e = geometric(45, 5, 1e-4);
    e[3] = -0.5;
    e[44] = e[43] = 0;
    return with_spectrum(e, 10);
}

void write_network(File& f, const std::vector<Pair>& ps, const Eigen::MatrixXd& dense) {
    f.group("/net", "blocks");
    for (std::size_t i = 0; i < ps.size(); ++i) {
        const std::string g = "/net/p" + std::to_string(i);
        f.group(g, "kron", ps[i].scale);
        f.matrix(g + "/A", ps[i].A, ps[i].f32);
        f.matrix(g + "/B", ps[i].B, ps[i].f32);
        if (i == 1) f.matrix("/net/p1_dense", dense, false);  // a dense member between the pairs
    }
}

// Ascending eigenvalues of a matrix as stored (float32 rounded first).
std::vector<double> stored_eigenvalues(const Eigen::MatrixXd& m, bool f32) {
    const Eigen::MatrixXd s = f32 ? Eigen::MatrixXd(m.cast<float>().cast<double>()) : m;
    const Eigen::VectorXd e = eigenvalues_of(s);
    return {e.data(), e.data() + e.size()};
}

// LAPACK's backward error for eigenvalues of an n×n matrix of norm ‖M‖_F,
// with room for the constant.
double eigen_tolerance(double frobenius, std::size_t n) {
    return 64 * std::numeric_limits<double>::epsilon() * frobenius * static_cast<double>(std::max<std::size_t>(n, 1));
}

bool within(const std::vector<double>& got, const std::vector<double>& want, double tol) {
    if (got.size() != want.size()) return false;
    for (std::size_t j = 0; j < want.size(); ++j)
        if (!(std::abs(got[j] - want[j]) <= tol)) return false;
    return true;
}

// Restores the BLAS thread count on every way out of a test.
struct SavedBlasThreads {
    int saved = blas_threads();
    ~SavedBlasThreads() { set_blas_threads(saved); }
};

// Side by side allowed, with memory to spare.
const SideBySide owned{true, std::size_t(1) << 40};

std::string failure_of(const HessianInfo& info) {
    try {
        structured_spectrum(info, {}, owned, nullptr);
    } catch (const InputError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("structured: square parts two at a time give the one-at-a-time spectrum") {
    const SavedBlasThreads restore;
    const std::vector<Pair> ps = pairs();
    const Eigen::MatrixXd dense = dense_member();
    File f("basinvol_squares");
    write_network(f, ps, dense);
    const HessianInfo info = f.listed("/net");

    set_blas_threads(1);
    const StructuredSpectrum one = structured_spectrum(info, {}, owned, nullptr);
    CHECK_FALSE(one.side_by_side);
    CHECK(blas_threads() == 1);
    REQUIRE(one.parts.size() == ps.size() + 1);
    // Each part against an independent solver (Eigen), within LAPACK's backward error.
    CHECK(within(one.parts[2].values, stored_eigenvalues(dense, false), eigen_tolerance(dense.norm(), 45)));
    for (std::size_t i = 0, k = 0; i < one.parts.size(); ++i) {
        const SpectrumPart& part = one.parts[i];
        if (!part.kron) continue;
        const Pair& p = ps[k++];
        CAPTURE(i);
        CHECK(part.scale == p.scale);
        CHECK(within(part.alpha, stored_eigenvalues(p.A, p.f32), eigen_tolerance(p.A.norm(), p.A.rows())));
        CHECK(within(part.beta, stored_eigenvalues(p.B, p.f32), eigen_tolerance(p.B.norm(), p.B.rows())));
    }

    for (int threads : {2, 3, 4}) {
        CAPTURE(threads);
        set_blas_threads(threads);
        // Not allowed (another BLAS user, or no memory for a second part): one at a time.
        CHECK_FALSE(structured_spectrum(info, {}, SideBySide{}, nullptr).side_by_side);
        CHECK_FALSE(structured_spectrum(info, {}, SideBySide{true, info.working_bytes}, nullptr).side_by_side);
        for (int repeat = 0; repeat < 3; ++repeat) {
            const StructuredSpectrum two = structured_spectrum(info, {}, owned, nullptr);
            CHECK(two.side_by_side);
            CHECK(blas_threads() == threads);
            REQUIRE(two.parts.size() == one.parts.size());
            // threads / 2 BLAS threads per part: one at 2 and 3 threads, so the
            // same bits; at 4, two each, so the same values to LAPACK's error
            for (std::size_t i = 0; i < one.parts.size(); ++i) {
                CAPTURE(i);
                const SpectrumPart &x = two.parts[i], &y = one.parts[i];
                CHECK(x.kron == y.kron);
                if (threads < 4) {
                    CHECK(x.values == y.values);
                    CHECK(x.alpha == y.alpha);
                    CHECK(x.beta == y.beta);
                } else {
                    CHECK(within(x.values, y.values, eigen_tolerance(dense.norm(), 45)));
                    const Pair& p = ps[i < 2 ? i : i - 1];
                    if (!x.kron) continue;
                    CHECK(within(x.alpha, y.alpha, eigen_tolerance(p.A.norm(), p.A.rows())));
                    CHECK(within(x.beta, y.beta, eigen_tolerance(p.B.norm(), p.B.rows())));
                }
            }
            if (threads < 4) {
                CHECK(two.frobenius == one.frobenius);
                CHECK(two.value_error == one.value_error);
            } else {
                CHECK(std::abs(two.frobenius - one.frobenius) <= 1e-12 * one.frobenius);
                CHECK(two.value_error == doctest::Approx(one.value_error).epsilon(1e-12));
            }
            CHECK(two.asymmetry == one.asymmetry);
            CHECK(two.spectrum.n == one.spectrum.n);
        }
    }
}

TEST_CASE("structured: square parts side by side only when the work splits and is worth a thread") {
    const SavedBlasThreads restore;
    set_blas_threads(2);
    File f("basinvol_squares_uneven");
    f.group("/uneven", "kron");  // A holds all but 0.1% of the work
    f.matrix("/uneven/A", with_spectrum(geometric(100, 1, 1e-3), 11), false);
    f.matrix("/uneven/B", with_spectrum(geometric(10, 1, 1e-3), 12), false);
    f.group("/tiny", "kron");  // even, but two 8×8 factors are not worth a thread
    f.matrix("/tiny/A", with_spectrum(geometric(8, 1, 1e-3), 13), false);
    f.matrix("/tiny/B", with_spectrum(geometric(8, 1, 1e-3), 14), false);
    f.group("/even", "kron");
    f.matrix("/even/A", with_spectrum(geometric(80, 1, 1e-3), 15), false);
    f.matrix("/even/B", with_spectrum(geometric(70, 1, 1e-3), 16), false);
    const std::string path = f.listed("/uneven").file;
    for (const auto& [name, expect] : {std::pair{"/uneven", false}, std::pair{"/tiny", false}, std::pair{"/even", true}}) {
        CAPTURE(name);
        auto list = list_hessians(parse_source(path + ":" + name));
        REQUIRE(list.size() == 1);
        const HessianInfo& info = list[0].info;
        CHECK(structured_spectrum(info, {}, owned, nullptr).side_by_side == expect);
        if (!expect) continue;
        // The working set (80² doubles and LAPACK's copy, the values) and the
        // 70² factor on top: over 150 kB, given by the caller or by the read budget.
        CHECK_FALSE(structured_spectrum(info, {}, SideBySide{true, 150'000}, nullptr).side_by_side);
        ReadOptions small;
        small.max_bytes = 150'000;
        CHECK_FALSE(structured_spectrum(info, small, owned, nullptr).side_by_side);
        CHECK(structured_spectrum(info, {}, SideBySide{true, 200'000}, nullptr).side_by_side);
        ReadOptions isolated;
        isolated.isolate = ReadOptions::Isolation::always;
        CHECK_FALSE(structured_spectrum(info, isolated, owned, nullptr).side_by_side);
    }
}

TEST_CASE("structured: a broken part fails the row with the first failure in the structure's order") {
    const SavedBlasThreads restore;
    std::vector<Pair> ps = pairs();
    ps[1].B(2, 3) = ps[1].B(3, 2) = std::numeric_limits<double>::quiet_NaN();  // p1/B (7×7): the first broken one
    ps[3].A(0, 0) = std::numeric_limits<double>::infinity();                 // p3/A (33×33): broken too, later
    Eigen::MatrixXd dense = dense_member();                                  // p1_dense (45×45): and this one
    dense(5, 5) = std::numeric_limits<double>::quiet_NaN();
    File f("basinvol_squares_broken");
    write_network(f, ps, dense);
    // A broken diagonal after a broken dense member, and one before.
    f.group("/after", "blocks");
    f.matrix("/after/a_dense", dense, false);
    f.diagonal("/after/b_diag", {1.0, std::numeric_limits<double>::quiet_NaN(), 2.0});
    f.group("/before", "blocks");
    f.diagonal("/before/a_diag", {1.0, std::numeric_limits<double>::quiet_NaN(), 2.0});
    f.matrix("/before/b_dense", dense, false);
    f.matrix("/before/c_dense", dense_member(), false);
    const HessianInfo net = f.listed("/net");
    auto listed = [&](const std::string& name) {
        auto list = list_hessians(parse_source(net.file + ":" + name));
        REQUIRE(list.size() == 1);
        return list[0].info;
    };
    const HessianInfo after = listed("/after"), before = listed("/before");
    for (int threads : {1, 2}) {
        CAPTURE(threads);
        set_blas_threads(threads);
        for (int repeat = 0; repeat < 5; ++repeat) {
            const std::string message = failure_of(net);
            CHECK(message.find("/net/p1/B") != std::string::npos);
            CHECK(message.find("non-finite") != std::string::npos);
            CHECK(failure_of(after).find("/after/a_dense") != std::string::npos);
            CHECK(failure_of(before).find("/before/a_diag") != std::string::npos);
            CHECK(blas_threads() == threads);
        }
    }
}

// Σ_i s_i·(A_i ⊗ B_i) ⊕ D, the matrix a structure stands for.
Eigen::MatrixXd twin_of(const std::vector<std::pair<double, std::pair<Eigen::MatrixXd, Eigen::MatrixXd>>>& pairs,
                        const Eigen::MatrixXd& dense) {
    Eigen::Index n = dense.rows();
    for (const auto& [s, ab] : pairs) n += ab.first.rows() * ab.second.rows();
    Eigen::MatrixXd t = Eigen::MatrixXd::Zero(n, n);
    Eigen::Index at = 0;
    for (const auto& [s, ab] : pairs) {
        const auto& [A, B] = ab;
        for (Eigen::Index i = 0; i < A.rows(); ++i)
            for (Eigen::Index j = 0; j < A.cols(); ++j)
                t.block(at + i * B.rows(), at + j * B.rows(), B.rows(), B.cols()) = s * A(i, j) * B;
        at += A.rows() * B.rows();
    }
    t.block(at, at, dense.rows(), dense.cols()) = dense;
    return t;
}

TEST_CASE("structured: square parts side by side give the dense twin's row on adversarial spectra") {
    // Solved side by side (asserted), the row must be the expanded matrix's
    // dense row: products running down through the cut (0.3^i), a hidden
    // saddle (a tiny negative β under large α), a negative scale with tied
    // eigenvalues and exact zeros, and a dense member with a saddle and zeros.
    const SavedBlasThreads restore;
    set_blas_threads(2);
    std::vector<double> through(80), saddle_b = {1.0, 0.3, -1e-5, 0.0}, ties = geometric(60, 2, 1e-2);
    for (std::size_t i = 0; i < through.size(); ++i) through[i] = std::pow(0.3, static_cast<double>(i));
    ties[1] = ties[0];
    ties[58] = ties[59] = 0;
    std::vector<double> saddle_a = geometric(70, 1e2, 1e-1);
    saddle_a[69] = saddle_a[68] = 0;
    std::vector<double> member = geometric(50, 5, 1e-6);
    member[10] = -0.2;
    member[49] = 0;
    const std::vector<std::pair<double, std::pair<Eigen::MatrixXd, Eigen::MatrixXd>>> pairs = {
        {1.0, {with_spectrum(through, 21), with_spectrum({1.0, 0.3, 0.09}, 22)}},
        {1.0, {with_spectrum(saddle_a, 23), with_spectrum(saddle_b, 24)}},
        {-0.7, {with_spectrum(ties, 25), with_spectrum({3.0, 1.0, 1.0}, 26)}},
    };
    const Eigen::MatrixXd dense = with_spectrum(member, 27);
    File f("basinvol_squares_twin");
    f.group("/net", "blocks");
    for (std::size_t i = 0; i < pairs.size(); ++i) {
        const std::string g = "/net/p" + std::to_string(i);
        f.group(g, "kron", pairs[i].first);
        f.matrix(g + "/A", pairs[i].second.first, false);
        f.matrix(g + "/B", pairs[i].second.second, false);
    }
    f.matrix("/net/p3_dense", dense, false);
    const Eigen::MatrixXd twin = twin_of(pairs, dense);
    f.matrix("/twin", 0.5 * (twin + twin.transpose()), false);
    const HessianInfo net = f.listed("/net");
    auto list = list_hessians(parse_source(net.file + ":/twin"));
    REQUIRE(list.size() == 1);

    AnalyzeOptions opt;
    opt.side_by_side = owned;
    REQUIRE(structured_spectrum(net, opt.read, owned, nullptr).side_by_side);
    const Row row = analyze(net, opt), want = analyze(list[0].info, opt);
    REQUIRE(row.ok);
    REQUIRE(want.ok);
    CHECK(row.method == "structured");
    CHECK(want.method == "dense");
    CHECK(row.n == want.n);
    CHECK(row.rank == want.rank);
    CHECK(row.dim == want.dim);
    CHECK(row.dim_low == want.dim_low);
    CHECK(row.dim_high == want.dim_high);
    CHECK(row.negative == want.negative);
    CHECK(row.negative >= 70);  // the hidden saddle's products, the negative scale's and the member's
    CHECK(row.cut_rule == want.cut_rule);
    CHECK(row.warnings == want.warnings);
    CHECK(row.tol == doctest::Approx(want.tol).epsilon(1e-9));
    CHECK(std::abs(row.log_volume - want.log_volume) <=
          row.log_volume_error + want.log_volume_error + 1e-12 * std::abs(want.log_volume));
}

namespace {

// A structure's row against its dense twin's: the counts and band equal, the
// cut's tol to rounding, the log-volumes within both error bars.
void check_twin_row(const Row& row, const Row& want) {
    CHECK(row.rank == want.rank);
    CHECK(row.rank > 0);
    CHECK(row.dim_low == want.dim_low);
    CHECK(row.dim_high == want.dim_high);
    CHECK(row.negative == want.negative);
    CHECK(row.tol == doctest::Approx(want.tol).epsilon(1e-9));
    CHECK(std::abs(row.log_volume - want.log_volume) <=
          row.log_volume_error + want.log_volume_error + 1e-12 * std::abs(want.log_volume));
}

}  // namespace

TEST_CASE("structured: skew parts give the dense twin's asymmetry, and a pair whose skew parts its values miss is refused") {
    // A ⊗ B with A and B skew is symmetric (its twin's asymmetry is 0) and
    // has values ±‖a‖·‖b‖, while the factors' symmetric parts are 0: the
    // values miss all of it, refused however far max_asymmetry is raised (it
    // is not an asymmetry), as is a pair whose skew parts make a quarter of
    // its symmetric part. A ⊗ B with A skew and B symmetric, and a skew dense
    // member, are skew: asymmetry 2, accepted under an infinite limit. Both
    // factors slightly skew: the twin's asymmetry, and a floor over the
    // A_k ⊗ B_k the values miss.
    Eigen::MatrixXd ka(2, 2), kb(2, 2), sb(2, 2), kd(3, 3);
    ka << 0, 1, -1, 0;
    kb << 0, 2, -2, 0;
    sb << 1, 0.5, 0.5, 3;
    kd << 0, 1, 2, -1, 0, 3, -2, -3, 0;
    File f("structured_skew");
    f.group("/skew_skew", "kron", 1.5);
    f.matrix("/skew_skew/A", ka, false);
    f.matrix("/skew_skew/B", kb, false);
    f.group("/skew_sym", "kron", 1.0);
    f.matrix("/skew_sym/A", ka, false);
    f.matrix("/skew_sym/B", sb, false);
    f.group("/blocks", "blocks", 1.0);
    f.matrix("/blocks/a", kd, false);
    // Both factors with symmetric and skew parts: the twin's symmetric part
    // holds A_s ⊗ B_s and A_k ⊗ B_k, its norm both.
    Eigen::MatrixXd ga(2, 2), gb(2, 2);
    ga << 1, 2, 0, 3;
    gb << 2, 1, -1, 1;
    f.group("/general", "kron", 0.5);
    f.matrix("/general/A", ga, false);
    f.matrix("/general/B", gb, false);
    Eigen::MatrixXd na(2, 2), nb(2, 2);
    na << 1, 2 + 1e-4, 2 - 1e-4, 3;
    nb << 2, 1 - 1e-4, 1 + 1e-4, 1;
    f.group("/nearly", "kron", 0.5);
    f.matrix("/nearly/A", na, false);
    f.matrix("/nearly/B", nb, false);
    AnalyzeOptions o;
    o.read.max_asymmetry = std::numeric_limits<double>::infinity();
    const auto kron = [](const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
        Eigen::MatrixXd k(a.rows() * b.rows(), a.cols() * b.cols());
        for (Eigen::Index i = 0; i < a.rows(); ++i)
            for (Eigen::Index j = 0; j < a.cols(); ++j) k.block(i * b.rows(), j * b.cols(), b.rows(), b.cols()) = a(i, j) * b;
        return k;
    };
    const Eigen::MatrixXd twin = 1.5 * kron(ka, kb);
    REQUIRE((twin - twin.transpose()).norm() == 0);
    for (const char* path : {"/skew_skew", "/general"}) {
        CAPTURE(path);
        const Row r = analyze(f.listed(path), o);
        REQUIRE_FALSE(r.ok);
        CHECK(r.error.find(std::string(path) + ": the Kronecker factors A and B are both far from symmetric") !=
              std::string::npos);
        CHECK(r.error.find("over 0.001;") != std::string::npos);
    }
    for (const char* path : {"/skew_sym", "/blocks", "/nearly"}) {
        CAPTURE(path);
        const std::string p = path;
        const Eigen::MatrixXd m = p == "/blocks"   ? kd
                                  : p == "/nearly" ? Eigen::MatrixXd(0.5 * kron(na, nb))
                                                   : Eigen::MatrixXd(kron(ka, sb));
        const Row r = analyze(f.listed(path), o);
        REQUIRE(r.ok);
        CHECK(r.asymmetry == doctest::Approx((m - m.transpose()).norm() / m.norm()).epsilon(1e-9));
        CHECK(r.noise_floor >= (m - m.transpose()).norm() * (1 - 1e-12));
    }
    // The A_k ⊗ B_k the values of /nearly miss lies under its floor.
    const Eigen::MatrixXd missed = 0.5 * kron((na - na.transpose()) / 2, (nb - nb.transpose()) / 2);
    CHECK(analyze(f.listed("/nearly"), o).noise_floor >= missed.norm());
}

TEST_CASE("structured: values past 1e154 give the dense twin's row; a norm past DBL_MAX is an error row") {
    // ‖H‖_F sums the squares of a structure's values: past 1e154 they
    // overflow double, and an infinite norm made every direction flat.
    File f("structured_range");
    const Eigen::MatrixXd I2 = Eigen::MatrixXd::Identity(2, 2);
    Eigen::MatrixXd G = Eigen::MatrixXd::Zero(3, 2);
    G(0, 0) = 1e100;
    G(1, 1) = 1e99;
    G(2, 0) = 3e99;
    f.diagonal("/d", {1e155, 1, 0});
    f.matrix("/twin_d", Eigen::Vector3d(1e155, 1, 0).asDiagonal().toDenseMatrix(), false);
    f.group("/k", "kron", 1e300);
    f.matrix("/k/A", I2, false);
    f.matrix("/k/B", Eigen::Vector2d(1, 1e-3).asDiagonal().toDenseMatrix(), false);
    f.matrix("/twin_k", 1e300 * Eigen::Vector4d(1, 1e-3, 1, 1e-3).asDiagonal().toDenseMatrix(), false);
    f.group("/g", "factor", 1e10);
    f.matrix("/g/G", G, false);
    f.matrix("/twin_g", 1e10 * (G.transpose() * G), false);
    f.diagonal("/huge", {1.5e308, 1.5e308});
    f.matrix("/twin_huge", 1.5e308 * I2, false);
    // A Gram matrix at the top of double's range: ε·‖s·K‖ must not overflow
    // where ‖H‖_F does not.
    f.group("/top", "factor", 1.5);
    f.matrix("/top/G", Eigen::MatrixXd::Constant(1, 1, 1e154), false);
    f.matrix("/twin_top", Eigen::MatrixXd::Constant(1, 1, 1.5e308), false);
    // A tiny scale over large factors: s·‖A‖·‖B‖ is formed without ‖A‖·‖B‖.
    const Eigen::MatrixXd big = 1e200 * Eigen::Vector2d(1, 1e-3).asDiagonal().toDenseMatrix();
    f.group("/tiny", "kron", 1e-300);
    f.matrix("/tiny/A", big, false);
    f.matrix("/tiny/B", big, false);
    f.matrix("/twin_tiny", 1e100 * Eigen::Vector4d(1, 1e-3, 1e-3, 1e-6).asDiagonal().toDenseMatrix(), false);
    // Values whose squares underflow: ‖H‖_F must not come out 0 (the zero matrix).
    f.diagonal("/small", {1e-160, 3e-161, 0});
    f.matrix("/twin_small", Eigen::Vector3d(1e-160, 3e-161, 0).asDiagonal().toDenseMatrix(), false);
    const AnalyzeOptions opt;
    for (const std::string name : {"d", "k", "g", "huge", "top", "tiny", "small"}) {
        CAPTURE(name);
        const HessianInfo info = f.listed("/" + name);
        auto twin = list_hessians(parse_source(info.file + ":/twin_" + name));
        REQUIRE(twin.size() == 1);
        const Row row = analyze(info, opt), want = analyze(twin[0].info, opt);
        // Only ‖H‖_F past DBL_MAX (1.5e308 twice) is refused, on both sides.
        CHECK(row.ok == (name != "huge"));
        CHECK(want.ok == (name != "huge"));
        if (!row.ok || !want.ok) {
            CHECK(row.error.find("overflows float64") != std::string::npos);
            CHECK(want.error.find("overflows float64") != std::string::npos);
            continue;
        }
        check_twin_row(row, want);
    }
}

TEST_CASE("structured: Kronecker and factor scalings across double's range give the dense twin's row (randomized)") {
    // The partial products of a structure (s·α, α·β, GᵀG) may leave double's
    // range where H's values do not: balance_kron and gram_shift must move
    // powers of two so that every row is the twin's, whose values are formed
    // here with each factor's exponent kept apart (frexp, then one ldexp), so
    // that no partial product leaves double's range. Every case puts one
    // partial product out of range (2^±1030 to 2^±1240) and H's values
    // within 2^±250.
    const auto product = [](double x, double y, double z, int e = 0) {  // x·y·z·2^e, rounded where it lands
        int ex = 0, ey = 0, ez = 0;
        const double m = std::frexp(x, &ex) * std::frexp(y, &ey) * std::frexp(z, &ez);
        return std::ldexp(m, ex + ey + ez + e);
    };
    std::mt19937_64 rng(20261204);
    std::uniform_int_distribution<int> coin(0, 1), size(1, 4);
    std::uniform_real_distribution<double> unit(0.5, 2.0);
    const auto between = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    const auto spectrum = [&](int n) {  // exact zeros, negatives and O(1) values, well apart from the cut
        std::vector<double> v(static_cast<std::size_t>(n));
        for (double& x : v) {
            const int kind = size(rng);
            x = kind == 1 ? 0.0 : kind == 2 ? -unit(rng) : unit(rng);
        }
        if (std::all_of(v.begin(), v.end(), [](double x) { return x == 0; })) v[0] = 1;
        return v;
    };
    struct Case {
        std::string name, kind;
        double scale;
        Eigen::MatrixXd a, b;  // kron: A, B; factor: G in a
        Eigen::MatrixXd twin;
    };
    std::vector<Case> cases;
    for (int trial = 0; trial < 32; ++trial) {
        Case c;
        c.name = "c" + std::to_string(trial);
        const int sign = coin(rng) ? 1 : -1;
        if (trial % 2 == 0) {
            // d is s·α's exponent or α·β's; t = H's; each factor's within ±1000
            const int d = between(1030, 1240), t = between(d - 1000, 250), half = between(d / 2 - 20, d / 2 + 20);
            int es = sign * half, ea = sign * (d - half), eb = sign * (t - d);
            if (coin(rng)) std::swap(es, eb);  // then α·β is the one out of range
            c.kind = "kron";
            c.scale = std::ldexp(unit(rng), es);
            const int na = size(rng) + 1, nb = size(rng) + 1;
            c.a = std::ldexp(1.0, ea) * with_spectrum(spectrum(na), 100 + trial);
            c.b = std::ldexp(1.0, eb) * with_spectrum(spectrum(nb), 200 + trial);
            c.a = 0.5 * (c.a + c.a.transpose()).eval();
            c.b = 0.5 * (c.b + c.b.transpose()).eval();
            c.twin.resize(na * nb, na * nb);
            for (int i = 0; i < na; ++i)
                for (int j = 0; j < na; ++j)
                    for (int k = 0; k < nb; ++k)
                        for (int l = 0; l < nb; ++l)
                            c.twin(i * nb + k, j * nb + l) = product(c.scale, c.a(i, j), c.b(k, l));
        } else {
            // GᵀG's exponent 2·eg is out of range; s = 2^(t − 2·eg) brings H back
            const int eg = between(515, 620), t = between(2 * eg - 1000, 250);
            c.kind = "factor";
            c.scale = std::ldexp(unit(rng), sign * (t - 2 * eg));
            const int m = size(rng) + 1, n = size(rng) + 2;
            const Eigen::MatrixXd R = Eigen::MatrixXd::Random(m, n);
            c.a = R * std::ldexp(1.0, sign * eg);  // exact: R's entries stay normal
            REQUIRE(c.a * std::ldexp(1.0, -sign * eg) == R);
            const Eigen::MatrixXd gram = R.transpose() * R;  // GᵀG = 2^(2·eg)·RᵀR
            c.twin.resize(n, n);
            for (int i = 0; i < n; ++i)
                for (int j = 0; j < n; ++j) c.twin(i, j) = product(c.scale, gram(i, j), 1.0, 2 * sign * eg);
        }
        cases.push_back(std::move(c));
    }
    File f("structured_range_random");
    for (const Case& c : cases) {
        f.group("/" + c.name, c.kind, c.scale);
        if (c.kind == "kron") {
            f.matrix("/" + c.name + "/A", c.a, false);
            f.matrix("/" + c.name + "/B", c.b, false);
        } else {
            f.matrix("/" + c.name + "/G", c.a, false);
        }
        f.matrix("/twin_" + c.name, c.twin, false);
    }
    const AnalyzeOptions opt;
    for (const Case& c : cases) {
        CAPTURE(c.name);
        CAPTURE(c.kind);
        CAPTURE(c.scale);
        const HessianInfo info = f.listed("/" + c.name);
        auto twin = list_hessians(parse_source(info.file + ":/twin_" + c.name));
        REQUIRE(twin.size() == 1);
        const Row row = analyze(info, opt), want = analyze(twin[0].info, opt);
        REQUIRE(want.ok);
        CHECK(row.ok);
        if (!row.ok) {
            CAPTURE(row.error);
            continue;
        }
        check_twin_row(row, want);
    }
}
