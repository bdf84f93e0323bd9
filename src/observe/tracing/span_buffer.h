#pragma once
// One per worker thread: collects finished sampled spans and hands them to the exporter in
// batches, so the request path takes no lock per span.
#include <vector>

#include "observe/tracing/exporter.h"
#include "observe/tracing/span.h"

namespace pillion::observe::tracing {

class SpanBuffer {
 public:
  static constexpr size_t kFlushSpans = 64;

  // nullptr: tracing export is off and spans are discarded.
  explicit SpanBuffer(SpanExporter* exporter);

  // Takes a finished span; hands the buffer over once it holds kFlushSpans. Worker thread only.
  void add(Span&& span);
  // Hands over what is buffered. Call from the worker's periodic tick, so the spans of a quiet
  // worker still leave within the exporter's flush interval, and when the worker stops.
  void flush();

 private:
  SpanExporter* exporter_;
  std::vector<Span> spans_;
};

}  // namespace pillion::observe::tracing
