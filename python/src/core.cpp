// basinvol._core: the compiled half of `import basinvol` (python/basinvol/).
//
// Rows cross the boundary as the JSON objects the command line writes
// (row_to_json / row_from_json), so a Python result has the same fields and
// names as a JSON row by construction; eigenvalues, when asked for, come as
// a numpy array beside it. Every solve runs with the GIL released.
#include <basinvol/analyze.hpp>
#include <basinvol/batch/results.hpp>
#include <basinvol/batch/scheduler.hpp>
#include <basinvol/error.hpp>
#include <basinvol/io/forks.hpp>
#include <basinvol/rank/ranking.hpp>
#include <basinvol/report/format.hpp>
#include <basinvol/version.hpp>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <cmath>
#include <optional>
#include <sys/syscall.h>
#include <unistd.h>
#include <string>
#include <utility>
#include <vector>

namespace py = pybind11;
namespace bv = basinvol;

namespace {

// While the interpreter finalizes (a daemon thread still in a call when the
// program exits), CPython 3.11 ends a thread other than the finalizing one
// that takes the GIL back by unwinding it (pthread_exit); from a
// destructor, which is noexcept, that unwinding is std::terminate
// ("terminate called without an active exception", the process killed by
// SIGABRT). Such a thread instead waits here for the process to end, as
// CPython 3.14 makes it do. The finalizing thread (a __del__ or atexit
// handler calling basinvol) goes on: it is the main thread, which the
// python3 program finalizes from (its thread id is the process id).
bool finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing() != 0;
#else
    return _Py_IsFinalizing() != 0;
#endif
}

void wait_if_finalizing() {
    if (!finalizing() || static_cast<pid_t>(::syscall(SYS_gettid)) == ::getpid()) return;
    for (;;) pause();
}

// The GIL released for the scope (py::gil_scoped_release, but taken back
// only while the interpreter runs).
class Unlocked {
public:
    Unlocked() : state_(PyEval_SaveThread()) {}
    Unlocked(const Unlocked&) = delete;
    Unlocked& operator=(const Unlocked&) = delete;
    ~Unlocked() {
        wait_if_finalizing();
        PyEval_RestoreThread(state_);
    }

private:
    PyThreadState* state_;
};

// The GIL held for the scope from a thread that released it
// (py::gil_scoped_acquire, taken only while the interpreter runs).
struct NotFinalizing {
    NotFinalizing() { wait_if_finalizing(); }
};
struct Held : private NotFinalizing {
    py::gil_scoped_acquire held;
};

template <class T>
std::optional<T> get(const py::dict& d, const char* key) {
    if (!d.contains(key) || d[key].is_none()) return std::nullopt;
    try {
        return d[key].cast<T>();
    } catch (const py::cast_error&) {
        throw bv::UsageError(std::string(key) + " has the wrong type: " +
                             py::str(py::type::of(d[key])).cast<std::string>());
    }
}

// The analysis options from the keyword arguments of basinvol.analyze/volume
// (names as in python/basinvol/__init__.py, values as on the command line).
bv::AnalyzeOptions analyze_options(const py::dict& d) {
    bv::AnalyzeOptions a;
    a.cut.rule = bv::parse_cut_rule(get<std::string>(d, "cut").value_or("auto"));
    a.cut.rtol = get<double>(d, "rtol");
    a.cut.atol = get<double>(d, "atol");
    a.cut.min_gap = get<double>(d, "min_gap").value_or(1.0);
    a.threshold = get<double>(d, "threshold");
    a.regularized = get<double>(d, "regularized");
    a.hessian_error = get<double>(d, "hessian_error");
    a.negatives = bv::parse_negatives(get<std::string>(d, "negatives").value_or("abs"));
    a.method = bv::parse_method(get<std::string>(d, "method").value_or("auto"));
    a.read.max_asymmetry = get<double>(d, "max_asymmetry").value_or(1e-3);
    // A whole number of bytes comes as "<n>B" (the package's _options): a
    // text of the caller's that is a bare number under 1 GiB is refused, as
    // the command line's --max-memory is.
    const std::string memory = get<std::string>(d, "max_memory").value_or("");
    if (const std::string why = bv::unitless_size_problem(memory); !why.empty())
        throw bv::UsageError("max_memory", why);
    a.read.max_bytes = bv::parse_memory_size(memory);
    a.read.detect_float32_data = !get<bool>(d, "trust_stored_type").value_or(false);
    a.keep_eigenvalues = get<bool>(d, "eigenvalues").value_or(false);
    bv::validate(a);
    return a;
}

bv::RankOptions rank_options(const py::dict& d) {
    bv::RankOptions r;
    r.tie_tol = get<double>(d, "tie_tol").value_or(1e-6);
    if (!(r.tie_tol >= 0 && std::isfinite(r.tie_tol)))
        throw bv::UsageError("tie_tol must be a finite number >= 0, got " + bv::value_text(r.tie_tol));
    r.saddles_last = bv::parse_negatives(get<std::string>(d, "negatives").value_or("abs")) == bv::NegativePolicy::last;
    return r;
}

bv::ReportSpec json_spec(bool with_place, bool with_regularized, bool with_shard = false) {
    bv::ReportSpec s;
    s.format = bv::Format::json;
    s.with_place = with_place;
    s.with_regularized = with_regularized;
    s.with_shard = with_shard;
    return s;
}

// Whether a row carries a --shard run's fields.
bool any_sharded(const std::vector<bv::Row>& rows) {
    return std::any_of(rows.begin(), rows.end(), [](const bv::Row& r) { return !r.shard.empty(); });
}

std::string to_json(const bv::Row& r, const bv::ReportSpec& spec) {
    return bv::row_to_json(r, spec).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// (row JSON, eigenvalues or None, whether they are all n) for Python; the
// eigenvalues ascending. A partial method's are what it computed.
py::tuple to_python(const bv::Row& r, const bv::ReportSpec& spec) {
    py::object ev = py::none();
    bool complete = false;
    if (r.ok && !r.eigenvalues.empty()) {
        std::vector<double> v = r.eigenvalues;
        std::sort(v.begin(), v.end());
        complete = v.size() == r.n;
        ev = py::array_t<double>(static_cast<py::ssize_t>(v.size()), v.data());
    }
    return py::make_tuple(to_json(r, spec), ev, complete);
}

bv::Row from_json(const std::string& text) {
    try {
        return bv::row_from_json(nlohmann::ordered_json::parse(text));
    } catch (const nlohmann::json::exception& e) {
        throw bv::InputError(std::string("not a basinvol row: ") + e.what());
    }
}

// A matrix in numpy's memory (any strides of whole elements: reversed and
// broadcast views too) copied once into the
// solver's working storage: LAPACK overwrites its input, so the caller's array
// is never touched. The buffer holds the array's rows as columns, exactly as
// the HDF5 reader holds a dataset's rows (m(r, c) = a[c, r]; the same matrix,
// H is symmetric): a C-contiguous array is one straight copy, and the
// package's answers and messages are bit for bit the command line's.
template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> copy_matrix(const py::array& a) {
    using Strides = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
    const auto item = static_cast<py::ssize_t>(sizeof(Scalar));
    Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>, 0, Strides> m(
        static_cast<const Scalar*>(a.data()), a.shape(1), a.shape(0), Strides(a.strides(0) / item, a.strides(1) / item));
    return m;
}

// The command line's memory rule (docs/batch.md): a Hessian whose analysis
// needs more than the budget (option max_memory, default half of usable
// memory; less under ulimit -v) is an error row, with the command line's
// message. `job` is held while the Hessian is then analysed.
std::optional<bv::Row> over_budget(bv::AloneJob& job, const bv::HessianInfo& info, const bv::AnalyzeOptions& opt,
                                   std::size_t more = 0) {
    return job.over_budget(info, bv::analysis_bytes(info, opt) + more, opt.read.max_bytes);
}

py::tuple analyze_array(const py::array& a, const py::dict& options, const std::string& label) {
    const bv::AnalyzeOptions opt = analyze_options(options);
    const std::string source = label + ":/";  // as the row names it (FILE:DATASET for a file)
    if (a.ndim() != 2)
        throw bv::InputError(source + ": not a matrix: " + std::to_string(a.ndim()) +
                             (a.ndim() == 1 ? " dimension" : " dimensions") + " (a Hessian is n x n)");
    if (a.shape(0) != a.shape(1))  // checked here: the copy below holds the array's rows as columns
        throw bv::InputError(source + ": matrix is not square: shape " + std::to_string(a.shape(0)) + "x" +
                             std::to_string(a.shape(1)));
    if (a.shape(0) == 0) throw bv::InputError(source + ": matrix is empty: shape 0x0");
    const char kind = a.dtype().kind();
    const bool f32 = kind == 'f' && a.itemsize() == 4;
    if (kind != 'f' || (a.itemsize() != 4 && a.itemsize() != 8))
        throw bv::InputError(source + ": element type " + py::str(a.dtype()).cast<std::string>() +
                             " is not float32 or float64");
    // Reversed (< 0) and broadcast (0) strides are read as they are;
    // big-endian values, or strides between elements (a field of a record
    // array), take one native copy first, counted in the budget.
    bool native = a.dtype().attr("isnative").cast<bool>();
    for (int k = 0; k < 2; ++k) native = native && a.strides(k) % static_cast<py::ssize_t>(a.itemsize()) == 0;
    bv::HessianInfo sized;  // the budget check names the matrix as make_hessian will
    sized.file = label;
    sized.dataset = "/";
    sized.n = static_cast<std::size_t>(a.shape(0));
    sized.stored_type = f32 ? "float32" : "float64";
    const double copy = native ? 0.0 : double(sized.n) * double(sized.n) * double(a.itemsize());
    bv::AloneJob job;
    if (auto over = over_budget(job, sized, opt, bv::bytes_of(copy))) throw bv::InputError(over->error);
    py::array b = a;
    if (!native) {
        try {
            b = py::module_::import("numpy").attr("ascontiguousarray")(a, a.dtype().attr("newbyteorder")("="));
        } catch (py::error_already_set& e) {
            if (!e.matches(PyExc_MemoryError)) throw;
            throw bv::InputError(source + ": out of memory (n = " + std::to_string(sized.n) + "); try option max_memory");
        }
    }
    bv::Attributes attrs;  // what an HDF5 dataset's attributes would say
    attrs.step = get<double>(options, "step");
    attrs.loss = get<double>(options, "loss");
    if (auto name = get<std::string>(options, "name")) attrs.name = *name;
    bv::Row row;
    try {
        Unlocked unlocked;
        bv::Hessian h = f32 ? bv::make_hessian(copy_matrix<float>(b), label, opt.read)
                            : bv::make_hessian(copy_matrix<double>(b), label, opt.read);
        h.info.attrs = attrs;
        row = bv::analyze_hessian(std::move(h), opt);
    } catch (const std::bad_alloc&) {  // the copy, within the budget but past what the machine gives
        throw bv::InputError(source + ": out of memory (n = " + std::to_string(sized.n) +
                             "); try option max_memory");
    }
    return to_python(row, json_spec(false, opt.regularized.has_value()));
}

// SOURCEs listed (each with its error row when it cannot be), ready to analyse.
struct Listed {
    std::vector<std::pair<std::vector<bv::ListedHessian>, bv::Row>> sources;
};

// A signal's Python handler (Ctrl-C's KeyboardInterrupt) runs here, between
// sources or Hessians of one call; its exception ends the call. The GIL held.
void interrupted() {
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

// Listing forks a child that walks the file (docs/errors.md). A fork while
// another thread is inside HDF5 would leave the child waiting on HDF5's lock:
// the package calls these under h5py's own lock (h5py holds it around every
// HDF5 call, with or without the GIL), and analyze_listed takes that lock
// around each read (Debian's HDF5 is not thread-safe); basinvol's own HDF5
// calls hold hdf5_mutex, which the listing takes before it forks. The GIL is
// released while a file is listed (a FIFO or a hung file system may hold it
// to the time limit), and Ctrl-C stops the listing within 0.1 s.
Listed list_sources(const std::vector<std::string>& texts, double list_timeout, bool once) {
    bv::ListOptions listing;
    listing.time_limit = list_timeout;
    listing.stop = [] {
        Held held;
        return PyErr_CheckSignals() != 0;  // the handler's exception stays set
    };
    interrupted();
    std::vector<bv::Source> sources;
    for (const auto& text : texts) sources.push_back(bv::parse_source(text));
    std::vector<bv::SourceListing> listings;
    try {
        Unlocked unlocked;
        listings = bv::list_each(sources, listing);  // several SOURCEs a child process
    } catch (const bv::ListingStopped&) {
        throw py::error_already_set();
    }
    if (once)  // a ranking: a Hessian two SOURCEs name is one row
        for (const auto& said : bv::drop_listed_twice(sources, listings))
            // at the user's call: this is called by _analyze_sources, called by rank
            if (PyErr_WarnEx(PyExc_UserWarning, said.c_str(), 3) < 0) throw py::error_already_set();
    Listed l;
    for (std::size_t i = 0; i < sources.size(); ++i) {
        bv::Row err;
        if (!listings[i].error.empty()) err = bv::source_error_row(sources[i], listings[i].error);
        l.sources.emplace_back(std::move(listings[i].hessians), std::move(err));
    }
    return l;
}

// An HDF5 file image held in memory (a structured Hessian the package wrote
// with h5py): no file touches the disk.
Listed list_image(const py::bytes& image, const std::string& label, const std::string& path) {
    Listed l;
    bv::Row err;
    const bv::Source source = bv::image_source(std::string(image), label, path);
    std::vector<bv::ListedHessian> list;
    {
        Unlocked unlocked;
        list = bv::expand_source(source, &err);
    }
    l.sources.emplace_back(std::move(list), std::move(err));
    return l;
}

// A thread (a daemon) still reading when the program exits would hold h5py's
// lock through the interpreter's finalization, which takes that lock to
// close h5py's objects: a hang at exit. An atexit handler (run before the
// finalization, drain_reads_at_exit) stops new reads and waits, the GIL
// released, for the reads under way to give the lock back.
struct ReadsUnderWay {
    std::mutex m;
    std::condition_variable done;
    int count = 0;  // threads between taking h5py's lock (or waiting for it) and giving it back
    bool exiting = false;
};
ReadsUnderWay& reads_under_way() {
    static auto* r = new ReadsUnderWay;  // never destroyed: used at exit
    return *r;
}

// A read under way from Python (the package's listings, under h5py's lock).
void reads_begin() {
    ReadsUnderWay& r = reads_under_way();
    std::lock_guard<std::mutex> hold(r.m);
    if (r.exiting) throw bv::Error("cannot read: the program is exiting");
    ++r.count;
}

void reads_end() {
    ReadsUnderWay& r = reads_under_way();
    std::lock_guard<std::mutex> hold(r.m);
    if (--r.count == 0) r.done.notify_all();
}

void drain_reads_at_exit() {
    ReadsUnderWay& r = reads_under_way();
    Unlocked unlocked;  // the readers take the GIL to give the lock back
    std::unique_lock<std::mutex> hold(r.m);
    r.exiting = true;
    r.done.wait(hold, [&] { return r.count == 0; });
}

// A Python lock (h5py's) held from C++ while basinvol reads: taken with
// the GIL, which its acquire gives up while it waits; counted among the
// reads under way.
class PythonLock : public bv::ReadLock {
public:
    explicit PythonLock(py::object lock) : lock_(std::move(lock)) {}
    ~PythonLock() override {
        Held held;
        lock_ = py::object();
    }
    void lock() override {
        reads_begin();
        Held held;
        try {
            lock_.attr("acquire")();
        } catch (py::error_already_set& e) {  // one line, as every row's error
            reads_end();
            const std::string why = py::str(e.value()).cast<std::string>();
            throw bv::Error("cannot take h5py's lock to read: " + why.substr(0, why.find('\n')));
        }
    }
    void unlock() override {
        {
            Held held;
            try {
                lock_.attr("release")();
            } catch (py::error_already_set& e) {
                e.discard_as_unraisable("basinvol: releasing h5py's lock");
            }
        }
        reads_end();
    }

private:
    py::object lock_;
};

// Every listed Hessian analysed in order (the GIL released), an error row for
// each source that could not be listed, as `basinvol volume` writes them.
// Ctrl-C raises KeyboardInterrupt after the Hessian being analysed. `lock`
// (h5py's, or None) is held around each read, not around the solves.
std::vector<py::tuple> analyze_listed(const Listed& l, const py::dict& options, const py::object& lock) {
    bv::AnalyzeOptions opt = analyze_options(options);
    if (!lock.is_none()) opt.read.hold = std::make_shared<PythonLock>(lock);
    std::vector<bv::Row> rows;
    {
        Unlocked unlocked;
        for (const auto& [list, err] : l.sources) {
            if (list.empty() && !err.source.empty()) rows.push_back(err);  // (else all an earlier SOURCE's)
            for (const auto& listed : list) {
                {
                    Held held;
                    interrupted();
                }
                bv::AloneJob job;
                auto over = listed.problem.empty() ? over_budget(job, listed.info, opt) : std::nullopt;
                rows.push_back(over ? std::move(*over) : bv::analyze_listed(listed, opt));
            }
        }
    }
    std::vector<py::tuple> out;
    const auto spec = json_spec(false, opt.regularized.has_value());
    for (const auto& r : rows) out.push_back(to_python(r, spec));
    return out;
}

// The budget check of a structure (or float16 matrix) the package is about to
// write into an in-memory image, made on an image of its declared shapes and
// types (no values: `declared`): the analysis's working set and the image
// itself, `image_bytes`, against the budget, before any value is copied
// (a broadcast view of 10⁹ values is refused in place, not materialized).
// The over-budget row's message, or "" (a listing's own error is the real
// image's to report).
std::string image_over_budget(const Listed& declared, const py::dict& options, double image_bytes) {
    const bv::AnalyzeOptions opt = analyze_options(options);
    for (const auto& [list, err] : declared.sources)
        for (const auto& listed : list) {
            if (!listed.problem.empty()) continue;
            bv::AloneJob job;
            if (auto over = over_budget(job, listed.info, opt, bv::bytes_of(image_bytes))) return over->error;
        }
    return {};
}

// `basinvol rank`'s ordering of rows already computed: ranked ok rows first
// with `place`, then error rows by source; each with its position in
// `rows_json` (the caller's Results keep their eigenvalues).
std::vector<std::pair<std::size_t, std::string>> rank(const std::vector<std::string>& rows_json,
                                                      const py::dict& options) {
    const bv::RankOptions ro = rank_options(options);
    std::vector<bv::Row> rows;
    std::vector<double> seconds;
    bool regularized = false;
    for (const auto& text : rows_json) {
        rows.push_back(from_json(text));  // checked, its messages naming its source
        regularized = regularized || rows.back().log_volume_regularized.has_value();
        // Each row carries its position through the ranking in its `seconds`,
        // which the ranking never reads (exact: positions stay far under
        // 2^53), and gets its own back after; ties list by source, as
        // `basinvol rank` lists them, then in input order.
        seconds.push_back(std::exchange(rows.back().seconds, static_cast<double>(rows.size() - 1)));
    }
    bv::rank_rows(rows, ro);
    if (regularized) bv::rank_regularized(rows, ro.tie_tol);
    std::vector<std::pair<std::size_t, std::string>> out;
    const auto spec = json_spec(true, regularized, any_sharded(rows));
    for (auto& r : rows) {
        const auto i = static_cast<std::size_t>(r.seconds);
        r.seconds = seconds[i];
        out.emplace_back(i, to_json(r, spec));
    }
    return out;
}

// `basinvol compare`'s verdict on two ok rows.
py::dict compare(const std::string& a_json, const std::string& b_json, const py::dict& options) {
    const bv::RankOptions ro = rank_options(options);
    const bv::Row a = from_json(a_json), b = from_json(b_json);
    for (const bv::Row* r : {&a, &b})
        if (!r->ok) throw bv::InputError(r->error.empty() ? r->source + ": an error row cannot be compared" : r->error);
    const bv::Comparison c = bv::compare_rows(a, b, ro);
    py::dict d;
    d["result"] = c.sign > 0 ? "above" : c.sign < 0 ? "below" : "tie";
    d["sign"] = c.sign;
    d["by"] = c.by == bv::Decider::saddle ? "saddle" : c.by == bv::Decider::curved ? "curved"
              : c.by == bv::Decider::volume ? "volume" : "tie";
    d["noise_decides"] = c.noise_decides;
    d["uncertain_by"] = c.uncertain_by;
    bv::Warnings both = c.warnings_a;
    both.add(c.warnings_b);
    d["warnings"] = both.names();
    d["reason"] = c.reason;
    return d;
}

std::vector<py::tuple> read_results(const std::string& path) {
    std::vector<bv::Row> rows;
    {
        Unlocked unlocked;  // other threads run while a large file is parsed
        rows = bv::read_rows(path);
    }
    bool with_place = false, regularized = false;
    for (const auto& r : rows) {
        with_place = with_place || r.place.has_value();
        regularized = regularized || r.log_volume_regularized.has_value();
    }
    std::vector<py::tuple> out;
    const auto spec = json_spec(with_place, regularized, any_sharded(rows));
    for (const auto& r : rows) out.push_back(to_python(r, spec));  // a spectrum's rows with their eigenvalues
    return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "basinvol's C++ core (use the functions of the basinvol package)";
    // os.fork, multiprocessing's fork start method and torch's DataLoader
    // fork while another thread may be solving (the GIL released).
    bv::hold_forks_for_work_under_way();
    py::module_::import("atexit").attr("register")(py::cpp_function(&drain_reads_at_exit));
    auto error = py::register_exception<bv::Error>(m, "Error");
    py::register_exception<bv::InputError>(m, "InputError", error);
    py::register_exception<bv::UsageError>(m, "UsageError", error);
    py::register_exception<bv::NumericError>(m, "NumericError", error);
    m.def("reads_begin", &reads_begin);
    m.def("reads_end", &reads_end);
    m.def("analyze_array", &analyze_array, py::arg("array"), py::arg("options"), py::arg("label"));
    py::class_<Listed>(m, "Listed");
    m.def("list_sources", &list_sources, py::arg("sources"), py::arg("list_timeout") = bv::default_listing_time_limit,
          py::arg("once") = false);
    m.def("list_image", &list_image, py::arg("image"), py::arg("label"), py::arg("path"));
    m.def("image_over_budget", &image_over_budget, py::arg("declared"), py::arg("options"), py::arg("image_bytes"));
    m.def("analyze_listed", &analyze_listed, py::arg("listed"), py::arg("options"), py::arg("lock") = py::none());
    m.def("rank", &rank, py::arg("rows"), py::arg("options"));
    m.def("compare", &compare, py::arg("a"), py::arg("b"), py::arg("options"));
    m.def("read_results", &read_results, py::arg("path"));
    m.def("version", &bv::version);
    m.def("library_versions", [] { return bv::library_versions().dump(); });
}
