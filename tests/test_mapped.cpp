// Values mapped from their file (ReadOptions::map, io/mapped_values.hpp):
// the same matrix and answer as values read, and no answer once the file
// was truncated or written while they were in use.
#include <basinvol/analyze.hpp>
#include <basinvol/error.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/io/writer.hpp>

#include "support.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace basinvol;

namespace {

std::string temp_file(const std::string& stem) {
    return (std::filesystem::temp_directory_path() / (stem + "_" + std::to_string(::getpid()) + ".h5")).string();
}

// Where a contiguous dataset's values start in its file, as HDF5 says.
std::uint64_t values_offset(const std::string& file, const std::string& dataset) {
    const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    REQUIRE(f >= 0);
    const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
    REQUIRE(d >= 0);
    const haddr_t at = H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(f);
    REQUIRE(at != HADDR_UNDEF);
    return at;
}

// A Hessian of rank 150 in n = 400 (a low-rank solver's kind), written
// contiguous, and the file made to look settled: its stamp in the past and
// the file system's clock past the tick of its ctime (a write in that tick
// could not be told from none).
HessianInfo written(const std::string& file, bool f32) {
    std::vector<double> spectrum = testing_support::geometric(150, 10, 1e-2);
    spectrum.resize(400, 0.0);
    Attributes none;
    write_hessian(file, "/h", testing_support::with_spectrum(spectrum, 7), f32, none, WriteMode::create);
    timespec past[2]{};
    ::clock_gettime(CLOCK_REALTIME, &past[0]);
    past[0].tv_sec -= 100;
    past[1] = past[0];
    REQUIRE(::utimensat(AT_FDCWD, file.c_str(), past, 0) == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    return list_hessians(parse_source(file + ":/h")).at(0).info;
}

ReadOptions mapping() {
    ReadOptions o;
    o.map = true;
    return o;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a contiguous Hessian is mapped from its file: the values, norms and answer of the values read") {
    const std::string file = temp_file("basinvol_mapped");
    for (const bool f32 : {false, true}) {
        CAPTURE(f32);
        const HessianInfo info = written(file, f32);
        const Hessian copy = read_hessian(info, {});
        Hessian h = read_hessian(info, mapping());
        CHECK_FALSE(copy.mapped());
        REQUIRE(h.mapped());
        CHECK(h.is_f32() == f32);
        CHECK(h.n() == 400);
        CHECK(h.frobenius() == copy.frobenius());
        CHECK(h.asymmetry_norm() == copy.asymmetry_norm());
        CHECK((h.to_f64().array() == copy.to_f64().array()).all());
        CHECK_NOTHROW(h.check_unchanged());
        const Row a = analyze_hessian(h, {}), b = analyze_hessian(copy, {});
        REQUIRE(a.ok);
        REQUIRE(b.ok);
        CHECK(a.rank == 150);
        CHECK(a.rank == b.rank);
        CHECK(a.log_volume == b.log_volume);
        // analyze maps the values itself, with the same answer.
        const Row c = analyze(info, {});
        REQUIRE(c.ok);
        CHECK(c.log_volume == b.log_volume);
        // Released for a solver that overwrites them: copied whole, while a
        // copy of the Hessian still reads the mapping.
        Hessian twin = h;
        const Eigen::MatrixXd taken = twin.release_f64();
        CHECK(twin.empty());
        CHECK_FALSE(twin.mapped());
        CHECK((taken.array() == copy.to_f64().array()).all());
        CHECK((h.to_f64().array() == copy.to_f64().array()).all());
        const Eigen::MatrixXd last = h.release_f64();  // the last holder lets each copied slice go
        CHECK((last.array() == copy.to_f64().array()).all());
    }
    std::remove(file.c_str());
}

TEST_CASE("a mapped Hessian stored slightly asymmetric is symmetrized without writing its file") {
    const std::string file = temp_file("basinvol_mapped_asym");
    Eigen::MatrixXd m = testing_support::with_spectrum(testing_support::geometric(60, 5, 1e-1), 3);
    m(7, 2) += 1e-12;
    Attributes none;
    write_hessian(file, "/h", m, false, none, WriteMode::create);
    const HessianInfo info = list_hessians(parse_source(file + ":/h")).at(0).info;
    const Hessian copy = read_hessian(info, {});
    const Hessian h = read_hessian(info, mapping());
    REQUIRE(h.mapped());
    CHECK(h.asymmetry() > 0);
    CHECK(h.f64()(7, 2) == h.f64()(2, 7));
    CHECK((h.f64().array() == copy.f64().array()).all());
    CHECK_NOTHROW(h.check_unchanged());
    // The file still holds what was written.
    const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    const hid_t d = H5Dopen2(f, "/h", H5P_DEFAULT);
    Eigen::MatrixXd stored(60, 60);
    REQUIRE(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, stored.data()) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    CHECK((stored.array() == m.transpose().array()).all());  // the file's rows are the buffer's columns
    std::remove(file.c_str());
}

TEST_CASE("a file truncated while its mapped values are in use: the faults read zeros, and the answer is an error") {
    const std::string file = temp_file("basinvol_mapped_truncated");
    for (const bool f32 : {false, true}) {
        CAPTURE(f32);
        const HessianInfo info = written(file, f32);
        const std::uint64_t offset = values_offset(file, "/h");
        const std::size_t bytes = 400 * 400 * (f32 ? sizeof(float) : sizeof(double));
        // Every solver path reads the values in its own threads: the dense
        // one's copy, the low-rank ones' products (OpenBLAS's threads).
        for (const Method method : {Method::automatic, Method::dense, Method::lanczos}) {
            CAPTURE(method_name(method));
            Hessian h = read_hessian(info, mapping());
            REQUIRE(h.mapped());
            // h5py's "w" rewrite of a checkpoint starts with exactly this.
            REQUIRE(::truncate(file.c_str(), static_cast<off_t>(offset + bytes / 3)) == 0);
            AnalyzeOptions opt;
            opt.method = method;
            const Row r = analyze_hessian(h, opt);
            CHECK_FALSE(r.ok);
            CHECK(contains(r.error, info.source() + ": the file changed while it was read (it was truncated)"));
            CHECK_THROWS_WITH_AS(h.check_unchanged(), doctest::Contains("(it was truncated)"), InputError);
            // The values past the end read as zeros from here on.
            if (!h.empty()) CHECK(std::isfinite(h.to_f64().sum()));
            written(file, f32);  // whole again for the next method
        }
    }
    std::remove(file.c_str());
}

TEST_CASE("a file written in place while its mapped values are in use voids their answer") {
    const std::string file = temp_file("basinvol_mapped_written");
    const HessianInfo info = written(file, false);
    const std::uint64_t offset = values_offset(file, "/h");
    Hessian h = read_hessian(info, mapping());
    REQUIRE(h.mapped());
    const double before = h.f64()(0, 0);
    // Another process rewrites the first values in place (the mapping may
    // show them: it is the page cache's until written to).
    const int fd = ::open(file.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    const std::vector<double> other(512, before + 1);
    REQUIRE(::pwrite(fd, other.data(), other.size() * sizeof(double), static_cast<off_t>(offset)) ==
            static_cast<ssize_t>(other.size() * sizeof(double)));
    ::close(fd);
    CHECK_THROWS_WITH_AS(h.check_unchanged(), doctest::Contains("the file changed while it was read (it was modified)"),
                         InputError);
    const Row r = analyze_hessian(h, {});
    CHECK_FALSE(r.ok);
    CHECK(contains(r.error, "(it was modified)"));
    std::remove(file.c_str());
}

TEST_CASE("a SIGBUS outside basinvol's mappings is not swallowed: the process stops as it would without basinvol") {
    const std::string file = temp_file("basinvol_mapped_foreign"), other = temp_file("basinvol_foreign");
    const HessianInfo info = written(file, false);
    {
        std::FILE* f = std::fopen(other.c_str(), "wb");
        REQUIRE(f);
        const std::vector<char> page(1 << 16, 1);
        REQUIRE(std::fwrite(page.data(), 1, page.size(), f) == page.size());
        std::fclose(f);
    }
    // Mapping a Hessian installs the handler (the child inherits it, and the
    // mapping); a fault in a mapping of the caller's own must still stop
    // the process. The child makes system calls only.
    const Hessian h = read_hessian(info, mapping());
    REQUIRE(h.mapped());
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::signal(SIGABRT, SIG_DFL);  // AddressSanitizer's report aborts: not the test runner's crash report
        const int fd = ::open(other.c_str(), O_RDONLY);
        void* p = ::mmap(nullptr, 1 << 16, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED || ::truncate(other.c_str(), 0) != 0) ::_exit(4);
        volatile char c = static_cast<const char*>(p)[1 << 15];
        (void)c;
        ::_exit(0);  // a swallowed fault would come here
    }
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 200 && (done = ::waitpid(pid, &status, WNOHANG)) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (done == 0) {  // a fault retried for ever
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        FAIL("the child hung on its fault");
    }
    CHECK_FALSE((WIFEXITED(status) && WEXITSTATUS(status) <= 4));
    CHECK_NOTHROW(h.check_unchanged());  // the other file's fault is not this one's
#if !defined(__SANITIZE_ADDRESS__)
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGBUS);
#endif
    std::remove(file.c_str());
    std::remove(other.c_str());
}

TEST_CASE("values are mapped only while basinvol's SIGBUS handler is in place; a moved-from Hessian is empty") {
    const std::string file = temp_file("basinvol_mapped_handler");
    const HessianInfo info = written(file, false);
    REQUIRE(read_hessian(info, mapping()).mapped());  // installs the handler
    // Replaced since (Python's faulthandler, a signal.signal): a truncation
    // would reach the other handler, so the values are read instead.
    struct sigaction other {}, ours {};
    other.sa_handler = SIG_DFL;
    ::sigemptyset(&other.sa_mask);
    REQUIRE(::sigaction(SIGBUS, &other, &ours) == 0);
    const Hessian read = read_hessian(info, mapping());
    REQUIRE(::sigaction(SIGBUS, &ours, nullptr) == 0);
    CHECK_FALSE(read.mapped());
    Hessian h = read_hessian(info, mapping());
    REQUIRE(h.mapped());
    CHECK((h.to_f64().array() == read.to_f64().array()).all());
    const Hessian moved = std::move(h);
    CHECK(moved.mapped());
    CHECK(h.empty());  // NOLINT(bugprone-use-after-move): the state a move leaves is the point
    CHECK(h.n() == 0);
    CHECK_FALSE(h.mapped());
    std::remove(file.c_str());
}

TEST_CASE("compressed chunks mapped from the page cache read exactly as HDF5 reads them, after a user block too") {
    // The chunks' raw bytes are mapped, not copied through HDF5, and
    // inflated from the mapping; HDF5 1.10 gives their addresses past the
    // user block, where a contiguous dataset's counts from the file's start.
    const std::string file = temp_file("basinvol_mapped_chunks");
    const Eigen::MatrixXd m = testing_support::with_spectrum(testing_support::geometric(300, 10, 1e-3), 5);
    for (const hsize_t user_block : {hsize_t(0), hsize_t(4096)})
        for (const bool f32 : {false, true})
            for (const bool shuffle : {false, true}) {
                CAPTURE(user_block);
                CAPTURE(f32);
                CAPTURE(shuffle);
                const hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
                REQUIRE(H5Pset_userblock(fcpl, user_block) >= 0);
                const hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
                REQUIRE(f >= 0);
                const hsize_t dims[2] = {300, 300}, chunk[2] = {64, 96};
                const hid_t space = H5Screate_simple(2, dims, nullptr), dcpl = H5Pcreate(H5P_DATASET_CREATE);
                REQUIRE(H5Pset_chunk(dcpl, 2, chunk) >= 0);
                if (shuffle) REQUIRE(H5Pset_shuffle(dcpl) >= 0);
                REQUIRE(H5Pset_deflate(dcpl, 4) >= 0);
                // A contiguous dataset first, so that the chunks lie past it.
                const hid_t pad = H5Dcreate2(f, "/pad", H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
                REQUIRE(H5Dwrite(pad, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.data()) >= 0);
                const hid_t d = H5Dcreate2(f, "/h", f32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, space, H5P_DEFAULT,
                                           dcpl, H5P_DEFAULT);
                REQUIRE(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.data()) >= 0);
                H5Dclose(d);
                H5Dclose(pad);
                H5Pclose(dcpl);
                H5Sclose(space);
                H5Fclose(f);
                H5Pclose(fcpl);
                const HessianInfo info = list_hessians(parse_source(file + ":/h")).at(0).info;
                const Hessian h = read_hessian(info, {});
                // m is symmetric: the file's rows are its columns either way.
                const Eigen::MatrixXd want = f32 ? Eigen::MatrixXd(m.cast<float>().cast<double>()) : m;
                CHECK((h.to_f64().array() == want.array()).all());
                const Row chunked = analyze(info, {});
                const Row whole = analyze_hessian(read_hessian(list_hessians(parse_source(file + ":/pad")).at(0).info, {}), {});
                REQUIRE(chunked.ok);
                CHECK(chunked.rank == 300);
                if (!f32) CHECK(chunked.log_volume == whole.log_volume);
            }
    std::remove(file.c_str());
}

TEST_CASE("a file some process has open for writing is read, not mapped") {
    // An np.memmap of the dataset changes values through pages it dirtied
    // before without moving the file's times: while any writer has the
    // file open, the values are copied as they are now.
    const std::string file = temp_file("basinvol_mapped_writer");
    const HessianInfo info = written(file, false);
    const Hessian alone = read_hessian(info, mapping());
    CHECK(alone.mapped());
    const int writer = ::open(file.c_str(), O_RDWR);
    REQUIRE(writer >= 0);
    const Hessian beside = read_hessian(info, mapping());
    CHECK_FALSE(beside.mapped());
    CHECK((beside.to_f64().array() == alone.to_f64().array()).all());
    ::close(writer);
    CHECK(read_hessian(info, mapping()).mapped());
    std::remove(file.c_str());
}

namespace {
// Runs `change` on the file once, after analyze's first read of its values
// (ReadOptions::hold is held around each read): the change lands while the
// row is computed from the mapped values.
struct ChangeAfterFirstRead : ReadLock {
    std::function<void()> change;
    int reads = 0;
    void lock() override {}
    void unlock() override {
        if (++reads == 1) change();
    }
};
}  // namespace

TEST_CASE("a file that changes while its row is computed from mapped values is read again, as it now is") {
    const std::string file = temp_file("basinvol_mapped_redo");
    Attributes none;
    for (const std::string how : {"append", "rewrite", "truncate"}) {
        CAPTURE(how);
        const HessianInfo info = written(file, false);
        const Row before = analyze(info, {});
        REQUIRE(before.ok);
        std::vector<double> spectrum = testing_support::geometric(120, 3, 1e-1);
        spectrum.resize(400, 0.0);
        const Eigen::MatrixXd other = testing_support::with_spectrum(spectrum, 11);
        auto hook = std::make_shared<ChangeAfterFirstRead>();
        hook->change = [&] {
            if (how == "append")  // a training job adding its next checkpoint beside this one
                write_hessian(file, "/next", other, false, none, WriteMode::append);
            else if (how == "rewrite")  // h5py's "w": the same dataset, new values
                write_hessian(file, "/h", other, false, none, WriteMode::create);
            else
                REQUIRE(::truncate(file.c_str(), 4096) == 0);
        };
        AnalyzeOptions opt;
        opt.read.hold = hook;
        const Row r = analyze(info, opt);
        CHECK(hook->reads == 2);  // the mapped read, then the read into memory
        if (how == "append") {
            REQUIRE(r.ok);
            CHECK(r.rank == before.rank);
            CHECK(r.log_volume == before.log_volume);
        } else if (how == "rewrite") {
            REQUIRE(r.ok);
            CHECK(r.rank == 120);
            CHECK(r.log_volume != before.log_volume);
        } else {
            CHECK_FALSE(r.ok);
            CHECK(contains(r.error, info.source()));
        }
    }
    std::remove(file.c_str());
}
