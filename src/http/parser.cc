#include "http/parser.h"

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <optional>

namespace pillion::http {

namespace beast_http = boost::beast::http;

namespace {

template <bool kIsRequest>
class BeastParser final : public beast_http::basic_parser<kIsRequest> {
 public:
  explicit BeastParser(Head& head) : head_(head) {}
  uint64_t payload = 0;
  std::string* decoded = nullptr;

 private:
  using string_view = boost::beast::string_view;
  using error_code = boost::beast::error_code;

  static std::string_view sv(string_view s) { return {s.data(), s.size()}; }

  void on_request_impl(beast_http::verb, string_view method, string_view target, int version,
                       error_code&) override {
    head_.method = sv(method);
    head_.target = sv(target);
    head_.version = version;
  }
  void on_response_impl(int code, string_view reason, int version, error_code&) override {
    head_.status = code;
    head_.reason = sv(reason);
    head_.version = version;
  }
  void on_field_impl(beast_http::field, string_view name, string_view value, error_code&) override {
    if (!in_trailers_) {
      head_.fields.push_back({sv(name), sv(value)});
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
  bool in_trailers_ = false;
};

}  // namespace

template <bool kIsRequest>
class MessageParser<kIsRequest>::Impl {
 public:
  std::optional<BeastParser<kIsRequest>> parser;
};

template <bool kIsRequest>
MessageParser<kIsRequest>::MessageParser(uint32_t header_limit) : impl_(std::make_unique<Impl>()) {
  head_.fields.reserve(32);
  header_limit_ = header_limit;
}

template <bool kIsRequest>
MessageParser<kIsRequest>::~MessageParser() = default;

template <bool kIsRequest>
void MessageParser<kIsRequest>::start(bool no_body) {
  head_.clear();
  error_ = {};
  auto& parser = impl_->parser.emplace(head_);
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
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::const_buffer(buffer.data(), buffer.size()), ec);
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
  head_.head_bytes = used;
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
  return ParseStatus::kDone;
}

template <bool kIsRequest>
BodyProgress MessageParser<kIsRequest>::parse_chunked(std::string_view buffer,
                                                      std::string* decoded) {
  auto& parser = *impl_->parser;
  BodyProgress progress;
  parser.payload = 0;
  parser.decoded = decoded;
  // Beast stops after each chunk when it needs more bytes; loop until the input is used up.
  while (progress.consumed < buffer.size() && !parser.is_done()) {
    boost::beast::error_code ec;
    auto rest = buffer.substr(progress.consumed);
    size_t used = parser.put(boost::asio::const_buffer(rest.data(), rest.size()), ec);
    progress.consumed += used;
    if (ec == beast_http::error::need_more) {
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
