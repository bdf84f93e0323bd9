#pragma once
// Finds where each HTTP/1.1 response ends in a byte stream (Content-Length, chunked, no body for
// HEAD/1xx/204/304, or read-until-close), keeping only the status code. Parsing is Beast's
// basic_parser, strict and fuzzed; Beast stays out of this header.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace pillion::bench {

class ResponseFramer {
 public:
  enum class State { kNeedMore, kDone, kError };
  struct FeedResult {
    State state;
    size_t consumed;  // bytes of the input that belong to this response; keep the rest
  };

  ResponseFramer();
  ~ResponseFramer();
  ResponseFramer(const ResponseFramer&) = delete;
  ResponseFramer& operator=(const ResponseFramer&) = delete;

  // Starts a new response; a response to HEAD carries no body whatever its headers say.
  void start(bool head_request = false);
  // Feeds bytes of the current response. Unconsumed bytes with kNeedMore must be fed again, with
  // more data appended (the header block is only parsed once complete).
  FeedResult feed(std::string_view data);
  // The peer closed: completes a read-until-close body (kDone) or fails the response (kError).
  State feed_eof();

  int status() const { return status_; }
  uint64_t body_bytes() const { return body_bytes_; }
  // Whether the connection may carry another request after this (complete) response.
  bool keep_alive() const;
  std::string_view error() const { return error_; }

 private:
  class Parser;
  std::unique_ptr<Parser> parser_;
  int status_ = 0;
  uint64_t body_bytes_ = 0;
  std::string_view error_;
  friend class Parser;
};

}  // namespace pillion::bench
