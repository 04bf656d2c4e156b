// Square parts (dense members, Kronecker factors) read and solved after the
// structure's walk, two at a time when the job has two BLAS threads or more:
// the spectra, norms and errors must be the one-at-a-time answer bit for bit
// (each part runs LAPACK on one thread either way), every part's eigenvalues
// must match an independent solver, and a broken part must fail the row with
// the first failure in the structure's order, whatever the threads.
#include "support.hpp"

#include <basinvol/batch/scheduler.hpp>
#include <basinvol/error.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/io/source.hpp>
#include <basinvol/solve/structured.hpp>

#include <doctest/doctest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
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
        const hid_t type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, structure.size());
        const hid_t scalar = H5Screate(H5S_SCALAR);
        const hid_t a = H5Acreate2(g, "structure", type, scalar, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(H5Awrite(a, type, structure.data()) >= 0);
        H5Aclose(a);
        if (scale != 1) {
            const hid_t s = H5Acreate2(g, "scale", H5T_NATIVE_DOUBLE, scalar, H5P_DEFAULT, H5P_DEFAULT);
            REQUIRE(H5Awrite(s, H5T_NATIVE_DOUBLE, &scale) >= 0);
            H5Aclose(s);
        }
        H5Sclose(scalar);
        H5Tclose(type);
        H5Gclose(g);
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
    p.push_back({with_spectrum(geometric(40, 1, 1e-12), 1), with_spectrum(geometric(25, 3, 1e-3), 2), 1.0, false});
    std::vector<double> wide = geometric(60, 10, 1e-5);
    wide[59] = wide[58] = 0;
    p.push_back({with_spectrum(wide, 3), with_spectrum({2, 1, 1, 0.5, 0, 0, -1e-3}, 4), 1.0, true});
    p.push_back({with_spectrum({4, 2, 1, 0.25, 0}, 5), with_spectrum(geometric(50, 1, 1e-6), 6), -0.7, false});
    p.push_back({with_spectrum(geometric(33, 2, 1e-2), 7), with_spectrum(geometric(33, 1, 1e-4), 8), 1.0, true});
    p.push_back({Eigen::MatrixXd::Constant(1, 1, 3.0), with_spectrum(geometric(12, 1, 1e-2), 9), 2.0, false});
    return p;
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

// A dense member between the pairs, larger than some factors (so that, largest
// first, it is solved before them).
Eigen::MatrixXd dense_member() {
    std::vector<double> e = geometric(45, 5, 1e-4);
    e[3] = -0.5;
    e[44] = e[43] = 0;
    return with_spectrum(e, 10);
}

// Ascending eigenvalues of a matrix as stored (float32 rounded first).
std::vector<double> stored_eigenvalues(const Eigen::MatrixXd& m, bool f32) {
    const Eigen::MatrixXd s = f32 ? Eigen::MatrixXd(m.cast<float>().cast<double>()) : m;
    const Eigen::VectorXd e = eigenvalues_of(s);
    return {e.data(), e.data() + e.size()};
}

// Restores the BLAS thread count on every way out of a test.
struct SavedBlasThreads {
    int saved = blas_threads();
    ~SavedBlasThreads() { set_blas_threads(saved); }
};

}  // namespace

TEST_CASE("structured: square parts two at a time give the one-at-a-time spectrum, bit for bit") {
    const SavedBlasThreads restore;
    const std::vector<Pair> ps = pairs();
    const Eigen::MatrixXd dense = dense_member();
    File f("basinvol_factors");
    write_network(f, ps, dense);
    const HessianInfo info = f.listed("/net");

    set_blas_threads(1);
    const StructuredSpectrum one = structured_spectrum(info, {}, nullptr);
    CHECK(blas_threads() == 1);
    REQUIRE(one.parts.size() == ps.size() + 1);
    // Each part against an independent solver (Eigen), within LAPACK's backward error.
    const double eps = std::numeric_limits<double>::epsilon();
    const std::vector<double> want_dense = stored_eigenvalues(dense, false);
    REQUIRE(one.parts[2].values.size() == want_dense.size());
    for (std::size_t j = 0; j < want_dense.size(); ++j)
        CHECK(std::abs(one.parts[2].values[j] - want_dense[j]) <= 64 * eps * dense.norm() * 45);
    for (std::size_t i = 0, k = 0; i < one.parts.size(); ++i) {
        const SpectrumPart& part = one.parts[i];
        if (!part.kron) continue;
        const Pair& p = ps[k++];
        CAPTURE(i);
        CHECK(part.scale == p.scale);
        for (const auto& [got, m] : {std::pair{&part.alpha, &p.A}, std::pair{&part.beta, &p.B}}) {
            const std::vector<double> want = stored_eigenvalues(*m, p.f32);
            REQUIRE(got->size() == want.size());
            const double bound = 64 * eps * m->norm() * double(m->rows());
            for (std::size_t j = 0; j < want.size(); ++j) CHECK(std::abs((*got)[j] - want[j]) <= bound);
        }
    }

    for (int threads : {2, 3, 4}) {
        CAPTURE(threads);
        set_blas_threads(threads);
        for (int repeat = 0; repeat < 3; ++repeat) {
            const StructuredSpectrum two = structured_spectrum(info, {}, nullptr);
            CHECK(blas_threads() == threads);
            REQUIRE(two.parts.size() == one.parts.size());
            // threads / 2 BLAS threads per part: one at 2 and 3 threads, so the same
            // bits; at 4, two each, so the same values to rounding
            auto same = [&](const std::vector<double>& x, const std::vector<double>& y) {
                if (threads < 4) return x == y;
                if (x.size() != y.size()) return false;
                for (std::size_t j = 0; j < x.size(); ++j)
                    if (std::abs(x[j] - y[j]) > 1e-12 * std::max(1.0, std::abs(y[j]))) return false;
                return true;
            };
            for (std::size_t i = 0; i < one.parts.size(); ++i) {
                CHECK(two.parts[i].kron == one.parts[i].kron);
                CHECK(same(two.parts[i].values, one.parts[i].values));
                CHECK(same(two.parts[i].alpha, one.parts[i].alpha));
                CHECK(same(two.parts[i].beta, one.parts[i].beta));
            }
            if (threads < 4) {
                CHECK(two.frobenius == one.frobenius);
                CHECK(two.value_error == one.value_error);
            }
            CHECK(two.asymmetry == one.asymmetry);
            CHECK(two.spectrum.n == one.spectrum.n);
        }
    }
}

TEST_CASE("structured: a broken square part fails the row with the first failure in order") {
    const SavedBlasThreads restore;
    std::vector<Pair> ps = pairs();
    ps[1].B(2, 3) = ps[1].B(3, 2) = std::numeric_limits<double>::quiet_NaN();  // p1/B (7×7): the first broken one
    ps[3].A(0, 0) = std::numeric_limits<double>::infinity();                 // p3/A (33×33): broken too, later
    Eigen::MatrixXd dense = dense_member();                                  // p1_dense (45×45): and this one
    dense(5, 5) = std::numeric_limits<double>::quiet_NaN();
    File f("basinvol_factors_broken");
    write_network(f, ps, dense);
    const HessianInfo info = f.listed("/net");
    for (int threads : {1, 2}) {
        set_blas_threads(threads);
        for (int repeat = 0; repeat < 5; ++repeat) {
            CAPTURE(threads);
            std::string message;
            try {
                structured_spectrum(info, {}, nullptr);
            } catch (const InputError& e) {
                message = e.what();
            }
            CHECK(message.find("/net/p1/B") != std::string::npos);
            CHECK(message.find("non-finite") != std::string::npos);
            CHECK(blas_threads() == threads);
        }
    }
}
