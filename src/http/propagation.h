#pragma once
// Trace context propagation across formats: reads what the caller sent (W3C traceparent, B3
// single header, B3 multi headers) into one IncomingTrace, and writes the context of the next hop
// in the formats a deployment enables. Nothing here allocates; invalid input is "no context".
//
// tracestate is not touched: it is forwarded unchanged like any end-to-end header.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "http/head.h"
#include "http/ids.h"

namespace pillion::http {

// The caller's sampling decision. B3 may send none and leave the decision to the receiver.
enum class SamplingDecision : uint8_t { kNone, kDrop, kSample, kDebug };

// What the caller sent. `context` (trace id and the caller's span id) is nullopt when it sent no
// valid one: this hop then starts a new trace. A decision may come without a context ("b3: 0").
struct IncomingTrace {
  std::optional<TraceContext> context;
  SamplingDecision decision = SamplingDecision::kNone;
};

// Formats as a bit set, so several can be accepted and emitted at once.
enum PropagationFormat : uint8_t {
  kW3c = 1 << 0,       // traceparent
  kB3Single = 1 << 1,  // b3: {trace}-{span}-{sampling}-{parent}
  kB3Multi = 1 << 2,   // X-B3-TraceId, X-B3-SpanId, X-B3-ParentSpanId, X-B3-Sampled, X-B3-Flags
};
using PropagationFormats = uint8_t;
constexpr PropagationFormats kAllFormats = kW3c | kB3Single | kB3Multi;

// Reads the first valid context in the order traceparent, b3, X-B3-*, among `accepted` formats.
// A header that appears twice makes its format invalid (which of the two would be the caller's?).
IncomingTrace extract_trace(const Head& request, PropagationFormats accepted = kAllFormats);

using SpanId = std::array<char, 16>;

// This hop: the caller's trace (or a new one), a new span id, and the caller's span as parent.
struct TraceHop {
  TraceContext context;                  // trace id, this hop's span id, flags (bit 0: sampled)
  std::optional<SpanId> parent_span_id;  // the caller's span id; nullopt when this hop is a root
  bool debug = false;                    // B3 debug: sampled whatever the ratio, kept downstream

  bool sampled() const { return (context.flags & 0x01) != 0; }
};

// `sampled` is the sampler's verdict for this hop (tracing::Sampler::sample).
TraceHop next_hop(const IncomingTrace& incoming, bool sampled, IdGenerator& ids);

// The propagation headers for the next hop, formatted once per request into fixed storage as
// complete "name: value\r\n" lines, ready to append to the forwarded head.
class OutgoingTraceHeaders {
 public:
  void format(const TraceHop& hop, PropagationFormats emitted);
  std::string_view lines() const { return {storage_.data(), size_}; }

 private:
  void append(std::string_view name, std::string_view value);

  std::array<char, 320> storage_;  // all three formats need under 290 bytes
  size_t size_ = 0;
};

// True for the headers OutgoingTraceHeaders replaces (traceparent, b3, x-b3-*), which the
// forwarded head must drop. Not tracestate: it passes through unchanged.
bool is_trace_header(std::string_view name);

}  // namespace pillion::http
