#pragma once
// SIGINT (Ctrl-C), SIGTERM (a batch system's time limit) and SIGHUP (the
// terminal or ssh session gone; unless ignored, as under nohup) to one
// handler, with interrupted system calls restarted: how basinvol and
// basinvol-toy stop.
#include <csignal>
#include <cstring>

namespace cli {

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
