#pragma once
// The round-trip property every trace codec fuzz target checks: whatever context was accepted,
// the headers formatted for the next hop parse back to the same trace, span and decision.
#include "http/ids.h"
#include "http/propagation.h"

namespace pillion::fuzz {

inline void check_round_trip(const http::IncomingTrace& incoming) {
  http::IdGenerator& ids = http::thread_id_generator();
  bool sampled = incoming.decision == http::SamplingDecision::kSample ||
                 incoming.decision == http::SamplingDecision::kDebug;
  http::TraceHop hop = http::next_hop(incoming, sampled, ids);
  if (incoming.context && hop.context.trace_id != incoming.context->trace_id) {
    __builtin_trap();
  }
  for (http::PropagationFormats format : {http::kW3c, http::kB3Single, http::kB3Multi}) {
    http::OutgoingTraceHeaders headers;
    headers.format(hop, format);
    // Split the "name: value\r\n" lines back into fields.
    http::Head head;
    std::string_view lines = headers.lines();
    while (!lines.empty()) {
      size_t end = lines.find("\r\n");
      std::string_view line = lines.substr(0, end);
      size_t colon = line.find(": ");
      head.fields.push_back({line.substr(0, colon), line.substr(colon + 2)});
      lines.remove_prefix(end + 2);
    }
    http::IncomingTrace again = http::extract_trace(head, format);
    if (!again.context || again.context->trace_id != hop.context.trace_id ||
        again.context->span_id != hop.context.span_id ||
        ((again.context->flags & 1) != 0) != sampled) {
      __builtin_trap();
    }
  }
}

}  // namespace pillion::fuzz
