#pragma once
// SIGINT (Ctrl-C), SIGTERM (a batch system's time limit) and SIGHUP (the
// terminal or ssh session gone; unless ignored, as under nohup) to one
// handler, with interrupted system calls restarted: how basinvol and
// basinvol-toy stop.
#include <csignal>
#include <cstring>
#include <time.h>

namespace cli {

// Now on CLOCK_MONOTONIC, in ns (clock_gettime is async-signal-safe).
inline long long monotonic_ns() {
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<long long>(t.tv_sec) * 1000000000LL + t.tv_nsec;
}

// A signal equal to the one before within this time is the same stop
// delivered twice: GNU timeout signals its command, then the command's
// whole process group, microseconds apart (a batch system may signal a
// job's step and its process group alike). Only a later one is a second stop.
constexpr long long same_stop_ns = 500000000LL;

inline void catch_stop_signals(void (*handler)(int)) {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    struct sigaction hup;
    if (sigaction(SIGHUP, nullptr, &hup) == 0 && hup.sa_handler != SIG_IGN) sigaction(SIGHUP, &sa, nullptr);
}

}  // namespace cli
