#pragma once
// Crash safety of `-o FILE`: a lock that keeps two runs from writing the same
// FILE, and a journal of finished rows beside it that survives SIGKILL, so
// that `--resume` redoes only the Hessians that were running.
//
//   FILE.lock      flock(2)'d by the run writing FILE; holds its pid
//   FILE.journal   one JSON Lines row per finished Hessian, appended with one
//                  write(2) each and fsync'd at most once a second
//
// Both are removed when FILE is renamed into place. Only the command line
// uses these (they print nothing; messages come back as strings).
#include "common.hpp"

#include <basinvol/report/format.hpp>
#include <basinvol/result.hpp>

#include <chrono>
#include <set>
#include <string>
#include <vector>

namespace cli {

std::string lock_path(const std::string& output);
std::string journal_path(const std::string& output);

// Where `-o FILE` is written. A symbolic link is followed to its target, which
// is replaced (the link stays a link). An existing file that is not a regular
// file or a directory (a character device such as /dev/null or
// /dev/stdout, a FIFO) is a stream: opened through the name given and
// written in place, never replaced, with no lock, journal or temporary file
// beside it. Throws UsageError for a block device, a socket, a link loop
// (`option` names the argument in its message).
//
// A name of one of this process's open descriptors (/dev/stdout,
// /dev/stderr, /dev/fd/N, /proc/self/fd/N, directly or through links) is
// that descriptor, whatever it leads to: a stream with `descriptor` set,
// written through the descriptor itself (a log that stdout appends to keeps
// its lines and its place; it is never replaced or reopened).
struct OutputTarget {
    std::string path;
    bool stream = false;
    bool directory = false;
    int descriptor = -1;  // the process's own descriptor the name opens, or -1
};
OutputTarget output_target(const std::string& output, const char* option = "-o");

// The descriptor N that `name` opens when it is one of this process's own
// (/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N), directly or
// through symbolic links; -1 otherwise.
int descriptor_named(const std::string& name);

// Whether -o OUTPUT means standard output: "-", or a name of descriptor 1.
bool names_standard_output(const std::string& output);

// -o FILE must not be a file the run reads (an HDF5 input, a SOURCE list, a
// results file, under any name): the rename at the end would replace it.
// Throws UsageError.
void refuse_input_as_output(const std::string& output, const std::set<std::string>& inputs);

// Takes FILE.lock without waiting. Throws bv::Error naming the holder's pid
// when another run holds it. A file system without locks leaves `warning`
// set and the run unlocked.
class OutputLock {
public:
    explicit OutputLock(const std::string& output);
    ~OutputLock();  // removes FILE.lock and releases it
    OutputLock(const OutputLock&) = delete;
    OutputLock& operator=(const OutputLock&) = delete;
    const std::string& warning() const { return warning_; }

private:
    std::string path_;
    int fd_ = -1;
    std::string warning_;
};

// Removes FILE.tmp-XXXXXX files that killed runs left (call only under the lock).
void remove_stale_temps(const std::string& output);

struct JournalRows {
    std::vector<bv::Row> rows;
    std::size_t unreadable = 0;  // complete lines that are not a row (skipped: analyzed again)
    bool exists = false;
    // The first line of a journal started for -f json: {"context": {"options":
    // ...}}, the options its rows were computed with ("" when absent).
    std::string context;
};

// The rows of FILE.journal; a cut-off last line (a write the kill
// interrupted) is left out.
JournalRows read_journal(const std::string& output);

class Journal {
public:
    // Opens FILE.journal: `keep` appends to it (cutting off a partial last
    // line), otherwise it starts empty; a journal started for -f json begins
    // with a line of the run's options, which --resume holds a rerun to as it
    // holds one to FILE's. Throws bv::Error when it cannot be made.
    Journal(const std::string& output, bool keep, bv::ReportSpec spec);
    ~Journal();  // syncs and closes; the file stays for --resume
    Journal(const Journal&) = delete;
    Journal& operator=(const Journal&) = delete;
    // Writes the row at once (one write(2): a kill keeps it); syncs when a
    // second has passed since the last sync. Returns a message on the first
    // failure (the journal is then off), else an empty string.
    std::string append(const bv::Row& row);
    // Syncs pending rows when a second has passed (call on progress ticks).
    void sync_if_due();
    // Deletes the journal (the final FILE is in place).
    void remove();

private:
    void sync();
    std::string path_;
    bv::ReportSpec spec_;
    int fd_ = -1;
    bool dirty_ = false;
    bool failed_ = false;
    std::chrono::steady_clock::time_point last_sync_;
};

// fsync(2) of the directory holding `path` (a rename or unlink in it becomes durable).
void sync_directory_of(const std::string& path);

}  // namespace cli
