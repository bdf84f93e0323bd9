#include "logs/bulk_sink.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/log.h"
#include "logs/backoff.h"
#include "logs/bulk_response.h"
#include "logs/gzip.h"
#include "logs/json_text.h"

namespace pillion::logs {
namespace {

size_t collect(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

int progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  // Non-zero aborts the transfer: a shutdown must not wait for a slow sink.
  return static_cast<const std::atomic<bool>*>(user)->load() ? 1 : 0;
}

std::string snippet(std::string_view text) {
  std::string s(text.substr(0, 300));
  for (char& c : s) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  return s;
}

}  // namespace

BulkSink::BulkSink(const OutputConfig& config, Metrics& metrics)
    : config_(config), metrics_(metrics) {
  static const bool initialized = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!initialized) {
    throw std::runtime_error("libcurl initialization failed");
  }
  endpoint_ = config_.url;
  while (!endpoint_.empty() && endpoint_.back() == '/') {
    endpoint_.pop_back();
  }
  endpoint_ += "/_bulk";
  curl_ = curl_easy_init();
  if (curl_ == nullptr) {
    throw std::runtime_error("libcurl: cannot create a handle");
  }
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/x-ndjson");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  if (config_.gzip) {
    headers = curl_slist_append(headers, "Content-Encoding: gzip");
  }
  headers_ = headers;
  if (!config_.dead_letter_path.empty()) {
    dead_letter_fd_ =
        ::open(config_.dead_letter_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (dead_letter_fd_ < 0) {
      throw std::runtime_error("dead-letter file " + config_.dead_letter_path + ": " +
                               std::strerror(errno));
    }
  }
}

BulkSink::~BulkSink() {
  curl_slist_free_all(static_cast<curl_slist*>(headers_));
  curl_easy_cleanup(static_cast<CURL*>(curl_));
  if (dead_letter_fd_ >= 0) {
    ::close(dead_letter_fd_);
  }
}

BulkSink::Response BulkSink::post(const std::string& body, const std::atomic<bool>& stop) {
  auto* curl = static_cast<CURL*>(curl_);
  Response response;
  curl_easy_setopt(curl, CURLOPT_URL, endpoint_.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(headers_));
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min<int64_t>(config_.timeout.count(), 10000)));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &stop);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");  // accept gzip'd responses too
  if (!config_.username.empty()) {
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_USERNAME, config_.username.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, config_.password.c_str());
  }
  if (!config_.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, config_.ca_file.c_str());
  }
  if (config_.tls_insecure) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  const CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    response.error = curl_easy_strerror(rc);
    return response;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

void BulkSink::dead_letter(std::string_view doc, const std::string& reason) {
  ++metrics_.records_rejected;
  spdlog::error(
      "logs: the sink refused a record for good ({}); {}", reason,
      dead_letter_fd_ >= 0 ? "kept in " + config_.dead_letter_path : "dropped: " + snippet(doc));
  if (dead_letter_fd_ < 0) {
    return;
  }
  // {"reason": ..., "doc": <the document>}\n
  std::string line = "{\"reason\":";
  append_json_string(line, reason);
  line += ",\"doc\":";
  line.append(doc.substr(0, doc.size() - 1));  // without its '\n'
  line += "}\n";
  if (::write(dead_letter_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    spdlog::error("logs: writing {} failed: {}", config_.dead_letter_path, std::strerror(errno));
  }
}

Delivery BulkSink::deliver(const Batch& batch, const std::atomic<bool>& stop) {
  std::vector<const BatchEntry*> pending;
  pending.reserve(batch.entries.size());
  for (const auto& e : batch.entries) {
    pending.push_back(&e);
  }
  const bool create = config_.action == "create";
  std::string body;
  std::string action_prefix = "{\"" + config_.action + "\":{\"_index\":";
  append_json_string(action_prefix, config_.index);
  action_prefix += ",\"_id\":\"";
  uint64_t attempt = 0;
  BulkItems items;
  while (!pending.empty()) {
    body.clear();
    for (const BatchEntry* e : pending) {
      body += action_prefix;
      append_doc_id(body, *e);
      body += "\"}}\n";
      body += batch.doc(*e);
    }
    const std::string compressed = config_.gzip ? gzip_compress(body) : std::string{};
    const Response r = post(config_.gzip ? compressed : body, stop);
    if (stop) {
      return Delivery::kStopped;
    }
    std::string problem;
    if (r.status == 0) {
      problem = "cannot reach " + endpoint_ + ": " + r.error;
    } else if (r.status == 408 || r.status == 429 || r.status >= 500) {
      problem = "HTTP " + std::to_string(r.status) + " from " + endpoint_;
    } else if (r.status >= 300) {
      // The whole request refused (auth, wrong URL, bad request): nothing can go until an
      // operator fixes it, so say so loudly and keep the records (they are retried).
      problem = "the sink refused the data: HTTP " + std::to_string(r.status) + " from " +
                endpoint_ + ": " + snippet(r.body);
    } else if (!parse_bulk_response(r.body, pending.size(), create, items)) {
      problem = "not a _bulk response from " + endpoint_ + ": " + snippet(r.body);
    }
    if (problem.empty()) {
      std::vector<const BatchEntry*> retry;
      std::string first_reason;
      for (size_t i = 0; i < pending.size(); ++i) {
        switch (items.outcomes[i]) {
          case ItemOutcome::kStored:
            break;
          case ItemOutcome::kRetry:
            retry.push_back(pending[i]);
            if (first_reason.empty()) {
              first_reason = items.reasons[i];
            }
            break;
          case ItemOutcome::kRejected:
            dead_letter(batch.doc(*pending[i]), items.reasons[i]);
            break;
        }
      }
      if (retry.empty()) {
        return Delivery::kDelivered;
      }
      problem = std::to_string(retry.size()) + " of " + std::to_string(pending.size()) +
                " items failed (" + first_reason + ")";
      pending.swap(retry);
    } else {
      ++metrics_.sink_errors;
    }
    ++attempt;
    metrics_.records_retried += pending.size();
    if (config_.retry.max_attempts != 0 && attempt >= config_.retry.max_attempts) {
      spdlog::error("logs: {}; giving up after {} attempts", problem, attempt);
      return Delivery::kFailed;
    }
    const Millis delay = backoff_delay(config_.retry, attempt);
    spdlog::warn("logs: {}; retrying {} records in {} ms", problem, pending.size(), delay.count());
    if (!sleep_unless_stopped(delay, stop)) {
      return Delivery::kStopped;
    }
  }
  return Delivery::kDelivered;
}

}  // namespace pillion::logs
