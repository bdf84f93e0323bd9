#include "tls/identity.h"

#include <fcntl.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>

#include "tls/spiffe.h"

namespace pillion::tls {

namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * stack) const { sk_X509_pop_free(stack, X509_free); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct StoreFree {
  void operator()(X509_STORE* store) const { X509_STORE_free(store); }
};
struct StoreContextFree {
  void operator()(X509_STORE_CTX* context) const { X509_STORE_CTX_free(context); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using StackPtr = std::unique_ptr<STACK_OF(X509), StackFree>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using StorePtr = std::unique_ptr<X509_STORE, StoreFree>;
using StoreContextPtr = std::unique_ptr<X509_STORE_CTX, StoreContextFree>;

// Clears OpenSSL's thread-local error queue on every way out: a stale entry would make a later,
// unrelated SSL call on this thread look failed.
struct ErrorQueueGuard {
  ErrorQueueGuard() { ERR_clear_error(); }
  ~ErrorQueueGuard() { ERR_clear_error(); }
};

std::optional<std::string> read_file(const std::string& path, std::string& error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  std::array<char, 16 * 1024> buffer;
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      error = "cannot read " + path + ": " + std::strerror(errno);
      OPENSSL_cleanse(buffer.data(), buffer.size());
      OPENSSL_cleanse(text.data(), text.size());
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) {
      break;
    }
    text.append(buffer.data(), static_cast<size_t>(n));
  }
  OPENSSL_cleanse(buffer.data(), buffer.size());  // it may have held key bytes
  ::close(fd);
  return text;
}

BioPtr memory_bio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Every certificate of a PEM file, in order. A file that ends in the middle of a certificate (a
// half-written file) is an error, not a shorter chain.
StackPtr read_certificates(const std::string& pem, const std::string& name, std::string& error) {
  StackPtr certs(sk_X509_new_null());
  auto bio = memory_bio(pem);
  if (!certs || !bio) {
    error = "out of memory reading " + name;
    return nullptr;
  }
  while (true) {
    X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (cert == nullptr) {
      unsigned long code = ERR_peek_last_error();
      bool end = ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE;
      ERR_clear_error();
      if (end && sk_X509_num(certs.get()) > 0) {
        return certs;
      }
      if (end) {
        error = name + ": no PEM certificate (empty or not PEM)";
      } else {
        error = name + ": malformed or truncated PEM certificate (certificate " +
                std::to_string(sk_X509_num(certs.get()) + 1) + ")";
      }
      return nullptr;
    }
    sk_X509_push(certs.get(), cert);
  }
}

// Never prompts: an encrypted key is refused.
int no_password(char* /*buffer*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) {
  return 0;
}

std::chrono::system_clock::time_point to_time_point(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) {
    return {};
  }
  return std::chrono::system_clock::from_time_t(::timegm(&tm));
}

std::string serial_hex(X509* cert) {
  BIGNUM* number = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (number == nullptr) {
    return {};
  }
  char* hex = BN_bn2hex(number);
  std::string text = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  BN_free(number);
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string subject_text(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) {
    return {};
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(std::max(length, 0L)));
}

}  // namespace

std::string format_time(std::chrono::system_clock::time_point time) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::shared_ptr<const Identity> Identity::load(const IdentityFiles& files, std::string& error) {
  IdentityPem pem;
  auto cert = read_file(files.cert, error);
  if (!cert) {
    return nullptr;
  }
  pem.cert = std::move(*cert);
  auto key = read_file(files.key, error);
  if (!key) {
    return nullptr;
  }
  pem.key = std::move(*key);
  auto ca = read_file(files.ca, error);
  if (ca) {
    pem.ca = std::move(*ca);
  }
  std::shared_ptr<const Identity> identity;
  if (ca) {
    identity = parse(pem, files, error);
  }
  OPENSSL_cleanse(pem.key.data(), pem.key.size());
  return identity;
}

std::shared_ptr<const Identity> Identity::parse(const IdentityPem& pem, const IdentityFiles& files,
                                                std::string& error) {
  ErrorQueueGuard guard;

  auto chain = read_certificates(pem.cert, files.cert, error);
  if (!chain) {
    return nullptr;
  }
  X509Ptr leaf(sk_X509_shift(chain.get()));  // the rest are intermediates

  KeyPtr key;
  if (auto bio = memory_bio(pem.key)) {
    key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
  }
  if (!key) {
    ERR_clear_error();  // OpenSSL's reason is not repeated: it is about the key file
    error = files.key + ": no usable PEM private key (malformed, truncated or encrypted)";
    return nullptr;
  }
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    ERR_clear_error();
    error = files.key + " does not match " + files.cert;
    return nullptr;
  }

  std::string reason;
  auto id = certificate_spiffe_id(leaf.get(), &reason);
  if (!id) {
    error = files.cert + ": " + reason;
    return nullptr;
  }

  auto now = Clock::now();
  auto not_before = to_time_point(X509_get0_notBefore(leaf.get()));
  auto not_after = to_time_point(X509_get0_notAfter(leaf.get()));
  if (not_after <= now) {
    error = files.cert + ": certificate expired at " + format_time(not_after);
    return nullptr;
  }
  if (not_before > now) {
    error = files.cert + ": certificate not valid before " + format_time(not_before);
    return nullptr;
  }
  if (X509_check_purpose(leaf.get(), X509_PURPOSE_SSL_SERVER, 0) != 1 ||
      X509_check_purpose(leaf.get(), X509_PURPOSE_SSL_CLIENT, 0) != 1) {
    ERR_clear_error();
    error = files.cert +
            ": certificate is not usable for both TLS server and client authentication "
            "(key usage / extended key usage)";
    return nullptr;
  }

  auto trust = read_certificates(pem.ca, files.ca, error);
  if (!trust) {
    return nullptr;
  }
  StorePtr store(X509_STORE_new());
  StoreContextPtr verify(X509_STORE_CTX_new());
  if (!store || !verify) {
    error = "out of memory verifying " + files.cert;
    return nullptr;
  }
  for (int i = 0; i < sk_X509_num(trust.get()); ++i) {
    X509_STORE_add_cert(store.get(), sk_X509_value(trust.get(), i));
  }
  if (X509_STORE_CTX_init(verify.get(), store.get(), leaf.get(), chain.get()) != 1) {
    error = "cannot verify " + files.cert;
    return nullptr;
  }
  if (X509_verify_cert(verify.get()) != 1) {
    error = files.cert + " does not chain to the trust bundle " + files.ca + ": " +
            X509_verify_cert_error_string(X509_STORE_CTX_get_error(verify.get()));
    return nullptr;
  }
  STACK_OF(X509)* verified = X509_STORE_CTX_get0_chain(verify.get());
  X509* anchor = sk_X509_value(verified, sk_X509_num(verified) - 1);

  auto parsed = parse_spiffe_id(*id);
  std::shared_ptr<Identity> identity(new Identity());
  identity->spiffe_id_ = *id;
  identity->trust_domain_ = parsed ? parsed->trust_domain : std::string();
  identity->not_before_ = not_before;
  identity->not_after_ = not_after;
  identity->serial_ = serial_hex(leaf.get());
  identity->ca_not_after_ = to_time_point(X509_get0_notAfter(anchor));
  identity->ca_subject_ = subject_text(anchor);
  identity->files_ = files;

  ContextMaterial material;
  material.leaf = leaf.get();
  material.chain = chain.get();
  material.key = key.get();
  material.trust = trust.get();
  material.trust_domains = {identity->trust_domain_};
  identity->server_context_ = make_server_context(material, reason);
  if (identity->server_context_) {
    identity->client_context_ = make_client_context(material, reason);
  }
  if (!identity->server_context_ || !identity->client_context_) {
    error = "cannot build TLS contexts from " + files.cert + ": " + reason;
    return nullptr;
  }
  return identity;
}

bool Identity::expiring(Clock::time_point now, double fraction) const {
  auto lifetime = std::chrono::duration<double>(not_after_ - not_before_).count();
  auto left = std::chrono::duration<double>(not_after_ - now).count();
  return left < lifetime * fraction;
}

}  // namespace pillion::tls
