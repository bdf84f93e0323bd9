#include "tls/spiffe.h"

namespace pillion::tls {
namespace {

bool is_trust_domain_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

bool is_path_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

bool fail(std::string* error, std::string message) {
  if (error != nullptr) {
    *error = std::move(message);
  }
  return false;
}

// A printable rendering of one byte for an error message (the input may be binary).
std::string describe(char c) {
  auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x21 && byte < 0x7f) {
    return std::string("'") + c + "'";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("byte 0x") + kHex[byte >> 4] + kHex[byte & 0xf];
}

bool check_path(std::string_view path, std::string* error) {
  // `path` is empty or starts with '/'.
  size_t pos = 0;
  while (pos < path.size()) {
    size_t start = pos + 1;  // skip the '/'
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    std::string_view segment = path.substr(start, end - start);
    if (segment.empty()) {
      return fail(error, end == path.size() ? "path must not end with '/'"
                                            : "path must not contain an empty segment ('//')");
    }
    if (segment == "." || segment == "..") {
      return fail(error, "path must not contain a '" + std::string(segment) + "' segment");
    }
    for (char c : segment) {
      if (c == '%') {
        return fail(error, "percent-encoding is not allowed in a SPIFFE ID");
      }
      if (c == '?') {
        return fail(error, "a SPIFFE ID must not have a query");
      }
      if (c == '#') {
        return fail(error, "a SPIFFE ID must not have a fragment");
      }
      if (!is_path_char(c)) {
        return fail(error, "path contains " + describe(c) +
                               "; path segments allow only letters, digits, '.', '-' and '_'");
      }
    }
    pos = end;
  }
  return true;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (c != b[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string SpiffeId::text() const {
  std::string out;
  out.reserve(kSpiffeScheme.size() + trust_domain.size() + path.size());
  out.append(kSpiffeScheme).append(trust_domain).append(path);
  return out;
}

bool is_valid_trust_domain(std::string_view name, std::string* error) {
  if (name.empty()) {
    return fail(error, "trust domain is empty");
  }
  if (name.size() > kMaxTrustDomainLength) {
    return fail(error, "trust domain is longer than 255 bytes");
  }
  for (char c : name) {
    if (c == ':') {
      return fail(error, "trust domain must not have a port");
    }
    if (c == '@') {
      return fail(error, "trust domain must not have userinfo");
    }
    if (c == '%') {
      return fail(error, "percent-encoding is not allowed in a SPIFFE ID");
    }
    if (c >= 'A' && c <= 'Z') {
      return fail(error, "trust domain must be lowercase");
    }
    if (!is_trust_domain_char(c)) {
      return fail(error, "trust domain contains " + describe(c) +
                             "; it allows only lowercase letters, digits, '.', '-' and '_'");
    }
  }
  return true;
}

std::optional<SpiffeId> parse_spiffe_id(std::string_view uri, std::string* error) {
  if (uri.empty()) {
    fail(error, "SPIFFE ID is empty");
    return std::nullopt;
  }
  if (uri.size() > kMaxSpiffeIdLength) {
    fail(error, "SPIFFE ID is longer than 2048 bytes");
    return std::nullopt;
  }
  if (!uri.starts_with(kSpiffeScheme)) {
    auto colon = uri.find(':');
    std::string_view scheme = uri.substr(0, colon);
    if (colon == std::string_view::npos) {
      fail(error, "SPIFFE ID must start with 'spiffe://'");
    } else if (scheme == "spiffe") {
      fail(error, "SPIFFE ID must start with 'spiffe://'");
    } else if (equals_ignoring_case(scheme, "spiffe")) {
      fail(error, "scheme must be lowercase 'spiffe'");
    } else {
      fail(error, "scheme must be 'spiffe'");
    }
    return std::nullopt;
  }
  std::string_view rest = uri.substr(kSpiffeScheme.size());
  size_t slash = rest.find('/');
  std::string_view domain = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  // Query and fragment are reported as such wherever they start.
  if (auto q = domain.find_first_of("?#"); q != std::string_view::npos) {
    fail(error, domain[q] == '?' ? "a SPIFFE ID must not have a query"
                                 : "a SPIFFE ID must not have a fragment");
    return std::nullopt;
  }
  if (!is_valid_trust_domain(domain, error)) {
    return std::nullopt;
  }
  if (!check_path(path, error)) {
    return std::nullopt;
  }
  return SpiffeId{std::string(domain), std::string(path)};
}

}  // namespace pillion::tls
