// basinvol-mpi: one Hessian across MPI ranks (docs/cluster.md).
//
//   mpirun -n P basinvol-mpi volume SOURCE... [options]
//   mpirun -n P basinvol-mpi rank SOURCE... [options]
//
// The same SOURCEs, analysis options, rows, formats and exit statuses as
// `basinvol volume` / `basinvol rank`. Rank 0 lists the sources and writes
// every row; each dense Hessian is read, checked and solved by all ranks
// together (src/mpi/distributed.cpp); a structured Hessian is walked by
// every rank, its factors' Grams summed across ranks (DistributedGram), and
// what cannot be listed or read as a Hessian is an error row rank 0 writes.
// Every rank takes part in every collective step, and every
// failure is agreed on before the next one, so a bad input is an error row
// and never a hang.
#include "../cli/options.hpp"
#include "../cli/common.hpp"
#include "../cli/descriptors.hpp"
#include "../cli/stack.hpp"
#include "../cli/journal.hpp"

#include <basinvol/batch/scheduler.hpp>
#include <basinvol/error.hpp>
#include <basinvol/io/source.hpp>
#include <basinvol/io/structure.hpp>
#include <basinvol/mpi/distributed.hpp>
#include <basinvol/rank/ranking.hpp>
#include <basinvol/version.hpp>

#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>
#include <optional>

namespace {

using namespace cli;

// What every rank must know of one row to be written, in input order.
struct Item {
    // error (a source that cannot be listed, a dataset that cannot be a
    // Hessian): rank 0 writes the row; dense and structured: every rank takes
    // part (structured: factors' Grams across ranks).
    enum Kind { error, dense, structured } kind = error;
    bv::HessianInfo info;          // file, dataset, n, stored_type and attributes on every rank; all of it on rank 0
    std::optional<bv::Row> row;    // error: the row (rank 0)
};

// A file or dataset name as it is on disk, any bytes (JSON strings must be
// UTF-8, and a name replaced by U+FFFD could not be opened): two hex digits
// a byte.
std::string hex_of(const std::string& bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * bytes.size());
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string bytes_of_hex(const std::string& hex) {
    const auto digit = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    std::string out(hex.size() / 2, '\0');
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<char>(digit(hex[2 * i]) * 16 + digit(hex[2 * i + 1]));
    return out;
}

// Attributes across ranks, bit for bit (NaN and infinities included, which
// JSON numbers cannot hold) and names as bytes.
std::uint64_t bits_of(double v) {
    std::uint64_t b;
    std::memcpy(&b, &v, sizeof b);
    return b;
}
double double_of(std::uint64_t b) {
    double v;
    std::memcpy(&v, &b, sizeof v);
    return v;
}
nlohmann::json attributes_json(const bv::Attributes& a) {
    auto number = [](const std::optional<double>& v) { return v ? nlohmann::json(bits_of(*v)) : nlohmann::json(); };
    nlohmann::json numbers = nlohmann::json::object(), strings = nlohmann::json::object();
    for (const auto& [k, v] : a.numbers) numbers[hex_of(k)] = bits_of(v);
    for (const auto& [k, v] : a.strings) strings[hex_of(k)] = hex_of(v);
    return {{"step", number(a.step)}, {"loss", number(a.loss)}, {"loss_threshold", number(a.loss_threshold)},
            {"hessian_error", number(a.hessian_error)}, {"name", a.name ? nlohmann::json(hex_of(*a.name)) : nlohmann::json()},
            {"numbers", numbers}, {"strings", strings}};
}
nlohmann::json unread_json(const std::vector<bv::UnreadAttribute>& unread) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& u : unread) list.push_back({hex_of(u.object), hex_of(u.name), hex_of(u.why)});
    return list;
}
bv::Attributes attributes_of(const nlohmann::json& j) {
    auto number = [](const nlohmann::json& v) {
        return v.is_null() ? std::optional<double>() : double_of(v.get<std::uint64_t>());
    };
    bv::Attributes a;
    a.step = number(j["step"]);
    a.loss = number(j["loss"]);
    a.loss_threshold = number(j["loss_threshold"]);
    a.hessian_error = number(j["hessian_error"]);
    if (!j["name"].is_null()) a.name = bytes_of_hex(j["name"].get<std::string>());
    for (const auto& [k, v] : j["numbers"].items()) a.numbers[bytes_of_hex(k)] = double_of(v.get<std::uint64_t>());
    for (const auto& [k, v] : j["strings"].items()) a.strings[bytes_of_hex(k)] = bytes_of_hex(v.get<std::string>());
    return a;
}

// Rank 0 lists the sources; the others get what a distributed solve needs
// (and a structure's attributes, which its walk on every rank checks).
std::vector<Item> plan_items(const std::vector<std::string>& sources, double list_timeout, int me, bool once) {
    std::vector<Item> items;
    std::string text;
    if (me == 0) {
        bv::ListOptions listing;
        listing.time_limit = list_timeout;
        for (auto& w : plan(sources, std::nullopt, false, listing, nullptr, nullptr, once, "basinvol-mpi")) {
            if (w.error) {
                items.push_back({Item::error, {}, std::move(w.error)});
                continue;
            }
            const bv::HessianInfo& h = w.info;
            items.push_back({h.structure.empty() ? Item::dense : Item::structured, h, std::nullopt});
        }
        nlohmann::json list = nlohmann::json::array();
        for (const auto& it : items)
            list.push_back({{"kind", static_cast<int>(it.kind)}, {"file", hex_of(it.info.file)},
                            {"dataset", hex_of(it.info.dataset)},
                            {"n", it.info.n}, {"stored_type", it.info.stored_type}, {"structure", it.info.structure},
                            {"stored_eps", it.info.stored_eps}, {"attrs", attributes_json(it.info.attrs)},
                            {"unread", unread_json(it.info.unread_attributes)}});
        text = list.dump();
    }
    unsigned long long len = text.size();
    MPI_Bcast(&len, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    text.resize(len);
    MPI_Bcast(text.data(), static_cast<int>(len), MPI_CHAR, 0, MPI_COMM_WORLD);
    if (me != 0)
        for (const auto& j : nlohmann::json::parse(text)) {
            Item it;
            it.kind = static_cast<Item::Kind>(j["kind"].get<int>());
            it.info.file = bytes_of_hex(j["file"].get<std::string>());
            it.info.dataset = bytes_of_hex(j["dataset"].get<std::string>());
            it.info.n = j["n"];
            it.info.stored_type = j["stored_type"];
            it.info.structure = j["structure"];
            it.info.stored_eps = j["stored_eps"];
            it.info.attrs = attributes_of(j["attrs"]);
            for (const auto& u : j["unread"])  // every rank reads a structure's parts: none reads these
                it.info.unread_attributes.push_back({bytes_of_hex(u[0].get<std::string>()),
                                                     bytes_of_hex(u[1].get<std::string>()),
                                                     bytes_of_hex(u[2].get<std::string>())});
            items.push_back(std::move(it));
        }
    return items;
}

// Rank 0, once every row is in: places (rank), the end of the output, the
// exit status.
int finish_rows(std::vector<bv::Row>& rows, bool ranking, bool all_ok, const CommonOptions& o,
                const bv::AnalyzeOptions& a, bv::RowWriter& writer, AtomicFile* file) {
    try {
        if (ranking) {
            place_rows(rows, o, a, o.regularized.has_value(), "basinvol-mpi");
            for (const auto& r : rows) writer.write(r);
        }
        writer.finish();
        if (file) {
            file->commit();
            install_interrupt_handlers(true, "basinvol-mpi: interrupted by {signal} after every row was written\n");
        }
        return finish_output(all_ok ? exit_ok : exit_failed);
    } catch (const bv::Error& e) {
        std::cerr << "basinvol-mpi: error: " << cli::one_line(e.what()) << '\n';
        return exit_failed;
    }
}

// One dense Hessian across every rank; the row on rank 0. Rank 0 watches the
// file as the serial reader does (bv::read_consistently): a change during the
// read is the error, ahead of what the mixture broke; a write in the tick the
// read started is read again, by every rank, after that tick.
//
// As in the serial automatic plan, a Hessian of n ≥ dense_below (or any, with
// --method sketch) is first sketched; a sketch that certifies the cut is the
// row, and only otherwise does ScaLAPACK compute every eigenvalue.
bv::Row dense_row(const bv::HessianInfo& info, const bv::AnalyzeOptions& a, int me) {
    const bool sketch = a.method == bv::Method::sketch ||
                        (a.method == bv::Method::automatic && info.n >= bv::dense_below);
    const auto t0 = std::chrono::steady_clock::now();
    for (int pass = 1;; ++pass) {
        const long long start = bv::file_clock_ns();
        const bv::FileStamp before = me == 0 ? bv::stamp_file(info) : bv::FileStamp{};
        std::optional<bv::Row> sketched;
        std::string declined;  // why a sketch was not kept, and its work: the fallback row carries both
        bv::SolverStats spent;
        bv::mpi::SketchFirst keep;
        if (sketch)
            keep = [&](const bv::HessianInfo& checked, const bv::Spectrum& s, double frobenius, double asymmetry_norm) {
                sketched = bv::analyze_partial(checked, s, frobenius, asymmetry_norm, a, &declined);
                if (!sketched) spent = s.stats;
                return sketched.has_value();
            };
        const auto d = bv::mpi::distributed_dense(MPI_COMM_WORLD, info, a.read, keep);
        int again = 0;
        std::string error;
        if (me == 0) {
            try {
                bv::check_unchanged(info, before);
                const bool unsettled = bv::written_since(before, start);
                again = unsettled && pass < 3;
                if (unsettled && !again) throw bv::file_changed(info, "it is being written");
            } catch (const bv::InputError& e) {
                error = e.what();
            }
            if (error.empty()) error = d.error;
        }
        MPI_Bcast(&again, 1, MPI_INT, 0, MPI_COMM_WORLD);
        if (!again) {
            if (me != 0) return {};
            bv::Row r = !error.empty()              ? bv::error_row(info, error)
                        : d.sketched && sketched ? std::move(*sketched)
                                                 : bv::analyze_eigenvalues(d.info, d.eigenvalues, d.frobenius,
                                                                           d.asymmetry_norm, d.seconds, a, declined, spent);
            // The row's wall time is its read, solve and measure across ranks, as a serial row's.
            r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            return r;
        }
        if (me == 0) bv::wait_past(before);  // the other ranks wait in the next read's collectives
    }
}

// Rank 0 takes FILE.lock as basinvol does (one run at a time writes FILE),
// opens -o FILE (never one the run reads) and the row writer; every rank
// returns 0, or the exit status when that failed (2: -o names an input).
int open_output(const std::string& output, const std::vector<Item>& items, const bv::ReportSpec& spec, int me,
                std::unique_ptr<OutputLock>& lock, std::unique_ptr<AtomicFile>& file,
                std::unique_ptr<bv::RowWriter>& writer) {
    std::string open_error;
    int open_status = exit_failed;
    if (me == 0) {
        try {
            if (!output.empty()) {
                std::set<std::string> inputs;
                for (const Item& it : items) {
                    inputs.insert(it.row ? it.row->file : it.info.file);
                    inputs.insert(it.info.reads_also.begin(), it.info.reads_also.end());
                }
                refuse_input_as_output(output, inputs);
                const OutputTarget target = output_target(output);
                if (!target.stream) {
                    lock = std::make_unique<OutputLock>(target.directory ? output : target.path);
                    if (!lock->warning().empty()) std::cerr << lock->warning() << '\n';
                    remove_stale_temps(target.directory ? output : target.path);
                }
                file = std::make_unique<AtomicFile>(output);
            }
            writer = std::make_unique<bv::RowWriter>(file ? file->stream() : std::cout, spec);
        } catch (const bv::UsageError& e) {
            open_error = cli::one_line(usage_message(e)) + "\nRun 'basinvol-mpi --help' for usage.";
            open_status = exit_usage;
        } catch (const bv::Error& e) {
            open_error = "error: " + std::string(e.what());
        }
    }
    int cannot_write = open_error.empty() ? 0 : open_status;
    MPI_Bcast(&cannot_write, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (cannot_write && me == 0) std::cerr << "basinvol-mpi: " << open_error << '\n';  // worded as basinvol's
    return cannot_write;
}

int run(const std::string& command, const std::vector<std::string>& args, const CommonOptions& o,
        const std::string& output, double list_timeout, int me) {
    // Options are checked on every rank alike (the same arguments): all stop together.
    bv::AnalyzeOptions a;
    std::vector<std::string> sources;
    try {
        a = to_analyze(o);
        if (a.method != bv::Method::automatic && a.method != bv::Method::dense && a.method != bv::Method::sketch)
            throw bv::UsageError("method", bv::name_of(bv::method_names(), o.method) +
                                 " is not available across ranks: the distributed solvers are sketch and dense "
                                 "(docs/cluster.md)");
        // A read stopped on one rank would leave the others waiting in a collective.
        if (a.read.isolate == bv::ReadOptions::Isolation::always)
            throw bv::UsageError("read_timeout", "is not available in basinvol-mpi: ranks read their parts together");
        if (!std::isfinite(list_timeout))
            throw bv::UsageError("--list-timeout must be a positive number of seconds");
        for (const auto& s : args) {
            bv::parse_source(s);  // an empty SOURCE: a usage error on every rank, before rank 0 lists
            if (s == "-") throw bv::UsageError("'-' (SOURCEs from standard input) is not read by basinvol-mpi: "
                                               "mpirun gives standard input to rank 0 only; name the SOURCEs");
        }
        sources = args;
    } catch (const bv::UsageError& e) {
        if (me == 0)  // as basinvol words a usage error, and as CLI11's own are worded below
            std::cerr << "basinvol-mpi: " << cli::one_line(usage_message(e)) << "\nRun 'basinvol-mpi --help' for usage.\n";
        return exit_usage;
    }
    const std::vector<Item> items = plan_items(sources, list_timeout, me, command == "rank");
    const bool ranking = command == "rank";
    // SIGINT or SIGTERM (mpirun forwards it, then kills the ranks a few
    // seconds later): rank 0 removes its temporary -o file, says so and
    // exits 128 + the signal (the status mpirun reports is its own, 1).
    install_interrupt_handlers(
        true, me != 0 ? std::string()
                      : "basinvol-mpi: interrupted by {signal}: the Hessians in progress are abandoned" +
                            (output.empty() || names_standard_output(output)
                                 ? std::string("; the rows written so far stay\n")
                                 : "; " + output + " is left as it was\n"));

    std::unique_ptr<OutputLock> lock;  // released after the rows are committed
    std::unique_ptr<AtomicFile> file;
    std::unique_ptr<bv::RowWriter> writer;
    bv::ReportSpec spec = spec_for(command, o, ranking);
    int ranks = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    spec.context["tool"] = "basinvol-mpi";
    spec.context["ranks"] = ranks;
    if (const int cannot_write = open_output(output, items, spec, me, lock, file, writer))
        return cannot_write;

    bool all_ok = true;
    std::vector<bv::Row> rows;
    auto emit = [&](const bv::Row& said) {
        bv::Row r = cli_row(said);
        all_ok = all_ok && r.ok;
        if (!r.ok) std::cerr << "basinvol-mpi: error: " << cli::one_line(r.error) << '\n';  // one line per source, as basinvol's
        if (ranking) rows.push_back(std::move(r));
        else writer->write(r);
    };
    // A rank's failure, agreed on every rank, as the row rank 0 writes.
    auto failed_on = [&](const bv::HessianInfo& info, const bv::mpi::Agreed& f) {
        return bv::error_row(info, f.message + " (on MPI rank " + std::to_string(f.rank) + " of " +
                                       std::to_string(ranks) + ")");
    };
    const bv::mpi::DistributedGram gram(MPI_COMM_WORLD);
    bv::AnalyzeOptions spread = a;
    spread.gram = &gram;
    for (const Item& it : items) {
        if (it.kind == Item::structured) {
            // Every rank walks the structure (small parts redundantly); factors
            // are read in slabs and their Grams summed across ranks. Every
            // other part (a dense block, a diagonal, a Kronecker factor) each
            // rank reads and solves whole, so the working set without the
            // factors' G is each rank's, held against the rank's budget by
            // basinvol's rule and message (a factor's slab and Gram are checked
            // as they are read). A structure that cannot be described is
            // analyze's error row.
            unsigned long long need = 0;  // agreed across ranks, so that all of them go on or none
            std::string walk;             // why this rank cannot walk the structure
            // A FIFO or device where a rank's copy should be (another
            // rank's, or rank 0's own replaced since it was listed) would
            // hold that rank's walk in HDF5's open forever: refused first.
            const bv::mpi::Agreed not_a_file =
                bv::mpi::first_failure(MPI_COMM_WORLD, bv::mpi::not_a_file_here(it.info, it.info.file));
            if (not_a_file.rank >= 0) {
                if (me == 0) emit(failed_on(it.info, not_a_file));
                continue;
            }
            try {
                need = bv::spread_working_bytes(bv::describe_structure(it.info, a.read));
            } catch (const bv::Error& e) {
                walk = e.what();
            }
            // A structure some ranks cannot walk (a file or an external
            // link's target missing on their node) would leave the others
            // waiting in a factor's Gram: that rank's message is the row.
            // When every rank fails, analyze gives the row, as basinvol's.
            int failed = !walk.empty();
            MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
            const bv::mpi::Agreed first = bv::mpi::first_failure(MPI_COMM_WORLD, walk);
            if (failed > 0 && failed < ranks) {
                if (me == 0) emit(failed_on(it.info, first));
                continue;
            }
            MPI_Allreduce(MPI_IN_PLACE, &need, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
            const std::size_t budget = bv::mpi::rank_budget(MPI_COMM_WORLD, a.read);
            if (need) {
                bv::HessianInfo spread_info = it.info;
                spread_info.working_bytes = static_cast<std::size_t>(need);
                // A factor's G is spread across ranks: its part is no longer the one that needs most.
                if (spread_info.working_bytes != it.info.working_bytes) spread_info.working_part.clear();
                // Agreed: under ulimit -v each rank's room is its own (what
                // its mappings leave), and a rank that went on alone would
                // wait for the others in the factor's Gram.
                const auto over = bv::mpi::structure_over_budget(spread_info, bv::analysis_bytes(spread_info, a), budget);
                const bv::mpi::Agreed refused = bv::mpi::first_failure(MPI_COMM_WORLD, over ? over->error : "");
                if (refused.rank >= 0) {
                    if (me == 0) emit(refused.rank == 0 ? *over : failed_on(it.info, refused));
                    continue;
                }
            }
            bv::Row r = bv::analyze(it.info, spread);
            // A rank whose copy failed (a NaN or a member missing on its node
            // only) fails the row on every rank.
            const std::string elsewhere = gram.finish(it.info, r.ok ? "" : r.error);
            if (me == 0) emit(r.ok && !elsewhere.empty() ? bv::error_row(it.info, elsewhere) : std::move(r));
        } else if (it.kind == Item::dense) {
            bv::Row r = dense_row(it.info, a, me);
            if (me == 0) emit(std::move(r));
        } else if (me == 0) {
            emit(*it.row);
        }
    }
    int status = exit_ok;
    if (me == 0) status = finish_rows(rows, ranking, all_ok, o, a, *writer, file.get());
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    cli::hold_standard_descriptors();
    cli::ensure_stack();
    bv::quiet_idle_blas_threads();
    MPI_Init(&argc, &argv);
    int me = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    // Ranks share the node's cores: one BLAS thread each (ScaLAPACK is the parallelism).
    // Under an address-space limit, one thread too: each thread OpenBLAS
    // runs maps a buffer of its own, and waits forever when it cannot.
    if (size > 1 || bv::address_space_left() != SIZE_MAX) bv::set_blas_threads(1);

    CLI::App app{"basinvol-mpi: basinvol's volume and rank with each dense Hessian spread over MPI ranks\n"
                 "(ScaLAPACK, parallel HDF5). The same rows as basinvol's; SOURCEs are given as arguments, and\n"
                 "basinvol's batch options (-j, --files-from, --shard, --resume, --order, --per-block, --read-timeout)\n"
                 "are its alone (docs/cluster.md).",
                 "basinvol-mpi"};
    app.set_version_flag("--version", "basinvol-mpi " + bv::version());
    app.require_subcommand(1);
    app.footer("Example: mpirun -n 4 basinvol-mpi volume big.h5:/hessian -f jsonl -o rows.jsonl");
    CommonOptions o;
    std::vector<std::string> sources;
    std::string output;
    double list_timeout = bv::default_listing_time_limit;
    auto* volume = app.add_subcommand("volume", "Dimension and log-volume of each Hessian");
    auto* rank = app.add_subcommand("rank", "Rank basins: dimension first, then log-volume (place 1 = largest)");
    for (auto* sub : {volume, rank}) {
        sub->add_option("SOURCE", sources, "FILE or FILE:PATH (a dataset, or a group: every Hessian below it)")
            ->required();
        add_common(sub, o, sub == rank, true);
        // Ranks read their parts together: no child process per read. The
        // option stays (its use is a usage error that says so) but is not offered.
        sub->get_option("--read-timeout")->group("");
        // The distributed solvers are sketch and dense: cholesky and lanczos
        // are taken, then refused with a usage error that says so (run()).
        auto* method = sub->get_option("--method");
        method->description("Eigen-solver: auto, dense or sketch across ranks (docs/cluster.md)");
        method->get_validator("choice")->description("{auto, dense, sketch}");
        sub->add_option("-o,--output", output, "Write results to FILE (written by rank 0, renamed into place at the end; '-': standard output)")
            ->check(cli::non_empty("a FILE"));
        sub->add_option("--list-timeout", list_timeout,
                        "Seconds a SOURCE's structure walk (on rank 0) may take before it is stopped and is an error row")
            ->transform(cli::positive_seconds())
            ->capture_default_str();
        // basinvol-mpi draws no progress bar; the flag is taken so that a
        // basinvol command line runs under mpirun unchanged.
        sub->add_flag("--no-progress", "Accepted for basinvol's command lines (basinvol-mpi draws no progress bar)");
    }
    int status = 0;
    try {
        if (argc > 1 && argv[1][0] != '-' && std::string(argv[1]) != "volume" && std::string(argv[1]) != "rank") {
            const std::string word = argv[1];
            const bool serial = word == "compare" || word == "spectrum" || word == "validate";
            if (me == 0)
                std::cerr << "basinvol-mpi: " << (serial ? "'" + word + "' is basinvol's alone: run basinvol " + word
                                                          : "unknown command '" + word + "'")
                          << " (basinvol-mpi runs volume and rank)\nRun 'basinvol-mpi --help' for usage.\n";
            MPI_Finalize();
            return exit_usage;
        }
        // Rank 0's file system decides, for every rank alike.
        const std::string option_like = me == 0 ? cli::option_like_source(app, argc, argv) : "";
        int refused = option_like.empty() ? 0 : 1;
        MPI_Bcast(&refused, 1, MPI_INT, 0, MPI_COMM_WORLD);
        if (refused) {
            if (me == 0) std::cerr << "basinvol-mpi: " << option_like << "\n";
            MPI_Finalize();
            return exit_usage;
        }
        app.parse(argc, argv);
        // -o - or a name of descriptor 1 (/dev/stdout): standard output, as with no -o.
        if (names_standard_output(output)) output.clear();
        cli::format_from_output(*volume ? *volume : *rank, output, o.format);
        status = run(*volume ? "volume" : "rank", sources, o, output, list_timeout, me);
        // Rank 0 has said everything (its rows are out, or why there are
        // none). When another rank leaves first with a failing status,
        // mpirun sends SIGTERM to those still in MPI_Finalize: that is not
        // an interruption of the run, so no line says it was.
        if (me == 0) install_interrupt_handlers(true);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) {  // --help, --version: stdout, exit 0
            status = me == 0 ? cli::written(app.exit(e), "basinvol-mpi") : 0;
        } else {
            if (me == 0) std::cerr << "basinvol-mpi: " << e.what() << "\nRun 'basinvol-mpi --help' for usage.\n";
            status = exit_usage;
        }
    }
    MPI_Finalize();
    return status;
}
