// Fuzzes context extraction over a whole header block. Input: one byte of accepted formats,
// then "name: value" lines separated by '\n'. Whatever is extracted must round-trip.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/propagation.h"
#include "trace_fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  auto accepted = static_cast<pillion::http::PropagationFormats>(data[0]);
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  pillion::http::Head head;
  while (!rest.empty()) {
    size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    size_t colon = line.find(':');
    std::string_view name = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') {
      value.remove_prefix(1);
    }
    head.fields.push_back({name, value});
  }
  pillion::fuzz::check_round_trip(pillion::http::extract_trace(head, accepted));
  return 0;
}
