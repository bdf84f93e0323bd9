// Fuzzes the SPIFFE ID parser and the authorization patterns. Invariants: a parsed ID is
// canonical (its text() is the input and re-parses to the same ID); a parsed pattern's text()
// re-parses to an equal pattern; a pattern only ever matches valid IDs, and an exact pattern
// matches itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tls/authorization.h"
#include "tls/spiffe.h"

namespace {

void check(bool condition) {
  if (!condition) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pillion::tls;
  std::string_view input(reinterpret_cast<const char*>(data), size);

  std::string error;
  auto id = parse_spiffe_id(input, &error);
  if (id) {
    check(error.empty());
    check(id->text() == input);
    check(input.size() <= kMaxSpiffeIdLength);
    check(!id->trust_domain.empty() && id->trust_domain.size() <= kMaxTrustDomainLength);
    auto again = parse_spiffe_id(id->text());
    check(again.has_value() && *again == *id);
  } else {
    check(!error.empty());
  }

  std::string pattern_error;
  auto pattern = IdPattern::parse(input, pattern_error);
  if (pattern) {
    std::string again_error;
    auto again = IdPattern::parse(pattern->text(), again_error);
    check(again.has_value() && *again == *pattern);
    if (pattern->kind() == IdPattern::Kind::kExact) {
      check(id.has_value() && pattern->matches(input));
    }
  }

  // Split the input at the first newline: a pattern, then an ID to match against it.
  auto newline = input.find('\n');
  if (newline != std::string_view::npos) {
    auto left = IdPattern::parse(input.substr(0, newline), pattern_error);
    auto candidate = input.substr(newline + 1);
    if (left && left->matches(candidate)) {
      check(parse_spiffe_id(candidate).has_value());
      Authorization allow_only;
      allow_only.allow.push_back(*left);
      check(allow_only.allows(candidate));
      Authorization deny_only;
      deny_only.deny.push_back(*left);
      check(!deny_only.allows(candidate));
    }
  }
  return 0;
}
