#pragma once
// Runs a program found in PATH (no shell), feeds it `input` on stdin through a pipe and collects
// its stdout and stderr. Callers ignore SIGPIPE, so a child that exits early cannot kill us.
#include <string>
#include <string_view>
#include <vector>

namespace pillion::init {

struct ProcessResult {
  int spawn_errno = 0;  // non-zero: the program could not be started (ENOENT: not in PATH)
  int exit_code = -1;   // 128 + signal when it died of a signal
  std::string out;
  std::string err;
  bool ok() const { return spawn_errno == 0 && exit_code == 0; }
};

ProcessResult run_process(const std::vector<std::string>& argv, std::string_view input);

}  // namespace pillion::init
