#include "http/b3.h"

#include <algorithm>

namespace pillion::http {
namespace {

// 16 hex chars are a 64-bit B3 trace id: the upper half of the 128-bit id is zero.
std::optional<std::array<char, 32>> parse_trace_id(std::string_view text) {
  if ((text.size() != 16 && text.size() != 32) || !is_hex_not_zero(text)) {
    return std::nullopt;
  }
  std::array<char, 32> id;
  std::fill(id.begin(), id.end(), '0');
  std::copy(text.begin(), text.end(), id.end() - static_cast<std::ptrdiff_t>(text.size()));
  return id;
}

bool is_span_id(std::string_view text) {
  return text.size() == 16 && is_hex_not_zero(text);
}

std::optional<SamplingDecision> parse_single_sampling(std::string_view text) {
  if (text == "0") {
    return SamplingDecision::kDrop;
  }
  if (text == "1") {
    return SamplingDecision::kSample;
  }
  if (text == "d") {
    return SamplingDecision::kDebug;
  }
  return std::nullopt;
}

std::optional<SamplingDecision> parse_multi_sampling(const B3Headers& headers) {
  SamplingDecision decision = SamplingDecision::kNone;
  if (headers.sampled) {
    const auto& value = *headers.sampled;
    if (value == "1" || value == "true") {
      decision = SamplingDecision::kSample;
    } else if (value == "0" || value == "false") {
      decision = SamplingDecision::kDrop;
    } else {
      return std::nullopt;
    }
  }
  if (headers.flags) {
    if (*headers.flags == "1") {
      decision = SamplingDecision::kDebug;  // debug wins over any X-B3-Sampled
    } else if (*headers.flags != "0") {
      return std::nullopt;
    }
  }
  return decision;
}

IncomingTrace make_incoming(const std::array<char, 32>& trace_id, std::string_view span_id,
                            SamplingDecision decision) {
  IncomingTrace incoming;
  TraceContext context;
  context.trace_id = trace_id;
  std::copy(span_id.begin(), span_id.end(), context.span_id.begin());
  bool sampled = decision == SamplingDecision::kSample || decision == SamplingDecision::kDebug;
  context.flags = sampled ? 0x01 : 0x00;
  incoming.context = context;
  incoming.decision = decision;
  return incoming;
}

}  // namespace

std::optional<IncomingTrace> parse_b3_single(std::string_view value) {
  if (value.size() == 1) {
    auto decision = parse_single_sampling(value);
    if (!decision) {
      return std::nullopt;
    }
    return IncomingTrace{std::nullopt, *decision};
  }
  // Split into at most four '-'-separated parts; a fifth part is an error.
  std::string_view parts[4];
  size_t count = 0;
  while (true) {
    size_t dash = value.find('-');
    if (count == 4) {
      return std::nullopt;
    }
    parts[count++] = value.substr(0, dash);
    if (dash == std::string_view::npos) {
      break;
    }
    value.remove_prefix(dash + 1);
  }
  if (count < 2) {
    return std::nullopt;
  }
  auto trace_id = parse_trace_id(parts[0]);
  if (!trace_id || !is_span_id(parts[1])) {
    return std::nullopt;
  }
  SamplingDecision decision = SamplingDecision::kNone;
  if (count >= 3) {
    auto parsed = parse_single_sampling(parts[2]);
    if (!parsed) {
      return std::nullopt;
    }
    decision = *parsed;
  }
  if (count == 4 && !is_span_id(parts[3])) {
    return std::nullopt;
  }
  return make_incoming(*trace_id, parts[1], decision);
}

std::optional<IncomingTrace> parse_b3_multi(const B3Headers& headers) {
  bool any = headers.trace_id || headers.span_id || headers.parent_span_id || headers.sampled ||
             headers.flags;
  if (!any) {
    return std::nullopt;
  }
  auto decision = parse_multi_sampling(headers);
  if (!decision) {
    return std::nullopt;
  }
  if (!headers.trace_id && !headers.span_id && !headers.parent_span_id) {
    return IncomingTrace{std::nullopt, *decision};
  }
  if (!headers.trace_id || !headers.span_id) {
    return std::nullopt;
  }
  auto trace_id = parse_trace_id(*headers.trace_id);
  if (!trace_id || !is_span_id(*headers.span_id) ||
      (headers.parent_span_id && !is_span_id(*headers.parent_span_id))) {
    return std::nullopt;
  }
  return make_incoming(*trace_id, *headers.span_id, *decision);
}

size_t format_b3_single(const TraceHop& hop, char* out) {
  char* at = std::copy(hop.context.trace_id.begin(), hop.context.trace_id.end(), out);
  *at++ = '-';
  at = std::copy(hop.context.span_id.begin(), hop.context.span_id.end(), at);
  *at++ = '-';
  *at++ = hop.debug ? 'd' : hop.sampled() ? '1' : '0';
  if (hop.parent_span_id) {
    *at++ = '-';
    at = std::copy(hop.parent_span_id->begin(), hop.parent_span_id->end(), at);
  }
  return static_cast<size_t>(at - out);
}

}  // namespace pillion::http
