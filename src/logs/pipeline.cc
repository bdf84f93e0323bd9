#include "logs/pipeline.h"

#include <chrono>
#include <cstdlib>
#include <iterator>

#include <fmt/format.h>

namespace pillion::logs {

std::vector<std::pair<std::string, std::string>> enrichment_fields(const EnrichConfig& config) {
  std::vector<std::pair<std::string, std::string>> fields;
  if (config.kubernetes) {
    const std::pair<const char*, const char*> env[] = {
        {"POD_NAME", "kubernetes.pod.name"},
        {"POD_NAMESPACE", "kubernetes.namespace"},
        {"CONTAINER_NAME", "kubernetes.container.name"},
        {"NODE_NAME", "kubernetes.node.name"},
    };
    for (const auto& [var, key] : env) {
      if (const char* value = std::getenv(var); value != nullptr && *value != '\0') {
        fields.emplace_back(key, value);
      }
    }
  }
  for (const auto& [key, value] : config.fields) {
    fields.emplace_back(key, value);
  }
  return fields;
}

void append_doc_id(std::string& out, const BatchEntry& entry) {
  fmt::format_to(std::back_inserter(out), "{:016x}-{:x}", entry.id_base, entry.start);
}

Timestamp wall_clock_now() {
  const auto since = std::chrono::system_clock::now().time_since_epoch();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since).count();
  return Timestamp{ms / 1000, static_cast<uint32_t>(ms % 1000) * 1000000u, 3};
}

Pipeline::Pipeline(ParserPtr parser, std::vector<std::pair<std::string, std::string>> fields,
                   size_t max_bytes, size_t max_records, Batch& batch, Metrics& metrics)
    : parser_(std::move(parser)),
      fields_(std::move(fields)),
      max_bytes_(max_bytes),
      max_records_(max_records),
      batch_(batch),
      metrics_(metrics),
      doc_(batch.docs),
      now_(wall_clock_now()) {}

bool Pipeline::full() const {
  return batch_.docs.size() >= max_bytes_ || batch_.entries.size() >= max_records_;
}

bool Pipeline::add(std::string_view text, const RecordOrigin& origin) {
  if (batch_.entries.empty()) {
    batch_.first_added = Clock::now();
  }
  const size_t begin = batch_.docs.size();
  doc_.begin();
  if (parser_->parse(text, now_, doc_)) {
    ++metrics_.records_parsed;
  } else {
    // Never drop a line the parser does not understand: ship it raw and say so.
    ++metrics_.parse_failures;
    doc_.rollback();
    doc_.add_timestamp("@timestamp", now_);
    doc_.add_string("message", text);
    doc_.add_bool("parse_error", true);
  }
  if (origin.truncated) {
    doc_.add_bool("truncated", true);
  }
  for (const auto& [key, value] : fields_) {
    doc_.add_string(key, value);
  }
  doc_.end();
  BatchEntry entry;
  entry.begin = static_cast<uint32_t>(begin);
  entry.length = static_cast<uint32_t>(batch_.docs.size() - begin);
  entry.handle = origin.handle;
  entry.end = origin.end;
  entry.id_base = origin.id_base;
  entry.start = origin.start;
  batch_.entries.push_back(entry);
  return !full();
}

}  // namespace pillion::logs
