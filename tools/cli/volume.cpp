#include "batch.hpp"

namespace cli {

// Streams one row per Hessian as soon as it is known (in input order unless
// --order finish); see run_batch_command.
int cmd_volume(const std::vector<std::string>& sources, const CommonOptions& o, const BatchCli& b) {
    return run_batch_command("volume", sources, o, b);
}

}  // namespace cli
