#pragma once
// How output failures reach basinvol: standard descriptors a parent left
// closed, and a file-size limit.
//
// Standard descriptors a parent left closed (`cmd >&- 2>&-`, `0<&-`). A
// file basinvol opens (-o FILE, its lock) takes the lowest free descriptor:
// as 1 or 2 it would receive the results or the messages meant for the
// closed stream. Each closed one is held by /dev/null opened the other way
// round, so that the slot is taken and using the stream still fails as it
// would have (writing to 1 or 2, reading from 0: EBADF).
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <string>
#include <unistd.h>

namespace cli {

// Whether standard input was closed when the process started.
inline bool& stdin_was_closed() {
    static bool closed = false;
    return closed;
}

inline void hold_standard_descriptors() {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        // The lowest free descriptor is this one: the smaller ones are open.
        const int held = ::open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
        if (held != fd && held >= 0) ::close(held);
        if (fd == 0) stdin_was_closed() = true;
    }
    // A file-size limit (`ulimit -f`) reached by -o FILE, its journal or a
    // redirected stdout: a failed write (EFBIG) reported as a full disk is,
    // not SIGXFSZ's default of ending the process with FILE.tmp-* left behind.
    std::signal(SIGXFSZ, SIG_IGN);
}

// `status` once what went to stdout (--help, --version) is written; a write
// that failed (a full disk, a closed stdout) is one line and exit 1.
inline int written(int status, const char* tool) {
    errno = 0;
    std::cout.flush();
    if (std::cout) return status;
    const int e = errno;
    std::cerr << tool << ": error: cannot write to standard output" << (e ? std::string(": ") + std::strerror(e) : "")
              << '\n';
    return 1;
}

}  // namespace cli
