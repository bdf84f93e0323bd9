// Fuzzes the PERMISSIVE-mode ClientHello reader as a connection feeds it: growing prefixes of
// the input. Invariants: no out-of-bounds read (ASan), fields bounded, `malformed` only with a
// complete TLS verdict and empty fields, and a complete verdict never changes with more bytes.
#include <cstddef>
#include <cstdint>
#include <span>

#include "tls/client_hello.h"

namespace {

void check(bool condition) {
  if (!condition) {
    __builtin_trap();
  }
}

void check_bounded(const pillion::tls::ClientHelloInfo& info) {
  check(info.sni.size() <= pillion::tls::kMaxSniLength);
  check(info.alpn.size() <= pillion::tls::kMaxClientHelloBytes / 2);
  for (const auto& name : info.alpn) {
    check(!name.empty() && name.size() <= 255);
  }
  if (info.malformed) {
    check(info.is_tls && info.complete && info.sni.empty() && info.alpn.empty());
  }
  if (!info.complete) {
    check(info.sni.empty() && info.alpn.empty());
  }
}

bool same(const pillion::tls::ClientHelloInfo& a, const pillion::tls::ClientHelloInfo& b) {
  return a.is_tls == b.is_tls && a.complete == b.complete && a.malformed == b.malformed &&
         a.sni == b.sni && a.alpn == b.alpn;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using pillion::tls::parse_client_hello;
  std::span<const uint8_t> input(data, size);
  auto whole = parse_client_hello(input);
  check_bounded(whole);
  // Prefixes at a stride that keeps large inputs cheap; `whole` stands for the full input.
  size_t step = size / 16 + 1;
  bool seen_complete = false;
  pillion::tls::ClientHelloInfo first_complete;
  for (size_t length = 0; length <= size; length += step) {
    auto info = parse_client_hello(input.first(length));
    check_bounded(info);
    if (seen_complete) {
      check(same(info, first_complete));
    } else if (info.complete) {
      seen_complete = true;
      first_complete = info;
    }
  }
  if (seen_complete) {
    check(same(whole, first_complete));
  }
  return 0;
}
