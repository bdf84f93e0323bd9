#include "observe/tracing/span_buffer.h"

namespace pillion::observe::tracing {

SpanBuffer::SpanBuffer(SpanExporter* exporter) : exporter_(exporter) {
  spans_.reserve(kFlushSpans);
}

void SpanBuffer::add(Span&& span) {
  if (exporter_ == nullptr) {
    return;
  }
  spans_.push_back(std::move(span));
  if (spans_.size() >= kFlushSpans) {
    flush();
  }
}

void SpanBuffer::flush() {
  if (exporter_ == nullptr || spans_.empty()) {
    return;
  }
  spans_ = exporter_->submit(std::move(spans_));
  spans_.reserve(kFlushSpans);
}

}  // namespace pillion::observe::tracing
