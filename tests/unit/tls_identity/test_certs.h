#pragma once
// Test certificates made with the OpenSSL API: a CA (ECDSA P-256) and leaves it signs, with any
// URI SANs and validity window.
#include <openssl/ossl_typ.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace pillion::tls::testing {

struct Pem {
  std::string cert;  // the certificate (a leaf, or the CA's own)
  std::string key;
};

struct LeafOptions {
  std::vector<std::string> uris;    // URI SANs
  long not_before_seconds = -3600;  // relative to now
  long not_after_seconds = 24 * 3600;
};

class TestCa {
 public:
  explicit TestCa(const std::string& common_name);
  // An intermediate CA signed by `parent`.
  TestCa(const std::string& common_name, const TestCa& parent);
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  const std::string& cert_pem() const { return pem_.cert; }
  Pem issue(const LeafOptions& options) const;
  Pem issue(const std::string& spiffe_id) const;

 private:
  Pem pem_;
  X509* cert_ = nullptr;
  EVP_PKEY* key_ = nullptr;
};

// A fresh directory under /tmp, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& path, const std::string& text);

}  // namespace pillion::tls::testing
