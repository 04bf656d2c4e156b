#include "batch.hpp"
#include "journal.hpp"
#include "descriptors.hpp"
#include "signals.hpp"

#include <basinvol/batch/results.hpp>
#include <basinvol/error.hpp>
#include <basinvol/io/structure.hpp>
#include <basinvol/rank/ranking.hpp>
#include <basinvol/report/text.hpp>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <set>
#include <sstream>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ext/stdio_filebuf.h>
#include <fcntl.h>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace cli {

namespace {

// A list of SOURCEs whole; `what` names it in messages. An HDF5 file given
// as a list is refused from its first bytes, before the rest is read (its
// bytes would read as names).
std::string list_text(std::istream& in, const std::string& what) {
    std::string text(4, '\0');
    in.read(text.data(), 4);
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text == "\x89HDF")  // HDF5's signature starts \x89HDF
        throw bv::UsageError(what + " is an HDF5 file, not a list of SOURCEs (give it as a SOURCE)");
    return text + std::string(std::istreambuf_iterator<char>(in), {});
}

// Standard input, open: a closed one is a usage error, not an empty list.
std::istream& open_stdin() {
    if (stdin_was_closed()) throw bv::UsageError("'-' reads standard input, which is closed");
    return std::cin;
}

// One SOURCE a line; or, when the list holds a NUL (find -print0), one
// between NULs, as given (a name may hold a line break; a NUL never). A
// UTF-8 byte-order mark at the start, as some editors save, is not part of
// the first name.
void read_list(const std::string& text, std::vector<std::string>& out) {
    const bool nul = text.find('\0') != std::string::npos;
    std::size_t at = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
    while (at < text.size()) {
        const std::size_t end = std::min(text.find(nul ? '\0' : '\n', at), text.size());
        std::string one = text.substr(at, end - at);
        at = end + 1;
        if (!nul && !one.empty() && one.back() == '\r') one.pop_back();
        if (one.find_first_not_of(" \t") != std::string::npos) out.push_back(std::move(one));
    }
}

}  // namespace

std::vector<std::string> gather_sources(const std::vector<std::string>& args, const BatchCli& b) {
    std::vector<std::string> all;
    bool stdin_read = false;
    for (const auto& a : args) {
        if (a != "-") {
            all.push_back(a);
            continue;
        }
        // '-' as a SOURCE reads SOURCEs from standard input, as --files-from - does.
        if (stdin_read) throw bv::UsageError("standard input ('-', /dev/stdin) is given more than once");
        stdin_read = true;
        read_list(list_text(open_stdin(), "'-' (standard input)"), all);
    }
    for (const auto& list : b.files_from) {
        // /dev/stdin and /dev/fd/0 name standard input too (read once, the second read empty).
        if (list == "-" || descriptor_named(list) == 0) {
            if (stdin_read) throw bv::UsageError("standard input ('-', /dev/stdin) is given more than once");
            stdin_read = true;
            read_list(list_text(open_stdin(), "--files-from: standard input"), all);
        } else {
            struct stat st {};
            if (::stat(list.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
                throw bv::UsageError("--files-from: '" + list + "' is a directory, not a list of SOURCEs");
            std::ifstream in(list, std::ios::binary);
            if (!in) throw bv::UsageError("--files-from: cannot open '" + list + "': " + std::strerror(errno));
            read_list(list_text(in, "--files-from: '" + list + "'"), all);
        }
    }
    if (all.empty())
        throw bv::UsageError(b.files_from.empty() ? "no SOURCE given (give SOURCE arguments or --files-from FILE)"
                                                  : "no SOURCE given: the --files-from list is empty");
    return all;
}

namespace {

// The work item of a listed dataset: an error item when the listing found a problem.
bv::WorkItem item_of(bv::ListedHessian listed) {
    bv::WorkItem w;
    if (!listed.problem.empty()) w.error = bv::error_row(listed.info, listed.problem);
    w.info = std::move(listed.info);
    return w;
}

// The rows `list` gives for the blocks of `whole`, each its own item (an
// error item when it cannot be listed); one error item, labelled
// "<dataset>[label]", when `list` fails as a whole.
void add_parts(const bv::ListedHessian& whole, const std::string& label,
               const std::function<std::vector<bv::ListedHessian>()>& list, std::vector<bv::WorkItem>& items) {
    try {
        for (auto& part : list()) items.push_back(item_of(std::move(part)));
    } catch (const bv::Error& e) {
        bv::WorkItem w;
        w.info = whole.info;
        std::string why = e.what();
        const std::string prefix = w.info.source() + ": ";
        if (why.rfind(prefix, 0) == 0) why.erase(0, prefix.size());
        w.info.dataset += "[" + label + "]";
        w.error = bv::error_row(w.info, why);
        items.push_back(std::move(w));
    }
}

// The top-level members of a blocks structure ("[blocks]" when its layout
// cannot be read again).
void add_blocks(const bv::ListedHessian& whole, std::vector<bv::WorkItem>& items, const bv::ListOptions& listing) {
    add_parts(whole, "blocks", [&] { return bv::list_blocks(whole, listing); }, items);
}

// The exporter's parameter blocks of a dense Hessian ("[param_offsets]" when
// its attributes break a rule).
void add_parameter_blocks(const bv::ListedHessian& whole, std::vector<bv::WorkItem>& items) {
    bv::ReadOptions read;
    read.image = whole.image;
    add_parts(whole, "param_offsets", [&] { return bv::list_parameter_blocks(whole.info, read); }, items);
}

}  // namespace

std::vector<bv::WorkItem> plan(const std::vector<std::string>& sources, const std::optional<bv::Shard>& shard,
                               bool per_block, const bv::ListOptions& listing, std::set<std::string>* listed_sources,
                               std::set<std::string>* split, bool once, const char* program) {
    std::vector<bv::WorkItem> items;
    std::vector<bv::Source> parsed;
    for (const auto& text : sources) parsed.push_back(bv::parse_source(text));
    std::vector<bv::SourceListing> listings = bv::list_each(parsed, listing);
    if (once)
        for (const auto& said : bv::drop_listed_twice(parsed, listings))
            std::cerr << program << ": warning: " << one_line(said) << '\n';
    for (std::size_t i = 0; i < parsed.size(); ++i) {
        // A SOURCE that cannot be listed is an error row in every shard:
        // which of its Hessians a shard holds cannot be known, and a shard
        // that said nothing lost them without a word (merging keeps one).
        if (!listings[i].error.empty()) {
            bv::WorkItem w;
            w.error = bv::source_error_row(parsed[i], listings[i].error);
            if (split) split->insert(w.label());
            items.push_back(std::move(w));
            continue;
        }
        if (listed_sources) listed_sources->insert(bv::source_error_row(parsed[i], {}).source);
        for (auto& listed : listings[i].hessians) {
            const bv::HessianInfo& h = listed.info;
            if (split) split->insert(h.source());
            if (shard && !bv::in_shard(bv::shard_key(h.file, h.dataset), *shard)) continue;
            const bool blocks = per_block && listed.problem.empty();
            items.push_back(item_of(listed));
            if (blocks && h.structure == "blocks") add_blocks(listed, items, listing);
            if (blocks) add_parameter_blocks(listed, items);  // (a structure's: a check that it has none)
        }
    }
    return items;
}

std::vector<bv::WorkItem> work_for(const std::vector<std::string>& args, const BatchCli& b,
                                   std::set<std::string>* listed, std::set<std::string>* split, bool once) {
    if (!(b.list_timeout > 0) || !std::isfinite(b.list_timeout))
        throw bv::UsageError("--list-timeout must be a positive number of seconds");
    std::optional<bv::Shard> shard;
    if (!b.shard.empty()) shard = bv::parse_shard(b.shard);
    bv::ListOptions listing;
    listing.time_limit = b.list_timeout;
    return plan(gather_sources(args, b), shard, b.per_block, listing, listed, split, once);
}

std::size_t memory_budget(const CommonOptions& o) {
    return o.max_memory.empty() ? bv::default_memory_budget() : bv::parse_memory_size(o.max_memory);
}

// ---------------------------------------------------------------- interrupts

namespace {

std::atomic<bool> g_stop{false};
volatile std::sig_atomic_t g_signal = 0;
std::atomic<long long> g_signal_ns{0};  // when g_signal came (CLOCK_MONOTONIC)
char g_temp[4096] = {0};  // the temporary output file, removed by a second signal
volatile std::sig_atomic_t g_abandon_at_once = 0;
// Said on stderr when a signal abandons the run, around the signal's name ("" for nothing).
char g_abandon_before[256] = {0}, g_abandon_after[512] = {0};

extern "C" void on_signal(int sig) {
    // A closed terminal sends SIGHUP twice (the shell's, then the kernel's
    // hangup): only a person's or a batch system's second signal abandons.
    if (sig == SIGHUP && g_signal != 0) return;
    // One stop delivered twice is one stop (cli::same_stop_ns).
    if (sig == g_signal && cli::monotonic_ns() - g_signal_ns.load() < cli::same_stop_ns) return;
    // The second signal abandons (a stop for a failed stdout is not a signal).
    if (g_signal != 0 || g_abandon_at_once) {
        if (g_temp[0]) ::unlink(g_temp);
        if (g_abandon_before[0]) {  // write(2) alone: nothing else is safe here
            const char* name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP";
            for (const char* part : {static_cast<const char*>(g_abandon_before), name,
                                     static_cast<const char*>(g_abandon_after)})
                if (::write(2, part, std::strlen(part)) < 0) break;
        }
        ::_exit(128 + sig);
    }
    g_signal_ns.store(cli::monotonic_ns());
    g_signal = sig;
    g_stop.store(true);
}

}  // namespace

// What a second signal leaves on stderr: a script's log says why the output stopped.
const std::string second_signal_note = "basinvol: interrupted again ({signal}): the Hessians running are abandoned\n";

void install_interrupt_handlers(bool abandon_at_once, const std::string& abandon_note) {
    g_abandon_at_once = abandon_at_once ? 1 : 0;
    const std::size_t at = abandon_note.find("{signal}");
    std::snprintf(g_abandon_before, sizeof g_abandon_before, "%s", abandon_note.substr(0, at).c_str());
    std::snprintf(g_abandon_after, sizeof g_abandon_after, "%s",
                  at == std::string::npos ? "" : abandon_note.substr(at + 8).c_str());
    catch_stop_signals(on_signal);
}

const std::atomic<bool>* interrupt_flag() { return &g_stop; }
int interrupt_signal() { return static_cast<int>(g_signal); }
void request_stop() { g_stop.store(true); }

// ---------------------------------------------------------------- output file

AtomicFile::AtomicFile(const std::string& path) {
    const OutputTarget target = output_target(path);
    path_ = target.path;
    if (target.directory) throw bv::UsageError("-o " + path + " is a directory; -o needs a file");
    if (target.descriptor >= 0) {
        const int flags = ::fcntl(target.descriptor, F_GETFL);
        // A standard descriptor the parent closed is held by /dev/null opened
        // read-only (descriptors.hpp): writing there fails as the closed one would.
        if (flags == -1 || (flags & O_ACCMODE) == O_RDONLY ||
            (target.descriptor == 0 && stdin_was_closed()))
            throw bv::InputError(path + ": cannot write the results: descriptor " + std::to_string(target.descriptor) +
                                 " is not open for writing");
        const int copy = ::fcntl(target.descriptor, F_DUPFD_CLOEXEC, 3);
        if (copy < 0) throw bv::InputError(path + ": cannot write the results: " + std::strerror(errno));
        descriptor_buf_ = std::make_unique<__gnu_cxx::stdio_filebuf<char>>(copy, std::ios::out | std::ios::binary);
        descriptor_out_ = std::make_unique<std::ostream>(descriptor_buf_.get());
        return;
    }
    if (target.stream) {
        out_.open(path_, std::ios::binary);
        if (!out_) throw bv::InputError(path + ": cannot open for writing: " + std::strerror(errno));
        return;
    }
    std::string tmpl = path_ + ".tmp-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    int fd = ::mkstemp(buf.data());
    if (fd < 0) throw bv::InputError(path_ + ": cannot create a temporary file beside it: " + std::strerror(errno));
    mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd, 0666 & ~mask);
    ::close(fd);
    temp_ = buf.data();
    if (temp_.size() < sizeof g_temp) {
        // The handler reads g_temp whenever a signal lands: its first byte is
        // written last, so it never sees a prefix (which could name FILE itself).
        std::memcpy(g_temp + 1, temp_.c_str() + 1, temp_.size());
        std::atomic_signal_fence(std::memory_order_seq_cst);
        g_temp[0] = temp_[0];
    }
    out_.open(temp_, std::ios::binary | std::ios::trunc);
    if (!out_) throw bv::InputError(temp_ + ": cannot open for writing");
}

AtomicFile::~AtomicFile() {
    if (!committed_ && !temp_.empty()) {
        g_temp[0] = '\0';
        out_.close();
        ::unlink(temp_.c_str());
    }
}

void AtomicFile::commit() {
    if (descriptor_out_) {
        descriptor_out_->flush();
        const bool written = static_cast<bool>(*descriptor_out_);
        descriptor_out_.reset();
        descriptor_buf_.reset();  // closes the copy
        if (!written) throw bv::Error(path_ + ": cannot write the results");
        committed_ = true;
        return;
    }
    out_.flush();
    bool ok = static_cast<bool>(out_);
    out_.close();
    ok = ok && !out_.fail();
    if (ok && !temp_.empty()) {
        int fd = ::open(temp_.c_str(), O_RDONLY);
        if (fd >= 0) {
            ok = ::fsync(fd) == 0;
            ::close(fd);
        }
    }
    if (!ok) throw bv::Error(path_ + ": cannot write the results (disk full?)");
    if (temp_.empty()) {  // a stream: written in place
        committed_ = true;
        return;
    }
    g_temp[0] = '\0';
    if (::rename(temp_.c_str(), path_.c_str()) != 0)
        throw bv::Error(path_ + ": cannot rename the finished results into place: " + std::strerror(errno));
    committed_ = true;
    sync_directory_of(path_);
}

// ---------------------------------------------------------------- progress

// A terminal that says it moves no cursor (TERM=dumb: an editor's shell)
// gets no bar: it is redrawn with an erase-line escape.
Progress::Progress(bool wanted)
    : on_(wanted && ::isatty(STDERR_FILENO) && !(std::getenv("TERM") && std::string(std::getenv("TERM")) == "dumb")) {}

namespace {

std::string clock_text(double s) {
    if (!(s >= 0) || s > 360000) return "--:--";
    long t = static_cast<long>(s + 0.5);
    char buf[32];
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

std::size_t terminal_width() {
    struct winsize w;
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 20) return w.ws_col;
    return 80;
}

}  // namespace

void Progress::clear() {
    if (on_ && drawn_) std::cerr << "\r\033[K" << std::flush;
    drawn_ = false;
}

void Progress::draw() {
    const auto& p = last_;
    const std::size_t width = terminal_width();
    std::string counts = std::to_string(p.done) + "/" + std::to_string(p.total);
    std::string eta = p.done > 0 && p.total > p.done ? clock_text(p.elapsed / double(p.done) * double(p.total - p.done))
                                                     : "--:--";
    std::string tail = " " + counts + "  " + clock_text(p.elapsed) + " ETA " + eta + "  ";
    const std::size_t bar = 20;
    std::size_t fill = p.total ? bar * p.done / p.total : bar;
    std::string line = "[" + std::string(fill, '#') + std::string(bar - fill, '.') + "]" + tail;
    std::string cur = one_line(p.current);
    if (line.size() + 1 < width) {
        std::size_t room = width - line.size() - 1;
        if (cur.size() > room) cur = "..." + cur.substr(cur.size() - (room > 3 ? room - 3 : 0));
        line += cur;
    }
    std::cerr << "\r\033[K" << line << std::flush;
    drawn_ = true;
}

void Progress::update(const bv::BatchProgress& p) {
    // A stop without a signal (request_stop) is a failed standard output,
    // which finish_output reports.
    if (!told_stop_ && interrupt_flag()->load() && interrupt_signal()) {
        told_stop_ = true;
        message("basinvol: interrupted: starting nothing new" +
                (p.running ? "; finishing the Hessians running now (interrupt again to abandon them)"
                           : std::string()));
    }
    if (!on_) return;
    last_ = p;
    // At most ten redraws a second, and always the last one.
    if (p.done < p.total && last_draw_ >= 0 && p.elapsed - last_draw_ < 0.1) return;
    last_draw_ = p.elapsed;
    draw();
}

void Progress::message(const std::string& line) {
    clear();
    std::cerr << one_line(line) << '\n' << std::flush;
    if (on_ && last_draw_ >= 0) draw();
}

void Progress::finish() { clear(); }

// ---------------------------------------------------------------- the command

namespace {

bool file_exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
}

// What a saved row says of its Hessian. Rows of one key that say different
// things are two Hessians (or an error and a later success); rows that say
// the same are one Hessian saved twice, or two whose rows are interchangeable.
std::string what_row_says(const bv::Row& r) {
    if (!r.ok) return "error";
    return std::to_string(r.n) + ' ' + std::to_string(r.rank) + ' ' + std::to_string(r.dim) + ' ' +
           std::to_string(r.negative) + ' ' + bv::value_text(r.log_volume);
}

// A JSON document's context; null when the text holds none.
nlohmann::ordered_json recorded_context(const std::string& text) {
    const auto doc = nlohmann::ordered_json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("context") || !doc["context"].is_object())
        return nullptr;
    return doc["context"];
}

// The analysis options a context records (context.options), tie_tol left
// out (it moves places only); null when it records none.
nlohmann::ordered_json recorded_options(const nlohmann::ordered_json& context) {
    if (!context.is_object()) return nullptr;
    auto options = context.value("options", nlohmann::ordered_json());
    if (!options.is_object()) return nullptr;
    options.erase("tie_tol");
    return options;
}

// The shards that saved rows come from: each row of a --shard run names its
// shard and its split (a fingerprint of N and every shard's sources), and
// counts the split's rows its run writes and the split's own, so merged
// files can tell whether they hold every row of the split, and whose are
// not there. --per-block's parts are not counted.
struct SavedShards {
    struct Shard {
        std::size_t rows = 0;  // the split's rows its run writes
        std::set<std::string> sources;
    };
    struct Split {
        std::size_t count = 0;  // N
        std::size_t rows = 0;   // the rows of all its shards together
        std::set<std::string> sources;
        // SOURCEs that could not be listed: an error row in every shard,
        // of which a merge keeps one (under the first shard's label).
        std::set<std::string> everywhere;
        std::map<std::size_t, Shard> shards;  // by I
    };
    std::map<std::pair<std::size_t, std::string>, Split> splits;  // by N and fingerprint
    std::size_t others = 0;    // rows of no split (unsharded runs)
    std::size_t labelled = 0;  // rows that name a shard (parts and rows without counts too)

    // Notes saved row `r`, whose shard is `s`.
    void add(const bv::Row& r, const bv::Shard& s);
    // An error row, told on stderr, for each shard of a split whose rows
    // are not all in the files given: one stopped before it finished, and
    // ones of which there is no row at all (unless those stopped account
    // for every row missing: a shard given no Hessians writes none).
    std::vector<bv::Row> missing(Progress& progress) const;
};


void SavedShards::add(const bv::Row& r, const bv::Shard& s) {
    if (r.split_rows == 0) return;  // a part, or a row saved without the counts: not known
    Split& split = splits[{s.count, r.split}];
    split.count = s.count;
    split.rows = std::max(split.rows, r.split_rows);
    split.sources.insert(r.source);
    Shard& shard = split.shards[s.index];
    shard.rows = std::max(shard.rows, r.shard_rows);
    shard.sources.insert(r.source);
    // A SOURCE's own error row (it could not be listed, FILE or FILE:PATH):
    // nothing was described (no n, type or structure) and no time spent.
    if (!r.ok && r.n == 0 && r.stored_type.empty() && r.structure.empty() && r.seconds == 0)
        split.everywhere.insert(r.source);
}

std::vector<bv::Row> SavedShards::missing(Progress& progress) const {
    std::vector<bv::Row> rows;
    const auto error_row = [&](const std::string& source, const std::string& why) {
        bv::Row e = bv::source_error_row(bv::Source{source, "", source, nullptr}, source + ": " + why);
        e.file.clear();  // not a file: a merge drops it, and checks again
        progress.message("basinvol: error: " + e.error);
        rows.push_back(std::move(e));
    };
    // Rows of other runs do not stand in for a split's: which Hessians its
    // missing rows are is not known, only how many.
    const std::string mixed =
        splits.size() > 1 || others > 0
            ? "; the files given hold rows of " + std::to_string(splits.size()) +
                  (splits.size() == 1 ? " split" : " splits") +
                  (others ? " and rows of no shard (unsharded runs, or saved before rows named their shard: "
                            "--resume each shard once)"
                          : "") +
                  ": merge the results of one split (one list, one N)"
            : std::string();
    std::set<std::pair<std::size_t, std::size_t>> seen;  // (N, I) of every split
    for (const auto& [key, split] : splits)
        for (const auto& [index, shard] : split.shards) seen.emplace(key.first, index);
    for (const auto& [key, split] : splits) {
        const std::size_t held = split.sources.size(), count = split.count;
        if (held >= split.rows) continue;
        const std::string of = "/" + std::to_string(count);
        const std::string tally = "its split (" + key.second + ") of " + std::to_string(count) + " shards has " +
                                  std::to_string(split.rows) + " rows, the results files given hold " +
                                  std::to_string(held);
        const auto again = [&mixed](const std::string& which) {
            return ": run shard " + which + " again (--shard " + which +
                   " --resume -o its results file) and merge again" + mixed;
        };
        // Each shard named, up to a hundred: a hand-edited 1/99999999999
        // names a few, not 10^11 (found in at most as many steps as there
        // are shards seen, and a hundred).
        constexpr std::size_t named_at_most = 100;
        std::size_t named = 0, short_by = 0;
        for (const auto& [index, shard] : split.shards) {
            const std::size_t its = std::min(shard.rows, split.rows);  // (an edited count past the split's)
            std::size_t has = shard.sources.size();
            for (const auto& source : split.everywhere) has += shard.sources.count(source) ? 0 : 1;
            if (has >= its) continue;
            short_by += its - has;
            if (named++ < named_at_most)
                error_row("shard " + std::to_string(index) + of,
                          std::to_string(has) + " of its " + std::to_string(its) +
                              " rows are in the results files given (" + tally +
                              "): its run was stopped before it finished (a run stopped by a signal writes the "
                              "rows done)" + again(std::to_string(index) + of));
        }
        if (short_by >= split.rows - held) continue;  // a shard with no rows was given no Hessians
        // Each shard without rows that held some has at least one missing.
        const std::size_t room = split.rows - held - short_by, without = count - split.shards.size();
        const std::string some =
            without > room ? " (at most " + std::to_string(room) + " of the " + std::to_string(without) +
                                 " shards without rows held any: a shard given no Hessians writes none)"
                           : std::string();
        std::size_t absent = 0;
        for (std::size_t i = 1; i <= count && named < named_at_most; ++i)
            if (!split.shards.count(i)) {
                ++absent;
                const std::string why =
                    seen.count({count, i})
                        ? "its rows in them are of another split: it ran on another list (a file that appeared or "
                          "went between the shards' runs, or an edited list)"
                        : "its results file is missing or was not given, or its run was stopped before it wrote one";
                error_row("shard " + std::to_string(i) + of, "none of its rows are in the results files given (" +
                                                                 tally + "): " + why + some +
                                                                 again(std::to_string(i) + of));
                ++named;
            }
        const std::size_t unnamed = without - absent;
        if (unnamed > 0)
            error_row("shards" + of, std::to_string(unnamed) + " more shards without rows in the results files given (" +
                                         tally + ")" + again("I" + of));
        else if (absent == 0 && short_by == 0)  // every shard there and whole, yet the split is not: edited rows
            error_row("shards" + of, tally + ", yet no shard is short of its own rows: two of its Hessians' "
                                             "names are written alike (bytes that are not UTF-8), or rows were "
                                             "edited; running the shards again does not change that");
    }
    return rows;
}

// --per-block's rows of parts beside their whole's row (a blocks
// structure's top-level members "<whole>/<member>", a dense Hessian's
// parameter blocks "<whole>[<name>]"): each the Hessian of a part, of its
// own n, not a basin to rank among the wholes. Their ok rows are left out,
// and said; error rows stay, listed last as every error row.
void drop_parts(std::vector<bv::Row>& rows, Progress& progress) {
    std::map<std::pair<std::string, std::string>, const bv::Row*> wholes;  // ok rows, by (file, dataset)
    for (const auto& r : rows)
        if (r.ok && !r.dataset.empty()) wholes.emplace(std::make_pair(r.file, r.dataset), &r);
    const auto whole = [&](const bv::Row& r, const std::string& dataset) -> const bv::Row* {
        const auto it = wholes.find({r.file, dataset});
        return it != wholes.end() && it->second != &r && it->second->n > r.n ? it->second : nullptr;
    };
    const auto part = [&](const bv::Row& r) {
        const std::string& d = r.dataset;
        if (!r.ok || d.empty()) return false;
        if (d.back() == ']')  // "<whole>[<name>]", the name holding brackets too ("['params']['w']")
            for (auto open = d.find('['); open != std::string::npos; open = d.find('[', open + 1))
                if (const bv::Row* w = whole(r, d.substr(0, open)); w && w->structure.empty()) return true;
        const auto slash = d.rfind('/');  // "<whole>/<member>"; a member of the root group's "/a"
        if (slash == std::string::npos) return false;
        const bv::Row* w = whole(r, slash == 0 ? "/" : d.substr(0, slash));
        return w && w->structure == "blocks";
    };
    std::vector<bool> parts;  // all found before any row moves (`wholes` points into rows)
    for (const auto& r : rows) parts.push_back(part(r));
    std::size_t dropped = 0;
    std::string example;
    std::vector<bv::Row> kept;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        if (!parts[i]) kept.push_back(std::move(rows[i]));
        else if (dropped++ == 0) example = rows[i].source;
    }
    rows = std::move(kept);
    if (dropped > 0)
        progress.message("basinvol: note: " + std::to_string(dropped) + " row(s) are --per-block parts of Hessians "
                         "ranked here (" + (dropped > 1 ? "e.g. " : "") + example + "), each a Hessian of its own "
                         "n, not a basin among the wholes: left out of the ranking (rank their rows alone to "
                         "compare the parts)");
}

// A name as JSON writes it (bytes that are not UTF-8 become U+FFFD).
std::string json_text(const std::string& name) {
    using nlohmann::json;
    return json::parse(json(name).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}

// One Hessian saved under two names of its file (a symbolic link; a
// relative and an absolute path in two shards' lists) is one row, as a run
// on the files lists it once: rows whose file is the same file here (device
// and inode), whose dataset is the same and whose answers agree keep the
// first (an ok row over an error row), with a warning. Rows that answer
// otherwise are both kept (a file rewritten between the runs, a relative
// name saved from another folder than this one), and so are rows whose file
// is not here.
std::vector<bv::Row> one_row_per_file_identity(std::vector<bv::Row>& rows, Progress& progress) {
    std::map<std::string, std::size_t> first;  // "device:inode\ndataset" -> row
    std::vector<bool> dropped(rows.size(), false);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        struct stat st {};
        if (rows[i].file.empty() || rows[i].dataset.empty() || ::stat(rows[i].file.c_str(), &st) != 0) continue;
        const std::string key = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + "\n" + rows[i].dataset;
        const auto [at, fresh] = first.emplace(key, i);
        if (fresh || rows[at->second].source == rows[i].source) continue;  // one name: merge_results's rule
        const bv::Row& a = rows[at->second];
        const bv::Row& b = rows[i];
        const auto bar = [](double e) { return std::isfinite(e) ? e : 0.0; };
        const bool agree =
            !a.ok || !b.ok ? a.ok != b.ok || a.error == b.error
                           : a.n == b.n && a.rank == b.rank && a.dim == b.dim && a.negative == b.negative &&
                                 std::abs(a.log_volume - b.log_volume) <=
                                     bar(a.log_volume_error) + bar(b.log_volume_error) +
                                         1e-12 * std::max({1.0, std::abs(a.log_volume), std::abs(b.log_volume)});
        if (!agree) continue;
        std::size_t keep = at->second, drop = i;
        if (!rows[keep].ok && rows[drop].ok) {
            std::swap(keep, drop);
            at->second = keep;
        }
        dropped[drop] = true;
        progress.message("basinvol: warning: " + rows[drop].source + " and " + rows[keep].source +
                         " are one Hessian (one file under two names); kept the row of " + rows[keep].source);
    }
    std::vector<bv::Row> kept;
    for (std::size_t i = 0; i < rows.size(); ++i)
        if (!dropped[i]) kept.push_back(std::move(rows[i]));
    return kept;
}

// Saved rows of every results file, each source once across files (an ok
// row wins over an error row; otherwise the first is kept, and the duplicate
// is reported), within one file too (JSON Lines runs joined by `cat`). But
// two rows of one file with different answers (or one ok, one an error),
// under a name the format may have written for two (TSV writes a tab or
// line break as a space, every format bytes that are not UTF-8 as U+FFFD),
// are two Hessians: both are kept, and reported. A TSV row with the answer
// of another file's row whose source TSV writes as the TSV row's name (a
// tab in a dataset's name saved as a space) is that row's, under its whole
// name; a row of its own name and another answer does not stop that.
// `options` gets the analysis options all of them record alike, or null when
// one records none (JSON Lines, TSV, CSV) or two differ; `differing` the
// options two files record with different values (each value as JSON
// text); `unrecorded` the readable files that record none; `unreadable` gets the results files that cannot be read (told on
// stderr here), whose error rows they source.
std::vector<bv::Row> merge_results(const std::vector<std::string>& files, Progress& progress,
                                   nlohmann::ordered_json& options,
                                   std::map<std::string, std::set<std::string>>& differing,
                                   std::vector<std::string>& unrecorded, std::set<std::string>& unreadable,
                                   SavedShards& shards) {
    std::vector<bv::Row> rows;
    std::map<std::string, std::pair<std::size_t, std::string>> where;  // source -> (row, file named)
    // Each kept row's source as TSV writes it -> those rows; per row, whether
    // it was read from TSV, whether a row of the other kind was found its
    // twin, and the file it came from.
    std::map<std::string, std::vector<std::size_t>> written;
    std::vector<bool> read_as_tsv, paired;
    std::vector<std::string> file_of;
    options = nullptr;
    bool first = true;
    for (const auto& f : files) {
        const std::string named = f == "-" ? std::string("standard input") : f;
        std::vector<bv::Row> got;
        nlohmann::ordered_json recorded;
        bool tsv = false;
        try {
            const std::string text = f == "-" ? std::string(std::istreambuf_iterator<char>(open_stdin()), {})
                                               : bv::read_saved_text(f);
            std::vector<bv::Row> parsed = bv::parse_saved(text, named);
            // A ranking's own error rows for shards it lacked are checked again, not kept.
            parsed.erase(std::remove_if(parsed.begin(), parsed.end(), [](const bv::Row& r) {
                             return !r.ok && r.file.empty() && r.source.rfind("shard", 0) == 0;
                         }), parsed.end());
            std::vector<std::pair<const bv::Row*, bv::Shard>> sharded;  // noted once the whole file reads
            for (const auto& r : parsed)
                if (!r.shard.empty()) sharded.emplace_back(&r, bv::parse_shard(r.shard));  // checked as read
            for (const auto& [r, s] : sharded) shards.add(*r, s);
            shards.others += parsed.size() - sharded.size();
            shards.labelled += sharded.size();
            got = std::move(parsed);
            recorded = recorded_options(recorded_context(text));
            tsv = bv::detect_format(text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? text.substr(3) : text) == bv::Format::tsv;
            // Legal (a shard given no Hessians writes no JSON Lines), but
            // also what a shard that died before its first row leaves.
            if (text.find_first_not_of(" \t\r\n") == std::string::npos)
                progress.message("basinvol: warning: " + named + " is empty: it holds no rows");
        } catch (const bv::InputError& e) {  // one error row for the file; the other files rank
            progress.message(std::string("basinvol: error: ") + e.what());
            got.push_back(bv::source_error_row(bv::Source{f, "", f, nullptr}, e.what()));
            unreadable.insert(f);
        }
        if (recorded.is_object())
            for (const auto& [key, value] : recorded.items()) differing[key].insert(value.dump());
        else if (!unreadable.count(f))
            unrecorded.push_back(named);
        options = first || options == recorded ? recorded : nullptr;
        first = false;
        // This file's further rows of a name with answers of their own.
        std::map<std::string, std::vector<std::size_t>> distinct;
        const auto same_answer = [](const bv::Row& a, const bv::Row& b) {
            return a.ok == b.ok && a.log_volume == b.log_volume && a.rank == b.rank && a.error == b.error;
        };
        const auto written_alike = [tsv](const std::string& name) {
            return (tsv && name.find(' ') != std::string::npos) || name.find("\xEF\xBF\xBD") != std::string::npos;
        };
        // Rows of one name that answer differently come from runs under
        // other options (-T, the cut, --negatives): say so. Log-volumes
        // within their error bars are one answer (another -j, another
        // BLAS thread count, moves the last digits).
        const auto apart = [](const bv::Row& x, const bv::Row& y) {
            const auto bar = [](double e) { return std::isfinite(e) ? e : 0.0; };  // not saved: none
            const double bars = bar(x.log_volume_error) + bar(y.log_volume_error) +
                                1e-12 * std::max({1.0, std::abs(x.log_volume), std::abs(y.log_volume)});
            return x.rank != y.rank || x.dim != y.dim || x.negative != y.negative ||
                   !(std::abs(x.log_volume - y.log_volume) <= bars);
        };
        const auto keep = [&](bv::Row&& r, const std::string& as_tsv) {
            written[as_tsv].push_back(rows.size());
            read_as_tsv.push_back(tsv);
            paired.push_back(false);
            file_of.push_back(named);
            rows.push_back(std::move(r));
        };
        for (auto& r : got) {
            auto it = where.find(r.source);
            const std::string as_tsv = bv::tsv_cell(json_text(r.source));
            // A row of the other kind of file (TSV, or one that keeps names
            // whole) whose source TSV writes alike, with the same answer: one
            // Hessian, kept once, under its whole name. Looked for where no
            // row has this name, or where the row that has it is of the other
            // kind with another answer (a TSV row written for a tab's name).
            const auto other_kind_apart = [&](std::size_t i) {
                return read_as_tsv[i] != tsv && rows[i].ok && r.ok && apart(rows[i], r);
            };
            if (it == where.end() || other_kind_apart(it->second.first)) {
                const auto& alike = written[as_tsv];
                const auto twin = std::find_if(alike.begin(), alike.end(), [&](std::size_t i) {
                    return read_as_tsv[i] != tsv && !paired[i] && rows[i].ok && r.ok && !apart(rows[i], r);
                });
                if (twin != alike.end()) {
                    const std::size_t i = *twin;
                    paired[i] = true;
                    const std::string tsv_name = tsv ? r.source : rows[i].source;
                    if (!tsv) {  // the saved row takes the name this file kept whole
                        if (auto at = where.find(rows[i].source); at != where.end() && at->second.first == i)
                            where.erase(at);
                        where[r.source] = std::make_pair(i, file_of[i]);
                        rows[i].source = r.source;
                        rows[i].dataset = r.dataset;
                    }
                    progress.message("basinvol: warning: " + rows[i].source + " is in both " + file_of[i] + " and " +
                                     named +
                                     (tsv_name != rows[i].source ? " (TSV writes its name " + tsv_name +
                                                                       ", tabs and line breaks as spaces)"
                                                                 : std::string()) +
                                     "; kept the row of " + file_of[i]);
                    continue;
                }
            }
            if (it == where.end()) {
                where.emplace(r.source, std::make_pair(rows.size(), named));
                keep(std::move(r), as_tsv);
                continue;
            }
            bv::Row& old = rows[it->second.first];
            const bool same_file = it->second.second == named;
            if (same_file && written_alike(r.source) && !same_answer(old, r)) {
                auto& more = distinct[r.source];
                if (std::none_of(more.begin(), more.end(), [&](std::size_t i) { return same_answer(rows[i], r); })) {
                    if (more.empty())
                        progress.message("basinvol: warning: " + named + " holds two rows named " + r.source +
                                         " with different answers: two Hessians whose names the format writes "
                                         "alike (a tab and a space, bytes that are not UTF-8), or runs joined "
                                         "with different options; both are ranked");
                    more.push_back(rows.size());
                    keep(std::move(r), as_tsv);
                    continue;
                }
            }
            const bool replace = !old.ok && r.ok;
            const std::string differ =
                old.ok && r.ok && apart(old, r)
                    ? " (their answers differ: rank " + std::to_string(old.rank) + " and " + std::to_string(r.rank) +
                          ", dim " + std::to_string(old.dim) + " and " + std::to_string(r.dim) + ", log_volume " +
                          bv::value_text(old.log_volume) + " and " + bv::value_text(r.log_volume) +
                          ": runs under other options?)"
                    : std::string();
            // A SOURCE that cannot be listed is an error row in every shard of a split: expected.
            const bool every_shard_s = !old.ok && !r.ok && old.error == r.error && !r.split.empty() &&
                                       r.split == old.split && r.shard != old.shard;
            if (!every_shard_s)
                progress.message("basinvol: warning: " + r.source + " is in " +
                             (same_file ? named + " twice" : "both " + it->second.second + " and " + named) +
                             (same_file && written_alike(r.source) ? " (with one answer: the row saved twice, or two "
                                                                     "Hessians whose names the format writes alike)"
                                                                   : "") +
                             "; kept the " +
                             (replace ? "ok row" + (same_file ? std::string() : " of " + named)
                                      : same_file ? std::string("first") : "row of " + it->second.second) +
                             differ);
            if (replace) {
                old = std::move(r);
                it->second.second = named;
                file_of[it->second.first] = named;
            }
        }
    }
    for (auto it = differing.begin(); it != differing.end();)
        it = it->second.size() > 1 ? std::next(it) : differing.erase(it);
    return one_row_per_file_identity(rows, progress);
}

void check_batch_usage(const BatchCli& b, const bv::ReportSpec& spec, const std::vector<std::string>& args) {
    if (b.resume && b.output.empty()) throw bv::UsageError("--resume needs -o FILE (the results to continue)");
    if (b.resume && output_target(b.output).stream)
        throw bv::UsageError("--resume needs -o FILE to be a file, not a device or a pipe (" + b.output + ")");
    if (b.resume && spec.format == bv::Format::table)
        throw bv::UsageError("--resume needs a machine format: -f jsonl, json, tsv or csv");
    if (b.from_results && (b.resume || !b.shard.empty() || !b.files_from.empty()))
        throw bv::UsageError("--from-results ranks saved rows: --resume, --shard and --files-from do not apply");
    if (b.from_results && args.empty()) throw bv::UsageError("--from-results needs at least one results FILE");
    if (b.from_results && std::count_if(args.begin(), args.end(), [](const std::string& f) {
                              return f == "-" || descriptor_named(f) == 0;
                          }) > 1)
        throw bv::UsageError("standard input ('-', /dev/stdin) is given more than once");
}

// -o FILE must not be a file the run reads (an HDF5 input, a --files-from
// list, a results file): the rename at the end would replace it.
void refuse_run_inputs_as_output(const std::string& output, const std::vector<std::string>& args, const BatchCli& b,
                                 const std::vector<bv::WorkItem>& items) {
    std::set<std::string> inputs(b.files_from.begin(), b.files_from.end());
    if (b.from_results) inputs.insert(args.begin(), args.end());
    for (const auto& w : items) {
        inputs.insert(w.error ? w.error->file : w.info.file);
        inputs.insert(w.info.reads_also.begin(), w.info.reads_also.end());
    }
    refuse_input_as_output(output, inputs);
}

// The key that names a Hessian's row in FILE or the journal: its source as
// the formats it passes through write it (the journal is JSON Lines; TSV
// makes tabs and line breaks spaces). Two Hessians may share a key: their
// rows tell them apart (what_row_says).
std::string resume_key(const bv::ReportSpec& spec, const std::string& source) {
    const std::string s = json_text(source);
    return spec.format == bv::Format::tsv ? bv::tsv_cell(s) : s;
}

// What an earlier run on -o FILE left.
struct Earlier {
    std::vector<bv::Row> kept;   // ok rows to keep (--resume)
    std::vector<bv::Row> errors;  // error rows, the first of each key: kept for Hessians the rerun does not read
    std::set<std::string> error_keys;
    std::map<std::string, std::size_t> done;  // their keys -> n
    std::map<std::string, std::set<std::string>> said;  // key -> what its saved rows say
    bool journal_found = false;  // a journal with rows of a run that did not finish

    // Notes every saved row; keeps the first ok row of each key. Returns whether `r` was kept.
    bool keep(const bv::ReportSpec& spec, bv::Row r) {
        const std::string key = resume_key(spec, r.source);
        said[key].insert(what_row_says(r));
        if (!r.ok) {
            if (error_keys.insert(key).second) errors.push_back(std::move(r));
            return false;
        }
        if (!done.emplace(key, r.n).second) return false;
        kept.push_back(std::move(r));
        return true;
    }
};

// What a rerun's inputs are, as FILE's rows are keyed: each listed
// Hessian (or SOURCE that failed to list), and each file they are in; and
// each SOURCE that listed, in any shard (`listed`: keyed as its error row).
struct Inputs {
    std::set<std::string> keys, files, listed;
};

Inputs inputs_of(const std::vector<bv::WorkItem>& items, const std::set<std::string>& listed,
                 const bv::ReportSpec& spec) {
    Inputs in;
    for (const auto& w : items) {
        in.keys.insert(resume_key(spec, w.label()));
        in.files.insert(w.error ? w.error->file : w.info.file);
    }
    for (const auto& source : listed) in.listed.insert(resume_key(spec, source));
    return in;
}

// Error rows of Hessians that are not inputs of the rerun stay in FILE, as
// their ok rows do; an input's error row is tried again, and so is a
// whole file's (a SOURCE that could not be opened or listed) when the
// rerun reads that file, or lists that SOURCE: a SOURCE that failed to
// list was sharded by its text, its Hessians are sharded by their names,
// so a shard's rerun may list it and keep none of them. Returns how many
// stay.
std::size_t keep_errors_of_others(const Inputs& in, Earlier& earlier, const bv::ReportSpec& spec) {
    std::set<std::string> ok;
    for (const auto& r : earlier.kept) ok.insert(resume_key(spec, r.source));
    // An input below the row's object: a group's row (x.h5:/grp could not be
    // listed) is retried by its Hessians' (x.h5:/grp/a).
    auto below = [&](const std::string& key) {
        const std::string prefix = key + "/";
        const auto it = in.keys.lower_bound(prefix);
        return it != in.keys.end() && it->compare(0, prefix.size(), prefix) == 0;
    };
    std::size_t count = 0;
    for (auto& r : earlier.errors) {
        const std::string key = resume_key(spec, r.source);
        const bool whole_file = r.dataset.empty();
        if (in.keys.count(key) || ok.count(key) || below(key) || in.listed.count(key) ||
            (whole_file && in.files.count(r.file)))
            continue;
        earlier.kept.push_back(std::move(r));
        ++count;
    }
    earlier.errors.clear();
    return count;
}

// Leaves out of `items` the Hessians whose rows --resume keeps. A key that
// stands for two names among the inputs (TSV: `a<TAB>b` and `a b`), whose
// saved rows say different things, or whose row has another n than its
// input, cannot tell its rows apart: they are dropped (with a note) and its
// Hessians analyzed again.
void skip_done(std::vector<bv::WorkItem>& items, Earlier& earlier, const bv::ReportSpec& spec,
               const std::string& output) {
    std::map<std::string, std::set<std::string>> names;
    std::map<std::string, std::size_t> given;  // how many times each key is an input
    for (const auto& w : items)
        if (!w.error) {
            names[resume_key(spec, w.info.source())].insert(w.info.source());
            ++given[resume_key(spec, w.info.source())];
        }
    std::set<std::string> redo;
    for (const auto& [key, said] : earlier.said)
        if (said.size() > 1) redo.insert(key);
    std::map<std::string, std::string> resized;  // key -> "SOURCE: n was X, is Y"
    for (const auto& w : items) {
        if (w.error) continue;
        const std::string key = resume_key(spec, w.info.source());
        auto row = earlier.done.find(key);
        // (Two inputs of one key: their names collide, whatever the n.)
        if (row != earlier.done.end() && row->second != w.info.n && names[key].size() == 1)
            resized.emplace(key, w.info.source() + ": n was " + std::to_string(row->second) + ", is " +
                                     std::to_string(w.info.n));
        if (names[key].size() > 1 || resized.count(key)) redo.insert(key);
    }
    std::vector<bv::WorkItem> rest;
    for (auto& w : items) {
        const std::string key = w.error ? std::string() : resume_key(spec, w.info.source());
        if (w.error || redo.count(key) || !earlier.done.count(key)) rest.push_back(std::move(w));
    }
    items.swap(rest);
    std::size_t changed = 0;        // rows dropped: their Hessian's n changed
    std::set<std::string> alike;    // names of rows dropped: two Hessians' rows carry each
    auto dropped = [&](const bv::Row& r) {
        const std::string key = resume_key(spec, r.source);
        if (!redo.count(key)) return false;
        if (resized.count(key)) ++changed;
        else alike.insert(key);
        return true;
    };
    earlier.kept.erase(std::remove_if(earlier.kept.begin(), earlier.kept.end(), dropped), earlier.kept.end());
    // An input that now fails to list for good (a dataset no longer a
    // Hessian, a file gone): its error row replaces the saved ok rows of
    // what it names. A failure that may pass (a writer's lock, too many open
    // files, memory) keeps them.
    std::set<std::string> failing_files, failing_keys;
    for (const auto& w : items) {
        if (!w.error) continue;
        struct stat st {};
        if (!w.info.file.empty()) failing_keys.insert(resume_key(spec, w.label()));  // listed, and refused
        else if (::stat(w.error->file.c_str(), &st) != 0 && errno == ENOENT) failing_files.insert(w.error->file);
    }
    std::size_t now_failing = 0;
    auto fails_now = [&](const bv::Row& r) {
        const std::string key = resume_key(spec, r.source);
        const bool named = failing_files.count(r.file) > 0 || failing_keys.count(key) > 0;
        now_failing += named;
        return named;
    };
    if (!failing_files.empty() || !failing_keys.empty())
        earlier.kept.erase(std::remove_if(earlier.kept.begin(), earlier.kept.end(), fails_now), earlier.kept.end());
    if (now_failing)
        std::cerr << "basinvol: note: " << output << ": " << now_failing
                  << " saved row(s) are of a Hessian that now fails to read; its error row replaces them\n";
    if (changed)
        std::cerr << "basinvol: note: " << output << ": " << changed
                  << " saved row(s) are of a Hessian whose n changed since (" << resized.begin()->second
                  << (resized.size() > 1 ? ", ..." : "") << "); they are analyzed again\n";
    if (!alike.empty())
        std::cerr << "basinvol: note: " << output << ": the saved rows of " << alike.size()
                  << " name(s) cannot be told from another Hessian's (names the output writes alike: a tab "
                     "and a space, bytes that are not UTF-8); they are analyzed again\n";
    // A source given k times is k rows, as in a run never stopped (a kept
    // row of a source not among the inputs stays, once).
    std::vector<bv::Row> rows;
    for (auto& r : earlier.kept) {
        const auto k = given.find(resume_key(spec, r.source));
        for (std::size_t copy = 1; k != given.end() && copy < k->second; ++copy) rows.push_back(r);
        rows.push_back(std::move(r));
    }
    earlier.kept.swap(rows);
}

// A JSON FILE records the options its rows were computed with: --resume
// under others would mix rows of two analyses, and is refused. (JSON Lines,
// TSV and CSV do not record them: docs/batch.md.)
void refuse_other_options(const std::string& text, const bv::ReportSpec& spec, const std::string& file) {
    const auto doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("context") || !doc["context"].is_object()) return;
    const auto was = doc["context"].value("options", nlohmann::json());
    if (!was.is_object()) return;  // none recorded (a ranking of files that did not agree on them)
    const auto& now = spec.context["options"];
    for (const auto& [key, value] : now.items()) {
        if (key == "tie_tol" || !was.contains(key) || was[key].dump() == value.dump()) continue;  // tie_tol: places only
        std::string flag = key;
        std::replace(flag.begin(), flag.end(), '_', '-');
        auto shown = [](const auto& v) {
            return v.is_null() ? std::string("not given") : v.is_string() ? v.template get<std::string>() : v.dump();
        };
        throw bv::UsageError("--resume: '" + file + "' was written with --" + flag + " " + shown(was[key]) +
                             ", this run has " + shown(value) +
                             ": rerun with the first run's options, or give another -o");
    }
}

// An earlier run's ok rows (--resume): FILE, then the journal of a run that
// was killed; error rows are computed again.
Earlier earlier_rows(const BatchCli& b, const bv::ReportSpec& spec, const std::string& format_name) {
    Earlier e;
    if (b.resume && file_exists(b.output)) {
        std::string text;
        try {
            text = bv::read_saved_text(b.output);
        } catch (const bv::InputError& unreadable) {
            throw bv::UsageError(std::string("--resume: ") + unreadable.what());
        }
        // An empty FILE (a job script's `: > FILE`) holds no rows: a fresh start.
        const bool blank = text.find_first_not_of(" \t\r\n") == std::string::npos;
        auto f = bv::detect_format(text);
        if (f && *f != spec.format)
            throw bv::UsageError("--resume: '" + b.output + "' is not " + format_name +
                                 " output (give the -f it was written with)");
        if (!blank) {
            if (spec.format == bv::Format::json) refuse_other_options(text, spec, b.output);
            std::vector<bv::Row> saved;
            try {
                saved = bv::parse_rows(text, spec.format, b.output);
            } catch (const bv::InputError& other) {
                throw bv::UsageError(std::string("--resume: ") + other.what());  // the wrong -o, as above
            }
            for (auto& r : saved) e.keep(spec, std::move(r));
        }
    }
    if (b.output.empty() || b.from_results || output_target(b.output).stream) return e;
    auto j = read_journal(b.output);
    e.journal_found = !j.rows.empty();
    if (!b.resume) return e;
    // A JSON run's journal records its options (first line), whatever -f the rerun gives.
    if (!j.context.empty()) refuse_other_options(j.context, spec, journal_path(b.output));
    std::size_t from_journal = 0;
    for (auto& r : j.rows)
        if (e.keep(spec, std::move(r))) ++from_journal;
    if (from_journal)
        std::cerr << "basinvol: note: " << journal_path(b.output) << ": kept " << from_journal
                  << " row(s) of a run that did not finish\n";
    if (j.unreadable)
        std::cerr << "basinvol: warning: " << journal_path(b.output) << ": " << j.unreadable
                  << " unreadable line(s) skipped; their Hessians are analyzed again\n";
    return e;
}

}  // namespace

namespace {

// A positive number rounded up to two significant digits, as text: a cut
// option that lies at or over it.
std::string rounded_up(double x) {
    if (!(x > 0) || !std::isfinite(x)) return bv::value_text(x);
    const double unit = std::pow(10.0, std::floor(std::log10(x)) - 1);
    for (double up = std::ceil(x / unit);; ++up) {  // the text, read back, is at or over x
        std::ostringstream s;
        s << std::setprecision(2) << up * unit;
        if (std::strtod(s.str().c_str(), nullptr) >= x) return s.str();
    }
}

}  // namespace

bool place_rows(std::vector<bv::Row>& rows, const CommonOptions& o, const bv::AnalyzeOptions& a, bool regularized,
                const char* tool, const std::string& recorded_cuts) {
    bv::RankOptions ro;
    ro.tie_tol = o.tie_tol;
    ro.saddles_last = a.negatives == bv::NegativePolicy::last;
    // rank_rows recomputes the ranking's own warnings (saved rows from
    // --resume or --from-results carry those of an earlier ranking).
    auto ranking_result = bv::rank_rows(rows, ro);
    const bool placed = !regularized || bv::rank_regularized(rows, o.tie_tol);
    if (!placed)
        std::cerr << tool << ": note: the Hessians have different n: place_regularized is left empty "
                     "(regularized volumes of different n are in different units)\n";
    if (ranking_result.mixed_threshold)
        std::cerr << tool << ": warning: the rows were measured at different thresholds T (-T): a log-volume "
                     "moves by r/2 log T, so rows of equal dimension are ordered across units "
                     "(mixed_threshold)\n";
    if (ranking_result.mixed_negatives)
        std::cerr << tool << ": warning: the rows were computed under different --negatives (abs or last, and "
                     "drop): a saddle's rank and log-volume hold its negative directions under one and leave them "
                     "out under the other, so saddles are ordered across units; analyse one set again under the "
                     "other's --negatives (mixed_negatives)\n";
    if (!recorded_cuts.empty()) {  // the results files say so themselves
        for (auto& r : rows)
            if (r.ok) r.warnings.add(bv::Warning::mixed_cut);
        std::cerr << tool << ": warning: the results files record different cuts (" << recorded_cuts
                  << "): each dim counts the values under its own row's cut, so dims are compared across levels; "
                     "rank rows computed under one cut (mixed_cut)\n";
    } else if (ranking_result.mixed_cut)
        std::cerr << tool << ": warning: the rows were cut by different rules (cut atol or rtol in some, dtype or gap "
                     "in others, or atol at different levels): each dim counts the values under its own row's cut, "
                     "so dims are compared across levels; rank rows computed under one cut (mixed_cut)\n";
    if (ranking_result.mixed_level > 0) {
        const bool one = ranking_result.mixed_level == 1;
        std::cerr << tool << ": warning: " << ranking_result.mixed_level << (one ? " row is" : " rows are")
                  << " cut lower, against " << (one ? "its" : "their")
                  << " largest eigenvalue, than another row (by a finer precision: stored type, stated error, "
                     "asymmetry; or by --cut or --rtol), and " << (one ? "keeps values" : "keep values")
                  << " under that row's level, so dims are counted at different levels; --rtol "
                  << rounded_up(ranking_result.largest_relative_cut)
                  << " counts every row at one level (mixed_level)\n";
    }
    if (ranking_result.without_noise > 0) {
        const bool one = ranking_result.without_noise == 1;
        std::cerr << tool << ": note: " << ranking_result.without_noise << (one ? " row was" : " rows were")
                  << " saved without log_volume_noise (by an earlier version): "
                  << (one ? "its log-volume's reach is unbounded, so its place is"
                          : "their log-volumes' reach is unbounded, so their places are")
                  << " marked ~ against every row of " << (one ? "its" : "their") << " dim; analyse "
                  << (one ? "its Hessian" : "their Hessians") << " again to rank " << (one ? "it" : "them") << "\n";
    }
    if (ranking_result.without_norm > 0 && rows.size() > 1) {
        const bool one = ranking_result.without_norm == 1;
        std::cerr << tool << ": note: " << ranking_result.without_norm << (one ? " row was" : " rows were")
                  << " saved without spectral_norm (by an earlier version): whether " << (one ? "its" : "their")
                  << " cut lies at another row's level is not known, and mixed_level is not checked for "
                  << (one ? "it" : "them") << "\n";
    }
    if (ranking_result.mixed_n) {
        std::cerr << tool << ": note: the Hessians have different n: they are ranked by curved directions "
                     "(rank r = n - dim, fewer first; at equal n this is dimension first), then by "
                     "log-volume among equal r\n";
        // Rows of different n in one group (not a file's root) may be one
        // Hessian's blocks: a group that lacks its `structure` attribute, or
        // a structure's members ranked without it. (A parameter block's row,
        // `<whole>[name]`, is not a member of a group.)
        std::map<std::pair<std::string, std::string>, std::vector<const bv::Row*>> groups;  // (file, group)
        for (const auto& r : rows) {
            const auto slash = r.dataset.rfind('/');
            if (r.ok && slash != std::string::npos && slash > 0 && r.dataset.find('[', slash) == std::string::npos)
                groups[{r.file, r.dataset.substr(0, slash)}].push_back(&r);
        }
        for (auto& [where, members] : groups) {
            std::sort(members.begin(), members.end(),
                      [](const bv::Row* x, const bv::Row* y) { return x->dataset < y->dataset; });
            if (auto other = std::find_if(members.begin(), members.end(),
                                          [&](const bv::Row* r) { return r->n != members[0]->n; });
                other != members.end()) {
                std::cerr << tool << ": note: " << one_line(where.first + ":" + where.second) << " holds Hessians of "
                          << "different n, ranked as separate basins (" << one_line(members[0]->dataset) << ", n "
                          << members[0]->n << "; " << one_line((*other)->dataset) << ", n " << (*other)->n
                          << (members.size() > 2 ? "; ..." : "")
                          << "); if they are the blocks of one Hessian, rank that Hessian: the group, given the "
                             "attribute structure = \"blocks\" if it lacks it (docs/structured.md)\n";
                break;
            }
        }
    }
    return placed;
}

namespace {

// `rank`: places by the ranking rule, then every row.
void rank_and_write(std::vector<bv::Row>& rows, std::ostream& out, bv::ReportSpec spec, const CommonOptions& o,
                    const BatchCli& b, const bv::AnalyzeOptions& a, const std::string& recorded_cuts) {
    bool any_regularized = false;
    for (const auto& r : rows) any_regularized = any_regularized || r.log_volume_regularized.has_value();
    if (b.from_results && any_regularized) spec.with_regularized = true;
    place_rows(rows, o, a, spec.with_regularized, "basinvol", recorded_cuts);
    bv::RowWriter ranked(out, spec);
    for (const auto& r : rows) ranked.write(r);
    ranked.finish();
}

// What a --shard run writes on each row: its shard ("I/N"; "" unsharded),
// its split's fingerprint, and on the rows of the split's sources (not
// --per-block's parts) the rows of them it writes and the split's count.
struct ShardStamp {
    std::string shard, split;
    std::set<std::string> sources;  // the split's (ShardStamp::of)
    std::size_t rows = 0;

    // The stamp of shard `s` of the split of `sources`, whose rows of them this run writes are `rows`.
    static ShardStamp of(const bv::Shard& s, std::set<std::string> sources, std::size_t rows) {
        ShardStamp t;
        t.shard = std::to_string(s.index) + "/" + std::to_string(s.count);
        std::string all = std::to_string(s.count);
        for (const auto& x : sources) all += '\n' + x;  // (a source holds no line break here: a row's key)
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(bv::stable_hash(all)));
        t.split = hex;
        t.sources = std::move(sources);
        t.rows = rows;
        return t;
    }
};

// Row `r` as the run of `stamp` writes it.
bv::Row of_shard(bv::Row r, const ShardStamp& stamp) {
    r.shard = stamp.shard;
    r.split = stamp.split;
    const bool counted = stamp.sources.count(r.source) > 0;
    r.shard_rows = counted ? stamp.rows : 0;
    r.split_rows = counted ? stamp.sources.size() : 0;
    return r;
}

// Where each row goes: the journal as soon as it is finished (it survives a
// kill, whatever --order holds back), then, in the output's order, the list
// to rank or the writer.
struct RowSink {
    Journal* journal;
    Progress& progress;
    std::vector<bv::Row>* ranked;  // `rank`: kept until every row is in
    bv::RowWriter& writer;
    const std::ostream* streamed;  // rows stream to standard output or a device: once a write fails, nothing reads them
    const ShardStamp& shard;       // --shard's, on each row
    void finished(std::size_t, const bv::Row& r) const {
        if (!journal) return;
        const std::string why = journal->append(r);
        if (!why.empty()) progress.message("basinvol: warning: " + why);
    }
    void operator()(std::size_t, const bv::Row& given) const {
        bv::Row r = of_shard(given, shard);
        if (ranked) ranked->push_back(std::move(r));
        else writer.write(r);
        if (streamed && !*streamed) request_stop();  // finish_output or the commit says so, exit 1
    }
};

}  // namespace

bv::BatchSummary run_items(const std::vector<bv::WorkItem>& items, bv::BatchOptions bo, const CommonOptions& o,
                           const BatchCli& b, Progress& progress, const OnRow& on_row,
                           const std::function<void()>& on_tick, const OnRow& on_finished) {
    // From here on a signal stops the batch cleanly: running Hessians finish.
    install_interrupt_handlers(false, second_signal_note);
    bo.jobs = b.jobs;
    bo.memory_budget = memory_budget(o);
    bo.analyze.read.max_bytes = bo.memory_budget;
    bo.order = b.order;
    bo.stop = interrupt_flag();
    bv::BatchCallbacks cb;
    cb.on_row = [&](std::size_t i, const bv::Row& r) {
        const bv::Row said = cli_row(r);
        if (!said.ok) progress.message("basinvol: error: " + said.error);
        on_row(i, said);
    };
    if (on_finished) cb.on_finished = [&](std::size_t i, const bv::Row& r) { on_finished(i, cli_row(r)); };
    cb.on_progress = [&](const bv::BatchProgress& p) {
        if (on_tick) on_tick();
        progress.update(p);
    };
    bv::BatchSummary sum = bv::run_batch(items, bo, cb);
    progress.finish();
    if (const int sig = interrupt_signal())
        std::cerr << "basinvol: interrupted: " << sum.delivered << " row(s) done, " << sum.not_started
                  << " Hessian(s) not started\n";
    return sum;
}

int batch_status(bool failed) {
    const int sig = interrupt_signal();
    return sig ? 128 + sig : failed ? exit_failed : exit_ok;
}

int run_batch_command(const std::string& command, const std::vector<std::string>& args, const CommonOptions& o,
                      const BatchCli& given) {
    // -o through a link is the link's target, for its lock, journal and
    // temporary files as for the rename: two names of one file share them.
    BatchCli b = given;
    if (!b.output.empty()) {
        const OutputTarget target = output_target(b.output);
        if (!target.stream && !target.directory) b.output = target.path;
    }
    const bool ranking = command == "rank";
    auto spec = spec_for(command, o, ranking);
    check_batch_usage(b, spec, args);
    // Each row of a shard names it (and a JSON document's context), its
    // split, and counts its rows and its split's, so that merging the shards
    // can tell one that is missing or was stopped before it finished.
    ShardStamp shard;  // (ShardStamp::of once the split is listed)
    spec.with_shard = !b.shard.empty();
    bv::BatchOptions bo;
    bo.analyze = to_analyze(o);

    // One run at a time writes FILE (a second is refused, naming the first).
    std::unique_ptr<OutputLock> lock;
    const bool stream = !b.output.empty() && output_target(b.output).stream;  // e.g. -o /dev/null
    if (!b.output.empty() && !stream) {
        lock = std::make_unique<OutputLock>(b.output);
        if (!lock->warning().empty()) std::cerr << lock->warning() << '\n';
        remove_stale_temps(b.output);
    }
    Earlier earlier = earlier_rows(b, spec, bv::name_of(bv::format_names(), o.format));

    Progress progress(!b.no_progress);
    std::vector<bv::Row> rows;  // rank: every row before printing
    std::string recorded_cuts;  // --from-results: the cut options the JSON files record differently
    std::size_t failed = 0;
    std::vector<bv::WorkItem> items;
    if (b.from_results) {
        // The rows keep the options they were computed with: the context
        // records those (with this ranking's own) when the files agree on
        // them, else none (null), so --resume cannot mistake them.
        nlohmann::ordered_json options;
        std::map<std::string, std::set<std::string>> differing;
        std::vector<std::string> unrecorded;
        std::set<std::string> unreadable;
        SavedShards shards;
        rows = merge_results(args, progress, options, differing, unrecorded, unreadable, shards);
        drop_parts(rows, progress);
        // A sharded run's rows name their shard and count their split's: a
        // shard whose rows are not all there is named, not left out unseen
        // (its error rows join the others below).
        std::vector<bv::Row> lacking = shards.missing(progress);
        spec.with_shard = shards.labelled > 0;
        // Options the JSON files record with different values: those that
        // set the cut mark every row mixed_cut (place_rows says so), the
        // rest are said here, but for the ranking's own and the method
        // (every solver gives one answer, within its error bars).
        std::string others;
        differing.erase("tie_tol");
        differing.erase("method");
        // Files that record none beside files that do: their rows' cuts are
        // known only from the rows' own fields.
        if (!unrecorded.empty() && unrecorded.size() + unreadable.size() < args.size()) {
            std::string names;
            for (const auto& n : unrecorded) names += (names.empty() ? "" : ", ") + n;
            progress.message("basinvol: note: " + names + (unrecorded.size() == 1 ? " records" : " record") +
                             " no options (JSON Lines, TSV, CSV, or a ranking of runs under different options): "
                             "whether its rows were cut as the others' is known only from the rows' own fields");
        }
        for (const auto& [key, values] : differing) {
            std::string text = key + " ";
            for (const auto& v : values) text += (text.back() == ' ' ? "" : " and ") + v;
            std::string& into = key == "cut" || key == "atol" || key == "rtol" || key == "min_gap" ? recorded_cuts : others;
            into += (into.empty() ? "" : "; ") + text;
        }
        if (!others.empty())
            progress.message("basinvol: warning: the results files record different options (" + others +
                             "): their rows were computed differently");
        if (options.is_object()) {
            const auto now = spec.context["options"];
            options["tie_tol"] = now["tie_tol"];
            // `last` only orders (its rows are abs's): the ranking's own
            // choice is recorded, `last` or not; `drop`'s rows stay drop's.
            if (options["negatives"] != "drop") options["negatives"] = now["negatives"];
        }
        spec.context["options"] = options;
        std::size_t saved_errors = 0;  // (an unreadable results file was told already)
        for (const auto& r : rows) {
            failed += r.ok ? 0 : 1;
            saved_errors += !r.ok && !unreadable.count(r.source);
        }
        failed += lacking.size();
        rows.insert(rows.end(), lacking.begin(), lacking.end());
        if (rows.empty()) progress.message("basinvol: note: the results files hold no rows");
        // Each was told on stderr by the run that saved it; the exit status says them again.
        if (saved_errors)
            progress.message("basinvol: note: " + std::to_string(saved_errors) +
                             " saved row(s) are error rows (listed last, exit 1): their Hessians failed when "
                             "the results were computed");
    } else {
        std::set<std::string> listed;
        std::set<std::string> split;
        items = work_for(args, b, &listed, spec.with_shard ? &split : nullptr, ranking);
        const Inputs in = inputs_of(items, listed, spec);  // before the done ones are left out
        if (!earlier.done.empty()) skip_done(items, earlier, spec, b.output);
        failed += keep_errors_of_others(in, earlier, spec);
        if (spec.with_shard) {
            std::set<std::string> mine;  // the split's sources FILE holds once every row is in
            for (const auto& r : earlier.kept)
                if (split.count(r.source)) mine.insert(r.source);
            for (const auto& w : items)
                if (split.count(w.label())) mine.insert(w.label());
            shard = ShardStamp::of(bv::parse_shard(b.shard), std::move(split), mine.size());
            spec.context["shard"] = shard.shard;
        }
    }
    if (!b.output.empty()) refuse_run_inputs_as_output(b.output, args, b, items);
    // Opened first: a FIFO's open waits for its reader, and Ctrl-C must end that wait.
    std::unique_ptr<AtomicFile> file;
    if (!b.output.empty()) file = std::make_unique<AtomicFile>(b.output);
    // From here on a signal stops the batch cleanly (before, it just ends the process: nothing is written yet).
    install_interrupt_handlers(false, second_signal_note);
    std::unique_ptr<Journal> journal;
    if (file && !stream && !b.from_results) {
        if (earlier.journal_found && !b.resume)
            std::cerr << "basinvol: note: " << journal_path(b.output)
                      << " held the rows of an unfinished run; starting afresh (--resume keeps them)\n";
        journal = std::make_unique<Journal>(b.output, b.resume, spec);
    }
    std::ostream& out = file ? file->stream() : std::cout;
    bv::RowWriter writer(out, spec);
    for (const auto& r : earlier.kept) {
        if (ranking) rows.push_back(of_shard(r, shard));
        else writer.write(of_shard(r, shard));
    }

    if (!b.from_results) {
        RowSink sink{journal.get(), progress, ranking ? &rows : nullptr, writer, file && !stream ? nullptr : &out, shard};
        auto sync = [&] {
            if (journal) journal->sync_if_due();
        };
        const OnRow finished = [&](std::size_t i, const bv::Row& r) { sink.finished(i, r); };
        failed += run_items(items, bo, o, b, progress, sink, sync, finished).failed;
    }
    progress.finish();
    if (ranking) rank_and_write(rows, out, spec, o, b, bo.analyze, recorded_cuts);
    else writer.finish();
    if (file) file->commit();
    if (journal) journal->remove();  // every row is in FILE now
    // Said once FILE holds them: a second signal during the commit leaves
    // FILE as it was and the rows in the journal.
    if (!b.from_results && interrupt_signal() && file)
        std::cerr << "basinvol: interrupted: the rows done are in " << b.output << '\n';
    return finish_output(batch_status(failed > 0));
}

}  // namespace cli
