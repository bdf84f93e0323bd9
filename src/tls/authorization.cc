#include "tls/authorization.h"

#include "tls/spiffe.h"

namespace pillion::tls {

std::optional<IdPattern> IdPattern::parse(std::string_view text, std::string& error) {
  if (text.empty()) {
    error = "empty ID pattern";
    return std::nullopt;
  }
  if (text == "*") {
    return IdPattern(Kind::kAny, "*", "");
  }
  std::string_view base = text;
  bool wildcard = false;
  if (text.ends_with("/*")) {
    base = text.substr(0, text.size() - 2);
    wildcard = true;
  }
  if (base.find('*') != std::string_view::npos) {
    error = "'*' is allowed only as the whole pattern or as a final '/*' segment";
    return std::nullopt;
  }
  std::string why;
  auto id = parse_spiffe_id(base, &why);
  if (!id) {
    error =
        "invalid SPIFFE ID pattern '" + std::string(base) + (wildcard ? "/*" : "") + "': " + why;
    return std::nullopt;
  }
  if (!wildcard) {
    return IdPattern(Kind::kExact, std::string(text), std::string(text));
  }
  if (id->path.empty()) {
    return IdPattern(Kind::kTrustDomain, std::string(text), std::string(base));
  }
  return IdPattern(Kind::kPrefix, std::string(text), std::string(base) + "/");
}

bool IdPattern::matches_valid(std::string_view id) const {
  switch (kind_) {
    case Kind::kAny:
      return true;
    case Kind::kExact:
      return id == prefix_;
    case Kind::kPrefix:
      return id.size() > prefix_.size() && id.starts_with(prefix_);
    case Kind::kTrustDomain:
      return id.starts_with(prefix_) && (id.size() == prefix_.size() || id[prefix_.size()] == '/');
  }
  return false;
}

bool IdPattern::matches(std::string_view id) const {
  return parse_spiffe_id(id).has_value() && matches_valid(id);
}

bool Authorization::allows(std::string_view peer_id) const {
  if (empty()) {
    return true;
  }
  if (peer_id.empty() || !parse_spiffe_id(peer_id)) {
    return false;
  }
  for (const auto& pattern : deny) {
    if (pattern.matches_valid(peer_id)) {
      return false;
    }
  }
  if (allow.empty()) {
    return true;
  }
  for (const auto& pattern : allow) {
    if (pattern.matches_valid(peer_id)) {
      return true;
    }
  }
  return false;
}

}  // namespace pillion::tls
