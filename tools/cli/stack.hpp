#pragma once
// A small stack limit (`ulimit -s 128`) is every thread's stack size too:
// glibc sizes new threads by it, and a worker's 64×64 tiles (tens of kB
// each, on the stack) then overflowed it (SIGSEGV). basinvol's threads get
// 8 MB whatever the limit; the main thread's soft limit is raised to 8 MB
// where the hard limit allows (items run there when no worker can start).
#include <algorithm>
#include <pthread.h>
#include <sys/resource.h>

namespace cli {

inline void ensure_stack() {
    constexpr rlim_t want = rlim_t(8) << 20;
    struct rlimit lim {};
    if (::getrlimit(RLIMIT_STACK, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < want) {
        lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
        ::setrlimit(RLIMIT_STACK, &lim);
    }
    pthread_attr_t attr;
    if (::pthread_attr_init(&attr) != 0) return;
    std::size_t now = 0;
    if (::pthread_attr_getstacksize(&attr, &now) == 0 && now < want && ::pthread_attr_setstacksize(&attr, want) == 0)
        ::pthread_setattr_default_np(&attr);
    ::pthread_attr_destroy(&attr);
}

}  // namespace cli
