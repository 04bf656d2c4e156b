#include "batch.hpp"

namespace cli {

// Needs every row before it prints: computes them (or, with --from-results,
// reads saved ones), ranks by dimension then log-volume, writes.
int cmd_rank(const std::vector<std::string>& sources, const CommonOptions& o, const BatchCli& b) {
    return run_batch_command("rank", sources, o, b);
}

}  // namespace cli
