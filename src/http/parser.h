#pragma once
// Strict HTTP/1 parsing with Beast's basic_parser (fuzzed upstream; no home-made parser),
// exposed as a small API that keeps Beast out of every other header. One parser object lives
// per connection and is restarted for each message without allocating.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/head.h"

namespace pillion::http {

enum class ParseStatus : uint8_t {
  kNeedMore,    // give it the same bytes plus more
  kDone,        // the head (or body) is complete
  kTooLarge,    // head over the limit
  kBadMessage,  // not valid HTTP/1
};

struct BodyProgress {
  ParseStatus status = ParseStatus::kNeedMore;
  size_t consumed = 0;   // raw bytes of the input that belong to this body
  uint64_t payload = 0;  // decoded payload bytes among them
};

template <bool kIsRequest>
class MessageParser {
 public:
  explicit MessageParser(uint32_t header_limit);
  ~MessageParser();
  MessageParser(const MessageParser&) = delete;
  MessageParser& operator=(const MessageParser&) = delete;

  // Starts a new message. For a response to HEAD, `no_body` makes the parser expect no body.
  void start(bool no_body = false);

  // Parses the head from `buffer`, which must begin where the message begins and hold every
  // byte received for it so far. On kDone, head() is valid and head().head_bytes tells how
  // many bytes of `buffer` the head took.
  ParseStatus parse_head(std::string_view buffer);
  const Head& head() const { return head_; }

  // Validates a chunked body incrementally: reports how many raw bytes of `buffer` were part of
  // the body (chunk framing and trailers included), so they can be forwarded verbatim.
  // When `decoded` is given, the payload bytes are appended to it (for HTTP/1.0 peers, which
  // cannot receive chunked framing).
  BodyProgress parse_chunked(std::string_view buffer, std::string* decoded = nullptr);

  // Human-readable reason for the last kBadMessage / kTooLarge.
  std::string_view error() const { return error_; }

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  Head head_;
  std::string_view error_;
  uint32_t header_limit_ = 0;
};

using RequestParser = MessageParser<true>;
using ResponseParser = MessageParser<false>;

}  // namespace pillion::http
