#pragma once
// Who may talk to an inbound port or route, by the peer's SPIFFE ID.
//
// Pattern forms (IdPattern::parse):
//   spiffe://cluster.local/ns/prod/sa/web   exactly that ID
//   spiffe://cluster.local/ns/prod/*        any ID strictly under /ns/prod, at a segment boundary:
//                                           matches .../ns/prod/sa/x, not .../ns/prod itself and
//                                           not .../ns/production/sa/x
//   spiffe://cluster.local/*                any ID of the trust domain, including the bare
//                                           trust-domain ID spiffe://cluster.local
//   *                                       any authenticated peer (any valid SPIFFE ID)
// A '*' anywhere else is an error; the part before "/*" must itself be a valid SPIFFE ID.
// Patterns match only valid SPIFFE IDs (parse_spiffe_id), compared byte for byte: a valid ID is
// canonical (no "..", no percent-encoding, lowercase trust domain), so no two spellings of one
// ID exist and a prefix cannot be escaped with "..".
//
// Authorization::allows(peer_id), in order:
//   1. no peer ID (empty: a plaintext peer, or a certificate without a SPIFFE ID) or an invalid
//      one: allowed only when both lists are empty (no policy configured);
//   2. an ID matched by any deny pattern is refused (deny wins);
//   3. an empty allow list allows every ID not denied;
//   4. otherwise the ID must match at least one allow pattern.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pillion::tls {

class IdPattern {
 public:
  enum class Kind {
    kExact,        // spiffe://td/path
    kPrefix,       // spiffe://td/path/*
    kTrustDomain,  // spiffe://td/*
    kAny,          // *
  };

  // Parses one pattern; on failure returns nullopt and sets `error` to a one-line reason.
  static std::optional<IdPattern> parse(std::string_view text, std::string& error);

  // True when `id` is a valid SPIFFE ID that the pattern covers.
  bool matches(std::string_view id) const;

  Kind kind() const { return kind_; }
  // The pattern as written (canonical: parse(text()) yields an equal pattern).
  const std::string& text() const { return text_; }

  friend bool operator==(const IdPattern&, const IdPattern&) = default;

 private:
  friend struct Authorization;
  IdPattern(Kind kind, std::string text, std::string prefix)
      : kind_(kind), text_(std::move(text)), prefix_(std::move(prefix)) {}
  // matches() for an ID already known to be valid.
  bool matches_valid(std::string_view id) const;

  Kind kind_;
  std::string text_;
  // kExact: the ID; kPrefix: "spiffe://td/path/" (with the final '/'); kTrustDomain:
  // "spiffe://td"; kAny: empty.
  std::string prefix_;
};

struct Authorization {
  std::vector<IdPattern> allow;
  std::vector<IdPattern> deny;

  // See the rules at the top of this file.
  bool allows(std::string_view peer_id) const;
  // True when neither list has an entry (every peer, even plaintext, is allowed).
  bool empty() const { return allow.empty() && deny.empty(); }
};

}  // namespace pillion::tls
