// Reading: sources, layouts, attributes, and one clear error per bad file.
#include <basinvol/analyze.hpp>
#include <basinvol/error.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/io/writer.hpp>

#include "../src/io/hdf5_detail.hpp"

#include <doctest/doctest.h>
#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <atomic>

using namespace basinvol;

namespace {
const std::string data = BASINVOL_TESTDATA;

std::vector<Row> rows_of(const std::string& spec, AnalyzeOptions opt = {}) {
    Source s = parse_source(spec);
    Row err;
    auto list = expand_source(s, &err);
    if (list.empty()) return {err};
    std::vector<Row> out;
    for (const auto& listed : list) out.push_back(analyze_listed(listed, opt));
    return out;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("SOURCE parsing: FILE, FILE:PATH, and colons in file names") {
    Source a = parse_source(data + "/ok.saddle.h5");
    CHECK(a.file == data + "/ok.saddle.h5");
    CHECK(a.path.empty());
    Source b = parse_source(data + "/ok.saddle.h5:/hessian");
    CHECK(b.file == data + "/ok.saddle.h5");
    CHECK(b.path == "/hessian");
    Source c = parse_source("missing.h5:/x");
    CHECK(c.file == "missing.h5");
    CHECK(c.path == "/x");
    // Nothing exists and the text does not read as FILE:PATH: the whole text
    // is the missing file, not the part before its first ':'.
    for (const char* whole : {"d:ir/missing.h5", "a:b.h5x", "notes:v2"}) {
        CAPTURE(whole);
        const Source w = parse_source(whole);
        CHECK(w.file == whole);
        CHECK(w.path.empty());
    }
    CHECK(parse_source("run.hdf5:checkpoints").file == "run.hdf5");
    // A directory before the ':' is not the file either.
    const Source in_dir = parse_source(data + ":x/run.h5");
    CHECK(in_dir.file == data + ":x/run.h5");
    CHECK(in_dir.path.empty());
    CHECK_THROWS_AS(parse_source(""), UsageError);
    // Beside a file `a`, `a:b.h5:/x` is /x in the file a:b.h5 (the longest
    // file name the text starts with), as rows of a:b.h5 are named; an
    // object name may hold ':' too.
    {
        const std::string dir = "source_colons.tmp";
        std::filesystem::remove_all(dir);
        std::filesystem::create_directory(dir);
        std::ofstream(dir + "/a").put('x');
        std::ofstream(dir + "/a:b.h5").put('x');
        const Source longest = parse_source(dir + "/a:b.h5:/checkpoints/H");
        CHECK(longest.file == dir + "/a:b.h5");
        CHECK(longest.path == "/checkpoints/H");
        const Source in_a = parse_source(dir + "/a:/x:y");
        CHECK(in_a.file == dir + "/a");
        CHECK(in_a.path == "/x:y");
        std::filesystem::remove_all(dir);
    }
    // One object, one spelling: repeated and trailing slashes name /hessian.
    for (const char* path : {"://hessian", ":/hessian/", "://hessian//", ":hessian", ":/./hessian", ":./hessian/."}) {
        CAPTURE(path);
        const auto listed = list_hessians(parse_source(data + "/ok.saddle.h5" + path));
        REQUIRE(listed.size() == 1);
        CHECK(listed[0].info.dataset == "/hessian");
        CHECK(listed[0].info.source() == data + "/ok.saddle.h5:/hessian");
    }
}

TEST_CASE("a file read from disk gives the closed form") {
    auto rows = rows_of(data + "/ok.parabola_xy_in_r3.h5");
    REQUIRE(rows.size() == 1);
    REQUIRE(rows[0].ok);
    CHECK(rows[0].dim == 1);
    CHECK(rows[0].log_volume == doctest::Approx(std::log(M_PI)).epsilon(1e-14));
    CHECK(rows[0].dataset == "/hessian");
    auto t = rows_of(data + "/ok.parabola_rotated_T05.h5:/hessian");
    REQUIRE(t[0].ok);
    CHECK(t[0].threshold == 0.5);
    CHECK(t[0].log_volume == doctest::Approx(std::log(M_PI / 2)).epsilon(1e-12));
}

TEST_CASE("big-endian float32 and float64 read right; the stored type sets eps") {
    auto rows = rows_of(data + "/ok.big_endian.h5");
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].dataset == "/f32be");
    CHECK(rows[0].stored_type == "float32");
    CHECK(rows[1].stored_type == "float64");
    for (const auto& r : rows) {
        REQUIRE(r.ok);
        CHECK(r.rank == 4);
        CHECK(r.dim == 2);
    }
    // 5·3·1·0.5 → log V = log ω_4 + 2 log 2 − ½ log 7.5
    double expect = std::log(M_PI * M_PI / 2) + 2 * std::log(2.0) - 0.5 * std::log(7.5);
    CHECK(rows[1].log_volume == doctest::Approx(expect).epsilon(1e-12));
    CHECK(rows[0].log_volume == doctest::Approx(expect).epsilon(1e-6));
    CHECK(rows[0].tol > rows[1].tol * 1e6);  // float32 eps vs float64 eps
}

TEST_CASE("chunked gzip deep in groups, soft links, metadata skipped") {
    auto rows = rows_of(data + "/ok.chunked_gzip.h5");
    // The soft link and the dataset are one object: listed once. /run/losses is 1-D metadata.
    REQUIRE(rows.size() == 1);
    REQUIRE(rows[0].ok);
    CHECK(rows[0].rank == 30);
    CHECK(rows[0].dim == 34);
    auto direct = rows_of(data + "/ok.chunked_gzip.h5:/run/a/b/hessian");
    auto linked = rows_of(data + "/ok.chunked_gzip.h5:/link_to_hessian");
    REQUIRE(direct[0].ok);
    REQUIRE(linked[0].ok);
    CHECK(direct[0].log_volume == linked[0].log_volume);
}

TEST_CASE("shuffle + gzip chunks with partial edges read exactly like their contiguous twins") {
    for (const char* t : {"f64", "f32"}) {
        CAPTURE(t);
        auto c = rows_of(data + "/ok.shuffle_gzip_edges.h5:/chunked/" + t);
        auto p = rows_of(data + "/ok.shuffle_gzip_edges.h5:/plain/" + t);
        REQUIRE(c[0].ok);
        REQUIRE(p[0].ok);
        CHECK(c[0].rank == 23);
        CHECK(c[0].negative == 3);
        CHECK(c[0].log_volume == p[0].log_volume);  // the same bytes: the same number
    }
}

TEST_CASE("a group of checkpoints expands in name order with its attributes") {
    auto rows = rows_of(data + "/example_checkpoints.h5:/checkpoints");
    REQUIRE(rows.size() == 5);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        REQUIRE(rows[i].ok);
        REQUIRE(rows[i].attrs.step.has_value());
        CHECK(*rows[i].attrs.step == doctest::Approx(100.0 * i));
        CHECK(rows[i].attrs.loss.has_value());
    }
    CHECK(rows[0].dataset == "/checkpoints/step_0000");
}

TEST_CASE("integer data is read exactly") {
    auto rows = rows_of(data + "/ok.integer.h5");
    REQUIRE(rows[0].ok);
    CHECK(rows[0].rank == 2);  // [[2,1],[1,2]] has eigenvalues 3 and 1
    CHECK(rows[0].log_volume == doctest::Approx(std::log(M_PI) + std::log(2.0) - 0.5 * std::log(3.0)));
}

TEST_CASE("small asymmetry is symmetrized and reported") {
    auto rows = rows_of(data + "/ok.near_symmetric.h5");
    REQUIRE(rows[0].ok);
    CHECK(rows[0].asymmetry > 0);
    CHECK(rows[0].asymmetry < 1e-8);
    CHECK(rows[0].warnings.has(Warning::symmetrized));
}

TEST_CASE("every bad input gets one error naming the file, the rule and the value") {
    struct Case {
        const char* file;
        const char* what;
    };
    Case cases[] = {
        {"bad.nan.h5", "non-finite value nan at [1, 2]"},
        {"bad.inf.h5", "non-finite value inf at [0, 2]"},
        {"bad.asymmetric.h5", "not symmetric"},
        {"bad.nonsquare.h5", "not square: shape 3x4"},
        {"bad.3d.h5", "3-D with shape 2x2x2"},
        {"bad.empty.h5", "empty: shape 0x0"},
        {"bad.string.h5", "type is string"},
        {"bad.compound.h5", "type is compound"},
        {"bad.empty_group.h5", "no Hessian found"},
        {"bad.huge_declared.h5", "n = 300000 needs 720 GB"},
        {"bad.not_hdf5.h5", "not an HDF5 file"},
        {"bad.truncated.h5", "cannot open HDF5 file"},
        {"does_not_exist.h5", "No such file"},
        {"", "it is a directory"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.file);
        std::string path = data + "/" + c.file;
        auto rows = rows_of(path);
        REQUIRE(rows.size() == 1);
        CHECK_FALSE(rows[0].ok);
        CHECK(contains(rows[0].error, c.file[0] ? c.file : data));
        CHECK(contains(rows[0].error, c.what));
        CHECK(rows[0].error.find('\n') == std::string::npos);
    }
}

TEST_CASE("a missing path inside a file names the path") {
    auto rows = rows_of(data + "/ok.saddle.h5:/no/such");
    REQUIRE(rows.size() == 1);
    CHECK_FALSE(rows[0].ok);
    CHECK(contains(rows[0].error, "ok.saddle.h5:/no"));
    CHECK(contains(rows[0].error, "no such object"));
}

TEST_CASE("one broken member: the others are still measured") {
    auto rows = rows_of(data + "/bad.one_broken_member.h5");
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].ok);
    CHECK_FALSE(rows[1].ok);
    CHECK(contains(rows[1].error, "/checkpoints/step_0001"));
    CHECK(rows[2].ok);
}

TEST_CASE("a matrix over the memory budget is refused before allocating") {
    AnalyzeOptions opt;
    opt.read.max_bytes = 100;  // 7x7 doubles = 392 bytes
    auto rows = rows_of(data + "/ok.saddle.h5", opt);
    REQUIRE(rows.size() == 1);
    CHECK_FALSE(rows[0].ok);
    CHECK(contains(rows[0].error, "over the budget"));
}

namespace {
std::string bytes_of(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<Row> rows_of_image(std::string bytes, const std::string& path = "") {
    Source s = image_source(std::move(bytes), "image.h5", path);
    Row err;
    auto list = expand_source(s, &err);
    if (list.empty()) return {err};
    std::vector<Row> out;
    for (const auto& listed : list) out.push_back(analyze_listed(listed, {}));
    return out;
}
}  // namespace

TEST_CASE("an HDF5 image in memory reads like its file") {
    for (const char* name : {"ok.parabola_xy_in_r3.h5", "ok.chunked_gzip.h5", "ok.big_endian.h5"}) {
        CAPTURE(name);
        auto from_file = rows_of(data + "/" + name);
        auto from_image = rows_of_image(bytes_of(data + "/" + name));
        REQUIRE(from_file.size() == from_image.size());
        for (std::size_t i = 0; i < from_file.size(); ++i) {
            REQUIRE(from_image[i].ok);
            CHECK(from_image[i].source == "image.h5:" + from_file[i].dataset);
            CHECK(from_image[i].rank == from_file[i].rank);
            CHECK(from_image[i].log_volume == from_file[i].log_volume);
        }
    }
    auto one = rows_of_image(bytes_of(data + "/ok.chunked_gzip.h5"), "/link_to_hessian");
    REQUIRE(one.size() == 1);
    CHECK(one[0].ok);
}

TEST_CASE("a broken image gets the same errors as a broken file, naming the image") {
    CHECK(contains(rows_of_image("")[0].error, "image.h5: not an HDF5 file"));
    CHECK(contains(rows_of_image(bytes_of(data + "/bad.not_hdf5.h5"))[0].error, "not an HDF5 file"));
    CHECK(contains(rows_of_image(bytes_of(data + "/bad.truncated.h5"))[0].error, "image.h5: cannot open HDF5 file"));
    CHECK(contains(rows_of_image(bytes_of(data + "/bad.nan.h5"))[0].error, "image.h5:/hessian: non-finite value nan"));
    CHECK(contains(rows_of_image(bytes_of(data + "/ok.saddle.h5"), "/missing")[0].error, "image.h5:/missing: no such"));
}

TEST_CASE("a file changed after it was listed is read as it now is, or refused; never into the old shape") {
    // tests/cli/test_faults.py rewrites a file while it is read; here the
    // change lands between listing and reading, deterministically.
    const std::string file =
        (std::filesystem::temp_directory_path() / ("basinvol_changed_" + std::to_string(::getpid()) + ".h5")).string();
    Attributes none;
    write_hessian(file, "/hessian", Eigen::MatrixXd::Identity(5, 5), false, none, WriteMode::create);
    const auto found = list_hessians(parse_source(file));
    REQUIRE(found.size() == 1);
    const std::vector<HessianInfo> list = {found[0].info};
    const FileStamp listed = stamp_file(list[0]);
    CHECK(listed.valid);
    CHECK_NOTHROW(check_unchanged(list[0], listed));
    CHECK(analyze(list[0], {}).ok);
    // Rewritten with a larger matrix: the stamp differs, and the reader
    // refuses the new shape (a read into the listed 5x5 buffer would overflow it).
    write_hessian(file, "/hessian", Eigen::MatrixXd::Identity(9, 9), false, none, WriteMode::create);
    CHECK_THROWS_WITH_AS(check_unchanged(list[0], listed), doctest::Contains("the file changed while it was read"),
                         InputError);
    const Row r = analyze(list[0], {});
    CHECK_FALSE(r.ok);
    CHECK(contains(r.error, "is no longer the 5 x 5 matrix that was listed"));
    // Rewritten with the listed shape: read as it now is, one version.
    write_hessian(file, "/hessian", 2 * Eigen::MatrixXd::Identity(5, 5), false, none, WriteMode::create);
    const Row again = analyze(list[0], {});
    CHECK(again.ok);
    CHECK(again.rank == 5);
    // An in-memory image is read from its bytes, even when its label names a
    // file on disk that now holds another matrix; the image travels beside the
    // listed Hessian, not in its HessianInfo.
    auto image = list_hessians(image_source(bytes_of(file), file));
    REQUIRE(image.size() == 1);
    REQUIRE(image[0].image);
    write_hessian(file, "/hessian", 7 * Eigen::MatrixXd::Identity(5, 5), false, none, WriteMode::create);
    const Row from_image = analyze_listed(image[0], {});
    const Row from_disk = analyze(image[0].info, {});
    REQUIRE(from_image.ok);
    REQUIRE(from_disk.ok);
    CHECK(from_image.log_volume == doctest::Approx(again.log_volume).epsilon(1e-14));
    CHECK(from_disk.log_volume < from_image.log_volume);  // 7·I is narrower than 2·I
    std::remove(file.c_str());
}

TEST_CASE("a file this process holds open for writing is read as its writer left it, and never written by a read") {
    // h5py in the same Python process shares this HDF5 library: its open file
    // is the one every H5Fopen here gets, unflushed writes and all. It may be
    // held through a file handle, or only through a dataset of it (h5py's
    // File object gone, a Dataset kept: the file stays open).
    for (const bool through_dataset : {false, true}) {
        CAPTURE(through_dataset);
        const std::string file = (std::filesystem::temp_directory_path() /
                                  ("basinvol_writer_" + std::to_string(::getpid()) + ".h5")).string();
        hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        REQUIRE(f >= 0);
        const auto write = [&](hid_t at, const char* name, double d) {
            const hsize_t dims[2] = {3, 3};
            const hid_t space = H5Screate_simple(2, dims, nullptr);
            const hid_t set = H5Dcreate2(at, name, H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            const double v[9] = {d, 0, 0, 0, 1, 0, 0, 0, 0};
            REQUIRE(H5Dwrite(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
            H5Sclose(space);
            return set;
        };
        const hid_t kept = write(f, "/H", 2);
        if (through_dataset) {
            CHECK(H5Fclose(f) >= 0);  // the dataset keeps the file open
            f = -1;
        }
        // A forked child (the listing's, a read's) closes its handle on the
        // file: HDF5 would flush the parent's pending writes from the child's
        // stale copy.
        const std::string before = bytes_of(file);
        const auto child = detail::run_in_child([&] {
            detail::Handle g = detail::open_hdf5(file);
            return std::string(g.valid() ? "K" : "E");
        }, 30);
        REQUIRE(child);
        CHECK(child->bytes == "K");
        CHECK(bytes_of(file) == before);
        // This process writes them out before it lists or reads: no read
        // changes the file, and every row is the writer's matrix.
        std::vector<Row> rows = rows_of(file);
        REQUIRE(rows.size() == 1);
        CHECK_MESSAGE(rows[0].ok, rows[0].error);
        CHECK(rows[0].rank == 2);
        if (!through_dataset) {
            H5Dclose(write(f, "/K", 5));
            rows = rows_of(file);
            REQUIRE(rows.size() == 2);
            for (const Row& r : rows) CHECK_MESSAGE(r.ok, r.error);
            CHECK(rows[1].log_volume < rows[0].log_volume);  // /K: diag(5, 1, 0) is narrower than diag(2, 1, 0)
            CHECK(H5Fclose(f) >= 0);
        }
        CHECK(H5Dclose(kept) >= 0);
        CHECK(rows_of(file).size() == (through_dataset ? 1 : 2));
        std::remove(file.c_str());
    }
}

TEST_CASE("writer: an attribute given twice is refused, and a failed attribute leaves no dataset") {
    const std::string file =
        (std::filesystem::temp_directory_path() / ("basinvol_writer_" + std::to_string(::getpid()) + ".h5")).string();
    Attributes none;
    write_hessian(file, "/a", Eigen::MatrixXd::Identity(3, 3), false, none, WriteMode::create);
    Attributes twice;
    twice.name = "typed";
    twice.strings["name"] = "again";
    CHECK_THROWS_WITH_AS(write_hessian(file, "/b", Eigen::MatrixXd::Identity(3, 3), false, twice, WriteMode::append),
                         doctest::Contains("attribute 'name' is given twice"), InputError);
    Attributes bad;  // HDF5 refuses an attribute without a name once the dataset exists
    bad.step = 3;
    bad.numbers[""] = 1;
    CHECK_THROWS_AS(write_hessian(file, "/c", Eigen::MatrixXd::Identity(3, 3), false, bad, WriteMode::append),
                    InputError);
    CHECK_THROWS_AS(write_hessian(file, "/grp/sub/c", Eigen::MatrixXd::Identity(3, 3), false, bad, WriteMode::append),
                    InputError);
    const auto found = list_hessians(parse_source(file));
    REQUIRE(found.size() == 1);  // /a only: neither /b nor a /c without its attributes
    CHECK(found[0].info.dataset == "/a");
    const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    REQUIRE(f >= 0);
    CHECK(H5Lexists(f, "/grp", H5P_DEFAULT) == 0);  // nor the groups it would have sat in
    H5Fclose(f);
    // A file this write was creating is not left behind empty.
    CHECK_THROWS_AS(write_hessian(file, "/d", Eigen::MatrixXd::Identity(3, 3), false, bad, WriteMode::create),
                    InputError);
    CHECK_FALSE(std::filesystem::exists(file));
    std::remove(file.c_str());
}

namespace {
// Sets a file's modification time to now + seconds (negative: the past).
void set_mtime(const std::string& file, double seconds_from_now) {
    timespec times[2]{};
    ::clock_gettime(CLOCK_REALTIME, &times[0]);
    const long long ns = static_cast<long long>(times[0].tv_nsec) + static_cast<long long>(seconds_from_now * 1e9);
    times[0].tv_sec += static_cast<time_t>(ns / 1000000000LL) - (ns < 0 ? 1 : 0);
    times[0].tv_nsec = static_cast<long>(((ns % 1000000000LL) + 1000000000LL) % 1000000000LL);
    times[1] = times[0];
    REQUIRE(::utimensat(AT_FDCWD, file.c_str(), times, 0) == 0);
}
}  // namespace

TEST_CASE("a read that starts in the tick of a write is read again; a file written throughout is an error") {
    // Stamps tick with the file system's coarse clock: a write in the tick a
    // read starts may change the values without changing the stamp.
    const std::string file =
        (std::filesystem::temp_directory_path() / ("basinvol_tick_" + std::to_string(::getpid()) + ".h5")).string();
    Attributes none;
    write_hessian(file, "/hessian", Eigen::MatrixXd::Identity(4, 4), false, none, WriteMode::create);
    const HessianInfo info = list_hessians(parse_source(file)).at(0).info;
    auto set_mtime = [&](double seconds_from_now) { ::set_mtime(file, seconds_from_now); };
    auto settle = [&] {  // a stamp from long ago; ctime (set now) past its tick
        set_mtime(-100);
        ::usleep(60000);
    };
    int passes = 0;
    auto count = [&] { ++passes; };
    // Settled: one pass.
    settle();
    CHECK_NOTHROW(read_consistently(info, count));
    CHECK(passes == 1);
    // Stamped just ahead of the read's tick: read again once the clock is past it.
    set_mtime(0.3);
    passes = 0;
    CHECK_NOTHROW(read_consistently(info, count));
    CHECK(passes == 2);
    // Far ahead of the clock (copied from a machine whose clock is ahead): a
    // skew, not a write, since a write now would change the stamp.
    set_mtime(100);
    ::usleep(60000);
    passes = 0;
    CHECK_NOTHROW(read_consistently(info, count));
    CHECK(passes == 1);
    // One pass only (the distributed tool): the stamps around it decide.
    set_mtime(0.3);
    passes = 0;
    CHECK_NOTHROW(read_consistently(info, count, 1));
    CHECK(passes == 1);
    // Written during a pass: the change is the error, ahead of the values'.
    settle();
    passes = 0;
    CHECK_THROWS_WITH_AS(read_consistently(info,
                                           [&] {
                                               ++passes;
                                               set_mtime(-50);
                                               throw InputError("not symmetric");
                                           }),
                         doctest::Contains("the file changed while it was read (it was modified)"), InputError);
    CHECK(passes == 1);
    // Written throughout (a writer touching it every half millisecond): an
    // error saying the file changed, after at most three passes.
    std::atomic<bool> writing{true};
    std::thread writer([&] {
        while (writing) {
            ::utimensat(AT_FDCWD, file.c_str(), nullptr, 0);
            ::usleep(500);
        }
    });
    passes = 0;
    CHECK_THROWS_WITH_AS(read_consistently(info,
                                           [&] {
                                               ++passes;
                                               ::usleep(20000);
                                           }),
                         doctest::Contains("the file changed while it was read"), InputError);
    writing = false;
    writer.join();
    CHECK(passes >= 1);
    CHECK(passes <= 3);
    // A settled file whose values break a rule: that rule is the error.
    settle();
    CHECK_THROWS_WITH_AS(read_consistently(info, [] { throw InputError("not symmetric"); }),
                         doctest::Contains("not symmetric"), InputError);
    std::remove(file.c_str());
}

TEST_CASE("a Hessian holds a finite, symmetrized matrix in one precision, with its norms") {
    Eigen::MatrixXd m(3, 3);
    m << 2, 1, 0,  //
        1.002, 3, 0,  //
        0, 0, 0;
    const Hessian h = make_hessian(m, "mem", ReadOptions{});
    CHECK(h.storage() == Hessian::Storage::float64);
    CHECK(h.n() == 3);
    CHECK(h.f64()(0, 1) == h.f64()(1, 0));
    CHECK(h.f64()(0, 1) == doctest::Approx(1.001));
    // The norms are the symmetrized matrix's, and the asymmetry the input's.
    CHECK(h.frobenius() == doctest::Approx(h.f64().norm()).epsilon(1e-15));
    CHECK(h.asymmetry() == doctest::Approx((m - m.transpose()).norm() / m.norm()).epsilon(1e-12));
    CHECK_THROWS_AS(h.f32(), NumericError);
    // Float32 stays float32 when symmetric; when not, it is held as its exact
    // symmetric part in float64 ((a + b)/2 of two floats is exact in double).
    const Eigen::MatrixXf mf = m.cast<float>();
    const Eigen::MatrixXf sf = mf.selfadjointView<Eigen::Lower>();
    Hessian g = make_hessian(sf, "mem", ReadOptions{});
    CHECK(g.is_f32());
    CHECK_THROWS_AS(g.f64(), NumericError);
    CHECK((g.to_f64() - g.f32().cast<double>()).norm() == 0);
    const Eigen::MatrixXd taken = g.release_f64();
    CHECK(taken.rows() == 3);
    CHECK(g.empty());
    const Hessian w = make_hessian(mf, "mem", ReadOptions{});
    CHECK(w.storage() == Hessian::Storage::float64);
    const double exact = (double(mf(0, 1)) + double(mf(1, 0))) / 2;
    CHECK(double(float(exact)) != exact);  // rounding it to float would move it
    CHECK(w.f64()(0, 1) == exact);
    CHECK(w.f64()(1, 0) == exact);
    CHECK(w.frobenius() == doctest::Approx(w.f64().norm()).epsilon(1e-15));
    CHECK(Hessian().empty());
    m(2, 2) = std::nan("");
    CHECK_THROWS_WITH_AS(make_hessian(m, "mem", ReadOptions{}), doctest::Contains("mem:/: non-finite value nan at [2, 2]"),
                         InputError);
}

TEST_CASE("a skew or nearly skew Hessian keeps ‖H − Hᵀ‖_F: the row's asymmetry and noise floor are the input's") {
    // ‖H‖_F² = ‖(H + Hᵀ)/2‖_F² + ‖H − Hᵀ‖_F²/4: a skew H has relative
    // asymmetry 2 and a zero symmetric part, from which ‖H − Hᵀ‖_F cannot be
    // recovered; it must be kept as measured.
    Eigen::MatrixXd skew(3, 3);
    skew << 0, 1, 2,  //
        -1, 0, 3,     //
        -2, -3, 0;
    AnalyzeOptions o;
    o.read.max_asymmetry = std::numeric_limits<double>::infinity();
    for (const double sym : {0.0, 1e-3}) {
        for (const bool f32 : {false, true}) {
            CAPTURE(sym);
            CAPTURE(f32);
            Eigen::MatrixXd m = skew;
            m(0, 0) = m(1, 1) = sym;
            const double diff = (m - m.transpose()).norm();  // 2·√28, exact in float too
            const Hessian h = f32 ? make_hessian(Eigen::MatrixXf(m.cast<float>()), "mem", o.read)
                                  : make_hessian(m, "mem", o.read);
            CHECK(h.asymmetry() == doctest::Approx(diff / m.norm()).epsilon(1e-12));
            CHECK(h.asymmetry_norm() == doctest::Approx(diff).epsilon(1e-12));
            CHECK(h.frobenius() == doctest::Approx(sym * std::sqrt(2.0)).epsilon(1e-6));
            const Row r = analyze_hessian(h, o);
            REQUIRE(r.ok);
            CHECK(r.asymmetry == doctest::Approx(diff / m.norm()).epsilon(1e-6));
            CHECK(r.noise_floor >= diff * (1 - 1e-12));
            CHECK(r.warnings.has(Warning::symmetrized));
            CHECK(r.dim == 3);  // the symmetric part, at most 1e-3, lies under the floor
        }
    }
}

TEST_CASE("a large Hessian's checks, run in column slices, give the whole matrix's norms and first bad value") {
    // n past the size from which the checks are split across threads, not a
    // multiple of the tile.
    const Eigen::Index n = 2131;
    Eigen::MatrixXd sym = Eigen::MatrixXd::Random(n, n);
    sym = (sym + sym.transpose()).eval();
    SUBCASE("exactly symmetric: the sliced sums are the norm") {
        for (bool f32 : {false, true}) {
            CAPTURE(f32);
            const Hessian h = f32 ? make_hessian(Eigen::MatrixXf(sym.cast<float>()), "big", ReadOptions{})
                                  : make_hessian(sym, "big", ReadOptions{});
            const double want = f32 ? sym.cast<float>().cast<double>().norm() : sym.norm();
            CHECK(h.asymmetry() == 0);
            CHECK(h.frobenius() == doctest::Approx(want).epsilon(1e-12));
        }
    }
    SUBCASE("the largest entry only in the last slice sets the scale") {
        // Entries near 1e300 square past DBL_MAX unless scaled by the true
        // max|H|: a slice left out of the max makes ‖H‖_F infinite or wrong.
        Eigen::MatrixXd big = sym * 1e-300;
        big(n - 2, n - 1) = big(n - 1, n - 2) = 3e300;
        big(n - 3, n - 3) = 1e300;
        const Hessian h = make_hessian(big, "big", ReadOptions{});
        CHECK(h.frobenius() == doctest::Approx(std::sqrt(2 * 9.0 + 1.0) * 1e300).epsilon(1e-12));
    }
    SUBCASE("asymmetry in the last slice, measured against the whole") {
        Eigen::MatrixXd m = sym;
        m(n - 5, n - 40) += 1e-6;
        CHECK(make_hessian(m, "big", ReadOptions{}).asymmetry() ==
              doctest::Approx((m - m.transpose()).norm() / m.norm()).epsilon(1e-9));
    }
    SUBCASE("the first non-finite value in the file's order") {
        Eigen::MatrixXd bad = sym;
        bad(n - 7, 1900) = -std::numeric_limits<double>::infinity();  // bad(r, c) is the file's [c, r]
        bad(n - 9, 2000) = std::nan("");
        CHECK_THROWS_WITH_AS(make_hessian(bad, "big", ReadOptions{}),
                             doctest::Contains("big:/: non-finite value -inf at [1900, 2124]"), InputError);
    }
}

TEST_CASE("float32's one-pass checks give the norms, symmetrization and first bad value the two-pass checks give") {
    // Float32 matrices take one fused pass (max|H|, finiteness, ‖H − Hᵀ‖_F
    // and ‖H‖_F in absolute units); each case is checked against an
    // independent double computation, or against the same values read as
    // float64 (the scaled two-pass path), at sizes under and past the sliced
    // size, not multiples of the tile.
    for (const Eigen::Index n : {Eigen::Index(7), Eigen::Index(2131)}) {
        CAPTURE(n);
        Eigen::MatrixXf sym = Eigen::MatrixXf::Random(n, n);
        sym = (sym + sym.transpose()).eval();
        auto as_f64 = [](const Eigen::MatrixXf& m) {
            return make_hessian(Eigen::MatrixXd(m.cast<double>()), "f64", ReadOptions{});
        };
        SUBCASE("extremes of float's range: squares stay in double's") {
            Eigen::MatrixXf m = sym * 1e-40f;  // subnormal floats
            m(n - 1, n - 2) = m(n - 2, n - 1) = 3e38f;
            m(0, 0) = -3.4e38f;
            if (n > 2048) m(1000, 10) = m(10, 1000) = -2e38f;  // an off-diagonal tile of the first slice
            const Hessian h = make_hessian(m, "f32", ReadOptions{});
            const double want = m.cast<double>().norm();
            CHECK(std::isfinite(h.frobenius()));
            CHECK(h.frobenius() == doctest::Approx(want).epsilon(1e-12));
            CHECK(h.frobenius() == doctest::Approx(as_f64(m).frobenius()).epsilon(1e-12));
            CHECK(h.asymmetry() == 0);
        }
        SUBCASE("asymmetry in diagonal and off-diagonal tiles of every slice, symmetrized exactly in double") {
            Eigen::MatrixXf m = sym;
            m(n - 5, n - 3) += 1e-3f;  // the last diagonal tile
            if (n > 2048) {            // off-diagonal tiles, above and below the diagonal, in each slice
                m(1900, 100) += 2e-3f;
                m(300, 700) -= 1e-3f;
                m(1500, 1000) += 3e-3f;
                m(2100, 2000) -= 2e-3f;
            }
            const Eigen::MatrixXd md = m.cast<double>();
            const Hessian h = make_hessian(m, "f32", ReadOptions{});
            CHECK(h.asymmetry() == doctest::Approx((md - md.transpose()).norm() / md.norm()).epsilon(1e-9));
            CHECK(h.asymmetry() == doctest::Approx(as_f64(m).asymmetry()).epsilon(1e-9));
            REQUIRE(h.storage() == Hessian::Storage::float64);
            CHECK(h.f64()(n - 5, n - 3) == (double(m(n - 5, n - 3)) + double(m(n - 3, n - 5))) / 2);
            CHECK(h.f64()(n - 3, n - 5) == h.f64()(n - 5, n - 3));
            CHECK(h.frobenius() == doctest::Approx(h.f64().norm()).epsilon(1e-12));
        }
        SUBCASE("the zero matrix") {
            const Hessian h = make_hessian(Eigen::MatrixXf(Eigen::MatrixXf::Zero(n, n)), "f32", ReadOptions{});
            CHECK(h.frobenius() == 0);
            CHECK(h.asymmetry() == 0);
        }
        SUBCASE("the first non-finite value in the file's order, as float64 names it") {
            for (const float bad_value : {std::numeric_limits<float>::infinity(), std::nanf("")}) {
                Eigen::MatrixXf bad = sym;
                bad(n - 2, n - 1) = std::numeric_limits<float>::quiet_NaN();  // the file's [n−1, n−2]
                bad(n - 1, 1) = bad_value;                                    // the file's [1, n−1]: first
                std::string f64_message;
                try {
                    as_f64(bad);
                } catch (const InputError& e) {
                    f64_message = e.what();
                }
                REQUIRE(f64_message.find("at [1, " + std::to_string(n - 1) + "]") != std::string::npos);
                const std::string want = f64_message.substr(f64_message.find(": non-finite"));
                CHECK_THROWS_WITH_AS(make_hessian(bad, "f32", ReadOptions{}), doctest::Contains(want.c_str()),
                                     InputError);
            }
        }
    }
}
