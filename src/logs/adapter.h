#pragma once
// The adapter's loop: scan, read, parse into a batch, hand the batch to the output, and only
// after the output acknowledged it advance (and periodically fsync) the checkpoint. While the
// output is down the loop sits in its retries and reads nothing: the files are the buffer.
#include <atomic>

#include "logs/config.h"

namespace pillion::logs {

// Runs until `stop` becomes true (or, with exit_at_eof, until everything present was shipped).
// Returns the process exit code; startup problems (bad regex, unreadable path with exit_at_eof,
// unusable output) are logged with a clear message and return 1.
int run_adapter(const Config& config, const std::atomic<bool>& stop);

}  // namespace pillion::logs
