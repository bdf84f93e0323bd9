// Fuzzes the request path as the session drives it: a request head (split at a point the input
// chooses, as reads would split it), the upstream head rewrite, a chunked body, then the
// response side with the same bytes. Nothing may crash, leak, or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/ids.h"
#include "http/parser.h"
#include "http/rewrite.h"

namespace {

template <bool kIsRequest>
void parse_message(std::string_view input, size_t split, bool no_body) {
  using namespace pillion::http;
  MessageParser<kIsRequest> parser(8 * 1024);
  parser.start(no_body);
  // Feed like a connection does: first `split` bytes, then everything.
  if (split < input.size() && parser.parse_head(input.substr(0, split)) == ParseStatus::kDone) {
    split = input.size();
  }
  parser.start(no_body);
  if (parser.parse_head(input) != ParseStatus::kDone) {
    return;
  }
  const Head& head = parser.head();
  std::string out;
  if constexpr (kIsRequest) {
    UpstreamRequestContext context;
    context.request_id = "00000000-0000-4000-8000-000000000000";
    context.trace_headers =
        "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n";
    context.client_ip = "127.0.0.1";
    context.authority = "upstream:80";
    build_upstream_request(head, context, out);
  } else {
    DownstreamResponseContext context;
    context.request_id = "id";
    context.chunk_encode = head.body == BodyKind::kUntilClose;
    build_downstream_response(head, context, out);
  }
  if (out.find("\r\n\r\n") == std::string::npos) {
    __builtin_trap();  // a head we emit must always be terminated
  }
  auto body = input.substr(head.head_bytes);
  if (head.body == BodyKind::kChunked) {
    std::string decoded;
    size_t offset = 0;
    // Feed in pieces of at most 7 bytes to exercise resumption.
    while (offset < body.size()) {
      auto piece = body.substr(offset, std::min<size_t>(7, body.size() - offset));
      auto progress = parser.parse_chunked(piece, &decoded);
      if (progress.status == ParseStatus::kBadMessage || progress.status == ParseStatus::kDone) {
        break;
      }
      if (progress.consumed == 0) {
        // Needs more than 7 bytes at once (a long chunk-size line): give it the rest.
        progress = parser.parse_chunked(body.substr(offset), &decoded);
        offset = body.size();
        break;
      }
      offset += progress.consumed;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t split = size == 0 ? 0 : data[0] % (size + 1);
  parse_message<true>(input, split, false);
  parse_message<false>(input, split, size > 0 && (data[size - 1] & 1));
  if (size >= 55) {
    (void)pillion::http::parse_traceparent(input.substr(0, 55));
  }
  return 0;
}
