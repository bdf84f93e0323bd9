// Fuzzes the X-B3-* parser. Input: one byte whose low five bits say which headers are present
// (TraceId, SpanId, ParentSpanId, Sampled, Flags), then their values separated by '\n'.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "http/b3.h"
#include "trace_fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  uint8_t present = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  pillion::http::B3Headers headers;
  std::optional<std::string_view>* slots[] = {&headers.trace_id, &headers.span_id,
                                              &headers.parent_span_id, &headers.sampled,
                                              &headers.flags};
  for (size_t i = 0; i < 5; ++i) {
    size_t end = rest.find('\n');
    std::string_view value = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (present & (1u << i)) {
      *slots[i] = value;
    }
  }
  if (auto incoming = pillion::http::parse_b3_multi(headers)) {
    pillion::fuzz::check_round_trip(*incoming);
  }
  return 0;
}
