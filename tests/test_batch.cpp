// The batch scheduler (budget, order, error rows, stop), shards, and reading
// saved rows back.
#include <basinvol/analyze.hpp>
#include <basinvol/batch/results.hpp>
#include <basinvol/batch/scheduler.hpp>
#include <basinvol/batch/shard.hpp>
#include <basinvol/error.hpp>

#include <Eigen/Dense>
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <dlfcn.h>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

using namespace basinvol;

extern "C" void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
                       const double* beta, double* c, const int* ldc, std::size_t, std::size_t);

namespace {
const std::string data = BASINVOL_TESTDATA;

// n fake Hessians named /h0000..., whose "working set" is `sizes[i]` bytes.
std::vector<WorkItem> fake_items(const std::vector<std::size_t>& sizes) {
    std::vector<WorkItem> v;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        WorkItem w;
        w.info.file = "fake.h5";
        char name[32];
        std::snprintf(name, sizeof name, "/h%04zu", i);
        w.info.dataset = name;
        w.info.n = sizes[i];
        w.info.stored_type = "float64";
        v.push_back(w);
    }
    return v;
}

// A scheduler with `jobs` workers and a budget of `budget` size units; each
// item costs its n (the fake items' sizes), BLAS threads left alone.
BatchOptions sized_jobs(std::size_t jobs, std::size_t budget) {
    BatchOptions o;
    o.jobs = jobs;
    o.memory_budget = budget;
    o.split_blas_threads = false;
    o.estimate = [](const HessianInfo& h) { return h.n; };
    return o;
}

Row ok_row(const HessianInfo& h) {
    Row r;
    r.source = h.source();
    r.n = h.n;
    r.ok = true;
    return r;
}

std::vector<WorkItem> real_items(const std::string& spec) {
    std::vector<WorkItem> v;
    for (auto& listed : list_hessians(parse_source(spec))) {
        REQUIRE(listed.problem.empty());
        WorkItem w;
        w.info = listed.info;
        v.push_back(w);
    }
    return v;
}
}  // namespace

TEST_CASE("working set: the matrix in float64 plus a float64 copy") {
    // Float32 counts as float64: an asymmetric one is widened (Hessian::validated).
    HessianInfo h;
    h.n = 1000;
    for (const char* type : {"float32", "float64"}) {
        CAPTURE(type);
        h.stored_type = type;
        CHECK(working_set_bytes(h) >= 1000u * 1000u * 16u);
        CHECK(working_set_bytes(h) < 1000u * 1000u * 16u * 11 / 10);
    }
}

TEST_CASE("scheduler: never more running than the budget allows") {
    // Sizes 1..9 under a budget of 10 with 4 jobs: at most a few fit at once.
    std::vector<std::size_t> sizes;
    for (std::size_t i = 0; i < 40; ++i) sizes.push_back(1 + (i * 7) % 9);
    auto items = fake_items(sizes);
    std::atomic<std::size_t> in_use{0}, peak{0}, running{0}, peak_running{0};
    BatchOptions o = sized_jobs(4, 10);
    o.analyze_one = [&](std::size_t, const HessianInfo& h) {
        std::size_t now = in_use += h.n;
        std::size_t r = ++running;
        std::size_t p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {}
        p = peak_running.load();
        while (r > p && !peak_running.compare_exchange_weak(p, r)) {}
        std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the work itself
        --running;
        in_use -= h.n;
        return ok_row(h);
    };
    std::size_t rows = 0;
    auto sum = run_batch(items, o, {[&](std::size_t, const Row& r) { rows += r.ok; }, {}});
    CHECK(rows == items.size());
    CHECK(sum.failed == 0);
    CHECK(peak.load() <= 10);
    CHECK(peak_running.load() <= 4);
}

TEST_CASE("scheduler: jobs run at once when the budget allows") {
    auto items = fake_items({1, 1, 1, 1});
    std::mutex m;
    std::condition_variable cv;
    std::size_t running = 0, started = 0, met = 0;
    BatchOptions o = sized_jobs(2, 100);
    o.analyze_one = [&](std::size_t, const HessianInfo& h) {
        std::unique_lock<std::mutex> lock(m);
        ++running;
        ++started;
        cv.notify_all();
        // Each job waits for a second one to be running, or for the last item
        // to have started (bounded, so a serial scheduler fails the check
        // instead of hanging). The first two items always meet.
        cv.wait_for(lock, std::chrono::seconds(10), [&] { return running >= 2 || started == items.size(); });
        if (running >= 2) ++met;
        lock.unlock();
        Row r = ok_row(h);
        lock.lock();
        --running;
        return r;
    };
    auto sum = run_batch(items, o, {});
    CHECK(sum.jobs == 2);
    CHECK(sum.delivered == 4);
    CHECK(met >= 2);
}

TEST_CASE("scheduler: rows in input order, or each once in finish order") {
    std::vector<std::size_t> sizes(30, 1);
    auto items = fake_items(sizes);
    BatchOptions o = sized_jobs(3, 100);
    o.estimate = [](const HessianInfo&) { return std::size_t(1); };
    o.analyze_one = [&](std::size_t, const HessianInfo& h) {
        // Early items take longest, so they finish out of order: the first
        // outlasts all the others together on the other two jobs.
        int idx = std::stoi(h.dataset.substr(2));
        std::this_thread::sleep_for(std::chrono::microseconds(idx == 0 ? 200000 : 200 * (30 - idx)));
        return ok_row(h);
    };
    std::vector<std::size_t> order;
    std::vector<std::string> sources;
    run_batch(items, o, {[&](std::size_t i, const Row& r) {
                             order.push_back(i);
                             sources.push_back(r.source);
                         },
                         {}});
    REQUIRE(order.size() == items.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        CHECK(order[i] == i);
        CHECK(sources[i] == items[i].info.source());
    }

    o.order = RowOrder::finish;
    order.clear();
    run_batch(items, o, {[&](std::size_t i, const Row&) { order.push_back(i); }, {}});
    std::set<std::size_t> once(order.begin(), order.end());
    CHECK(order.size() == items.size());
    CHECK(once.size() == items.size());
    // Delivered as they finish, not held back for the slow first item.
    REQUIRE_FALSE(order.empty());
    CHECK(order.front() != 0);
    CHECK(order.back() == 0);
}

TEST_CASE("scheduler: errors are rows and the batch goes on") {
    auto items = real_items(data + "/bad.one_broken_member.h5");
    REQUIRE(items.size() == 3);
    WorkItem unlisted;
    unlisted.error = source_error_row(parse_source("missing.h5"), "missing.h5: no such file");
    items.insert(items.begin() + 1, unlisted);
    // A Hessian that could never fit the budget.
    WorkItem huge = items[0];
    huge.info.n = 100000;
    items.push_back(huge);
    BatchOptions o;
    o.jobs = 2;
    o.memory_budget = std::size_t(1) << 30;
    std::vector<Row> rows;
    auto sum = run_batch(items, o, {[&](std::size_t, const Row& r) { rows.push_back(r); }, {}});
    REQUIRE(rows.size() == 5);
    CHECK(sum.failed == 3);
    CHECK(rows[0].ok);
    CHECK_FALSE(rows[1].ok);
    CHECK(rows[1].error.find("no such file") != std::string::npos);
    CHECK_FALSE(rows[2].ok);
    CHECK(rows[2].error.find("non-finite") != std::string::npos);
    CHECK(rows[3].ok);
    CHECK_FALSE(rows[4].ok);
    CHECK(rows[4].error.find("memory budget") != std::string::npos);
    CHECK(rows[4].source == huge.info.source());
}

TEST_CASE("scheduler: a stop starts nothing new and delivers what finished") {
    auto items = fake_items(std::vector<std::size_t>(50, 1));
    std::atomic<bool> stop{false};
    BatchOptions o = sized_jobs(2, 100);
    o.stop = &stop;
    o.estimate = [](const HessianInfo&) { return std::size_t(1); };
    std::atomic<std::size_t> started{0};
    o.analyze_one = [&](std::size_t, const HessianInfo& h) {
        if (++started == 5) stop = true;  // as a signal handler would
        return ok_row(h);
    };
    std::vector<std::size_t> got;
    auto sum = run_batch(items, o, {[&](std::size_t i, const Row&) { got.push_back(i); }, {}});
    CHECK(sum.stopped);
    CHECK(got.size() == started.load());  // everything started was delivered
    CHECK(got.size() < items.size());
    CHECK(sum.not_started == items.size() - got.size());
    for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == i);
}

namespace {
// A fake cgroup file system in a fresh temporary directory.
struct FakeCgroups {
    std::string root;
    FakeCgroups() {
        char tmpl[] = "/tmp/basinvol-cgroup-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        root = tmpl;
    }
    ~FakeCgroups() { std::filesystem::remove_all(root); }
    void put(const std::string& dir, const std::string& file, const std::string& value) {
        std::filesystem::create_directories(root + dir);
        std::ofstream(root + dir + "/" + file) << value << "\n";
    }
};
}  // namespace

TEST_CASE("cgroup memory limit: the process's own cgroup and its ancestors, v1 and v2") {
    const std::string none = "9223372036854771712";  // v1's "unlimited"
    {
        FakeCgroups c;  // v1 under Slurm: the limit is on the job, not the root
        c.put("/memory", "memory.limit_in_bytes", none);
        c.put("/memory/slurm", "memory.limit_in_bytes", none);
        c.put("/memory/slurm/uid_0/job_7", "memory.limit_in_bytes", "1073741824");
        CHECK(cgroup_memory_limit("5:cpu,cpuacct:/slurm/uid_0/job_7\n4:memory:/slurm/uid_0/job_7\n0::/\n",
                                  c.root) == 1073741824);
        CHECK(cgroup_memory_limit("4:memory:/\n", c.root) == 0);  // the root's own: none
        CHECK(cgroup_memory_limit("", c.root) == 0);
    }
    {
        FakeCgroups c;  // v2: an ancestor's smaller limit binds
        c.put("", "memory.max", "max");
        c.put("/user.slice", "memory.max", "2147483648");
        c.put("/user.slice/job.scope", "memory.max", "max");
        CHECK(cgroup_memory_limit("0::/user.slice/job.scope\n", c.root) == 2147483648);
        c.put("/user.slice/job.scope", "memory.max", "536870912");
        CHECK(cgroup_memory_limit("0::/user.slice/job.scope\n", c.root) == 536870912);
        CHECK(cgroup_memory_limit("0::/elsewhere\n", c.root) == 0);  // not in this mount: the root's none
    }
    {
        FakeCgroups c;  // a container: its cgroup is the mount's root
        c.put("", "memory.max", "268435456");
        CHECK(cgroup_memory_limit("0::/\n", c.root) == 268435456);
    }
}

TEST_CASE("scheduler: BLAS threads split between jobs and restored") {
    const int before = blas_threads();
    auto items = fake_items({1, 1});
    BatchOptions o;
    o.jobs = 2;
    o.memory_budget = 100;
    o.estimate = [](const HessianInfo&) { return std::size_t(1); };
    int seen = 0;
    o.analyze_one = [&](std::size_t, const HessianInfo& h) {
        seen = blas_threads();
        return ok_row(h);
    };
    auto sum = run_batch(items, o, {});
    CHECK(sum.blas_threads == std::max(1, static_cast<int>(available_cpus() / sum.jobs)));
    CHECK(seen == sum.blas_threads);
    CHECK(blas_threads() == before);
}

TEST_CASE("scheduler: a row callback that throws stops the batch cleanly and restores BLAS threads") {
    // The callback writes rows (a closed pipe, a full disk): its exception
    // must reach the caller with every worker joined, never std::terminate.
    set_blas_threads(2);
    const int before = blas_threads();
    auto items = fake_items(std::vector<std::size_t>(50, 1));
    BatchOptions o;
    o.jobs = 2;
    o.memory_budget = 100;
    o.estimate = [](const HessianInfo&) { return std::size_t(1); };
    std::atomic<std::size_t> analyzed{0};
    o.analyze_one = [&](std::size_t, const HessianInfo& h) {
        ++analyzed;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return ok_row(h);
    };
    std::size_t delivered = 0;
    auto throwing = [&](std::size_t, const Row&) {
        if (++delivered == 3) throw std::runtime_error("cannot write the results");
    };
    CHECK_THROWS_WITH(run_batch(items, o, {throwing, {}}), "cannot write the results");
    CHECK(delivered == 3);
    CHECK(analyzed.load() < items.size());  // the workers stopped starting items
    CHECK(blas_threads() == before);
    // A progress callback that throws unwinds the same way.
    auto progress_throws = [](const BatchProgress&) { throw std::runtime_error("progress"); };
    CHECK_THROWS_WITH(run_batch(items, o, {{}, progress_throws}), "progress");
    CHECK(blas_threads() == before);
}

TEST_CASE("shards: disjoint, covering, independent of order") {
    CHECK(stable_hash("a") == 0xaf63dc4c8601ec8cULL);  // FNV-1a reference value
    CHECK_THROWS_AS(parse_shard("0/3"), UsageError);
    CHECK_THROWS_AS(parse_shard("4/3"), UsageError);
    CHECK_THROWS_AS(parse_shard("1/0"), UsageError);
    CHECK_THROWS_AS(parse_shard("x/3"), UsageError);
    CHECK_THROWS_AS(parse_shard("3"), UsageError);
    Shard s = parse_shard("2/3");
    CHECK(s.index == 2);
    CHECK(s.count == 3);
    CHECK(shard_key("run/./a.h5", "/h") == shard_key("run/a.h5", "/h"));
    std::vector<std::size_t> per(3, 0);
    for (int i = 0; i < 300; ++i) {
        std::string key = shard_key("ckpt.h5", "/step_" + std::to_string(i));
        int hits = 0;
        for (std::size_t k = 1; k <= 3; ++k)
            if (in_shard(key, {k, 3})) {
                ++hits;
                ++per[k - 1];
            }
        CHECK(hits == 1);
    }
    for (auto c : per) CHECK(c > 60);  // roughly a third each
}

TEST_CASE("saved rows read back equal the rows written, in every machine format") {
    auto items = real_items(data + "/example_checkpoints.h5");
    std::vector<Row> rows;
    for (const auto& w : items) rows.push_back(analyze(w.info, {}));
    rows.push_back(source_error_row(parse_source("missing.h5"), "missing.h5: cannot open, \"quoted\"\nnext line"));
    for (Format f : {Format::jsonl, Format::json, Format::tsv, Format::csv}) {
        ReportSpec spec;
        spec.format = f;
        std::ostringstream out;
        RowWriter w(out, spec);
        for (const auto& r : rows) w.write(r);
        w.finish();
        REQUIRE(detect_format(out.str()) == f);
        auto back = parse_saved(out.str(), "test");
        REQUIRE(back.size() == rows.size());
        for (std::size_t i = 0; i < rows.size(); ++i) {
            CAPTURE(static_cast<int>(f));
            CHECK(back[i].source == rows[i].source);
            CHECK(back[i].ok == rows[i].ok);
            std::string expected = rows[i].error;
            if (f == Format::tsv) std::replace(expected.begin(), expected.end(), '\n', ' ');  // TSV cells are one line
            CHECK(back[i].error == expected);
            CHECK(back[i].rank == rows[i].rank);
            CHECK(back[i].dim == rows[i].dim);
            CHECK(back[i].log_volume == rows[i].log_volume);  // %.17g and JSON round-trip exactly
            CHECK(back[i].warnings == rows[i].warnings);
            CHECK(back[i].attrs.step == rows[i].attrs.step);
        }
        // Written again, the text is the same.
        std::ostringstream again;
        RowWriter w2(again, spec);
        for (const auto& r : back) w2.write(r);
        w2.finish();
        if (f != Format::json) CHECK(again.str() == out.str());
    }
    CHECK_THROWS_AS(parse_saved("{\"source\": \"a\", \"status\": \"ok\"}\n{\"sour", "cut"), InputError);
}

TEST_CASE("OpenBLAS's idle threads take a short spin, and its threads still compute") {
    using Timeout = unsigned (*)();
    const auto timeout = reinterpret_cast<Timeout>(::dlsym(RTLD_DEFAULT, "openblas_thread_timeout"));
    REQUIRE(reinterpret_cast<void*>(timeout) != nullptr);  // Debian's pthread OpenBLAS, which the build links
    const char* before = std::getenv("OPENBLAS_THREAD_TIMEOUT");
    const std::string saved = before ? before : "";
    const int threads = blas_threads();

    ::unsetenv("OPENBLAS_THREAD_TIMEOUT");
    CHECK(quiet_idle_blas_threads());
    CHECK(timeout() == 20);
    // The restarted pool computes: a product on two threads against a sum
    // written out.
    set_blas_threads(2);
    const int n = 300;
    Eigen::MatrixXd a = Eigen::MatrixXd::Random(n, n), b = Eigen::MatrixXd::Random(n, n), c(n, n);
    const char no = 'N';
    const double one = 1, zero = 0;
    dgemm_(&no, &no, &n, &n, &n, &one, a.data(), &n, b.data(), &n, &zero, c.data(), &n, 1, 1);
    double worst = 0;
    for (int i = 0; i < n; i += 37)
        for (int j = 0; j < n; j += 41) {
            double s = 0;
            for (int k = 0; k < n; ++k) s += a(i, k) * b(k, j);
            worst = std::max(worst, std::abs(s - c(i, j)));
        }
    CHECK(worst <= 1e-12);

    // A user's own setting is left alone.
    ::setenv("OPENBLAS_THREAD_TIMEOUT", "25", 1);
    CHECK_FALSE(quiet_idle_blas_threads());
    CHECK(timeout() == 20);
    set_blas_threads(threads);
    if (before) ::setenv("OPENBLAS_THREAD_TIMEOUT", saved.c_str(), 1);
    else ::unsetenv("OPENBLAS_THREAD_TIMEOUT");
}
