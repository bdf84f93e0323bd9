#pragma once
// The workload identity: certificate chain, private key and trust bundle, validated together and
// turned into the server and client TLS contexts. Immutable once loaded; a rotation loads a new
// Identity (identity_watcher.h) and new handshakes use its contexts while existing connections
// keep the old ones (each holds its context's shared_ptr).
//
// Loading refuses a set that cannot serve: an unreadable file, a malformed or truncated PEM, a key
// that does not match the leaf, a leaf without exactly one SPIFFE URI SAN, an expired or not yet
// valid leaf, or a leaf that does not chain to the bundle. Error messages name the files and the
// problem and never contain key material.
#include <chrono>
#include <memory>
#include <string>

#include "tls/tls_context.h"

namespace pillion::tls {

struct IdentityFiles {
  std::string cert;  // PEM chain, leaf first
  std::string key;   // PEM private key (unencrypted)
  std::string ca;    // PEM trust bundle
};

// The files' contents (already read).
struct IdentityPem {
  std::string cert;
  std::string key;
  std::string ca;
};

class Identity {
 public:
  using Clock = std::chrono::system_clock;

  // Reads and validates the files; nullptr and `error` set on failure.
  static std::shared_ptr<const Identity> load(const IdentityFiles& files, std::string& error);
  // Validates contents already read; `files` only names them in errors and in files().
  static std::shared_ptr<const Identity> parse(const IdentityPem& pem, const IdentityFiles& files,
                                               std::string& error);

  const std::string& spiffe_id() const { return spiffe_id_; }
  const std::string& trust_domain() const { return trust_domain_; }
  Clock::time_point not_before() const { return not_before_; }
  Clock::time_point not_after() const { return not_after_; }
  const std::string& serial() const { return serial_; }  // lowercase hex
  // The trust anchor the leaf chained to.
  Clock::time_point ca_not_after() const { return ca_not_after_; }
  const std::string& ca_subject() const { return ca_subject_; }  // RFC 2253
  const IdentityFiles& files() const { return files_; }

  // Shared by all workers; see tls_context.h.
  const ContextPtr& server_context() const { return server_context_; }
  const ContextPtr& client_context() const { return client_context_; }

  // Less than `fraction` of the leaf's lifetime is left at `now`.
  bool expiring(Clock::time_point now, double fraction = 0.25) const;

 private:
  Identity() = default;

  std::string spiffe_id_;
  std::string trust_domain_;
  Clock::time_point not_before_;
  Clock::time_point not_after_;
  std::string serial_;
  Clock::time_point ca_not_after_;
  std::string ca_subject_;
  IdentityFiles files_;
  ContextPtr server_context_;
  ContextPtr client_context_;
};

using IdentityPtr = std::shared_ptr<const Identity>;

// "2026-11-30T12:00:00Z"
std::string format_time(std::chrono::system_clock::time_point time);

}  // namespace pillion::tls
