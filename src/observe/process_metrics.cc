#include "observe/process_metrics.h"

#include <dirent.h>
#include <malloc.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace pillion::observe {

namespace {

uint64_t count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    return 0;
  }
  uint64_t count = 0;
  std::string self = std::to_string(::dirfd(dir));
  while (const dirent* entry = ::readdir(dir)) {
    // Not ".", "..", nor the descriptor this listing itself holds open.
    if (entry->d_name[0] != '.' && self != entry->d_name) {
      ++count;
    }
  }
  ::closedir(dir);
  return count;
}

}  // namespace

ProcessMetrics read_process_metrics() {
  ProcessMetrics out;
  uint64_t pages = 0;
  uint64_t resident = 0;
  std::ifstream statm("/proc/self/statm");
  if (statm >> pages >> resident) {
    out.resident_bytes = resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  }
  struct mallinfo2 heap = ::mallinfo2();
  out.heap_allocated_bytes = heap.uordblks + heap.hblkhd;
  out.open_fds = count_open_fds();
  return out;
}

double process_start_time_seconds() {
  // Field 22 of /proc/self/stat is the start time in clock ticks after boot; the fields are
  // counted after the command name, which may itself hold spaces and parentheses.
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  if (paren == std::string::npos) {
    return 0;
  }
  std::istringstream fields(stat.substr(paren + 1));
  std::string field;
  uint64_t start_ticks = 0;
  for (int index = 3; fields >> field; ++index) {
    if (index == 22) {
      start_ticks = std::stoull(field);
      break;
    }
  }
  std::ifstream proc_stat("/proc/stat");
  std::string key;
  uint64_t boot_time = 0;
  while (proc_stat >> key) {
    if (key == "btime") {
      proc_stat >> boot_time;
      break;
    }
  }
  long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  if (boot_time == 0 || start_ticks == 0 || ticks_per_second <= 0) {
    return 0;
  }
  return static_cast<double>(boot_time) +
         static_cast<double>(start_ticks) / static_cast<double>(ticks_per_second);
}

}  // namespace pillion::observe
