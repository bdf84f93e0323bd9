#pragma once
// A small certificate authority for tests, demos and small fleets (`pillion ca`): a self-signed
// CA whose URI SAN is the trust domain's SPIFFE ID, and workload certificates (X.509-SVIDs)
// carrying one SPIFFE ID as their only URI SAN. Large fleets mount the same three files
// (cert.pem, key.pem, ca.pem) from cert-manager or SPIRE instead; see docs/mtls.md.
//
// Private keys are written with mode 0600 through a temporary file and a rename, and never
// appear in an error message.
#include <chrono>
#include <string>
#include <vector>

namespace pillion::tls {

enum class KeyType { kEcdsaP256, kRsa2048 };

// "ecdsa" or "rsa"; false for anything else.
bool parse_key_type(std::string_view text, KeyType& out);

struct CaInitOptions {
  std::string dir;  // gets ca.pem and ca.key; created (0700) if missing
  std::string trust_domain = "cluster.local";
  std::chrono::seconds ttl = std::chrono::hours(87600);  // 10 years
  KeyType key_type = KeyType::kEcdsaP256;
  bool force = false;  // replace an existing CA in `dir`
};

struct IssueOptions {
  std::string ca_dir;  // holds ca.pem and ca.key (from init_ca)
  std::string id;      // SPIFFE ID; its trust domain must be the CA's
  std::chrono::seconds ttl = std::chrono::hours(24);
  std::string out_dir;                 // gets cert.pem, key.pem, ca.pem; created if missing
  std::vector<std::string> dns_names;  // extra DNS SANs ("*.x.y" allowed)
  std::chrono::seconds backdate{0};    // notBefore = now - backdate; notAfter = notBefore + ttl
  KeyType key_type = KeyType::kEcdsaP256;
};

// What was written, for the command's one-line report.
struct CaResult {
  std::vector<std::string> files;  // paths written, in order
  std::string subject_id;          // the SPIFFE ID in the URI SAN
  std::string not_after;           // e.g. "Jan  2 15:04:05 2035 GMT"
};

// Both return false with a one-line `error` (naming the file or flag at fault) on failure.
bool init_ca(const CaInitOptions& options, CaResult& result, std::string& error);
bool issue_certificate(const IssueOptions& options, CaResult& result, std::string& error);

}  // namespace pillion::tls
