// Listing a SOURCE walks all of a file's metadata through HDF5, and HDF5 1.10
// (Debian 12's) can crash on corrupt metadata: fuzzing found several such
// crashes, fixed only in later HDF5 releases. So the walk runs in a forked
// child process that sends back what it found; a child that dies becomes one
// error naming the file, and the batch goes on. A child that has not answered
// within the listing time limit (a FIFO, a hung network file system, HDF5
// looping on corrupt metadata) is killed and is one error as well. Reading
// values stays in this process (its known crashes are guarded in
// hdf5_reader.cpp).
#include "hdf5_detail.hpp"

#include <basinvol/error.hpp>
#include <basinvol/io/reader.hpp>
#include <basinvol/io/structure.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <chrono>
#include <ctime>
#include <cmath>
#include <new>
#include <set>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#endif

namespace basinvol {

std::string listing_out_of_memory(const std::string& file) {
    struct rlimit as {};
    const bool limited = ::getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY;
    return file + ": out of memory while listing" +
           (limited ? " under the address-space limit (ulimit -v): raise the limit" : std::string());
}
namespace {


// A byte string both sides agree on: fixed-width numbers, length-prefixed
// strings (any bytes: names need not be UTF-8), doubles bit for bit (NaN too).
class Writer {
public:
    void u64(std::uint64_t v) { buf_.append(reinterpret_cast<const char*>(&v), sizeof v); }
    void f64(double v) { buf_.append(reinterpret_cast<const char*>(&v), sizeof v); }
    void str(const std::string& s) {
        u64(s.size());
        buf_ += s;
    }
    void opt(const std::optional<double>& v) {
        u64(v.has_value());
        if (v) f64(*v);
    }
    void opt(const std::optional<std::string>& v) {
        u64(v.has_value());
        if (v) str(*v);
    }
    const std::string& bytes() const { return buf_; }

private:
    std::string buf_;
};

class Reader {
public:
    explicit Reader(const std::string& b) : b_(b) {}
    std::uint64_t u64() {
        std::uint64_t v;
        take(&v, sizeof v);
        return v;
    }
    double f64() {
        double v;
        take(&v, sizeof v);
        return v;
    }
    std::string str() {
        const std::uint64_t n = u64();
        if (n > b_.size() - pos_) throw std::length_error("truncated");
        std::string s = b_.substr(pos_, n);
        pos_ += n;
        return s;
    }
    void opt(std::optional<double>& v) {
        if (u64()) v = f64();
    }
    void opt(std::optional<std::string>& v) {
        if (u64()) v = str();
    }

private:
    void take(void* out, std::size_t n) {
        if (n > b_.size() - pos_) throw std::length_error("truncated");
        std::memcpy(out, b_.data() + pos_, n);
        pos_ += n;
    }
    const std::string& b_;
    std::size_t pos_ = 0;
};

void put(Writer& w, const ListedHessian& listed) {
    const HessianInfo& h = listed.info;
    w.str(h.file);
    w.str(h.dataset);
    w.u64(h.n);
    w.str(h.stored_type);
    w.str(h.structure);
    w.u64(h.working_bytes);
    w.str(h.working_part);
    w.f64(h.stored_eps);
    w.f64(h.quantum);
    w.u64(h.unwritten_chunks);
    w.str(h.identity);
    w.str(listed.problem);
    w.opt(h.attrs.step);
    w.opt(h.attrs.loss);
    w.opt(h.attrs.loss_threshold);
    w.opt(h.attrs.hessian_error);
    w.opt(h.attrs.own_hessian_error);
    w.opt(h.attrs.name);
    w.u64(h.attrs.numbers.size());
    for (const auto& [k, v] : h.attrs.numbers) {
        w.str(k);
        w.f64(v);
    }
    w.u64(h.attrs.strings.size());
    for (const auto& [k, v] : h.attrs.strings) {
        w.str(k);
        w.str(v);
    }
    w.u64(h.reads_also.size());
    for (const auto& f : h.reads_also) w.str(f);
    w.u64(h.unread_attributes.size());
    for (const auto& a : h.unread_attributes) {
        w.str(a.object);
        w.str(a.name);
        w.str(a.why);
    }
}

ListedHessian get(Reader& r) {
    ListedHessian listed;
    HessianInfo& h = listed.info;
    h.file = r.str();
    h.dataset = r.str();
    h.n = static_cast<std::size_t>(r.u64());
    h.stored_type = r.str();
    h.structure = r.str();
    h.working_bytes = static_cast<std::size_t>(r.u64());
    h.working_part = r.str();
    h.stored_eps = r.f64();
    h.quantum = r.f64();
    h.unwritten_chunks = r.u64();
    h.identity = r.str();
    listed.problem = r.str();
    r.opt(h.attrs.step);
    r.opt(h.attrs.loss);
    r.opt(h.attrs.loss_threshold);
    r.opt(h.attrs.hessian_error);
    r.opt(h.attrs.own_hessian_error);
    r.opt(h.attrs.name);
    for (std::uint64_t i = 0, count = r.u64(); i < count; ++i) {
        std::string k = r.str();
        h.attrs.numbers[k] = r.f64();
    }
    for (std::uint64_t i = 0, count = r.u64(); i < count; ++i) {
        std::string k = r.str();
        h.attrs.strings[k] = r.str();
    }
    for (std::uint64_t i = 0, count = r.u64(); i < count; ++i) h.reads_also.push_back(r.str());
    for (std::uint64_t i = 0, count = r.u64(); i < count; ++i) {
        UnreadAttribute a;
        a.object = r.str();
        a.name = r.str();
        a.why = r.str();
        h.unread_attributes.push_back(std::move(a));
    }
    return listed;
}

// The child's work: the listing ('L') or the error ('E'), as bytes.
std::string listing_answer(const std::string& file, const std::function<std::vector<ListedHessian>()>& list_here) {
    Writer w;
    try {
        std::vector<ListedHessian> list = list_here();
        w.u64('L');
        w.u64(list.size());
        for (const auto& h : list) put(w, h);
    } catch (const Error& e) {
        w = Writer();
        w.u64('E');
        w.str(e.what());
    } catch (const std::bad_alloc&) {
        w = Writer();
        w.u64('E');
        w.str(listing_out_of_memory(file));
    } catch (const std::exception& e) {
        w = Writer();
        w.u64('E');
        w.str(file + ": cannot list: " + e.what());
    }
    return w.bytes();
}

}  // namespace

FileStamp stamp_file(const HessianInfo& info) {
    FileStamp st;
    struct stat sb {};
    if (::stat(info.file.c_str(), &sb) != 0) return st;
    st.valid = true;
    st.device = sb.st_dev;
    st.inode = sb.st_ino;
    st.size = static_cast<unsigned long long>(sb.st_size);
    st.mtime_ns = static_cast<long long>(sb.st_mtim.tv_sec) * 1000000000LL + sb.st_mtim.tv_nsec;
    st.ctime_ns = static_cast<long long>(sb.st_ctim.tv_sec) * 1000000000LL + sb.st_ctim.tv_nsec;
    return st;
}

void check_unchanged(const HessianInfo& info, const FileStamp& before) {
    if (!before.valid) return;
    const FileStamp now = stamp_file(info);
    if (now == before) return;
    const char* what = !now.valid ? "it is gone"
                       : now.inode != before.inode || now.device != before.device ? "it was replaced"
                       : now.size != before.size ? "its size changed"
                                                 : "it was modified";
    throw file_changed(info, what);
}

InputError file_changed(const HessianInfo& info, const std::string& how) {
    return InputError(info.source() + ": the file changed while it was read (" + how +
                      "): the values may mix two versions; analyze it again once it is complete");
}

long long file_clock_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

namespace {
constexpr long long skew_ns = 1000000000LL;  // a stamp further ahead of the clock is a clock skew, not a write

long long stamp_time(const FileStamp& s) { return std::max(s.mtime_ns, s.ctime_ns); }
}  // namespace

bool written_since(const FileStamp& stamp, long long clock_ns) {
    const long long t = stamp_time(stamp);
    return stamp.valid && t >= clock_ns && t <= file_clock_ns() + skew_ns;
}

void wait_past(const FileStamp& stamp) {
    timespec tick{};
    ::clock_getres(CLOCK_REALTIME_COARSE, &tick);
    const long long step = std::min<long long>(std::max<long long>(tick.tv_nsec, 1000000LL), 50000000LL) + 1000000LL;
    const long long until = std::min(stamp_time(stamp), file_clock_ns() + skew_ns);
    for (long long now = file_clock_ns(); now <= until; now = file_clock_ns()) {
        const long long wait = std::min(until - now + step, skew_ns + step);
        const timespec ts{static_cast<time_t>(wait / 1000000000LL), static_cast<long>(wait % 1000000000LL)};
        ::nanosleep(&ts, nullptr);
    }
}

namespace {

// How long a read whose values broke a rule waits for a paused writer.
constexpr timespec writer_grace{0, 50000000L};  // 50 ms

}  // namespace

void read_consistently(const HessianInfo& info, const std::function<void()>& read, int passes) {
    for (int pass = 1;; ++pass) {
        detail::flush_writers_of(info.file);
        const long long start = file_clock_ns();
        const FileStamp before = stamp_file(info);
        const bool unsettled = passes > 1 && written_since(before, start);
        try {
            read();
        } catch (const InputError&) {
            check_unchanged(info, before);
            if (!unsettled) {
                // A writer paused in the middle of a rewrite leaves a file that
                // looks settled: give it a moment. A file that changes meanwhile
                // was being written; else what its values broke is the error.
                ::nanosleep(&writer_grace, nullptr);
                check_unchanged(info, before);
                throw;
            }
        }
        check_unchanged(info, before);
        if (!unsettled) return;
        if (pass >= passes) throw file_changed(info, "it is being written");
        wait_past(before);  // then the next pass tells "before" from "during"
    }
}

// The memory a listing child may take beyond what it inherits: half the
// machine's memory, at least 512 MB and at most 4 GB. A listing reads
// metadata and attributes; a corrupt variable-length attribute had HDF5
// 1.10 allocate and clear 16 GB for a 9 KB file (found by fuzzing). Past
// the cap the allocation fails and the file is one error row.
namespace {
std::size_t listing_room() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    const double half = pages > 0 && page > 0 ? 0.5 * double(pages) * double(page) : 0;
    return static_cast<std::size_t>(std::clamp(half, 512.0 * (1 << 20), 4096.0 * (1 << 20)));
}

void check_time_limit(double limit) {
    if (!(limit > 0) || !std::isfinite(limit)) {
        std::ostringstream v;
        v << limit;
        throw UsageError("the listing time limit must be a positive number of seconds, got " + v.str());
    }
}

// Why a child listing `file` gave no answer: it overran the limit, or died.
InputError no_answer(const std::string& file, const detail::ChildResult& child, double limit) {
    if (child.timed_out) {
        std::ostringstream v;
        v << limit;
        return InputError(file + ": reading this file's structure took longer than the listing limit of " + v.str() +
                          " s, so it was stopped (a FIFO, a hung file system, or HDF5 looping on a corrupt file; "
                          "option list_timeout)");
    }
    std::string why = file + ": the HDF5 library failed while reading this file's structure (corrupt file";
    if (child.signal) why += std::string("; it stopped on signal ") + std::to_string(child.signal);
    return InputError(why + ")");
}

// A listing_answer decoded: the list, or the InputError it carries
// (std::length_error when the bytes are cut short).
std::vector<ListedHessian> decode(const std::string& bytes, const std::shared_ptr<const std::string>& image) {
    Reader r(bytes);
    const std::uint64_t kind = r.u64();
    if (kind == 'E') throw InputError(r.str());
    std::vector<ListedHessian> list(static_cast<std::size_t>(r.u64()));
    for (auto& h : list) {
        h = get(r);
        h.image = image;
    }
    return list;
}

// What `list_here` lists in `file`, walked in a child process (options.isolate).
std::vector<ListedHessian> list_isolated(const std::string& file, const std::shared_ptr<const std::string>& image,
                                         const std::function<std::vector<ListedHessian>()>& list_here,
                                         const ListOptions& options) {
    const double limit = options.time_limit;
    check_time_limit(limit);
    if (!image) detail::flush_writers_of(file);
    if (!options.isolate) return list_here();
    const std::optional<detail::ChildResult> child =
        detail::run_in_child([&] { return listing_answer(file, list_here); }, limit, options.stop, listing_room());
    if (!child) return list_here();  // cannot isolate: list here
    if (child->stopped) throw ListingStopped();
    if (!child->clean) throw no_answer(file, *child, limit);
    try {
        return decode(child->bytes, image);
    } catch (const std::length_error&) {
        throw no_answer(file, *child, limit);
    }
}

// The answers a list_each child sent, each a length-prefixed listing_answer:
// the offsets of those complete in `bytes`, counted on from `offsets`.
void complete_answers(const std::string& bytes, std::vector<std::size_t>& offsets, std::size_t& end) {
    for (;;) {
        std::uint64_t n = 0;
        if (bytes.size() - end < sizeof n) return;
        std::memcpy(&n, bytes.data() + end, sizeof n);
        if (n > bytes.size() - end - sizeof n) return;
        offsets.push_back(end + sizeof n);
        end += sizeof n + static_cast<std::size_t>(n);
    }
}

}  // namespace

std::vector<ListedHessian> list_hessians(const Source& source, const ListOptions& options) {
    return list_isolated(source.file, source.image, [&] { return detail::list_hessians_here(source); }, options);
}

std::vector<std::string> drop_listed_twice(const std::vector<Source>& sources, std::vector<SourceListing>& listings) {
    std::map<std::string, std::string> first;  // identity -> the name it was listed under first
    std::vector<std::string> said;
    for (std::size_t i = 0; i < listings.size() && i < sources.size(); ++i) {
        auto& hessians = listings[i].hessians;
        std::size_t dropped = 0;
        std::string example;
        hessians.erase(std::remove_if(hessians.begin(), hessians.end(),
                                      [&](const ListedHessian& l) {
                                          if (l.info.identity.empty()) return false;
                                          const auto [it, fresh] = first.emplace(l.info.identity, l.info.source());
                                          if (fresh) return false;
                                          if (dropped++ == 0)
                                              example = l.info.source() == it->second
                                                            ? it->second
                                                            : l.info.source() + " is " + it->second;
                                          return true;
                                      }),
                       hessians.end());
        if (dropped > 0)
            said.push_back("SOURCE " + sources[i].text + " lists " +
                           (dropped == 1 ? std::string("a Hessian") : std::to_string(dropped) + " Hessians") +
                           " listed already by an earlier SOURCE (" + (dropped == 1 ? "" : "e.g. ") + example +
                           "): one row each, under the name listed first");
    }
    return said;
}

std::vector<SourceListing> list_each(const std::vector<Source>& sources, const ListOptions& options) {
    check_time_limit(options.time_limit);
    std::vector<SourceListing> out(sources.size());
    auto list_here = [&](std::size_t i) {
        try {
            out[i].hessians = detail::list_hessians_here(sources[i]);
        } catch (const Error& e) {
            out[i].error = e.what();
        } catch (const std::bad_alloc&) {
            out[i].error = listing_out_of_memory(sources[i].file);
        }
    };
    std::set<std::string> flushed;
    for (const auto& s : sources)
        if (!s.image && flushed.insert(s.file).second) detail::flush_writers_of(s.file);
    // A child lists up to `per_child` SOURCEs, answering each as it is done
    // (a fork cost about 10 ms a SOURCE here); each has the whole time
    // limit. One that overruns it or kills the child is the error
    // list_hessians gives it, and a new child goes on with the next.
    constexpr std::size_t per_child = 64;
    for (std::size_t next = 0; next < sources.size();) {
        const std::size_t first = next, last = std::min(sources.size(), next + per_child);
        if (!options.isolate) {
            for (; next < last; ++next) list_here(next);
            continue;
        }
        auto work = [&]() -> std::string {
            for (std::size_t i = next; i < last; ++i) {
                const std::string answer =
                    listing_answer(sources[i].file, [&] { return detail::list_hessians_here(sources[i]); });
                const std::uint64_t n = answer.size();
                detail::send_to_parent(std::string(reinterpret_cast<const char*>(&n), sizeof n));
                detail::send_to_parent(answer);
            }
            return "";
        };
        std::vector<std::size_t> offsets;
        std::size_t end = 0;
        auto progress = [&](const std::string& bytes) {
            const std::size_t before = offsets.size();
            complete_answers(bytes, offsets, end);
            return offsets.size() > before;
        };
        const std::optional<detail::ChildResult> child =
            detail::run_in_child(work, options.time_limit, options.stop, listing_room(), progress);
        if (!child) {  // cannot isolate: list here
            for (; next < last; ++next) list_here(next);
            continue;
        }
        if (child->stopped) throw ListingStopped();
        for (std::size_t k = 0; k < offsets.size() && next < last; ++k, ++next) {
            const std::size_t at = offsets[k];
            std::uint64_t n = 0;
            std::memcpy(&n, child->bytes.data() + at - sizeof n, sizeof n);
            try {
                out[next].hessians = decode(child->bytes.substr(at, static_cast<std::size_t>(n)), sources[next].image);
            } catch (const InputError& e) {
                out[next].error = e.what();
            } catch (const std::length_error&) {
                out[next].error = no_answer(sources[next].file, *child, options.time_limit).what();
            }
        }
        // The SOURCE being listed when the child stopped. One that died after
        // others may have died of what they left in HDF5's state: it is
        // listed again, first in a new child, before it is blamed.
        if (next < last && (child->timed_out || next == first)) {
            out[next].error = no_answer(sources[next].file, *child, options.time_limit).what();
            ++next;
        }
    }
    return out;
}

std::vector<ListedHessian> list_blocks(const ListedHessian& whole, const ListOptions& options) {
    const HessianInfo& h = whole.info;
    ReadOptions read;
    read.image = whole.image;
    std::vector<Source> members;
    for (const auto& part : describe_structure(h, read).parts)
        members.push_back(Source{h.file, part.path, h.file + ":" + part.path, whole.image});
    // As SOURCEs of their own: each with the whole time limit, several in a child.
    std::vector<SourceListing> listed = list_each(members, options);
    std::vector<ListedHessian> out;
    for (std::size_t i = 0; i < members.size(); ++i) {
        if (!listed[i].error.empty()) {
            ListedHessian bad;
            bad.info.file = h.file;
            bad.info.dataset = members[i].path;
            bad.image = whole.image;
            const std::string& m = listed[i].error;
            const std::string prefix = bad.info.source() + ": ";
            bad.problem = m.rfind(prefix, 0) == 0 ? m.substr(prefix.size()) : m;
            out.push_back(std::move(bad));
        }
        for (auto& m : listed[i].hessians) out.push_back(std::move(m));
    }
    for (auto& m : out) {
        // The whole's step, loss and threshold hold for its blocks unless they
        // say otherwise, and so does the error bound the whole itself states
        // (a diagonal block of an error E has a norm at most E's; a sibling
        // part's stated error, folded into the whole's, is not this block's).
        Attributes& a = m.info.attrs;
        auto inherit = [&](std::optional<double>& field, const std::optional<double>& of_whole, const char* name) {
            if (field || !of_whole) return;
            field = of_whole;
            a.inherited.emplace_back(name);
        };
        inherit(a.loss_threshold, h.attrs.loss_threshold, "loss_threshold");
        inherit(a.step, h.attrs.step, "step");
        inherit(a.loss, h.attrs.loss, "loss");
        // A block states its own error when its own object carries one (a
        // structure's parts' errors are folded in, and the whole's still bounds it).
        const bool states_own = m.info.structure.empty() ? a.hessian_error.has_value() : a.own_hessian_error.has_value();
        if (!states_own) a.whole_error = h.attrs.own_hessian_error;
    }
    return out;
}

}  // namespace basinvol
