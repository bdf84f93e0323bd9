#include "tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>

#include "tls/authorization.h"
#include "tls/session_cache.h"
#include "tls/spiffe.h"

namespace pillion::tls {

namespace ssl = boost::asio::ssl;

namespace {

// Per SSL_CTX: which trust domains peers may belong to.
struct Policy {
  std::vector<std::string> trust_domains;
};

void free_policy(void* /*parent*/, void* pointer, CRYPTO_EX_DATA* /*data*/, int /*index*/,
                 long /*argl*/, void* /*argp*/) {
  delete static_cast<Policy*>(pointer);
}

void free_string(void* /*parent*/, void* pointer, CRYPTO_EX_DATA* /*data*/, int /*index*/,
                 long /*argl*/, void* /*argp*/) {
  delete static_cast<std::string*>(pointer);
}

int policy_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_policy);
  return index;
}

// Per SSL: our own reason when the SPIFFE check refused the peer.
int reason_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_string);
  return index;
}

// Per SSL: the client offered "pillion-mtls" or "pillion-mtls-tcp" (a non-null marker, nothing to
// free).
int pillion_alpn_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

std::string openssl_error() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) {
    return "unknown OpenSSL error";
  }
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

void set_reason(SSL* ssl, std::string reason) {
  delete static_cast<std::string*>(SSL_get_ex_data(ssl, reason_index()));
  SSL_set_ex_data(ssl, reason_index(), new std::string(std::move(reason)));
}

// Runs for every certificate of the peer's chain, leaf last (depth 0). OpenSSL has checked the
// chain (`preverified`); we add the SPIFFE requirements on the leaf.
int verify_peer(int preverified, X509_STORE_CTX* store) {
  if (preverified != 1 || X509_STORE_CTX_get_error_depth(store) != 0) {
    return preverified;
  }
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl == nullptr) {
    return 0;
  }
  auto* policy = static_cast<Policy*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), policy_index()));
  std::string error;
  auto id = certificate_spiffe_id(X509_STORE_CTX_get_current_cert(store), &error);
  if (!id) {
    set_reason(ssl, "peer certificate: " + error);
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  auto parsed = parse_spiffe_id(*id);
  if (policy == nullptr || !parsed ||
      std::find(policy->trust_domains.begin(), policy->trust_domains.end(), parsed->trust_domain) ==
          policy->trust_domains.end()) {
    set_reason(ssl, "peer ID " + *id + " is not of a trusted trust domain");
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  return 1;
}

// Picks "pillion-mtls-tcp" when the client offers it (a sidecar tunnelling TCP), else "http/1.1"
// when offered; otherwise no ALPN (the client decides whether to go on without).
int select_alpn(SSL* ssl, const unsigned char** out, unsigned char* out_length,
                const unsigned char* in, unsigned int in_length, void* /*arg*/) {
  const unsigned char* chosen = nullptr;
  unsigned char chosen_length = 0;
  bool tcp = false;
  for (unsigned int i = 0; i < in_length;) {
    unsigned char length = in[i];
    if (length == 0 || i + 1 + length > in_length) {
      return SSL_TLSEXT_ERR_NOACK;  // malformed list
    }
    std::string_view protocol(reinterpret_cast<const char*>(in + i + 1), length);
    if (protocol == kAlpnPillionMtlsTcp) {
      chosen = in + i + 1;
      chosen_length = length;
      tcp = true;
      SSL_set_ex_data(ssl, pillion_alpn_index(), ssl);
    } else if (protocol == kAlpnHttp11 && !tcp) {
      chosen = in + i + 1;
      chosen_length = length;
    } else if (protocol == kAlpnPillionMtls) {
      SSL_set_ex_data(ssl, pillion_alpn_index(), ssl);
    }
    i += 1 + length;
  }
  if (chosen == nullptr) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = chosen;
  *out_length = chosen_length;
  return SSL_TLSEXT_ERR_OK;
}

// What both contexts share: versions, ciphers, our chain and key, the bundle, peer verification.
ContextPtr make_common(ssl::context::method method, const ContextMaterial& material,
                       std::string& error) {
  ERR_clear_error();
  if (material.leaf == nullptr || material.key == nullptr || material.trust == nullptr) {
    error = "incomplete TLS material";
    return nullptr;
  }
  auto context = std::make_shared<ssl::context>(method);
  SSL_CTX* ctx = context->native_handle();
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(ctx, kTls12CipherList) != 1) {
    error = "cannot set TLS versions and ciphers: " + openssl_error();
    return nullptr;
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_use_certificate(ctx, material.leaf) != 1 ||
      (material.chain != nullptr && SSL_CTX_set1_chain(ctx, material.chain) != 1)) {
    error = "cannot use the certificate chain: " + openssl_error();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey(ctx, material.key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();  // the reason could be about the key: say nothing more
    error = "the private key does not match the certificate";
    return nullptr;
  }
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (int i = 0; i < sk_X509_num(material.trust); ++i) {
    if (X509_STORE_add_cert(store, sk_X509_value(material.trust, i)) != 1) {
      error = "cannot add a trust bundle certificate: " + openssl_error();
      return nullptr;
    }
  }
  auto* policy = new Policy{material.trust_domains};
  if (SSL_CTX_set_ex_data(ctx, policy_index(), policy) != 1) {
    delete policy;
    error = "cannot attach the peer policy: " + openssl_error();
    return nullptr;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_peer);
  reason_index();
  pillion_alpn_index();
  return context;
}

}  // namespace

ContextPtr make_server_context(const ContextMaterial& material, std::string& error) {
  auto context = make_common(ssl::context::tls_server, material, error);
  if (!context) {
    return nullptr;
  }
  SSL_CTX* ctx = context->native_handle();
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Resumption with stateless tickets (keys are per context, so a rotation starts afresh); no
  // server-side cache, which would be shared and locked across workers.
  static constexpr unsigned char kSessionContext[] = "pillion";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  return context;
}

ContextPtr make_client_context(const ContextMaterial& material, std::string& error) {
  auto context = make_common(ssl::context::tls_client, material, error);
  if (!context) {
    return nullptr;
  }
  SSL_CTX* ctx = context->native_handle();
  static constexpr unsigned char kAlpn[] = "\x08http/1.1\x0cpillion-mtls";
  if (SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof(kAlpn) - 1) != 0) {  // 0 is success here
    error = "cannot set ALPN: " + openssl_error();
    return nullptr;
  }
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, SessionCache::on_new_session);
  return context;
}

std::optional<std::string> certificate_spiffe_id(X509* cert, std::string* error) {
  auto fail = [error](std::string message) -> std::optional<std::string> {
    if (error != nullptr) {
      *error = std::move(message);
    }
    return std::nullopt;
  };
  if (cert == nullptr) {
    return fail("no certificate");
  }
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  std::optional<std::string> uri;
  int uris = 0;
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) {
      continue;
    }
    ++uris;
    const ASN1_IA5STRING* text = name->d.uniformResourceIdentifier;
    uri.emplace(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                static_cast<size_t>(ASN1_STRING_length(text)));
  }
  GENERAL_NAMES_free(names);
  if (uris == 0) {
    return fail("no URI SAN (a SPIFFE ID is required)");
  }
  if (uris > 1) {
    return fail(std::to_string(uris) + " URI SANs (exactly one SPIFFE ID is required)");
  }
  std::string reason;
  if (!parse_spiffe_id(*uri, &reason)) {
    return fail("URI SAN is not a valid SPIFFE ID: " + reason);
  }
  return uri;
}

std::optional<std::string> peer_spiffe_id(SSL* ssl) {
  X509* peer = SSL_get0_peer_certificate(ssl);
  if (peer == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) {
    return std::nullopt;
  }
  return certificate_spiffe_id(peer);
}

bool peer_id_allowed(const std::string& id, const std::vector<std::string>& expected) {
  if (expected.empty()) {
    return parse_spiffe_id(id).has_value();
  }
  for (const auto& entry : expected) {
    if (entry == id) {
      return true;
    }
    if (entry.find('*') != std::string::npos) {
      std::string error;
      auto pattern = IdPattern::parse(entry, error);
      if (pattern && pattern->matches(id)) {
        return true;
      }
    }
  }
  return false;
}

std::string verify_error(SSL* ssl) {
  if (auto* reason = static_cast<std::string*>(SSL_get_ex_data(ssl, reason_index()))) {
    return *reason;
  }
  long result = SSL_get_verify_result(ssl);
  if (result != X509_V_OK) {
    return X509_verify_cert_error_string(result);
  }
  if (SSL_get0_peer_certificate(ssl) == nullptr) {
    return std::string(kNoPeerCertificate);
  }
  return {};
}

std::string handshake_error(SSL* ssl, const boost::system::error_code& error) {
  std::string reason = verify_error(ssl);
  if (!reason.empty() && reason != kNoPeerCertificate) {
    return reason;
  }
  // Without a certificate from the peer, the handshake's own error says why: a protocol
  // version or cipher refused before any certificate was due, or the peer sending none.
  if (error.category() == boost::asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(error.value())) ==
          SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    return std::string(kNoPeerCertificate);
  }
  return error ? error.message() : reason;
}

std::string_view selected_alpn(SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl, &data, &length);
  if (data == nullptr) {
    return {};
  }
  return {reinterpret_cast<const char*>(data), length};
}

bool peer_offered_pillion_alpn(SSL* ssl) {
  return SSL_get_ex_data(ssl, pillion_alpn_index()) != nullptr;
}

bool offer_tcp_tunnel_alpn(SSL* ssl) {
  static constexpr unsigned char kAlpn[] = "\x10pillion-mtls-tcp";
  static_assert(sizeof(kAlpn) - 2 == kAlpnPillionMtlsTcp.size());
  return SSL_set_alpn_protos(ssl, kAlpn, sizeof(kAlpn) - 1) == 0;  // 0 is success here
}

std::string take_close_notify(SSL* ssl) {
  if ((SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) != 0 || SSL_in_init(ssl) != 0) {
    return {};
  }
  // Point the SSL's write side at a memory BIO for the one call, then give it its own back.
  BIO* network = SSL_get_wbio(ssl);
  BIO* capture = BIO_new(BIO_s_mem());
  if (network == nullptr || capture == nullptr || BIO_up_ref(network) != 1) {
    BIO_free(capture);
    return {};
  }
  SSL_set0_wbio(ssl, capture);  // drops the SSL's reference to `network`; ours keeps it alive
  ERR_clear_error();
  SSL_shutdown(ssl);  // 0: close_notify sent, the peer's not yet received; 1: both done
  ERR_clear_error();
  char* data = nullptr;
  long length = BIO_get_mem_data(capture, &data);
  std::string record(data != nullptr && length > 0 ? data : "",
                     length > 0 ? static_cast<size_t>(length) : 0);
  SSL_set0_wbio(ssl, network);  // frees `capture`; the SSL takes our reference
  return record;
}

bool set_server_name(SSL* ssl, const std::string& name) {
  return SSL_set_tlsext_host_name(ssl, name.c_str()) == 1;
}

}  // namespace pillion::tls
