#include "observe/tracing/span.h"

namespace pillion::observe::tracing {
namespace {

// Room for the usual attributes of a request without regrowing.
constexpr size_t kInitialTextBytes = 256;
constexpr size_t kMaxValueBytes = 1024;  // a long path must not make a span huge

constexpr std::array<std::string_view, static_cast<size_t>(SpanText::kCount)> kKeys = {
    "name",
    "http.request.method",
    "url.path",
    "pillion.route",
    "server.address",
    "network.peer.address",
    "pillion.cluster",
    "pillion.response_flags",
    "pillion.request_id",
    "pillion.listener",
};

}  // namespace

std::string_view attribute_key(SpanText text) {
  return kKeys[static_cast<size_t>(text)];
}

void Span::set(SpanText text, std::string_view value) {
  value = value.substr(0, kMaxValueBytes);
  if (text_.capacity() == 0) {
    text_.reserve(kInitialTextBytes);
  }
  ranges_[index(text)] = {static_cast<uint32_t>(text_.size()), static_cast<uint32_t>(value.size())};
  text_.append(value);
}

std::string_view Span::get(SpanText text) const {
  const Range& range = ranges_[index(text)];
  return std::string_view(text_).substr(range.offset, range.size);
}

Span start_span(const http::TraceHop& hop, SpanKind kind,
                std::chrono::system_clock::time_point start) {
  Span span;
  span.trace_id = hop.context.trace_id;
  span.span_id = hop.context.span_id;
  span.parent_span_id = hop.parent_span_id;
  span.debug = hop.debug;
  span.kind = kind;
  span.start = start;
  return span;
}

void finish_span(Span& span, std::chrono::nanoseconds duration, int http_status) {
  span.duration = duration;
  span.http_status = http_status;
  int error_from = span.kind == SpanKind::kServer ? 500 : 400;
  bool error = http_status == 0 || http_status >= error_from;
  span.status = error ? SpanStatus::kError : SpanStatus::kUnset;
}

}  // namespace pillion::observe::tracing
