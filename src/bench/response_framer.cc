#include "bench/response_framer.h"

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <optional>

namespace pillion::bench {

namespace http = boost::beast::http;
using boost::beast::error_code;

// basic_parser cannot be reset, so each response gets a fresh one, built in place (no heap).
class ResponseFramer::Parser {
 public:
  class Impl : public http::basic_parser<false> {
   public:
    explicit Impl(ResponseFramer& owner) : owner_(owner) {}

   private:
    void on_request_impl(http::verb, boost::beast::string_view, boost::beast::string_view, int,
                         error_code&) override {}
    void on_response_impl(int code, boost::beast::string_view, int, error_code&) override {
      owner_.status_ = code;
    }
    void on_field_impl(http::field, boost::beast::string_view, boost::beast::string_view,
                       error_code&) override {}
    void on_header_impl(error_code&) override {}
    void on_body_init_impl(const boost::optional<uint64_t>&, error_code&) override {}
    size_t on_body_impl(boost::beast::string_view body, error_code&) override {
      owner_.body_bytes_ += body.size();
      return body.size();
    }
    void on_chunk_header_impl(uint64_t, boost::beast::string_view, error_code&) override {}
    size_t on_chunk_body_impl(uint64_t, boost::beast::string_view body, error_code&) override {
      owner_.body_bytes_ += body.size();
      return body.size();
    }
    void on_finish_impl(error_code&) override {}

    ResponseFramer& owner_;
  };

  std::optional<Impl> impl;
};

ResponseFramer::ResponseFramer() : parser_(std::make_unique<Parser>()) {
  start();
}

ResponseFramer::~ResponseFramer() = default;

void ResponseFramer::start(bool head_request) {
  status_ = 0;
  body_bytes_ = 0;
  error_ = {};
  auto& impl = parser_->impl.emplace(*this);
  impl.eager(true);
  // Load generators see large bodies; the limit only protects against garbage.
  impl.body_limit(boost::none);
  impl.header_limit(64 * 1024);
  if (head_request) {
    impl.skip(true);
  }
}

ResponseFramer::FeedResult ResponseFramer::feed(std::string_view data) {
  auto& impl = *parser_->impl;
  size_t consumed = 0;
  while (!impl.is_done() && consumed < data.size()) {
    error_code ec;
    size_t n =
        impl.put(boost::asio::const_buffer(data.data() + consumed, data.size() - consumed), ec);
    consumed += n;
    if (ec == http::error::need_more) {
      return {impl.is_done() ? State::kDone : State::kNeedMore, consumed};
    }
    if (ec) {
      error_ = "malformed response";
      return {State::kError, consumed};
    }
    if (n == 0) {
      break;
    }
  }
  return {impl.is_done() ? State::kDone : State::kNeedMore, consumed};
}

ResponseFramer::State ResponseFramer::feed_eof() {
  auto& impl = *parser_->impl;
  if (impl.is_done()) {
    return State::kDone;
  }
  error_code ec;
  impl.put_eof(ec);
  if (ec || !impl.is_done()) {
    error_ = "connection closed mid-response";
    return State::kError;
  }
  return State::kDone;
}

bool ResponseFramer::keep_alive() const {
  return parser_->impl->is_done() && parser_->impl->keep_alive();
}

}  // namespace pillion::bench
