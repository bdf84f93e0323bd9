#include "http/parser.h"

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <optional>
#include <vector>

namespace pillion::http {

namespace beast_http = boost::beast::http;

namespace {

// Beast consumes head bytes line by line (a put() that returns need_more may still have
// consumed whole lines), and the caller's buffer may move between reads. So positions are kept
// as offsets from the start of the message and turned into views once the head is complete.
struct Span {
  uint32_t offset = 0;
  uint32_t size = 0;
};

struct RawField {
  Span name;
  Span value;
};

template <bool kIsRequest>
class BeastParser final : public beast_http::basic_parser<kIsRequest> {
 public:
  explicit BeastParser(Head& head, std::vector<RawField>& fields) : head_(head), fields_(fields) {}
  uint64_t payload = 0;
  std::string* decoded = nullptr;
  const char* message_start = nullptr;  // where offset 0 is during the current put()
  const char* input_end = nullptr;      // end of the bytes given to the current put()
  Span method, target, reason;

 private:
  using string_view = boost::beast::string_view;
  using error_code = boost::beast::error_code;

  Span span(string_view s) const {
    return {static_cast<uint32_t>(s.data() - message_start), static_cast<uint32_t>(s.size())};
  }

  void on_request_impl(beast_http::verb, string_view method_text, string_view target_text,
                       int version, error_code&) override {
    method = span(method_text);
    target = span(target_text);
    head_.version = version;
  }
  void on_response_impl(int code, string_view reason_text, int version, error_code&) override {
    head_.status = code;
    reason = span(reason_text);
    head_.version = version;
  }
  void on_field_impl(beast_http::field, string_view name, string_view value,
                     error_code& ec) override {
    // Beast unfolds obs-fold (a value continued on the next line) into a buffer of its own;
    // RFC 9112 §5.2 lets a proxy reject such a message, and every view must point into the
    // input. (Trailers are forwarded as raw bytes; their views are not kept.)
    if (!in_trailers_ &&
        (value.data() < message_start || value.data() + value.size() > input_end)) {
      ec = beast_http::error::bad_value;
      return;
    }
    if (!in_trailers_) {
      fields_.push_back({span(name), span(value)});
    }
  }
  void on_header_impl(error_code&) override { in_trailers_ = true; }
  void on_body_init_impl(const boost::optional<uint64_t>&, error_code&) override {}
  size_t on_body_impl(string_view body, error_code&) override {
    payload += body.size();
    return body.size();
  }
  void on_chunk_header_impl(uint64_t, string_view, error_code&) override {}
  size_t on_chunk_body_impl(uint64_t, string_view body, error_code&) override {
    payload += body.size();
    if (decoded != nullptr) {
      decoded->append(body.data(), body.size());
    }
    return body.size();
  }
  void on_finish_impl(error_code&) override {}

  Head& head_;
  std::vector<RawField>& fields_;
  bool in_trailers_ = false;
};

}  // namespace

template <bool kIsRequest>
class MessageParser<kIsRequest>::Impl {
 public:
  std::optional<BeastParser<kIsRequest>> parser;
  std::vector<RawField> fields;
  size_t head_consumed = 0;  // head bytes Beast has taken so far
  // Body bytes Beast scanned past the consumed point without taking them. Beast's chunk
  // parser resumes its scan there and assumes the next put() offers at least those bytes again
  // plus more (it reads the final chunk's line without bounds checks otherwise).
  size_t chunk_bytes_scanned = 0;
};

template <bool kIsRequest>
MessageParser<kIsRequest>::MessageParser(uint32_t header_limit) : impl_(std::make_unique<Impl>()) {
  head_.fields.reserve(32);
  impl_->fields.reserve(32);
  header_limit_ = header_limit;
}

template <bool kIsRequest>
MessageParser<kIsRequest>::~MessageParser() = default;

template <bool kIsRequest>
void MessageParser<kIsRequest>::start(bool no_body) {
  head_.clear();
  error_ = {};
  impl_->fields.clear();
  impl_->head_consumed = 0;
  impl_->chunk_bytes_scanned = 0;
  auto& parser = impl_->parser.emplace(head_, impl_->fields);
  parser.header_limit(header_limit_);
  parser.body_limit(boost::none);  // bodies stream; the proxy enforces its own limit
  parser.eager(false);
  if (no_body) {
    parser.skip(true);
  }
}

template <bool kIsRequest>
ParseStatus MessageParser<kIsRequest>::parse_head(std::string_view buffer) {
  auto& parser = *impl_->parser;
  parser.message_start = buffer.data();
  parser.input_end = buffer.data() + buffer.size();
  auto rest = buffer.substr(std::min(impl_->head_consumed, buffer.size()));
  boost::beast::error_code ec;
  impl_->head_consumed += parser.put(boost::asio::const_buffer(rest.data(), rest.size()), ec);
  if (ec == beast_http::error::need_more) {
    return ParseStatus::kNeedMore;
  }
  if (ec == beast_http::error::header_limit) {
    error_ = "header block too large";
    return ParseStatus::kTooLarge;
  }
  if (ec) {
    error_ = "malformed HTTP/1 head";
    return ParseStatus::kBadMessage;
  }
  if (!parser.is_header_done()) {
    return ParseStatus::kNeedMore;
  }
  auto view = [&](Span span) { return std::string_view(buffer.data() + span.offset, span.size); };
  head_.method = view(parser.method);
  head_.target = view(parser.target);
  head_.reason = view(parser.reason);
  head_.fields.clear();
  for (const auto& field : impl_->fields) {
    head_.fields.push_back({view(field.name), view(field.value)});
  }
  head_.head_bytes = impl_->head_consumed;
  head_.keep_alive = parser.keep_alive();
  head_.upgrade = parser.upgrade() && head_.find("upgrade").has_value();
  if (parser.is_done()) {
    head_.body = BodyKind::kNone;
  } else if (parser.chunked()) {
    head_.body = BodyKind::kChunked;
    parser.eager(true);
  } else if (auto length = parser.content_length()) {
    head_.content_length = *length;
    head_.body = *length == 0 ? BodyKind::kNone : BodyKind::kContentLength;
  } else if (parser.need_eof()) {
    head_.body = BodyKind::kUntilClose;
  } else {
    head_.body = BodyKind::kNone;
  }
  // A request whose Transfer-Encoding does not end in chunked has no length a server can
  // agree on: RFC 9112 §6.3 says reject it (a request smuggling vector otherwise).
  if (kIsRequest && head_.body != BodyKind::kChunked && head_.find("transfer-encoding")) {
    error_ = "unsupported transfer-encoding";
    return ParseStatus::kBadMessage;
  }
  return ParseStatus::kDone;
}

template <bool kIsRequest>
BodyProgress MessageParser<kIsRequest>::parse_chunked(std::string_view buffer,
                                                      std::string* decoded) {
  auto& parser = *impl_->parser;
  BodyProgress progress;
  parser.payload = 0;
  parser.decoded = decoded;
  if (buffer.size() <= impl_->chunk_bytes_scanned) {
    return progress;  // nothing new since Beast asked for more
  }
  impl_->chunk_bytes_scanned = 0;
  // Beast stops after each chunk when it needs more bytes; loop until the input is used up.
  while (progress.consumed < buffer.size() && !parser.is_done()) {
    boost::beast::error_code ec;
    auto rest = buffer.substr(progress.consumed);
    size_t used = parser.put(boost::asio::const_buffer(rest.data(), rest.size()), ec);
    progress.consumed += used;
    if (ec == beast_http::error::need_more) {
      impl_->chunk_bytes_scanned = rest.size() - used;
      break;
    }
    if (ec) {
      error_ = "malformed chunked body";
      progress.status = ParseStatus::kBadMessage;
      return progress;
    }
    if (used == 0) {
      break;
    }
  }
  progress.payload = parser.payload;
  progress.status = parser.is_done() ? ParseStatus::kDone : ParseStatus::kNeedMore;
  return progress;
}

template class MessageParser<true>;
template class MessageParser<false>;

}  // namespace pillion::http
