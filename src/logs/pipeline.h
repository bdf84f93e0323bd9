#pragma once
// Turns records from the tailer into documents in the batch: parse, flag, enrich.
#include <string>
#include <utility>
#include <vector>

#include "logs/batch.h"
#include "logs/config.h"
#include "logs/doc_builder.h"
#include "logs/metrics.h"
#include "logs/parser.h"

namespace pillion::logs {

// Fields added to every record: Kubernetes names from the downward-API environment variables
// and the static fields of the config. A field the record already has is left alone.
std::vector<std::pair<std::string, std::string>> enrichment_fields(const EnrichConfig& config);

class Pipeline : public RecordSink {
 public:
  Pipeline(ParserPtr parser, std::vector<std::pair<std::string, std::string>> fields,
           size_t max_bytes, size_t max_records, Batch& batch, Metrics& metrics);

  // The time that stands in for records without one (parse failures, JSON without a time).
  void set_now(const Timestamp& now) { now_ = now; }
  bool add(std::string_view text, const RecordOrigin& origin) override;
  bool full() const;

 private:
  ParserPtr parser_;
  std::vector<std::pair<std::string, std::string>> fields_;
  size_t max_bytes_;
  size_t max_records_;
  Batch& batch_;
  Metrics& metrics_;
  DocBuilder doc_;
  Timestamp now_;
};

// The current wall-clock time as a Timestamp with millisecond precision.
Timestamp wall_clock_now();

}  // namespace pillion::logs
