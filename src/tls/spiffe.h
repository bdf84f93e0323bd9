#pragma once
// SPIFFE IDs (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md):
// `spiffe://<trust-domain>[/<segment>...]`. The parser is strict, as go-spiffe's is: an ID that
// parses here is in canonical form, so comparing IDs is comparing strings.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pillion::tls {

inline constexpr std::string_view kSpiffeScheme = "spiffe://";
inline constexpr size_t kMaxSpiffeIdLength = 2048;    // bytes, the whole URI
inline constexpr size_t kMaxTrustDomainLength = 255;  // bytes, RFC 3986 host limit

struct SpiffeId {
  std::string trust_domain;  // "cluster.local"
  std::string path;          // "" or "/ns/prod/sa/payments" (leading slash, no trailing slash)

  // The canonical URI: "spiffe://" + trust_domain + path.
  std::string text() const;

  friend bool operator==(const SpiffeId&, const SpiffeId&) = default;
};

// Parses `uri` as a SPIFFE ID:
//   - scheme exactly "spiffe" (lowercase), followed by "://";
//   - a non-empty trust domain of [a-z0-9.-_], at most 255 bytes (so no uppercase, no
//     userinfo '@', no port ':');
//   - an optional path of '/'-separated segments of [A-Za-z0-9.-_]: no empty segment (so no
//     "//" and no trailing '/'), no "." or ".." segment;
//   - no query ('?'), no fragment ('#'), no percent-encoding ('%');
//   - at most 2048 bytes in total.
// On failure returns nullopt and, when `error` is given, stores a one-line reason there.
std::optional<SpiffeId> parse_spiffe_id(std::string_view uri, std::string* error = nullptr);

// Just the trust-domain check of parse_spiffe_id, for a bare name such as "cluster.local".
bool is_valid_trust_domain(std::string_view name, std::string* error = nullptr);

}  // namespace pillion::tls
