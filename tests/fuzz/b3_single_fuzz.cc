// Fuzzes the B3 single-header parser: any bytes give a context or nothing, never a crash, and an
// accepted context survives formatting for the next hop.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/b3.h"
#include "trace_fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view value(reinterpret_cast<const char*>(data), size);
  if (auto incoming = pillion::http::parse_b3_single(value)) {
    pillion::fuzz::check_round_trip(*incoming);
  }
  return 0;
}
