#include "http/propagation.h"

#include <algorithm>

#include "http/b3.h"

namespace pillion::http {
namespace {

// One header value by name; a second occurrence marks it as ambiguous.
struct Found {
  std::optional<std::string_view> value;
  bool duplicate = false;

  void see(std::string_view v) {
    duplicate |= value.has_value();
    value = v;
  }
  bool usable() const { return value && !duplicate; }
};

struct TraceFields {
  Found traceparent;
  Found b3;
  Found trace_id;
  Found span_id;
  Found parent_span_id;
  Found sampled;
  Found flags;
};

// One pass over the fields; most requests carry no trace header, so the common case is one
// length-and-first-letter check per field.
TraceFields collect(const Head& request) {
  TraceFields found;
  for (const auto& field : request.fields) {
    std::string_view name = field.name;
    if (name.size() == 11 && iequals(name, "traceparent")) {
      found.traceparent.see(field.value);
    } else if (name.size() == 2 && iequals(name, "b3")) {
      found.b3.see(field.value);
    } else if (name.size() > 5 && iequals(name.substr(0, 5), "x-b3-")) {
      std::string_view rest = name.substr(5);
      if (iequals(rest, "traceid")) {
        found.trace_id.see(field.value);
      } else if (iequals(rest, "spanid")) {
        found.span_id.see(field.value);
      } else if (iequals(rest, "parentspanid")) {
        found.parent_span_id.see(field.value);
      } else if (iequals(rest, "sampled")) {
        found.sampled.see(field.value);
      } else if (iequals(rest, "flags")) {
        found.flags.see(field.value);
      }
    }
  }
  return found;
}

std::optional<IncomingTrace> from_multi(const TraceFields& found) {
  const Found* all[] = {&found.trace_id, &found.span_id, &found.parent_span_id, &found.sampled,
                        &found.flags};
  if (std::any_of(std::begin(all), std::end(all), [](const Found* f) { return f->duplicate; })) {
    return std::nullopt;
  }
  B3Headers headers{found.trace_id.value, found.span_id.value, found.parent_span_id.value,
                    found.sampled.value, found.flags.value};
  return parse_b3_multi(headers);
}

}  // namespace

IncomingTrace extract_trace(const Head& request, PropagationFormats accepted) {
  TraceFields found = collect(request);
  if ((accepted & kW3c) && found.traceparent.usable()) {
    if (auto context = parse_traceparent(*found.traceparent.value)) {
      bool sampled = (context->flags & 0x01) != 0;
      return {context, sampled ? SamplingDecision::kSample : SamplingDecision::kDrop};
    }
  }
  if ((accepted & kB3Single) && found.b3.usable()) {
    if (auto incoming = parse_b3_single(*found.b3.value)) {
      return *incoming;
    }
  }
  if (accepted & kB3Multi) {
    if (auto incoming = from_multi(found)) {
      return *incoming;
    }
  }
  return {};
}

TraceHop next_hop(const IncomingTrace& incoming, bool sampled, IdGenerator& ids) {
  TraceHop hop;
  if (incoming.context) {
    hop.context.trace_id = incoming.context->trace_id;
    hop.parent_span_id = incoming.context->span_id;
  } else {
    ids.hex(hop.context.trace_id.data(), 16);
  }
  ids.hex(hop.context.span_id.data(), 8);
  hop.context.flags = sampled ? 0x01 : 0x00;  // only the sampled flag is defined
  hop.debug = sampled && incoming.decision == SamplingDecision::kDebug;
  return hop;
}

void OutgoingTraceHeaders::append(std::string_view name, std::string_view value) {
  char* at = storage_.data() + size_;
  at = std::copy(name.begin(), name.end(), at);
  *at++ = ':';
  *at++ = ' ';
  at = std::copy(value.begin(), value.end(), at);
  *at++ = '\r';
  *at++ = '\n';
  size_ = static_cast<size_t>(at - storage_.data());
}

void OutgoingTraceHeaders::format(const TraceHop& hop, PropagationFormats emitted) {
  size_ = 0;
  const auto& context = hop.context;
  if (emitted & kW3c) {
    char value[kTraceparentLength];
    format_traceparent(context, value);
    append("traceparent", {value, sizeof(value)});
  }
  if (emitted & kB3Single) {
    char value[kB3SingleMaxLength];
    append("b3", {value, format_b3_single(hop, value)});
  }
  if (emitted & kB3Multi) {
    append("x-b3-traceid", {context.trace_id.data(), context.trace_id.size()});
    append("x-b3-spanid", {context.span_id.data(), context.span_id.size()});
    if (hop.parent_span_id) {
      append("x-b3-parentspanid", {hop.parent_span_id->data(), hop.parent_span_id->size()});
    }
    // B3: debug is sent as X-B3-Flags alone, since it implies sampled.
    if (hop.debug) {
      append("x-b3-flags", "1");
    } else {
      append("x-b3-sampled", hop.sampled() ? "1" : "0");
    }
  }
}

bool is_trace_header(std::string_view name) {
  return iequals(name, "traceparent") || iequals(name, "b3") ||
         (name.size() > 5 && iequals(name.substr(0, 5), "x-b3-"));
}

}  // namespace pillion::http
