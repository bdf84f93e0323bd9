#include "tls/identity.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <vector>

#include "test_certs.h"
#include "tls/tls_context.h"

namespace pillion::tls {
namespace {

using testing::LeafOptions;
using testing::Pem;
using testing::TempDir;
using testing::TestCa;
using testing::write_file;

constexpr const char* kId = "spiffe://cluster.local/ns/prod/sa/payments";

class IdentityTest : public ::testing::Test {
 protected:
  IdentityFiles write(const std::string& cert, const std::string& key, const std::string& ca) {
    IdentityFiles files;
    files.cert = dir_.file("cert.pem");
    files.key = dir_.file("key.pem");
    files.ca = dir_.file("ca.pem");
    write_file(files.cert, cert);
    write_file(files.key, key);
    write_file(files.ca, ca);
    return files;
  }

  // Loads and expects a failure; checks that the error carries no key material.
  std::string load_error(const IdentityFiles& files, const std::string& key_pem) {
    std::string error;
    auto identity = Identity::load(files, error);
    EXPECT_EQ(identity, nullptr);
    EXPECT_FALSE(error.empty());
    EXPECT_EQ(error.find("PRIVATE KEY"), std::string::npos) << error;
    // No 16-character run of the key's base64 body appears in the message.
    auto begin = key_pem.find('\n');
    for (size_t i = begin + 1; i + 16 < key_pem.size(); i += 8) {
      auto chunk = key_pem.substr(i, 16);
      if (chunk.find('\n') == std::string::npos && chunk.find('-') == std::string::npos) {
        EXPECT_EQ(error.find(chunk), std::string::npos) << error;
      }
    }
    return error;
  }

  TempDir dir_;
  TestCa ca_{"Test CA"};
};

TEST_F(IdentityTest, LoadsAValidSet) {
  auto leaf = ca_.issue(kId);
  auto files = write(leaf.cert, leaf.key, ca_.cert_pem());
  std::string error;
  auto identity = Identity::load(files, error);
  ASSERT_NE(identity, nullptr) << error;
  EXPECT_EQ(identity->spiffe_id(), kId);
  EXPECT_EQ(identity->trust_domain(), "cluster.local");
  EXPECT_FALSE(identity->serial().empty());
  EXPECT_EQ(identity->serial().find_first_not_of("0123456789abcdef"), std::string::npos);
  auto now = std::chrono::system_clock::now();
  EXPECT_LT(identity->not_before(), now);
  EXPECT_GT(identity->not_after(), now + std::chrono::hours(23));
  EXPECT_LT(identity->not_after(), now + std::chrono::hours(25));
  EXPECT_GT(identity->ca_not_after(), now + std::chrono::hours(24 * 365));
  EXPECT_NE(identity->ca_subject().find("CN=Test CA"), std::string::npos) << identity->ca_subject();
  EXPECT_NE(identity->server_context(), nullptr);
  EXPECT_NE(identity->client_context(), nullptr);
  EXPECT_FALSE(identity->expiring(now));
  EXPECT_TRUE(identity->expiring(identity->not_after() - std::chrono::hours(1)));
  EXPECT_EQ(identity->files().key, files.key);
}

TEST_F(IdentityTest, LoadsAChainThroughAnIntermediate) {
  TestCa intermediate("Test Intermediate", ca_);
  auto leaf = intermediate.issue(kId);
  auto files = write(leaf.cert + intermediate.cert_pem(), leaf.key, ca_.cert_pem());
  std::string error;
  auto identity = Identity::load(files, error);
  ASSERT_NE(identity, nullptr) << error;
  EXPECT_NE(identity->ca_subject().find("CN=Test CA"), std::string::npos);

  // Without the intermediate in cert.pem, the leaf does not chain to the root.
  files = write(leaf.cert, leaf.key, ca_.cert_pem());
  error = load_error(files, leaf.key);
  EXPECT_NE(error.find("does not chain to the trust bundle"), std::string::npos) << error;
}

TEST_F(IdentityTest, RejectsAKeyThatDoesNotMatch) {
  auto leaf = ca_.issue(kId);
  auto other = ca_.issue(kId);
  auto files = write(leaf.cert, other.key, ca_.cert_pem());
  auto error = load_error(files, other.key);
  EXPECT_EQ(error, files.key + " does not match " + files.cert);
}

TEST_F(IdentityTest, RejectsACertificateFromAnotherCa) {
  TestCa other("Other CA");
  auto leaf = other.issue(kId);
  auto files = write(leaf.cert, leaf.key, ca_.cert_pem());
  auto error = load_error(files, leaf.key);
  EXPECT_NE(error.find(files.cert + " does not chain to the trust bundle " + files.ca),
            std::string::npos)
      << error;
}

TEST_F(IdentityTest, RequiresExactlyOneSpiffeUriSan) {
  LeafOptions none;
  auto leaf = ca_.issue(none);
  auto error = load_error(write(leaf.cert, leaf.key, ca_.cert_pem()), leaf.key);
  EXPECT_NE(error.find("no URI SAN"), std::string::npos) << error;

  LeafOptions two;
  two.uris = {kId, "spiffe://cluster.local/ns/prod/sa/other"};
  leaf = ca_.issue(two);
  error = load_error(write(leaf.cert, leaf.key, ca_.cert_pem()), leaf.key);
  EXPECT_NE(error.find("2 URI SANs"), std::string::npos) << error;

  leaf = ca_.issue("https://payments.example.com/");
  error = load_error(write(leaf.cert, leaf.key, ca_.cert_pem()), leaf.key);
  EXPECT_NE(error.find("not a valid SPIFFE ID"), std::string::npos) << error;
}

TEST_F(IdentityTest, RejectsHalfWrittenFiles) {
  auto leaf = ca_.issue(kId);
  auto files = write(leaf.cert.substr(0, leaf.cert.size() / 2), leaf.key, ca_.cert_pem());
  auto error = load_error(files, leaf.key);
  EXPECT_EQ(error, files.cert + ": malformed or truncated PEM certificate (certificate 1)");

  files = write(leaf.cert, leaf.key.substr(0, leaf.key.size() / 2), ca_.cert_pem());
  error = load_error(files, leaf.key);
  EXPECT_EQ(error, files.key + ": no usable PEM private key (malformed, truncated or encrypted)");

  files = write("", leaf.key, ca_.cert_pem());
  error = load_error(files, leaf.key);
  EXPECT_EQ(error, files.cert + ": no PEM certificate (empty or not PEM)");

  files = write(leaf.cert, leaf.key, ca_.cert_pem().substr(0, 100));
  error = load_error(files, leaf.key);
  EXPECT_NE(error.find(files.ca + ": malformed or truncated"), std::string::npos) << error;

  // A chain cut inside its second certificate is not silently shortened.
  TestCa intermediate("Test Intermediate", ca_);
  auto chained = intermediate.issue(kId);
  auto cut = intermediate.cert_pem().substr(0, intermediate.cert_pem().size() - 40);
  files = write(chained.cert + cut, chained.key, ca_.cert_pem());
  error = load_error(files, chained.key);
  EXPECT_EQ(error, files.cert + ": malformed or truncated PEM certificate (certificate 2)");
}

TEST_F(IdentityTest, RejectsMissingFiles) {
  auto leaf = ca_.issue(kId);
  auto files = write(leaf.cert, leaf.key, ca_.cert_pem());
  files.ca = dir_.file("missing.pem");
  auto error = load_error(files, leaf.key);
  EXPECT_EQ(error, "cannot read " + files.ca + ": No such file or directory");
}

TEST_F(IdentityTest, RejectsAnExpiredOrNotYetValidLeaf) {
  LeafOptions expired;
  expired.uris = {kId};
  expired.not_before_seconds = -7200;
  expired.not_after_seconds = -60;
  auto leaf = ca_.issue(expired);
  auto files = write(leaf.cert, leaf.key, ca_.cert_pem());
  auto error = load_error(files, leaf.key);
  EXPECT_EQ(error.rfind(files.cert + ": certificate expired at 20", 0), 0u) << error;

  LeafOptions future;
  future.uris = {kId};
  future.not_before_seconds = 3600;
  leaf = ca_.issue(future);
  error = load_error(write(leaf.cert, leaf.key, ca_.cert_pem()), leaf.key);
  EXPECT_NE(error.find("certificate not valid before"), std::string::npos) << error;
}

TEST_F(IdentityTest, RejectsAnEncryptedKeyWithoutPromptingAndAKeyFileWithoutAKey) {
  auto leaf = ca_.issue(kId);
  std::string encrypted;
  {
    BIO* in = BIO_new_mem_buf(leaf.key.data(), static_cast<int>(leaf.key.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
    BIO_free(in);
    ASSERT_NE(key, nullptr);
    BIO* out = BIO_new(BIO_s_mem());
    static char kPassphrase[] = "secret";
    PEM_write_bio_PrivateKey(out, key, EVP_aes_256_cbc(), nullptr, 0, nullptr, kPassphrase);
    char* data = nullptr;
    long length = BIO_get_mem_data(out, &data);
    encrypted.assign(data, static_cast<size_t>(length));
    BIO_free(out);
    EVP_PKEY_free(key);
  }
  ASSERT_NE(encrypted.find("ENCRYPTED"), std::string::npos);
  auto files = write(leaf.cert, encrypted, ca_.cert_pem());
  auto error = load_error(files, encrypted);
  EXPECT_EQ(error, files.key + ": no usable PEM private key (malformed, truncated or encrypted)");

  files = write(leaf.cert, leaf.cert, ca_.cert_pem());  // a certificate where the key should be
  error = load_error(files, leaf.key);
  EXPECT_NE(error.find("no usable PEM private key"), std::string::npos) << error;
}

TEST(PeerIdAllowed, ExactPatternsAndEmpty) {
  const std::string id = "spiffe://cluster.local/ns/prod/sa/web";
  EXPECT_TRUE(peer_id_allowed(id, {}));
  EXPECT_FALSE(peer_id_allowed("not an id", {}));
  EXPECT_TRUE(peer_id_allowed(id, {"spiffe://cluster.local/ns/prod/sa/api", id}));
  EXPECT_FALSE(peer_id_allowed(id, {"spiffe://cluster.local/ns/prod/sa/api"}));
  EXPECT_TRUE(peer_id_allowed(id, {"spiffe://cluster.local/ns/prod/*"}));
  EXPECT_FALSE(peer_id_allowed(id, {"spiffe://cluster.local/ns/dev/*"}));
}

TEST(FormatTime, Utc) {
  EXPECT_EQ(format_time(std::chrono::system_clock::from_time_t(0)), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace pillion::tls
