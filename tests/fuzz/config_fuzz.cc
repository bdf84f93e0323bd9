// Any bytes through the YAML loader: it must return a snapshot or a one-line error, never crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/load.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  pillion::config::LoadResult result = pillion::config::load_yaml(text, "fuzz.yaml");
  // Exactly one of the two is set, and an error is a single line.
  if (static_cast<bool>(result) == !result.error.empty() ||
      result.error.find('\n') != std::string::npos) {
    std::abort();
  }
  return 0;
}
