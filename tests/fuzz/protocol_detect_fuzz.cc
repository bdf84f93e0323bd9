// Fuzzes protocol detection as a captured connection feeds it: growing prefixes of the input,
// as reads would deliver them. The verdict must be stable once given and never read past the
// bytes it was handed.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proxy/protocol_detect.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using pillion::proxy::detect_protocol;
  using pillion::proxy::Protocol;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  Protocol first_verdict = Protocol::kNeedMore;
  for (size_t length = 0; length <= input.size() && length <= pillion::proxy::kDetectBytes;
       ++length) {
    Protocol verdict = detect_protocol(input.substr(0, length));
    if (first_verdict == Protocol::kNeedMore) {
      first_verdict = verdict;
    } else if (verdict != first_verdict) {
      __builtin_trap();  // more bytes must never change a verdict already given
    }
  }
  return 0;
}
