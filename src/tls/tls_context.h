#pragma once
// TLS contexts for mutual TLS between sidecars, and what to ask a connection after its handshake.
//
// Both contexts present the workload certificate chain, require the peer's certificate, verify it
// against the trust bundle, and additionally require the peer's leaf to carry exactly one URI SAN
// that is a valid SPIFFE ID of a trusted trust domain (today: our own). TLS 1.2 is the minimum
// (ECDHE with AES-GCM or ChaCha20-Poly1305 only); TLS 1.3 is preferred with OpenSSL's defaults.
//
// ALPN: for HTTP the client offers {"http/1.1", "pillion-mtls"}; the second one marks a connection
// that a sidecar originated, so a PERMISSIVE inbound can tell it from an application's own TLS.
// A sidecar tunnelling opaque TCP offers only "pillion-mtls-tcp" (set per connection with
// offer_tcp_tunnel_alpn on an SSL of the same client context, so both share the identity, the
// rotation and the session cache). The server selects "pillion-mtls-tcp" when offered, else
// "http/1.1" when offered, and otherwise answers without ALPN.
//
// Contexts are built once per identity (Identity::load) and shared by every worker: an SSL_CTX is
// safe to use from many threads for new connections. Wrap a socket with
// `boost::asio::ssl::stream<tcp::socket&> stream(socket, *context)`.
#include <openssl/ossl_typ.h>

#include <boost/system/error_code.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio::ssl {
class context;
}

struct stack_st_X509;  // STACK_OF(X509)

namespace pillion::tls {

inline constexpr std::string_view kAlpnHttp11 = "http/1.1";
inline constexpr std::string_view kAlpnPillionMtls = "pillion-mtls";
// The connection carries opaque TCP bytes (not HTTP) between two sidecars.
inline constexpr std::string_view kAlpnPillionMtlsTcp = "pillion-mtls-tcp";
// TLS 1.2 only (TLS 1.3 suites are OpenSSL's defaults): forward secrecy and AEAD, nothing else.
inline constexpr const char* kTls12CipherList =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

using ContextPtr = std::shared_ptr<boost::asio::ssl::context>;

// What a context is made of. The pointers are borrowed for the call (the context takes its own
// references).
struct ContextMaterial {
  X509* leaf = nullptr;
  stack_st_X509* chain = nullptr;  // intermediates after the leaf; may be null
  EVP_PKEY* key = nullptr;
  stack_st_X509* trust = nullptr;          // the trust bundle (CA certificates)
  std::vector<std::string> trust_domains;  // peers' SPIFFE IDs must be of one of these
};

// nullptr and `error` set on failure (an OpenSSL reason; never key material).
ContextPtr make_server_context(const ContextMaterial& material, std::string& error);
// Also installs SessionCache::on_new_session: see session_cache.h.
ContextPtr make_client_context(const ContextMaterial& material, std::string& error);

// The SPIFFE ID of `cert`: its only URI SAN, when that is a valid SPIFFE ID; otherwise nullopt
// and, when given, `error` says why.
std::optional<std::string> certificate_spiffe_id(X509* cert, std::string* error = nullptr);

// After the handshake: the SPIFFE ID of the verified peer certificate (also on a resumed
// session); nullopt when there is no peer certificate or it did not verify.
std::optional<std::string> peer_spiffe_id(SSL* ssl);

// Whether an outbound peer's ID is one the cluster expects. Entries are exact IDs or IdPattern
// wildcards ("spiffe://td/ns/prod/*", "spiffe://td/*", "*"). An empty list accepts any ID: the
// handshake already required one of a trusted trust domain.
bool peer_id_allowed(const std::string& id, const std::vector<std::string>& expected);

// Why verification of the peer failed, for a log line, e.g. "certificate has expired",
// "unable to get local issuer certificate", "peer presented no certificate",
// "peer certificate has no URI SAN". Empty when the peer verified.
std::string verify_error(SSL* ssl);

inline constexpr std::string_view kNoPeerCertificate = "peer presented no certificate";

// Why a handshake failed, for a log line: the verification error when there is one, else the
// handshake's own error ("unsupported protocol", "no shared cipher", "wrong version number",
// or kNoPeerCertificate when the peer sent none).
std::string handshake_error(SSL* ssl, const boost::system::error_code& error);

// The protocol ALPN selected ("http/1.1"), or empty.
std::string_view selected_alpn(SSL* ssl);

// Server side, after the handshake: the client offered "pillion-mtls" or "pillion-mtls-tcp" (a
// sidecar originated it).
bool peer_offered_pillion_alpn(SSL* ssl);

// Client side, before the handshake: offer only "pillion-mtls-tcp" on this connection (instead
// of the context's HTTP list). False if OpenSSL refuses.
bool offer_tcp_tunnel_alpn(SSL* ssl);

// After the handshake: sends nothing, but makes OpenSSL produce our close_notify alert and
// returns its record bytes, for the caller to write to the socket itself. For a stream whose
// SSL writes into a BIO that only an asio operation would flush (boost::asio::ssl::stream):
// its async_shutdown also waits for (and would consume data before) the peer's close_notify,
// which a half-close must not do. Reading with SSL_read stays possible afterwards. Empty when
// OpenSSL refuses (e.g. the handshake never finished) or the alert was already sent.
std::string take_close_notify(SSL* ssl);

// Client side, before the handshake: the SNI to send. False if OpenSSL refuses the name.
bool set_server_name(SSL* ssl, const std::string& name);

}  // namespace pillion::tls
