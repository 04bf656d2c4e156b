#include "journal.hpp"

#include <basinvol/batch/results.hpp>
#include <basinvol/error.hpp>
#include <basinvol/io/reader.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace cli {

std::string lock_path(const std::string& output) { return output + ".lock"; }
std::string journal_path(const std::string& output) { return output + ".journal"; }

namespace {

std::string errno_text() { return std::strerror(errno); }

// The directory and base name of a path ("rows.jsonl" -> ".", "rows.jsonl").
std::pair<std::string, std::string> split_path(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return {".", path};
    return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace

namespace {

// The descriptor N a path names when it is one of this process's own: its
// folder is this process's /proc/PID/fd (or a thread's /proc/PID/task/TID/fd),
// however spelled (/dev/fd, /proc/self/./fd, /dev/fd/, a relative fd/ run in
// /dev), and its name N in decimal as procfs writes it; /dev/stdout and its
// kin by name too, should /dev lack their links. -1 otherwise.
int descriptor_path(const std::string& path) {
    if (path == "/dev/stdin") return 0;
    if (path == "/dev/stdout") return 1;
    if (path == "/dev/stderr") return 2;
    const auto [folder, name] = split_path(path);
    if (name.empty() || name.size() > 9 || name.find_first_not_of("0123456789") != std::string::npos ||
        (name.size() > 1 && name[0] == '0'))
        return -1;
    // The usual spellings by name, with or without /proc mounted.
    if (folder == "/dev/fd" || folder == "/proc/self/fd" || folder == "/proc/thread-self/fd") return std::stoi(name);
    const auto real_path = [](const std::string& p) {
        char* resolved = ::realpath(p.c_str(), nullptr);
        const std::string real = resolved ? resolved : "";
        std::free(resolved);
        return real;
    };
    const std::string real = real_path(folder);
    if (real.empty()) return -1;
    // This process as the mounted /proc knows it (another PID namespace's
    // /proc numbers it otherwise than getpid() does).
    std::string own = real_path("/proc/self");
    if (own.empty()) own = "/proc/" + std::to_string(::getpid());
    const std::string task = own + "/task/";
    const bool thread = real.compare(0, task.size(), task) == 0 && real.size() > task.size() + 3 &&
                        real.compare(real.size() - 3, 3, "/fd") == 0 &&
                        real.substr(task.size(), real.size() - 3 - task.size()).find_first_not_of("0123456789") ==
                            std::string::npos;
    return real == own + "/fd" || thread ? std::stoi(name) : -1;
}

// The path a symbolic link at `path` holds, a relative one read from the
// link's folder. Throws InputError when the link cannot be read.
std::string link_target(const std::string& path, const std::string& output) {
    std::vector<char> buf(4096);
    const ssize_t len = ::readlink(path.c_str(), buf.data(), buf.size());
    if (len <= 0 || static_cast<std::size_t>(len) >= buf.size())
        throw bv::InputError(output + ": cannot read the symbolic link " + path + ": " + errno_text());
    std::string to(buf.data(), static_cast<std::size_t>(len));
    return to.front() == '/' ? to : split_path(path).first + "/" + to;
}

}  // namespace

int descriptor_named(const std::string& name) {
    std::string path = name;
    for (int hops = 0; hops <= 40; ++hops) {
        if (const int fd = descriptor_path(path); fd >= 0) return fd;
        struct stat st;
        if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return -1;
        try {
            path = link_target(path, name);
        } catch (const bv::InputError&) {
            return -1;
        }
    }
    return -1;
}

bool names_standard_output(const std::string& output) { return output == "-" || descriptor_named(output) == 1; }

OutputTarget output_target(const std::string& output, const char* option) {
    OutputTarget t{output};
    if ((t.descriptor = descriptor_named(output)) >= 0) {
        t.stream = true;
        return t;
    }
    struct stat st;
    // stat follows every link, the kernel's own too (/dev/stdout to a pipe
    // reads as "pipe:[N]"): what is not a regular file is written through
    // the name given, or refused.
    if (::stat(output.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
        t.directory = S_ISDIR(st.st_mode);
        t.stream = S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode);
        if (!t.directory && !t.stream)
            throw bv::UsageError(std::string(option) + " " + output + " is a block device or a socket; " + option +
                                 " needs a file, a character device or a FIFO");
        return t;
    }
    // A regular file, or none yet: follow the links to the file replaced.
    for (int hops = 0;; ++hops) {
        if (::lstat(t.path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return t;
        if (hops == 40) throw bv::UsageError(std::string(option) + " " + output + ": too many levels of symbolic links");
        t.path = link_target(t.path, output);
    }
}

void refuse_input_as_output(const std::string& output, const std::set<std::string>& inputs) {
    const std::string path = output_target(output).path;
    struct stat out;
    if (::stat(path.c_str(), &out) != 0 || !S_ISREG(out.st_mode)) return;
    for (const auto& file : inputs) {
        struct stat in;
        // '-' is standard input: the file a shell redirect (< FILE) gives it.
        if ((file == "-" ? ::fstat(STDIN_FILENO, &in) : ::stat(file.c_str(), &in)) == 0 && in.st_dev == out.st_dev &&
            in.st_ino == out.st_ino)
            throw bv::UsageError("-o " + output + " is an input of this run (" +
                                 (file == "-" ? std::string("standard input") : file) +
                                 "): the results would replace it; give another -o");
    }
    // Results are text: an HDF5 file there is a checkpoint, not an earlier
    // run's output (a SOURCE named -odd.h5 reads as -o dd.h5).
    if (bv::has_hdf5_signature(path))
        throw bv::UsageError("-o " + output + " is an HDF5 file: the results would replace it; give another -o "
                             "(a SOURCE whose name starts with '-' is read as options: write it ./-NAME)");
}

namespace {

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t k = ::write(fd, data, size);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = ENOSPC;
            return false;
        }
        data += k;
        size -= static_cast<std::size_t>(k);
    }
    return true;
}

std::string read_all(int fd) {
    std::string s;
    char buf[65536];
    for (;;) {
        const ssize_t k = ::read(fd, buf, sizeof buf);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        s.append(buf, static_cast<std::size_t>(k));
    }
    return s;
}

}  // namespace

// ---------------------------------------------------------------- the lock

OutputLock::OutputLock(const std::string& output) : path_(lock_path(output)) {
    // The holder removes FILE.lock at the end while it still holds it; a run
    // that opened the old file before that must not count its lock, so the
    // locked file has to be the one at the path.
    for (int attempt = 0; attempt < 100; ++attempt) {
        const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {  // the user's path, not a failed source: exit 2
            const int err = errno;
            const std::string dir = std::filesystem::path(output).parent_path().string(), shown = dir.empty() ? "." : dir;
            struct stat st {};
            // A directory that is there but takes no new file (/proc) says ENOENT too.
            if (err == ENOENT && ::stat(shown.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
                throw bv::UsageError("-o " + output + ": no file can be created in its directory " + shown + " (" +
                                     std::strerror(err) + ")");
            throw bv::UsageError("-o " + output + ": its directory " + shown +
                                 (err == ENOENT ? " does not exist" : " is not one (a part of it is a file)"));
        }
        if (fd < 0) throw bv::Error(output + ": cannot create the lock file " + path_ + ": " + errno_text());
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
            const int err = errno;
            if (err == EWOULDBLOCK) {
                std::string pid = read_all(fd);
                ::close(fd);
                while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
                throw bv::Error(output + ": another basinvol run is writing it (" +
                                (pid.empty() ? std::string("pid unknown") : "pid " + pid) + ", holding " + path_ +
                                "); wait for it to end or give another -o");
            }
            ::close(fd);
            ::unlink(path_.c_str());
            warning_ = "basinvol: warning: " + path_ + ": cannot lock (" + std::strerror(err) +
                       "): a second run on the same -o would not be refused";
            return;
        }
        struct stat held, there;
        if (::fstat(fd, &held) == 0 && ::stat(path_.c_str(), &there) == 0 && held.st_dev == there.st_dev &&
            held.st_ino == there.st_ino) {
            fd_ = fd;
            break;
        }
        ::close(fd);  // removed by its holder between open and flock: take the new one
    }
    if (fd_ < 0) throw bv::Error(output + ": cannot take the lock " + path_ + " (it keeps being replaced)");
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || !write_all(fd_, pid.data(), pid.size())) {
        // The lock holds without the pid; a refused run then says "pid unknown".
    }
}

OutputLock::~OutputLock() {
    if (fd_ < 0) return;
    ::unlink(path_.c_str());
    ::close(fd_);
}

void remove_stale_temps(const std::string& output) {
    const auto [dir, base] = split_path(output_target(output).path);  // beside the file that is replaced
    const std::string prefix = base + ".tmp-";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    std::vector<std::string> stale;
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.size() == prefix.size() + 6 && name.compare(0, prefix.size(), prefix) == 0) stale.push_back(name);
    }
    ::closedir(d);
    for (const auto& name : stale) ::unlink((dir + "/" + name).c_str());
}

void sync_directory_of(const std::string& path) {
    const int fd = ::open(split_path(path).first.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

// ---------------------------------------------------------------- the journal

JournalRows read_journal(const std::string& output) {
    JournalRows got;
    const std::string path = journal_path(output);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return got;
        throw bv::Error(path + ": cannot read the journal of finished rows: " + errno_text());
    }
    got.exists = true;
    const std::string text = read_all(fd);
    ::close(fd);
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto nl = text.find('\n', pos);
        if (nl == std::string::npos) break;  // cut off by the kill: that Hessian is analyzed again
        const std::string line = text.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const auto j = nlohmann::ordered_json::parse(line, nullptr, false);
        if (got.rows.empty() && got.context.empty() && j.is_object() && j.size() == 1 && j.contains("context")) {
            got.context = line;
            continue;
        }
        try {
            if (j.is_discarded()) throw bv::InputError("not JSON");
            got.rows.push_back(bv::row_from_json(j));
        } catch (const bv::Error&) {
            ++got.unreadable;  // e.g. zeros left by a power loss before the sync
        }
    }
    return got;
}

Journal::Journal(const std::string& output, bool keep, bv::ReportSpec spec)
    : path_(journal_path(output)), spec_(std::move(spec)), last_sync_(std::chrono::steady_clock::now()) {
    const bool record_options = spec_.format == bv::Format::json;
    spec_.format = bv::Format::jsonl;
    spec_.with_place = false;
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (keep ? 0 : O_TRUNC), 0666);
    if (fd_ < 0) throw bv::Error(path_ + ": cannot create the journal of finished rows: " + errno_text());
    if (keep) {
        // A partial last line (the previous run was killed inside a write)
        // is cut off, so that the next row starts on a line of its own.
        const std::string text = read_all(fd_);
        const auto nl = text.rfind('\n');
        const off_t whole = nl == std::string::npos ? 0 : static_cast<off_t>(nl + 1);
        if (static_cast<std::size_t>(whole) != text.size() && ::ftruncate(fd_, whole) != 0) {
            const std::string why = errno_text();
            ::close(fd_);
            throw bv::Error(path_ + ": cannot cut off the partial last row: " + why);
        }
    }
    const off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0 || ::fcntl(fd_, F_SETFL, O_APPEND) != 0) {
        const std::string why = errno_text();
        ::close(fd_);
        throw bv::Error(path_ + ": cannot append to the journal: " + why);
    }
    if (end == 0 && record_options) {
        nlohmann::ordered_json line;
        line["context"]["options"] = spec_.context.value("options", nlohmann::ordered_json());
        const std::string text = line.dump() + "\n";
        if (::write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
            const std::string why = errno_text();
            ::close(fd_);
            throw bv::Error(path_ + ": cannot write the journal's options: " + why);
        }
    }
    sync_directory_of(path_);
}

Journal::~Journal() {
    if (fd_ < 0) return;
    sync();
    ::close(fd_);
}

std::string Journal::append(const bv::Row& row) {
    if (fd_ < 0 || failed_) return "";
    const std::string line =
        bv::row_to_json(row, spec_).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    if (!write_all(fd_, line.data(), line.size())) {
        failed_ = true;
        return path_ + ": cannot write the journal of finished rows (" + errno_text() +
               "): the rows that finish from now on are not safe from a crash";
    }
    dirty_ = true;
    sync_if_due();
    return "";
}

void Journal::sync_if_due() {
    if (dirty_ && std::chrono::steady_clock::now() - last_sync_ >= std::chrono::seconds(1)) sync();
}

void Journal::sync() {
    if (fd_ < 0 || !dirty_) return;
    ::fdatasync(fd_);
    dirty_ = false;
    last_sync_ = std::chrono::steady_clock::now();
}

void Journal::remove() {
    if (fd_ < 0) return;
    ::close(fd_);
    fd_ = -1;
    ::unlink(path_.c_str());
    sync_directory_of(path_);
}

}  // namespace cli
