#pragma once
// Elasticsearch/OpenSearch output: POST <url>/_bulk with NDJSON (optionally gzip), each record
// under a document _id derived from file identity and offset, so a resend overwrites instead of
// duplicating. Failed requests are retried with exponential backoff (forever by default); of a
// partly failed request only the failed items are sent again; items the sink refuses for good
// go to the dead-letter file.
#include <string>

#include "logs/batch.h"
#include "logs/config.h"
#include "logs/metrics.h"

namespace pillion::logs {

class BulkSink : public Sink {
 public:
  BulkSink(const OutputConfig& config, Metrics& metrics);  // throws std::runtime_error
  ~BulkSink() override;
  BulkSink(const BulkSink&) = delete;
  BulkSink& operator=(const BulkSink&) = delete;

  Delivery deliver(const Batch& batch, const std::atomic<bool>& stop) override;

 private:
  struct Response {
    long status = 0;  // 0: no HTTP response (connection refused, timeout, ...)
    std::string error;
    std::string body;
  };
  Response post(const std::string& body, const std::atomic<bool>& stop);
  void dead_letter(std::string_view doc, const std::string& reason);

  OutputConfig config_;
  Metrics& metrics_;
  std::string endpoint_;
  void* curl_ = nullptr;     // CURL*, kept out of the header
  void* headers_ = nullptr;  // curl_slist*
  int dead_letter_fd_ = -1;
};

}  // namespace pillion::logs
