#include "test_certs.h"

#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <stdexcept>

namespace pillion::tls::testing {

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    throw std::runtime_error(std::string("test certificate: ") + what);
  }
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
  check(extension != nullptr, "extension");
  X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
}

std::string to_pem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<size_t>(length));
  BIO_free(bio);
  return text;
}

std::string to_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<size_t>(length));
  BIO_free(bio);
  return text;
}

// A new certificate for `key`, not yet signed.
X509* new_certificate(EVP_PKEY* key, const std::string& common_name, long not_before,
                      long not_after) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  uint64_t serial = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof(serial));
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), serial >> 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), not_before);
  X509_gmtime_adj(X509_getm_notAfter(cert), not_after);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("pillion test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  return cert;
}

}  // namespace

TestCa::TestCa(const std::string& common_name) {
  key_ = EVP_EC_gen("P-256");
  check(key_ != nullptr, "CA key");
  cert_ = new_certificate(key_, common_name, -24 * 3600, 3650L * 24 * 3600);
  X509_set_issuer_name(cert_, X509_get_subject_name(cert_));
  add_extension(cert_, cert_, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert_, cert_, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(cert_, cert_, NID_subject_key_identifier, "hash");
  check(X509_sign(cert_, key_, EVP_sha256()) > 0, "CA signature");
  pem_.cert = to_pem(cert_);
  pem_.key = to_pem(key_);
}

TestCa::TestCa(const std::string& common_name, const TestCa& parent) {
  key_ = EVP_EC_gen("P-256");
  check(key_ != nullptr, "intermediate key");
  cert_ = new_certificate(key_, common_name, -24 * 3600, 365L * 24 * 3600);
  X509_set_issuer_name(cert_, X509_get_subject_name(parent.cert_));
  add_extension(cert_, parent.cert_, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  add_extension(cert_, parent.cert_, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(cert_, parent.cert_, NID_subject_key_identifier, "hash");
  add_extension(cert_, parent.cert_, NID_authority_key_identifier, "keyid:always");
  check(X509_sign(cert_, parent.key_, EVP_sha256()) > 0, "intermediate signature");
  pem_.cert = to_pem(cert_);
  pem_.key = to_pem(key_);
}

TestCa::~TestCa() {
  X509_free(cert_);
  EVP_PKEY_free(key_);
}

Pem TestCa::issue(const LeafOptions& options) const {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  check(key != nullptr, "leaf key");
  X509* cert =
      new_certificate(key, "workload", options.not_before_seconds, options.not_after_seconds);
  X509_set_issuer_name(cert, X509_get_subject_name(cert_));
  add_extension(cert, cert_, NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert, cert_, NID_key_usage, "critical,digitalSignature");
  add_extension(cert, cert_, NID_ext_key_usage, "serverAuth,clientAuth");
  add_extension(cert, cert_, NID_authority_key_identifier, "keyid:always");
  if (!options.uris.empty()) {
    std::string names;
    for (const auto& uri : options.uris) {
      names += (names.empty() ? "URI:" : ",URI:") + uri;
    }
    add_extension(cert, cert_, NID_subject_alt_name, names);
  }
  check(X509_sign(cert, key_, EVP_sha256()) > 0, "leaf signature");
  Pem pem;
  pem.cert = to_pem(cert);
  pem.key = to_pem(key);
  X509_free(cert);
  EVP_PKEY_free(key);
  return pem;
}

Pem TestCa::issue(const std::string& spiffe_id) const {
  LeafOptions options;
  options.uris = {spiffe_id};
  return issue(options);
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "pillion-tls-XXXXXX").string();
  check(::mkdtemp(pattern.data()) != nullptr, "mkdtemp");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace pillion::tls::testing
