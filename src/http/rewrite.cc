#include "http/rewrite.h"

#include "http/propagation.h"

#include <fmt/format.h>

#include <array>

namespace pillion::http {
namespace {

// Calls `visit` for each token of the Connection header(s); stops when it returns true.
template <typename Visit>
bool any_connection_token(const Head& head, Visit visit) {
  for (const auto& field : head.fields) {
    if (!iequals(field.name, "connection")) {
      continue;
    }
    std::string_view rest = field.value;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view token = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
        token.remove_prefix(1);
      }
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
        token.remove_suffix(1);
      }
      if (!token.empty() && visit(token)) {
        return true;
      }
    }
  }
  return false;
}

// The headers named by Connection are hop-by-hop too; any number of them.
struct ConnectionTokens {
  const Head& head;
  bool has_tokens;

  explicit ConnectionTokens(const Head& message)
      : head(message), has_tokens(message.find("connection").has_value()) {}

  bool names(std::string_view name) const {
    return has_tokens &&
           any_connection_token(head, [&](std::string_view token) { return iequals(token, name); });
  }
};

bool starts_with_icase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

// Hop-by-hop for every message. Transfer-Encoding is handled by the caller (bodies are
// forwarded with the framing they arrived in), Upgrade only survives on upgrade exchanges.
bool is_hop_by_hop(std::string_view name, const ConnectionTokens& connection, bool upgrading) {
  switch (name.size()) {
    case 2:
      if (iequals(name, "te")) {
        return true;
      }
      break;
    case 7:
      if (iequals(name, "trailer")) {
        return true;
      }
      if (iequals(name, "upgrade")) {
        return !upgrading;
      }
      break;
    case 10:
      if (iequals(name, "connection") || iequals(name, "keep-alive")) {
        return true;
      }
      break;
    case 14:
      if (iequals(name, "content-length")) {
        return false;  // framing: never named away by Connection
      }
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) {
        return false;
      }
      break;
    default:
      break;
  }
  if (starts_with_icase(name, "proxy-")) {
    return true;
  }
  return connection.names(name);
}

// A field kept as received: name, separator and value are contiguous in the input buffer.
void append_raw_field(std::string& out, const Field& field) {
  out.append(field.name.data(),
             static_cast<size_t>(field.value.data() + field.value.size() - field.name.data()));
  out.append("\r\n", 2);
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

void build_upstream_request(const Head& request, const UpstreamRequestContext& context,
                            std::string& out) {
  ConnectionTokens connection(request);
  const bool upgrading = request.upgrade;
  out.append(request.method);
  out.push_back(' ');
  if (context.target_override.empty()) {
    out.append(request.target);
  } else {
    if (context.target_override.front() != '/') {
      out.push_back('/');
    }
    out.append(context.target_override);
  }
  out.append(" HTTP/1.1\r\n");
  bool has_host = false;
  bool has_forwarded_for = false;
  // The client address goes after every existing hop: on the last X-Forwarded-For line.
  const Field* last_forwarded_for = nullptr;
  for (const auto& field : request.fields) {
    if (iequals(field.name, "x-forwarded-for")) {
      last_forwarded_for = &field;
    }
  }
  bool has_forwarded_proto = false;
  for (const auto& field : request.fields) {
    if (is_hop_by_hop(field.name, connection, upgrading) || iequals(field.name, "expect") ||
        is_trace_header(field.name)) {
      continue;
    }
    if (iequals(field.name, "host")) {
      has_host = true;
      if (!context.host_override.empty()) {
        append_field(out, field.name, context.host_override);
        continue;
      }
    } else if (iequals(field.name, "x-forwarded-for")) {
      has_forwarded_for = true;
      if (&field == last_forwarded_for && !context.client_ip.empty()) {
        out.append(field.name);
        out.append(": ");
        out.append(field.value);
        out.append(", ");
        out.append(context.client_ip);
        out.append("\r\n");
        continue;
      }
    } else if (iequals(field.name, "x-forwarded-proto")) {
      has_forwarded_proto = true;
    }
    append_raw_field(out, field);
  }
  if (!has_host) {
    append_field(out, "host",
                 context.host_override.empty() ? context.authority : context.host_override);
  }
  if (!context.request_had_id) {
    append_field(out, "x-request-id", context.request_id);
  }
  out.append(context.trace_headers);
  if (!has_forwarded_for && !context.client_ip.empty()) {
    append_field(out, "x-forwarded-for", context.client_ip);
  }
  if (!has_forwarded_proto) {
    append_field(out, "x-forwarded-proto", "http");
  }
  append_field(out, "via", request.version == 10 ? "1.0 pillion" : "1.1 pillion");
  if (upgrading) {
    append_field(out, "connection", "upgrade");
  }
  out.append("\r\n");
}

void build_downstream_response(const Head& response, const DownstreamResponseContext& context,
                               std::string& out) {
  ConnectionTokens connection(response);
  const bool upgrading = response.status == 101;
  out.append("HTTP/1.1 ");
  char status[4] = {static_cast<char>('0' + response.status / 100 % 10),
                    static_cast<char>('0' + response.status / 10 % 10),
                    static_cast<char>('0' + response.status % 10), ' '};
  out.append(status, 4);
  out.append(response.reason.empty() ? reason_phrase(response.status) : response.reason);
  out.append("\r\n");
  bool has_request_id = false;
  for (const auto& field : response.fields) {
    if (is_hop_by_hop(field.name, connection, upgrading)) {
      continue;
    }
    if (iequals(field.name, "x-request-id")) {
      has_request_id = true;
    }
    append_raw_field(out, field);
  }
  if (!has_request_id && !context.request_id.empty()) {
    append_field(out, "x-request-id", context.request_id);
  }
  if (context.chunk_encode) {
    append_field(out, "transfer-encoding", "chunked");
  }
  if (upgrading) {
    append_field(out, "connection", "upgrade");
  } else if (context.close) {
    append_field(out, "connection", "close");
  } else if (context.keep_alive_http10) {
    append_field(out, "connection", "keep-alive");
  }
  out.append("\r\n");
}

void build_local_response(int status, std::string_view detail, std::string_view request_id,
                          bool close, std::string& out, std::string_view extra_headers) {
  auto reason = reason_phrase(status);
  size_t body_size =
      reason.size() + 2 + detail.size() + 1 + (request_id.empty() ? 0 : 12 + request_id.size() + 1);
  fmt::format_to(std::back_inserter(out),
                 "HTTP/1.1 {} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n", status,
                 reason, body_size);
  if (!request_id.empty()) {
    append_field(out, "x-request-id", request_id);
  }
  if (close) {
    append_field(out, "connection", "close");
  }
  out.append(extra_headers);
  out.append("\r\n");
  out.append(reason);
  out.append(": ");
  out.append(detail);
  out.append("\n");
  if (!request_id.empty()) {
    out.append("request_id: ");
    out.append(request_id);
    out.append("\n");
  }
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

}  // namespace pillion::http
