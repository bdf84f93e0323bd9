#pragma once
// Turns a parsed head into the head forwarded to the other side: hop-by-hop headers removed
// (Connection and the headers it names, Keep-Alive, TE, Trailer, Upgrade, Proxy-*, Expect),
// proxy headers added. Appends to a caller-owned buffer so the hot path does not allocate.
#include <string>
#include <string_view>

#include "http/head.h"

namespace pillion::http {

struct UpstreamRequestContext {
  std::string_view request_id;  // value for x-request-id when the request has none
  bool request_had_id = false;  // the request carries x-request-id already
  // Complete "name: value\r\n" lines of the next hop's trace context; they replace every
  // incoming trace header (traceparent, b3, x-b3-*; tracestate passes through).
  std::string_view trace_headers;
  std::string_view client_ip;  // appended to x-forwarded-for; empty: x-forwarded-for untouched
  std::string_view authority;  // host:port of the endpoint, for requests without Host
  // For an absolute-form request target ("GET http://h/p"): sent as origin-form with this Host.
  std::string_view target_override;
  std::string_view host_override;
};

void build_upstream_request(const Head& request, const UpstreamRequestContext& context,
                            std::string& out);

struct DownstreamResponseContext {
  std::string_view request_id;     // echoed as x-request-id unless the upstream set one
  bool close = false;              // send Connection: close (we will close after this response)
  bool keep_alive_http10 = false;  // an HTTP/1.0 client asked for keep-alive and gets it
  bool chunk_encode = false;       // body is close-delimited upstream; re-framed as chunked
};

void build_downstream_response(const Head& response, const DownstreamResponseContext& context,
                               std::string& out);

// A response the proxy generates itself (errors): a short text body naming the reason and
// the request id, so a user can grep the access log for it.
// `extra_headers`: complete "name: value\r\n" lines (e.g. Retry-After).
void build_local_response(int status, std::string_view detail, std::string_view request_id,
                          bool close, std::string& out, std::string_view extra_headers = {});

std::string_view reason_phrase(int status);

}  // namespace pillion::http
