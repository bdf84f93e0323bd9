#pragma once
// B3 propagation (openzipkin/b3-propagation): the single `b3` header and the X-B3-* headers.
// Ids are lowercase hex; a 64-bit trace id (16 hex) is left-padded with zeros to 128 bits, so B3
// and W3C contexts share one TraceContext. Parsers never throw; invalid input gives nullopt.
#include <cstddef>
#include <optional>
#include <string_view>

#include "http/propagation.h"

namespace pillion::http {

// "{trace}-{span}", "{trace}-{span}-{sampling}", "{trace}-{span}-{sampling}-{parent}" with
// sampling 0, 1 or d (debug), or a decision alone: "0", "1", "d". The parent is checked and then
// dropped: the receiver only needs the caller's span id.
std::optional<IncomingTrace> parse_b3_single(std::string_view value);

// The X-B3-* header values as found (nullopt: header absent).
struct B3Headers {
  std::optional<std::string_view> trace_id;
  std::optional<std::string_view> span_id;
  std::optional<std::string_view> parent_span_id;
  std::optional<std::string_view> sampled;  // "1"/"0", and the legacy "true"/"false"
  std::optional<std::string_view> flags;    // "1": debug (implies sampled); "0": none
};

// Both ids, or neither (a decision alone); nullopt when none is present or any is invalid.
std::optional<IncomingTrace> parse_b3_multi(const B3Headers& headers);

// "{trace}-{span}-{1|0|d}[-{parent}]", at most kB3SingleMaxLength chars; returns the length.
constexpr size_t kB3SingleMaxLength = 32 + 1 + 16 + 1 + 1 + 1 + 16;
size_t format_b3_single(const TraceHop& hop, char* out);

}  // namespace pillion::http
